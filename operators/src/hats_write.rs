//! `HatsWrite`: writes rows into the partitions of a HATS catalog and of its margin catalog.
//!
//! The pixel counts (the first input) go to every worker, which cuts the same partitions from
//! them (hats-import's alignment) once they are complete; only then are the rows read. A row
//! goes to the worker of its partition (the one whose pixel holds its order-29 pixel)
//! and, with margins, to the workers of every other partition its margin circle reaches
//! (cdshealpix's cone coverage at the deepest partition order, which never misses one).
//! Each worker keeps what it receives per partition and spools it to Arrow IPC files once it
//! holds more than its memory budget; when the input is complete it writes its partitions one
//! per activation, each sorted by `_healpix_29` and then by row id, so the files are the same
//! whatever the number of workers.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use starflow_catalogs::hats::alignment::alignment;
use starflow_catalogs::hats::{HEALPIX_29_COLUMN, pixel_dir, region::pixel_range};
use starflow_dataflow::plan::HatsWriteSpec;
use starflow_dataflow::timely::dataflow::channels::pact::{Exchange, Pipeline};
use starflow_dataflow::timely::dataflow::operators::generic::Operator;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};

use crate::aggregate::splitmix64;
use crate::crossmatch::inside_own_pixel;

/// Where a routed batch's rows go: partition index, and whether as margin rows.
type Key = (u32, bool);

/// The partitions every worker cuts from the counts, with what routing looks up in them.
struct Cut {
    /// (order, pixel, rows), in sky order.
    partitions: Vec<(u8, u64, u64)>,
    /// The first order-29 pixel of each partition.
    starts: Vec<u64>,
    /// The deepest partition order.
    deepest: u8,
}

impl Cut {
    fn new(partitions: Vec<(u8, u64, u64)>) -> Self {
        let starts = partitions.iter().map(|&(o, p, _)| pixel_range(o, p).start).collect();
        let deepest = partitions.iter().map(|p| p.0).max().unwrap_or(0);
        Self { partitions, starts, deepest }
    }

    /// The partition holding order-29 pixel `h`, if any.
    fn find(&self, h: u64) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= h).checked_sub(1)?;
        let (o, p, _) = self.partitions[i];
        pixel_range(o, p).contains(&h).then_some(i as u32)
    }
}

type Partitions = Arc<Cut>;

