//! `starflow hats import`: partitions any catalog into a HATS catalog (and its margin
//! catalog) that LSDB and starflow read, as one dataflow reading the catalog twice:
//!
//! one [`Plan::HatsWrite`] whose first input counts rows per HEALPix pixel at the highest
//! order (a group-by), from which every worker cuts the partitions as hats-import does, and
//! whose second input, read once the counts are in, is a scan of every column: rows meet on
//! the worker of their partition (and of the partitions whose margin they fall in), which
//! writes the files. Several processes (`--processes`, `--hosts`, srun) share the work as in a
//! query; they must see the output folder at the same path (a shared file system).
//!
//! Everything is written under a temporary folder next to `--out`, renamed into place at the
//! end: a failed import leaves nothing half-written, and an existing `--out` is never touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_schema::{DataType, Field, Schema};
use clap::Args;
use parquet::arrow::ArrowWriter;
use starflow_catalogs::hats::HEALPIX_29_COLUMN;
use starflow_catalogs::hats::properties::Properties;
use starflow_dataflow::plan::{HatsWriteSpec, ROW_ID};
use starflow_dataflow::{CatalogSet, ExecOptions, Plan, PlanOptions, Shipped, connect, plan_sql, run_query};
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
    #[command(flatten)]
    pub cluster: crate::cli::ClusterArgs,
}

/// `starflow hats import` (on process 0 of a run; the other processes help).
pub fn import(args: &HatsImportArgs) -> Result<()> {
    crate::cluster::run_with(&args.cluster, |topology| import_in(args, topology))
}

/// What process 0 prepares before the dataflow runs.
struct Prepared {
    catalogs: CatalogSet,
    plan: Plan,
    name: String,
    ra: String,
    dec: String,
    staging: PathBuf,
    file_schema: Arc<Schema>,
}

fn import_in(args: &HatsImportArgs, topology: &crate::cluster::Topology) -> Result<()> {
    let started = std::time::Instant::now();
    let (workers, processes) = (topology.threads(&args.cluster), topology.processes());
    let leader = topology.process() == 0;
    crate::trace::set_rank(topology.process());
    let fingerprint = crate::cluster::fingerprint(&format!("hats import {:?} {:?} {workers}", args.catalog, args.out));
    let cluster = topology.options(std::time::Duration::from_secs(args.cluster.connect_timeout), fingerprint);
    let budget = (args.memory_mib << 20) / workers;
    let (prepared, connected) = match cluster {
        None => (Some(prepare(args, budget)?), None),
        Some(options) if leader => {
            let prepared = prepare(args, budget);
            let shipped = match &prepared {
                Ok(p) => Shipped::Run { plan: p.plan.clone(), catalogs: p.catalogs.of_plan(&p.plan) },
                Err(e) => Shipped::Failed(format!("{e:#}")),
            };
            let connected = connect(&options, Some(&shipped.encode()?))?;
            (Some(prepared?), Some(connected))
        }
        Some(options) => {
            let connected = connect(&options, None)?;
            match Shipped::decode(connected.shipped.as_deref().unwrap_or_default())? {
                Shipped::Run { plan, catalogs } => {
                    let options =
                        ExecOptions { workers, cluster: Some(connected), profile: false, metrics: Default::default() };
                    run_query(&plan, Arc::new(catalogs.into_iter().collect()), Operators, options, |_| Ok(()))?;
                    return Ok(());
                }
                Shipped::Failed(message) => bail!("process 0 could not start the import: {message}"),
                _ => bail!("process 0 is not running an import"),
            }
        }
    };
    let p = prepared.expect("process 0 prepared the import");
    let options = ExecOptions { workers, cluster: connected, profile: false, metrics: Default::default() };
    let mut written: Vec<RecordBatch> = Vec::new();
    let ran = run_query(&p.plan, Arc::new(p.catalogs.clone()), Operators, options, |b| {
        written.push(b);
        Ok(())
    });
    let finished = ran.map_err(anyhow::Error::from).and_then(|_| finish(args, &p, &written));
    match finished {
        Ok((rows, partitions, margin_rows)) => {
            std::fs::rename(&p.staging, &args.out)
                .with_context(|| format!("moving {} to {}", p.staging.display(), args.out.display()))?;
            eprintln!(
                "wrote {rows} rows in {partitions} partitions{} to {} in {:.1} s ({processes} process(es) × {workers} workers)",
                match args.margin_arcsec {
                    Some(r) => format!(" and {margin_rows} margin rows within {r}\""),
                    None => String::new(),
                },
                args.out.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&p.staging);
            Err(e)
        }
    }
}

