//! Runs one client statement on its own thread (never on a worker, never on the HTTP
//! runtime): plans it, submits it to the running computation, and turns its events into
//! frames for the client. A client that goes away cancels its query.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{Field, Schema, SchemaRef};
use bytes::Bytes;
use starflow_dataflow::plan::explain::explain;
use starflow_dataflow::{CatalogSet, Plan, PlanOptions, QueryEvent, Server, Waited, plan_sql};

use super::statement::{Statement, classify};
use super::store::Store;
use super::views;
use crate::cli::Format;
use crate::output::Output;
use crate::report::ReportInput;
use crate::wire::{DoneFrame, Frame, ProgressFrame};

/// Reports kept for `REPORT` (the last queries' profiles).
const REPORTS_KEPT: usize = 8;

/// How often a running query reports progress (and notices a vanished client).
const TICK: Duration = Duration::from_millis(250);

/// The longest a query waits for views' tables to be written after an ingest.
const TABLES: Duration = Duration::from_secs(10);

/// What every statement thread shares.
pub struct State {
    pub server: Server,
    /// What queries can name now (catalogs at their current release, and views).
    pub catalogs: RwLock<Arc<CatalogSet>>,
    /// Catalog name → where its current release lives.
    pub paths: RwLock<BTreeMap<String, String>>,
    /// Releases and views; held while one changes (one ingest or view change at a time).
    pub store: Mutex<Store>,
    /// Set while the views' tables are behind what `catalogs` says (an ingest replied; its
    /// statement writes them next): queries wait for them.
    pub tables_pending: Mutex<bool>,
    pub tables_written: std::sync::Condvar,
    /// Set by an ingest (accepted or not): its statement reserves the next manifest files
    /// after the reply.
    pub reserve_manifests: AtomicBool,
    pub token: String,
    pub processes: usize,
    pub threads: usize,
    pub running: Mutex<BTreeMap<u64, Running>>,
    /// The profiles of the last finished queries, oldest first (`REPORT`, the status page).
    pub reports: Mutex<std::collections::VecDeque<(u64, ReportInput)>>,
    /// Set by `SHUTDOWN`; the main thread watches it.
    pub shutdown: AtomicBool,
    /// Ids of subscriptions (apart from the server's query ids).
    pub next_subscription: std::sync::atomic::AtomicU64,
}

impl State {
    /// A consistent snapshot of what queries can name: after an ingest, once its views'
    /// tables are written (a wait of a fraction of a millisecond, never more than `TABLES`).
    pub fn catalogs(&self) -> Arc<CatalogSet> {
        let pending = self.tables_pending.lock().unwrap_or_else(|p| p.into_inner());
        let _written = self.tables_written.wait_timeout_while(pending, TABLES, |p| *p);
        self.catalogs.read().expect("catalogs lock").clone()
    }

    /// After a release or a view change: publish the new catalogs (and whether views' tables
    /// are still to be written).
    fn refresh(&self, store: &Store) {
        let mut pending = self.tables_pending.lock().unwrap_or_else(|p| p.into_inner());
        *self.catalogs.write().expect("catalogs lock") = store.catalog_set();
        *self.paths.write().expect("paths lock") = store.roots();
        *pending = store.tables_behind();
        if !*pending {
            self.tables_written.notify_all();
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store, to change it: first the views' tables an earlier ingest left behind are
    /// written (when this statement came before that ingest's own writing).
    fn store_to_change(&self) -> std::sync::MutexGuard<'_, Store> {
        let mut store = self.store();
        if store.tables_behind() {
            views::write_tables(&mut store);
            self.refresh(&store);
        }
        store
    }

    /// After a statement's reply: writes the views' tables it left behind, and after an
    /// ingest makes the next manifest files ahead ([`Store::reserve_manifests`]).
    fn after_reply(&self) {
        let reserve = self.reserve_manifests.swap(false, std::sync::atomic::Ordering::SeqCst);
        if reserve || *self.tables_pending.lock().unwrap_or_else(|p| p.into_inner()) {
            let mut store = self.store_to_change();
            if reserve {
                store.reserve_manifests();
            }
        }
    }
}

/// A query running for a client (`SHOW QUERIES`).
pub struct Running {
    pub statement: String,
    pub client: String,
    pub started: Instant,
    pub progress: ProgressFrame,
    pub cancel: Arc<dyn Fn() + Send + Sync>,
}

/// Takes a statement off `SHOW QUERIES` however its function ends.
struct Listed<'a>(&'a State, u64);

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.0.running.lock().expect("running lock").remove(&self.1);
    }
}

