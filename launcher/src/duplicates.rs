//! `starflow duplicates`: the pairs of a catalog's rows closer than a radius (a self-crossmatch,
//! each pair once), their separations and their sky distribution — the DP0.2 duplicates study
//! as one command. Writes `pairs.parquet`, `pairs.png` (where the pairs are) and `summary.txt`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use clap::Args;

use crate::cli::{DensityArgs, Format};
use crate::output::Output;

/// Id column names looked for, in this order (case-insensitive).
const ID_COLUMNS: &[&str] = &["objectId", "object_id", "source_id", "sourceId", "id"];

/// Neighbours kept per row (pairs beyond the 1000 nearest of one row are left out).
const MAX_NEIGHBOURS: usize = 1000;

#[derive(Debug, Args)]
pub struct DuplicatesArgs {
    /// The catalog: NAME=PATH.
    #[arg(long, value_name = "NAME=PATH")]
    pub catalog: String,
    /// Pairs closer than this, arcseconds.
    #[arg(long, default_value_t = 1.0)]
    pub radius: f64,
    /// Folder for pairs.parquet, pairs.png and summary.txt.
    #[arg(long, default_value = "duplicates")]
    pub out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'w')]
    pub workers: Option<usize>,
}

/// `starflow duplicates`.
pub fn run(args: &DuplicatesArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let catalogs = Arc::new(crate::query::open_catalogs(std::slice::from_ref(&args.catalog))?);
    let name = catalogs.names().next().context("no catalog")?.to_string();
    let catalog = catalogs.get(&name).context("the catalog")?;
    let Some((ra, dec)) = catalog.sky_columns() else {
        bail!("catalog \"{name}\" has no RA/Dec columns (looked for ra/dec, coord_ra/coord_dec, ...)");
    };
    let id = ID_COLUMNS.iter().find_map(|want| {
        catalog.schema.fields().iter().find(|f| f.name().eq_ignore_ascii_case(want)).map(|f| f.name().clone())
    });
    let workers = args.workers.unwrap_or_else(crate::query::default_workers).max(1);
    let side = |n: u8, col: &str| format!("{name}_{n}_{col}");
    // Each pair once: the first by id (or, without ids, by position).
    let (ids, first) = match &id {
        Some(id) => (
            format!("{} AS id_1, {} AS id_2, ", side(1, id), side(2, id)),
            format!("{} < {}", side(1, id), side(2, id)),
        ),
        None => (
            String::new(),
            format!(
                "({r1} < {r2} OR ({r1} = {r2} AND {d1} < {d2}))",
                r1 = side(1, &ra),
                r2 = side(2, &ra),
                d1 = side(1, &dec),
                d2 = side(2, &dec)
            ),
        ),
    };
    let sql = format!(
        "SELECT {ids}{} AS ra, {} AS dec, {} AS ra_2, {} AS dec_2, _dist_arcsec AS sep_arcsec \
         FROM XMATCH({name}, {name}, {:?}, {MAX_NEIGHBOURS}) WHERE {first} ORDER BY sep_arcsec",
        side(1, &ra),
        side(1, &dec),
        side(2, &ra),
        side(2, &dec),
        args.radius
    );
    let pairs = crate::plot::run_table(&sql, &catalogs, workers)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let parquet = args.out.join("pairs.parquet");
    let mut out = Output::open(Format::Parquet, Some(&parquet), pairs.schema())?;
    out.write(&pairs)?;
    out.finish()?;
    let summary = summary(&name, catalog.num_rows(), args.radius, &pairs, id.is_some());
    std::fs::write(args.out.join("summary.txt"), &summary).context("writing summary.txt")?;
    print!("{summary}");
    if pairs.num_rows() > 0 {
        crate::plot::density(&DensityArgs {
            catalog: format!("pairs={}", parquet.display()),
            r#where: None,
            out: args.out.join("pairs.png"),
            bins: None,
            // Pixels of 13.7′: pairs are few, a per-pixel count shows where they gather.
            healpix_order: Some(8),
            log: true,
            counts: None,
            workers: Some(workers),
        })?;
    }
    println!("wrote {} in {:.1} s", args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// The report's text: counts, the separations' distribution, the closest pairs.
fn summary(name: &str, rows: u64, radius: f64, pairs: &RecordBatch, with_ids: bool) -> String {
    let n = pairs.num_rows();
    let sep = pairs
        .column_by_name("sep_arcsec")
        .map(|c| c.as_primitive::<Float64Type>().values().to_vec())
        .unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(s, "duplicates of {name} within {radius}\" ({rows} rows)");
    let _ = writeln!(s, "  pairs: {n}");
    if with_ids {
        let members: HashSet<i64> = ["id_1", "id_2"]
            .iter()
            .filter_map(|c| pairs.column_by_name(c))
            .filter_map(|c| arrow_cast::cast(c, &arrow_schema::DataType::Int64).ok())
            .flat_map(|c| c.as_primitive::<arrow_array::types::Int64Type>().values().to_vec())
            .collect();
        let share = 100.0 * members.len() as f64 / rows.max(1) as f64;
        let _ = writeln!(s, "  rows in a pair: {} ({share:.3} %)", members.len());
    }
    if n == 0 {
        return s;
    }
    let _ = writeln!(s, "  separation (arcsec): median {:.3}, closest {:.3}", sep[n / 2], sep[0]);
    let _ = writeln!(s, "  separations:");
    let bins = 10;
    let width = radius / bins as f64;
    for b in 0..bins {
        let count = sep.iter().filter(|d| ((*d / width) as usize).min(bins - 1) == b).count();
        let bar = "#".repeat((50 * count).div_ceil(n.max(1)));
        let _ = writeln!(s, "    {:>6.3} – {:>6.3}  {count:>9}  {bar}", b as f64 * width, (b + 1) as f64 * width);
    }
    let _ = writeln!(s, "  closest pairs:");
    let col = |c: &str| pairs.column_by_name(c).cloned();
    let show = |c: &Option<arrow_array::ArrayRef>, i: usize| {
        c.as_ref()
            .map_or(String::new(), |a| arrow_cast::display::array_value_to_string(a.as_ref(), i).unwrap_or_default())
    };
    let (id1, id2, ra, dec) = (col("id_1"), col("id_2"), col("ra"), col("dec"));
    for (i, d) in sep.iter().enumerate().take(10) {
        if with_ids {
            let _ = write!(s, "    {} · {}", show(&id1, i), show(&id2, i));
        }
        let _ = writeln!(s, "    at ({}, {})  {d:.4}\"", show(&ra, i), show(&dec, i));
    }
    if id1.as_ref().is_some_and(|c| c.null_count() > 0) {
        let _ = writeln!(s, "  (some pairs have no id)");
    }
    s
}
