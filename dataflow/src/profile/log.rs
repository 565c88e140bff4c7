//! One worker's share of query profiles, from timely's "timely" log: operators (`Operates`),
//! their schedules (`Schedule` start/stop) and the batches on each channel (`Messages`).
//! One logger per worker serves every profiled dataflow on it (a server runs several at
//! once); events of other dataflows are dropped at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};

use super::{OperatorProfile, WorkerProfile};

/// Most spans kept per worker and query (a task stream of more is not readable anyway).
pub const MAX_SPANS: usize = 20_000;

/// Runs of one operator separated by less than this are drawn as one span, µs.
const MERGE_GAP_US: u64 = 5;

/// The profiled dataflows of one worker.
pub(crate) struct Logs {
    /// Watched dataflows, by dataflow index.
    watched: HashMap<usize, DataflowLog>,
    /// Operator id → dataflow index, for watched dataflows.
    operators: HashMap<usize, usize>,
    /// Channel id → dataflow index, for watched dataflows.
    channels: HashMap<usize, usize>,
    /// The worker's log clock started at this instant.
    timer: Instant,
}

/// What the logger has seen of one dataflow.
#[derive(Default)]
struct DataflowLog {
    operators: Vec<OperatorProfile>,
    /// Timely's operator id → index into `operators`.
    by_id: HashMap<usize, usize>,
    /// Address → index into `operators`.
    by_address: HashMap<Vec<usize>, usize>,
    /// Channel id → (source address, target address).
    channels: HashMap<usize, (Vec<usize>, Vec<usize>)>,
    /// Operators started and not stopped yet: (index, start µs).
    running: Vec<(usize, u64)>,
    spans: Vec<(u32, u64, u64)>,
    spans_dropped: u64,
    /// Log time of the query's start, µs (spans count from there).
    start_us: i64,
}

impl Logs {
    /// Watches dataflow `index` (before it is built: operators are logged as they are made);
    /// its times count from `start`.
    pub fn watch(&mut self, index: usize, start: Instant) {
        let start_us = if start >= self.timer {
            (start - self.timer).as_micros() as i64
        } else {
            -((self.timer - start).as_micros() as i64)
        };
        self.watched.insert(index, DataflowLog { start_us, ..Default::default() });
    }

    /// Stops watching dataflow `index` and returns what this worker did for it.
    pub fn take(&mut self, index: usize, worker: usize) -> WorkerProfile {
        self.operators.retain(|_, d| *d != index);
        self.channels.retain(|_, d| *d != index);
        let log = self.watched.remove(&index).unwrap_or_default();
        WorkerProfile { worker, operators: log.operators, spans: log.spans, spans_dropped: log.spans_dropped }
    }

    fn record(&mut self, at: Duration, event: TimelyEvent) {
        let at = at.as_micros() as i64;
        match event {
            TimelyEvent::Operates(op) => {
                let Some(log) = op.addr.first().and_then(|d| self.watched.get_mut(d)) else { return };
                self.operators.insert(op.id, op.addr[0]);
                let i = log.operators.len();
                log.by_id.insert(op.id, i);
                log.by_address.insert(op.addr.clone(), i);
                log.operators.push(OperatorProfile { name: op.name, address: op.addr, ..Default::default() });
            }
            TimelyEvent::Channels(c) => {
                let Some(log) = c.scope_addr.first().and_then(|d| self.watched.get_mut(d)) else { return };
                self.channels.insert(c.id, c.scope_addr[0]);
                let at = |port_op: usize| {
                    let mut a = c.scope_addr.clone();
                    a.push(port_op);
                    a
                };
                log.channels.insert(c.id, (at(c.source.0), at(c.target.0)));
            }
            TimelyEvent::Messages(m) => {
                let Some(log) = self.channels.get(&m.channel).and_then(|d| self.watched.get_mut(d)) else { return };
                let Some((source, target)) = log.channels.get(&m.channel) else { return };
                let address = if m.is_send { source } else { target };
                if let Some(&i) = log.by_address.get(address) {
                    let op = &mut log.operators[i];
                    let n = m.record_count.max(0) as u64;
                    if m.is_send { op.batches_out += n } else { op.batches_in += n }
                }
            }
            TimelyEvent::Schedule(s) => {
                let Some(log) = self.operators.get(&s.id).and_then(|d| self.watched.get_mut(d)) else { return };
                let Some(&i) = log.by_id.get(&s.id) else { return };
                let t = (at - log.start_us).max(0) as u64;
                match s.start_stop {
                    StartStop::Start => log.running.push((i, t)),
                    StartStop::Stop => {
                        let Some(pos) = log.running.iter().rposition(|(j, _)| *j == i) else { return };
                        let (_, start) = log.running.remove(pos);
                        let op = &mut log.operators[i];
                        op.busy_us += t.saturating_sub(start);
                        op.activations += 1;
                        // The dataflow itself (a scope) encloses its operators: not a span.
                        if op.address.len() > 1 {
                            log.span(i as u32, start, t);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl DataflowLog {
    fn span(&mut self, op: u32, start: u64, end: u64) {
        if let Some(last) = self.spans.last_mut()
            && last.0 == op
            && start <= last.2 + MERGE_GAP_US
        {
            last.2 = last.2.max(end);
            return;
        }
        if self.spans.len() >= MAX_SPANS {
            self.spans_dropped += 1;
            return;
        }
        self.spans.push((op, start, end));
    }
}

/// A worker's logs of its profiled dataflows.
///
/// A profiled dataflow is built while a "timely" logger is registered, so its operators and
/// channels log into [`Logs`]; the logger is unregistered right after, so other dataflows and
/// the worker's own events (parking) are never logged.
#[derive(Clone)]
pub(crate) struct Profiler {
    /// The dataflows being profiled.
    pub logs: Rc<RefCell<Logs>>,
}

impl Profiler {
    /// The profiler of this worker (its log clock is the worker's).
    pub fn new(worker: &timely::worker::Worker) -> Self {
        let timer = worker.timer().unwrap_or_else(Instant::now);
        let logs = Logs { watched: HashMap::new(), operators: HashMap::new(), channels: HashMap::new(), timer };
        Self { logs: Rc::new(RefCell::new(logs)) }
    }

    /// Registers a logger for the dataflow about to be built; returns it (to flush).
    pub fn attach(&self, worker: &mut timely::worker::Worker) -> Option<timely::logging::TimelyLogger> {
        let sink = self.logs.clone();
        let mut registry = worker.log_register()?;
        registry.insert::<TimelyEventBuilder, _>("timely", move |_time, data| {
            if let Some(events) = data {
                let mut logs = sink.borrow_mut();
                for (at, event) in events.drain(..) {
                    logs.record(at, event);
                }
            }
        });
        drop(registry);
        worker.logger_for::<TimelyEventBuilder>("timely").map(Into::into)
    }

    /// Unregisters the logger once the dataflow is built (it keeps its own handle).
    pub fn detach(&self, worker: &mut timely::worker::Worker) {
        if let Some(mut registry) = worker.log_register() {
            registry.remove("timely");
        }
    }
}