impl State {
    /// Lists a running statement (`SHOW QUERIES`, `POST /cancel/{id}`) until the guard drops.
    fn list(&self, id: u64, text: &str, client: &str, cancel: Arc<dyn Fn() + Send + Sync>) -> Listed<'_> {
        let running = Running {
            statement: text.trim().to_string(),
            client: client.to_string(),
            started: Instant::now(),
            progress: ProgressFrame::default(),
            cancel,
        };
        self.running.lock().expect("running lock").insert(id, running);
        Listed(self, id)
    }
}

/// Where a statement's frames go: a short queue in front of the client's connection. `send`
/// waits while it is full and fails once the client is gone or has not read for `STALL`.
pub struct Frames {
    tx: tokio::sync::mpsc::Sender<Bytes>,
}

/// How long a client may stop reading before its statement is abandoned.
const STALL: Duration = Duration::from_secs(60);

impl Frames {
    pub fn new(tx: tokio::sync::mpsc::Sender<Bytes>) -> Self {
        Self { tx }
    }

    fn send(&self, frame: &Frame) -> Result<()> {
        self.send_within(frame, STALL)
    }

    fn send_within(&self, frame: &Frame, limit: Duration) -> Result<()> {
        use tokio::sync::mpsc::error::TrySendError;
        let mut bytes = Bytes::from(frame.encode()?);
        let started = Instant::now();
        loop {
            match self.tx.try_send(bytes) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(_)) => bail!("the client went away"),
                Err(TrySendError::Full(b)) if started.elapsed() < limit => {
                    bytes = b;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => bail!("the client stopped reading for {} s", limit.as_secs()),
            }
        }
    }

    /// Sends if there is room now (progress: a late one is useless); false once the client is gone.
    fn offer(&self, frame: &Frame) -> bool {
        use tokio::sync::mpsc::error::TrySendError;
        !matches!(frame.encode().map(|b| self.tx.try_send(Bytes::from(b))), Ok(Err(TrySendError::Closed(_))))
    }
}

/// Runs `text` for `client`, sending at most `max_rows` result rows (0: all). Never panics
/// on bad input: every failure becomes an `E` frame.
pub fn execute(state: &State, text: &str, max_rows: u64, client: &str, frames: &Frames) {
    let started = Instant::now();
    let _span = tracing::info_span!("statement", client, statement = text.trim()).entered();
    let result = classify(text).map_err(anyhow::Error::from).and_then(|statement| {
        tracing::info!(client, statement = text.trim(), "statement");
        run(state, statement, text, max_rows, client, frames)
    });
    let last = match result {
        Ok(mut done) => {
            done.seconds = started.elapsed().as_secs_f64();
            Frame::Done(done)
        }
        Err(e) => {
            tracing::info!(client, error = %format!("{e:#}"), "statement failed");
            Frame::Error(format!("{e:#}"))
        }
    };
    // A client that stalled already had its minute: the last frame gets a few seconds.
    let _ = frames.send_within(&last, Duration::from_secs(5));
    state.after_reply();
}

