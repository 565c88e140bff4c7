//! Sort and top-k: every worker sorts (or keeps its top k of) its own rows, the sorted runs
//! go to worker 0, which merges the sorted runs (k-way, O(n log k)) into the final order.

use arrow_array::RecordBatch;
use arrow_ord::sort::{SortColumn, SortOptions, lexsort_to_indices};
use arrow_row::{Row, RowConverter, SortField};
use arrow_schema::ArrowError;
use arrow_select::concat::concat_batches;
use arrow_select::interleave::interleave_record_batch;
use arrow_select::take::take_record_batch;
use starflow_dataflow::plan::SortSpec;
use starflow_dataflow::timely::dataflow::channels::pact::{Exchange, Pipeline};
use starflow_dataflow::timely::dataflow::operators::generic::Operator;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
    let keys: Vec<String> =
        spec.keys.iter().map(|k| format!("{}{}", k.expr, if k.descending { " DESC" } else { "" })).collect();
    let label = match spec.limit {
        Some(k) => format!("TopK[{k}; {}]", keys.join(", ")),
        None => format!("Sort[{}]", keys.join(", ")),
    };
    let local = stage(ctx, input, spec, Pipeline, &format!("{label} local"), false);
    stage(ctx, local, spec, Exchange::new(|_b: &Batch| 0u64), &format!("{label} merge"), true)
}

/// One sort stage: `merge` = merge sorted runs (on worker 0), else sort this worker's rows.
fn stage<'s, P>(
    ctx: &RenderContext<'s>,
    input: BatchStream<'s>,
    spec: &SortSpec,
    pact: P,
    name: &str,
    merge: bool,
) -> BatchStream<'s>
where
    P: starflow_dataflow::timely::dataflow::channels::pact::ParallelizationContract<u64, Vec<Batch>>,
{
    let (spec, errors, label) = (spec.clone(), ctx.errors.clone(), name.to_string());
    input.unary_frontier(pact, name, move |cap, _info| {
        let mut cap = Some(cap);
        let mut stash: Vec<Batch> = Vec::new();
        move |(input, frontier), output| {
            input.for_each(|_cap, data| {
                let _span = merge.then(|| starflow_dataflow::compile::exchanged(&label, data));
                stash.append(data)
            });
            if frontier.is_empty()
                && let Some(c) = cap.take()
            {
                let result = if merge { merge_sorted(&spec, &stash) } else { sort_batches(&spec, &stash) };
                match result {
                    Ok(Some(sorted)) => output.session(&c).give(Batch::new(sorted, 0)),
                    Ok(None) => {}
                    Err(source) => errors.record(RunError::Arrow { context: "sort".into(), source }),
                }
                stash.clear();
            }
        }
    })
}

/// Merges runs that are each sorted by `spec` (k-way, on arrow's row format), keeping at
/// most `spec.limit` rows.
pub fn merge_sorted(spec: &SortSpec, runs: &[Batch]) -> Result<Option<RecordBatch>, ArrowError> {
    let runs: Vec<&RecordBatch> = runs.iter().map(|b| b.data.as_ref()).filter(|b| b.num_rows() > 0).collect();
    match runs.as_slice() {
        [] => return Ok(None),
        [one] => return Ok(Some((*one).clone())),
        _ => {}
    }
    let fields = spec
        .keys
        .iter()
        .map(|k| {
            let t = k.expr.data_type(&runs[0].schema()).map_err(|e| ArrowError::ComputeError(e.to_string()))?;
            Ok(SortField::new_with_options(t, SortOptions { descending: k.descending, nulls_first: k.nulls_first }))
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let converter = RowConverter::new(fields)?;
    let rows = runs
        .iter()
        .map(|run| {
            let keys = spec.keys.iter().map(|k| evaluate(&k.expr, run)).collect::<Result<Vec<_>, _>>()?;
            converter.convert_columns(&keys)
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let total: usize = runs.iter().map(|r| r.num_rows()).sum();
    let wanted = spec.limit.map_or(total, |l| (l as usize).min(total));
    // Min-heap of (row, run, position); ties keep run order, so the merge is stable.
    let mut heap: BinaryHeap<Reverse<(Row<'_>, usize, usize)>> =
        rows.iter().enumerate().map(|(r, rs)| Reverse((rs.row(0), r, 0))).collect();
    let mut order = Vec::with_capacity(wanted);
    while order.len() < wanted {
        let Some(Reverse((_, run, pos))) = heap.pop() else { break };
        order.push((run, pos));
        if pos + 1 < rows[run].num_rows() {
            heap.push(Reverse((rows[run].row(pos + 1), run, pos + 1)));
        }
    }
    interleave_record_batch(&runs, &order).map(Some)
}
