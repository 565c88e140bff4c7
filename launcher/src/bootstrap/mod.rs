//! Where the processes of a multi-process run are and how they find each other.
//!
//! Everything here except [`interface`] is pure: SLURM's variables (or a host file, or
//! `--processes N`) go in, a [`ClusterSpec`] comes out, and nothing reads the environment
//! or the network, so every case is unit-tested without SLURM.
//!
//! - [`hostlist`]: SLURM compressed host lists (`node[01-04,07]`), as `scontrol show hostnames`.
//! - [`slurm`]: `SLURM_*` variables, host files and local runs → [`ClusterSpec`].
//! - [`script`]: a ready `sbatch` script that runs starflow under `srun`.
//! - [`interface`]: `--interface ib0`, addresses exchanged through the shared file system.

pub mod hostlist;
pub mod interface;
pub mod script;
pub mod slurm;

use std::fmt;

/// Where this process sits in a multi-process computation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// This process's index (0-based).
    pub process: usize,
    /// Number of processes.
    pub processes: usize,
    /// Worker threads per process.
    pub threads: usize,
    /// Host of each process (index = process), as SLURM (or the host file) names it.
    pub hosts: Vec<String>,
    /// Port of each process (index = process).
    pub ports: Vec<u16>,
}

impl ClusterSpec {
    /// `host:port` of every process, by index (what timely's cluster allocator connects to).
    pub fn addresses(&self) -> Vec<String> {
        self.hosts.iter().zip(&self.ports).map(|(host, port)| format!("{host}:{port}")).collect()
    }
}

/// Why a topology could not be worked out. Every variant carries the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapError {
    /// A `[` without its `]`, a `]` without its `[`, or brackets inside brackets.
    UnbalancedBrackets { list: String },
    /// Nothing between brackets or commas, or a range bound missing (`node[]`, `n[1,]`, `n[-3]`).
    EmptyRange { list: String },
    /// A range whose end is below its start (`n[5-3]`).
    DescendingRange { range: String, list: String },
    /// A bracket item that is not a number or `number-number` (`n[a-c]`).
    NonNumericRange { range: String, list: String },
    /// A host list that expands to more hosts than any real cluster has.
    HostlistTooLarge { list: String, limit: usize },
    /// A variable we need is not set.
    MissingVar { var: &'static str },
    /// A variable is set but cannot be read (`expected` says what it should look like).
    InvalidVar { var: &'static str, value: String, expected: &'static str },
    /// Variables that contradict each other; `message` says how.
    Inconsistent { var: &'static str, message: String },
    /// A host file line that is not `host[:port]`.
    InvalidHostfileLine { line: usize, text: String, reason: &'static str },
    /// A host file with no hosts in it.
    EmptyHostfile,
    /// This process's index is not below the number of processes.
    ProcessOutOfRange { process: usize, processes: usize },
}

impl fmt::Display for BootstrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnbalancedBrackets { list } => write!(f, "unbalanced brackets in host list \"{list}\""),
            Self::EmptyRange { list } => write!(f, "empty range in host list \"{list}\""),
            Self::DescendingRange { range, list } => {
                write!(f, "descending range \"{range}\" in host list \"{list}\"")
            }
            Self::NonNumericRange { range, list } => {
                write!(f, "non-numeric range \"{range}\" in host list \"{list}\"")
            }
            Self::HostlistTooLarge { list, limit } => {
                write!(f, "host list \"{list}\" expands to more than {limit} hosts")
            }
            Self::MissingVar { var } => write!(f, "environment variable {var} is not set"),
            Self::InvalidVar { var, value, expected } => {
                write!(f, "environment variable {var}=\"{value}\" is not {expected}")
            }
            Self::Inconsistent { var, message } => write!(f, "inconsistent {var}: {message}"),
            Self::InvalidHostfileLine { line, text, reason } => {
                write!(f, "host file line {line} \"{text}\": {reason}")
            }
            Self::EmptyHostfile => write!(f, "the host file lists no hosts"),
            Self::ProcessOutOfRange { process, processes } => {
                write!(f, "process index {process} is not below the number of processes ({processes})")
            }
        }
    }
}

impl std::error::Error for BootstrapError {}
