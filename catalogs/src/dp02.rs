//! Deterministic demo catalog shaped like the LSST DP0.2 `Object` "skinny" table: a
//! clustered sky cut into tracts of 7×7 patches, one Parquet file per tract.

use std::fs::File;
use std::panic::resume_unwind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{CatalogError, Result};

// The field in degrees: the DP0.2 simulated sky, ~300 deg² after cos(dec).
const RA_MIN: f64 = 50.0;
const RA_MAX: f64 = 75.0;
const DEC_MIN: f64 = -42.0;
const DEC_MAX: f64 = -27.0;
/// Patches per tract side (DP0.2: 7 × 7, `patch = py * 7 + px`).
const PATCHES: usize = 7;
/// Tract id of tract index 0; tract `t` has id `2000 + t`.
const FIRST_TRACT_ID: i32 = 2000;
/// Upper bound on `files` (keeps tract ids and object ids in range).
const MAX_FILES: usize = 100_000;
/// `objectId = OBJECT_ID_BASE + (tract << 32) + position of the row in its file`.
pub(crate) const OBJECT_ID_BASE: i64 = 1_567_000_000_000_000_000;
/// Gaussian clusters / over-densities, and the share of rows in the smooth background.
const CLUSTERS: usize = 320;
const BACKGROUND_SHARE: f64 = 0.8;
/// Large-scale gradient: relative background density change across the field.
const GRADIENT_RA: f64 = 0.25;
const GRADIENT_DEC: f64 = -0.35;
/// PRNG stream of the sky model; tract index `t` uses stream `t`.
const MODEL_STREAM: u64 = u64::MAX;
/// AB magnitude of a 1 nJy source.
const ZERO_POINT: f64 = 31.4;
/// Coadd 5σ depths of bands u, g, r, i, z, y, and the chance a measurement failed (NaN).
const DEPTH_5SIGMA: [f64; 6] = [25.8, 26.9, 27.0, 26.6, 25.9, 25.0];
const FAILURE: [f64; 6] = [0.04, 0.025, 0.02, 0.03, 0.03, 0.04];
/// Detection completeness: logistic in true i magnitude, 50 % at `DETECT_M50`.
const DETECT_M50: f64 = 26.5;
const DETECT_WIDTH: f64 = 0.22;
/// Faint end of the drawn number counts (completeness there is ~1 %).
const FAINT_LIMIT: f64 = 27.8;

/// Options of [`generate_dp02`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dp02Options {
    /// Number of tracts, i.e. Parquet files (1 ..= 100 000).
    pub files: usize,
    /// Total number of rows over all files (at most 2³² − 1).
    pub rows: usize,
    /// Seed of every random choice: the same options give byte-identical files.
    pub seed: u64,
    /// Maximum rows per Parquet row group (≥ 1).
    pub row_group_rows: usize,
}

impl Default for Dp02Options {
    /// The small demo catalog: 8 files, 200 000 rows, seed 42, 16 384-row row groups.
    fn default() -> Self {
        Self { files: 8, rows: 200_000, seed: 42, row_group_rows: 16_384 }
    }
}

impl Dp02Options {
    /// The benchmark catalog: 109 files, 7 714 406 rows, seed 42, 16 384-row row groups.
    pub fn seed_sized() -> Self {
        Self { files: 109, rows: 7_714_406, seed: 42, row_group_rows: 16_384 }
    }

    fn validate(&self) -> Result<()> {
        let problem = if self.files == 0 || self.files > MAX_FILES {
            format!("\"files\" must be in 1..={MAX_FILES}, got {}", self.files)
        } else if self.rows > u32::MAX as usize {
            format!("\"rows\" must be at most {}, got {}", u32::MAX, self.rows)
        } else if self.row_group_rows == 0 {
            "\"row_group_rows\" must be at least 1".to_string()
        } else {
            return Ok(());
        };
        Err(CatalogError::InvalidOption(problem))
    }
}

/// What [`generate_dp02`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dp02Summary {
    /// The files, `<out>/tract_<id>.parquet`, in tract order.
    pub files: Vec<PathBuf>,
    /// Rows over all files (the requested `rows`).
    pub rows: usize,
    /// Row groups over all files.
    pub row_groups: usize,
}

