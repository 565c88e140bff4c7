//! Multi-file Parquet catalogs: resolve a path (file, folder or glob) to files, read their
//! footers, reconcile their schemas and list partitions.

pub mod prune;
pub mod reader;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::{Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, Result};
use crate::partition::Partition;
use prune::{ColumnBound, ColumnStats, row_group_may_match};

/// One file of a catalog: what planning needs of its footer, kept small (row-group
/// statistics are re-read when a query has bounds to prune with, and the worker that scans
/// the file re-reads its footer), so memory does not grow with the number of files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogFile {
    /// Path of the file.
    pub path: PathBuf,
    /// For each catalog column, the root column index in this file (None: absent, reads as
    /// nulls). Files with the same layout share one map.
    pub columns: Arc<[Option<usize>]>,
    /// Rows in the file.
    pub num_rows: u64,
    /// Rows of each row group.
    pub row_group_rows: Vec<u64>,
    /// The footer was not read when the catalog was opened (a HATS partition): `num_rows`
    /// and `row_group_rows` are unknown (0, empty), `columns` maps by the common schema, and
    /// the worker that scans the file reads its footer, finds its columns by name and prunes
    /// its row groups.
    #[serde(default)]
    pub lazy: bool,
    /// The footer itself, kept only for the few files a release just brought (their
    /// contributions to the views are computed next: the scanning worker need not read it
    /// again); never shipped, and dropped once the release is in place.
    #[serde(skip)]
    pub footer: Option<ArrowReaderMetadata>,
}

impl CatalogFile {
    /// Rows in the file.
    pub fn num_rows(&self) -> u64 {
        self.num_rows
    }
}

/// Row count and per-column statistics of one row group.
#[derive(Debug, Clone)]
pub struct RowGroupStats {
    /// Rows in the row group.
    pub rows: u64,
    /// Statistics of each column of the file (by the file's own column index).
    pub columns: Vec<ColumnStats>,
}

/// A catalog made of Parquet files sharing one schema. Serialisable: process 0 ships the
/// catalogs of a plan to the other processes, which then read no footer to plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParquetCatalog {
    /// Name the catalog is queried by.
    pub name: String,
    /// Files in path order.
    pub files: Vec<CatalogFile>,
    /// The reconciled schema (first file's column order, then columns only later files have).
    #[serde(with = "crate::schema_serde")]
    pub schema: SchemaRef,
    /// The schema's last column is [`FILE_COLUMN`]: not read from the files but the index
    /// (in `files`) of each row's file and the first row group of its partition
    /// ([`crate::Partition::file_part`]). Set by [`ParquetCatalog::with_file_column`].
    #[serde(default)]
    pub file_column: bool,
    /// A HATS catalog's properties and the pixel of each file (spatial pruning).
    #[serde(default)]
    pub hats: Option<Arc<crate::hats::HatsInfo>>,
}

/// Name of the virtual column that tells which file, and which partition of it, a row comes
/// from (a view's contribution query groups by it, so one query computes what each new file
/// contributes, each partition's part on one worker).
pub const FILE_COLUMN: &str = "__file";

/// What pruning kept of a catalog, for planning and `EXPLAIN`.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneReport {
    /// Files in the catalog.
    pub files_total: usize,
    /// Row groups in the catalog.
    pub row_groups_total: usize,
    /// Files with at least one kept row group.
    pub files_kept: usize,
    /// Row groups kept.
    pub row_groups_kept: usize,
    /// Rows in kept row groups.
    pub rows_kept: u64,
    /// Files whose footers are read by their scanning workers (HATS partitions): row groups
    /// and rows are unknown at planning.
    pub lazy_files: usize,
}

/// RA/Dec column names looked for, in this order (case-insensitive).
pub const SKY_COLUMNS: &[(&str, &str)] = &[
    ("ra", "dec"),
    ("coord_ra", "coord_dec"),
    ("ra_deg", "dec_deg"),
    ("raj2000", "dej2000"),
    ("ra_icrs", "dec_icrs"),
    ("alpha", "delta"),
];

impl ParquetCatalog {
    /// Opens the catalog at `location`: a HATS catalog or collection folder, a Parquet file,
    /// a folder (every `*.parquet` below it, skipping names starting with `_` or `.`), or a
    /// glob pattern.
    pub fn open(name: &str, location: &str) -> Result<Self> {
        if crate::hats::is_hats(Path::new(location)) {
            return crate::hats::open(name, Path::new(location));
        }
        Self::open_files(name, &resolve_paths(location)?)
    }

