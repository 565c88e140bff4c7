//! Filter: keeps the rows of each batch where the predicate is true (used for `HAVING`).

use arrow_select::filter::filter_record_batch;
use starflow_dataflow::plan::Expr;
use starflow_dataflow::timely::dataflow::channels::pact::Pipeline;
use starflow_dataflow::timely::dataflow::operators::generic::Operator;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};

use crate::kernels::eval::evaluate_predicate;

/// Renders a filter.
pub(crate) fn render_filter<'s>(ctx: &RenderContext<'s>, input: BatchStream<'s>, predicate: &Expr) -> BatchStream<'s> {
    let predicate = predicate.clone();
    let errors = ctx.errors.clone();
    input.unary(Pipeline, &format!("Filter[{predicate}]"), move |_cap, _info| {
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for batch in data.drain(..) {
                    let result = evaluate_predicate(&predicate, &batch.data)
                        .and_then(|mask| filter_record_batch(&batch.data, &mask));
                    match result {
                        Ok(rows) if rows.num_rows() > 0 => session.give(Batch { data: rows.into(), ..batch }),
                        Ok(_) => {}
                        Err(source) => {
                            errors.record(RunError::Arrow { context: format!("filter {predicate}"), source })
                        }
                    }
                }
            });
        }
    })
}
