//! Sort and top-k: every worker sorts (or keeps its top k of) its own rows, the sorted runs
//! go to worker 0, which merges them into the final order.

use arrow_array::RecordBatch;
use arrow_ord::sort::{SortColumn, SortOptions, lexsort_to_indices};
use arrow_schema::ArrowError;
use arrow_select::concat::concat_batches;
use arrow_select::take::take_record_batch;
use starflow_dataflow::plan::SortSpec;
use starflow_dataflow::timely::dataflow::channels::pact::{Exchange, Pipeline};
use starflow_dataflow::timely::dataflow::operators::generic::Operator;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};

use crate::kernels::eval::evaluate;

/// Sorts the concatenation of `batches` by `spec`, keeping at most `spec.limit` rows.
pub fn sort_batches(spec: &SortSpec, batches: &[Batch]) -> Result<Option<RecordBatch>, ArrowError> {
    let Some(first) = batches.first() else { return Ok(None) };
    let all = concat_batches(&first.data.schema(), batches.iter().map(|b| b.data.as_ref()))?;
    if all.num_rows() == 0 {
        return Ok(None);
    }
    let columns = spec
        .keys
        .iter()
        .map(|k| {
            Ok(SortColumn {
                values: evaluate(&k.expr, &all)?,
                options: Some(SortOptions { descending: k.descending, nulls_first: k.nulls_first }),
            })
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let limit = spec.limit.map(|l| l as usize);
    let indices = lexsort_to_indices(&columns, limit)?;
    take_record_batch(&all, &indices).map(Some)
}

/// Renders a sort: local sort per worker, exchange to worker 0, final merge.
pub(crate) fn render_sort<'s>(ctx: &RenderContext<'s>, input: BatchStream<'s>, spec: &SortSpec) -> BatchStream<'s> {
    let keys: Vec<String> = spec.keys.iter().map(|k| format!("{}{}", k.expr, if k.descending { " DESC" } else { "" })).collect();
    let label = match spec.limit {
        Some(k) => format!("TopK[{k}; {}]", keys.join(", ")),
        None => format!("Sort[{}]", keys.join(", ")),
    };
    let local = stage(ctx, input, spec, Pipeline, &format!("{label} local"));
    stage(ctx, local, spec, Exchange::new(|_b: &Batch| 0u64), &format!("{label} merge"))
}

fn stage<'s, P>(ctx: &RenderContext<'s>, input: BatchStream<'s>, spec: &SortSpec, pact: P, name: &str) -> BatchStream<'s>
where
    P: starflow_dataflow::timely::dataflow::channels::pact::ParallelizationContract<u64, Vec<Batch>>,
{
    let (spec, errors) = (spec.clone(), ctx.errors.clone());
    input.unary_frontier(pact, name, move |cap, _info| {
        let mut cap = Some(cap);
        let mut stash: Vec<Batch> = Vec::new();
        move |(input, frontier), output| {
            input.for_each(|_cap, data| stash.append(data));
            if frontier.is_empty() {
                if let Some(c) = cap.take() {
                    match sort_batches(&spec, &stash) {
                        Ok(Some(sorted)) => output.session(&c).give(Batch::new(sorted, 0)),
                        Ok(None) => {}
                        Err(source) => errors.record(RunError::Arrow { context: "sort".into(), source }),
                    }
                    stash.clear();
                }
            }
        }
    })
}
