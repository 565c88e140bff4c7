//! Runs one query as a timely computation on N worker threads and streams the result
//! batches, gathered on worker 0, to the caller's thread.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::{Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use timely::communication::Hooks;
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::ProbeHandle;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::generic::Operator;
use timely::{CommunicationConfig, WorkerConfig};

use crate::batch::Batch;
use crate::cluster::{Connected, Traffic, install_peer_loss_hook};
use crate::profile::{NodeProfile, Part, ProcessProfile, Profiler, QueryProfile, Sampler, plan_nodes};

use crate::compile::{QueryErrors, QueryMetrics, RenderContext, Renderer, gather, render_plan};
use crate::error::RunError;
use crate::plan::Plan;
use crate::registry::CatalogSet;

/// How to run a query.
pub struct ExecOptions {
    /// Worker threads (per process).
    pub workers: usize,
    /// Connections to the other processes (None: this process alone).
    pub cluster: Option<Connected>,
    /// Record a [`QueryProfile`] (returned in [`QueryStats::profile`]).
    pub profile: bool,
    /// This process's counters, which the caller may watch while the query runs.
    pub metrics: Arc<QueryMetrics>,
}

impl ExecOptions {
    /// One process with `workers` threads.
    pub fn local(workers: usize) -> Self {
        Self { workers, cluster: None, profile: false, metrics: Arc::default() }
    }
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
    /// Compressed bytes of the column chunks scans read.
    pub bytes_read: u64,
    /// Rows delivered to the caller.
    pub rows_out: u64,
    /// Wall time of the dataflow, seconds.
    pub seconds: f64,
    /// Bytes sent between processes (data and progress), summed over all processes.
    pub bytes_sent: u64,
    /// Processes that took part.
    pub processes: usize,
    /// What every worker and process did, for profiled queries.
    pub profile: Option<QueryProfile>,
}

/// Runs `plan` on `options.workers` threads; `on_batch` receives the result batches in
/// order, on the calling thread, while the workers run. An error from `on_batch` stops the
/// query and is returned.
pub fn run_query<R, F>(
    plan: &Plan,
    catalogs: Arc<CatalogSet>,
    renderer: R,
    options: ExecOptions,
    mut on_batch: F,
) -> Result<QueryStats, RunError>
where
    R: Renderer + Send + Sync + 'static,
    F: FnMut(RecordBatch) -> Result<(), RunError>,
{
    let start = Instant::now();
    let shared = QueryShared {
        metrics: options.metrics.clone(),
        ..QueryShared::new(options.cluster.as_ref().map_or_else(Traffic::default, |c| c.traffic.clone()))
    };
    let profile = options.profile;
    let (tx, rx) = mpsc::channel::<RecordBatch>();
    let sender = Arc::new(Mutex::new(Some(tx)));
    let plan = Arc::new(plan.clone());
    let threads = options.workers.max(1);
    let cpus = crate::affinity::worker_cpus(threads, options.cluster.is_none());
    let (builders, others) = communication(threads, options.cluster)?;
    let worker_shared = shared.clone();
    let guards = timely::execute::execute_from(builders, others, WorkerConfig::default(), move |worker| {
        crate::affinity::pin(cpus.as_deref(), worker.index());
        let tx = if worker.index() == 0 { sender.lock().expect("sender lock").take() } else { None };
        let sink = tx.map(|tx| Box::new(move |batch| tx.send(batch).is_ok()) as Box<dyn FnMut(RecordBatch) -> bool>);
        let profiler = profile.then(|| (Profiler::new(worker), start));
        let profiling = profiler.as_ref().map(|(p, start)| (p, *start));
        match install_query(worker, "Query", &plan, &catalogs, &renderer, &worker_shared, threads, sink, profiling) {
            Ok(probe) => {
                while !probe.done() {
                    worker.step_or_park(None);
                }
            }
            Err(e) => worker_shared.errors.record(e),
        }
    })
    .map_err(RunError::Worker)?;

    let mut rows_out = 0u64;
    for batch in rx {
        rows_out += batch.num_rows() as u64;
        if shared.errors.failed() {
            continue;
        }
        if let Err(e) = on_batch(batch) {
            shared.errors.record(e);
        }
    }
    for result in guards.join() {
        result.map_err(|panic| RunError::Worker(format!("a worker panicked: {panic}")))?;
    }
    shared.finish(rows_out, start)
}

