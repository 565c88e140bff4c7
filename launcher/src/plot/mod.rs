//! `starflow plot density`: a datashader-style sky density image of a catalog (PNG: viridis,
//! linear or log scale, RA increasing to the left, axes in degrees, a colour bar) and its counts
//! as Parquet. The counting is a distributed 2-D histogram: a `GROUP BY` of bin numbers (or of
//! HEALPix pixels), partial per worker and merged by key like any group-by.

mod canvas;
mod draw;
mod font;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use starflow_dataflow::{CatalogSet, ExecOptions, PlanOptions, plan_sql, run_query};
use starflow_operators::Operators;

use crate::cli::DensityArgs;

/// Counts on a grid of RA × Dec bins, RA increasing with `ix`.
pub struct Grid {
    pub nx: usize,
    pub ny: usize,
    /// RA of the grid's left edge (may be negative when the grid spans RA = 0), degrees.
    pub ra_lo: f64,
    pub ra_hi: f64,
    pub dec_lo: f64,
    pub dec_hi: f64,
    /// `counts[iy * nx + ix]`.
    pub counts: Vec<u64>,
}

/// `starflow plot density`.
pub fn density(args: &DensityArgs) -> Result<()> {
    let catalogs = Arc::new(crate::query::open_catalogs(std::slice::from_ref(&args.catalog))?);
    let name = catalogs.names().next().context("no catalog")?.to_string();
    let catalog = catalogs.get(&name).context("the catalog")?;
    let Some((ra, dec)) = catalog.sky_columns() else {
        bail!("catalog \"{name}\" has no RA/Dec columns (looked for ra/dec, coord_ra/coord_dec, ...)");
    };
    let workers = args.workers.unwrap_or_else(crate::query::default_workers).max(1);
    let filter = args.r#where.as_deref().map_or(String::new(), |w| format!(" WHERE ({w})"));
    // The extent, in the RA frame that keeps the sky in one piece (shifted by 180° when the
    // rows straddle RA = 0).
    let shifted = format!("((({ra} + 180) % 360) - 180)");
    let extent = run(
        &format!(
            "SELECT COUNT({dec}), MIN({ra}), MAX({ra}), MIN({shifted}), MAX({shifted}), MIN({dec}), MAX({dec}) FROM {name}{filter}"
        ),
        &catalogs,
        workers,
    )?;
    let e: Vec<f64> = (0..7).map(|i| number(&extent, i, 0)).collect::<Result<_>>()?;
    let rows = e[0] as u64;
    if rows == 0 {
        bail!("no rows with a position{}: nothing to plot", if filter.is_empty() { "" } else { " match --where" });
    }
    let wrapped = e[4] - e[3] < e[2] - e[1];
    let (x, mut ra_lo, mut ra_hi) = if wrapped { (shifted.clone(), e[3], e[4]) } else { (ra.clone(), e[1], e[2]) };
    let (mut dec_lo, mut dec_hi) = (e[5], e[6]);
    // Room around a single point or a line of them.
    if ra_hi - ra_lo < 1e-6 {
        (ra_lo, ra_hi) = (ra_lo - 0.5, ra_hi + 0.5);
    }
    if dec_hi - dec_lo < 1e-6 {
        (dec_lo, dec_hi) = ((dec_lo - 0.5).max(-90.0), (dec_hi + 0.5).min(90.0));
    }
    let (nx, ny) = bins(args.bins.as_deref(), ra_hi - ra_lo, dec_hi - dec_lo, (dec_lo + dec_hi) / 2.0)?;
    let (dra, ddec) = ((ra_hi - ra_lo) / nx as f64, (dec_hi - dec_lo) / ny as f64);
    let mut grid = Grid { nx, ny, ra_lo, ra_hi, dec_lo, dec_hi, counts: vec![0; nx * ny] };
    let where_valid = if filter.is_empty() { " WHERE".to_string() } else { format!("{filter} AND") };
    let counts = match args.healpix_order {
        None => {
            let sql = format!(
                "SELECT FLOOR(({x} - {ra_lo:?}) / {dra:?}) AS ix, FLOOR(({dec} - {dec_lo:?}) / {ddec:?}) AS iy, COUNT(*) AS n \
                 FROM {name}{where_valid} {dec} IS NOT NULL GROUP BY ix, iy"
            );
            let batches = run(&sql, &catalogs, workers)?;
            for b in &batches {
                let (ix, iy, n) = (floats(b.column(0))?, floats(b.column(1))?, ints(b.column(2))?);
                for i in 0..b.num_rows() {
                    if let (Some(x), Some(y)) =
                        (ix.is_valid(i).then(|| ix.value(i)), iy.is_valid(i).then(|| iy.value(i)))
                        && x.is_finite()
                        && y.is_finite()
                    {
                        // The maximum falls on the last bin's far edge.
                        let (x, y) = ((x as usize).min(nx - 1), (y as usize).min(ny - 1));
                        grid.counts[y * nx + x] += n.value(i) as u64;
                    }
                }
            }
            Counts::Bins
        }
        Some(order) => {
            let sql = format!(
                "SELECT HEALPIX({order}, {ra}, {dec}) AS pixel, COUNT(*) AS n FROM {name}{filter} GROUP BY pixel"
            );
            let mut pixels: HashMap<i64, u64> = HashMap::new();
            for b in &run(&sql, &catalogs, workers)? {
                let (p, n) = (ints(b.column(0))?, ints(b.column(1))?);
                for i in (0..b.num_rows()).filter(|&i| p.is_valid(i)) {
                    pixels.insert(p.value(i), n.value(i) as u64);
                }
            }
            // Each image bin shows the count of the pixel its centre falls in.
            let layer = cdshealpix::nested::get(order);
            for y in 0..ny {
                for x in 0..nx {
                    let (a, d) = (ra_lo + (x as f64 + 0.5) * dra, dec_lo + (y as f64 + 0.5) * ddec);
                    let p = layer.hash(a.rem_euclid(360.0).to_radians(), d.to_radians()) as i64;
                    grid.counts[y * nx + x] = pixels.get(&p).copied().unwrap_or(0);
                }
            }
            Counts::Pixels(pixels)
        }
    };
    let title = format!(
        "{name} · {} rows{}",
        crate::progress::count(rows),
        args.r#where.as_deref().map_or(String::new(), |w| format!(" · {w}"))
    );
    let image = draw::density_image(&grid, args.log, &title, args.healpix_order);
    image.write_png(&args.out)?;
    if let Some(path) = &args.counts {
        let batch = counts_batch(&grid, &counts, args.healpix_order)?;
        let mut out = crate::output::Output::open(crate::cli::Format::Parquet, Some(path), batch.schema())?;
        out.write(&batch)?;
        out.finish()?;
    }
    let max = grid.counts.iter().max().copied().unwrap_or(0);
    eprintln!(
        "wrote {} ({}×{} px; {nx}×{ny} bins of {:.4}° × {:.4}°; {rows} rows; at most {max} per bin{})",
        args.out.display(),
        image.width,
        image.height,
        dra,
        ddec,
        args.counts.as_ref().map_or(String::new(), |c| format!("; counts in {}", c.display()))
    );
    Ok(())
}