    /// Opens the catalog made of exactly these Parquet files (in this order).
    pub fn open_files(name: &str, paths: &[PathBuf]) -> Result<Self> {
        let footers = read_footers(paths, false, |_, mut footer| {
            footer.metadata = None;
            footer
        })?;
        Self::of_footers(name, footers)
    }

    /// The catalog of files whose footers were read (in this order).
    fn of_footers(name: &str, footers: Vec<Footer>) -> Result<Self> {
        let (schema, columns) = reconcile_schemas(&footers)?;
        let files = footers
            .into_iter()
            .zip(columns)
            .map(|(f, columns)| CatalogFile {
                path: f.path,
                columns,
                num_rows: f.num_rows,
                row_group_rows: f.row_groups.iter().map(|rg| rg.rows).collect(),
                lazy: false,
                footer: f.metadata,
            })
            .collect();
        Ok(Self { name: name.to_string(), files, schema, file_column: false, hats: None })
    }

    /// The one-file catalog of a Parquet file this process just wrote with `schema` (its
    /// footer is `metadata`, as the writer returned it): nothing is read back.
    pub fn of_written(
        name: &str,
        path: &Path,
        schema: SchemaRef,
        metadata: &parquet::file::metadata::ParquetMetaData,
    ) -> Self {
        let row_group_rows: Vec<u64> = metadata.row_groups().iter().map(|rg| rg.num_rows() as u64).collect();
        let file = CatalogFile {
            path: path.to_path_buf(),
            columns: (0..schema.fields().len()).map(Some).collect(),
            num_rows: row_group_rows.iter().sum(),
            row_group_rows,
            lazy: false,
            footer: None,
        };
        Self { name: name.to_string(), files: vec![file], schema, file_column: false, hats: None }
    }

