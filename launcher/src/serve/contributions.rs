//! What files contribute to a view: an ordinary query over those files (run by every worker,
//! like any query) whose rows become the view's records, keyed by the file's partition so
//! that they can be retracted when a later release replaces or removes it. A group-by view's
//! query can also feed the view on worker 0 itself ([`feed`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use arrow_array::RecordBatch;
use starflow_catalogs::release::{Manifest, ManifestFile};
use starflow_catalogs::{CatalogFile, ParquetCatalog};
use starflow_dataflow::sql::view::ViewPlan;
use starflow_dataflow::view::convert::rows_of;
use starflow_dataflow::view::feed::{Contribution, Feed, ViewUpdate};
use starflow_dataflow::view::{Datum, JOIN_RIGHT, Row, ViewKind, ViewRecord};
use starflow_dataflow::{CatalogSet, Plan, PlanOptions, QueryEvent, Server, Waited, plan_sql};

/// Contribution queries in flight at once.
const IN_FLIGHT: usize = 16;

/// How a query by file is planned: partitions of about one row group (as the usual writers
/// make them), so that a release's few files are shared by every worker; the parts of a
/// file are merged into its records ([`FileRecords`]).
fn by_file_options() -> PlanOptions {
    PlanOptions { partition_rows: 16_384, ..PlanOptions::default() }
}

/// The ledger key of a file of one side of a view (a join's second catalog is tagged).
pub fn tagged(partition: u64, side: usize) -> u64 {
    if side == 1 { partition | JOIN_RIGHT } else { partition }
}

