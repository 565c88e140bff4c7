//! What a server keeps across statements and restarts, in its state folder:
//!
//! ```text
//! <state>/catalogs/<name>/release-<n>.json   one manifest per release of each catalog
//! <state>/views.json                          view definitions (name, SQL), in creation order
//! <state>/views/<name>/release-<n>.parquet    each view's contents at its latest releases
//! ```
//!
//! Every change is validated first and written atomically last, so a rejected `INGEST` or
//! `CREATE MATERIALIZED VIEW` leaves catalogs, views and files as they were.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use starflow_catalogs::ParquetCatalog;
use starflow_catalogs::atomic::{Reserved, Staged, Written, is_temporary, trim, write_atomically};
use starflow_catalogs::release::{Manifest, scan_release};
use starflow_dataflow::CatalogSet;
use starflow_dataflow::sql::view::ViewPlan;
use starflow_dataflow::view::{Snapshot, ViewRecord};

/// One catalog: its releases and the current one, opened.
pub struct CatalogState {
    pub manifests: Vec<Manifest>,
    pub current: ParquetCatalog,
}

impl CatalogState {
    pub fn latest(&self) -> &Manifest {
        self.manifests.last().expect("a catalog has at least one release")
    }
}

/// A maintained view.
pub struct View {
    pub name: String,
    pub sql: String,
    pub plan: ViewPlan,
    /// Each side's contribution query for many files at once ([`ViewPlan::contribution_by_file`]).
    pub by_file: Vec<Option<super::contributions::ByFile>>,
    /// Its id in the running computation.
    pub id: u64,
    pub snapshot: Snapshot,
    /// What each partition of the current release contributed (fed again with −1 when the
    /// partition leaves).
    pub ledger: HashMap<u64, Vec<ViewRecord>>,
    /// The release its contents reflect.
    pub release: u64,
    /// Its contents as a catalog (a Parquet file in the state folder), for queries: written
    /// after the reply of the ingest that changed them (see [`View::table_behind`]); None
    /// when that write failed.
    pub table: Option<ParquetCatalog>,
    /// The release whose contents `table` holds (or failed to).
    pub table_release: u64,
}

impl View {
    /// True when the view's contents moved past its table (an ingest updated the view; the
    /// table is written after the ingest's reply, or by the next statement that changes the
    /// store).
    pub fn table_behind(&self) -> bool {
        self.table_release != self.release
    }
}

#[derive(Serialize, Deserialize)]
struct ViewDefinition {
    name: String,
    sql: String,
}

pub struct Store {
    pub dir: PathBuf,
    /// False when the folder is temporary (no --state-dir): nothing survives a restart.
    pub persistent: bool,
    pub catalogs: BTreeMap<String, CatalogState>,
    pub views: BTreeMap<String, View>,
    /// Reads a release's new footers beside its ingest, and reserves the next manifest files
    /// after its reply.
    pub helper: super::helper::Helper,
    /// Each catalog's latest manifest file and its length (the file may be longer: spaces
    /// a reserved write left, cut by the next reservation).
    written: HashMap<String, (PathBuf, u64)>,
    /// Each catalog's manifest file for its next release, made ahead ([`Reserved`]).
    reservations: HashMap<String, Reservation>,
}

/// The temporary file of a catalog's next manifest, being made on the helper thread.
pub struct Reservation {
    release: u64,
    ready: mpsc::Receiver<Option<Reserved>>,
}

impl Reservation {
    /// The reserved file, if it is for `release` and could be made.
    pub fn take(self, release: u64) -> Option<Reserved> {
        (self.release == release).then(|| self.ready.recv().ok().flatten()).flatten()
    }
}

fn manifest_path(dir: &Path, catalog: &str, release: u64) -> PathBuf {
    dir.join("catalogs").join(catalog).join(format!("release-{release}.json"))
}