    /// The same catalog with the virtual [`FILE_COLUMN`] (Int64) after its columns.
    pub fn with_file_column(mut self) -> Result<Self> {
        if self.file_column {
            return Ok(self);
        }
        if self.schema.field_with_name(FILE_COLUMN).is_ok() {
            return Err(CatalogError::Release(format!(
                "catalog {} has a column named {FILE_COLUMN}, a name starflow keeps for itself",
                self.name
            )));
        }
        let mut fields: Vec<Arc<Field>> = self.schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(FILE_COLUMN, arrow_schema::DataType::Int64, false)));
        self.schema = Arc::new(Schema::new_with_metadata(fields, self.schema.metadata().clone()));
        self.file_column = true;
        Ok(self)
    }

    /// The RA and Dec columns (degrees): a HATS catalog's `hats_col_ra`/`hats_col_dec`, else
    /// found by their usual names ([`SKY_COLUMNS`]).
    pub fn sky_columns(&self) -> Option<(String, String)> {
        if let Some(h) = &self.hats {
            return Some((h.ra_column.clone(), h.dec_column.clone()));
        }
        let find = |name: &str| {
            self.schema.fields().iter().find(|f| f.name().eq_ignore_ascii_case(name)).map(|f| f.name().clone())
        };
        SKY_COLUMNS.iter().find_map(|(ra, dec)| Some((find(ra)?, find(dec)?)))
    }

    /// Whether catalog column `c` is the virtual [`FILE_COLUMN`].
    pub fn is_file_column(&self, c: usize) -> bool {
        self.file_column && c + 1 == self.schema.fields().len()
    }

    /// Total rows of the catalog (from footers, no data read; a HATS catalog's `hats_nrows`).
    pub fn num_rows(&self) -> u64 {
        match &self.hats {
            Some(h) if self.files.iter().any(|f| f.lazy) => h.total_rows.unwrap_or(0),
            _ => self.files.iter().map(CatalogFile::num_rows).sum(),
        }
    }

    /// Lists the partitions that may hold rows within `bounds`, in catalog order: runs of
    /// consecutive kept row groups of one file, of at most `partition_rows` rows each.
    /// With bounds, the footers are read again (in parallel) for their statistics.
    pub fn partitions(&self, bounds: &[ColumnBound], partition_rows: u64) -> Result<(Vec<Partition>, PruneReport)> {
        self.partitions_in(bounds, &[], partition_rows)
    }

    /// [`ParquetCatalog::partitions`] within sky regions as well: a HATS catalog keeps only
    /// the files whose pixel meets every region (each region's rows must also satisfy the
    /// query's predicate, which the scan applies). A lazy file (HATS) is one partition whose
    /// row groups its scanning worker prunes with `bounds` after reading its footer.
    pub fn partitions_in(
        &self,
        bounds: &[ColumnBound],
        regions: &[crate::hats::region::SkyRegion],
        partition_rows: u64,
    ) -> Result<(Vec<Partition>, PruneReport)> {
        let in_regions: Option<Vec<bool>> = match (&self.hats, regions.is_empty()) {
            (Some(h), false) => {
                // Coverage at the catalog's deepest order (at least 6, at most 12) is exact
                // enough to drop every partition the regions cannot reach.
                let order = h.max_order().clamp(6, 12);
                let ranges: Vec<_> = regions.iter().map(|r| r.ranges(order)).collect();
                Some(
                    (0..self.files.len())
                        .map(|f| ranges.iter().all(|r| crate::hats::region::overlaps(r, &h.file_range(f))))
                        .collect(),
                )
            }
            _ => None,
        };
        let file_kept = |f: usize| in_regions.as_ref().is_none_or(|k| k[f]);
        // With bounds: which row groups may match, decided per file as its footer is read, so
        // the statistics themselves are never all in memory at once (lazy files: by their
        // scanning worker).
        let kept: Option<Vec<Vec<bool>>> = if bounds.is_empty() || self.files.iter().all(|f| f.lazy) {
            None
        } else {
            let paths: Vec<PathBuf> = self.files.iter().map(|f| f.path.clone()).collect();
            Some(read_footers(&paths, true, |file_index, footer| {
                let file = &self.files[file_index];
                let column_of = |column: &str| file.columns.get(self.schema.index_of(column).ok()?).copied().flatten();
                footer.row_groups.iter().map(|s| row_group_may_match(s, bounds, column_of)).collect()
            })?)
        };
        let mut partitions: Vec<Partition> = Vec::new();
        let mut report = PruneReport {
            files_total: self.files.len(),
            row_groups_total: 0,
            files_kept: 0,
            row_groups_kept: 0,
            rows_kept: 0,
            lazy_files: self.files.iter().filter(|f| f.lazy).count(),
        };
        for (file_index, file) in self.files.iter().enumerate() {
            if file.lazy {
                if file_kept(file_index) {
                    report.files_kept += 1;
                    partitions.push(Partition { index: 0, file: file_index, row_groups: 0..usize::MAX, rows: 0 });
                }
                continue;
            }
            if !file_kept(file_index) {
                report.row_groups_total += file.row_group_rows.len();
                continue;
            }
            let mut kept_any = false;
            let mut run: Option<Partition> = None;
            for (rg, &rows) in file.row_group_rows.iter().enumerate() {
                report.row_groups_total += 1;
                let may_match = kept.as_ref().is_none_or(|k| k[file_index].get(rg).copied().unwrap_or(true));
                if rows == 0 || !may_match {
                    partitions.extend(run.take());
                    continue;
                }
                kept_any = true;
                report.row_groups_kept += 1;
                report.rows_kept += rows;
                match run.as_mut() {
                    Some(p) if p.rows + rows <= partition_rows.max(1) => {
                        p.row_groups.end = rg + 1;
                        p.rows += rows;
                    }
                    _ => {
                        partitions.extend(run.take());
                        run = Some(Partition { index: 0, file: file_index, row_groups: rg..rg + 1, rows });
                    }
                }
            }
            partitions.extend(run.take());
            report.files_kept += usize::from(kept_any);
        }
        for (i, p) in partitions.iter_mut().enumerate() {
            p.index = i;
        }
        Ok((partitions, report))
    }
}

/// Expands a catalog location into a sorted list of Parquet files.
pub fn resolve_paths(location: &str) -> Result<Vec<PathBuf>> {
    Ok(resolve_listing(location)?.into_iter().map(|(path, _)| path).collect())
}