fn run(
    state: &State,
    statement: Statement,
    text: &str,
    max_rows: u64,
    client: &str,
    frames: &Frames,
) -> Result<DoneFrame> {
    match statement {
        Statement::Query(sql) => query(state, &sql, text, client, frames, &mut RowsToClient { max_rows, sent: 0 }),
        Statement::Copy { query: sql, path } => copy(state, &sql, text, client, frames, path),
        Statement::ShowCatalogs => table(frames, show_catalogs(state)?),
        Statement::Describe(name) => {
            let (notice, batch) = describe(state, &name)?;
            frames.send(&Frame::Text(notice))?;
            table(frames, batch)
        }
        Statement::ShowQueries => table(frames, show_queries(state)?),
        Statement::Report(id) => {
            frames.send(&Frame::Text(report(state, id)?))?;
            Ok(DoneFrame::default())
        }
        Statement::ShowWorkers => query_plan(
            state,
            Plan::Workers,
            &CatalogSet::new(),
            text,
            client,
            frames,
            &mut RowsToClient { max_rows: 0, sent: 0 },
        ),
        Statement::CreateView { name, query } => {
            let mut store = state.store_to_change();
            let message = views::create_view(&mut store, &state.server, &name, &query)?;
            state.refresh(&store);
            frames.send(&Frame::Text(message))?;
            Ok(DoneFrame::default())
        }
        Statement::DropView(name) => {
            let mut store = state.store_to_change();
            let message = views::drop_view(&mut store, &state.server, &name)?;
            state.refresh(&store);
            frames.send(&Frame::Text(message))?;
            Ok(DoneFrame::default())
        }
        Statement::Subscribe(name) => subscribe(state, &name, text, client, frames),
        Statement::ShowViews => table(frames, show_views(&state.store())?),
        Statement::ShowReleases(catalog) => table(frames, show_releases(&state.store(), catalog.as_deref())?),
        Statement::Ingest { label, catalog, path } => {
            // The time reported is the statement's: waiting for the store and publishing the
            // release included.
            let started = Instant::now();
            let mut store = state.store_to_change();
            state.reserve_manifests.store(true, std::sync::atomic::Ordering::SeqCst);
            let s = views::ingest(&mut store, &state.server, &catalog, &label, &path)?;
            state.refresh(&store);
            drop(store);
            let seconds = started.elapsed().as_secs_f64();
            frames.send(&Frame::Text(format!(
                "release {} \"{}\" of {catalog}: {} files added, {} replaced, {} removed, {} unchanged; rows +{} −{}; views updated: {} ({:.4} s)",
                s.release,
                s.label,
                s.added.0,
                s.replaced.0,
                s.removed.0,
                s.unchanged,
                s.added.1 + s.replaced.2,
                s.removed.1 + s.replaced.1,
                if s.views.is_empty() { "none".to_string() } else { s.views.join(", ") },
                seconds
            )))?;
            Ok(DoneFrame::default())
        }
        Statement::Shutdown => {
            state.shutdown.store(true, Ordering::SeqCst);
            frames.send(&Frame::Text("the server is shutting down".into()))?;
            Ok(DoneFrame::default())
        }
    }
}

/// Sends a small result computed here.
fn table(frames: &Frames, batch: RecordBatch) -> Result<DoneFrame> {
    frames.send(&Frame::Schema(batch.schema()))?;
    let rows = batch.num_rows() as u64;
    frames.send(&Frame::Rows(batch))?;
    Ok(DoneFrame { rows_out: rows, rows_sent: rows, ..DoneFrame::default() })
}

/// Where result batches go.
trait Sink {
    /// Learns the result's schema before any batch.
    fn schema(&mut self, schema: SchemaRef, frames: &Frames) -> Result<()>;
    /// Takes one batch; an error stops the query.
    fn batch(&mut self, batch: RecordBatch, frames: &Frames) -> Result<()>;
    /// Rows handed to the client.
    fn sent(&self) -> u64;
}

/// Rows go to the client, at most `max_rows` of them (0: all); the rest are only counted.
struct RowsToClient {
    max_rows: u64,
    sent: u64,
}