/// Builds the timely communication for `threads` workers in this process, connected to the
/// other processes if any.
pub(crate) fn communication(
    threads: usize,
    cluster: Option<Connected>,
) -> Result<(Vec<AllocatorBuilder>, Box<dyn std::any::Any + Send>), RunError> {
    match cluster {
        None => {
            let config = if threads == 1 { CommunicationConfig::Thread } else { CommunicationConfig::Process(threads) };
            config.try_build().map_err(RunError::Worker)
        }
        Some(connected) => {
            install_peer_loss_hook(connected.addresses.clone(), connected.process);
            let hooks = Hooks::default();
            let local = ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), hooks.spill.clone());
            let (builders, guard) =
                initialize_networking_from_sockets(local, connected.streams, connected.process, threads, hooks)
                    .map_err(|e| RunError::Cluster(format!("starting the network threads: {e}")))?;
            Ok((builders.into_iter().map(AllocatorBuilder::Tcp).collect(), Box::new(guard)))
        }
    }
}

/// What the workers of one process share about one query.
#[derive(Clone, Default)]
pub(crate) struct QueryShared {
    pub errors: Arc<QueryErrors>,
    pub metrics: Arc<QueryMetrics>,
    reports: Arc<Mutex<Vec<Report>>>,
    /// Encoded profile [`Part`]s (worker 0).
    profile_parts: Arc<Mutex<Vec<Vec<u8>>>>,
    traffic: Traffic,
    /// Result bytes handed to the client's channel and not yet taken (server queries).
    pub waiting_bytes: Arc<AtomicU64>,
    /// How far this process's workers are through each scan.
    pub scans: Arc<crate::compile::ScanQueues>,
}

impl QueryShared {
    pub fn new(traffic: Traffic) -> Self {
        Self { traffic, ..Self::default() }
    }

    /// After the dataflow is done: the first error of any process, or the summed counters.
    pub fn finish(&self, rows_out: u64, start: Instant) -> Result<QueryStats, RunError> {
        let reports = std::mem::take(&mut *self.reports.lock().expect("reports lock"));
        for r in &reports {
            if let Some(message) = &r.error {
                self.errors.record(RunError::Remote { process: r.process, message: message.clone() });
            }
        }
        if let Some(e) = self.errors.take() {
            return Err(e);
        }
        // A query of one process sends no reports (unless profiled): its counters are here.
        let reports =
            if reports.is_empty() { vec![Report::of(0, None, &self.metrics, &self.traffic)] } else { reports };
        let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
        let parts = std::mem::take(&mut *self.profile_parts.lock().expect("profile lock"));
        Ok(QueryStats {
            partitions_read: sum(|r| r.partitions_read),
            rows_read: sum(|r| r.rows_read),
            rows_matched: sum(|r| r.rows_matched),
            bytes_read: sum(|r| r.bytes_read),
            rows_out,
            seconds: start.elapsed().as_secs_f64(),
            bytes_sent: sum(|r| r.bytes_sent),
            processes: reports.len(),
            profile: (!parts.is_empty()).then(|| Part::merge(&parts)),
        })
    }
}

