//! The next release of a generated DP0.2-shaped catalog (`starflow gen dp02-release`): most
//! tract files identical to the base (hard links), a few reprocessed (same objects with new
//! photometry, a few split or merged), a few new tracts, a few removed.

use std::collections::HashSet;
use std::fs::File;
use std::io::ErrorKind;
use std::panic::resume_unwind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use crate::dp02::{Cell, OBJECT_ID_BASE, Rng, Row, dp02_schema};
use crate::error::{CatalogError, Result};
use crate::parquet::load_footer;

/// Standard deviation of the magnitude change of a reprocessed measurement.
const MAG_NOISE: f64 = 0.05;
/// Share of a reprocessed tract's objects split in two, and of merge events (each merge
/// replaces two neighbouring objects by one). At least one of each in a non-trivial file.
const SPLIT_SHARE: f64 = 0.01;
const MERGE_SHARE: f64 = 0.01;
/// Separation of the two parts of a split object, arcsec; each part lies closer than
/// that to the parent position (the parts straddle the parent's flux-weighted centroid).
const SPLIT_SEPARATION: (f64, f64) = (0.3, 0.95);
/// Flux share of the first part of a split object.
const SPLIT_FLUX: (f64, f64) = (0.3, 0.7);
/// New tracts: like the base sky model, 80 % smooth background and Gaussian clusters at
/// its density (320 clusters over the ~300 deg² DP0.2 field), σ 1–10 arcmin.
const BACKGROUND_SHARE: f64 = 0.8;
const CLUSTERS_PER_DEG2: f64 = 320.0 / 300.0;
/// Log-normal spread of a new tract's row count around the base's median file.
const ADDED_ROWS_SPREAD: f64 = 0.15;
/// Upper bound on the number of new tracts.
const MAX_ADDED: usize = 100_000;
/// Column positions in [`dp02_schema`]: the 10 Float32 columns start at `FLOATS`;
/// `refExtendedness`, then `mag_u..mag_y` (6), then `magerr_g, magerr_r, magerr_i`.
const FLOATS: usize = 6;
const MAGS: std::ops::Range<usize> = 1..7;
const MAGERR: usize = 7;
/// Index in the floats of the magnitude a `magerr` column belongs to (g, r, i).
const MAGERR_BAND: [usize; 3] = [2, 3, 4];
/// Bands whose flux weights a blend's centroid, best first (i, r, g, z, y, u).
const WEIGHT_BANDS: [usize; 6] = [4, 3, 2, 5, 6, 1];

/// Options of [`generate_release`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseOptions {
    /// Seed of every random choice: the same base and options give byte-identical files.
    pub seed: u64,
    /// Share of the base files reprocessed (0 ..= 1).
    pub replace_frac: f64,
    /// New tracts, as a share of the number of base files (finite, ≥ 0).
    pub add_frac: f64,
    /// Share of the base files dropped (0 ..= 1; at least one file is always kept).
    pub remove_frac: f64,
}

impl Default for ReleaseOptions {
    /// Seed 1; 2 % of the files reprocessed, 1 % new tracts, 1 % removed.
    fn default() -> Self {
        Self { seed: 1, replace_frac: 0.02, add_frac: 0.01, remove_frac: 0.01 }
    }
}

impl ReleaseOptions {
    fn validate(&self) -> Result<()> {
        let share = |name: &str, value: f64| {
            (!(0.0..=1.0).contains(&value)).then(|| format!("\"{name}\" must be in 0..=1, got {value}"))
        };
        let problem = share("replace_frac", self.replace_frac).or_else(|| share("remove_frac", self.remove_frac));
        let problem = problem.or_else(|| {
            (!self.add_frac.is_finite() || self.add_frac < 0.0)
                .then(|| format!("\"add_frac\" must be finite and ≥ 0, got {}", self.add_frac))
        });
        problem.map_or(Ok(()), |p| Err(CatalogError::InvalidOption(p)))
    }
}

/// What [`generate_release`] wrote: file names (not paths), base files sorted by name, new
/// tracts in tract order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSummary {
    /// Base files carried over unchanged (hard links, or copies where linking failed).
    pub unchanged: Vec<String>,
    /// Base files reprocessed: same name, new content.
    pub replaced: Vec<String>,
    /// New tracts, `tract_<id>.parquet`.
    pub added: Vec<String>,
    /// Base files left out of the release.
    pub removed: Vec<String>,
    /// Rows over all files of the new release.
    pub rows: u64,
}

/// Writes into `out` the next release of the DP0.2-shaped catalog in `base` (a folder of
/// `*.parquet` files written by [`generate_dp02`](crate::dp02::generate_dp02)).
///
/// `out` must not exist or be an empty folder. Base files are listed by name, then a
/// seeded shuffle picks `round(frac · files)` of them (at least one for a nonzero share)
/// to remove and, among the rest, to replace; at least one file is kept, empty files are
/// never picked for replacement. Unchanged files are hard-linked into `out` (copied where
/// linking fails). A replaced file keeps its name, objects, row order `(patch, coord_dec)`
/// and row-group size; every finite magnitude moves by N(0, 0.05²), ~1 % of the objects
/// are split in two (new `objectId`s, parts < 1″ from the parent) and ~1 % of them merged
/// with their nearest neighbour in the patch (new `objectId`). New tracts get ids after the
/// largest base tract, lie east of the field in a column of tract-sized cells, and are
/// drawn like the base (background plus clusters, the generator's photometry) with the
/// median base file's row count. New `objectId`s stay in their tract's id block when it is
/// free, else above every id of the base. Same base and options: byte-identical output.
/// On an error, files already written to `out` are left there.
pub fn generate_release(base: &Path, out: &Path, opts: &ReleaseOptions) -> Result<ReleaseSummary> {
    opts.validate()?;
    let files = scan_base(base)?;
    check_out(out)?;
    let plan = plan_release(&files, opts)?;
    std::fs::create_dir_all(out).map_err(io_error(out))?;

    let mut rows = 0;
    for &i in &plan.unchanged {
        let (from, to) = (&files[i].path, out.join(&files[i].file_name));
        if std::fs::hard_link(from, &to).is_err() {
            std::fs::copy(from, &to).map_err(io_error(&to))?;
        }
        rows += files[i].rows;
    }
    let jobs: Vec<Job> = (plan.replaced.iter().map(|r| Job::Replace(r.clone())))
        .chain(plan.added.iter().map(|a| Job::Add(a.clone())))
        .collect();
    rows += run_jobs(&jobs, &files, out, opts.seed)?;

    let names = |indices: &[usize]| -> Vec<String> { indices.iter().map(|&i| files[i].name.clone()).collect() };
    let summary = ReleaseSummary {
        unchanged: names(&plan.unchanged),
        replaced: names(&plan.replaced.iter().map(|r| r.file).collect::<Vec<_>>()),
        added: plan.added.iter().map(|a| a.name.clone()).collect(),
        removed: names(&plan.removed),
        rows,
    };
    tracing::info!(unchanged = summary.unchanged.len(), replaced = summary.replaced.len(),
        added = summary.added.len(), removed = summary.removed.len(), rows, out = %out.display(),
        "dp02 release written");
    Ok(summary)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CatalogError + '_ {
    move |source| CatalogError::Io { path: path.to_path_buf(), source }
}

