//! `starflow bench`: times the benchmark queries over the seed-sized DP0.2-like catalog, each
//! run as the first query of a fresh `starflow query` process (page cache warm), and reports
//! the median wall time and the peak RSS of each.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use starflow_catalogs::dp02::{Dp02Options, generate_dp02};

/// The benchmark queries: name and SQL over catalog `dp02`.
pub const QUERIES: &[(&str, &str)] = &[
    ("head", "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 5"),
    ("count", "SELECT COUNT(*) FROM dp02 WHERE mag_i < 26"),
    (
        "groupby",
        "SELECT tract, COUNT(*) AS n, AVG(mag_i) AS mean_i, STDDEV(mag_i) AS std_i, MIN(mag_i) AS min_i, MAX(mag_i) AS max_i FROM dp02 GROUP BY tract",
    ),
    (
        "cone",
        "SELECT objectId, coord_ra, coord_dec, mag_i FROM dp02 WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.5, -35.0, 1.0)) = 1",
    ),
];

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Catalog folder; generated (seed-sized × --scale) if missing.
    #[arg(long, default_value = "bench-data/dp02-seed")]
    pub dir: PathBuf,
    /// Multiply the seed size (files and rows) when generating.
    #[arg(long, default_value_t = 1)]
    pub scale: usize,
    /// Runs per query (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Worker threads per query process (default: all cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Only these queries (head, count, groupby, cone); default all.
    #[arg(long = "query")]
    pub only: Vec<String>,
    /// Also run each query as this many local processes (repeatable: --processes 2 --processes 3).
    #[arg(long = "processes")]
    pub processes: Vec<usize>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if !args.dir.exists() {
        let seed = Dp02Options::seed_sized();
        let opts = Dp02Options { files: seed.files * args.scale, rows: seed.rows * args.scale, ..seed };
        eprintln!("generating {} rows in {} files into {} ...", opts.rows, opts.files, args.dir.display());
        generate_dp02(&args.dir, &opts)?;
    }
    let exe = std::env::current_exe().context("cannot find the starflow executable")?;
    let workers = args.workers.unwrap_or_else(crate::query::default_workers);
    let catalog = format!("dp02={}", args.dir.display());
    println!(
        "| query | processes × workers | median s | min s | peak RSS MiB (process 0) | rows out | bytes between processes |"
    );
    println!("|---|---|---|---|---|---|---|");
    let layouts: Vec<(usize, usize)> =
        std::iter::once((1, workers)).chain(args.processes.iter().map(|&p| (p, 1))).collect();
    for (name, sql) in QUERIES {
        if !args.only.is_empty() && !args.only.iter().any(|q| q == name) {
            continue;
        }
        for &(processes, workers) in &layouts {
            let mut times = Vec::new();
            let (mut rss, mut rows, mut bytes) = (0.0f64, String::new(), String::new());
            for _ in 0..args.runs.max(1) {
                let start = Instant::now();
                let out = Command::new(&exe)
                    .args([
                        "query",
                        "--catalog",
                        &catalog,
                        "--workers",
                        &workers.to_string(),
                        "--format",
                        "csv",
                        "--stats",
                    ])
                    .args(["--processes", &processes.to_string(), sql])
                    .output()
                    .context("cannot start starflow query")?;
                times.push(start.elapsed().as_secs_f64());
                let stderr = String::from_utf8_lossy(&out.stderr);
                if !out.status.success() {
                    bail!("query {name} failed: {stderr}");
                }
                for field in stderr.split_whitespace() {
                    if let Some(v) = field.strip_prefix("peak_rss_mib=") {
                        rss = rss.max(v.parse().unwrap_or(0.0));
                    }
                    if let Some(v) = field.strip_prefix("rows_out=") {
                        rows = v.to_string();
                    }
                    if let Some(v) = field.strip_prefix("bytes_sent=") {
                        bytes = v.to_string();
                    }
                }
            }
            times.sort_by(f64::total_cmp);
            println!(
                "| {name} | {processes} × {workers} | {:.3} | {:.3} | {rss:.0} | {rows} | {bytes} |",
                times[times.len() / 2],
                times[0]
            );
        }
    }
    Ok(())
}