/// Installs `plan` as a new dataflow on this worker: the rendered operators, the gather to
/// worker 0, `sink` (on worker 0; it returns false once its consumer is gone) and the
/// per-process reports. With a profiler (and the query's start), the worker's operators are
/// logged and its profile joins the reports. Returns the probe that is done when the query is.
#[allow(clippy::too_many_arguments)]
pub(crate) fn install_query<R: Renderer>(
    worker: &mut timely::worker::Worker,
    name: &str,
    plan: &Plan,
    catalogs: &Arc<CatalogSet>,
    renderer: &R,
    shared: &QueryShared,
    threads: usize,
    sink: Option<Box<dyn FnMut(RecordBatch) -> bool>>,
    profiler: Option<(&Profiler, Instant)>,
) -> Result<ProbeHandle<u64>, RunError> {
    let index = worker.index();
    let reporting = index.is_multiple_of(threads);
    let probe = ProbeHandle::new();
    let dataflow = worker.next_dataflow_index();
    let profiling = profiler.map(|(profiler, start)| {
        profiler.logs.borrow_mut().watch(dataflow, start);
        Profiling {
            logger: profiler.attach(worker),
            start_unix_us: (std::time::SystemTime::now() - start.elapsed())
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            profiler: profiler.clone(),
            dataflow,
            sampler: reporting.then(|| Sampler::start(start, shared.traffic.sent.clone())),
            traffic_before: shared.traffic.to_each(),
            nodes: plan_nodes(plan, worker.peers()),
        }
    });
    let _span = tracing::debug_span!("install", dataflow = name, worker = index).entered();
    let worker_peers = worker.peers();
    let installed = worker.dataflow_named::<u64, _, _>(name, |scope| {
        let ctx = RenderContext {
            scope,
            catalogs: catalogs.clone(),
            errors: shared.errors.clone(),
            metrics: shared.metrics.clone(),
            count_nodes: profiling.is_some(),
            gate: None,
            threads,
            scans: shared.scans.clone(),
            scans_rendered: Default::default(),
        };
        let stream = render_plan(renderer, &ctx, plan)?;
        let stream = if plan.is_gathered() { stream } else { gather(stream, "Gather") };
        let errs = shared.errors.clone();
        // The probe follows the consumers, so "done" means every result and report has been
        // handled, not merely sent. A query of one process, not profiled, sends no report:
        // its counters and errors are shared by its workers already (`QueryShared::finish`).
        if worker_peers != threads || profiling.is_some() {
            let reporter = Reporter {
                process: index / threads,
                worker: index,
                reporting,
                errors: errs.clone(),
                metrics: shared.metrics.clone(),
                traffic: shared.traffic.clone(),
                profiling,
            };
            report_stream(stream.clone(), reporter)
                .unary::<CapacityContainerBuilder<Vec<Batch>>, _, _, _>(
                    Exchange::new(|_b: &Batch| 0u64),
                    "ReportSink",
                    |_cap, _info| {
                        let (reps, parts) = (shared.reports.clone(), shared.profile_parts.clone());
                        move |input, _output| {
                            input.for_each(|_cap, data| {
                                for b in data.drain(..) {
                                    match profile_part(&b.data) {
                                        Some(part) => parts.lock().expect("profile lock").push(part),
                                        None => reps.lock().expect("reports lock").extend(Report::from_batch(&b.data)),
                                    }
                                }
                            })
                        }
                    },
                )
                .probe_with(&probe);
        }
        let mut sink = sink;
        stream
            .unary::<CapacityContainerBuilder<Vec<Batch>>, _, _, _>(Pipeline, "Sink", |_cap, _info| {
                move |input, _output| {
                    input.for_each(|_cap, data| {
                        let rows: usize = data.iter().map(Batch::num_rows).sum();
                        let _span = tracing::debug_span!("sink", batches = data.len(), rows).entered();
                        for batch in data.drain(..) {
                            if let Some(send) = sink.as_mut()
                                && !send(batch.data.as_ref().clone())
                            {
                                errs.cancel();
                                sink = None;
                            }
                        }
                    });
                }
            })
            .probe_with(&probe);
        Ok(probe)
    });
    if let Some((profiler, _)) = profiler {
        profiler.detach(worker);
        if installed.is_err() {
            profiler.logs.borrow_mut().take(dataflow, index);
        }
    }
    installed
}

/// What each process reports to worker 0 when the query is done: its first error and its
/// counters.
#[derive(Debug, Clone, Default)]
struct Report {
    process: usize,
    error: Option<String>,
    partitions_read: u64,
    rows_read: u64,
    rows_matched: u64,
    bytes_sent: u64,
    bytes_read: u64,
}

impl Report {
    /// Process `process`'s counters, and its error.
    fn of(process: usize, error: Option<String>, metrics: &QueryMetrics, traffic: &Traffic) -> Self {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Report {
            process,
            error,
            partitions_read: get(&metrics.partitions_read),
            rows_read: get(&metrics.rows_read),
            rows_matched: get(&metrics.rows_matched),
            bytes_sent: get(&traffic.sent),
            bytes_read: get(&metrics.bytes_read),
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("process", DataType::UInt64, false),
            Field::new("error", DataType::Utf8, true),
            Field::new("counters", DataType::UInt64, false),
        ]))
    }

    /// One row per counter; the error rides on the first row.
    fn to_batch(&self) -> RecordBatch {
        let counters = [self.partitions_read, self.rows_read, self.rows_matched, self.bytes_sent, self.bytes_read];
        let n = counters.len();
        let process = UInt64Array::from(vec![self.process as u64; n]);
        let error: StringArray = (0..n).map(|i| if i == 0 { self.error.clone() } else { None }).collect();
        RecordBatch::try_new(
            Self::schema(),
            vec![Arc::new(process), Arc::new(error), Arc::new(UInt64Array::from(counters.to_vec()))],
        )
        .expect("report batch matches its schema")
    }

    fn from_batch(b: &RecordBatch) -> Option<Self> {
        use arrow_array::cast::AsArray;
        let process = b.column(0).as_primitive::<arrow_array::types::UInt64Type>();
        let error = b.column(1).as_string::<i32>();
        let c = b.column(2).as_primitive::<arrow_array::types::UInt64Type>();
        (b.num_rows() == 5).then(|| Report {
            process: process.value(0) as usize,
            error: error.is_valid(0).then(|| error.value(0).to_string()),
            partitions_read: c.value(0),
            rows_read: c.value(1),
            rows_matched: c.value(2),
            bytes_sent: c.value(3),
            bytes_read: c.value(4),
        })
    }
}