/// Renders the counts' broadcast, the routing and the writing.
pub(crate) fn render_hats_write<'s>(
    ctx: &RenderContext<'s>,
    counts: BatchStream<'s>,
    rows: BatchStream<'s>,
    spec: &HatsWriteSpec,
) -> BatchStream<'s> {
    let peers = ctx.scope.peers() as u64;
    let index = ctx.scope.index();
    // Every count to every worker.
    let counts = counts.unary(Pipeline, "HatsCounts", move |_cap, _info| {
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for batch in data.drain(..) {
                    session.give_iterator((0..peers).map(|w| batch.clone().routed(w)));
                }
            });
        }
    });
    // Shared by this worker's routing (which cuts the partitions) and writing.
    let cut: Rc<RefCell<Option<Partitions>>> = Rc::default();
    let (route_spec, errors, cut_here) = (Arc::new(spec.clone()), ctx.errors.clone(), cut.clone());
    let routed = counts.binary_frontier(
        rows,
        Exchange::new(|b: &Batch| b.route),
        Pipeline,
        "HatsRoute",
        move |_cap, _info| {
            let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
            let mut unplaced = 0u64;
            let mut held: Vec<(starflow_dataflow::timely::dataflow::operators::Capability<u64>, Batch)> = Vec::new();
            move |(counts, counts_frontier), (rows, _), output| {
                counts.for_each(|_cap, data| {
                    for batch in data.drain(..) {
                        let (p, n) = (batch.data.column(0), batch.data.column(1));
                        let (p, n) = (p.as_primitive::<Int64Type>(), n.as_primitive::<Int64Type>());
                        for i in 0..batch.data.num_rows() {
                            if p.is_null(i) {
                                unplaced += n.value(i) as u64;
                            } else {
                                *histogram.entry(p.value(i) as u64).or_default() += n.value(i) as u64;
                            }
                        }
                    }
                });
                rows.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0) {
                        held.extend(data.drain(..).map(|b| (cap.clone(), b)));
                    }
                });
                if !counts_frontier.is_empty() {
                    return;
                }
                if cut_here.borrow().is_none() {
                    let partitions = if unplaced > 0 {
                        errors.record(RunError::Data(format!(
                            "{unplaced} rows have no position on the sky (RA/Dec NULL, NaN or |Dec| > 90): a HATS catalog places every row"
                        )));
                        Vec::new()
                    } else {
                        match alignment(&histogram, route_spec.highest_order, route_spec.lowest_order, route_spec.threshold) {
                            Ok(p) => p,
                            Err(e) => {
                                errors.record(RunError::Catalog(e));
                                Vec::new()
                            }
                        }
                    };
                    *cut_here.borrow_mut() = Some(Arc::new(Cut::new(partitions)));
                    histogram.clear();
                }
                let partitions = cut_here.borrow().clone().expect("cut");
                for (cap, batch) in held.drain(..) {
                    if errors.failed() {
                        continue;
                    }
                    match route(&route_spec, &partitions, &batch.data, peers) {
                        Ok(parts) => output
                            .session(&cap)
                            .give_iterator(parts.into_iter().map(|(w, b)| Batch::new(b, batch.seq).routed(w))),
                        Err(e) => errors.record(e),
                    }
                }
            }
        },
    );
    let (spec, errors) = (spec.clone(), ctx.errors.clone());
    let scope = ctx.scope;
    routed.unary_frontier(Exchange::new(|b: &Batch| b.route), "HatsWrite", move |cap, info| {
        let activator = scope.activator_for(info.address.clone());
        let mut cap = Some(cap);
        let mut spool = Spool::new(spec.spool.join(format!("worker-{index}")), spec.memory_budget);
        let mut to_write: Option<std::vec::IntoIter<Key>> = None;
        move |(input, frontier), output| {
            input.for_each(|_cap, data| {
                for batch in data.drain(..) {
                    if !errors.failed()
                        && let Err(e) = spool.add(&batch.data)
                    {
                        errors.record(e);
                    }
                }
            });
            if !frontier.is_empty() || cap.is_none() {
                return;
            }
            let partitions = cut.borrow().clone().unwrap_or_else(|| Arc::new(Cut::new(Vec::new())));
            if to_write.is_none()
                && !errors.failed()
                && let Err(e) = spool.settle()
            {
                errors.record(e);
            }
            if errors.failed() {
                spool.discard();
                cap = None;
                return;
            }
            let keys = to_write.get_or_insert_with(|| {
                // Every partition of this worker must have come, with all its rows.
                if let Some((i, p)) = partitions
                    .partitions
                    .iter()
                    .enumerate()
                    .find(|(i, _)| worker_of(*i as u32, peers) == index as u64 && !spool.has((*i as u32, false)))
                {
                    errors.record(RunError::Data(format!(
                        "partition Norder={} Npix={} (#{i}) received no rows of the {} counted",
                        p.0, p.1, p.2
                    )));
                }
                spool.keys().into_iter()
            });
            if errors.failed() {
                return activator.activate();
            }
            match keys.next() {
                Some(key) => {
                    let _span = tracing::debug_span!("hats_write", partition = key.0, margin = key.1).entered();
                    let (order, pixel, expected) = partitions.partitions[key.0 as usize];
                    match spool.take(key).and_then(|batches| write_partition(&spec, (order, pixel), key.1, batches)) {
                        Ok(row) => {
                            let written = row.column(3).as_primitive::<Int64Type>().value(0) as u64;
                            if !key.1 && written != expected {
                                errors.record(RunError::Data(format!(
                                    "partition Norder={order} Npix={pixel}: {written} rows written, {expected} counted: the catalog changed during the import"
                                )));
                            } else if let Some(c) = &cap {
                                output.session(c).give(Batch::new(row, 0));
                            }
                        }
                        Err(e) => errors.record(e),
                    }
                    activator.activate();
                }
                None => {
                    spool.discard();
                    cap = None;
                }
            }
        }
    })
}

/// The worker of a partition.
fn worker_of(partition: u32, peers: u64) -> u64 {
    splitmix64(u64::from(partition)) % peers
}