/// [`resolve_paths`], each file with the inode number its folder lists for it (read with
/// the names, so free; 0 where the location named the file itself or a pattern matched it).
pub fn resolve_listing(location: &str) -> Result<Vec<(PathBuf, u64)>> {
    let path = Path::new(location);
    let mut paths = Vec::new();
    if location.contains(['*', '?', '[']) && !path.exists() {
        let entries = glob::glob(location)
            .map_err(|e| CatalogError::BadGlob { pattern: location.to_string(), message: e.to_string() })?;
        for entry in entries {
            let entry = entry.map_err(|e| CatalogError::Io {
                path: e.path().to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?;
            if entry.is_dir() {
                walk(&entry, &mut paths)?;
            } else if entry.is_file() {
                paths.push((entry, 0));
            }
        }
        paths.sort();
        paths.dedup_by(|a, b| a.0 == b.0);
    } else if path.is_dir() {
        // In path order already: each folder's entries are walked sorted by name.
        walk(path, &mut paths)?;
    } else {
        std::fs::metadata(path).map_err(|source| CatalogError::Io { path: path.into(), source })?;
        paths.push((path.to_path_buf(), 0));
    }
    if paths.is_empty() {
        return Err(CatalogError::Empty { path: location.to_string() });
    }
    Ok(paths)
}

fn hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('_') || n.starts_with('.'))
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<()> {
    use std::os::unix::fs::DirEntryExt;
    let io = |source| CatalogError::Io { path: dir.to_path_buf(), source };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        entries.push((entry.file_name(), entry));
    }
    // Names compare as bytes, as `Path` compares components: walking each folder in name
    // order lists the files in path order without comparing whole paths.
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (_, entry) in entries {
        let path = entry.path();
        if hidden(&path) {
            continue;
        }
        // The entry's own type costs no `stat` (a link is followed to see what it is).
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() || (kind.is_symlink() && path.is_dir()) {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push((path, entry.ino()));
        }
    }
    Ok(())
}

/// What is kept of a footer while opening a catalog.
struct Footer {
    path: PathBuf,
    schema: SchemaRef,
    num_rows: u64,
    row_groups: Vec<RowGroupStats>,
    metadata: Option<ArrowReaderMetadata>,
}

/// Reads every footer, on up to all cores (footers are small; latency dominates), and maps
/// each (with its index in `paths`) through `keep` on the reading thread.
fn read_footers<T: Send>(
    paths: &[PathBuf],
    with_stats: bool,
    keep: impl Fn(usize, Footer) -> T + Sync,
) -> Result<Vec<T>> {
    // A handful of footers (a release's new files) read faster than threads start.
    const PER_THREAD: usize = 4;
    let threads = crate::cores().min(paths.len().div_ceil(PER_THREAD));
    let chunk = paths.len().div_ceil(threads.max(1)).max(1);
    let keep = &keep;
    let read_part = move |c: usize, part: &[PathBuf]| -> Result<Vec<T>> {
        // Files of a catalog almost always share one schema: keep one copy.
        let mut last: Option<SchemaRef> = None;
        part.iter()
            .enumerate()
            .map(|(i, p)| {
                let mut footer = read_footer(p, with_stats)?;
                match &last {
                    Some(s) if *s == footer.schema => footer.schema = s.clone(),
                    _ => last = Some(footer.schema.clone()),
                }
                Ok(keep(c * chunk + i, footer))
            })
            .collect()
    };
    let results: Vec<Result<Vec<T>>> = if threads <= 1 {
        vec![read_part(0, paths)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> =
                paths.chunks(chunk).enumerate().map(|(c, part)| scope.spawn(move || read_part(c, part))).collect();
            handles.into_iter().map(|h| h.join().expect("footer reader thread panicked")).collect()
        })
    };
    let mut out = Vec::with_capacity(paths.len());
    for part in results {
        out.extend(part?);
    }
    Ok(out)
}

fn read_footer(path: &Path, with_stats: bool) -> Result<Footer> {
    let metadata = load_footer(path)?;
    let meta = metadata.metadata();
    let flat = meta.file_metadata().schema_descr().num_columns() == metadata.schema().fields().len();
    let row_groups = meta
        .row_groups()
        .iter()
        .map(|rg| RowGroupStats {
            rows: rg.num_rows() as u64,
            columns: (0..metadata.schema().fields().len())
                .filter(|_| with_stats)
                .map(|c| {
                    if flat {
                        ColumnStats::of(rg.column(c).statistics(), rg.num_rows() as u64)
                    } else {
                        ColumnStats::Unknown
                    }
                })
                .collect(),
        })
        .collect();
    let (schema, num_rows) = (metadata.schema().clone(), meta.file_metadata().num_rows() as u64);
    Ok(Footer { path: path.to_path_buf(), schema, num_rows, row_groups, metadata: Some(metadata) })
}