/// The Arrow schema of the generated catalog (16 columns of the DP0.2 `Object` table).
///
/// Magnitudes, their errors and `refExtendedness` are nullable but hold NaN, never null,
/// for non-detections and failed measurements.
pub fn dp02_schema() -> SchemaRef {
    let column = |name: &str, data_type: DataType| Field::new(name, data_type, false);
    let mut fields = vec![
        column("objectId", DataType::Int64),
        column("coord_ra", DataType::Float64),
        column("coord_dec", DataType::Float64),
        column("tract", DataType::Int32),
        column("patch", DataType::Int32),
        column("detect_isPrimary", DataType::Boolean),
    ];
    let floats = "refExtendedness mag_u mag_g mag_r mag_i mag_z mag_y magerr_g magerr_r magerr_i";
    fields.extend(floats.split(' ').map(|name| Field::new(name, DataType::Float32, true)));
    Arc::new(Schema::new(fields))
}

/// Writes a DP0.2-shaped demo catalog into `out` (created if missing): one file
/// `tract_<id>.parquet` per tract (ids `2000 ..`), exactly `opts.rows` rows in all.
///
/// Sky model: a smooth background with a mild gradient plus a few hundred Gaussian
/// clusters (σ 1–10 arcmin); each tract gets rows in proportion to the model's mass inside
/// it (largest-remainder rounding), so files differ in size. Tracts are generated in
/// parallel from independent PRNG streams (seed, tract index); rows are sorted by
/// `(patch, coord_dec)` so row-group statistics on coordinates are spatially selective.
/// `tract_*.parquet` files already in `out` (an earlier catalog) are removed first, so the
/// folder holds exactly this catalog; other files are left alone. Output is
/// byte-identical for the same options on the same platform (the model uses `exp`, `ln`…).
pub fn generate_dp02(out: &Path, opts: &Dp02Options) -> Result<Dp02Summary> {
    opts.validate()?;
    std::fs::create_dir_all(out).map_err(io_error(out))?;
    for entry in std::fs::read_dir(out).map_err(io_error(out))? {
        let path = entry.map_err(io_error(out))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("tract_") && name.ends_with(".parquet") {
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    let model = SkyModel::new(opts);
    let paths: Vec<PathBuf> = (0..opts.files).map(|t| out.join(format!("tract_{}.parquet", tract_id(t)))).collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("tract"), true)
        .set_column_dictionary_enabled(ColumnPath::from("patch"), true)
        .build();
    let next = AtomicUsize::new(0);
    // Each worker takes the next tract until none is left; returns its row-group count.
    let worker = || -> Result<usize> {
        let mut row_groups = 0;
        loop {
            let t = next.fetch_add(1, Ordering::Relaxed);
            if t >= opts.files {
                return Ok(row_groups);
            }
            let rows = model.tract_rows(t, opts.seed);
            row_groups += write_tract(&paths[t], &props, &rows, t, opts.row_group_rows)?;
        }
    };
    let threads = crate::cores();
    let outcomes: Vec<Result<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(opts.files)).map(|_| scope.spawn(worker)).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| resume_unwind(p))).collect()
    });
    let row_groups = outcomes.into_iter().sum::<Result<usize>>()?;
    tracing::info!(files = opts.files, rows = opts.rows, row_groups, out = %out.display(),
        "dp02 demo catalog written");
    Ok(Dp02Summary { files: paths, rows: opts.rows, row_groups })
}

fn tract_id(index: usize) -> i32 {
    FIRST_TRACT_ID + index as i32
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CatalogError + '_ {
    move |source| CatalogError::Io { path: path.to_path_buf(), source }
}

