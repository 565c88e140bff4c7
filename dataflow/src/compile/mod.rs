//! The compiler: walks a [`Plan`] bottom-up, asks a [`Renderer`] (implemented by the
//! operators crate) to build each node, gathers the result on worker 0 and attaches the sink.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use crate::batch::Batch;
use crate::error::RunError;
use crate::plan::Plan;
use crate::registry::CatalogSet;

/// A stream of record batches at `u64` times (one query = one epoch, time 0).
pub type BatchStream<'s> = Stream<'s, u64, Vec<Batch>>;

/// The first error of a running query; scans stop early once one is recorded.
#[derive(Debug, Default)]
pub struct QueryErrors {
    failed: AtomicBool,
    first: Mutex<Option<RunError>>,
}

impl QueryErrors {
    /// Records an error (the first one wins) and asks every operator to stop.
    pub fn record(&self, error: RunError) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            tracing::debug!(%error, "query failed");
            *first = Some(error);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    /// True once an error is recorded (or the client went away).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Asks operators to stop without an error (e.g. the consumer has all it wants).
    pub fn cancel(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    /// The recorded error's message, if any, leaving it in place.
    pub fn peek(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(ToString::to_string)
    }

    /// Takes the recorded error.
    pub fn take(&self) -> Option<RunError> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Counters a query's operators update.
#[derive(Debug, Default)]
pub struct QueryMetrics {
    /// Partitions (row groups) opened by scans.
    pub partitions_read: AtomicU64,
    /// Rows decoded by scans.
    pub rows_read: AtomicU64,
    /// Rows that passed the scan predicates.
    pub rows_matched: AtomicU64,
    /// Compressed bytes of the column chunks scans read.
    pub bytes_read: AtomicU64,
    /// Rows and batches out of each plan node, in pre-order (0: the root), when counted
    /// ([`RenderContext::count_nodes`]).
    pub nodes: Mutex<Vec<(u64, u64)>>,
}

/// How far the workers of one process are through each scan of a query: a worker that needs
/// a partition takes the next of its process's share, so a worker that reads faster (or has
/// a core to itself) reads more. The processes' shares are fixed
/// ([`starflow_catalogs::owners`]).
#[derive(Debug, Default)]
pub struct ScanQueues {
    next: Mutex<Vec<Arc<AtomicUsize>>>,
}

impl ScanQueues {
    /// The counter of the query's `nth` scan (in rendering order, the same on every worker).
    pub fn queue(&self, nth: usize) -> Arc<AtomicUsize> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        while next.len() <= nth {
            next.push(Arc::default());
        }
        next[nth].clone()
    }
}

/// What a renderer needs besides its inputs.
pub struct RenderContext<'s> {
    /// The dataflow scope.
    pub scope: Scope<'s, u64>,
    /// Catalogs, by name.
    pub catalogs: Arc<CatalogSet>,
    /// The query's error slot.
    pub errors: Arc<QueryErrors>,
    /// The query's counters.
    pub metrics: Arc<QueryMetrics>,
    /// Count what comes out of each plan node (profiled queries).
    pub count_nodes: bool,
    /// Scans start reading only once this probe is done: a crossmatch's left side waits for
    /// its right side, so that only the right side is ever held.
    pub gate: Option<ProbeHandle<u64>>,
    /// Workers per process.
    pub threads: usize,
    /// The scans' progress on this process.
    pub scans: Arc<ScanQueues>,
    /// Scans rendered so far by this worker (the next one's index in `scans`).
    pub scans_rendered: std::rc::Rc<std::cell::Cell<usize>>,
}

impl<'s> RenderContext<'s> {
    /// The queue of the next scan rendered on this worker.
    pub fn next_scan_queue(&self) -> Arc<AtomicUsize> {
        let nth = self.scans_rendered.get();
        self.scans_rendered.set(nth + 1);
        self.scans.queue(nth)
    }

    /// The same context with scans gated by `gate`.
    fn gated(&self, gate: ProbeHandle<u64>) -> Self {
        Self {
            scope: self.scope,
            catalogs: self.catalogs.clone(),
            errors: self.errors.clone(),
            metrics: self.metrics.clone(),
            count_nodes: self.count_nodes,
            gate: Some(gate),
            threads: self.threads,
            scans: self.scans.clone(),
            scans_rendered: self.scans_rendered.clone(),
        }
    }
}

