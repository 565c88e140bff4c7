//! `starflow hats import`: partitions any catalog into a HATS catalog (and its margin
//! catalog) that LSDB and starflow read, in two distributed passes over the catalog:
//!
//! 1. row counts per HEALPix pixel at the highest order (a group-by query), from which the
//!    partitions follow as hats-import cuts them ([`alignment`]);
//! 2. a [`Plan::HatsWrite`] over a scan of every column: rows meet on the worker of their
//!    partition (and of the partitions whose margin they fall in), which writes the files.
//!
//! Everything is written under a temporary folder next to `--out`, renamed into place at the
//! end: a failed import leaves nothing half-written, and an existing `--out` is never touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use clap::Args;
use parquet::arrow::ArrowWriter;
use starflow_catalogs::hats::HEALPIX_29_COLUMN;
use starflow_catalogs::hats::alignment::alignment;
use starflow_catalogs::hats::properties::Properties;
use starflow_dataflow::plan::{HatsWriteSpec, ROW_ID};
use starflow_dataflow::{CatalogSet, ExecOptions, Plan, PlanOptions, plan_sql, run_query};
use starflow_operators::Operators;

#[derive(Debug, Args)]
pub struct HatsImportArgs {
    /// The catalog to partition: NAME=PATH (Parquet file, folder, glob, or a HATS catalog).
    #[arg(long, value_name = "NAME=PATH")]
    pub catalog: String,
    /// The HATS collection folder to write (NAME/ inside it is the catalog, NAME_<R>arcs/ its
    /// margin); it must not exist.
    #[arg(long)]
    pub out: PathBuf,
    /// Deepest HEALPix order of a partition.
    #[arg(long, default_value_t = 10)]
    pub highest_order: u8,
    /// Shallowest HEALPix order of a partition.
    #[arg(long, default_value_t = 0)]
    pub lowest_order: u8,
    /// Most rows per partition (pixels are split until they hold at most this many).
    #[arg(long, default_value_t = 1_000_000)]
    pub threshold: u64,
    /// Also write a margin catalog: rows within this many arcseconds of each partition.
    #[arg(long)]
    pub margin_arcsec: Option<f64>,
    /// RA column (default: found by name).
    #[arg(long)]
    pub ra: Option<String>,
    /// Dec column (default: found by name).
    #[arg(long)]
    pub dec: Option<String>,
    /// Rows per Parquet row group of the partitions.
    #[arg(long, default_value_t = 65_536)]
    pub row_group_rows: usize,
    /// Memory the workers hold before they spool rows to disk, MiB (all workers together).
    #[arg(long, default_value_t = 2048)]
    pub memory_mib: usize,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'w')]
    pub workers: Option<usize>,
}

