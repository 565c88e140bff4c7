//! A long-running computation that runs many queries: statements planned off the workers are
//! sent to worker 0, which passes them to every worker in one order (across processes timely's
//! `Sequencer`, as differential's `interactive` server does; within one process a channel per
//! worker, which costs no progress rounds), installed as new dataflows in the same order
//! everywhere, and their results streamed back to the submitting client. Workers never block
//! on a client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};
use timely::WorkerConfig;
use timely::communication::WorkerGuards;
use timely::dataflow::ProbeHandle;
use timely::synchronization::Sequencer;

use crate::cluster::{Connected, Traffic};
use crate::compile::{QueryMetrics, Renderer};
use crate::error::RunError;
use crate::plan::Plan;
use crate::profile::Profiler;
use crate::registry::CatalogSet;
use crate::view::feed::{Decision, Fed, Feed, Gate, Gathered};
use crate::view::{InstalledView, Snapshot, ViewKind, ViewRecord, install_view, local_worker, settle};
use crate::worker::{QueryShared, QueryStats, communication, install_query};
use starflow_catalogs::ParquetCatalog;

/// What a client receives about its query.
#[derive(Debug)]
pub enum QueryEvent {
    /// Result rows, in order.
    Batch(RecordBatch),
    /// The query finished (or failed, or was cancelled).
    Done(Result<QueryStats, RunError>),
}

/// Result bytes a query may have waiting for its client before it is cancelled.
const WAITING_LIMIT: u64 = 512 << 20;

/// Steps of worker 0's view computation per turn of its loop while a view is behind (an
/// update takes a few).
const SETTLE_STEPS: usize = 32;

/// What [`QueryHandle::wait_event`] found.
#[derive(Debug)]
pub enum Waited {
    /// An event.
    Event(QueryEvent),
    /// Nothing yet.
    Timeout,
    /// The workers are gone: no event will come.
    Closed,
}

/// Commands every worker sees, in the same order (one per statement: size does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Command {
    /// Run `plan` over these catalogs (as they are at this point of the sequence).
    Run {
        id: u64,
        plan: Plan,
        catalogs: Vec<ParquetCatalog>,
        profile: bool,
    },
    Cancel {
        id: u64,
    },
    Shutdown,
    /// Install a maintained view whose input starts at time `start`.
    CreateView {
        id: u64,
        name: String,
        kind: ViewKind,
        start: u64,
    },
    /// Feed the records worker 0 holds for (view, time) and advance the view to `time + 1`.
    UpdateView {
        id: u64,
        time: u64,
    },
    DropView {
        id: u64,
    },
}

/// Requests from clients to worker 0.
#[allow(clippy::large_enum_variant)]
enum Control {
    Run {
        id: u64,
        plan: Plan,
        catalogs: Vec<ParquetCatalog>,
        profile: bool,
        events: mpsc::Sender<QueryEvent>,
        feed: Option<Feed>,
    },
    Cancel {
        id: u64,
    },
    Shutdown,
    CreateView {
        id: u64,
        name: String,
        kind: ViewKind,
        start: u64,
    },
    UpdateView {
        id: u64,
        time: u64,
        records: Vec<(ViewRecord, isize)>,
        done: mpsc::Sender<()>,
    },
    DropView {
        id: u64,
    },
}

/// A running server (on process 0 it accepts queries; on the others it only serves).
pub struct Server {
    control: mpsc::Sender<Control>,
    /// In a mutex only so that a `Server` can be shared between threads.
    guards: Mutex<Option<WorkerGuards<()>>>,
    next_id: AtomicU64,
    /// Per-process state of each running query, shared by this process's workers.
    queries: Arc<Mutex<HashMap<u64, QueryShared>>>,
    traffic: Traffic,
    /// Worker threads still in their loop.
    live_workers: Arc<AtomicUsize>,
    /// Contents of each view, kept by worker 0.
    snapshots: Arc<Mutex<HashMap<u64, Snapshot>>>,
    /// The thread of this process's first worker, woken when a request arrives.
    waker: Waker,
    /// Worker threads of this process.
    threads: usize,
}

/// Wakes this process's workers when a request arrives (they park between steps): the one
/// that reads the control channel, and the others, which the request's sequenced command
/// will reach a moment later (a parked worker would otherwise notice it only at the end of
/// its park).
#[derive(Clone, Default)]
struct Waker(Arc<Mutex<Vec<std::thread::Thread>>>);