/// A job for a spare thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// Footers of a few files read ahead on a spare thread (while the caller goes on looking at
/// other files), then opened as a catalog whose files keep their footers. Past `limit` files
/// it gives up (the caller opens them its own way, on every core). A footer the spare thread
/// has not started on when the caller needs it is read by the caller (a spare thread may wait
/// for a core longer than the read takes).
pub struct Prefetch<'a> {
    spare: &'a dyn Fn(Job),
    limit: usize,
    /// The files pushed, in order (a few), each with its claim: set by whoever reads it.
    sent: Vec<(PathBuf, Arc<std::sync::atomic::AtomicBool>)>,
    tx: std::sync::mpsc::Sender<(usize, Result<Footer>)>,
    rx: std::sync::mpsc::Receiver<(usize, Result<Footer>)>,
}

impl<'a> Prefetch<'a> {
    /// Reads ahead with `spare`, at most `limit` files.
    pub fn new(spare: &'a dyn Fn(Job), limit: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        Self { spare, limit, sent: Vec::new(), tx, rx }
    }

    /// How many more files it would read before giving up.
    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.sent.len())
    }

    /// Starts reading the footer of `path` (once: a file pushed again is already on its way).
    pub fn push(&mut self, path: &Path) {
        use std::sync::atomic::Ordering;
        if self.sent.iter().any(|(p, _)| p == path) {
            return;
        }
        let claim = Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.sent.push((path.to_path_buf(), claim.clone()));
        if self.sent.len() > self.limit {
            return;
        }
        let (n, path, tx) = (self.sent.len() - 1, path.to_path_buf(), self.tx.clone());
        (self.spare)(Box::new(move || {
            if !claim.swap(true, Ordering::AcqRel) {
                let _ = tx.send((n, read_footer(&path, false)));
            }
        }));
    }

    /// The catalog of `paths` (in this order; each pushed), of the footers read (None: more
    /// than `limit` pushed, one of `paths` not pushed, or a footer that was not read). Files
    /// pushed but not in `paths` are left out, their errors too.
    pub fn finish(self, name: &str, paths: &[PathBuf]) -> Option<Result<ParquetCatalog>> {
        use std::sync::atomic::Ordering;
        if self.sent.len() > self.limit {
            return None;
        }
        drop(self.tx);
        let wanted = |n: usize| paths.contains(&self.sent[n].0);
        // Claimed here: read now if wanted, skipped by the spare thread either way.
        let mut read: HashMap<usize, Result<Footer>> = HashMap::new();
        let mut on_their_way = 0;
        for (n, (path, claim)) in self.sent.iter().enumerate() {
            match claim.swap(true, Ordering::AcqRel) {
                false if wanted(n) => {
                    read.insert(n, read_footer(path, false));
                }
                false => {}
                true => on_their_way += 1,
            }
        }
        let arrived: Vec<(usize, Result<Footer>)> = self.rx.iter().take(on_their_way).collect();
        if arrived.len() < on_their_way {
            return None;
        }
        read.extend(arrived);
        let footers: Option<Vec<Result<Footer>>> =
            paths.iter().map(|p| self.sent.iter().position(|(s, _)| s == p).and_then(|n| read.remove(&n))).collect();
        Some(footers?.into_iter().collect::<Result<Vec<_>>>().and_then(|f| ParquetCatalog::of_footers(name, f)))
    }
}

/// Reads and decodes the footer of one file.
pub fn load_footer(path: &Path) -> Result<ArrowReaderMetadata> {
    let file = File::open(path).map_err(|source| CatalogError::Io { path: path.into(), source })?;
    ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|source| CatalogError::Parquet { path: path.into(), source })
}

type ColumnMaps = Vec<Arc<[Option<usize>]>>;

