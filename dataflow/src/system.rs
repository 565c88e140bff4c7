//! The `Workers` system table (`SHOW WORKERS`): one row per process — its rank, host, pid,
//! worker threads, resident and peak memory, CPU time and uptime — measured by the process
//! itself when the query runs and gathered on worker 0.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arrow_array::{Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::generic::operator::source;

use crate::batch::Batch;
use crate::compile::{BatchStream, RenderContext};

/// The schema of `SHOW WORKERS`.
pub fn workers_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("process", DataType::UInt64, false),
                Field::new("host", DataType::Utf8, false),
                Field::new("pid", DataType::UInt64, false),
                Field::new("threads", DataType::UInt64, false),
                Field::new("rss_mib", DataType::Float64, false),
                Field::new("peak_rss_mib", DataType::Float64, false),
                Field::new("cpu_seconds", DataType::Float64, false),
                Field::new("uptime_seconds", DataType::Float64, false),
            ]))
        })
        .clone()
}

/// When this process started serving (the first call wins).
pub fn process_started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

/// This node's name: SLURM's name for it under srun, else the host name.
pub fn node_name() -> Option<String> {
    std::env::var("SLURMD_NODENAME").ok().filter(|h| !h.is_empty()).or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
    })
}

/// What one process says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// Node name (SLURM's name for it under srun, else the host name).
    pub host: String,
    /// Process id.
    pub pid: u64,
    /// Resident memory, MiB.
    pub rss_mib: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Seconds since the process started serving.
    pub uptime_seconds: f64,
}

impl ProcessInfo {
    /// Measures this process now (from `/proc`; zeros where it is unavailable).
    pub fn current() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        Self {
            host: node_name().unwrap_or_default(),
            pid: u64::from(std::process::id()),
            rss_mib: kib("VmRSS:"),
            peak_rss_mib: kib("VmHWM:"),
            cpu_seconds: cpu_seconds(),
            uptime_seconds: process_started().elapsed().as_secs_f64(),
        }
    }
}

/// utime + stime from `/proc/self/stat` (fields 14 and 15, in clock ticks of 1/100 s, the
/// value of `_SC_CLK_TCK` on every Linux architecture starflow runs on).
pub(crate) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it follow the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// One row per worker: (worker index, this process's info). Worker 0 groups the rows by
/// process (workers of a process are numbered contiguously) and emits one sorted batch.
pub(crate) fn render_workers<'s>(ctx: &RenderContext<'s>) -> BatchStream<'s> {
    let scope = ctx.scope;
    let index = scope.index() as u64;
    let rows = source::<u64, CapacityContainerBuilder<Vec<Batch>>, _, _>(scope, "Workers", move |cap, _info| {
        let mut cap = Some(cap);
        move |output| {
            if let Some(c) = cap.take() {
                output.session(&c).give(Batch::new(worker_row(index, &ProcessInfo::current()), index));
            }
        }
    });
    rows.unary_frontier(Exchange::new(|_b: &Batch| 0u64), "WorkersByProcess", move |cap, _info| {
        let mut cap = Some(cap);
        let mut rows: Vec<(u64, ProcessInfo)> = Vec::new();
        move |(input, frontier), output| {
            input.for_each(|_cap, data| {
                for b in data.drain(..) {
                    rows.extend(read_worker_row(&b.data));
                }
            });
            if frontier.is_empty()
                && let Some(c) = cap.take()
                && !rows.is_empty()
            {
                output.session(&c).give(Batch::new(by_process(std::mem::take(&mut rows)), 0));
            }
        }
    })
}

fn worker_row(worker: u64, info: &ProcessInfo) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("worker", DataType::UInt64, false),
        Field::new("host", DataType::Utf8, false),
        Field::new("numbers", DataType::Float64, false),
    ]));
    let numbers = [info.pid as f64, info.rss_mib, info.peak_rss_mib, info.cpu_seconds, info.uptime_seconds];
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from(vec![worker; numbers.len()])),
            Arc::new(StringArray::from(vec![info.host.as_str(); numbers.len()])),
            Arc::new(Float64Array::from(numbers.to_vec())),
        ],
    )
    .expect("worker row matches its schema")
}

fn read_worker_row(b: &RecordBatch) -> Option<(u64, ProcessInfo)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt64Type};
    if b.num_rows() != 5 || b.num_columns() != 3 {
        return None;
    }
    let n = b.column(2).as_primitive::<Float64Type>();
    Some((
        b.column(0).as_primitive::<UInt64Type>().value(0),
        ProcessInfo {
            host: b.column(1).as_string::<i32>().value(0).to_string(),
            pid: n.value(0) as u64,
            rss_mib: n.value(1),
            peak_rss_mib: n.value(2),
            cpu_seconds: n.value(3),
            uptime_seconds: n.value(4),
        },
    ))
}

/// Groups worker rows into one row per process, ordered by their lowest worker index.
fn by_process(mut rows: Vec<(u64, ProcessInfo)>) -> RecordBatch {
    rows.sort_by_key(|(worker, _)| *worker);
    let mut processes: Vec<(ProcessInfo, u64)> = Vec::new();
    for (_, info) in rows {
        match processes.iter_mut().find(|(p, _)| p.host == info.host && p.pid == info.pid) {
            Some((_, threads)) => *threads += 1,
            None => processes.push((info, 1)),
        }
    }
    // Rounded to what a person reads: 0.1 MiB, 0.01 s of CPU, 0.1 s of uptime.
    let round = |x: f64, per_unit: f64| (x * per_unit).round() / per_unit;
    let col =
        |f: &dyn Fn(&ProcessInfo) -> f64| Arc::new(Float64Array::from_iter_values(processes.iter().map(|(p, _)| f(p))));
    RecordBatch::try_new(
        workers_schema(),
        vec![
            Arc::new(UInt64Array::from_iter_values(0..processes.len() as u64)),
            Arc::new(StringArray::from_iter_values(processes.iter().map(|(p, _)| p.host.as_str()))),
            Arc::new(UInt64Array::from_iter_values(processes.iter().map(|(p, _)| p.pid))),
            Arc::new(UInt64Array::from_iter_values(processes.iter().map(|(_, t)| *t))),
            col(&|p| round(p.rss_mib, 10.0)),
            col(&|p| round(p.peak_rss_mib, 10.0)),
            col(&|p| round(p.cpu_seconds, 100.0)),
            col(&|p| round(p.uptime_seconds, 10.0)),
        ],
    )
    .expect("workers batch matches its schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_measures_itself() {
        let info = ProcessInfo::current();
        assert_eq!(info.pid, u64::from(std::process::id()));
        assert!(info.rss_mib > 0.0 && info.peak_rss_mib >= info.rss_mib, "{info:?}");
        assert!(!info.host.is_empty());
    }

    #[test]
    fn worker_rows_group_into_processes_in_rank_order() {
        let p = |pid: u64| ProcessInfo {
            host: "n1".into(),
            pid,
            rss_mib: 1.0,
            peak_rss_mib: 2.0,
            cpu_seconds: 0.5,
            uptime_seconds: 3.0,
        };
        let rows = [(3, p(20)), (0, p(10)), (2, p(20)), (1, p(10))]
            .into_iter()
            .map(|(w, info)| read_worker_row(&worker_row(w, &info)).expect("round trip"))
            .collect();
        let batch = by_process(rows);
        use arrow_array::cast::AsArray;
        use arrow_array::types::UInt64Type;
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(2).as_primitive::<UInt64Type>().values(), &[10, 20]);
        assert_eq!(batch.column(3).as_primitive::<UInt64Type>().values(), &[2, 2]);
    }
}
