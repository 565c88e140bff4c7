//! A long-running computation that runs many queries: statements planned off the workers are
//! sent to worker 0, sequenced to every worker (timely's `Sequencer`, as differential's
//! `interactive` server does), installed as new dataflows in the same order everywhere, and
//! their results streamed back to the submitting client. Workers never block on a client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};
use timely::WorkerConfig;
use timely::communication::WorkerGuards;
use timely::dataflow::ProbeHandle;
use timely::synchronization::Sequencer;

use crate::cluster::Connected;
use crate::compile::Renderer;
use crate::error::RunError;
use crate::plan::Plan;
use crate::registry::CatalogSet;
use crate::worker::{QueryShared, QueryStats, communication, install_query};

/// What a client receives about its query.
#[derive(Debug)]
pub enum QueryEvent {
    /// Result rows, in order.
    Batch(RecordBatch),
    /// The query finished (or failed, or was cancelled).
    Done(Result<QueryStats, RunError>),
}

/// Commands every worker sees, in the same order.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Command {
    Run { id: u64, plan: Plan },
    Cancel { id: u64 },
    Shutdown,
}

/// Requests from clients to worker 0.
enum Control {
    Run { id: u64, plan: Plan, events: mpsc::Sender<QueryEvent> },
    Cancel { id: u64 },
    Shutdown,
}

/// A running server (on process 0 it accepts queries; on the others it only serves).
pub struct Server {
    control: mpsc::Sender<Control>,
    guards: Option<WorkerGuards<()>>,
    next_id: AtomicU64,
}

/// One submitted query: its events, and a way to cancel it.
pub struct QueryHandle {
    /// The query's id.
    pub id: u64,
    events: mpsc::Receiver<QueryEvent>,
    control: mpsc::Sender<Control>,
}

impl QueryHandle {
    /// The next event; `None` only if the server went away.
    pub fn next_event(&self) -> Option<QueryEvent> {
        self.events.recv().ok()
    }

    /// The next event if one arrives within `timeout`.
    pub fn next_event_timeout(&self, timeout: Duration) -> Option<QueryEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Asks the workers to stop this query; it ends with a `Done(Err(Cancelled))`.
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
    pub fn start<R>(
        workers: usize,
        cluster: Option<Connected>,
        catalogs: Arc<CatalogSet>,
        renderer: R,
    ) -> Result<Self, RunError>
    where
        R: Renderer + Send + Sync + 'static,
    {
        let threads = workers.max(1);
        let bytes_sent = cluster.as_ref().map_or_else(Arc::default, |c| c.bytes_sent.clone());
        let (builders, others) = communication(threads, cluster)?;
        let (control, receiver) = mpsc::channel::<Control>();
        let receiver = Arc::new(Mutex::new(Some(receiver)));
        // Per-process state of each running query, shared by this process's workers.
        let queries: Arc<Mutex<HashMap<u64, QueryShared>>> = Arc::default();
        let guards = timely::execute::execute_from(builders, others, WorkerConfig::default(), move |worker| {
            let index = worker.index();
            let control = if index == 0 { receiver.lock().expect("control lock").take() } else { None };
            let mut sequencer: Sequencer<Command> = Sequencer::new(worker, Instant::now());
            let mut clients: HashMap<u64, mpsc::Sender<QueryEvent>> = HashMap::new();
            let mut running: HashMap<u64, Running> = HashMap::new();
            let mut shutting_down = false;
            loop {
                if let Some(control) = &control {
                    while let Ok(request) = control.try_recv() {
                        match request {
                            Control::Run { id, plan, events } => {
                                clients.insert(id, events);
                                sequencer.push(Command::Run { id, plan });
                            }
                            Control::Cancel { id } => sequencer.push(Command::Cancel { id }),
                            Control::Shutdown => sequencer.push(Command::Shutdown),
                        }
                    }
                }
                while let Some(command) = sequencer.next() {
                    match command {
                        Command::Run { id, plan } => {
                            let shared = queries
                                .lock()
                                .expect("queries lock")
                                .entry(id)
                                .or_insert_with(|| QueryShared::new(bytes_sent.clone()))
                                .clone();
                            let rows_out = Arc::new(AtomicU64::new(0));
                            let sink = clients.get(&id).cloned().map(|tx| {
                                let rows = rows_out.clone();
                                Box::new(move |batch: RecordBatch| {
                                    rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                                    tx.send(QueryEvent::Batch(batch)).is_ok()
                                }) as Box<dyn FnMut(RecordBatch) -> bool>
                            });
                            let dataflow = worker.next_dataflow_index();
                            let name = format!("Query {id}");
                            match install_query(worker, &name, &plan, &catalogs, &renderer, &shared, threads, sink) {
                                Ok(probe) => {
                                    running.insert(
                                        id,
                                        Running { dataflow, probe, shared, started: Instant::now(), rows_out },
                                    );
                                }
                                Err(e) => {
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
                        Command::Shutdown => shutting_down = true,
                    }
                }
                let done: Vec<u64> = running.iter().filter(|(_, r)| r.probe.done()).map(|(id, _)| *id).collect();
                for id in done {
                    let r = running.remove(&id).expect("running query");
                    worker.drop_dataflow(r.dataflow);
                    queries.lock().expect("queries lock").remove(&id);
                    if let Some(tx) = clients.remove(&id) {
                        let stats = r.shared.finish(r.rows_out.load(Ordering::Relaxed), r.started);
                        let _ = tx.send(QueryEvent::Done(stats));
                    }
                }
                if shutting_down && running.is_empty() {
                    break;
                }
                // Parked workers wake for network data; worker 0 also polls its clients.
                worker.step_or_park(Some(Duration::from_millis(2)));
            }
        })
        .map_err(RunError::Worker)?;
        Ok(Self { control, guards: Some(guards), next_id: AtomicU64::new(1) })
    }

    /// Submits a planned query (on process 0); its events arrive on the handle.
    pub fn submit(&self, plan: Plan) -> QueryHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (events, receiver) = mpsc::channel();
        let _ = self.control.send(Control::Run { id, plan, events });
        QueryHandle { id, events: receiver, control: self.control.clone() }
    }

    /// Stops accepting work, lets running queries finish, and waits for the workers.
    pub fn shutdown(mut self) -> Result<(), RunError> {
        let _ = self.control.send(Control::Shutdown);
        self.join()
    }

    /// Waits for the workers to end (after a shutdown, here or sequenced from process 0).
    pub fn join(&mut self) -> Result<(), RunError> {
        if let Some(guards) = self.guards.take() {
            for result in guards.join() {
                result.map_err(|panic| RunError::Worker(format!("a worker panicked: {panic}")))?;
            }
        }
        Ok(())
    }
}
