//! Releases and maintained views on a server: `INGEST RELEASE`, `CREATE MATERIALIZED VIEW`,
//! `DROP VIEW`. What a partition contributes to a view is computed by an ordinary query
//! over that one partition (run by every worker, like any query); the records go to the
//! view's differential dataflow at the release's timestamp, and are remembered so that the
//! partition can be retracted when a later release replaces or removes it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use starflow_catalogs::ParquetCatalog;
use starflow_catalogs::release::{Manifest, ManifestFile, scan_release_with};
use starflow_dataflow::sql::view::{ViewPlan, plan_view};
use starflow_dataflow::view::convert::{batch_of, rows_of};
use starflow_dataflow::view::{Datum, JOIN_RIGHT, Row, ViewKind, ViewRecord};
use starflow_dataflow::{CatalogSet, Plan, PlanOptions, QueryEvent, Server, Waited, plan_sql};

use super::store::{CatalogState, Store, View};

/// Contribution queries in flight at once.
const IN_FLIGHT: usize = 16;

/// The ledger key of a file of one side of a view (a join's second catalog is tagged).
fn tagged(partition: u64, side: usize) -> u64 {
    if side == 1 { partition | JOIN_RIGHT } else { partition }
}

/// Runs the contribution query of the view's side `side` over `files` (of `manifest`, opened
/// as `catalog`); returns each file's records, keyed by tagged partition id. One query reads
/// every file, grouped by file as well (its scans spread over all workers); a top-k view
/// runs one query per file.
fn contributions(
    server: &Server,
    plan: &ViewPlan,
    side: usize,
    by_file: Option<&ByFile>,
    manifest: &Manifest,
    catalog: &ParquetCatalog,
    files: &[&ManifestFile],
) -> Result<HashMap<u64, Vec<ViewRecord>>> {
    // A release's catalog lists its manifest's files in the manifest's order.
    let index: HashMap<u64, usize> = manifest.files.iter().enumerate().map(|(i, f)| (f.partition, i)).collect();
    let mut selected = Vec::with_capacity(files.len());
    for mf in files {
        let file = index
            .get(&mf.partition)
            .and_then(|&i| catalog.files.get(i))
            .filter(|f| f.path.ends_with(&mf.path))
            .ok_or_else(|| anyhow!("{} is in the manifest but not in the catalog", mf.path))?;
        selected.push(file.clone());
    }
    let of = |files: Vec<starflow_catalogs::CatalogFile>| ParquetCatalog {
        name: catalog.name.clone(),
        files,
        schema: catalog.schema.clone(),
        file_column: false,
        hats: None,
    };
    let mut out: HashMap<u64, Vec<ViewRecord>> = files.iter().map(|f| (tagged(f.partition, side), vec![])).collect();
    if files.is_empty() {
        return Ok(out);
    }
    if let Some(by_file) = by_file {
        let set: CatalogSet = std::iter::once(of(selected).with_file_column()?).collect();
        let planned = {
            let _span = tracing::debug_span!("plan_contribution").entered();
            by_file.plan_for(&set, &catalog.name)?
        };
        let what = if files.len() == 1 { files[0].path.clone() } else { format!("{} files", files.len()) };
        for_each_batch(server.submit(planned, &set), &what, |batch| {
            for mut row in rows_of(&batch)? {
                let file = match row.first() {
                    Some(Datum::Int(i)) => files.get(*i as usize),
                    _ => None,
                };
                let file = file.ok_or_else(|| anyhow!("a contribution row without its file"))?;
                row.remove(0);
                let partition = tagged(file.partition, side);
                out.get_mut(&partition)
                    .expect("every file has an entry")
                    .extend(to_records(row, plan, side, partition));
            }
            Ok(())
        })?;
        if let Some(empty) = plan.empty_contribution() {
            for (partition, records) in out.iter_mut().filter(|(_, r)| r.is_empty()) {
                records.extend(to_records(empty.clone(), plan, side, *partition));
            }
        }
        return Ok(out);
    }
    for chunk in files.iter().zip(selected).collect::<Vec<_>>().chunks(IN_FLIGHT) {
        let mut handles = Vec::new();
        for (mf, file) in chunk {
            let mut set = CatalogSet::new();
            set.insert(of(vec![file.clone()]));
            let planned = plan_sql(plan.side(side).1, &set, &PlanOptions::default())?;
            handles.push((tagged(mf.partition, side), &mf.path, server.submit(planned.plan, &set)));
        }
        for (partition, path, handle) in handles {
            let records = out.get_mut(&partition).expect("every file has an entry");
            for_each_batch(handle, path, |batch| {
                records.extend(rows_of(&batch)?.into_iter().flat_map(|row| to_records(row, plan, side, partition)));
                Ok(())
            })?;
        }
    }
    Ok(out)
}