/// Splits a batch by destination worker; each part gets `_healpix_29` and the routing
/// columns (`__partition`, `__margin`) appended.
fn route(spec: &HatsWriteSpec, cut: &Cut, data: &RecordBatch, peers: u64) -> Result<Vec<(u64, RecordBatch)>, RunError> {
    let arrow = |source: ArrowError| RunError::Arrow { context: "hats import routing".into(), source };
    let ra = as_f64(data.column(spec.radec.0)).map_err(arrow)?;
    let dec = as_f64(data.column(spec.radec.1)).map_err(arrow)?;
    let deepest = cut.deepest;
    let deep = cdshealpix::nested::get(deepest);
    let layer29 = cdshealpix::nested::get(29);
    let margin = (spec.margin_out.is_some() && spec.margin_arcsec > 0.0).then_some(spec.margin_arcsec / 3600.0);
    let find = |h: u64| cut.find(h);
    let mut healpix = Vec::with_capacity(data.num_rows());
    // (row, partition, margin) triples.
    let mut targets: Vec<(u32, u32, bool)> = Vec::with_capacity(data.num_rows());
    let mut reached: Vec<u32> = Vec::new();
    for i in 0..data.num_rows() {
        let (a, d) = (ra.value(i), dec.value(i));
        if ra.is_null(i) || dec.is_null(i) || !a.is_finite() || !d.is_finite() || d.abs() > 90.0 {
            return Err(RunError::Data(format!(
                "a row has no position on the sky (RA {a}, Dec {d}): every row of a HATS catalog needs one"
            )));
        }
        let (lon, lat) = (a.rem_euclid(360.0).to_radians(), d.to_radians());
        let h = layer29.hash(lon, lat);
        healpix.push(h as i64);
        let own =
            find(h).ok_or_else(|| RunError::Internal(format!("no partition holds pixel {h} (RA {a}, Dec {d})")))?;
        targets.push((i as u32, own, false));
        if let Some(r) = margin
            && !inside_own_pixel(deep, deep.hash(lon, lat), a, d, r)
        {
            reached.clear();
            for pixel in cdshealpix::nested::cone_coverage_approx_flat(deepest, lon, lat, r.to_radians()) {
                let start = pixel_range(deepest, pixel).start;
                if let Some(p) = find(start)
                    && p != own
                    && !reached.contains(&p)
                {
                    reached.push(p);
                    targets.push((i as u32, p, true));
                }
            }
        }
    }
    let mut columns = data.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(healpix)));
    let mut fields: Vec<Field> = data.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(HEALPIX_29_COLUMN, DataType::Int64, false));
    let with_healpix = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(arrow)?;
    let mut by_worker: BTreeMap<u64, Vec<(u32, u32, bool)>> = BTreeMap::new();
    for t in targets {
        by_worker.entry(worker_of(t.1, peers)).or_default().push(t);
    }
    by_worker
        .into_iter()
        .map(|(w, rows)| {
            let indices = UInt32Array::from_iter_values(rows.iter().map(|t| t.0));
            let mut columns: Vec<ArrayRef> = with_healpix
                .columns()
                .iter()
                .map(|c| arrow_select::take::take(c, &indices, None))
                .collect::<Result<_, _>>()
                .map_err(arrow)?;
            columns.push(Arc::new(UInt32Array::from_iter_values(rows.iter().map(|t| t.1))));
            columns.push(Arc::new(BooleanArray::from_iter(rows.iter().map(|t| Some(t.2)))));
            let mut fields: Vec<Field> = with_healpix.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new("__partition", DataType::UInt32, false));
            fields.push(Field::new("__margin", DataType::Boolean, false));
            let options = RecordBatchOptions::new().with_row_count(Some(indices.len()));
            RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
                .map(|b| (w, b))
                .map_err(arrow)
        })
        .collect()
}

/// What one worker holds per (partition, margin) before writing: batches in memory, and
/// spooled IPC files beyond the memory budget.
struct Spool {
    dir: PathBuf,
    budget: usize,
    held: usize,
    memory: BTreeMap<Key, Vec<RecordBatch>>,
    files: BTreeMap<Key, Vec<PathBuf>>,
    written: u64,
    /// Batches received since the last [`Spool::settle`], and which of their rows go where:
    /// a batch spread over many partitions is cut once per [`PENDING_BATCHES`], not into one
    /// tiny batch per partition each time.
    pending: Vec<RecordBatch>,
    pending_rows: BTreeMap<Key, Vec<(usize, usize)>>,
    pending_bytes: usize,
}