/// Checks the arguments, opens the catalog, plans the import and makes the staging folder.
fn prepare(args: &HatsImportArgs, memory_budget: usize) -> Result<Prepared> {
    if args.out.exists() {
        bail!("{} already exists: hats import writes a new folder and never overwrites one", args.out.display());
    }
    if let Some(r) = args.margin_arcsec
        && !(r.is_finite() && r > 0.0)
    {
        bail!("--margin-arcsec must be a positive number of arcseconds, got {r}");
    }
    if args.highest_order > 29 || args.lowest_order > args.highest_order {
        bail!(
            "--highest-order must be at most 29 and --lowest-order at most --highest-order (got {} and {})",
            args.highest_order,
            args.lowest_order
        );
    }
    let catalogs = crate::query::open_catalogs(std::slice::from_ref(&args.catalog))?;
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
    let quoted = |c: &str| format!("\"{}\"", c.replace('"', "\"\""));
    // Rows per pixel at the highest order.
    let counts_sql = format!(
        "SELECT HEALPIX({k}, {r}, {d}) AS pixel, COUNT(*) AS n FROM {name} GROUP BY pixel",
        k = args.highest_order,
        r = quoted(&ra),
        d = quoted(&dec)
    );
    let catalogs_arc = Arc::new(catalogs);
    let counts = plan_sql(&counts_sql, &catalogs_arc, &PlanOptions::default())?.plan;
    // Every column, with scan row ids (the sort's tie-break).
    let mut scan = match plan_sql(&format!("SELECT * FROM {name}"), &catalogs_arc, &PlanOptions::default())?.plan {
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
    // Everything goes to a staging folder beside --out (absolute: every process writes there).
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let parent = parent.canonicalize().with_context(|| format!("resolving {}", parent.display()))?;
    let leaf = args.out.file_name().context("--out needs a folder name")?.to_string_lossy().to_string();
    let staging = parent.join(format!(".{leaf}.importing-{}", std::process::id()));
    let primary = staging.join(&name);
    let margin = args.margin_arcsec.map(|r| staging.join(margin_name(&name, r)));
    std::fs::create_dir_all(primary.join("dataset")).with_context(|| format!("creating {}", primary.display()))?;
    let spec = HatsWriteSpec {
        out: primary,
        margin_out: margin,
        margin_arcsec: args.margin_arcsec.unwrap_or(0.0),
        radec: (index(&ra)?, index(&dec)?),
        row_id: index(ROW_ID)?,
        highest_order: args.highest_order,
        lowest_order: args.lowest_order,
        threshold: args.threshold,
        row_group_rows: args.row_group_rows,
        spool: staging.join(".spool"),
        memory_budget,
    };
    let plan = Plan::HatsWrite { counts: Box::new(counts), input: Box::new(Plan::Scan(scan)), spec };
    let catalogs = Arc::try_unwrap(catalogs_arc).unwrap_or_else(|a| (*a).clone());
    Ok(Prepared { catalogs, plan, name, ra, dec, staging, file_schema: file_schema(&input_schema) })
}

/// Margin catalog folder name.
fn margin_name(name: &str, arcsec: f64) -> String {
    format!("{name}_{}arcs", format_number(arcsec))
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{v}") }
}

/// The metadata, once every partition is written: returns rows, partitions, margin rows.
fn finish(args: &HatsImportArgs, p: &Prepared, written: &[RecordBatch]) -> Result<(u64, usize, u64)> {
    let _ = std::fs::remove_dir_all(p.staging.join(".spool"));
    let (name, ra, dec) = (p.name.as_str(), p.ra.as_str(), p.dec.as_str());
    let primary = p.staging.join(name);
    // (order, pixel) → rows, per catalog.
    let mut primary_rows: BTreeMap<(u8, u64), u64> = BTreeMap::new();
    let mut margin_rows: BTreeMap<(u8, u64), u64> = BTreeMap::new();
    for b in written {
        let (o, px, m, n) = (
            b.column(0).as_primitive::<Int64Type>(),
            b.column(1).as_primitive::<Int64Type>(),
            b.column(2).as_boolean(),
            b.column(3).as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            let target = if m.value(i) { &mut margin_rows } else { &mut primary_rows };
            target.insert((o.value(i) as u8, px.value(i) as u64), n.value(i) as u64);
        }
    }
    let total: u64 = primary_rows.values().sum();
    if total == 0 {
        bail!("catalog \"{name}\" has no rows");
    }
    let max_order = primary_rows.keys().map(|k| k.0).max().unwrap_or(0);
    write_catalog_metadata(&primary, &p.file_schema, &primary_rows, &{
        let mut props = Properties::default();
        props.set("obs_collection", name);
        props.set("dataproduct_type", "object");
        props.set("hats_nrows", total);
        props.set("hats_col_ra", ra);
        props.set("hats_col_dec", dec);
        props.set("hats_max_rows", args.threshold);
        props.set("hats_order", max_order);
        props
    })?;
    let mut collection = Properties::default();
    collection.set("obs_collection", name);
    collection.set("hats_primary_table_url", name);
    let mut margin_total = 0;
    if let Some(r) = args.margin_arcsec {
        let margin_name = margin_name(name, r);
        let dir = p.staging.join(&margin_name);
        std::fs::create_dir_all(dir.join("dataset")).with_context(|| format!("creating {}", dir.display()))?;
        margin_total = margin_rows.values().sum();
        write_catalog_metadata(&dir, &p.file_schema, &margin_rows, &{
            let mut props = Properties::default();
            props.set("obs_collection", &margin_name);
            props.set("dataproduct_type", "margin");
            props.set("hats_nrows", margin_total);
            props.set("hats_col_ra", ra);
            props.set("hats_col_dec", dec);
            props.set("hats_primary_table_url", name);
            props.set("hats_margin_threshold", format_number(r));
            props.set("hats_order", margin_rows.keys().map(|k| k.0).max().unwrap_or(0));
            props
        })?;
        collection.set("all_margins", &margin_name);
        collection.set("default_margin", &margin_name);
    }
    let text = collection.render("HATS collection", &["obs_collection", "hats_primary_table_url"]);
    std::fs::write(p.staging.join("collection.properties"), text).context("writing collection.properties")?;
    Ok((total, primary_rows.len(), margin_total))
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
