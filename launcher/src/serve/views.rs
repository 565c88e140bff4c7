//! Releases and maintained views on a server: `INGEST RELEASE`, `CREATE MATERIALIZED VIEW`,
//! `DROP VIEW`. What a partition contributes to a view is computed by an ordinary query
//! over that one partition ([`super::contributions`]); the records go to the view's
//! differential dataflow at the release's timestamp, and are remembered so that the
//! partition can be retracted when a later release replaces or removes it.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use parquet::arrow::ArrowWriter;
use starflow_catalogs::ParquetCatalog;
use starflow_catalogs::release::{Manifest, ManifestFile, scan_release_with};
use starflow_dataflow::Server;
use starflow_dataflow::sql::view::{ViewPlan, plan_view};
use starflow_dataflow::view::convert::batch_of;
use starflow_dataflow::view::feed::ViewUpdate;
use starflow_dataflow::view::{Row, ViewRecord};

use super::contributions::{ByFile, Fed, contributions, feed, tagged};
use super::store::{CatalogState, Store, View};

/// Writes a view's contents at `release` and opens them as a catalog named after the view.
/// Of its earlier files, only the one of release `keep` stays (a running query may still
/// read it).
fn write_table(
    store: &Store,
    view: &str,
    plan: &ViewPlan,
    snapshot: &starflow_dataflow::view::Snapshot,
    release: u64,
    keep: Option<u64>,
) -> Result<ParquetCatalog> {
    let path = store.view_file(view, release);
    let folder = path.parent().expect("view folder");
    std::fs::create_dir_all(folder)?;
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut writer = ArrowWriter::try_new(file, plan.schema.clone(), None)?;
    snapshot.with_rows(|snap| -> Result<()> {
        let rows: Vec<&Row> = snap.iter().flat_map(|(row, n)| std::iter::repeat_n(row, (*n).max(0) as usize)).collect();
        for chunk in rows.chunks(65_536) {
            writer.write(&batch_of(chunk, &plan.schema)?)?;
        }
        Ok(())
    })?;
    let metadata = writer.close()?;
    std::fs::rename(&tmp, &path)?;
    let kept = [Some(path.clone()), keep.map(|r| store.view_file(view, r))];
    for entry in std::fs::read_dir(folder)?.flatten() {
        if !kept.iter().flatten().any(|k| *k == entry.path()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(ParquetCatalog::of_written(view, &path, plan.schema.clone(), &metadata))
}

/// Writes the table of every view whose contents moved past it (after an ingest). A table
/// that cannot be written is logged and left out of what queries can name until the view
/// changes again.
pub fn write_tables(store: &mut Store) {
    let behind: Vec<String> = store.views.values().filter(|v| v.table_behind()).map(|v| v.name.clone()).collect();
    for name in behind {
        let _span = tracing::debug_span!("write_table", view = name.as_str()).entered();
        let view = &store.views[&name];
        let keep = view.table.as_ref().map(|_| view.table_release);
        let written = write_table(store, &name, &view.plan, &view.snapshot, view.release, keep);
        let view = store.views.get_mut(&name).expect("view");
        if let Err(e) = &written {
            tracing::warn!(view = name.as_str(), release = view.release, error = %format!("{e:#}"),
                "the view's contents could not be written as a table; queries cannot read it until it changes again");
        }
        view.table = written.ok();
        view.table_release = view.release;
    }
}

/// Waits until the view reflects its update.
fn wait(done: std::sync::mpsc::Receiver<()>) -> Result<()> {
    done.recv().map_err(|_| anyhow!("the server's workers stopped before the view was updated"))
}

/// `CREATE MATERIALIZED VIEW name AS sql`: starts from the catalog's current release.
pub fn create_view(store: &mut Store, server: &Server, name: &str, sql: &str) -> Result<String> {
    let started = Instant::now();
    if store.views.contains_key(name) || store.catalogs.contains_key(name) {
        bail!("\"{name}\" is already a catalog or a view");
    }
    let plan = plan_view(sql, &store.catalog_set())?;
    let by_file: Vec<Option<ByFile>> =
        (0..plan.catalogs().len()).map(|side| plan.contribution_by_file(side).map(ByFile::new)).collect();
    let mut ledger = HashMap::new();
    let mut release = 0;
    for (side, catalog) in plan.catalogs().into_iter().enumerate() {
        let Some(cs) = store.catalogs.get(catalog) else {
            bail!("views read catalogs, and \"{catalog}\" is a view");
        };
        let manifest = cs.latest();
        let files: Vec<&ManifestFile> = manifest.files.iter().collect();
        ledger.extend(contributions(server, &plan, side, by_file[side].as_ref(), manifest, &cs.current, &files)?);
        release = release.max(manifest.release);
    }
    let (id, snapshot) = server.create_view(name, plan.kind.clone(), release);
    let records: Vec<(ViewRecord, isize)> = ledger.values().flatten().map(|r| (r.clone(), 1)).collect();
    wait(server.update_view(id, release, records))?;
    let table = write_table(store, name, &plan, &snapshot, release, None)?;
    let rows = table.num_rows();
    let catalog = plan.catalogs().join(" ⋈ ");
    store.views.insert(
        name.to_string(),
        View {
            name: name.to_string(),
            sql: sql.to_string(),
            plan,
            by_file,
            id,
            snapshot,
            ledger,
            release,
            table: Some(table),
            table_release: release,
        },
    );
    if let Err(e) = store.save_views() {
        let view = store.views.remove(name).expect("just inserted");
        server.drop_view(view.id);
        return Err(e);
    }
    Ok(format!(
        "created view {name} over {catalog} at release {release}: {rows} rows ({:.3} s)",
        started.elapsed().as_secs_f64()
    ))
}

/// `DROP VIEW name`.
pub fn drop_view(store: &mut Store, server: &Server, name: &str) -> Result<String> {
    let view = store.views.remove(name).ok_or_else(|| anyhow!("no view named \"{name}\""))?;
    server.drop_view(view.id);
    store.save_views()?;
    let _ = std::fs::remove_dir_all(store.dir.join("views").join(name));
    Ok(format!("dropped view {name}"))
}

/// What an ingest changed.
pub struct IngestSummary {
    pub release: u64,
    pub label: String,
    pub added: (usize, u64),
    pub replaced: (usize, u64, u64),
    pub removed: (usize, u64),
    pub unchanged: usize,
    pub views: Vec<String>,
}

/// What a release changes in one view.
struct ViewDelta {
    name: String,
    /// Its id in the running computation.
    id: u64,
    /// The entering files' contributions, by tagged partition.
    added: HashMap<u64, Vec<ViewRecord>>,
    /// The leaving files' tagged partitions.
    leaving: Vec<u64>,
    /// The records to feed: the leaving files' with −1, the entering files' with +1.
    records: Vec<(ViewRecord, isize)>,
    /// The view's new time.
    time: u64,
}

/// Computes every view's delta for a release of `catalog`. Returns, when the views have them
/// already, the query that fed them: when files enter and every view over the catalog is a
/// group-by view (on worker 0 alone), the last view's contribution query feeds every view as
/// it ends (one round trip to the workers fewer), and `beside` runs while that query runs and
/// decides whether the views may change. Otherwise no view has changed yet (and `beside` was
/// not run).
#[allow(clippy::too_many_arguments)]
fn view_deltas(
    store: &Store,
    server: &Server,
    catalog: &str,
    label: &str,
    manifest: &Manifest,
    new_catalog: &ParquetCatalog,
    delta: &starflow_catalogs::release::ReleaseDelta,
    beside: &mut dyn FnMut() -> bool,
) -> Result<(Vec<ViewDelta>, Option<Fed>)> {
    let entering: Vec<&ManifestFile> = delta.entering().collect();
    let over: Vec<(&View, usize)> = store
        .views
        .values()
        .filter_map(|v| v.plan.catalogs().iter().position(|c| *c == catalog).map(|side| (v, side)))
        .collect();
    let fed = !entering.is_empty()
        && over.iter().all(|(v, side)| v.plan.kind.on_first_worker() && v.by_file[*side].is_some());
    let rejected = |view: &View| format!("release \"{label}\" of {catalog} rejected while updating view {}", view.name);
    let mut updates: Vec<ViewDelta> = Vec::new();
    let mut pending = None;
    for (i, &(view, side)) in over.iter().enumerate() {
        let _span = tracing::debug_span!("contributions", files = entering.len()).entered();
        let leaving: Vec<u64> = delta.leaving().map(|f| tagged(f.partition, side)).collect();
        let mut records: Vec<(ViewRecord, isize)> = Vec::new();
        for p in &leaving {
            records.extend(view.ledger.get(p).into_iter().flatten().map(|r| (r.clone(), -1)));
        }
        // A view's time: its catalog's release (a join view: the next after both sides').
        let time = manifest.release.max(view.release + 1);
        let added = if fed && i + 1 == over.len() {
            let others = updates
                .iter_mut()
                .map(|d| ViewUpdate { view: d.id, time: d.time, records: std::mem::take(&mut d.records) })
                .collect();
            let retract = std::mem::take(&mut records);
            let (added, fed) =
                feed(server, view, side, manifest, new_catalog, &entering, time, retract, others, beside)
                    .with_context(|| rejected(view))?;
            pending = Some(fed);
            added
        } else {
            let by_file = view.by_file[side].as_ref();
            let added = contributions(server, &view.plan, side, by_file, manifest, new_catalog, &entering)
                .with_context(|| rejected(view))?;
            records.extend(added.values().flatten().map(|r| (r.clone(), 1)));
            added
        };
        updates.push(ViewDelta { name: view.name.clone(), id: view.id, added, leaving, records, time });
    }
    Ok((updates, pending))
}

/// `INGEST RELEASE 'label' INTO catalog FROM 'path'`: validates the new release, updates
/// every view over the catalog with the delta, then records the release. The views' tables
/// are left behind their contents, for [`write_tables`] (after the reply).
pub fn ingest(store: &mut Store, server: &Server, catalog: &str, label: &str, path: &str) -> Result<IngestSummary> {
    let started = Instant::now();
    let cs = store.catalogs.get(catalog).ok_or_else(|| {
        anyhow!(
            "no catalog named \"{catalog}\" (catalogs: {})",
            store.catalogs.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    if let Some(m) = cs.manifests.iter().find(|m| m.label == label) {
        bail!("catalog {catalog} already has a release labelled \"{label}\" (release {})", m.release);
    }
    let scan_span = tracing::debug_span!("scan_release").entered();
    let spare = |job| store.helper.submit(job);
    let scanned = scan_release_with(catalog, path, label, Some((cs.latest(), &cs.current)), &spare);
    let (manifest, delta, new_catalog) = scanned.with_context(|| {
        format!("release \"{label}\" of {catalog} rejected; {catalog} stays at release {}", cs.latest().release)
    })?;
    drop(scan_span);
    let scanned = started.elapsed();
    let rejected =
        || format!("release \"{label}\" of {catalog} rejected; {catalog} stays at release {}", manifest.release - 1);
    // The manifest is written under a temporary name now (the workers are idle), synced on
    // this thread while they read the entering files (its slow part, which needs almost no
    // CPU), and the views change only if that succeeded; it takes its place once they are
    // updated (and is removed if the ingest fails before).
    let reserved = store.take_reservation(catalog).and_then(|r| r.take(manifest.release));
    let (written, manifest_file, length) =
        super::store::write_manifest(&store.dir, &manifest, reserved).with_context(rejected)?;
    let mut written = Some(written);
    let mut staged = None;
    let mut stage = || {
        let result = written.take().map(|w| w.sync());
        let ok = result.as_ref().is_some_and(Result::is_ok);
        staged = result;
        ok
    };
    let deltas = view_deltas(store, server, catalog, label, &manifest, &new_catalog, &delta, &mut stage);
    // No view changed unless the manifest was synced: a failure to sync is the reason to give.
    let (updates, fed, staged) = match (deltas, staged) {
        (_, Some(Err(e))) => return Err(anyhow::Error::from(e).context(rejected())),
        (Err(e), _) => return Err(e),
        (Ok((updates, fed)), Some(Ok(staged))) => (updates, fed, staged),
        (Ok((updates, fed)), None) => {
            let written = written.take().expect("written, not synced yet");
            (updates, fed, written.sync().with_context(rejected)?)
        }
    };
    let computed = started.elapsed();
    let mut names = Vec::new();
    for ViewDelta { name, id, added, leaving, records, time } in updates {
        if fed.is_none() {
            let _span = tracing::debug_span!("update_view").entered();
            wait(server.update_view(id, time, records))?;
        }
        let view = store.views.get_mut(&name).expect("view");
        for p in &leaving {
            view.ledger.remove(p);
        }
        view.ledger.extend(added);
        view.release = time;
        names.push(name);
    }
    let updated = started.elapsed();
    {
        // (A rename next to the file just written and synced: if even that fails, the error
        // is reported, and the views keep a release that a restart would not come back at.)
        let _span = tracing::debug_span!("manifest").entered();
        staged.commit().with_context(|| format!("release \"{label}\" of {catalog} could not be recorded"))?;
    }
    // Fed views work out their new contents from their inputs while the manifest is put in
    // place; the reply waits for them.
    if let Some(fed) = fed {
        let _span = tracing::debug_span!("views_settle").entered();
        fed.wait()?;
    }
    store.manifest_written(catalog, manifest_file, length);
    tracing::info!(
        catalog,
        release = manifest.release,
        scan_ms = scanned.as_secs_f64() * 1e3,
        contributions_ms = (computed - scanned).as_secs_f64() * 1e3,
        views_ms = (updated - computed).as_secs_f64() * 1e3,
        manifest_ms = (started.elapsed() - updated).as_secs_f64() * 1e3,
        "release ingested"
    );
    let rows = |files: &mut dyn Iterator<Item = &ManifestFile>| files.map(|f| f.rows).sum::<u64>();
    let summary = IngestSummary {
        release: manifest.release,
        label: label.to_string(),
        added: (delta.added.len(), rows(&mut delta.added.iter())),
        replaced: (
            delta.replaced.len(),
            rows(&mut delta.replaced.iter().map(|(o, _)| o)),
            rows(&mut delta.replaced.iter().map(|(_, n)| n)),
        ),
        removed: (delta.removed.len(), rows(&mut delta.removed.iter())),
        unchanged: delta.unchanged,
        views: names,
    };
    let cs: &mut CatalogState = store.catalogs.get_mut(catalog).expect("catalog");
    cs.manifests.push(manifest);
    cs.current = new_catalog;
    // The entering files' footers served the contribution queries; catalogs keep none.
    for file in &mut cs.current.files {
        file.footer = None;
    }
    Ok(summary)
}