/// `out` must be missing or an empty folder.
fn check_out(out: &Path) -> Result<()> {
    let refuse = |message: &str| {
        let source = std::io::Error::new(ErrorKind::AlreadyExists, message.to_string());
        Err(CatalogError::Io { path: out.to_path_buf(), source })
    };
    match std::fs::metadata(out) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CatalogError::Io { path: out.to_path_buf(), source }),
        Ok(meta) if !meta.is_dir() => refuse("the release output exists and is not a folder"),
        Ok(_) => match std::fs::read_dir(out).map_err(io_error(out))?.next() {
            None => Ok(()),
            Some(_) => refuse("the release output folder is not empty"),
        },
    }
}

/// One base file, from its footer.
#[derive(Debug, Clone)]
struct BaseFile {
    path: PathBuf,
    /// The file name as written (may be non-UTF-8) and as reported.
    file_name: std::ffi::OsString,
    name: String,
    footer: ArrowReaderMetadata,
    rows: u64,
    /// Rows of a full row group when the file has more than one, else None.
    group_rows: Option<usize>,
    ranges: Ranges,
}

/// Value ranges of one file (None: the file has no rows).
#[derive(Debug, Clone, Copy, Default)]
struct Ranges {
    ids: Option<(i64, i64)>,
    tracts: Option<(i32, i32)>,
    ra: Option<(f64, f64)>,
    dec: Option<(f64, f64)>,
}

/// Lists `base/*.parquet` by name and reads their footers; each must have the DP0.2 schema.
fn scan_base(base: &Path) -> Result<Vec<BaseFile>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(base).map_err(io_error(base))? {
        let path = entry.map_err(io_error(base))?.path();
        if path.extension().is_some_and(|e| e == "parquet") && path.is_file() {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(CatalogError::Empty { path: base.display().to_string() });
    }
    paths.sort();
    let expected = dp02_schema();
    paths
        .into_iter()
        .map(|path| {
            let footer = load_footer(&path)?;
            for (k, field) in expected.fields().iter().enumerate() {
                let found = footer.schema().fields().get(k);
                if found.is_none_or(|f| f.name() != field.name() || f.data_type() != field.data_type()) {
                    let found =
                        found.map_or("no such column".to_string(), |f| format!("{} {}", f.name(), f.data_type()));
                    return Err(CatalogError::InvalidOption(format!(
                        "{}: not a DP0.2 catalog file: column {k} should be {} {}, found {found}",
                        path.display(),
                        field.name(),
                        field.data_type()
                    )));
                }
            }
            let meta = footer.metadata();
            let groups: Vec<usize> = meta.row_groups().iter().map(|g| g.num_rows() as usize).collect();
            let ranges = match footer_ranges(&footer) {
                Some(ranges) => ranges,
                None => object_ranges(&read_objects(&path, &footer)?),
            };
            let file_name = path.file_name().unwrap_or_default().to_os_string();
            Ok(BaseFile {
                name: file_name.to_string_lossy().into_owned(),
                file_name,
                rows: meta.file_metadata().num_rows() as u64,
                group_rows: (groups.len() > 1).then(|| groups[0]),
                ranges,
                footer,
                path,
            })
        })
        .collect()
}

/// Ranges from the row-group statistics; None where a non-empty row group has none.
fn footer_ranges(footer: &ArrowReaderMetadata) -> Option<Ranges> {
    fn fold<T: Copy + PartialOrd>(
        footer: &ArrowReaderMetadata,
        column: usize,
        get: fn(&Statistics) -> Option<(T, T)>,
    ) -> Option<Option<(T, T)>> {
        let mut range: Option<(T, T)> = None;
        for group in footer.metadata().row_groups().iter().filter(|g| g.num_rows() > 0) {
            let (lo, hi) = get(group.column(column).statistics()?)?;
            range = Some(match range {
                None => (lo, hi),
                Some((a, b)) => (if lo < a { lo } else { a }, if hi > b { hi } else { b }),
            });
        }
        Some(range)
    }
    Some(Ranges {
        ids: fold(footer, 0, |s| match s {
            Statistics::Int64(s) => s.min_opt().copied().zip(s.max_opt().copied()),
            _ => None,
        })?,
        tracts: fold(footer, 3, |s| match s {
            Statistics::Int32(s) => s.min_opt().copied().zip(s.max_opt().copied()),
            _ => None,
        })?,
        ra: fold(footer, 1, |s| match s {
            Statistics::Double(s) => s.min_opt().copied().zip(s.max_opt().copied()),
            _ => None,
        })?,
        dec: fold(footer, 2, |s| match s {
            Statistics::Double(s) => s.min_opt().copied().zip(s.max_opt().copied()),
            _ => None,
        })?,
    })
}

