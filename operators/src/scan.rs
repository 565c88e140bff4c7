//! Scan: each process reads its share of the partitions ([`starflow_catalogs::owners`]), each
//! of its workers taking the next partition of that share when it is free,
//! applies the pushed-down predicate as it reads, and stops early under a pushed-down limit.

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::ArrowError;
use arrow_select::filter::filter_record_batch;
use starflow_catalogs::PartitionReader;
use starflow_dataflow::plan::ScanSpec;
use starflow_dataflow::timely::container::CapacityContainerBuilder;
use starflow_dataflow::timely::dataflow::operators::generic::operator::source;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};
use std::sync::atomic::Ordering;

use crate::kernels::eval::evaluate_predicate;

/// Renders a scan.
pub(crate) fn render_scan<'s>(ctx: &RenderContext<'s>, spec: &ScanSpec) -> Result<BatchStream<'s>, RunError> {
    let catalog = ctx
        .catalogs
        .get(&spec.catalog)
        .ok_or_else(|| RunError::Internal(format!("catalog {} not registered on this process", spec.catalog)))?
        .clone();
    let scope = ctx.scope;
    let (index, peers) = (scope.index(), scope.peers());
    // This process's share, taken partition by partition by whichever of its workers is free.
    let process = index / ctx.threads.max(1);
    let share: Vec<_> =
        starflow_catalogs::process_share(&spec.partitions, peers, ctx.threads, process).into_iter().cloned().collect();
    let queue = ctx.next_scan_queue();
    let mut partitions = std::iter::from_fn(move || share.get(queue.fetch_add(1, Ordering::Relaxed)).cloned());
    let (errors, metrics, gate) = (ctx.errors.clone(), ctx.metrics.clone(), ctx.gate.clone());
    let spec = spec.clone();
    let name = format!("Scan[{}]", spec.catalog);
    let stream = source::<u64, CapacityContainerBuilder<Vec<Batch>>, _, _>(scope, &name, move |cap, info| {
        let activator = scope.activator_for(info.address.clone());
        let mut cap = Some(cap);
        // The reader, the partition's index, its batch number, rows read from it, and its span.
        let mut current: Option<(PartitionReader, u64, u64, u64, tracing::Span)> = None;
        let mut emitted = 0u64;
        let mut footer = None;
        move |output| {
            let Some(c) = cap.as_ref() else { return };
            let done = errors.failed() || spec.limit.is_some_and(|n| emitted >= n);
            // Gated: not a row before the gate's stream is complete (looked at every ms); a
            // failed or cancelled query stops at once.
            if !done && gate.as_ref().is_some_and(|g| !g.done()) {
                activator.activate_after(std::time::Duration::from_millis(1));
                return;
            }
            if current.is_none()
                && !done
                && let Some(p) = partitions.next()
            {
                metrics.partitions_read.fetch_add(1, Ordering::Relaxed);
                let span = tracing::debug_span!(
                    "scan",
                    catalog = %spec.catalog,
                    file = %catalog.files[p.file].path.display(),
                    row_groups = tracing::field::Empty,
                    worker = index,
                    bytes = tracing::field::Empty,
                    rows = p.rows,
                );
                let opened = span.in_scope(|| {
                    PartitionReader::open(
                        &catalog,
                        &p,
                        &spec.column_indices,
                        spec.batch_rows,
                        &spec.bounds,
                        &mut footer,
                    )
                });
                match opened {
                    Ok(reader) => {
                        metrics.bytes_read.fetch_add(reader.bytes, Ordering::Relaxed);
                        span.record("bytes", reader.bytes);
                        span.record("row_groups", reader.row_groups);
                        current = Some((reader, p.index as u64, 0, 0, span))
                    }
                    Err(e) => errors.record(e.into()),
                }
            }
            let Some((reader, partition, number, offset, span)) = current.as_mut().filter(|_| !done) else {
                cap = None;
                return;
            };
            let _entered = span.enter();
            match reader.next_batch() {
                Ok(Some(batch)) => {
                    metrics.rows_read.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    let first = (*partition << 32) | *offset;
                    *offset += batch.num_rows() as u64;
                    let emit = |b: &RecordBatch| -> Result<RecordBatch, ArrowError> {
                        let out = emitted_columns(b, spec.output_columns)?;
                        if spec.row_ids { with_row_ids(&out, first, &spec.schema) } else { Ok(out) }
                    };
                    let batch = match &spec.predicate {
                        None => emit(&batch),
                        Some(p) => {
                            evaluate_predicate(p, &batch).and_then(|mask| filter_record_batch(&emit(&batch)?, &mask))
                        }
                    };
                    match batch {
                        Ok(mut batch) => {
                            if let Some(n) = spec.limit {
                                let keep = (n - emitted).min(batch.num_rows() as u64) as usize;
                                batch = batch.slice(0, keep);
                            }
                            emitted += batch.num_rows() as u64;
                            metrics.rows_matched.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                            if batch.num_rows() > 0 {
                                let seq = (*partition << 32) | *number;
                                output.session(c).give(Batch::new(batch, seq));
                            }
                            *number += 1;
                        }
                        Err(source) => {
                            errors.record(RunError::Arrow { context: format!("scan of {}", spec.catalog), source })
                        }
                    }
                }
                Ok(None) => {
                    drop(_entered);
                    current = None
                }
                Err(e) => errors.record(e.into()),
            }
            activator.activate();
        }
    });
    Ok(stream)
}

/// The batch with [`ROW_ID`] appended: `first`, `first + 1`, … (its schema: `schema`).
fn with_row_ids(batch: &RecordBatch, first: u64, schema: &arrow_schema::SchemaRef) -> Result<RecordBatch, ArrowError> {
    let n = batch.num_rows() as u64;
    let mut columns = batch.columns().to_vec();
    columns.push(std::sync::Arc::new(arrow_array::UInt64Array::from_iter_values(first..first + n)));
    let options = RecordBatchOptions::new().with_row_count(Some(n as usize));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
}

/// The first `n` columns of a batch (the rest fed only the predicate).
fn emitted_columns(batch: &RecordBatch, n: usize) -> Result<RecordBatch, ArrowError> {
    if n == batch.num_columns() {
        return Ok(batch.clone());
    }
    let indices: Vec<usize> = (0..n).collect();
    let projected = batch.project(&indices)?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(projected.schema(), projected.columns().to_vec(), &options)
}