/// A view side's contribution query for many files at once
/// ([`ViewPlan::contribution_by_file`]), planned once and then pointed at each release's files.
pub struct ByFile {
    sql: String,
    planned: Mutex<Option<Plan>>,
}

impl ByFile {
    pub fn new(sql: String) -> Self {
        Self { sql, planned: Mutex::new(None) }
    }

    /// The query over catalog `name` of `set` (these files, with their file column): the plan
    /// made before, its scans given the catalog's partitions, while its columns are where they
    /// were (a release that adds columns is planned again).
    fn plan_for(&self, set: &CatalogSet, name: &str) -> Result<Plan> {
        let catalog = set.get(name).ok_or_else(|| anyhow!("no catalog {name} to plan a contribution over"))?;
        let mut cached = self.planned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut plan) = cached.clone() {
            let mut same = true;
            for scan in plan.scans_mut() {
                same &= scan.catalog == catalog.name
                    && scan
                        .columns
                        .iter()
                        .zip(&scan.column_indices)
                        .all(|(name, &i)| catalog.schema.fields().get(i).is_some_and(|f| f.name() == name));
                if !same {
                    break;
                }
                let (partitions, report) =
                    catalog.partitions_in(&scan.bounds, &[], PlanOptions::default().partition_rows)?;
                scan.partitions = partitions;
                scan.pruning = (&report).into();
            }
            if same {
                return Ok(plan);
            }
        }
        let mut plan = plan_sql(&self.sql, set, &PlanOptions::default())?.plan;
        // A release's contributions are few rows, all going to this thread: they are
        // finished where they gather.
        for aggregate in plan.aggregates_mut() {
            aggregate.on_first_worker = true;
        }
        *cached = Some(plan.clone());
        Ok(plan)
    }
}

/// Hands each result batch of a contribution query (over `what`) to `f` until it is done.
fn for_each_batch(
    handle: starflow_dataflow::QueryHandle,
    what: &str,
    mut f: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    loop {
        match handle.wait_event(Duration::from_secs(3600)) {
            Waited::Event(QueryEvent::Batch(b)) => f(b)?,
            Waited::Event(QueryEvent::Done(result)) => {
                let stats = result.with_context(|| format!("reading {what} for the view"))?;
                tracing::debug!(what, seconds = stats.seconds, rows = stats.rows_read, "contribution done");
                return Ok(());
            }
            Waited::Timeout => {}
            Waited::Closed => bail!("the server's workers stopped"),
        }
    }
}

/// One contribution row as a view record (None: a join key is NULL, and SQL joins never
/// match NULL keys).
fn to_records(mut row: Row, plan: &ViewPlan, side: usize, partition: u64) -> Option<ViewRecord> {
    let keys = plan.side(side).2;
    Some(match plan.kind {
        ViewKind::Join { .. } => {
            if row[..keys].contains(&Datum::Null) {
                return None;
            }
            let columns = row.split_off(keys);
            (row, (partition, columns))
        }
        ViewKind::Rows => (row, (partition, Row::new())),
        // One reducer sees every partition's candidates.
        ViewKind::TopK { .. } => (Row::new(), (partition, row)),
        ViewKind::Aggregate { .. } => {
            let columns = row.split_off(plan.keys);
            (row, (partition, plan.layout.iter().map(|&c| columns[c].clone()).collect()))
        }
    })
}

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
    /// The entering files' contributions, by tagged partition.
    added: HashMap<u64, Vec<ViewRecord>>,
    /// The leaving files' tagged partitions.
    leaving: Vec<u64>,
    /// The records to feed: the leaving files' with −1, the entering files' with +1.
    records: Vec<(ViewRecord, isize)>,
    /// The view's new time.
    time: u64,
}