impl Sink for RowsToClient {
    fn schema(&mut self, schema: SchemaRef, frames: &Frames) -> Result<()> {
        frames.send(&Frame::Schema(schema))
    }
    fn batch(&mut self, batch: RecordBatch, frames: &Frames) -> Result<()> {
        let room = if self.max_rows == 0 { u64::MAX } else { self.max_rows - self.sent };
        let keep = room.min(batch.num_rows() as u64) as usize;
        // Frames of at most 64 Ki rows (a sorted result arrives as one batch).
        let mut offset = 0;
        while offset < keep {
            let n = (keep - offset).min(1 << 16);
            frames.send(&Frame::Rows(batch.slice(offset, n)))?;
            offset += n;
            self.sent += n as u64;
        }
        Ok(())
    }
    fn sent(&self) -> u64 {
        self.sent
    }
}

/// Rows go to a file on the server (`COPY … TO`).
struct RowsToFile {
    output: Option<Output>,
}

impl Sink for RowsToFile {
    fn schema(&mut self, _schema: SchemaRef, _frames: &Frames) -> Result<()> {
        Ok(())
    }
    fn batch(&mut self, batch: RecordBatch, _frames: &Frames) -> Result<()> {
        self.output.as_mut().context("the output file is already closed")?.write(&batch)
    }
    fn sent(&self) -> u64 {
        0
    }
}

fn query(
    state: &State,
    sql: &str,
    text: &str,
    client: &str,
    frames: &Frames,
    sink: &mut dyn Sink,
) -> Result<DoneFrame> {
    let catalogs = state.catalogs();
    let planned = plan_sql(sql, &catalogs, &PlanOptions::default())?;
    if planned.explain {
        frames.send(&Frame::Text(explain(&planned.plan, state.threads * state.processes)))?;
        return Ok(DoneFrame::default());
    }
    query_plan(state, planned.plan, &catalogs, text, client, frames, sink)
}