/// Received batches held before their rows are sorted out by partition.
const PENDING_BATCHES: usize = 64;

impl Spool {
    fn new(dir: PathBuf, budget: usize) -> Self {
        Self {
            dir,
            budget,
            held: 0,
            memory: BTreeMap::new(),
            files: BTreeMap::new(),
            written: 0,
            pending: Vec::new(),
            pending_rows: BTreeMap::new(),
            pending_bytes: 0,
        }
    }

    /// Files a routed batch under its partitions (routing columns dropped).
    fn add(&mut self, batch: &RecordBatch) -> Result<(), RunError> {
        let arrow = |source: ArrowError| RunError::Arrow { context: "hats import".into(), source };
        let n = batch.num_columns();
        let partition = batch.column(n - 2).as_primitive::<arrow_array::types::UInt32Type>().clone();
        let margin = batch.column(n - 1).as_boolean().clone();
        let data = batch.project(&(0..n - 2).collect::<Vec<_>>()).map_err(arrow)?;
        let at = self.pending.len();
        for i in 0..batch.num_rows() {
            self.pending_rows.entry((partition.value(i), margin.value(i))).or_default().push((at, i));
        }
        self.pending_bytes += data.get_array_memory_size();
        self.pending.push(data);
        if self.pending.len() >= PENDING_BATCHES || self.held + self.pending_bytes > self.budget {
            self.settle()?;
        }
        Ok(())
    }

    /// Sorts the pending rows out: one batch per partition they go to; then spools the
    /// largest partitions while more than the budget is held.
    fn settle(&mut self) -> Result<(), RunError> {
        let arrow = |source: ArrowError| RunError::Arrow { context: "hats import".into(), source };
        let batches: Vec<&RecordBatch> = self.pending.iter().collect();
        for (key, rows) in std::mem::take(&mut self.pending_rows) {
            let part = if batches.len() == 1 && rows.len() == batches[0].num_rows() {
                batches[0].clone()
            } else {
                arrow_select::interleave::interleave_record_batch(&batches, &rows).map_err(arrow)?
            };
            self.held += part.get_array_memory_size();
            self.memory.entry(key).or_default().push(part);
        }
        self.pending.clear();
        self.pending_bytes = 0;
        while self.held > self.budget {
            self.spill_largest()?;
        }
        Ok(())
    }

    /// Writes the largest in-memory partition to an IPC file.
    fn spill_largest(&mut self) -> Result<(), RunError> {
        let Some((&key, _)) =
            self.memory.iter().max_by_key(|(_, b)| b.iter().map(RecordBatch::get_array_memory_size).sum::<usize>())
        else {
            self.held = 0;
            return Ok(());
        };
        let batches = self.memory.remove(&key).unwrap_or_default();
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let path = self.dir.join(format!("{}-{}-{}.arrow", key.0, u8::from(key.1), self.written));
        self.written += 1;
        let file = File::create(&path).map_err(|e| io(&path, e))?;
        let schema = batches[0].schema();
        let arrow = |source: ArrowError| RunError::Arrow { context: format!("spooling to {}", path.display()), source };
        let mut w = arrow_ipc::writer::FileWriter::try_new(std::io::BufWriter::new(file), &schema).map_err(arrow)?;
        for b in &batches {
            self.held = self.held.saturating_sub(b.get_array_memory_size());
            w.write(b).map_err(arrow)?;
        }
        w.finish().map_err(arrow)?;
        tracing::debug!(partition = key.0, margin = key.1, path = %path.display(), "spooled to disk");
        self.files.entry(key).or_default().push(path);
        Ok(())
    }

    /// Whether this worker received rows of `key`.
    fn has(&self, key: Key) -> bool {
        self.memory.contains_key(&key) || self.files.contains_key(&key)
    }