/// Writes one tract's sorted rows in batches of at most `group_rows`; returns row groups.
fn write_tract(path: &Path, props: &WriterProperties, rows: &[Row], index: usize, group_rows: usize) -> Result<usize> {
    let parquet_error = |source| CatalogError::Parquet { path: path.to_path_buf(), source };
    let schema = dp02_schema();
    let file = File::create(path).map_err(io_error(path))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props.clone())).map_err(parquet_error)?;
    let tract = tract_id(index);
    for (k, chunk) in rows.chunks(group_rows).enumerate() {
        let id0 = OBJECT_ID_BASE + (i64::from(tract) << 32) + (k * group_rows) as i64;
        let f64s = |f: fn(&Row) -> f64| -> ArrayRef { Arc::new(Float64Array::from_iter_values(chunk.iter().map(f))) };
        let f32s =
            |f: &dyn Fn(&Row) -> f32| -> ArrayRef { Arc::new(Float32Array::from_iter_values(chunk.iter().map(f))) };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values((0..chunk.len() as i64).map(|k| id0 + k))),
            f64s(|r| r.ra),
            f64s(|r| r.dec),
            Arc::new(Int32Array::from_iter_values(chunk.iter().map(|_| tract))),
            Arc::new(Int32Array::from_iter_values(chunk.iter().map(|r| r.patch))),
            Arc::new(BooleanArray::from_iter(chunk.iter().map(|r| Some(r.primary)))),
            f32s(&|r| r.extendedness),
        ];
        columns.extend((0..6).map(|band| f32s(&|r| r.mag[band])));
        columns.extend((0..3).map(|band| f32s(&|r| r.magerr_gri[band])));
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .map_err(|source| CatalogError::Arrow { path: path.to_path_buf(), source })?;
        writer.write(&batch).map_err(parquet_error)?;
    }
    Ok(writer.close().map_err(parquet_error)?.num_row_groups())
}

/// Tract layout: `bands` Dec bands of equal height tile the field south to north, each cut
/// into equal-width RA columns; `bands ≈ √(files · height / width)` keeps cells near square
/// on the sky. Band column counts differ by at most one (extra columns go to the northern,
/// wider bands), so the `files` cells always tile the whole field: an exact grid when
/// `bands` divides `files`, else a brick layout like the rings of the LSST sky map.
/// Tract index runs west→east within a band, bands south→north.
#[derive(Debug, Clone)]
struct TractGrid {
    columns: Vec<usize>,
    starts: Vec<usize>,
}

/// A tract's rectangle in (ra, dec) degrees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) ra0: f64,
    pub(crate) ra1: f64,
    pub(crate) dec0: f64,
    pub(crate) dec1: f64,
}

impl TractGrid {
    fn new(files: usize) -> Self {
        let width = (RA_MAX - RA_MIN) * ((DEC_MIN + DEC_MAX) / 2.0).to_radians().cos();
        let bands = ((files as f64 * (DEC_MAX - DEC_MIN) / width).sqrt().round() as usize).clamp(1, files);
        let (base, extra) = (files / bands, files % bands);
        let columns: Vec<usize> = (0..bands).map(|b| base + usize::from(b >= bands - extra)).collect();
        let starts = (0..bands).map(|b| columns[..b].iter().sum()).collect();
        Self { columns, starts }
    }

    fn len(&self) -> usize {
        self.columns.iter().sum()
    }

    fn cell(&self, index: usize) -> Cell {
        let band = self.starts.partition_point(|&s| s <= index) - 1;
        let col = (index - self.starts[band]) as f64;
        let h = (DEC_MAX - DEC_MIN) / self.columns.len() as f64;
        let w = (RA_MAX - RA_MIN) / self.columns[band] as f64;
        let dec0 = DEC_MIN + band as f64 * h;
        Cell { ra0: RA_MIN + col * w, ra1: RA_MIN + (col + 1.0) * w, dec0, dec1: dec0 + h }
    }

    /// Tract index of a position (positions outside the field clamp to edge tracts).
    fn locate(&self, ra: f64, dec: f64) -> usize {
        let band = bin(dec, DEC_MIN, DEC_MAX, self.columns.len());
        self.starts[band] + bin(ra, RA_MIN, RA_MAX, self.columns[band])
    }
}

impl Cell {
    /// DP0.2 patch number `py * 7 + px` of a position inside this cell.
    pub(crate) fn patch(&self, ra: f64, dec: f64) -> i32 {
        let px = bin(ra, self.ra0, self.ra1, PATCHES);
        (bin(dec, self.dec0, self.dec1, PATCHES) * PATCHES + px) as i32
    }
}

