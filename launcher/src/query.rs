//! `starflow query`, `starflow gen` and `starflow demo`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use starflow_catalogs::ParquetCatalog;
use starflow_catalogs::dp02::{Dp02Options, generate_dp02};
use starflow_dataflow::plan::explain::explain;
use starflow_dataflow::{
    CatalogSet, ExecOptions, PlanOptions, QueryMetrics, RunError, Shipped, connect, plan_sql, run_query,
};
use starflow_operators::Operators;

use crate::cli::{Format, GenCommand, QueryArgs};
use crate::output::Output;

/// Default worker count: every core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Opens the `NAME=PATH` catalogs.
pub fn open_catalogs(specs: &[String]) -> Result<CatalogSet> {
    let mut set = CatalogSet::new();
    for spec in specs {
        let Some((name, path)) = spec.split_once('=') else {
            bail!("--catalog needs NAME=PATH, got \"{spec}\"");
        };
        if name.is_empty() || path.is_empty() {
            bail!("--catalog needs NAME=PATH, got \"{spec}\"");
        }
        let catalog = ParquetCatalog::open(name, path).with_context(|| format!("cannot open catalog \"{name}\""))?;
        tracing::debug!(
            catalog = name,
            files = catalog.files.len(),
            rows = catalog.num_rows(),
            peak_rss_mib = peak_rss_mib(),
            "catalog opened"
        );
        set.insert(catalog);
    }
    Ok(set)
}

/// Runs one statement and writes its result (on process 0 only, when there are several).
pub fn run(args: &QueryArgs) -> Result<()> {
    crate::cluster::run_with(&args.cluster, |topology| run_in(args, topology))
}

fn run_in(args: &QueryArgs, topology: &crate::cluster::Topology) -> Result<()> {
    tracing::debug!(peak_rss_mib = peak_rss_mib(), "starting");
    let (workers, processes) = (topology.threads(&args.cluster), topology.processes());
    let leader = topology.process() == 0;
    crate::trace::set_rank(topology.process());
    // Timely needs the same thread count in every process: part of what must agree.
    let fingerprint = crate::cluster::fingerprint(&format!("{:?}\n{}\n{workers}", args.catalogs, args.sql));
    let cluster = topology.options(std::time::Duration::from_secs(args.cluster.connect_timeout), fingerprint);
    let plan_here = || -> Result<(CatalogSet, starflow_dataflow::Planned)> {
        let _span = tracing::info_span!("plan", statement = %args.sql).entered();
        let catalogs = open_catalogs(&args.catalogs)?;
        let planned = plan_sql(&args.sql, &catalogs, &PlanOptions::default())?;
        tracing::debug!(peak_rss_mib = peak_rss_mib(), "planned");
        Ok((catalogs, planned))
    };
    // Process 0 plans and ships the plan (and the catalogs it reads) to the others.
    let (plan, catalogs, connected) = match cluster {
        None => {
            let (catalogs, planned) = plan_here()?;
            if planned.explain {
                print!("{}", explain(&planned.plan, workers));
                return Ok(());
            }
            (planned.plan, catalogs, None)
        }
        Some(options) if leader => {
            let planned = plan_here();
            let shipped = match &planned {
                Ok((_, p)) if p.explain => Shipped::Explained,
                Ok((catalogs, p)) => Shipped::Run { plan: p.plan.clone(), catalogs: catalogs.of_plan(&p.plan) },
                Err(e) => Shipped::Failed(format!("{e:#}")),
            };
            let connected = connect(&options, Some(&shipped.encode()?))?;
            let (catalogs, planned) = planned?;
            if planned.explain {
                print!("{}", explain(&planned.plan, workers * processes));
                return Ok(());
            }
            (planned.plan, catalogs, Some(connected))
        }
        Some(options) => {
            let connected = connect(&options, None)?;
            match Shipped::decode(connected.shipped.as_deref().unwrap_or_default())? {
                Shipped::Run { plan, catalogs } => (plan, catalogs.into_iter().collect(), Some(connected)),
                Shipped::Explained => return Ok(()),
                Shipped::Serve { .. } => bail!("process 0 is a server (starflow serve), not a query"),
                Shipped::Failed(message) => bail!("process 0 could not plan the statement: {message}"),
            }
        }
    };
    let format = args.format.unwrap_or(if args.out.is_none() && std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Csv
    });
    let mut output = if leader { Some(Output::open(format, args.out.as_deref(), plan.schema())?) } else { None };
    let metrics = Arc::new(QueryMetrics::default());
    let options = ExecOptions { workers, cluster: connected, profile: args.report.is_some(), metrics: metrics.clone() };
    let partitions = crate::progress::local_partitions(&plan, topology.process(), workers, workers * processes);
    let mut ticker = leader.then(|| crate::progress::Ticker::start(metrics, partitions, processes));
    let started = std::time::SystemTime::now();
    let span = tracing::info_span!("query", processes, workers = workers * processes, rows_out = tracing::field::Empty);
    let _entered = span.enter();
    let to_stdout = args.out.is_none();
    let stats = run_query(&plan, Arc::new(catalogs), Operators, options, |batch| {
        if to_stdout {
            // Rows on the terminal replace the progress line (which would garble them).
            ticker = None;
        }
        match output.as_mut() {
            Some(o) => o.write(&batch).map_err(|e| RunError::Worker(format!("writing the result: {e:#}"))),
            None => Ok(()),
        }
    })?;
    if let Some(o) = output {
        o.finish()?;
    }
    drop(ticker);
    span.record("rows_out", stats.rows_out);
    drop(_entered);
    if let Some(path) = args.report.as_deref().filter(|_| leader) {
        let scans = crate::report::scans(&plan);
        let input = crate::report::ReportInput::new(&args.sql, scans, workers * processes, &stats, started);
        crate::report::write(path, &input)?;
    }
    if args.stats && leader {
        eprintln!(
            "stats: processes={processes} workers={} partitions_read={} rows_read={} rows_matched={} rows_out={} bytes_sent={} seconds={:.3} peak_rss_mib={:.1}",
            workers * processes,
            stats.partitions_read,
            stats.rows_read,
            stats.rows_matched,
            stats.rows_out,
            stats.bytes_sent,
            stats.seconds,
            peak_rss_mib()
        );
    }
    Ok(())
}