fn copy(state: &State, sql: &str, text: &str, client: &str, frames: &Frames, path: PathBuf) -> Result<DoneFrame> {
    let format = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("parquet") => Format::Parquet,
        Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        _ => bail!("COPY writes .parquet, .csv or .json files; cannot tell the format of {}", path.display()),
    };
    let catalogs = state.catalogs();
    let planned = plan_sql(sql, &catalogs, &PlanOptions::default())?;
    if planned.explain {
        bail!("COPY takes a query, not EXPLAIN");
    }
    let path = std::path::absolute(&path).with_context(|| format!("bad path {}", path.display()))?;
    // Written beside the target and renamed at the end: a failed or cancelled COPY leaves no
    // partial file (and an existing file stays as it was).
    let tmp = path.with_file_name(format!(
        ".{}.starflow-tmp{}",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    let written = (|| -> Result<DoneFrame> {
        let output = Output::open(format, Some(&tmp), planned.plan.schema())?;
        let mut sink = RowsToFile { output: Some(output) };
        let done = query_plan(state, planned.plan, &catalogs, text, client, frames, &mut sink)?;
        sink.output.take().context("the output file is already closed")?.finish()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(done)
    })();
    let done = written.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    frames.send(&Frame::Text(format!("COPY {} rows to {} (on the server)", done.rows_out, path.display())))?;
    Ok(done)
}

/// Partitions of the plan's scans that process 0's workers read (its share of the work).
fn query_plan(
    state: &State,
    plan: Plan,
    catalogs: &CatalogSet,
    text: &str,
    client: &str,
    frames: &Frames,
    sink: &mut dyn Sink,
) -> Result<DoneFrame> {
    sink.schema(plan.schema(), frames)?;
    let partitions_total = crate::progress::local_partitions(&plan, 0, state.threads, state.threads * state.processes);
    let scans = crate::report::scans(&plan);
    let (started, started_at) = (Instant::now(), std::time::SystemTime::now());
    let handle = state.server.submit_profiled(plan, catalogs);
    let id = handle.id;
    let canceller = handle.canceller();
    let _listed = state.list(id, text, client, Arc::new(move || canceller.cancel()));
    let mut client_gone = frames.send(&Frame::Query(id)).is_err();
    if client_gone {
        handle.cancel();
    }
    let mut rows_out = 0u64;
    let mut failure: Option<anyhow::Error> = None;
    let mut last_tick = Instant::now();
    let stats = loop {
        match handle.wait_event(TICK) {
            Waited::Event(QueryEvent::Batch(batch)) => {
                rows_out += batch.num_rows() as u64;
                if failure.is_none()
                    && !client_gone
                    && let Err(e) = sink.batch(batch, frames)
                {
                    // A client that went away, or a file that cannot be written: stop the query.
                    handle.cancel();
                    client_gone = frames.tx.is_closed();
                    failure = Some(e);
                }
            }
            Waited::Event(QueryEvent::Done(result)) => break result,
            Waited::Timeout => {}
            Waited::Closed => bail!("the server's workers stopped"),
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let p = handle.progress();
            let progress = ProgressFrame {
                partitions_read: p.partitions_read,
                partitions_total,
                rows_read: p.rows_read,
                bytes_read: p.bytes_read,
                rows_out,
                seconds: started.elapsed().as_secs_f64(),
                processes: state.processes,
            };
            if let Some(r) = state.running.lock().expect("running lock").get_mut(&id) {
                r.progress = progress.clone();
            }
            if !client_gone && !frames.offer(&Frame::Progress(progress)) {
                tracing::info!(client, query = id, "client went away; cancelling its query");
                client_gone = true;
                handle.cancel();
            }
        }
    };
    if let Some(e) = failure {
        return Err(e);
    }
    let stats = stats?;
    if stats.profile.is_some() {
        let input = ReportInput::new(text.trim(), scans, state.threads * state.processes, &stats, started_at);
        let mut reports = state.reports.lock().expect("reports lock");
        if reports.len() == REPORTS_KEPT {
            reports.pop_front();
        }
        reports.push_back((id, input));
    }
    Ok(DoneFrame {
        rows_out,
        rows_sent: sink.sent(),
        rows_read: stats.rows_read,
        bytes_read: stats.bytes_read,
        seconds: stats.seconds,
    })
}

/// `REPORT [id]`: the HTML report of query `id`, or of the last finished query.
fn report(state: &State, id: Option<u64>) -> Result<String> {
    let reports = state.reports.lock().expect("reports lock");
    let found = match id {
        Some(id) => reports.iter().rev().find(|(i, _)| *i == id),
        None => reports.back(),
    };
    match (found, id) {
        (Some((_, input)), _) => Ok(crate::report::render(input)),
        (None, None) => bail!("no query has finished on this server yet: REPORT shows the last one"),
        (None, Some(id)) => {
            let kept: Vec<String> = reports.iter().map(|(i, _)| i.to_string()).collect();
            bail!("no report of query {id}: the server keeps the last {REPORTS_KEPT} (now: {})", kept.join(", "))
        }
    }
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect())?)
}

fn show_catalogs(state: &State) -> Result<RecordBatch> {
    let set = state.catalogs();
    let paths = state.paths.read().expect("paths lock").clone();
    let names: Vec<&str> = set.names().collect();
    let cats: Vec<_> = names.iter().filter_map(|n| set.get(n)).collect();
    batch(vec![
        ("name", Arc::new(StringArray::from_iter_values(names.iter()))),
        ("files", Arc::new(UInt64Array::from_iter_values(cats.iter().map(|c| c.files.len() as u64)))),
        ("rows", Arc::new(UInt64Array::from_iter_values(cats.iter().map(|c| c.num_rows())))),
        ("columns", Arc::new(UInt64Array::from_iter_values(cats.iter().map(|c| c.schema.fields().len() as u64)))),
        (
            "path",
            Arc::new(StringArray::from_iter_values(
                names.iter().map(|n| paths.get(*n).map_or("(view)", String::as_str)),
            )),
        ),
    ])
}

