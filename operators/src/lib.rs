//! Operators: one file per operator, each rendering one [`Plan`] variant as a timely
//! operator, and pure array kernels in `kernels`.
#![warn(missing_docs)]

mod aggregate;
mod crossmatch;
mod filter;
mod hats_write;
pub mod kernels;
mod limit;
mod project;
mod scan;
mod sort;

use starflow_dataflow::{BatchStream, Plan, RenderContext, Renderer, RunError};

pub use project::project_batch;
pub use sort::sort_batches;

/// The renderer of every plan variant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Operators;

impl Renderer for Operators {
    fn render<'s>(
        &self,
        ctx: &RenderContext<'s>,
        plan: &Plan,
        inputs: Vec<BatchStream<'s>>,
    ) -> Result<BatchStream<'s>, RunError> {
        let mut inputs = inputs.into_iter();
        let mut need = || inputs.next().ok_or_else(|| RunError::Internal("operator rendered without its input".into()));
        Ok(match plan {
            Plan::Scan(spec) => scan::render_scan(ctx, spec)?,
            Plan::Filter { predicate, .. } => filter::render_filter(ctx, need()?, predicate),
            Plan::Project { spec, .. } => project::render_project(ctx, need()?, spec),
            Plan::Aggregate { spec, .. } => aggregate::render_aggregate(ctx, need()?, spec),
            Plan::Sort { spec, .. } => sort::render_sort(ctx, need()?, spec),
            Plan::Limit { n, .. } => limit::render_limit(ctx, need()?, *n),
            Plan::Crossmatch { spec, .. } => {
                let (left, right) = (need()?, need()?);
                crossmatch::render_crossmatch(ctx, left, right, spec)
            }
            Plan::HatsWrite { spec, .. } => {
                let (counts, rows) = (need()?, need()?);
                hats_write::render_hats_write(ctx, counts, rows, spec)
            }
            Plan::Workers => {
                return Err(RunError::Internal("the Workers system table is rendered by the compiler".into()));
            }
        })
    }
}