/// `starflow gen ...`.
pub fn generate(what: GenCommand) -> Result<()> {
    match what {
        GenCommand::Dp02Release { base, out, seed, replace_frac, add_frac, remove_frac } => {
            use starflow_catalogs::dp02_release::{ReleaseOptions, generate_release};
            let start = std::time::Instant::now();
            let opts = ReleaseOptions { seed, replace_frac, add_frac, remove_frac };
            let s = generate_release(&base, &out, &opts)?;
            eprintln!(
                "wrote the next release of {} to {} in {:.1} s: {} files unchanged, {} reprocessed, {} added, {} removed; {} rows",
                base.display(),
                out.display(),
                start.elapsed().as_secs_f64(),
                s.unchanged.len(),
                s.replaced.len(),
                s.added.len(),
                s.removed.len(),
                s.rows
            );
            Ok(())
        }
        GenCommand::Dp02 { out, files, rows, seed, row_group_rows } => {
            let d = Dp02Options::default();
            let opts = Dp02Options {
                files: files.unwrap_or(d.files),
                rows: rows.unwrap_or(d.rows),
                seed: seed.unwrap_or(d.seed),
                row_group_rows: row_group_rows.unwrap_or(d.row_group_rows),
            };
            let start = std::time::Instant::now();
            let summary = generate_dp02(&out, &opts)?;
            eprintln!(
                "wrote {} rows in {} files ({} row groups) to {} in {:.1} s",
                summary.rows,
                summary.files.len(),
                summary.row_groups,
                out.display(),
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// `starflow demo`: the README's first command.
pub fn demo(dir: &Path, workers: Option<usize>) -> Result<()> {
    if !dir.exists() {
        eprintln!("generating the demo catalog in {} ...", dir.display());
        generate(GenCommand::Dp02 {
            out: dir.to_path_buf(),
            files: None,
            rows: None,
            seed: None,
            row_group_rows: None,
        })?;
    }
    let catalog = format!("dp02={}", dir.display());
    let queries = [
        "SELECT * FROM dp02 WHERE mag_i < 26 LIMIT 5",
        "SELECT COUNT(*) AS n FROM dp02 WHERE mag_i < 26",
        "SELECT tract, COUNT(*) AS n, AVG(mag_i) AS mean_i, STDDEV(mag_i) AS std_i, MIN(mag_i) AS min_i, MAX(mag_i) AS max_i FROM dp02 GROUP BY tract ORDER BY tract",
        "SELECT objectId, coord_ra, coord_dec, mag_r, DISTANCE(POINT('ICRS', coord_ra, coord_dec), POINT('ICRS', 62.0, -37.0)) AS sep FROM dp02 WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.0, -37.0, 0.05)) = 1 ORDER BY sep LIMIT 10",
        "SELECT COUNT(*) AS pairs, MIN(_dist_arcsec) AS closest FROM XMATCH(dp02, dp02, 1)",
    ];
    // The same catalog as HATS (HEALPix partitions), searched by a polygon.
    let name = dir.file_name().map_or("dp02".into(), |n| n.to_string_lossy().to_string());
    let hats = dir.with_file_name(format!("{name}-hats"));
    if !hats.exists() {
        println!("\nstarflow hats import --catalog {catalog} --out {} --threshold 20000", hats.display());
        crate::hats::import(&crate::hats::HatsImportArgs {
            catalog: catalog.clone(),
            out: hats.clone(),
            highest_order: 10,
            lowest_order: 0,
            threshold: 20_000,
            margin_arcsec: None,
            ra: None,
            dec: None,
            row_group_rows: 65_536,
            memory_mib: 2048,
            cluster: crate::cli::ClusterArgs::local(workers),
        })?;
    }
    let hats_catalog = format!("dp02={}", hats.display());
    let hats_queries = [
        "SELECT COUNT(*) AS n, AVG(mag_i) AS mean_i FROM dp02 WHERE CONTAINS(POINT(coord_ra, coord_dec), POLYGON(60, -40, 66, -40, 66, -34, 60, -34)) = 1",
    ];
    for (catalog, sql) in queries.iter().map(|q| (&catalog, q)).chain(hats_queries.iter().map(|q| (&hats_catalog, q))) {
        println!("\nstarflow query --catalog {catalog} \"{sql}\"");
        run(&QueryArgs {
            catalogs: vec![catalog.clone()],
            format: Some(Format::Table),
            out: None,
            stats: true,
            report: None,
            cluster: crate::cli::ClusterArgs::local(workers),
            sql: sql.to_string(),
        })?;
    }
    Ok(())
}

/// Peak resident memory of this process (VmHWM), in MiB; 0 where /proc is unavailable.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}
