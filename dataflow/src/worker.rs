//! Runs one query as a timely computation on N worker threads and streams the result
//! batches, gathered on worker 0, to the caller's thread.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_array::RecordBatch;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::ProbeHandle;

use crate::compile::{QueryErrors, QueryMetrics, RenderContext, Renderer, gather, render_plan};
use crate::error::RunError;
use crate::plan::Plan;
use crate::registry::CatalogSet;

/// How to run a query.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Worker threads.
    pub workers: usize,
}

/// What a finished query reports.
#[derive(Debug, Clone, Default)]
pub struct QueryStats {
    /// Row groups opened by scans.
    pub partitions_read: u64,
    /// Rows decoded by scans.
    pub rows_read: u64,
    /// Rows that passed the scan predicates.
    pub rows_matched: u64,
    /// Rows delivered to the caller.
    pub rows_out: u64,
    /// Wall time of the dataflow, seconds.
    pub seconds: f64,
}

/// Runs `plan` on `options.workers` threads; `on_batch` receives the result batches in
/// order, on the calling thread, while the workers run. An error from `on_batch` stops the
/// query and is returned.
pub fn run_query<R, F>(
    plan: &Plan,
    catalogs: Arc<CatalogSet>,
    renderer: R,
    options: &ExecOptions,
    mut on_batch: F,
) -> Result<QueryStats, RunError>
where
    R: Renderer + Send + Sync + 'static,
    F: FnMut(RecordBatch) -> Result<(), RunError>,
{
    let start = Instant::now();
    let errors = Arc::new(QueryErrors::default());
    let metrics = Arc::new(QueryMetrics::default());
    let (tx, rx) = mpsc::channel::<RecordBatch>();
    let sender = Arc::new(Mutex::new(Some(tx)));
    let plan = Arc::new(plan.clone());
    let config = match options.workers.max(1) {
        1 => timely::Config::thread(),
        n => timely::Config::process(n),
    };
    let (errs, mets) = (errors.clone(), metrics.clone());
    let guards = timely::execute(config, move |worker| {
        let index = worker.index();
        let sink = if index == 0 { sender.lock().expect("sender lock").take() } else { None };
        let probe = ProbeHandle::new();
        let built = worker.dataflow_named::<u64, _, _>("Query", |scope| {
            let ctx = RenderContext {
                scope,
                catalogs: catalogs.clone(),
                errors: errs.clone(),
                metrics: mets.clone(),
            };
            let stream = render_plan(&renderer, &ctx, &plan)?;
            let stream = if plan.is_gathered() { stream } else { gather(stream, "Gather") };
            let errs = errs.clone();
            let mut sink = sink;
            stream.probe_with(&probe).sink(Pipeline, "Sink", move |(input, _frontier)| {
                input.for_each(|_cap, data| {
                    for batch in data.drain(..) {
                        if let Some(tx) = &sink {
                            if tx.send(batch.data.as_ref().clone()).is_err() {
                                errs.cancel();
                                sink = None;
                            }
                        }
                    }
                });
            });
            Ok::<_, RunError>(())
        });
        if let Err(e) = built {
            errs.record(e);
            return;
        }
        while !probe.done() {
            worker.step_or_park(None);
        }
    })
    .map_err(RunError::Worker)?;

    let mut rows_out = 0u64;
    for batch in rx {
        rows_out += batch.num_rows() as u64;
        if errors.failed() {
            continue;
        }
        if let Err(e) = on_batch(batch) {
            errors.record(e);
        }
    }
    for result in guards.join() {
        result.map_err(|panic| RunError::Worker(format!("a worker panicked: {panic}")))?;
    }
    if let Some(e) = errors.take() {
        return Err(e);
    }
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    Ok(QueryStats {
        partitions_read: get(&metrics.partitions_read),
        rows_read: get(&metrics.rows_read),
        rows_matched: get(&metrics.rows_matched),
        rows_out,
        seconds: start.elapsed().as_secs_f64(),
    })
}