/// Builds the catalog schema and, per file, where each catalog column lives in that file.
fn reconcile_schemas(files: &[Footer]) -> Result<(SchemaRef, ColumnMaps)> {
    let mut fields: Vec<Field> = Vec::new();
    let mut origin: Vec<usize> = Vec::new(); // file that introduced each field
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (file_index, footer) in files.iter().enumerate() {
        let path = &footer.path;
        for field in footer.schema.fields() {
            match by_name.get(field.name()) {
                Some(&i) if fields[i].data_type() != field.data_type() => {
                    return Err(CatalogError::SchemaMismatch {
                        column: field.name().clone(),
                        first: files[origin[i]].path.clone(),
                        first_type: fields[i].data_type().to_string(),
                        second: path.clone(),
                        second_type: field.data_type().to_string(),
                    });
                }
                Some(&i) => {
                    if field.is_nullable() && !fields[i].is_nullable() {
                        fields[i] = fields[i].clone().with_nullable(true);
                    }
                }
                None => {
                    by_name.insert(field.name().clone(), fields.len());
                    fields.push(field.as_ref().clone());
                    origin.push(file_index);
                }
            }
        }
    }
    let mut maps: ColumnMaps = Vec::with_capacity(files.len());
    for footer in files {
        let (path, schema) = (&footer.path, &footer.schema);
        let mut map = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            let found = schema.index_of(field.name()).ok();
            if found.is_none() && !field.is_nullable() {
                return Err(CatalogError::SchemaMismatch {
                    column: field.name().clone(),
                    first: files[origin[i]].path.clone(),
                    first_type: field.data_type().to_string(),
                    second: path.clone(),
                    second_type: "no such column (and the column is not nullable)".into(),
                });
            }
            map.push(found);
        }
        // Files of a catalog almost always share one layout: keep one copy of the map.
        match maps.last() {
            Some(last) if **last == *map => maps.push(last.clone()),
            _ => maps.push(Arc::from(map)),
        }
    }
    // A nullable column missing from some files reads as nulls there.
    Ok((Arc::new(Schema::new(fields)), maps))
}

#[cfg(test)]
mod tests {
    use super::{Job, ParquetCatalog, Prefetch, resolve_paths};
    use crate::dp02::{Dp02Options, generate_dp02};
    use std::path::PathBuf;
    use std::sync::Mutex;

    #[test]
    fn a_prefetch_gives_the_files_asked_for_whoever_read_them() {
        let dir = std::env::temp_dir().join(format!("starflow-prefetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        generate_dp02(&dir, &Dp02Options { files: 3, rows: 3_000, seed: 5, row_group_rows: 400 }).unwrap();
        let mut paths = resolve_paths(dir.to_str().unwrap()).unwrap();
        let broken = dir.join("broken.parquet");
        std::fs::write(&broken, b"not parquet").unwrap();
        let want = ParquetCatalog::open_files("c", &[paths[2].clone(), paths[0].clone()]).unwrap();
        let same = |got: ParquetCatalog| {
            assert_eq!(got.schema, want.schema);
            let files = |c: &ParquetCatalog| c.files.iter().map(|f| (f.path.clone(), f.num_rows)).collect::<Vec<_>>();
            assert_eq!(files(&got), files(&want));
            assert!(got.files.iter().all(|f| f.footer.is_some()), "footers kept");
        };
        paths.push(broken);
        // A spare thread that never gets to its jobs: the caller reads what it needs.
        let parked: Mutex<Vec<Job>> = Mutex::default();
        let never = |job: Job| parked.lock().unwrap().push(job);
        // One that runs each job at once; and one that runs them after the caller's claims.
        let at_once = |job: Job| job();
        for (spare, run_late) in [(&never as &dyn Fn(Job), true), (&at_once, false), (&never, false)] {
            let mut prefetch = Prefetch::new(spare, 8);
            for p in [&paths[3], &paths[0], &paths[2], &paths[0]] {
                prefetch.push(p);
            }
            assert_eq!(prefetch.room(), 5, "a file pushed twice is read once");
            let got = prefetch.finish("c", &[paths[2].clone(), paths[0].clone()]).unwrap();
            same(got.expect("the broken file was not asked for"));
            if run_late {
                // Jobs that start after the caller took their files do nothing.
                parked.lock().unwrap().drain(..).for_each(|job| job());
            }
        }
        let mut prefetch = Prefetch::new(&at_once, 8);
        prefetch.push(&paths[0]);
        assert!(prefetch.finish("c", &[paths[1].clone()]).is_none(), "a file not pushed");
        let mut prefetch = Prefetch::new(&at_once, 1);
        prefetch.push(&paths[0]);
        prefetch.push(&paths[1]);
        assert!(prefetch.finish("c", &[paths[0].clone()]).is_none(), "past its limit it gives up");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_lists_its_files_in_path_order() {
        let dir = std::env::temp_dir().join(format!("starflow-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files =
            ["b.parquet", "a/z.parquet", "a.parquet", "a/b/c.parquet", "A.parquet", "a-b/x.parquet", "a.b.parquet"];
        for f in files.iter().chain(&["_hidden.parquet", "notes.txt", ".x/y.parquet"]) {
            let path = dir.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        let mut want: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        want.sort();
        assert_eq!(resolve_paths(dir.to_str().unwrap()).unwrap(), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