fn object_ranges(objects: &[Object]) -> Ranges {
    fn widen<T: Copy + PartialOrd>(range: Option<(T, T)>, x: T) -> Option<(T, T)> {
        Some(range.map_or((x, x), |(a, b)| (if x < a { x } else { a }, if x > b { x } else { b })))
    }
    objects.iter().fold(Ranges::default(), |r, o| Ranges {
        ids: widen(r.ids, o.id),
        tracts: widen(r.tracts, o.tract),
        ra: widen(r.ra, o.ra),
        dec: widen(r.dec, o.dec),
    })
}

/// Which base files go where, and the new tracts.
#[derive(Debug, Clone)]
struct Plan {
    unchanged: Vec<usize>,
    replaced: Vec<Replace>,
    added: Vec<Add>,
    removed: Vec<usize>,
}

/// A base file to reprocess; its new objects take ids `first_id ..`; row groups of
/// `group_rows` rows (None: one row group).
#[derive(Debug, Clone)]
struct Replace {
    file: usize,
    first_id: i64,
    group_rows: Option<usize>,
}

/// A new tract: its id, file name, sky cell, rows, ids `first_id ..`, row-group size.
#[derive(Debug, Clone)]
struct Add {
    tract: i32,
    name: String,
    cell: Cell,
    rows: usize,
    first_id: i64,
    group_rows: Option<usize>,
}

#[derive(Debug, Clone)]
enum Job {
    Replace(Replace),
    Add(Add),
}

/// `round(frac · n)`, at least 1 for a nonzero share of a non-empty base.
fn share_count(frac: f64, n: usize) -> usize {
    if frac == 0.0 || n == 0 { 0 } else { ((frac * n as f64).round() as usize).max(1) }
}

/// Splits and merge events of a reprocessed file of `n` rows.
fn split_merge_counts(n: usize) -> (usize, usize) {
    let count = |share: f64, min_rows: usize| {
        if n < min_rows { 0 } else { ((share * n as f64).round() as usize).max(1) }
    };
    let splits = count(SPLIT_SHARE, 1);
    // A merge takes two objects no other event uses.
    let merges = count(MERGE_SHARE, 2).min(n.saturating_sub(splits) / 2);
    (splits, merges)
}

/// PRNG stream of a named purpose (FNV-1a), so choices do not depend on processing order.
fn stream(label: &str) -> u64 {
    label.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
        items.swap(i, j);
    }
}

/// Id ranges (inclusive) already taken; hands out fresh blocks.
#[derive(Debug, Default)]
struct IdSpace {
    taken: Vec<(i64, i64)>,
}

impl IdSpace {
    /// `count` fresh ids starting at `preferred` when that block is free, else just above
    /// every id taken so far; returns the first.
    fn take(&mut self, preferred: Option<i64>, count: usize) -> Result<i64> {
        let block = |start: i64| start.checked_add((count as i64).max(1) - 1).map(|end| (start, end));
        let free = |(s, e): (i64, i64)| self.taken.iter().all(|&(a, b)| e < a || s > b);
        let start = match preferred.and_then(block) {
            Some(b) if free(b) => b.0,
            _ => self.taken.iter().map(|t| t.1).max().map_or(Some(OBJECT_ID_BASE), |m| m.checked_add(1)).ok_or_else(
                || CatalogError::InvalidOption("no objectIds left above the base catalog's largest".to_string()),
            )?,
        };
        let b = block(start)
            .ok_or_else(|| CatalogError::InvalidOption("no objectIds left above the base catalog's".to_string()))?;
        self.taken.push(b);
        Ok(start)
    }
}

fn plan_release(files: &[BaseFile], opts: &ReleaseOptions) -> Result<Plan> {
    let n = files.len();
    let mut rng = Rng::new(opts.seed, stream("dp02-release:choose"));
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut rng);
    let removing = share_count(opts.remove_frac, n).min(n - 1);
    let mut removed: Vec<usize> = order[..removing].to_vec();
    let replacing = share_count(opts.replace_frac, n).min(n - removing);
    let mut replaced: Vec<usize> =
        order[removing..].iter().copied().filter(|&i| files[i].rows > 0).take(replacing).collect();
    removed.sort_unstable();
    replaced.sort_unstable();
    let unchanged: Vec<usize> = (0..n).filter(|i| !removed.contains(i) && !replaced.contains(i)).collect();

    // The row-group limit the base was written with, where some file shows it (has more
    // than one row group); a file of one row group keeps one unless it outgrows that limit.
    let group_rows = files.iter().filter_map(|f| f.group_rows).max();
    let mut ids = IdSpace { taken: files.iter().filter_map(|f| f.ranges.ids).collect() };
    let mut replace = Vec::new();
    for &file in &replaced {
        let (splits, merges) = split_merge_counts(files[file].rows as usize);
        let preferred = files[file].ranges.ids.and_then(|(_, hi)| hi.checked_add(1));
        let first_id = ids.take(preferred, 2 * splits + merges)?;
        replace.push(Replace { file, first_id, group_rows: files[file].group_rows.or(group_rows) });
    }

    let adding = share_count(opts.add_frac, n);
    if adding > MAX_ADDED {
        return Err(CatalogError::InvalidOption(format!(
            "\"add_frac\" asks for {adding} new tracts, at most {MAX_ADDED} allowed"
        )));
    }
    let added = plan_added(files, adding, opts.seed, group_rows, &mut ids)?;
    Ok(Plan { unchanged, replaced: replace, added, removed })
}