enum Counts {
    Bins,
    Pixels(HashMap<i64, u64>),
}

/// Bins across and down: `--bins WxH`, or 1024 across and as many down as keep the sky's
/// proportions (RA shrunk by cos Dec).
fn bins(spec: Option<&str>, ra_span: f64, dec_span: f64, dec_mid: f64) -> Result<(usize, usize)> {
    if let Some(s) = spec {
        let parsed =
            s.split_once(['x', 'X']).and_then(|(w, h)| Some((w.parse::<usize>().ok()?, h.parse::<usize>().ok()?)));
        return match parsed {
            Some((w, h)) if (1..=8192).contains(&w) && (1..=8192).contains(&h) => Ok((w, h)),
            _ => bail!("--bins needs WIDTHxHEIGHT, each from 1 to 8192 (e.g. 1024x1024), got \"{s}\""),
        };
    }
    let across = ra_span * dec_mid.to_radians().cos().max(0.05);
    Ok((1024, ((1024.0 * dec_span / across).round() as usize).clamp(16, 4096)))
}

/// Runs `sql` on this process's workers: the result's schema and batches.
fn run_planned(sql: &str, catalogs: &Arc<CatalogSet>, workers: usize) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let planned = plan_sql(sql, catalogs, &PlanOptions::default()).with_context(|| format!("planning {sql}"))?;
    let mut out = Vec::new();
    run_query(&planned.plan, catalogs.clone(), Operators, ExecOptions::local(workers), |b| {
        out.push(b);
        Ok(())
    })?;
    Ok((planned.plan.schema(), out))
}

