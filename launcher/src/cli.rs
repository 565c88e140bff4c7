//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// starflow: query huge survey catalogs (Parquet) with a timely dataflow.
#[derive(Debug, Parser)]
#[command(name = "starflow", version, about)]
pub struct Cli {
    /// Log more (-v: debug, -vv: trace); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to log to stderr: a level (error, warn, info, debug, trace) or directives such as
    /// `info,starflow_dataflow=debug` (default: RUST_LOG, else warn).
    #[arg(long, value_name = "LEVEL", global = true)]
    pub log_level: Option<String>,
    /// Write a Chrome trace (chrome://tracing, Perfetto) of every phase's spans to this file
    /// (processes other than process 0 write FILE.<rank>.json).
    #[arg(long, value_name = "FILE.json", global = true)]
    pub trace_out: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate demo catalogs.
    Gen {
        #[command(subcommand)]
        what: GenCommand,
    },
    /// Run one SQL query over Parquet catalogs.
    Query(QueryArgs),
    /// Generate the demo catalog (if missing) and run a few typical queries on it.
    Demo {
        /// Where the demo catalog lives.
        #[arg(long, default_value = "demo/dp02")]
        dir: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Keep a computation running on this process or allocation (srun starflow serve ...) and
    /// answer statements from `starflow repl` clients.
    Serve(ServeArgs),
    /// Attach to a running server: an interactive SQL shell, or `-c` statements / a script on stdin.
    Repl(ReplArgs),
    /// Feed a new release of a catalog to a running server; returns once every view reflects it.
    Ingest(IngestArgs),
    /// Time starflow's benchmark queries, each as the first query of a fresh process.
    Bench(crate::bench::BenchArgs),
    /// Pairs of rows closer than a radius (a self-crossmatch): pairs.parquet, their sky
    /// distribution (pairs.png) and a summary.
    Duplicates(crate::duplicates::DuplicatesArgs),
    /// HATS catalogs (HEALPix-partitioned Parquet, as LSDB reads them).
    Hats {
        #[command(subcommand)]
        what: HatsCommand,
    },
    /// Plots of catalogs.
    Plot {
        #[command(subcommand)]
        what: PlotCommand,
    },
    /// SLURM helpers.
    Slurm {
        #[command(subcommand)]
        what: SlurmCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum HatsCommand {
    /// Partition a catalog into a HATS catalog (adaptive HEALPix order by row count, as
    /// hats-import does) with an optional margin catalog, in a dataflow over all workers.
    Import(crate::hats::HatsImportArgs),
}

#[derive(Debug, Subcommand)]
pub enum PlotCommand {
    /// A sky density map (PNG) of a catalog, and its counts as Parquet.
    Density(DensityArgs),
}

#[derive(Debug, Args)]
pub struct DensityArgs {
    /// The catalog: NAME=PATH (a Parquet file, a folder or a glob).
    #[arg(long, value_name = "NAME=PATH")]
    pub catalog: String,
    /// Only rows where this SQL condition holds (e.g. "mag_i < 24").
    #[arg(long = "where", value_name = "SQL")]
    pub r#where: Option<String>,
    /// The PNG to write.
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
    /// Bins across and down, e.g. 1024x1024 (default: 1024 across, down as the sky's shape).
    #[arg(long, value_name = "WxH", conflicts_with = "healpix_order")]
    pub bins: Option<String>,
    /// Count per HEALPix pixel of this order instead of per RA/Dec bin.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u8).range(0..=29))]
    pub healpix_order: Option<u8>,
    /// Colour by log10(count).
    #[arg(long)]
    pub log: bool,
    /// Also write the counts (per bin or per pixel) to this Parquet file.
    #[arg(long, value_name = "FILE.parquet")]
    pub counts: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'w')]
    pub workers: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum SlurmCommand {
    /// Print a ready sbatch script that runs `starflow ARGS...` on an allocation with srun.
    Script(ScriptArgs),
}

#[derive(Debug, Args)]
pub struct ScriptArgs {
    /// Nodes to allocate.
    #[arg(long)]
    pub nodes: usize,
    /// CPUs per node.
    #[arg(long)]
    pub cpus_per_node: usize,
    /// starflow processes per node (each gets cpus-per-node / tasks-per-node worker threads).
    #[arg(long, default_value_t = 1)]
    pub tasks_per_node: usize,
    /// Memory per node (e.g. 100G).
    #[arg(long)]
    pub mem: Option<String>,
    /// Wall-time limit (e.g. 04:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// SLURM partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// SLURM account.
    #[arg(long)]
    pub account: Option<String>,
    /// Job name.
    #[arg(long, default_value = "starflow")]
    pub job_name: String,
    /// Network interface for starflow's traffic (e.g. ib0).
    #[arg(long)]
    pub interface: Option<String>,
    /// File for the job's standard output and error.
    #[arg(long)]
    pub output: Option<String>,
    /// The starflow command to run, after `--` (e.g. -- query --catalog dp02=/lustre/... "SELECT ...").
    #[arg(last = true, required = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// The next release of a generated catalog: most tracts unchanged (hard links), a few
    /// reprocessed (new magnitudes, split and merged objects), a few added, a few removed.
    #[command(name = "dp02-release")]
    Dp02Release {
        /// The current release's folder.
        #[arg(long)]
        base: PathBuf,
        /// The new release's folder (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of tracts reprocessed.
        #[arg(long, default_value_t = 0.02)]
        replace_frac: f64,
        /// New tracts, as a share of the current ones.
        #[arg(long, default_value_t = 0.01)]
        add_frac: f64,
        /// Share of tracts removed.
        #[arg(long, default_value_t = 0.01)]
        remove_frac: f64,
    },
    /// A catalog shaped like the LSST DP0.2 Object "skinny" table, one file per tract.
    Dp02 {
        /// Output folder.
        #[arg(long, default_value = "demo/dp02")]
        out: PathBuf,
        /// Number of files (tracts).
        #[arg(long)]
        files: Option<usize>,
        /// Total rows.
        #[arg(long)]
        rows: Option<usize>,
        /// Random seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Rows per Parquet row group.
        #[arg(long)]
        row_group_rows: Option<usize>,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of row objects.
    Json,
    /// A Parquet file (needs --out).
    Parquet,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// A catalog: NAME=PATH, where PATH is a Parquet file, a folder or a glob. Repeatable.
    #[arg(long = "catalog", value_name = "NAME=PATH", required = true)]
    pub catalogs: Vec<String>,
    /// Output format (default: table on a terminal, csv otherwise).
    #[arg(long)]
    pub format: Option<Format>,
    /// Write the result to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print rows read, row groups read and timings to stderr.
    #[arg(long)]
    pub stats: bool,
    /// Write a performance report (one self-contained HTML file) of the query here.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The statement: SELECT ... or EXPLAIN SELECT ...
    pub sql: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A catalog: NAME=PATH, where PATH is a Parquet file, a folder or a glob. Repeatable
    /// (optional with a --state-dir that already has catalogs).
    #[arg(long = "catalog", value_name = "NAME=PATH")]
    pub catalogs: Vec<String>,
    /// Where to write the connection file (default: ~/.starflow/<job id>.json).
    #[arg(long, value_name = "FILE")]
    pub connection_file: Option<PathBuf>,
    /// Folder for release manifests and view definitions (on a shared file system); a server
    /// restarted with it comes back at the latest releases with its views.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Address the control plane listens on (default: process 0's node address under srun or
    /// with --hosts, else 127.0.0.1).
    #[arg(long, value_name = "HOST")]
    pub listen: Option<String>,
    /// Port of the control plane (default: any free port; the connection file says which).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The connection file the server wrote.
    #[arg(long, value_name = "FILE")]
    pub connect: PathBuf,
    /// The catalog the release belongs to.
    #[arg(long)]
    pub catalog: String,
    /// The release's label (unique per catalog), e.g. DR2.
    #[arg(long, value_name = "LABEL")]
    pub release: String,
    /// The release's files: a folder, a Parquet file or a glob (as the server sees it).
    pub path: String,
}

#[derive(Debug, Args)]
pub struct ReplArgs {
    /// The connection file the server wrote (e.g. ~/.starflow/<job id>.json).
    #[arg(long, value_name = "FILE")]
    pub connect: PathBuf,
    /// Run this statement and exit (repeatable; they run in order, stopping at the first error).
    #[arg(short = 'c', value_name = "SQL")]
    pub commands: Vec<String>,
    /// Output format (default: table on a terminal, csv otherwise).
    #[arg(long)]
    pub format: Option<Format>,
    /// At most this many rows printed per statement (0: all; default 100 for tables, all otherwise).
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,
}

/// Where the worker threads run: this process alone, several local processes, a host file,
/// or (with none of these) the processes of an `srun` step.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Worker threads (default: all cores).
    #[arg(long, short = 'w')]
    pub workers: Option<usize>,
    /// Run as N processes on this machine (over loopback TCP); this one is process 0.
    #[arg(long, value_name = "N")]
    pub processes: Option<usize>,
    /// A host file (one `host[:port]` per line) listing every process of the run.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// This process's index in --hosts (from 0).
    #[arg(long, value_name = "I")]
    pub process: Option<usize>,
    /// Listen on this network interface's address (e.g. ib0) under srun.
    #[arg(long, value_name = "IF")]
    pub interface: Option<String>,
    /// Seconds to wait for every process to connect.
    #[arg(long, default_value_t = 60)]
    pub connect_timeout: u64,
    /// Addresses of all processes (used by processes that --processes starts).
    #[arg(long, hide = true)]
    pub peers: Option<String>,
}

impl ClusterArgs {
    /// This process alone with `workers` threads (default: all cores).
    pub fn local(workers: Option<usize>) -> Self {
        Self { workers, processes: None, hosts: None, process: None, interface: None, connect_timeout: 60, peers: None }
    }
}