/// Which of `n` equal bins of `[lo, hi)` holds `x`, clamped to `0..n`.
fn bin(x: f64, lo: f64, hi: f64, n: usize) -> usize {
    (((x - lo) / (hi - lo) * n as f64).floor().max(0.0) as usize).min(n - 1)
}

/// A Gaussian over-density: centre, widths in degrees, total (unnormalised) mass.
#[derive(Debug, Clone)]
struct Cluster {
    ra: f64,
    dec: f64,
    sigma_ra: f64,
    sigma_dec: f64,
    weight: f64,
}

impl Cluster {
    fn mass_in(&self, c: &Cell) -> f64 {
        let ra = normal_mass(self.ra, self.sigma_ra, c.ra0, c.ra1);
        self.weight * ra * normal_mass(self.dec, self.sigma_dec, c.dec0, c.dec1)
    }

    /// A position from this cluster truncated to `c` (per-axis rejection).
    fn sample(&self, c: &Cell, rng: &mut Rng) -> (f64, f64) {
        let axis = |rng: &mut Rng, mu: f64, s: f64, lo: f64, hi: f64| loop {
            let x = mu + s * rng.normal();
            if (lo..hi).contains(&x) {
                return x;
            }
        };
        let ra = axis(rng, self.ra, self.sigma_ra, c.ra0, c.ra1);
        (ra, axis(rng, self.dec, self.sigma_dec, c.dec0, c.dec1))
    }
}

/// The whole sky, built once and shared by the workers: tract geometry, clusters, rows per
/// tract, and per tract its position mixture: `(weight, None)` for the background, then
/// `(weight, Some(cluster))` for each cluster with a non-negligible mass in the tract.
#[derive(Debug, Clone)]
struct SkyModel {
    grid: TractGrid,
    clusters: Vec<Cluster>,
    rows: Vec<usize>,
    mixtures: Vec<Vec<(f64, Option<usize>)>>,
}

impl SkyModel {
    fn new(opts: &Dp02Options) -> Self {
        let grid = TractGrid::new(opts.files);
        let mut rng = Rng::new(opts.seed, MODEL_STREAM);
        let (sin0, sin1) = (DEC_MIN.to_radians().sin(), DEC_MAX.to_radians().sin());
        let mut cluster = |_| {
            let ra = RA_MIN + rng.uniform() * (RA_MAX - RA_MIN);
            let dec = (sin0 + rng.uniform() * (sin1 - sin0)).asin().to_degrees();
            let sigma_arcmin = 10f64.powf(rng.uniform());
            let weight = sigma_arcmin * (0.6 * rng.normal()).exp();
            let sigma_dec = sigma_arcmin / 60.0;
            let sigma_ra = sigma_dec / dec.to_radians().cos();
            Cluster { ra, dec, sigma_ra, sigma_dec, weight }
        };
        let clusters: Vec<Cluster> = (0..CLUSTERS).map(&mut cluster).collect();
        let mut mixtures: Vec<Vec<(f64, Option<usize>)>> = (0..grid.len())
            .map(|t| {
                let cell = grid.cell(t);
                // Dropping masses < 1e-6 of a cluster bounds the rejection sampling cost.
                let clustered = (clusters.iter().enumerate())
                    .map(|(i, c)| (c.mass_in(&cell), i))
                    .filter(|&(m, i)| m > 1e-6 * clusters[i].weight);
                let first = (background_mass(&cell), None);
                std::iter::once(first).chain(clustered.map(|(m, i)| (m, Some(i)))).collect()
            })
            .collect();
        let total = |bg: bool| -> f64 {
            let parts = mixtures.iter().flatten().filter(|c| c.1.is_none() == bg);
            parts.map(|c| c.0).sum()
        };
        let bg_scale = BACKGROUND_SHARE / total(true);
        let cl_scale = (1.0 - BACKGROUND_SHARE) / total(false);
        for (mass, cluster) in mixtures.iter_mut().flatten() {
            *mass *= if cluster.is_none() { bg_scale } else { cl_scale };
        }
        let expected: Vec<f64> =
            (mixtures.iter()).map(|m| opts.rows as f64 * m.iter().map(|c| c.0).sum::<f64>()).collect();
        let rows = apportion(&expected, opts.rows);
        Self { grid, clusters, rows, mixtures }
    }