/// Runs `sql` on this process's workers.
fn run(sql: &str, catalogs: &Arc<CatalogSet>, workers: usize) -> Result<Vec<RecordBatch>> {
    Ok(run_planned(sql, catalogs, workers)?.1)
}

/// Runs `sql` on this process's workers: the whole result as one batch.
pub(crate) fn run_table(sql: &str, catalogs: &Arc<CatalogSet>, workers: usize) -> Result<RecordBatch> {
    let (schema, batches) = run_planned(sql, catalogs, workers)?;
    Ok(arrow_select::concat::concat_batches(&schema, &batches)?)
}

fn floats(c: &ArrayRef) -> Result<Float64Array> {
    Ok(arrow_cast::cast(c, &arrow_schema::DataType::Float64)?.as_primitive::<Float64Type>().clone())
}

fn ints(c: &ArrayRef) -> Result<Int64Array> {
    Ok(arrow_cast::cast(c, &arrow_schema::DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

/// Cell (column, row) of a one-row result, as a number (NaN if NULL).
fn number(batches: &[RecordBatch], column: usize, row: usize) -> Result<f64> {
    let b = batches.iter().find(|b| b.num_rows() > row).context("an empty result")?;
    let c = floats(b.column(column))?;
    Ok(if c.is_valid(row) { c.value(row) } else { f64::NAN })
}

/// The counts: per bin (edges in degrees, RA in [0, 360)) or per HEALPix pixel (its centre).
fn counts_batch(grid: &Grid, counts: &Counts, order: Option<u8>) -> Result<RecordBatch> {
    let (dra, ddec) = ((grid.ra_hi - grid.ra_lo) / grid.nx as f64, (grid.dec_hi - grid.dec_lo) / grid.ny as f64);
    let f = |v: Vec<f64>| Arc::new(Float64Array::from(v)) as ArrayRef;
    let i = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    Ok(match (counts, order) {
        (Counts::Pixels(pixels), Some(order)) => {
            let mut p: Vec<(&i64, &u64)> = pixels.iter().collect();
            p.sort();
            let centres: Vec<(f64, f64)> =
                p.iter().map(|(px, _)| cdshealpix::nested::center(order, **px as u64)).collect();
            RecordBatch::try_from_iter([
                ("pixel", i(p.iter().map(|(px, _)| **px).collect())),
                ("ra", f(centres.iter().map(|c| c.0.to_degrees()).collect())),
                ("dec", f(centres.iter().map(|c| c.1.to_degrees()).collect())),
                ("count", i(p.iter().map(|(_, n)| **n as i64).collect())),
            ])?
        }
        _ => {
            let cells: Vec<(usize, usize, u64)> = (0..grid.ny)
                .flat_map(|y| (0..grid.nx).map(move |x| (x, y)))
                .map(|(x, y)| (x, y, grid.counts[y * grid.nx + x]))
                .filter(|c| c.2 > 0)
                .collect();
            let edge = |x: usize| (grid.ra_lo + x as f64 * dra).rem_euclid(360.0);
            RecordBatch::try_from_iter([
                ("ix", i(cells.iter().map(|c| c.0 as i64).collect())),
                ("iy", i(cells.iter().map(|c| c.1 as i64).collect())),
                ("ra_min", f(cells.iter().map(|c| edge(c.0)).collect())),
                ("ra_max", f(cells.iter().map(|c| edge(c.0 + 1)).collect())),
                ("dec_min", f(cells.iter().map(|c| grid.dec_lo + c.1 as f64 * ddec).collect())),
                ("dec_max", f(cells.iter().map(|c| grid.dec_lo + (c.1 + 1) as f64 * ddec).collect())),
                ("count", i(cells.iter().map(|c| c.2 as i64).collect())),
            ])?
        }
    })
}