/// Writes a release's manifest in state folder `dir` under a temporary name, over `reserved`
/// when that is its file, not synced yet (see [`Written::sync`]); returns it with the
/// manifest's path and length.
pub fn write_manifest(dir: &Path, manifest: &Manifest, reserved: Option<Reserved>) -> Result<(Written, PathBuf, u64)> {
    let _span = tracing::debug_span!("write_manifest").entered();
    let path = manifest_path(dir, &manifest.catalog, manifest.release);
    let bytes = serde_json::to_vec_pretty(manifest)?;
    let written = match reserved.filter(|r| r.path() == path) {
        Some(reserved) => reserved.write(&bytes)?,
        None => Staged::write_unsynced(&path, &bytes)?,
    };
    Ok((written, path, bytes.len() as u64))
}

impl Store {
    /// Opens (or starts) the state folder; `specs` are the `--catalog NAME=PATH` arguments.
    /// A catalog the folder already knows comes back at its latest release.
    pub fn open(dir: Option<&Path>, specs: &[String]) -> Result<Self> {
        let (dir, persistent) = match dir {
            Some(d) => (d.to_path_buf(), true),
            None => {
                let d = std::env::temp_dir().join(format!("starflow-state-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&d);
                (d, false)
            }
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the state folder {}", dir.display()))?;
        let mut store = Self {
            dir,
            persistent,
            catalogs: BTreeMap::new(),
            views: BTreeMap::new(),
            helper: super::helper::Helper::start("manifests"),
            written: HashMap::new(),
            reservations: HashMap::new(),
        };
        store.load_catalogs()?;
        for spec in specs {
            let Some((name, path)) = spec.split_once('=').filter(|(n, p)| !n.is_empty() && !p.is_empty()) else {
                bail!("--catalog needs NAME=PATH, got \"{spec}\"");
            };
            if let Some(known) = store.catalogs.get(name) {
                let latest = known.latest();
                if latest.release > 1 || latest.root.trim_end_matches('/') != path.trim_end_matches('/') {
                    tracing::warn!(
                        catalog = name,
                        release = latest.release,
                        label = latest.label,
                        "the state folder has this catalog already: --catalog {path} is ignored"
                    );
                    eprintln!(
                        "starflow serve: {name} is at release {} ({}) in the state folder; --catalog {path} is ignored",
                        latest.release, latest.label
                    );
                }
                continue;
            }
            let (manifest, _, catalog) =
                scan_release(name, path, "initial", None).with_context(|| format!("cannot open catalog \"{name}\""))?;
            store.write_manifest(&manifest)?;
            store.catalogs.insert(name.to_string(), CatalogState { manifests: vec![manifest], current: catalog });
        }
        if store.catalogs.is_empty() {
            bail!("no catalogs: give --catalog NAME=PATH (or a --state-dir that has some)");
        }
        store.reserve_manifests();
        Ok(store)
    }

    fn load_catalogs(&mut self) -> Result<()> {
        let root = self.dir.join("catalogs");
        let Ok(entries) = std::fs::read_dir(&root) else { return Ok(()) };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut manifests = Vec::new();
            for file in std::fs::read_dir(entry.path())?.flatten() {
                let path = file.path();
                // A manifest an earlier server staged or reserved but never put in place.
                if is_temporary(&path) {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path)?;
                    let m: Manifest = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a release manifest", path.display()))?;
                    manifests.push((m, path, text.trim_end().len() as u64));
                }
            }
            manifests.sort_by_key(|(m, ..)| m.release);
            let Some((_, path, length)) = manifests.last() else { continue };
            self.written.insert(name.clone(), (path.clone(), *length));
            let manifests: Vec<Manifest> = manifests.into_iter().map(|(m, ..)| m).collect();
            let latest = manifests.last().expect("a manifest");
            let paths: Vec<PathBuf> = latest.files.iter().map(|f| latest.file_path(f)).collect();
            let current = ParquetCatalog::open_files(&name, &paths).with_context(|| {
                format!("cannot reopen release {} ({}) of catalog \"{name}\"", latest.release, latest.label)
            })?;
            self.catalogs.insert(name, CatalogState { manifests, current });
        }
        Ok(())
    }

    pub fn write_manifest(&mut self, manifest: &Manifest) -> Result<()> {
        let (written, path, length) = write_manifest(&self.dir, manifest, None)?;
        written.sync()?.commit()?;
        self.manifest_written(&manifest.catalog, path, length);
        Ok(())
    }

    /// Records that `catalog`'s latest manifest is the first `length` bytes of `path`.
    pub fn manifest_written(&mut self, catalog: &str, path: PathBuf, length: u64) {
        self.written.insert(catalog.to_string(), (path, length));
    }

    /// The reservation of `catalog`'s next manifest file, if one was made.
    pub fn take_reservation(&mut self, catalog: &str) -> Option<Reservation> {
        self.reservations.remove(catalog)
    }

    /// Makes, on the helper thread, the manifest file of each catalog's next release that is
    /// not reserved yet (after an ingest's reply: its syncs are off every ingest's path),
    /// cutting the spaces the latest one was left with. Room for a quarter more than
    /// the latest manifest; a longer one is written the ordinary way.
    pub fn reserve_manifests(&mut self) {
        for (name, catalog) in &self.catalogs {
            let latest = catalog.latest();
            let next = latest.release + 1;
            if self.reservations.get(name).is_some_and(|r| r.release == next) {
                continue;
            }
            let written = self.written.get(name).cloned();
            let length = written.as_ref().map_or(512 * latest.files.len() as u64, |(_, l)| *l) as usize;
            let capacity = (length + length / 4 + 4096).next_multiple_of(4096);
            let path = manifest_path(&self.dir, name, next);
            let ready = self.helper.run(move || {
                let _span = tracing::debug_span!("reserve_manifest").entered();
                if let Some((written, length)) = written
                    && let Err(e) = trim(&written, length)
                {
                    tracing::warn!(error = %e, "cannot cut a manifest to its length");
                }
                Reserved::make(&path, capacity)
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot reserve the next manifest file"))
                    .ok()
            });
            self.reservations.insert(name.clone(), Reservation { release: next, ready });
        }
    }

    /// View definitions saved by an earlier run.
    pub fn saved_views(&self) -> Result<Vec<(String, String)>> {
        let path = self.dir.join("views.json");
        if !path.exists() {
            return Ok(vec![]);
        }
        let defs: Vec<ViewDefinition> = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{} is not a list of views", path.display()))?;
        Ok(defs.into_iter().map(|d| (d.name, d.sql)).collect())
    }

    /// Saves the view definitions (after a CREATE or DROP).
    pub fn save_views(&self) -> Result<()> {
        let mut defs: Vec<(&u64, ViewDefinition)> =
            self.views.values().map(|v| (&v.id, ViewDefinition { name: v.name.clone(), sql: v.sql.clone() })).collect();
        defs.sort_by_key(|(id, _)| **id);
        let defs: Vec<ViewDefinition> = defs.into_iter().map(|(_, d)| d).collect();
        write_atomically(&self.dir.join("views.json"), &serde_json::to_vec_pretty(&defs)?)?;
        Ok(())
    }

    /// Where a view's contents at `release` go.
    pub fn view_file(&self, view: &str, release: u64) -> PathBuf {
        self.dir.join("views").join(view).join(format!("release-{release}.parquet"))
    }

    /// What queries can name: every catalog at its current release, and every view whose
    /// table holds its current contents.
    pub fn catalog_set(&self) -> Arc<CatalogSet> {
        let mut set = CatalogSet::new();
        for c in self.catalogs.values() {
            set.insert(c.current.clone());
        }
        // A view whose table is behind is left out: queries wait until it is written
        // (`State::catalogs`), and one whose table could not be written is not offered.
        for v in self.views.values().filter(|v| !v.table_behind()) {
            if let Some(table) = &v.table {
                set.insert(table.clone());
            }
        }
        Arc::new(set)
    }

    /// True when some view's table is behind its contents.
    pub fn tables_behind(&self) -> bool {
        self.views.values().any(View::table_behind)
    }

    /// Catalog name → where its current release lives.
    pub fn roots(&self) -> BTreeMap<String, String> {
        self.catalogs.iter().map(|(n, c)| (n.clone(), c.latest().root.clone())).collect()
    }
}