/// New tracts after the largest base tract id, as a column of tract-sized cells east of the
/// field (west when east would pass RA 360°), bands south to north.
fn plan_added(
    files: &[BaseFile],
    adding: usize,
    seed: u64,
    group_rows: Option<usize>,
    ids: &mut IdSpace,
) -> Result<Vec<Add>> {
    if adding == 0 {
        return Ok(Vec::new());
    }
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    let boxes: Vec<((f64, f64), (f64, f64))> = files.iter().filter_map(|f| f.ranges.ra.zip(f.ranges.dec)).collect();
    let (cell_w, cell_h, field) = match (median(boxes.iter().map(|b| b.0.1 - b.0.0).collect()), boxes.first()) {
        (Some(w), Some(first)) => {
            let h = median(boxes.iter().map(|b| b.1.1 - b.1.0).collect()).unwrap_or(w);
            let field = boxes
                .iter()
                .fold(*first, |(r, d), (br, bd)| ((r.0.min(br.0), r.1.max(br.1)), (d.0.min(bd.0), d.1.max(bd.1))));
            (w.max(1e-3), h.max(1e-3), field)
        }
        // Only empty base files: any small cell will do, the new tracts are empty too.
        _ => (1.0, 1.0, ((0.0, 1.0), (0.0, 1.0))),
    };
    let ((ra_lo, ra_hi), (dec_lo, dec_hi)) = field;
    let bands = (((dec_hi - dec_lo) / cell_h).round() as usize).max(1);
    let band_h = ((dec_hi - dec_lo) / bands as f64).max(1e-3);
    let columns = adding.div_ceil(bands) as f64;
    let east = ra_hi + columns * cell_w <= 360.0;

    let median_rows = median(files.iter().map(|f| f.rows as f64).collect()).unwrap_or(0.0);
    let mut tract = files.iter().filter_map(|f| f.ranges.tracts.map(|t| t.1)).max().unwrap_or(0);
    let names: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let mut added = Vec::with_capacity(adding);
    for k in 0..adding {
        // The next tract id whose file name is free (a base file may carry another name).
        let name = loop {
            tract = tract
                .checked_add(1)
                .ok_or_else(|| CatalogError::InvalidOption("no tract ids left after the base's largest".into()))?;
            let name = format!("tract_{tract}.parquet");
            if !names.contains(name.as_str()) {
                break name;
            }
        };
        let (band, column) = ((k % bands) as f64, (k / bands) as f64);
        let ra0 = if east { ra_hi + column * cell_w } else { ra_lo - (column + 1.0) * cell_w };
        let dec0 = dec_lo + band * band_h;
        let cell = Cell { ra0, ra1: ra0 + cell_w, dec0, dec1: dec0 + band_h };
        let mut rng = Rng::new(seed, stream(&format!("dp02-release:rows:{tract}")));
        let rows = (median_rows * (ADDED_ROWS_SPREAD * rng.normal()).exp()).round() as usize;
        let preferred = (i64::from(tract) << 32).checked_add(OBJECT_ID_BASE).filter(|_| tract >= 0);
        let first_id = ids.take(preferred, rows)?;
        added.push(Add { tract, name, cell, rows, first_id, group_rows });
    }
    Ok(added)
}

/// Runs the replace / add jobs on all cores; returns the rows written.
fn run_jobs(jobs: &[Job], files: &[BaseFile], out: &Path, seed: u64) -> Result<u64> {
    let next = AtomicUsize::new(0);
    let worker = || -> Vec<(usize, Result<u64>)> {
        let mut done = Vec::new();
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(k) else { return done };
            let result = match job {
                Job::Replace(r) => replace_file(&files[r.file], r, &out.join(&files[r.file].file_name), seed),
                Job::Add(a) => add_tract(a, &out.join(&a.name), seed),
            };
            done.push((k, result));
        }
    };
    let threads = crate::cores().min(jobs.len());
    let mut outcomes: Vec<(usize, Result<u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| resume_unwind(p))).collect()
    });
    // The first error in job order, whatever the thread timing.
    outcomes.sort_by_key(|o| o.0);
    outcomes.into_iter().map(|o| o.1).sum()
}

/// One catalog row, all 16 columns (floats as read: NaN or, in foreign files, null).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Object {
    id: i64,
    ra: f64,
    dec: f64,
    tract: i32,
    patch: i32,
    primary: bool,
    floats: [Option<f32>; 10],
}

impl Object {
    /// Row order of the generator: `(patch, coord_dec, coord_ra)`, then `objectId`.
    fn order(a: &Self, b: &Self) -> std::cmp::Ordering {
        (a.patch.cmp(&b.patch)).then(a.dec.total_cmp(&b.dec)).then(a.ra.total_cmp(&b.ra)).then(a.id.cmp(&b.id))
    }

    fn mag(&self, band: usize) -> Option<f64> {
        self.floats[band].filter(|m| m.is_finite()).map(f64::from)
    }
}

fn read_objects(path: &Path, footer: &ArrowReaderMetadata) -> Result<Vec<Object>> {
    let arrow_error = |source| CatalogError::Arrow { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io_error(path))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, footer.clone())
        .build()
        .map_err(|source| CatalogError::Parquet { path: path.to_path_buf(), source })?;
    let mut objects = Vec::with_capacity(footer.metadata().file_metadata().num_rows() as usize);
    for batch in reader {
        let batch = batch.map_err(arrow_error)?;
        let c = |k: usize| batch.column(k);
        let (id, ra, dec) = (c(0).as_primitive::<Int64Type>(), c(1).as_primitive::<Float64Type>(), c(2));
        let dec = dec.as_primitive::<Float64Type>();
        let (tract, patch) = (c(3).as_primitive::<Int32Type>(), c(4).as_primitive::<Int32Type>());
        let primary = c(5).as_boolean();
        let floats: Vec<_> = (0..10).map(|k| c(FLOATS + k).as_primitive::<Float32Type>()).collect();
        for row in 0..batch.num_rows() {
            objects.push(Object {
                id: id.value(row),
                ra: ra.value(row),
                dec: dec.value(row),
                tract: tract.value(row),
                patch: patch.value(row),
                primary: primary.value(row),
                floats: std::array::from_fn(|k| floats[k].is_valid(row).then(|| floats[k].value(row))),
            });
        }
    }
    Ok(objects)
}