/// `starflow hats import`.
pub fn import(args: &HatsImportArgs) -> Result<()> {
    let started = std::time::Instant::now();
    if args.out.exists() {
        bail!("{} already exists: hats import writes a new folder and never overwrites one", args.out.display());
    }
    if let Some(r) = args.margin_arcsec
        && !(r.is_finite() && r > 0.0)
    {
        bail!("--margin-arcsec must be a positive number of arcseconds, got {r}");
    }
    let catalogs = Arc::new(crate::query::open_catalogs(std::slice::from_ref(&args.catalog))?);
    let name = catalogs.names().next().context("no catalog")?.to_string();
    let catalog = catalogs.get(&name).context("the catalog")?.clone();
    let (ra, dec) = match (&args.ra, &args.dec, catalog.sky_columns()) {
        (Some(r), Some(d), _) => (r.clone(), d.clone()),
        (r, d, Some((fr, fd))) => (r.clone().unwrap_or(fr), d.clone().unwrap_or(fd)),
        _ => bail!("catalog \"{name}\" has no RA/Dec columns found by name: give --ra and --dec"),
    };
    for c in [&ra, &dec] {
        match catalog.schema.field_with_name(c) {
            Ok(f) if f.data_type().is_numeric() => {}
            Ok(f) => bail!("column \"{c}\" of catalog \"{name}\" is {}, not a number of degrees", f.data_type()),
            Err(_) => bail!("catalog \"{name}\" has no column \"{c}\""),
        }
    }
    let workers = args.workers.unwrap_or_else(crate::query::default_workers).max(1);
    let quoted = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));

    // Pass 1: rows per pixel at the highest order.
    let k = args.highest_order;
    if k > 29 {
        bail!("--highest-order must be at most 29, got {k}");
    }
    let sql = format!(
        "SELECT HEALPIX({k}, {r}, {d}) AS pixel, COUNT(*) AS n FROM {name} GROUP BY pixel",
        r = quoted(&ra),
        d = quoted(&dec)
    );
    let counts = crate::plot::run_table(&sql, &catalogs, workers)?;
    let pixels = counts.column(0).as_primitive::<Int64Type>();
    let ns = counts.column(1).as_primitive::<Int64Type>();
    let mut histogram = BTreeMap::new();
    for i in 0..counts.num_rows() {
        if pixels.is_null(i) {
            bail!(
                "{} rows of catalog \"{name}\" have no position on the sky ({ra}/{dec} NULL, NaN or |Dec| > 90): \
                 a HATS catalog places every row",
                ns.value(i)
            );
        }
        histogram.insert(pixels.value(i) as u64, ns.value(i) as u64);
    }
    let total: u64 = histogram.values().sum();
    if total == 0 {
        bail!("catalog \"{name}\" has no rows");
    }
    let parts = alignment(&histogram, k, args.lowest_order, args.threshold)?;
    eprintln!(
        "{total} rows into {} partitions (orders {}–{}) in {:.1} s",
        parts.len(),
        parts.iter().map(|p| p.0).min().unwrap_or(0),
        parts.iter().map(|p| p.0).max().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );

    // Pass 2: write, under a temporary folder.
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let leaf = args.out.file_name().context("--out needs a folder name")?.to_string_lossy().to_string();
    let staging = parent.join(format!(".{leaf}.importing-{}", std::process::id()));
    let result = write(args, &catalogs, &name, &ra, &dec, &parts, &staging, workers);
    match result {
        Ok(summary) => {
            std::fs::rename(&staging, &args.out)
                .with_context(|| format!("moving {} to {}", staging.display(), args.out.display()))?;
            eprintln!(
                "wrote {} rows in {} partitions{} to {} in {:.1} s",
                total,
                parts.len(),
                match (args.margin_arcsec, summary) {
                    (Some(r), margin_rows) => format!(" and {margin_rows} margin rows within {r}\""),
                    (None, _) => String::new(),
                },
                args.out.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// Margin catalog folder name.
fn margin_name(name: &str, arcsec: f64) -> String {
    format!("{name}_{}arcs", format_number(arcsec))
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{v}") }
}

/// Pass 2 and the metadata; returns the margin rows written.
#[allow(clippy::too_many_arguments)]
fn write(
    args: &HatsImportArgs,
    catalogs: &Arc<CatalogSet>,
    name: &str,
    ra: &str,
    dec: &str,
    parts: &[(u8, u64, u64)],
    staging: &Path,
    workers: usize,
) -> Result<u64> {
    let primary = staging.join(name);
    let margin = args.margin_arcsec.map(|r| staging.join(margin_name(name, r)));
    std::fs::create_dir_all(primary.join("dataset")).with_context(|| format!("creating {}", primary.display()))?;
    // Every column, with scan row ids (the sort's tie-break).
    let planned = plan_sql(&format!("SELECT * FROM {name}"), catalogs, &PlanOptions::default())?;
    let mut scan = match planned.plan {
        Plan::Scan(s) => s,
        Plan::Project { input, .. } => match *input {
            Plan::Scan(s) => s,
            _ => bail!("internal: SELECT * did not plan as a scan"),
        },
        _ => bail!("internal: SELECT * did not plan as a scan"),
    };
    scan.row_ids = true;
    let mut fields: Vec<Field> = scan.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(ROW_ID, DataType::UInt64, false));
    let input_schema = Arc::new(Schema::new(fields));
    scan.schema = input_schema.clone();
    let index = |c: &str| input_schema.index_of(c).with_context(|| format!("column {c}"));
    let spec = HatsWriteSpec {
        out: primary.clone(),
        margin_out: margin.clone(),
        margin_arcsec: args.margin_arcsec.unwrap_or(0.0),
        radec: (index(ra)?, index(dec)?),
        row_id: index(ROW_ID)?,
        partitions: parts.iter().map(|p| (p.0, p.1)).collect(),
        row_group_rows: args.row_group_rows,
        spool: staging.join(".spool"),
        memory_budget: (args.memory_mib << 20) / workers,
    };
    let plan = Plan::HatsWrite { input: Box::new(Plan::Scan(scan)), spec };
    let mut written: Vec<RecordBatch> = Vec::new();
    run_query(&plan, catalogs.clone(), Operators, ExecOptions::local(workers), |b| {
        written.push(b);
        Ok(())
    })?;
    let _ = std::fs::remove_dir_all(staging.join(".spool"));
    // (order, pixel) → rows, per catalog.
    let mut primary_rows: BTreeMap<(u8, u64), u64> = BTreeMap::new();
    let mut margin_rows: BTreeMap<(u8, u64), u64> = BTreeMap::new();
    for b in &written {
        let (o, p, m, n) = (
            b.column(0).as_primitive::<Int64Type>(),
            b.column(1).as_primitive::<Int64Type>(),
            b.column(2).as_boolean(),
            b.column(3).as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            let target = if m.value(i) { &mut margin_rows } else { &mut primary_rows };
            target.insert((o.value(i) as u8, p.value(i) as u64), n.value(i) as u64);
        }
    }
    for &(o, p, n) in parts {
        let got = primary_rows.get(&(o, p)).copied().unwrap_or(0);
        if got != n {
            bail!(
                "partition Norder={o} Npix={p}: {got} rows written, {n} counted: the catalog changed during the import"
            );
        }
    }
    let file_schema = file_schema(&input_schema);
    let total: u64 = parts.iter().map(|p| p.2).sum();
    let max_order = parts.iter().map(|p| p.0).max().unwrap_or(0);
    write_catalog_metadata(&primary, &file_schema, &primary_rows, &{
        let mut p = Properties::default();
        p.set("obs_collection", name);
        p.set("dataproduct_type", "object");
        p.set("hats_nrows", total);
        p.set("hats_col_ra", ra);
        p.set("hats_col_dec", dec);
        p.set("hats_max_rows", args.threshold);
        p.set("hats_order", max_order);
        p
    })?;
    let mut collection = Properties::default();
    collection.set("obs_collection", name);
    collection.set("hats_primary_table_url", name);
    let mut margin_total = 0;
    if let (Some(dir), Some(r)) = (&margin, args.margin_arcsec) {
        std::fs::create_dir_all(dir.join("dataset")).with_context(|| format!("creating {}", dir.display()))?;
        margin_total = margin_rows.values().sum();
        let margin_name = margin_name(name, r);
        write_catalog_metadata(dir, &file_schema, &margin_rows, &{
            let mut p = Properties::default();
            p.set("obs_collection", &margin_name);
            p.set("dataproduct_type", "margin");
            p.set("hats_nrows", margin_total);
            p.set("hats_col_ra", ra);
            p.set("hats_col_dec", dec);
            p.set("hats_primary_table_url", name);
            p.set("hats_margin_threshold", format_number(r));
            p.set("hats_order", margin_rows.keys().map(|k| k.0).max().unwrap_or(0));
            p
        })?;
        collection.set("all_margins", &margin_name);
        collection.set("default_margin", &margin_name);
    }
    let text = collection.render("HATS collection", &["obs_collection", "hats_primary_table_url"]);
    std::fs::write(staging.join("collection.properties"), text).context("writing collection.properties")?;
    Ok(margin_total)
}

/// The partitions' schema: `_healpix_29` first, then the catalog's columns.
fn file_schema(input: &Schema) -> Arc<Schema> {
    let mut fields = vec![Field::new(HEALPIX_29_COLUMN, DataType::Int64, false)];
    fields.extend(
        input
            .fields()
            .iter()
            .filter(|f| f.name() != ROW_ID && f.name() != HEALPIX_29_COLUMN)
            .map(|f| f.as_ref().clone()),
    );
    Arc::new(Schema::new(fields))
}

/// `hats.properties` (and the legacy `properties`), `partition_info.csv` and
/// `dataset/_common_metadata` of one catalog.
fn write_catalog_metadata(
    dir: &Path,
    schema: &Arc<Schema>,
    rows: &BTreeMap<(u8, u64), u64>,
    props: &Properties,
) -> Result<()> {
    let mut props = props.clone();
    props.set("hats_col_healpix", HEALPIX_29_COLUMN);
    props.set("hats_col_healpix_order", 29);
    props.set("hats_npix_suffix", ".parquet");
    props.set("hats_builder", format!("starflow v{}", env!("CARGO_PKG_VERSION")));
    props.set("hats_version", "v1.0");
    let order = [
        "obs_collection",
        "dataproduct_type",
        "hats_nrows",
        "hats_col_ra",
        "hats_col_dec",
        "hats_primary_table_url",
        "hats_margin_threshold",
    ];
    let text = props.render("HATS catalog", &order);
    for file in ["hats.properties", "properties"] {
        std::fs::write(dir.join(file), &text).with_context(|| format!("writing {}", dir.join(file).display()))?;
    }
    // hats orders the partition list by order, then pixel.
    let mut csv = String::from("Norder,Npix\n");
    let mut keys: Vec<&(u8, u64)> = rows.keys().collect();
    keys.sort();
    for (o, p) in keys {
        csv.push_str(&format!("{o},{p}\n"));
    }
    std::fs::write(dir.join("partition_info.csv"), csv).context("writing partition_info.csv")?;
    let path = dir.join("dataset").join("_common_metadata");
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let writer = ArrowWriter::try_new(file, schema.clone(), None)?;
    writer.close().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