    /// Every (partition, margin) this worker received, in order.
    fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.memory.keys().chain(self.files.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// All rows of one (partition, margin): spooled files read back, then memory.
    fn take(&mut self, key: Key) -> Result<Vec<RecordBatch>, RunError> {
        let mut out = Vec::new();
        for path in self.files.remove(&key).unwrap_or_default() {
            let file = File::open(&path).map_err(|e| io(&path, e))?;
            let arrow = |source: ArrowError| RunError::Arrow { context: format!("reading {}", path.display()), source };
            let reader = arrow_ipc::reader::FileReader::try_new(std::io::BufReader::new(file), None).map_err(arrow)?;
            for b in reader {
                out.push(b.map_err(arrow)?);
            }
            let _ = std::fs::remove_file(&path);
        }
        let memory = self.memory.remove(&key).unwrap_or_default();
        self.held = self.held.saturating_sub(memory.iter().map(RecordBatch::get_array_memory_size).sum());
        out.extend(memory);
        Ok(out)
    }

    /// Drops whatever is left, in memory and on disk.
    fn discard(&mut self) {
        self.pending.clear();
        self.pending_rows.clear();
        self.memory.clear();
        self.files.clear();
        self.held = 0;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn io(path: &Path, source: std::io::Error) -> RunError {
    RunError::Data(format!("{}: {source}", path.display()))
}

/// Sorts one partition's rows by `_healpix_29` then row id, writes its Parquet file
/// (`_healpix_29` first, the row id dropped), and returns its row of the node's output.
fn write_partition(
    spec: &HatsWriteSpec,
    (order, pixel): (u8, u64),
    margin: bool,
    batches: Vec<RecordBatch>,
) -> Result<RecordBatch, RunError> {
    let root = if margin { spec.margin_out.as_ref().unwrap_or(&spec.out) } else { &spec.out };
    let dir = pixel_dir(&root.join("dataset"), order, pixel);
    let path = dir.join(format!("Npix={pixel}.parquet"));
    let arrow = |source: ArrowError| RunError::Arrow { context: format!("writing {}", path.display()), source };
    let schema = batches[0].schema();
    let all = arrow_select::concat::concat_batches(&schema, &batches).map_err(arrow)?;
    drop(batches);
    let healpix_at = all.num_columns() - 1;
    let order_by = [
        arrow_ord::sort::SortColumn { values: all.column(healpix_at).clone(), options: None },
        arrow_ord::sort::SortColumn { values: all.column(spec.row_id).clone(), options: None },
    ];
    let indices = arrow_ord::sort::lexsort_to_indices(&order_by, None).map_err(arrow)?;
    let sorted = arrow_select::take::take_record_batch(&all, &indices).map_err(arrow)?;
    drop(all);
    let out = file_batch(&sorted, spec.row_id).map_err(arrow)?;
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let file = File::create(&path).map_err(|e| io(&path, e))?;
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(spec.row_group_rows.max(1)))
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let parquet =
        |source: parquet::errors::ParquetError| RunError::Data(format!("writing {}: {source}", path.display()));
    let mut writer = ArrowWriter::try_new(file, out.schema(), Some(props)).map_err(parquet)?;
    writer.write(&out).map_err(parquet)?;
    writer.close().map_err(parquet)?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let rows = out.num_rows() as i64;
    RecordBatch::try_new(
        starflow_dataflow::plan::hats::hats_write_schema(),
        vec![
            Arc::new(Int64Array::from(vec![i64::from(order)])),
            Arc::new(Int64Array::from(vec![pixel as i64])),
            Arc::new(BooleanArray::from(vec![margin])),
            Arc::new(Int64Array::from(vec![rows])),
            Arc::new(Int64Array::from(vec![bytes as i64])),
        ],
    )
    .map_err(arrow)
}

/// The file's columns: `_healpix_29` (last of the spooled batch) first, then the input's
/// columns without the row id and without an input column of the same name.
fn file_batch(sorted: &RecordBatch, row_id: usize) -> Result<RecordBatch, ArrowError> {
    let healpix_at = sorted.num_columns() - 1;
    let schema = sorted.schema();
    let mut keep = vec![healpix_at];
    keep.extend((0..healpix_at).filter(|&c| c != row_id && schema.field(c).name() != HEALPIX_29_COLUMN));
    let fields: Vec<Field> = keep.iter().map(|&c| schema.field(c).clone()).collect();
    let out_schema: SchemaRef = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    RecordBatch::try_new(out_schema, keep.iter().map(|&c| sorted.column(c).clone()).collect())
}

fn as_f64(column: &ArrayRef) -> Result<arrow_array::Float64Array, ArrowError> {
    let c = arrow_cast::cast(column, &DataType::Float64)?;
    Ok(c.as_primitive::<Float64Type>().clone())
}
