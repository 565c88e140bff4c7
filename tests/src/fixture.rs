//! Test data: the generated DP0.2-like catalog (made once per test binary build and shared
//! by every test process), a hand-written two-file catalog with a nullable column one file
//! lacks, and scratch folders for odd files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use starflow_catalogs::dp02::{Dp02Options, generate_dp02};

use crate::load::{Dp02Row, load_dp02};

/// Options of the shared catalog: small enough for debug builds, with several files and
/// several row groups per file so pruning, early stop and worker splits all matter.
pub const DP02_OPTIONS: Dp02Options = Dp02Options { files: 6, rows: 30_000, seed: 7, row_group_rows: 2_000 };

/// Name of the shared catalog in queries.
pub const DP02: &str = "dp02";
/// Name of the nullable two-file catalog in queries.
pub const NULLS: &str = "nulls";

/// The shared catalog and its brute-force copy.
pub struct Dp02Fixture {
    /// Folder of the Parquet files.
    pub dir: PathBuf,
    /// The files, sorted by path (catalog order).
    pub files: Vec<PathBuf>,
    /// Row groups per file.
    pub row_groups: Vec<usize>,
    /// Every row, in catalog order (files by path, row groups in order).
    pub rows: Vec<Dp02Row>,
}

impl Dp02Fixture {
    /// Row groups over all files.
    pub fn total_row_groups(&self) -> usize {
        self.row_groups.iter().sum()
    }

    /// Distinct tracts, ascending.
    pub fn tracts(&self) -> Vec<i32> {
        let mut t: Vec<i32> = self.rows.iter().map(|r| r.tract).collect();
        t.sort_unstable();
        t.dedup();
        t
    }
}

/// The shared DP0.2-like catalog, generated on first use.
pub fn dp02() -> &'static Dp02Fixture {
    static FIXTURE: OnceLock<Dp02Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = generated_catalog();
        let (files, row_groups, rows) = load_dp02(&dir);
        assert_eq!(rows.len(), DP02_OPTIONS.rows, "generated catalog has the requested rows");
        Dp02Fixture { dir, files, row_groups, rows }
    })
}

/// Root of this build's fixtures: `<target>/e2e-fixtures/<key>`, where the key changes
/// whenever the test binary is relinked (so a changed generator means fresh data).
///
/// cargo-nextest runs every test in its own process, so a per-process temp folder would
/// regenerate the catalog for each test; keying on the binary instead shares one copy
/// between all processes of one build, and the folder is published with an atomic rename
/// so concurrent processes never see a half-written catalog.
fn fixture_root() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let meta = std::fs::metadata(&exe).expect("test executable metadata");
    let stamp = meta.modified().ok().and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).unwrap_or_default();
    let key = format!("{}-{}-{}", stamp.as_secs(), stamp.subsec_nanos(), meta.len());
    target_dir().join("e2e-fixtures").join(key)
}

/// The cargo target folder (`<target>/<profile>/deps/<test exe>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps folder");
    let profile = if deps.ends_with("deps") { deps.parent().expect("profile folder") } else { deps };
    profile.parent().expect("target folder").to_path_buf()
}

fn generated_catalog() -> PathBuf {
    generated("dp02", &DP02_OPTIONS)
}

/// Options of the large catalog: enough rows that a heavy query in a debug build runs for
/// seconds, long enough to be watched and cancelled.
pub const BIG_OPTIONS: Dp02Options = Dp02Options { files: 8, rows: 1_500_000, seed: 11, row_group_rows: 16_384 };

/// The large catalog (see [`BIG_OPTIONS`]), generated on first use.
pub fn big_catalog() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generated("big", &BIG_OPTIONS))
}

fn generated(name: &str, options: &Dp02Options) -> PathBuf {
    let root = fixture_root();
    let dir = root.join(name);
    if dir.is_dir() {
        return dir;
    }
    std::fs::create_dir_all(&root).expect("create fixture root");
    remove_stale_fixtures(&root);
    let tmp = root.join(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    generate_dp02(&tmp, options).expect("generate a dp02 fixture");
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test process published it first.
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(dir.is_dir(), "fixture {} missing after a failed rename", dir.display());
    }
    dir
}

/// Deletes fixtures of older builds (best effort, only those untouched for an hour).
fn remove_stale_fixtures(current: &Path) {
    let Some(parent) = current.parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if path != current && old {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A scratch folder removed on drop (kept when the test panics, for inspection).
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A fresh, empty folder under the fixture root.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = fixture_root().join("scratch").join(format!("{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch folder");
        Self { path }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes one batch as a Parquet file.
pub fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = File::create(path).expect("create parquet file");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("parquet writer");
    writer.write(batch).expect("write batch");
    writer.close().expect("close parquet file");
}

/// The nullable catalog: `a.parquet` has `id` (non-null) and `x` (nullable, with NULLs and a
/// NaN); `b.parquet` has only `id`, so `x` reads as NULL there.
///
/// | id | 1   | 2    | 3   | 4    | 5    | 6   | 7    | 8    | 9    |
/// |----|-----|------|-----|------|------|-----|------|------|------|
/// | x  | 1.5 | NULL | NaN | -2.0 | NULL | 4.0 | NULL | NULL | NULL |
pub fn nulls_catalog() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fixture_root().join("nulls");
        if dir.is_dir() {
            return dir;
        }
        let tmp = fixture_root().join(format!("nulls.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("create nulls fixture");
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
        ]));
        let id: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6]));
        let x: ArrayRef =
            Arc::new(Float64Array::from(vec![Some(1.5), None, Some(f64::NAN), Some(-2.0), None, Some(4.0)]));
        write_parquet(&tmp.join("a.parquet"), &RecordBatch::try_new(schema, vec![id, x]).expect("batch a"));
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let id: ArrayRef = Arc::new(Int64Array::from(vec![7, 8, 9]));
        write_parquet(&tmp.join("b.parquet"), &RecordBatch::try_new(schema, vec![id]).expect("batch b"));
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
            assert!(dir.is_dir(), "fixture {} missing after a failed rename", dir.display());
        }
        dir
    })
}