/// Writes `objects` (already in row order) like the generator: snappy, plain encoding but
/// dictionaries for `tract` and `patch`, row groups of `group_rows` (None: one row group).
fn write_objects(path: &Path, objects: &[Object], group_rows: Option<usize>) -> Result<u64> {
    let parquet_error = |source| CatalogError::Parquet { path: path.to_path_buf(), source };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(group_rows.unwrap_or(objects.len()).max(1)))
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("tract"), true)
        .set_column_dictionary_enabled(ColumnPath::from("patch"), true)
        .build();
    let schema = dp02_schema();
    let file = File::create(path).map_err(io_error(path))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_error)?;
    for chunk in objects.chunks(group_rows.unwrap_or(objects.len()).max(1)) {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(|o| o.id))),
            Arc::new(Float64Array::from_iter_values(chunk.iter().map(|o| o.ra))),
            Arc::new(Float64Array::from_iter_values(chunk.iter().map(|o| o.dec))),
            Arc::new(Int32Array::from_iter_values(chunk.iter().map(|o| o.tract))),
            Arc::new(Int32Array::from_iter_values(chunk.iter().map(|o| o.patch))),
            Arc::new(BooleanArray::from_iter(chunk.iter().map(|o| Some(o.primary)))),
        ];
        columns.extend(
            (0..10).map(|k| -> ArrayRef { Arc::new(Float32Array::from_iter(chunk.iter().map(|o| o.floats[k]))) }),
        );
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .map_err(|source| CatalogError::Arrow { path: path.to_path_buf(), source })?;
        writer.write(&batch).map_err(parquet_error)?;
    }
    writer.close().map_err(parquet_error)?;
    Ok(objects.len() as u64)
}

/// Reprocesses one base file into `to`; returns its rows.
fn replace_file(base: &BaseFile, plan: &Replace, to: &Path, seed: u64) -> Result<u64> {
    let mut objects = read_objects(&base.path, &base.footer)?;
    objects.sort_by(Object::order);
    let mut rng = Rng::new(seed, stream(&format!("dp02-release:replace:{}", base.name)));
    let mut next_id = plan.first_id;
    let mut new_id = || {
        next_id += 1;
        next_id - 1
    };
    let (splits, merges) = split_merge_counts(objects.len());
    let patches = PatchBoxes::of(&objects);
    let mut order: Vec<usize> = (0..objects.len()).collect();
    shuffle(&mut order, &mut rng);
    let mut used = vec![false; objects.len()];
    let mut fresh = Vec::with_capacity(2 * splits + merges);
    // Merges first: each one needs an unused neighbour in the same patch.
    let mut merged = 0;
    for i in order.iter().copied() {
        if merged == merges {
            break;
        }
        if used[i] {
            continue;
        }
        if let Some(j) = nearest_unused(&objects, &patches, &used, i) {
            used[i] = true;
            used[j] = true;
            fresh.push(Object { id: new_id(), ..blend(&objects[i], &objects[j]) });
            merged += 1;
        }
    }
    let mut split = 0;
    for i in order.iter().copied() {
        if split == splits {
            break;
        }
        if used[i] {
            continue;
        }
        used[i] = true;
        let [a, b] = split_object(&objects[i], patches.get(objects[i].patch), &mut rng);
        fresh.push(Object { id: new_id(), ..a });
        fresh.push(Object { id: new_id(), ..b });
        split += 1;
    }
    let mut release: Vec<Object> = (objects.iter().zip(&used)).filter(|(_, u)| !**u).map(|(o, _)| *o).collect();
    release.extend(fresh);
    for object in &mut release {
        for band in MAGS {
            if let Some(m) = object.floats[band].filter(|m| m.is_finite()) {
                object.floats[band] = Some((f64::from(m) + MAG_NOISE * rng.normal()) as f32);
            }
        }
    }
    release.sort_by(Object::order);
    write_objects(to, &release, plan.group_rows)
}

/// One patch of a sorted file: its rows `start..end` and their coordinate box.
#[derive(Debug, Clone, Copy)]
struct PatchBox {
    patch: i32,
    start: usize,
    end: usize,
    ra: (f64, f64),
    dec: (f64, f64),
}

/// The patches of a file sorted by patch, in patch order.
#[derive(Debug)]
struct PatchBoxes(Vec<PatchBox>);

impl PatchBoxes {
    fn of(objects: &[Object]) -> Self {
        let mut patches: Vec<PatchBox> = Vec::new();
        for (k, o) in objects.iter().enumerate() {
            match patches.last_mut() {
                Some(p) if p.patch == o.patch => {
                    p.end = k + 1;
                    p.ra = (p.ra.0.min(o.ra), p.ra.1.max(o.ra));
                    p.dec = (p.dec.0.min(o.dec), p.dec.1.max(o.dec));
                }
                _ => patches.push(PatchBox {
                    patch: o.patch,
                    start: k,
                    end: k + 1,
                    ra: (o.ra, o.ra),
                    dec: (o.dec, o.dec),
                }),
            }
        }
        Self(patches)
    }

    /// The box of a patch that some object of the file lies in.
    fn get(&self, patch: i32) -> &PatchBox {
        &self.0[self.0.partition_point(|p| p.patch < patch)]
    }
}

/// The nearest unused object to `i` in its patch (rows sorted by dec within a patch).
fn nearest_unused(objects: &[Object], patches: &PatchBoxes, used: &[bool], i: usize) -> Option<usize> {
    let &PatchBox { start, end, .. } = patches.get(objects[i].patch);
    let o = &objects[i];
    let cos = o.dec.to_radians().cos();
    let mut best: Option<(f64, usize)> = None;
    let mut consider = |j: usize| -> bool {
        let ddec = objects[j].dec - o.dec;
        if best.is_some_and(|b| ddec * ddec >= b.0) {
            return false;
        }
        if !used[j] {
            let dra = (objects[j].ra - o.ra) * cos;
            let d2 = dra * dra + ddec * ddec;
            if best.is_none_or(|b| d2 < b.0) {
                best = Some((d2, j));
            }
        }
        true
    };
    for j in (i + 1)..end {
        if !consider(j) {
            break;
        }
    }
    for j in (start..i).rev() {
        if !consider(j) {
            break;
        }
    }
    best.map(|b| b.1)
}