/// Computes every view's delta for a release of `catalog`, before anything changes.
fn view_deltas(
    store: &Store,
    server: &Server,
    catalog: &str,
    label: &str,
    manifest: &Manifest,
    new_catalog: &ParquetCatalog,
    delta: &starflow_catalogs::release::ReleaseDelta,
) -> Result<Vec<ViewDelta>> {
    let entering: Vec<&ManifestFile> = delta.entering().collect();
    let mut updates = Vec::new();
    for view in store.views.values() {
        let Some(side) = view.plan.catalogs().iter().position(|c| *c == catalog) else { continue };
        let _span = tracing::debug_span!("contributions", files = entering.len()).entered();
        let added =
            contributions(server, &view.plan, side, view.by_file[side].as_ref(), manifest, new_catalog, &entering)
                .with_context(|| {
                    format!("release \"{label}\" of {catalog} rejected while updating view {}", view.name)
                })?;
        let leaving: Vec<u64> = delta.leaving().map(|f| tagged(f.partition, side)).collect();
        let mut records: Vec<(ViewRecord, isize)> = Vec::new();
        for p in &leaving {
            records.extend(view.ledger.get(p).into_iter().flatten().map(|r| (r.clone(), -1)));
        }
        records.extend(added.values().flatten().map(|r| (r.clone(), 1)));
        // A view's time: its catalog's release (a join view: the next after both sides').
        let time = manifest.release.max(view.release + 1);
        updates.push(ViewDelta { name: view.name.clone(), added, leaving, records, time });
    }
    Ok(updates)
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
    let previous = (cs.latest().clone(), cs.current.clone());
    let scan_span = tracing::debug_span!("scan_release").entered();
    let spare = |job| store.helper.submit(job);
    let scanned = scan_release_with(catalog, path, label, Some(&previous), &spare);
    let (manifest, delta, new_catalog) = scanned.with_context(|| {
        format!("release \"{label}\" of {catalog} rejected; {catalog} stays at release {}", previous.0.release)
    })?;
    drop(scan_span);
    let scanned = started.elapsed();
    // The manifest's slow part (writing and syncing it under a temporary name) runs beside
    // the views' update; it takes its place once they are updated (and is removed if the
    // ingest fails before).
    let staging = {
        let (dir, manifest) = (store.dir.clone(), manifest.clone());
        store.helper.run(move || super::store::stage_manifest(&dir, &manifest))
    };
    let updates = match view_deltas(store, server, catalog, label, &manifest, &new_catalog, &delta) {
        Ok(updates) => updates,
        Err(e) => {
            // Nothing of the release stays behind: the staged manifest is removed.
            drop(staging.recv());
            return Err(e);
        }
    };
    let computed = started.elapsed();
    let mut names = Vec::new();
    for ViewDelta { name, added, leaving, records, time } in updates {
        let view = store.views.get_mut(&name).expect("view");
        {
            let _span = tracing::debug_span!("update_view").entered();
            wait(server.update_view(view.id, time, records))?;
        }
        for p in &leaving {
            view.ledger.remove(p);
        }
        view.ledger.extend(added);
        view.release = time;
        names.push(name);
    }
    let updated = started.elapsed();
    let staged = staging.recv().map_err(|_| anyhow!("writing the manifest failed"))??;
    {
        let _span = tracing::debug_span!("manifest").entered();
        staged.commit()?;
    }
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