    /// All rows of tract `t`, sorted by `(patch, coord_dec, coord_ra)`.
    fn tract_rows(&self, t: usize, seed: u64) -> Vec<Row> {
        let (cell, mixture) = (self.grid.cell(t), &self.mixtures[t]);
        let total: f64 = mixture.iter().map(|c| c.0).sum();
        let mut rng = Rng::new(seed, t as u64);
        let mut row = |_| {
            let mut pick = rng.uniform() * total;
            let mut component = mixture.iter().filter(|c| {
                pick -= c.0;
                pick < 0.0
            });
            let cluster = component.next().and_then(|c| c.1);
            let (ra, dec) = loop {
                let (ra, dec) = match cluster {
                    None => sample_background(&cell, &mut rng),
                    Some(i) => self.clusters[i].sample(&cell, &mut rng),
                };
                // Guards against rounding at cell edges: the row must locate here.
                if self.grid.locate(ra, dec) == t {
                    break (ra, dec);
                }
            };
            Row::new(ra, dec, cell.patch(ra, dec), cluster.is_some(), &mut rng)
        };
        let mut rows: Vec<Row> = (0..self.rows[t]).map(&mut row).collect();
        rows.sort_by(|a, b| (a.patch.cmp(&b.patch)).then(a.dec.total_cmp(&b.dec)).then(a.ra.total_cmp(&b.ra)));
        rows
    }
}

/// Largest-remainder rounding of `expected` to integers summing to exactly `total`.
fn apportion(expected: &[f64], total: usize) -> Vec<usize> {
    // The floors sum to at most `total`: `expected` sums to `total` up to rounding (< 1).
    let mut counts: Vec<usize> = expected.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..expected.len()).collect();
    order.sort_by(|&a, &b| expected[b].fract().total_cmp(&expected[a].fract()).then(a.cmp(&b)));
    for k in 0..total.saturating_sub(counts.iter().sum()) {
        counts[order[k % order.len()]] += 1;
    }
    counts
}

/// Background density along RA (linear gradient), relative.
fn background_ra(ra: f64) -> f64 {
    1.0 + GRADIENT_RA * ((ra - RA_MIN) / (RA_MAX - RA_MIN) - 0.5)
}

/// Background density along Dec: cos(dec) (equal area on the sphere) times a gradient.
fn background_dec(dec: f64) -> f64 {
    let gradient = 1.0 + GRADIENT_DEC * ((dec - DEC_MIN) / (DEC_MAX - DEC_MIN) - 0.5);
    dec.to_radians().cos() * gradient
}

/// Background mass of a cell (midpoint rule in Dec, 64 steps; exact in RA).
fn background_mass(c: &Cell) -> f64 {
    let h = (c.dec1 - c.dec0) / 64.0;
    let dec_mass: f64 = (0..64).map(|k| background_dec(c.dec0 + (k as f64 + 0.5) * h)).sum();
    (c.ra1 - c.ra0) * background_ra((c.ra0 + c.ra1) / 2.0) * dec_mass * h
}

/// A background position in `c` by rejection against a bound of the density on the cell
/// (cos is largest nearest the equator, each linear factor at one end of its range).
fn sample_background(c: &Cell, rng: &mut Rng) -> (f64, f64) {
    let gradient = |d: f64| background_dec(d) / d.to_radians().cos();
    let cos_max = c.dec0.abs().min(c.dec1.abs()).to_radians().cos();
    let bound = background_ra(c.ra0).max(background_ra(c.ra1)) * cos_max * gradient(c.dec0).max(gradient(c.dec1));
    loop {
        let ra = c.ra0 + rng.uniform() * (c.ra1 - c.ra0);
        let dec = c.dec0 + rng.uniform() * (c.dec1 - c.dec0);
        if rng.uniform() * bound < background_ra(ra) * background_dec(dec) {
            return (ra, dec);
        }
    }
}

