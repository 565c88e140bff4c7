//! Limit: on worker 0, the first `n` rows in catalog order (batches ordered by partition
//! and batch number), so any worker count gives the rows one worker would.

use arrow_select::concat::concat_batches;
use starflow_dataflow::timely::dataflow::channels::pact::Exchange;
use starflow_dataflow::timely::dataflow::operators::generic::Operator;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};

/// Renders a limit.
pub(crate) fn render_limit<'s>(ctx: &RenderContext<'s>, input: BatchStream<'s>, n: u64) -> BatchStream<'s> {
    let errors = ctx.errors.clone();
    input.unary_frontier(Exchange::new(|_b: &Batch| 0u64), &format!("Limit[{n}]"), move |cap, _info| {
        let mut cap = Some(cap);
        let mut stash: Vec<Batch> = Vec::new();
        move |(input, frontier), output| {
            input.for_each(|_cap, data| {
                let _span = starflow_dataflow::compile::exchanged("Limit", data);
                stash.append(data)
            });
            if frontier.is_empty()
                && let Some(c) = cap.take()
            {
                stash.sort_by_key(|b| b.seq);
                if let Some(first) = stash.first() {
                    match concat_batches(&first.data.schema(), stash.iter().map(|b| b.data.as_ref())) {
                        Ok(all) => {
                            let keep = (n as usize).min(all.num_rows());
                            output.session(&c).give(Batch::new(all.slice(0, keep), 0));
                        }
                        Err(source) => errors.record(RunError::Arrow { context: "limit".into(), source }),
                    }
                }
                stash.clear();
            }
        }
    })
}