fn describe(state: &State, name: &str) -> Result<(String, RecordBatch)> {
    let set = state.catalogs();
    let catalog = set.resolve(name)?;
    let fields = catalog.schema.fields();
    let notice = format!(
        "{}: {} rows in {} files, {} columns{}",
        catalog.name,
        catalog.num_rows(),
        catalog.files.len(),
        fields.len(),
        state.paths.read().expect("paths lock").get(&catalog.name).map(|p| format!(", from {p}")).unwrap_or_default()
    );
    let batch = batch(vec![
        ("column", Arc::new(StringArray::from_iter_values(fields.iter().map(|f| f.name().as_str())))),
        ("type", Arc::new(StringArray::from_iter_values(fields.iter().map(|f| f.data_type().to_string())))),
        ("nullable", Arc::new(BooleanArray::from_iter(fields.iter().map(|f| Some(f.is_nullable()))))),
    ])?;
    Ok((notice, batch))
}

pub(super) fn show_queries(state: &State) -> Result<RecordBatch> {
    let running = state.running.lock().expect("running lock");
    let queries: Vec<(&u64, &Running)> = running.iter().collect();
    batch(vec![
        ("id", Arc::new(UInt64Array::from_iter_values(queries.iter().map(|(id, _)| **id)))),
        ("client", Arc::new(StringArray::from_iter_values(queries.iter().map(|(_, r)| r.client.as_str())))),
        (
            "seconds",
            Arc::new(Float64Array::from_iter_values(queries.iter().map(|(_, r)| r.started.elapsed().as_secs_f64()))),
        ),
        ("rows_read", Arc::new(UInt64Array::from_iter_values(queries.iter().map(|(_, r)| r.progress.rows_read)))),
        ("rows_out", Arc::new(UInt64Array::from_iter_values(queries.iter().map(|(_, r)| r.progress.rows_out)))),
        ("statement", Arc::new(StringArray::from_iter_values(queries.iter().map(|(_, r)| r.statement.as_str())))),
    ])
}

pub(super) fn show_views(store: &Store) -> Result<RecordBatch> {
    let views: Vec<_> = store.views.values().collect();
    let kind = |v: &super::store::View| match v.plan.kind {
        starflow_dataflow::view::ViewKind::Rows => "rows",
        starflow_dataflow::view::ViewKind::TopK { .. } => "top-k",
        starflow_dataflow::view::ViewKind::Join { .. } => "join",
        starflow_dataflow::view::ViewKind::Aggregate { .. } => "group-by",
    };
    batch(vec![
        ("name", Arc::new(StringArray::from_iter_values(views.iter().map(|v| v.name.as_str())))),
        ("catalog", Arc::new(StringArray::from_iter_values(views.iter().map(|v| v.plan.catalogs().join(" ⋈ "))))),
        ("kind", Arc::new(StringArray::from_iter_values(views.iter().map(|v| kind(v))))),
        ("release", Arc::new(UInt64Array::from_iter_values(views.iter().map(|v| v.release)))),
        (
            "rows",
            Arc::new(UInt64Array::from_iter_values(
                views.iter().map(|v| v.snapshot.with_rows(|rows| rows.values().map(|n| (*n).max(0) as u64).sum())),
            )),
        ),
        (
            "state_records",
            Arc::new(UInt64Array::from_iter_values(
                views.iter().map(|v| v.ledger.values().map(|r| r.len() as u64).sum()),
            )),
        ),
        ("sql", Arc::new(StringArray::from_iter_values(views.iter().map(|v| v.sql.as_str())))),
    ])
}