/// One catalog row before sorting and id assignment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) ra: f64,
    pub(crate) dec: f64,
    pub(crate) patch: i32,
    pub(crate) primary: bool,
    pub(crate) extendedness: f32,
    pub(crate) mag: [f32; 6],
    pub(crate) magerr_gri: [f32; 3],
}

impl Row {
    /// Photometry: class (cluster members are mostly galaxies), true i magnitude from
    /// number counts `∝ 10^(slope·m)` thinned by detection completeness, colours around
    /// galaxy / stellar-locus values, then per-band flux noise at the band's depth. A
    /// failed measurement or S/N < 1 gives NaN; `magerr = 2.5/ln10 · σ_flux / flux`,
    /// i.e. ≈ 0.217 · 10^(0.4 (m − m5)).
    pub(crate) fn new(ra: f64, dec: f64, patch: i32, in_cluster: bool, rng: &mut Rng) -> Self {
        let (p_galaxy, p_star) = if in_cluster { (0.95, 0.02) } else { (0.64, 0.33) };
        let class = rng.uniform();
        let star = (p_galaxy..p_galaxy + p_star).contains(&class);
        let extendedness = match class {
            c if c < p_galaxy => 1.0,
            _ if star => 0.0,
            _ => f32::NAN,
        };
        let (slope, bright) = if star { (0.18, 15.5) } else { (0.35, 17.0) };
        let lo = 10f64.powf(slope * (bright - FAINT_LIMIT));
        let i = loop {
            let m = FAINT_LIMIT + (lo + rng.uniform() * (1.0 - lo)).log10() / slope;
            if rng.uniform() * (1.0 + ((m - DETECT_M50) / DETECT_WIDTH).exp()) < 1.0 {
                break m;
            }
        };
        let n = [0.0; 5].map(|_| rng.normal());
        let (ug, gr, ri, iz, zy) = if star {
            let gr = 0.2 + 1.3 * rng.uniform();
            let ri = (0.55 * gr - 0.1).max(0.0) + 0.05 * n[0];
            let iz = 0.45 * ri + 0.04 * n[2];
            (1.0 + 0.9 * gr + 0.1 * n[1], gr, ri, iz, 0.25 * ri + 0.04 * n[3])
        } else {
            let gr = 0.65 + 0.25 * n[1];
            (0.6 + 0.35 * n[0], gr, 0.35 + 0.15 * n[2], 0.25 + 0.12 * n[3], 0.15 + 0.12 * n[4])
        };
        let r = i + ri;
        let truth = [r + gr + ug, r + gr, r, i, i - iz, i - iz - zy];
        let (mut mag, mut err) = ([f32::NAN; 6], [f32::NAN; 6]);
        for band in 0..6 {
            let sigma = 10f64.powf(-0.4 * (DEPTH_5SIGMA[band] - ZERO_POINT)) / 5.0;
            let flux = 10f64.powf(-0.4 * (truth[band] - ZERO_POINT)) + sigma * rng.normal();
            if rng.uniform() >= FAILURE[band] && flux > sigma {
                mag[band] = (ZERO_POINT - 2.5 * flux.log10()) as f32;
                err[band] = (2.5 / std::f64::consts::LN_10 * sigma / flux) as f32;
            }
        }
        let primary = rng.uniform() < 0.85;
        Row { ra, dec, patch, primary, extendedness, mag, magerr_gri: [err[1], err[2], err[3]] }
    }
}

/// Mass of N(mu, s²) in `[lo, hi)`, accurate in both tails (no `2 − 2` cancellation).
fn normal_mass(mu: f64, s: f64, lo: f64, hi: f64) -> f64 {
    let k = s * std::f64::consts::SQRT_2;
    let (a, b) = ((lo - mu) / k, (hi - mu) / k);
    let mass = if a >= 0.0 {
        erfc(a) - erfc(b)
    } else if b <= 0.0 {
        erfc(-b) - erfc(-a)
    } else {
        2.0 - erfc(-a) - erfc(b)
    };
    (0.5 * mass).max(0.0)
}