fn flux(mag: f64) -> f64 {
    10f64.powf(-0.4 * mag)
}

/// Two neighbours seen as one: fluxes add, the position is their flux-weighted centroid.
fn blend(a: &Object, b: &Object) -> Object {
    let share = WEIGHT_BANDS
        .iter()
        .find_map(|&band| a.mag(band).zip(b.mag(band)))
        .map_or(0.5, |(ma, mb)| flux(ma) / (flux(ma) + flux(mb)));
    let mut floats = a.floats;
    for band in MAGS {
        floats[band] = match (a.mag(band), b.mag(band)) {
            (Some(ma), Some(mb)) => Some((-2.5 * (flux(ma) + flux(mb)).log10()) as f32),
            (None, Some(_)) => b.floats[band],
            _ => a.floats[band],
        };
    }
    for (k, &band) in MAGERR_BAND.iter().enumerate() {
        let err = |o: &Object| o.floats[MAGERR + k].filter(|e| e.is_finite()).map(f64::from);
        floats[MAGERR + k] = match (a.mag(band).zip(err(a)), b.mag(band).zip(err(b))) {
            (Some((ma, ea)), Some((mb, eb))) => {
                let (fa, fb) = (flux(ma), flux(mb));
                Some(((ea * fa).hypot(eb * fb) / (fa + fb)) as f32)
            }
            (None, Some(_)) if a.mag(band).is_none() => b.floats[MAGERR + k],
            _ => a.floats[MAGERR + k],
        };
    }
    // A blend is extended when either part is.
    if b.floats[0] == Some(1.0) {
        floats[0] = Some(1.0);
    }
    Object {
        ra: a.ra + (1.0 - share) * (b.ra - a.ra),
        dec: a.dec + (1.0 - share) * (b.dec - a.dec),
        primary: a.primary || b.primary,
        floats,
        ..*a
    }
}

/// A deblended object: two parts < 1″ from the parent, on either side of it, sharing its
/// flux; kept inside the patch's coordinate box (clamping only moves a part closer).
fn split_object(o: &Object, bounds: &PatchBox, rng: &mut Rng) -> [Object; 2] {
    let share = SPLIT_FLUX.0 + rng.uniform() * (SPLIT_FLUX.1 - SPLIT_FLUX.0);
    let separation = (SPLIT_SEPARATION.0 + rng.uniform() * (SPLIT_SEPARATION.1 - SPLIT_SEPARATION.0)) / 3600.0;
    let angle = std::f64::consts::TAU * rng.uniform();
    let (dx, dy) = (separation * angle.cos() / o.dec.to_radians().cos(), separation * angle.sin());
    let ((ra0, ra1), (dec0, dec1)) = (bounds.ra, bounds.dec);
    let part = |w: f64, sign: f64| {
        // The brighter part lies closer to the parent: offsets ∝ the other part's share.
        let mut floats = o.floats;
        for band in MAGS {
            if let Some(m) = o.mag(band) {
                floats[band] = Some((m - 2.5 * w.log10()) as f32);
            }
        }
        for k in 0..3 {
            if let Some(e) = floats[MAGERR + k].filter(|e| e.is_finite()) {
                floats[MAGERR + k] = Some((f64::from(e) / w) as f32);
            }
        }
        let ra = (o.ra + sign * (1.0 - w) * dx).clamp(ra0, ra1);
        let dec = (o.dec + sign * (1.0 - w) * dy).clamp(dec0, dec1);
        Object { ra, dec, floats, ..*o }
    };
    [part(share, 1.0), part(1.0 - share, -1.0)]
}