impl Waker {
    fn send(&self, control: &mpsc::Sender<Control>, request: Control) {
        let _ = control.send(request);
        self.wake_all();
    }

    fn wake_all(&self) {
        for t in self.0.lock().expect("waker lock").iter() {
            t.unpark();
        }
    }
}

/// How commands reach every worker, in one order.
enum Commands {
    /// Across processes: timely's sequencer (a command is delivered once every worker's
    /// clock has passed the time it was sent at: a few progress rounds between workers).
    Sequenced(Sequencer<Command>),
    /// Within one process: the first worker sends each command to every worker's channel,
    /// and wakes them.
    Local { inbox: mpsc::Receiver<Command>, outboxes: Vec<mpsc::Sender<Command>>, waker: Waker },
}

impl Commands {
    fn push(&mut self, command: Command) {
        match self {
            Self::Sequenced(sequencer) => sequencer.push(command),
            Self::Local { outboxes, waker, .. } => {
                for outbox in outboxes.iter() {
                    let _ = outbox.send(command.clone());
                }
                waker.wake_all();
            }
        }
    }
}

impl Iterator for Commands {
    type Item = Command;

    fn next(&mut self) -> Option<Command> {
        match self {
            Self::Sequenced(sequencer) => sequencer.next(),
            Self::Local { inbox, .. } => inbox.try_recv().ok(),
        }
    }
}

/// One submitted query: its events, its progress, and a way to cancel it.
pub struct QueryHandle {
    /// The query's id.
    pub id: u64,
    events: mpsc::Receiver<QueryEvent>,
    control: mpsc::Sender<Control>,
    metrics: Arc<QueryMetrics>,
    waiting: Arc<AtomicU64>,
}

/// How far a running query got on this process (process 0: where the client is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Partitions opened by scans.
    pub partitions_read: u64,
    /// Rows decoded by scans.
    pub rows_read: u64,
    /// Rows that passed the scan predicates.
    pub rows_matched: u64,
    /// Compressed bytes read by scans.
    pub bytes_read: u64,
}

impl QueryHandle {
    fn taken(&self, event: QueryEvent) -> QueryEvent {
        if let QueryEvent::Batch(b) = &event {
            self.waiting.fetch_sub(b.get_array_memory_size() as u64, Ordering::Relaxed);
        }
        event
    }

    /// The next event; `None` only if the server went away.
    pub fn next_event(&self) -> Option<QueryEvent> {
        self.events.recv().ok().map(|e| self.taken(e))
    }

    /// The next event if one arrives within `timeout`.
    pub fn next_event_timeout(&self, timeout: Duration) -> Option<QueryEvent> {
        self.events.recv_timeout(timeout).ok().map(|e| self.taken(e))
    }

    /// The next event, or why there is none within `timeout`.
    pub fn wait_event(&self, timeout: Duration) -> Waited {
        match self.events.recv_timeout(timeout) {
            Ok(event) => Waited::Event(self.taken(event)),
            Err(mpsc::RecvTimeoutError::Timeout) => Waited::Timeout,
            Err(mpsc::RecvTimeoutError::Disconnected) => Waited::Closed,
        }
    }

    /// Asks the workers to stop this query; it ends with a `Done(Err(Cancelled))`.
    pub fn cancel(&self) {
        let _ = self.control.send(Control::Cancel { id: self.id });
    }

    /// What this process's workers have done for the query so far.
    pub fn progress(&self) -> Progress {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Progress {
            partitions_read: get(&self.metrics.partitions_read),
            rows_read: get(&self.metrics.rows_read),
            rows_matched: get(&self.metrics.rows_matched),
            bytes_read: get(&self.metrics.bytes_read),
        }
    }

    /// A second way to cancel this query, usable from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller { id: self.id, control: self.control.clone() }
    }
}

/// Cancels one query (cloneable, sendable).
#[derive(Clone)]
pub struct Canceller {
    id: u64,
    control: mpsc::Sender<Control>,
}

impl Canceller {
    /// Asks the workers to stop the query.
    pub fn cancel(&self) {
        let _ = self.control.send(Control::Cancel { id: self.id });
    }
}

/// One query installed on one worker.
struct Running {
    dataflow: usize,
    probe: ProbeHandle<u64>,
    shared: QueryShared,
    started: Instant,
    rows_out: Arc<AtomicU64>,
}