/// Complementary error function (Numerical Recipes `erfcc`, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    const C: [f64; 10] = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * (-z * z + C.iter().rev().fold(0.0, |acc, &c| acc * t + c)).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// xoshiro256** seeded through splitmix64 from `(seed, stream)`; Box–Muller normals.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
    spare: Option<f64>,
}

impl Rng {
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut x = seed ^ splitmix64(&mut stream.wrapping_add(0x5851_F42D_4C95_7F2D));
        Self { s: [0; 4].map(|_| splitmix64(&mut x)), spare: None }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller; the second value is kept for the next call).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        let angle = std::f64::consts::TAU * self.uniform();
        self.spare = Some(radius * angle.sin());
        radius * angle.cos()
    }
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    /// A fresh, empty temp folder unique to this test and process.
    fn temp_out(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("starflow-dp02-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn read_file(path: &Path) -> Vec<RecordBatch> {
        let file = File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        reader.map(|b| b.unwrap()).collect()
    }

    fn f32_col(batch: &RecordBatch, name: &str) -> Vec<f32> {
        batch.column_by_name(name).unwrap().as_primitive::<Float32Type>().values().to_vec()
    }

    fn f64_col(batch: &RecordBatch, name: &str) -> Vec<f64> {
        batch.column_by_name(name).unwrap().as_primitive::<Float64Type>().values().to_vec()
    }

    fn i32_col(batch: &RecordBatch, name: &str) -> Vec<i32> {
        batch.column_by_name(name).unwrap().as_primitive::<Int32Type>().values().to_vec()
    }

    fn opts(files: usize, rows: usize, seed: u64) -> Dp02Options {
        Dp02Options { files, rows, seed, ..Dp02Options::default() }
    }

    #[test]
    fn generates_exact_row_count_and_unique_ids() {
        let out = temp_out("count");
        let summary = generate_dp02(&out, &opts(5, 20_000, 42)).unwrap();
        assert_eq!(summary.rows, 20_000);
        assert_eq!(summary.files.len(), 5);
        let mut ids = HashSet::new();
        let mut per_file = Vec::new();
        for (k, path) in summary.files.iter().enumerate() {
            assert_eq!(path, &out.join(format!("tract_{}.parquet", 2000 + k)));
            let batches = read_file(path);
            assert_eq!(batches[0].schema(), dp02_schema());
            let mut rows = 0;
            for batch in &batches {
                let col = batch.column_by_name("objectId").unwrap().as_primitive::<Int64Type>();
                assert!(col.values().iter().all(|&id| id > 0 && ids.insert(id)));
                rows += batch.num_rows();
            }
            per_file.push(rows);
        }
        assert_eq!(per_file.iter().sum::<usize>(), 20_000);
        assert!(per_file.iter().any(|&n| n != per_file[0]), "{per_file:?}");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn same_seed_gives_identical_files() {
        let (a, b, c) = (temp_out("seed-a"), temp_out("seed-b"), temp_out("seed-c"));
        let first = generate_dp02(&a, &opts(3, 6_000, 7)).unwrap();
        let second = generate_dp02(&b, &opts(3, 6_000, 7)).unwrap();
        let other = generate_dp02(&c, &opts(3, 6_000, 8)).unwrap();
        let bytes = |p: &PathBuf| std::fs::read(p).unwrap();
        for (x, y) in first.files.iter().zip(&second.files) {
            assert_eq!(bytes(x), bytes(y), "{}", x.display());
        }
        for (x, y) in first.files.iter().zip(&other.files) {
            assert_ne!(bytes(x), bytes(y), "{}", x.display());
        }
        for dir in [a, b, c] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn rows_lie_inside_their_tract_and_patch() {
        let out = temp_out("inside");
        let summary = generate_dp02(&out, &opts(7, 14_000, 3)).unwrap();
        let grid = TractGrid::new(7);
        assert_eq!(grid.len(), 7);
        for (index, path) in summary.files.iter().enumerate() {
            let cell = grid.cell(index);
            let mut last = (-1, f64::NEG_INFINITY);
            for batch in read_file(path) {
                let (ra, dec) = (f64_col(&batch, "coord_ra"), f64_col(&batch, "coord_dec"));
                let (tract, patch) = (i32_col(&batch, "tract"), i32_col(&batch, "patch"));
                for k in 0..batch.num_rows() {
                    assert_eq!(tract[k], tract_id(index));
                    assert_eq!(grid.locate(ra[k], dec[k]), index);
                    assert!((cell.ra0..=cell.ra1).contains(&ra[k]));
                    assert!((cell.dec0..=cell.dec1).contains(&dec[k]));
                    assert_eq!(patch[k], cell.patch(ra[k], dec[k]));
                    assert!((0..49).contains(&patch[k]));
                    assert!((patch[k], dec[k]) >= last, "rows not sorted by (patch, dec)");
                    last = (patch[k], dec[k]);
                }
            }
        }
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn mag_i_has_nans_and_faint_tail() {
        let out = temp_out("mags");
        let summary = generate_dp02(&out, &opts(4, 40_000, 11)).unwrap();
        let (mut mag_i, mut mag_u, mut err_i, mut ext) = (vec![], vec![], vec![], vec![]);
        for path in &summary.files {
            for batch in read_file(path) {
                mag_i.extend(f32_col(&batch, "mag_i"));
                mag_u.extend(f32_col(&batch, "mag_u"));
                err_i.extend(f32_col(&batch, "magerr_i"));
                ext.extend(f32_col(&batch, "refExtendedness"));
            }
        }
        let n = mag_i.len() as f64;
        let frac = |v: &[f32], f: fn(f32) -> bool| v.iter().filter(|&&x| f(x)).count() as f64 / n;
        let nan_i = frac(&mag_i, f32::is_nan);
        assert!(nan_i > 0.01 && nan_i < 0.15, "NaN fraction of mag_i {nan_i}");
        assert!(frac(&mag_u, f32::is_nan) > nan_i);
        let bright = frac(&mag_i, |m| m < 26.0);
        assert!(bright > 0.5 && bright < 0.9, "mag_i < 26 fraction {bright}");
        let faintest = mag_i.iter().copied().filter(|m| m.is_finite()).fold(f32::MIN, f32::max);
        assert!(faintest > 26.0, "faintest mag_i {faintest}");
        assert!(mag_i.iter().zip(&err_i).all(|(m, e)| m.is_nan() == e.is_nan()));
        let galaxies = frac(&ext, |x| x == 1.0);
        assert!(galaxies > 0.6 && galaxies < 0.8, "galaxy fraction {galaxies}");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn regenerating_replaces_an_earlier_catalog() {
        let out = temp_out("regen");
        generate_dp02(&out, &Dp02Options { files: 6, rows: 600, ..Dp02Options::default() }).unwrap();
        std::fs::write(out.join("notes.txt"), "keep me").unwrap();
        let summary = generate_dp02(&out, &Dp02Options { files: 2, rows: 200, ..Dp02Options::default() }).unwrap();
        let mut parquet: Vec<PathBuf> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        parquet.sort();
        assert_eq!(parquet, summary.files);
        assert!(out.join("notes.txt").exists());
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn row_groups_respect_size() {
        let out = temp_out("groups");
        let options = Dp02Options { row_group_rows: 700, ..opts(2, 5_000, 5) };
        let summary = generate_dp02(&out, &options).unwrap();
        let mut groups = 0;
        for path in &summary.files {
            let file = File::open(path).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            let meta = builder.metadata();
            let rows: i64 = meta.row_groups().iter().map(|g| g.num_rows()).sum();
            assert!(meta.row_groups().iter().all(|g| g.num_rows() <= 700));
            assert_eq!(meta.num_row_groups(), (rows as usize).div_ceil(700));
            groups += meta.num_row_groups();
        }
        assert_eq!(groups, summary.row_groups);
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn invalid_options_are_rejected() {
        let out = temp_out("invalid");
        for bad in [opts(0, 10, 1), Dp02Options { row_group_rows: 0, ..opts(1, 10, 1) }] {
            let err = generate_dp02(&out, &bad).unwrap_err();
            assert!(matches!(err, CatalogError::InvalidOption(_)), "{err}");
        }
        assert!(!out.exists());
    }
}
