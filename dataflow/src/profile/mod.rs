//! Query profiles for performance reports: what each worker's operators did and when (from
//! timely's own logging of operator schedules and messages), rows and batches out of each
//! plan node, and each process's CPU, memory and bytes sent over time.
//!
//! Profiling is asked for per query ([`crate::ExecOptions::profile`],
//! [`crate::Server::submit_profiled`]); without it nothing is logged or sampled. Each worker sends its share to worker 0
//! when the query's result is complete, beside the per-process report.

mod log;
mod sampler;

use serde::{Deserialize, Serialize};

pub(crate) use log::Profiler;
pub(crate) use sampler::Sampler;

/// One share of a profile, sent to worker 0 when the query is done.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Part {
    /// A worker's operators and spans.
    Worker { process: usize, profile: WorkerProfile },
    /// A process's resources (its `workers` empty) and its node counts.
    Process { profile: ProcessProfile, nodes: Vec<NodeProfile> },
}

impl Part {
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("a profile part serialises")
    }

    /// Merges the parts of every worker and process.
    pub fn merge(parts: &[Vec<u8>]) -> QueryProfile {
        let mut processes: Vec<(ProcessProfile, Vec<NodeProfile>)> = Vec::new();
        let mut workers: Vec<(usize, WorkerProfile)> = Vec::new();
        for bytes in parts {
            match bincode::deserialize::<Part>(bytes) {
                Ok(Part::Worker { process, profile }) => workers.push((process, profile)),
                Ok(Part::Process { profile, nodes }) => processes.push((profile, nodes)),
                Err(e) => tracing::warn!(error = %e, "a profile part could not be read"),
            }
        }
        workers.sort_by_key(|(_, w)| w.worker);
        for (process, profile) in workers {
            if let Some((p, _)) = processes.iter_mut().find(|(p, _)| p.process == process) {
                p.workers.push(profile);
            }
        }
        QueryProfile::merge(processes)
    }
}

/// Everything a report shows about one query, gathered from every process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryProfile {
    /// One entry per process, in rank order.
    pub processes: Vec<ProcessProfile>,
    /// The plan's nodes in pre-order (root first; a node's inputs follow it, one level
    /// deeper), with what came out of each (summed over workers).
    pub nodes: Vec<NodeProfile>,
}

/// One process of a profiled query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessProfile {
    /// Rank.
    pub process: usize,
    /// Host name (the SLURM node name when there is one).
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// This process's workers, by global index.
    pub workers: Vec<WorkerProfile>,
    /// CPU, memory and bytes sent over the query's time.
    pub samples: Vec<Sample>,
    /// Bytes this process sent to the others during the query (data and progress).
    pub bytes_sent: u64,
    /// Of those, bytes sent to each process, by rank.
    pub bytes_to: Vec<u64>,
    /// When this process's times start (its start of the query), µs since the Unix epoch;
    /// merged profiles count every process's times from the earliest.
    pub start_unix_us: u64,
}

/// What one worker did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerProfile {
    /// Global worker index.
    pub worker: usize,
    /// The operators of the query's dataflow on this worker.
    pub operators: Vec<OperatorProfile>,
    /// When each operator ran: (index into `operators`, start µs, end µs) from the query's
    /// start; runs of one operator closer than a few µs are merged.
    pub spans: Vec<(u32, u64, u64)>,
    /// Spans left out once the worker had logged [`log::MAX_SPANS`].
    pub spans_dropped: u64,
}

/// One timely operator on one worker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperatorProfile {
    /// The operator's name (as given when it was built).
    pub name: String,
    /// Its address in the dataflow (scope path).
    pub address: Vec<usize>,
    /// Time it was scheduled for, µs.
    pub busy_us: u64,
    /// Times it was scheduled.
    pub activations: u64,
    /// Batches it sent (to this or other workers).
    pub batches_out: u64,
    /// Batches it received.
    pub batches_in: u64,
}

/// One sample of a process's resources.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds from the query's start.
    pub t_ms: f64,
    /// CPU in use since the previous sample, in cores (2.0 = two cores busy).
    pub cpu: f64,
    /// Resident memory, MiB.
    pub rss_mib: f64,
    /// Bytes sent to other processes since the query started.
    pub bytes_sent: u64,
}

/// A plan node and what came out of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeProfile {
    /// The node, as `EXPLAIN` names it.
    pub label: String,
    /// Depth in the plan (0: the root).
    pub depth: usize,
    /// Rows out of the node.
    pub rows_out: u64,
    /// Batches out of the node.
    pub batches_out: u64,
}

impl QueryProfile {
    /// Merges per-process profiles (and per-process node counts) into one.
    fn merge(mut parts: Vec<(ProcessProfile, Vec<NodeProfile>)>) -> Self {
        parts.sort_by_key(|(p, _)| p.process);
        let mut nodes: Vec<NodeProfile> = Vec::new();
        for (_, ns) in &parts {
            if nodes.is_empty() {
                nodes = ns.clone();
            } else {
                for (n, m) in nodes.iter_mut().zip(ns) {
                    n.rows_out += m.rows_out;
                    n.batches_out += m.batches_out;
                }
            }
        }
        // One time axis: each process's times shift by how much later than the first it started
        // (exact on one machine, within the clocks' skew on several).
        let first = parts.iter().map(|(p, _)| p.start_unix_us).min().unwrap_or(0);
        let processes = parts
            .into_iter()
            .map(|(mut p, _)| {
                let shift = p.start_unix_us - first;
                for w in &mut p.workers {
                    for span in &mut w.spans {
                        span.1 += shift;
                        span.2 += shift;
                    }
                }
                for s in &mut p.samples {
                    s.t_ms += shift as f64 / 1e3;
                }
                p
            })
            .collect();
        Self { processes, nodes }
    }
}

/// The nodes of `plan` in pre-order (root first, each node's inputs after it, deeper), with
/// no counts yet.
pub(crate) fn plan_nodes(plan: &crate::plan::Plan, workers: usize) -> Vec<NodeProfile> {
    fn walk(plan: &crate::plan::Plan, depth: usize, workers: usize, out: &mut Vec<NodeProfile>) {
        out.push(NodeProfile { label: crate::plan::explain::node_label(plan, workers), depth, ..Default::default() });
        for input in plan.inputs() {
            walk(input, depth + 1, workers, out);
        }
    }
    let mut nodes = Vec::new();
    walk(plan, 0, workers, &mut nodes);
    nodes
}