/// Runs the contribution query of the view's side `side` over `files` (of `manifest`, opened
/// as `catalog`); returns each file's records, keyed by tagged partition id. One query reads
/// every file, grouped by file as well (its scans spread over all workers); a top-k view
/// runs one query per file.
pub fn contributions(
    server: &Server,
    plan: &ViewPlan,
    side: usize,
    by_file: Option<&ByFile>,
    manifest: &Manifest,
    catalog: &ParquetCatalog,
    files: &[&ManifestFile],
) -> Result<HashMap<u64, Vec<ViewRecord>>> {
    if files.is_empty() {
        return Ok(HashMap::new());
    }
    let selected = select(manifest, catalog, files)?;
    if let Some(by_file) = by_file {
        let (planned, set) = by_file.query(catalog, selected)?;
        let mut records = FileRecords::new(plan, side, files);
        for_each_batch(server.submit(planned, &set), &describe(files), |batch| records.add(&batch))?;
        return Ok(records.finish_by_file());
    }
    let mut out: HashMap<u64, Vec<ViewRecord>> = files.iter().map(|f| (tagged(f.partition, side), vec![])).collect();
    for chunk in files.iter().zip(selected).collect::<Vec<_>>().chunks(IN_FLIGHT) {
        let mut handles = Vec::new();
        for (mf, file) in chunk {
            let mut set = CatalogSet::new();
            set.insert(subset(catalog, vec![file.clone()]));
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

/// Runs a group-by view's contribution query over `files` (at least one; its side `side`,
/// which has a [`ByFile`] query) so that worker 0 feeds the view itself: the leaving files' records
/// `retract` go with the query's at `time`, and `others` (other views' updates of the same
/// release) at the same moment. While the workers read, `beside` runs on this thread and
/// decides whether the views may change (an ingest stages its manifest there). Returns the
/// files' records by tagged partition once every update is in the views' inputs (nothing can
/// fail after that), and the query, whose end says the views reflect them; if the query
/// fails or `beside` says no, no view has changed.
#[allow(clippy::too_many_arguments)]
pub fn feed(
    server: &Server,
    view: &super::store::View,
    side: usize,
    manifest: &Manifest,
    catalog: &ParquetCatalog,
    files: &[&ManifestFile],
    time: u64,
    retract: Vec<(ViewRecord, isize)>,
    others: Vec<ViewUpdate>,
    beside: &mut dyn FnMut() -> bool,
) -> Result<(HashMap<u64, Vec<ViewRecord>>, Fed)> {
    let by_file = view.by_file[side].as_ref().ok_or_else(|| anyhow!("view {} has no query by file", view.name))?;
    let mut out: HashMap<u64, Vec<ViewRecord>> = files.iter().map(|f| (tagged(f.partition, side), vec![])).collect();
    if files.is_empty() {
        bail!("a query feeding view {} needs files to read", view.name);
    }
    let (planned, set) = by_file.query(catalog, select(manifest, catalog, files)?)?;
    let (records, fed) = std::sync::mpsc::channel();
    let (gate, decision) = server.gate();
    let feed = Feed {
        contribution: Box::new(FileRecords::new(&view.plan, side, files)),
        own: ViewUpdate { view: view.id, time, records: retract },
        others,
        records,
        gate,
    };
    let handle = server.submit_feeding(planned, &set, feed);
    decision.decide(beside());
    let pending = Fed { handle, what: describe(files) };
    let Ok(records) = fed.recv() else {
        // No view changed: the query's end says why.
        pending.wait()?;
        bail!("the view was updated without its records");
    };
    for record in records {
        out.entry(record.1.0).or_default().push(record);
    }
    Ok((out, pending))
}

/// A feeding query whose records are in its views' inputs.
pub struct Fed {
    handle: starflow_dataflow::QueryHandle,
    what: String,
}

impl Fed {
    /// Waits until every view reflects the records.
    pub fn wait(self) -> Result<()> {
        for_each_batch(self.handle, &self.what, |_| bail!("a query feeding its view returned rows"))
    }
}

/// The catalog files of `files`, as the release's catalog lists them (in its manifest's order).
fn select(manifest: &Manifest, catalog: &ParquetCatalog, files: &[&ManifestFile]) -> Result<Vec<CatalogFile>> {
    let index: HashMap<u64, usize> = manifest.files.iter().enumerate().map(|(i, f)| (f.partition, i)).collect();
    files
        .iter()
        .map(|mf| {
            index
                .get(&mf.partition)
                .and_then(|&i| catalog.files.get(i))
                .filter(|f| f.path.ends_with(&mf.path))
                .cloned()
                .ok_or_else(|| anyhow!("{} is in the manifest but not in the catalog", mf.path))
        })
        .collect()
}

/// `catalog` reduced to `files`.
fn subset(catalog: &ParquetCatalog, files: Vec<CatalogFile>) -> ParquetCatalog {
    ParquetCatalog { name: catalog.name.clone(), files, schema: catalog.schema.clone(), file_column: false, hats: None }
}

fn describe(files: &[&ManifestFile]) -> String {
    if files.len() == 1 { files[0].path.clone() } else { format!("{} files", files.len()) }
}

/// The records of a query by file: each result row starts with its file's index and part
/// ([`starflow_catalogs::file_part`]: a file may be read in several partitions, by several
/// workers).
struct FileRecords {
    plan: ViewPlan,
    side: usize,
    /// Each file's tagged partition, by index.
    partitions: Vec<u64>,
    /// Each file's records, with the first row group of the part that gave them.
    out: HashMap<u64, Vec<(usize, ViewRecord)>>,
}

impl FileRecords {
    fn new(plan: &ViewPlan, side: usize, files: &[&ManifestFile]) -> Self {
        let partitions: Vec<u64> = files.iter().map(|f| tagged(f.partition, side)).collect();
        let out = partitions.iter().map(|&p| (p, vec![])).collect();
        Self { plan: plan.clone(), side, partitions, out }
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        for mut row in rows_of(batch)? {
            let (file, part) = match row.first() {
                Some(Datum::Int(v)) => starflow_catalogs::file_part(*v),
                _ => (usize::MAX, 0),
            };
            let partition = self.partitions.get(file).copied();
            let partition = partition.ok_or_else(|| anyhow!("a contribution row without its file"))?;
            row.remove(0);
            let records = self.out.get_mut(&partition).expect("every file has an entry");
            records.extend(to_records(row, &self.plan, self.side, partition).map(|r| (part, r)));
        }
        Ok(())
    }

    /// Each file's records: a group-by view's parts of one group merged in the parts'
    /// order (so a file's record does not depend on how its parts were shared out); a file
    /// without rows contributes its empty groups (a view of global aggregates has one even
    /// over no rows).
    fn finish_by_file(self) -> HashMap<u64, Vec<ViewRecord>> {
        let empty = self.plan.empty_contribution();
        let kind = &self.plan.kind;
        self.out
            .into_iter()
            .map(|(partition, mut parts)| {
                let mut records: Vec<ViewRecord> = Vec::with_capacity(parts.len());
                if matches!(kind, ViewKind::Aggregate { .. }) {
                    parts.sort_by(|(a, x), (b, y)| x.0.cmp(&y.0).then(a.cmp(b)));
                    for (_, record) in parts {
                        match records.last_mut() {
                            Some(last) if last.0 == record.0 => kind.merge_partials(&mut last.1.1, &record.1.1),
                            _ => records.push(record),
                        }
                    }
                } else {
                    records.extend(parts.into_iter().map(|(_, r)| r));
                }
                if records.is_empty()
                    && let Some(empty) = &empty
                {
                    records.extend(to_records(empty.clone(), &self.plan, self.side, partition));
                }
                (partition, records)
            })
            .collect()
    }
}

impl Contribution for FileRecords {
    fn add(&mut self, batch: &RecordBatch) -> Result<(), String> {
        FileRecords::add(self, batch).map_err(|e| format!("{e:#}"))
    }

    fn finish(self: Box<Self>) -> Vec<ViewRecord> {
        self.finish_by_file().into_values().flatten().collect()
    }
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

    /// The query over `files` of `catalog` (with their file column), and its catalogs.
    fn query(&self, catalog: &ParquetCatalog, files: Vec<CatalogFile>) -> Result<(Plan, CatalogSet)> {
        let set: CatalogSet = std::iter::once(subset(catalog, files).with_file_column()?).collect();
        let planned = {
            let _span = tracing::debug_span!("plan_contribution").entered();
            self.plan_for(&set, &catalog.name)?
        };
        Ok((planned, set))
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
                    catalog.partitions_in(&scan.bounds, &[], by_file_options().partition_rows)?;
                scan.partitions = partitions;
                scan.pruning = (&report).into();
            }
            if same {
                return Ok(plan);
            }
        }
        let mut plan = plan_sql(&self.sql, set, &by_file_options())?.plan;
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