impl Server {
    /// Starts `workers` threads (connected to the other processes if `cluster` is given).
    pub fn start<R>(workers: usize, cluster: Option<Connected>, renderer: R) -> Result<Self, RunError>
    where
        R: Renderer + Send + Sync + 'static,
    {
        let threads = workers.max(1);
        let traffic = cluster.as_ref().map_or_else(Traffic::default, |c| c.traffic.clone());
        let cpus = crate::affinity::worker_cpus(threads, cluster.is_none());
        // One process: commands go straight to each worker's channel (no sequencer rounds).
        let (outboxes, inboxes): (Vec<_>, Vec<_>) =
            if cluster.is_none() { (0..threads).map(|_| mpsc::channel::<Command>()).unzip() } else { (vec![], vec![]) };
        let inboxes: Arc<Mutex<Vec<Option<mpsc::Receiver<Command>>>>> =
            Arc::new(Mutex::new(inboxes.into_iter().map(Some).collect()));
        let (builders, others) = communication(threads, cluster)?;
        let (control, receiver) = mpsc::channel::<Control>();
        let receiver = Arc::new(Mutex::new(Some(receiver)));
        let queries: Arc<Mutex<HashMap<u64, QueryShared>>> = Arc::default();
        let live_workers = Arc::new(AtomicUsize::new(threads));
        let snapshots: Arc<Mutex<HashMap<u64, Snapshot>>> = Arc::default();
        let (server_queries, server_bytes, server_live) = (queries.clone(), traffic.clone(), live_workers.clone());
        let server_snapshots = snapshots.clone();
        let waker = Waker::default();
        let worker_waker = waker.clone();
        crate::system::process_started();
        // One clock for every worker's sequencer: a command is delivered once every worker's
        // sequencer clock has passed the time it was sent at, so workers whose clocks started
        // later would hold every command back by the difference.
        let epoch = Instant::now();
        let guards = timely::execute::execute_from(builders, others, WorkerConfig::default(), move |worker| {
            // The first worker of each process takes the control channel: on process 0 (whose
            // first worker, worker 0, is where results gather) it carries the clients'
            // requests, on the others only a shutdown (SIGTERM).
            // Counts this worker out however it leaves its loop (a panic included), so the
            // process notices a dead worker.
            struct Leaving(Arc<AtomicUsize>);
            impl Drop for Leaving {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let _leaving = Leaving(live_workers.clone());
            crate::affinity::pin(cpus.as_deref(), worker.index());
            let control =
                if worker.index() % threads == 0 { receiver.lock().expect("control lock").take() } else { None };
            worker_waker.0.lock().expect("waker lock").push(std::thread::current());
            let inbox = inboxes.lock().expect("inboxes lock").get_mut(worker.index()).and_then(Option::take);
            let mut sequencer = match inbox {
                Some(inbox) => Commands::Local {
                    inbox,
                    outboxes: if control.is_some() { outboxes.clone() } else { vec![] },
                    waker: worker_waker.clone(),
                },
                None => Commands::Sequenced(Sequencer::new(worker, epoch)),
            };
            // Queries submitted with `profile` log their operators' schedules (for `REPORT`).
            let profiler = Profiler::new(worker);
            let mut clients: HashMap<u64, mpsc::Sender<QueryEvent>> = HashMap::new();
            // Worker 0: queries whose results feed views (and the batches they gathered), and
            // the fed ones waiting for their views before they report `Done`.
            let mut feeds: HashMap<u64, (Feed, Gathered)> = HashMap::new();
            let mut fed: Vec<(Fed, QueryStats, mpsc::Sender<QueryEvent>)> = Vec::new();
            // Worker 0: feeding queries that ended, waiting for their gate.
            let mut held: Vec<(Feed, Vec<RecordBatch>, QueryStats, mpsc::Sender<QueryEvent>)> = Vec::new();
            let mut running: HashMap<u64, Running> = HashMap::new();
            let mut views: HashMap<u64, InstalledView> = HashMap::new();
            // Worker 0: the computation of the views on worker 0 alone.
            let mut local = (worker.index() == 0).then(local_worker);
            // Worker 0: records to feed, and who waits for a view to reach a time.
            let mut pending: HashMap<(u64, u64), Vec<(ViewRecord, isize)>> = HashMap::new();
            let mut waiting: Vec<(u64, u64, mpsc::Sender<()>)> = Vec::new();
            let mut dropped: std::collections::HashSet<u64> = Default::default();
            let mut shutting_down = false;
            loop {
                if let Some(control) = &control {
                    while let Ok(request) = control.try_recv() {
                        match request {
                            Control::Run { id, events, .. } if shutting_down => {
                                let _ = events.send(QueryEvent::Done(Err(RunError::ShuttingDown)));
                                queries.lock().expect("queries lock").remove(&id);
                            }
                            Control::Run { id, plan, catalogs, profile, events, feed } => {
                                clients.insert(id, events);
                                if let Some(feed) = feed {
                                    feeds.insert(id, (feed, Gathered::default()));
                                }
                                sequencer.push(Command::Run { id, plan, catalogs, profile });
                            }
                            Control::Cancel { id } => sequencer.push(Command::Cancel { id }),
                            Control::Shutdown => sequencer.push(Command::Shutdown),
                            Control::CreateView { id, name, kind, start } => {
                                sequencer.push(Command::CreateView { id, name, kind, start })
                            }
                            Control::UpdateView { id, time, records, done } => {
                                pending.insert((id, time), records);
                                waiting.push((id, time, done));
                                sequencer.push(Command::UpdateView { id, time });
                            }
                            Control::DropView { id } => sequencer.push(Command::DropView { id }),
                        }
                    }
                }
                for command in sequencer.by_ref() {
                    match command {
                        // Every worker sees the same order, so every worker refuses the same
                        // queries sequenced after a shutdown.
                        Command::Run { id, .. } if shutting_down => {
                            queries.lock().expect("queries lock").remove(&id);
                            feeds.remove(&id);
                            if let Some(tx) = clients.remove(&id) {
                                let _ = tx.send(QueryEvent::Done(Err(RunError::ShuttingDown)));
                            }
                        }
                        Command::Run { id, plan, catalogs, profile } => {
                            let catalogs = Arc::new(catalogs.into_iter().collect::<CatalogSet>());
                            let shared = queries
                                .lock()
                                .expect("queries lock")
                                .entry(id)
                                .or_insert_with(|| QueryShared::new(traffic.clone()))
                                .clone();
                            let rows_out = Arc::new(AtomicU64::new(0));
                            let gathered = feeds.get(&id).map(|(_, batches)| batches.clone());
                            let sink = clients.get(&id).cloned().map(|tx| {
                                let rows = rows_out.clone();
                                if let Some(gathered) = gathered {
                                    // A feeding query's rows stay here, for its views.
                                    return Box::new(move |batch: RecordBatch| {
                                        rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                                        gathered.borrow_mut().push(batch);
                                        true
                                    })
                                        as Box<dyn FnMut(RecordBatch) -> bool>;
                                }
                                let (waiting, errors) = (shared.waiting_bytes.clone(), shared.errors.clone());
                                Box::new(move |batch: RecordBatch| {
                                    rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                                    // Workers never wait for a client; a client that falls too far
                                    // behind loses its query instead of the server its memory.
                                    let size = batch.get_array_memory_size() as u64;
                                    if waiting.fetch_add(size, Ordering::Relaxed) + size > WAITING_LIMIT {
                                        errors.record(RunError::SlowClient(WAITING_LIMIT >> 20));
                                        return false;
                                    }
                                    tx.send(QueryEvent::Batch(batch)).is_ok()
                                }) as Box<dyn FnMut(RecordBatch) -> bool>
                            });
                            let dataflow = worker.next_dataflow_index();
                            let name = format!("Query {id}");
                            let started = Instant::now();
                            let profiling = profile.then_some((&profiler, started));
                            match install_query(
                                worker, &name, &plan, &catalogs, &renderer, &shared, threads, sink, profiling,
                            ) {
                                Ok(probe) => {
                                    running.insert(id, Running { dataflow, probe, shared, started, rows_out });
                                }
                                Err(e) => {
                                    queries.lock().expect("queries lock").remove(&id);
                                    feeds.remove(&id);
                                    if let Some(tx) = clients.remove(&id) {
                                        let _ = tx.send(QueryEvent::Done(Err(e)));
                                    }
                                }
                            }
                        }
                        Command::Cancel { id } => {
                            if let Some(r) = running.get(&id) {
                                r.shared.errors.record(RunError::Cancelled);
                            }
                        }
                        Command::CreateView { id, name, kind, start } => {
                            let snapshot =
                                snapshots.lock().expect("snapshots lock").get(&id).cloned().unwrap_or_default();
                            // A view on worker 0 alone is in worker 0's own computation,
                            // and on no other worker.
                            match (&mut local, kind.on_first_worker()) {
                                (Some(local), true) => {
                                    views.insert(id, install_view(local, &name, &kind, start, snapshot));
                                }
                                (None, true) => {}
                                (_, false) => {
                                    views.insert(id, install_view(worker, &name, &kind, start, snapshot));
                                }
                            }
                        }
                        Command::UpdateView { id, time } => {
                            if let Some(view) = views.get_mut(&id) {
                                view.update(time, pending.remove(&(id, time)).unwrap_or_default());
                            }
                        }
                        Command::DropView { id } => {
                            match (views.remove(&id), &mut local) {
                                (Some(view), Some(local)) if view.local => local.drop_dataflow(view.dataflow),
                                (Some(view), _) => worker.drop_dataflow(view.dataflow),
                                (None, _) => {}
                            }
                            dropped.insert(id);
                            snapshots.lock().expect("snapshots lock").remove(&id);
                        }
                        Command::Shutdown => {
                            shutting_down = true;
                            for r in running.values() {
                                r.shared.errors.record(RunError::ShuttingDown);
                            }
                        }
                    }
                }
                let done: Vec<u64> = running.iter().filter(|(_, r)| r.probe.done()).map(|(id, _)| *id).collect();
                for id in done {
                    let r = running.remove(&id).expect("running query");
                    tracing::debug!(id, "query done");
                    worker.drop_dataflow(r.dataflow);
                    queries.lock().expect("queries lock").remove(&id);
                    if let Some(tx) = clients.remove(&id) {
                        let stats = r.shared.finish(r.rows_out.load(Ordering::Relaxed), r.started);
                        // A feeding query that succeeded changes its views now, and reports
                        // `Done` once they reflect it.
                        let stats = match (stats, feeds.remove(&id)) {
                            (Ok(stats), Some((feed, batches))) => {
                                held.push((feed, batches.take(), stats, tx));
                                continue;
                            }
                            (stats, _) => stats,
                        };
                        let _ = tx.send(QueryEvent::Done(stats));
                    }
                }
                // Feeding queries that ended: their views change once their gate opens.
                for (feed, batches, stats, tx) in std::mem::take(&mut held) {
                    let outcome = match feed.gate.state() {
                        None => {
                            held.push((feed, batches, stats, tx));
                            continue;
                        }
                        Some(false) => Err(RunError::Cancelled),
                        Some(true) => tracing::debug_span!("feed").in_scope(|| feed.apply(batches, &mut views)),
                    };
                    match outcome {
                        Ok(applied) => fed.push((applied, stats, tx)),
                        Err(e) => {
                            let _ = tx.send(QueryEvent::Done(Err(e)));
                        }
                    }
                }
                if let Some(local) = &mut local {
                    settle(local, &views, SETTLE_STEPS);
                }
                fed.retain_mut(|(applied, stats, tx)| {
                    let reached = applied.reached(&views, &dropped);
                    if reached {
                        tracing::debug!("views fed");
                        let _ = tx.send(QueryEvent::Done(Ok(stats.clone())));
                    }
                    !reached
                });
                // Tell whoever waits that a view reflects a time (or is gone).
                waiting.retain(|(id, time, done)| {
                    // A view not installed yet has not reached anything; a dropped one never will.
                    let reached = views.get(id).map_or(dropped.contains(id), |v| !v.probe.less_equal(time));
                    if reached {
                        let _ = done.send(());
                    }
                    !reached
                });
                if shutting_down && running.is_empty() {
                    break;
                }
                // Parked workers wake for network data; worker 0 also polls its clients. While
                // a view is being updated, worker 0 does not park: the statement thread waits
                // for it, and a parked worker takes about a tenth of a millisecond to wake.
                let updating = !fed.is_empty() || !waiting.is_empty();
                if updating {
                    worker.step();
                } else {
                    worker.step_or_park(Some(if running.is_empty() {
                        Duration::from_millis(2)
                    } else {
                        Duration::from_micros(100)
                    }));
                }
                // A worker with queries or view updates yields its core between steps, so that
                // a thread waiting for that core gets it: with as many busy workers as cores, a
                // statement thread (an ingest's manifest sync) or the kernel's I/O completion
                // otherwise waits for the scheduler's tick (4 ms at HZ=250).
                if updating || !running.is_empty() {
                    std::thread::yield_now();
                }
            }
        })
        .map_err(RunError::Worker)?;
        Ok(Self {
            control,
            guards: Mutex::new(Some(guards)),
            next_id: AtomicU64::new(1),
            queries: server_queries,
            traffic: server_bytes,
            live_workers: server_live,
            snapshots: server_snapshots,
            waker,
            threads,
        })
    }

    /// Submits a planned query over `catalogs` (on process 0); its events arrive on the handle.
    pub fn submit(&self, plan: Plan, catalogs: &CatalogSet) -> QueryHandle {
        self.submit_with(plan, catalogs, false)
    }

    /// Like [`Server::submit`], and the query's `Done` stats carry its profile.
    pub fn submit_profiled(&self, plan: Plan, catalogs: &CatalogSet) -> QueryHandle {
        self.submit_with(plan, catalogs, true)
    }

    /// Like [`Server::submit`], for a view's contribution query: if it succeeds, worker 0
    /// makes its rows into records and applies `feed`'s updates itself, then the records
    /// arrive on the feed's channel and the handle gets `Done` (no `Batch` events). Every
    /// view it names must be on worker 0 alone ([`ViewKind::on_first_worker`]). If it fails,
    /// no view changes.
    pub fn submit_feeding(&self, plan: Plan, catalogs: &CatalogSet, feed: Feed) -> QueryHandle {
        self.submit_inner(plan, catalogs, false, Some(feed))
    }

    fn submit_with(&self, plan: Plan, catalogs: &CatalogSet, profile: bool) -> QueryHandle {
        self.submit_inner(plan, catalogs, profile, None)
    }

    fn submit_inner(&self, plan: Plan, catalogs: &CatalogSet, profile: bool, feed: Option<Feed>) -> QueryHandle {
        let catalogs = catalogs.of_plan(&plan);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = QueryShared::new(self.traffic.clone());
        let (metrics, waiting) = (shared.metrics.clone(), shared.waiting_bytes.clone());
        self.queries.lock().expect("queries lock").insert(id, shared);
        let (events, receiver) = mpsc::channel();
        self.waker.send(&self.control, Control::Run { id, plan, catalogs, profile, events, feed });
        QueryHandle { id, events: receiver, control: self.control.clone(), metrics, waiting }
    }

    /// A gate for a feeding query ([`Feed::gate`]) and the decision that opens or shuts it.
    pub fn gate(&self) -> (Gate, Decision) {
        let waker = self.waker.clone();
        Gate::pending(Box::new(move || waker.wake_all()))
    }

    /// Installs a maintained view on every worker, its input starting at time `start`;
    /// returns its id and its contents (kept current by worker 0).
    pub fn create_view(&self, name: &str, kind: ViewKind, start: u64) -> (u64, Snapshot) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let snapshot = Snapshot::default();
        self.snapshots.lock().expect("snapshots lock").insert(id, snapshot.clone());
        self.waker.send(&self.control, Control::CreateView { id, name: format!("View {name}"), kind, start });
        (id, snapshot)
    }

