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
    /// Time starflow's benchmark queries, each as the first query of a fresh process.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum GenCommand {
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
    /// Worker threads (default: all cores).
    #[arg(long, short = 'w')]
    pub workers: Option<usize>,
    /// Output format (default: table on a terminal, csv otherwise).
    #[arg(long)]
    pub format: Option<Format>,
    /// Write the result to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print rows read, row groups read and timings to stderr.
    #[arg(long)]
    pub stats: bool,
    /// The statement: SELECT ... or EXPLAIN SELECT ...
    pub sql: String,
}