/// Draws a new tract into `to`; returns its rows.
fn add_tract(add: &Add, to: &Path, seed: u64) -> Result<u64> {
    let mut rng = Rng::new(seed, stream(&format!("dp02-release:add:{}", add.tract)));
    let cell = add.cell;
    let (sin0, sin1) = (cell.dec0.to_radians().sin(), cell.dec1.to_radians().sin());
    let area = (cell.ra1 - cell.ra0) * (sin1 - sin0).abs() * 180.0 / std::f64::consts::PI;
    let clusters: Vec<(f64, f64, f64, f64)> = (0..((CLUSTERS_PER_DEG2 * area).round() as usize).max(1))
        .map(|_| {
            let ra = cell.ra0 + rng.uniform() * (cell.ra1 - cell.ra0);
            let dec = (sin0 + rng.uniform() * (sin1 - sin0)).asin().to_degrees();
            let sigma_arcmin = 10f64.powf(rng.uniform());
            (ra, dec, sigma_arcmin / 60.0, sigma_arcmin * (0.6 * rng.normal()).exp())
        })
        .collect();
    let total: f64 = clusters.iter().map(|c| c.3).sum();
    let mut rows: Vec<Row> = (0..add.rows)
        .map(|_| {
            let background = rng.uniform() < BACKGROUND_SHARE;
            let (ra, dec) = if background {
                let ra = cell.ra0 + rng.uniform() * (cell.ra1 - cell.ra0);
                (ra, (sin0 + rng.uniform() * (sin1 - sin0)).asin().to_degrees())
            } else {
                let mut pick = rng.uniform() * total;
                let mut c = clusters[clusters.len() - 1];
                for &candidate in &clusters {
                    pick -= candidate.3;
                    if pick < 0.0 {
                        c = candidate;
                        break;
                    }
                }
                let mut axis = |mu: f64, sigma: f64, lo: f64, hi: f64| loop {
                    let x = mu + sigma * rng.normal();
                    if (lo..hi).contains(&x) {
                        return x;
                    }
                };
                let ra = axis(c.0, c.2 / c.1.to_radians().cos(), cell.ra0, cell.ra1);
                (ra, axis(c.1, c.2, cell.dec0, cell.dec1))
            };
            Row::new(ra, dec, cell.patch(ra, dec), !background, &mut rng)
        })
        .collect();
    rows.sort_by(|a, b| (a.patch.cmp(&b.patch)).then(a.dec.total_cmp(&b.dec)).then(a.ra.total_cmp(&b.ra)));
    let objects: Vec<Object> = (rows.iter().enumerate())
        .map(|(k, r)| {
            let mut floats = [None; 10];
            floats[0] = Some(r.extendedness);
            for band in 0..6 {
                floats[MAGS.start + band] = Some(r.mag[band]);
            }
            for k in 0..3 {
                floats[MAGERR + k] = Some(r.magerr_gri[k]);
            }
            Object {
                id: add.first_id + k as i64,
                ra: r.ra,
                dec: r.dec,
                tract: add.tract,
                patch: r.patch,
                primary: r.primary,
                floats,
            }
        })
        .collect();
    write_objects(to, &objects, add.group_rows)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::dp02::{Dp02Options, generate_dp02};

    /// A fresh, absent temp folder unique to this test and process.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("starflow-dp02-release-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn small_base(name: &str, files: usize) -> PathBuf {
        let base = temp_dir(name);
        let opts = Dp02Options { files, rows: 20_000, seed: 42, row_group_rows: 1000 };
        generate_dp02(&base, &opts).unwrap();
        base
    }

    fn read(path: &Path) -> Vec<Object> {
        read_objects(path, &load_footer(path).unwrap()).unwrap()
    }

    fn parquet_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".parquet"))
            .collect();
        names.sort();
        names
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    /// Row order `(patch, coord_dec)`, row groups of `group` rows but the last, snappy.
    fn assert_layout(path: &Path, group: usize) {
        let objects = read(path);
        assert!(objects.windows(2).all(|w| (w[0].patch, w[0].dec) <= (w[1].patch, w[1].dec)), "{}", path.display());
        let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
        let groups: Vec<usize> = reader.metadata().row_groups().iter().map(|g| g.num_rows() as usize).collect();
        assert_eq!(groups.len(), objects.len().div_ceil(group), "{}: {groups:?}", path.display());
        assert!(groups.iter().rev().skip(1).all(|&g| g == group), "{}: {groups:?}", path.display());
        for group in reader.metadata().row_groups() {
            assert!(group.columns().iter().all(|c| c.compression() == Compression::SNAPPY));
        }
        assert_eq!(load_footer(path).unwrap().schema(), &dp02_schema());
    }

    #[test]
    fn default_release_of_ten_tracts() {
        let (base, out) = (small_base("default-base", 10), temp_dir("default-out"));
        let summary = generate_release(&base, &out, &ReleaseOptions::default()).unwrap();
        assert_eq!(
            (summary.unchanged.len(), summary.replaced.len(), summary.added.len(), summary.removed.len()),
            (8, 1, 1, 1)
        );
        let base_names = parquet_names(&base);
        let mut kept: Vec<String> = summary.unchanged.iter().chain(&summary.replaced).cloned().collect();
        assert_eq!(sorted([kept.clone(), summary.removed.clone()].concat()), base_names);
        kept.extend(summary.added.iter().cloned());
        assert_eq!(parquet_names(&out), sorted(kept));
        assert!(summary.removed.iter().all(|n| !out.join(n).exists()));

        for name in &summary.unchanged {
            assert_eq!(std::fs::read(base.join(name)).unwrap(), std::fs::read(out.join(name)).unwrap(), "{name}");
        }

        // Reprocessed: same objects but for ~1 % split and ~1 % merged, new magnitudes.
        let name = &summary.replaced[0];
        assert_ne!(std::fs::read(base.join(name)).unwrap(), std::fs::read(out.join(name)).unwrap());
        assert_layout(&out.join(name), 1000);
        let (old, new) = (read(&base.join(name)), read(&out.join(name)));
        let old_by_id: HashMap<i64, &Object> = old.iter().map(|o| (o.id, o)).collect();
        let new_ids: HashSet<i64> = new.iter().map(|o| o.id).collect();
        assert_eq!(new_ids.len(), new.len(), "objectIds of the replaced file are not unique");
        let kept = new.iter().filter(|o| old_by_id.contains_key(&o.id)).count();
        assert!(kept as f64 >= 0.95 * old.len() as f64, "{kept} of {} objects kept", old.len());
        let (splits, merges) = split_merge_counts(old.len());
        assert_eq!(old.len() - kept, splits + 2 * merges);
        assert_eq!(new.len() - kept, 2 * splits + merges);
        assert!(new.iter().all(|o| o.tract == old[0].tract));
        let vanished: Vec<&Object> = old.iter().filter(|o| !new_ids.contains(&o.id)).collect();
        let near_parent = (new.iter().filter(|o| !old_by_id.contains_key(&o.id)))
            .filter(|o| {
                vanished.iter().any(|p| {
                    let dra = (o.ra - p.ra) * p.dec.to_radians().cos();
                    o.patch == p.patch && dra.hypot(o.dec - p.dec) < 1.0 / 3600.0
                })
            })
            .count();
        assert!(near_parent >= 2 * splits, "{near_parent} new objects within 1\" of a vanished one");
        let mut deltas = Vec::new();
        for o in new.iter().filter(|o| old_by_id.contains_key(&o.id)) {
            let p = old_by_id[&o.id];
            assert_eq!((o.ra, o.dec, o.patch, o.primary), (p.ra, p.dec, p.patch, p.primary));
            for band in MAGS {
                let (a, b) = (p.floats[band].unwrap(), o.floats[band].unwrap());
                assert_eq!(a.is_nan(), b.is_nan(), "a non-detection changed");
                if a.is_finite() {
                    deltas.push(f64::from(b - a));
                }
            }
        }
        let rms = (deltas.iter().map(|d| d * d).sum::<f64>() / deltas.len() as f64).sqrt();
        assert!((0.04..0.06).contains(&rms), "magnitude change rms {rms}");

        // New tract: the next id, drawn like the base, ids unique over the whole release.
        let base_tracts: Vec<i32> = base_names.iter().map(|n| read(&base.join(n))[0].tract).collect();
        let added = &summary.added[0];
        assert_eq!(added, &format!("tract_{}.parquet", base_tracts.iter().max().unwrap() + 1));
        assert_layout(&out.join(added), 1000);
        let objects = read(&out.join(added));
        assert!(objects.iter().all(|o| o.tract == 2010 && (0..49).contains(&o.patch)));
        assert!((1000..4000).contains(&objects.len()), "{} rows", objects.len());
        let nan_i = objects.iter().filter(|o| o.floats[4].unwrap().is_nan()).count();
        assert!(nan_i > 0 && nan_i < objects.len() / 5, "{nan_i} NaN mag_i");

        let mut ids = HashSet::new();
        let mut rows = 0;
        for name in parquet_names(&out) {
            let objects = read(&out.join(&name));
            assert!(objects.iter().all(|o| ids.insert(o.id)), "duplicate objectId in {name}");
            rows += objects.len() as u64;
        }
        assert_eq!(rows, summary.rows);
        for dir in [base, out] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn same_options_give_identical_bytes() {
        let base = small_base("determinism-base", 10);
        let opts = ReleaseOptions { seed: 9, replace_frac: 0.2, add_frac: 0.2, remove_frac: 0.1 };
        let (a, b, c) = (temp_dir("determinism-a"), temp_dir("determinism-b"), temp_dir("determinism-c"));
        let first = generate_release(&base, &a, &opts).unwrap();
        let second = generate_release(&base, &b, &opts).unwrap();
        assert_eq!(first, second);
        assert_eq!(parquet_names(&a), parquet_names(&b));
        for name in parquet_names(&a) {
            assert_eq!(std::fs::read(a.join(&name)).unwrap(), std::fs::read(b.join(&name)).unwrap(), "{name}");
        }
        let other = generate_release(&base, &c, &ReleaseOptions { seed: 10, ..opts }).unwrap();
        let differs = |x: &String| std::fs::read(a.join(x)).unwrap() != std::fs::read(c.join(x)).unwrap();
        assert!(other != first || first.added.iter().chain(&first.replaced).any(differs));
        for dir in [base, a, b, c] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn counts_follow_fractions_and_keep_one_file() {
        let base = small_base("counts-base", 10);
        let out = temp_dir("counts-out");
        let opts = ReleaseOptions { seed: 3, replace_frac: 0.3, add_frac: 0.3, remove_frac: 0.3 };
        let s = generate_release(&base, &out, &opts).unwrap();
        assert_eq!((s.unchanged.len(), s.replaced.len(), s.added.len(), s.removed.len()), (4, 3, 3, 3));
        assert_eq!(s.added, ["tract_2010.parquet", "tract_2011.parquet", "tract_2012.parquet"]);
        std::fs::remove_dir_all(&out).unwrap();

        let opts = ReleaseOptions { seed: 3, replace_frac: 0.0, add_frac: 0.0, remove_frac: 1.0 };
        let s = generate_release(&base, &out, &opts).unwrap();
        assert_eq!((s.unchanged.len(), s.replaced.len(), s.added.len(), s.removed.len()), (1, 0, 0, 9));
        std::fs::remove_dir_all(&out).unwrap();

        // One file of one row group: nothing shows the base's row-group limit.
        let single = temp_dir("counts-single");
        generate_dp02(&single, &Dp02Options { files: 1, rows: 5_000, seed: 4, row_group_rows: 16_384 }).unwrap();
        let s = generate_release(&single, &out, &ReleaseOptions::default()).unwrap();
        assert_eq!((s.unchanged.len(), s.replaced.len(), s.added.len(), s.removed.len()), (0, 1, 1, 0));
        // The reprocessed file (a few rows more) keeps one row group.
        let reader = SerializedFileReader::new(File::open(out.join(&s.replaced[0])).unwrap()).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 1);
        for dir in [base, out, single] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn a_release_of_a_release_keeps_ids_unique() {
        let base = small_base("chain-base", 6);
        let (first, second) = (temp_dir("chain-first"), temp_dir("chain-second"));
        let opts = ReleaseOptions { seed: 5, replace_frac: 0.5, add_frac: 0.5, remove_frac: 0.0 };
        let one = generate_release(&base, &first, &opts).unwrap();
        let two = generate_release(&first, &second, &ReleaseOptions { seed: 6, ..opts }).unwrap();
        // round(0.5 · 9) = 5 new tracts after tract 2008, the first release's last.
        let names: Vec<String> = (2009..2014).map(|t| format!("tract_{t}.parquet")).collect();
        assert_eq!(two.added, names);
        assert_eq!(one.unchanged.len() + one.replaced.len() + one.added.len(), 9);
        let mut ids = HashSet::new();
        for name in parquet_names(&second) {
            assert!(read(&second.join(&name)).iter().all(|o| ids.insert(o.id)), "duplicate objectId in {name}");
        }
        assert_eq!(ids.len() as u64, two.rows);
        for dir in [base, first, second] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let base = small_base("bad-base", 2);
        let out = temp_dir("bad-out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("x.txt"), "taken").unwrap();
        let err = generate_release(&base, &out, &ReleaseOptions::default()).unwrap_err();
        assert!(matches!(err, CatalogError::Io { .. }), "{err}");
        std::fs::remove_file(out.join("x.txt")).unwrap();
        for bad in [
            ReleaseOptions { replace_frac: 1.5, ..ReleaseOptions::default() },
            ReleaseOptions { remove_frac: -0.1, ..ReleaseOptions::default() },
            ReleaseOptions { add_frac: f64::NAN, ..ReleaseOptions::default() },
        ] {
            let err = generate_release(&base, &out, &bad).unwrap_err();
            assert!(matches!(err, CatalogError::InvalidOption(_)), "{err}");
        }
        let empty = temp_dir("bad-empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = generate_release(&empty, &out, &ReleaseOptions::default()).unwrap_err();
        assert!(matches!(err, CatalogError::Empty { .. }), "{err}");
        // An empty existing output folder is fine.
        generate_release(&base, &out, &ReleaseOptions::default()).unwrap();
        for dir in [base, out, empty] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}