    /// Feeds `records` to view `id` at `time` and advances it past `time`; the receiver gets
    /// a message once the view's contents reflect it.
    pub fn update_view(&self, id: u64, time: u64, records: Vec<(ViewRecord, isize)>) -> mpsc::Receiver<()> {
        let (done, receiver) = mpsc::channel();
        self.waker.send(&self.control, Control::UpdateView { id, time, records, done });
        receiver
    }

    /// Removes view `id` from every worker.
    pub fn drop_view(&self, id: u64) {
        self.waker.send(&self.control, Control::DropView { id });
    }

    /// Asks every process to stop (sequenced like a query): running queries end with
    /// [`RunError::ShuttingDown`], then the workers leave. Does not wait; see [`Server::join`].
    pub fn request_shutdown(&self) {
        self.waker.send(&self.control, Control::Shutdown);
    }

    /// True once every worker of this process has left (after a shutdown from any process).
    pub fn is_finished(&self) -> bool {
        self.live_workers.load(Ordering::SeqCst) == 0
    }

    /// True once any worker of this process has left its loop (a shutdown, or a panic).
    pub fn lost_a_worker(&self) -> bool {
        self.live_workers.load(Ordering::SeqCst) < self.threads
    }

    /// Stops accepting work, lets running queries finish, and waits for the workers.
    pub fn shutdown(self) -> Result<(), RunError> {
        self.waker.send(&self.control, Control::Shutdown);
        self.join()
    }

    /// Waits for the workers to end (after a shutdown, here or sequenced from process 0).
    pub fn join(&self) -> Result<(), RunError> {
        let guards = self.guards.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(guards) = guards {
            for result in guards.join() {
                result.map_err(|panic| RunError::Worker(format!("a worker panicked: {panic}")))?;
            }
        }
        Ok(())
    }
}