/// What the `Report` operator of one worker sends when the query's result is complete.
struct Reporter {
    process: usize,
    worker: usize,
    /// The first worker of its process: it sends the process's counters.
    reporting: bool,
    errors: Arc<QueryErrors>,
    metrics: Arc<QueryMetrics>,
    traffic: Traffic,
    profiling: Option<Profiling>,
}

/// A profiled query on one worker.
struct Profiling {
    profiler: Profiler,
    /// The dataflow's logger (flushed before its log is taken).
    logger: Option<timely::logging::TimelyLogger>,
    /// The query's dataflow index.
    dataflow: usize,
    /// The process's CPU and memory (on its first worker).
    sampler: Option<Sampler>,
    traffic_before: Vec<u64>,
    nodes: Vec<NodeProfile>,
    start_unix_us: u64,
}

impl Reporter {
    /// The batches to send: the process's report, then the profile parts.
    fn batches(&mut self) -> Vec<Batch> {
        let mut out = Vec::new();
        if self.reporting {
            let report = Report::of(self.process, self.errors.peek(), &self.metrics, &self.traffic);
            out.push(Batch::new(report.to_batch(), 0));
        }
        let Some(p) = self.profiling.take() else { return out };
        if let Some(logger) = &p.logger {
            logger.flush();
        }
        let profile = p.profiler.logs.borrow_mut().take(p.dataflow, self.worker);
        out.push(part_batch(&Part::Worker { process: self.process, profile }));
        if let Some(sampler) = p.sampler {
            let samples = sampler.finish();
            let bytes_to: Vec<u64> =
                self.traffic.to_each().iter().zip(&p.traffic_before).map(|(now, before)| now - before).collect();
            let counts = self.metrics.nodes.lock().expect("nodes lock").clone();
            let mut nodes = p.nodes;
            for (node, (rows, batches)) in nodes.iter_mut().zip(counts) {
                node.rows_out = rows;
                node.batches_out = batches;
            }
            let info = crate::system::ProcessInfo::current();
            let profile = ProcessProfile {
                process: self.process,
                host: info.host,
                pid: info.pid as u32,
                workers: Vec::new(),
                samples,
                bytes_sent: bytes_to.iter().sum(),
                bytes_to,
                start_unix_us: p.start_unix_us,
            };
            out.push(part_batch(&Part::Process { profile, nodes }));
        }
        out
    }
}

/// A profile part as a one-row batch (beside the reports on their way to worker 0).
fn part_batch(part: &Part) -> Batch {
    let schema = Arc::new(Schema::new(vec![Field::new(PROFILE_COLUMN, DataType::Binary, false)]));
    let column = arrow_array::BinaryArray::from_vec(vec![part.encode().as_slice()]);
    Batch::new(RecordBatch::try_new(schema, vec![Arc::new(column)]).expect("profile batch matches its schema"), 0)
}

const PROFILE_COLUMN: &str = "profile_part";

/// The encoded part, if `b` is a profile part.
fn profile_part(b: &RecordBatch) -> Option<Vec<u8>> {
    use arrow_array::cast::AsArray;
    (b.schema().field(0).name() == PROFILE_COLUMN && b.num_rows() == 1)
        .then(|| b.column(0).as_binary::<i32>().value(0).to_vec())
}

/// Sends this worker's report (and profile) once `stream` is complete.
fn report_stream<'s>(
    stream: crate::compile::BatchStream<'s>,
    mut reporter: Reporter,
) -> crate::compile::BatchStream<'s> {
    stream.unary_frontier(Pipeline, "Report", move |cap, _info| {
        let mut cap = Some(cap);
        move |(input, frontier), output| {
            input.for_each(|_cap, _data| {});
            if frontier.is_empty()
                && let Some(c) = cap.take()
            {
                let mut session = output.session(&c);
                for batch in reporter.batches() {
                    session.give(batch);
                }
            }
        }
    })
}