/// Renders plan nodes into timely operators. Implemented by `starflow-operators`.
pub trait Renderer {
    /// Renders `plan`, whose inputs ([`Plan::inputs`]) are already rendered, in order.
    fn render<'s>(
        &self,
        ctx: &RenderContext<'s>,
        plan: &Plan,
        inputs: Vec<BatchStream<'s>>,
    ) -> Result<BatchStream<'s>, RunError>;
}

/// Renders `plan` and all its inputs.
pub fn render_plan<'s, R: Renderer>(
    renderer: &R,
    ctx: &RenderContext<'s>,
    plan: &Plan,
) -> Result<BatchStream<'s>, RunError> {
    render_node(renderer, ctx, plan, 0)
}

/// Nodes in the plan (the node and all below it).
fn size(plan: &Plan) -> usize {
    1 + plan.inputs().into_iter().map(size).sum::<usize>()
}

/// Renders `plan` as node `id` (pre-order numbering, as [`crate::profile`] lists nodes).
fn render_node<'s, R: Renderer>(
    renderer: &R,
    ctx: &RenderContext<'s>,
    plan: &Plan,
    id: usize,
) -> Result<BatchStream<'s>, RunError> {
    if let Plan::Workers = plan {
        return Ok(crate::system::render_workers(ctx));
    }
    let inputs = match plan {
        // The right side first; the left side's scans wait for it to be complete.
        Plan::Crossmatch { left, right, .. } => {
            let probe = ProbeHandle::new();
            let right = render_node(renderer, ctx, right, id + 1 + size(left))?.probe_with(&probe);
            let left = render_node(renderer, &ctx.gated(probe), left, id + 1)?;
            vec![left, right]
        }
        // The counts first; the rows are read once every count is in.
        Plan::HatsWrite { counts, input, .. } => {
            let probe = ProbeHandle::new();
            let input_id = id + 1 + size(counts);
            let counts = render_node(renderer, ctx, counts, id + 1)?.probe_with(&probe);
            let input = render_node(renderer, &ctx.gated(probe), input, input_id)?;
            vec![counts, input]
        }
        _ => {
            let mut next = id + 1;
            let mut inputs = Vec::new();
            for input in plan.inputs() {
                inputs.push(render_node(renderer, ctx, input, next)?);
                next += size(input);
            }
            inputs
        }
    };
    let output = renderer.render(ctx, plan, inputs)?;
    Ok(if ctx.count_nodes { count(output, ctx.metrics.clone(), id) } else { output })
}

/// Passes a node's output on, counting its rows and batches (profiled queries only).
fn count<'s>(stream: BatchStream<'s>, metrics: Arc<QueryMetrics>, depth: usize) -> BatchStream<'s> {
    stream.unary(timely::dataflow::channels::pact::Pipeline, &format!("Count[node {depth}]"), move |_cap, _info| {
        move |input, output| {
            input.for_each(|cap, data| {
                let rows: usize = data.iter().map(|b| b.data.num_rows()).sum();
                {
                    let mut nodes = metrics.nodes.lock().expect("nodes lock");
                    if nodes.len() <= depth {
                        nodes.resize(depth + 1, (0, 0));
                    }
                    nodes[depth].0 += rows as u64;
                    nodes[depth].1 += data.len() as u64;
                }
                output.session(&cap).give_container(data);
            });
        }
    })
}

/// A span over the handling of batches that arrived through an exchange (`into`: the
/// receiving operator), for logs and traces.
pub fn exchanged(into: &str, data: &[Batch]) -> tracing::span::EnteredSpan {
    let rows: usize = data.iter().map(Batch::num_rows).sum();
    tracing::debug_span!("exchange", into, batches = data.len(), rows).entered()
}

/// Sends every batch to worker 0 (an exchange; within a process no copy is made).
pub fn gather<'s>(stream: BatchStream<'s>, name: &str) -> BatchStream<'s> {
    let name = name.to_string();
    stream.unary(Exchange::new(|_b: &Batch| 0u64), &name.clone(), |_cap, _info| {
        move |input, output| {
            input.for_each(|cap, data| {
                let _span = exchanged(&name, data);
                output.session(&cap).give_container(data);
            });
        }
    })
}