fn show_releases(store: &Store, catalog: Option<&str>) -> Result<RecordBatch> {
    if let Some(c) = catalog
        && !store.catalogs.contains_key(c)
    {
        bail!("no catalog named \"{c}\"");
    }
    let manifests: Vec<_> =
        store.catalogs.values().flat_map(|c| &c.manifests).filter(|m| catalog.is_none_or(|c| m.catalog == c)).collect();
    batch(vec![
        ("catalog", Arc::new(StringArray::from_iter_values(manifests.iter().map(|m| m.catalog.as_str())))),
        ("release", Arc::new(UInt64Array::from_iter_values(manifests.iter().map(|m| m.release)))),
        ("label", Arc::new(StringArray::from_iter_values(manifests.iter().map(|m| m.label.as_str())))),
        ("files", Arc::new(UInt64Array::from_iter_values(manifests.iter().map(|m| m.files.len() as u64)))),
        ("rows", Arc::new(UInt64Array::from_iter_values(manifests.iter().map(|m| m.rows())))),
        ("created_unix", Arc::new(UInt64Array::from_iter_values(manifests.iter().map(|m| m.created_unix)))),
        ("root", Arc::new(StringArray::from_iter_values(manifests.iter().map(|m| m.root.as_str())))),
    ])
}

/// `SUBSCRIBE view`: the view's current rows (diff = multiplicity), then every change as
/// releases arrive, each row with `_diff` and `_release`, until the client leaves or cancels.
fn subscribe(state: &State, name: &str, text: &str, client: &str, frames: &Frames) -> Result<DoneFrame> {
    use starflow_dataflow::view::Datum;
    use starflow_dataflow::view::convert::batch_of;
    let (schema, contents, release) = {
        let store = state.store();
        let view =
            store.views.get(name).ok_or_else(|| anyhow::anyhow!("no view named \"{name}\" (SHOW VIEWS lists them)"))?;
        (view.plan.schema.clone(), view.snapshot.clone(), view.release)
    };
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    fields.push(Field::new("_diff", arrow_schema::DataType::Int64, false));
    fields.push(Field::new("_release", arrow_schema::DataType::UInt64, false));
    let schema = Arc::new(Schema::new(fields));
    let send_rows = |rows: Vec<starflow_dataflow::view::Row>| -> Result<u64> {
        for chunk in rows.chunks(1 << 16) {
            frames.send(&Frame::Rows(batch_of(&chunk.iter().collect::<Vec<_>>(), &schema)?))?;
        }
        Ok(rows.len() as u64)
    };
    let (initial, changes) = contents.subscribe();
    // Hold only the receiver: when the view is dropped its contents go, and so do the changes.
    drop(contents);
    let id = state.next_subscription.fetch_add(1, Ordering::Relaxed);
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = cancelled.clone();
    let started = Instant::now();
    let _listed = state.list(id, text, client, Arc::new(move || flag.store(true, Ordering::SeqCst)));
    frames.send(&Frame::Schema(schema.clone()))?;
    frames.send(&Frame::Query(id))?;
    let with = |mut row: starflow_dataflow::view::Row, diff: isize, release: u64| {
        row.extend([Datum::Int(diff as i64), Datum::UInt(release)]);
        row
    };
    let mut sent = send_rows(initial.into_iter().map(|(row, n)| with(row, n, release)).collect())?;
    loop {
        if cancelled.load(Ordering::SeqCst) {
            frames.send(&Frame::Text(format!("SUBSCRIBE {name} stopped")))?;
            break;
        }
        if state.shutdown.load(Ordering::SeqCst) || state.server.lost_a_worker() {
            bail!(starflow_dataflow::RunError::ShuttingDown);
        }
        match changes.recv_timeout(TICK) {
            Ok(batch) => sent += send_rows(batch.into_iter().map(|(row, time, diff)| with(row, diff, time)).collect())?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let alive = ProgressFrame { seconds: started.elapsed().as_secs_f64(), ..ProgressFrame::default() };
                if !frames.offer(&Frame::Progress(alive)) {
                    bail!("the client went away");
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                frames.send(&Frame::Text(format!("view {name} was dropped")))?;
                break;
            }
        }
    }
    Ok(DoneFrame { rows_out: sent, rows_sent: sent, ..DoneFrame::default() })
}
