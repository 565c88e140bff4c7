//! Group-by aggregation in two phases: each worker folds its rows into partial states per
//! group, partial states are exchanged by a hash of the key (to worker 0 when there is no
//! key), and the owning worker merges them and emits the final rows once its input is done.

mod accumulators;
mod groups;

pub(crate) use groups::splitmix64;

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};
use starflow_dataflow::plan::AggregateSpec;
use starflow_dataflow::timely::dataflow::channels::pact::{Exchange, Pipeline};
use starflow_dataflow::timely::dataflow::operators::generic::Operator;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};

use crate::kernels::eval::evaluate;
use accumulators::Accumulators;
use groups::GroupTable;

/// Per-worker state of one phase.
struct Phase {
    table: GroupTable,
    accs: Accumulators,
    ids: Vec<u32>,
}

impl Phase {
    /// State of the partial phase (`raw`: folds input rows) or of the final one (merges).
    fn try_new(spec: &AggregateSpec, raw: bool) -> Result<Self, ArrowError> {
        let types: Vec<_> = spec.schema.fields()[..spec.keys.len()].iter().map(|f| f.data_type().clone()).collect();
        let mut accs = Accumulators::new(&spec.aggs, raw);
        let table = GroupTable::try_new(&types)?;
        accs.resize(table.len());
        Ok(Self { table, accs, ids: Vec::new() })
    }

    /// Folds raw input rows.
    fn update(&mut self, spec: &AggregateSpec, batch: &RecordBatch) -> Result<(), ArrowError> {
        let keys: Vec<ArrayRef> = spec.keys.iter().map(|(e, _)| evaluate(e, batch)).collect::<Result<_, _>>()?;
        self.table.group_ids(&keys, batch.num_rows(), &mut self.ids)?;
        self.accs.resize(self.table.len());
        self.accs.update(batch, &self.ids)
    }

    /// Folds partial states (key columns first).
    fn merge(&mut self, keys: usize, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.table.group_ids(&batch.columns()[..keys], batch.num_rows(), &mut self.ids)?;
        self.accs.resize(self.table.len());
        self.accs.merge(batch, keys, &self.ids)
    }

    /// Partial-state batches, one per target worker that owns any group.
    fn partials(&self, spec: &AggregateSpec, peers: usize) -> Result<Vec<Batch>, ArrowError> {
        let schema = partial_schema(spec, &self.accs);
        let mut by_worker: Vec<Vec<u32>> = vec![Vec::new(); peers];
        let global = spec.keys.is_empty() || spec.on_first_worker;
        for (g, h) in self.table.hashes().into_iter().enumerate().take(self.table.len()) {
            by_worker[if global { 0 } else { (h % peers as u64) as usize }].push(g as u32);
        }
        let mut out = Vec::new();
        for (worker, groups) in by_worker.into_iter().enumerate() {
            if groups.is_empty() {
                continue;
            }
            let mut columns = self.table.key_arrays(&groups)?;
            columns.extend(self.accs.state_columns(&groups));
            let options = RecordBatchOptions::new().with_row_count(Some(groups.len()));
            let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)?;
            out.push(Batch::new(batch, 0).routed(worker as u64));
        }
        Ok(out)
    }

    /// Final rows. A global aggregate yields one row even over no input (on worker 0 only).
    fn finish(&self, spec: &AggregateSpec, worker: usize) -> Result<Option<RecordBatch>, ArrowError> {
        let groups = self.table.len();
        if groups == 0 || ((spec.keys.is_empty() || spec.on_first_worker) && worker != 0) {
            return Ok(None);
        }
        let all: Vec<u32> = (0..groups as u32).collect();
        let mut columns = self.table.key_arrays(&all)?;
        columns.extend(self.accs.finish(groups));
        let options = RecordBatchOptions::new().with_row_count(Some(groups));
        RecordBatch::try_new_with_options(spec.schema.clone(), columns, &options).map(Some)
    }
}

fn partial_schema(spec: &AggregateSpec, accs: &Accumulators) -> SchemaRef {
    let mut fields: Vec<Field> = spec.schema.fields()[..spec.keys.len()].iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(accs.state_fields());
    Arc::new(Schema::new(fields))
}

/// Renders both phases and the exchange between them.
pub(crate) fn render_aggregate<'s>(
    ctx: &RenderContext<'s>,
    input: BatchStream<'s>,
    spec: &AggregateSpec,
) -> BatchStream<'s> {
    let peers = ctx.scope.peers();
    let worker = ctx.scope.index();
    let label = spec.keys.iter().map(|(e, _)| e.to_string()).collect::<Vec<_>>().join(", ");
    let (s1, e1) = (spec.clone(), ctx.errors.clone());
    let partial = input.unary_frontier(Pipeline, &format!("AggregatePartial[{label}]"), move |cap, _info| {
        let mut cap = Some(cap);
        let mut phase = match Phase::try_new(&s1, true) {
            Ok(p) => Some(p),
            Err(source) => {
                e1.record(RunError::Arrow { context: "aggregate".into(), source });
                None
            }
        };
        move |(input, frontier), output| {
            input.for_each(|_cap, data| {
                for batch in data.drain(..) {
                    if let Some(p) = phase.as_mut()
                        && let Err(source) = p.update(&s1, &batch.data)
                    {
                        e1.record(RunError::Arrow { context: "aggregate".into(), source });
                        phase = None;
                    }
                }
            });
            if frontier.is_empty() {
                if let (Some(c), Some(p)) = (cap.take(), phase.take()) {
                    match p.partials(&s1, peers) {
                        Ok(batches) => output.session(&c).give_iterator(batches.into_iter()),
                        Err(source) => e1.record(RunError::Arrow { context: "aggregate".into(), source }),
                    }
                }
                cap = None;
            }
        }
    });
    let (s2, e2) = (spec.clone(), ctx.errors.clone());
    let key_count = spec.keys.len();
    partial.unary_frontier(
        Exchange::new(|b: &Batch| b.route),
        &format!("AggregateFinal[{label}]"),
        move |cap, _info| {
            let mut cap = Some(cap);
            let mut phase = Phase::try_new(&s2, false).ok();
            move |(input, frontier), output| {
                input.for_each(|_cap, data| {
                    let _span = starflow_dataflow::compile::exchanged("AggregateFinal", data);
                    for batch in data.drain(..) {
                        if let Some(p) = phase.as_mut()
                            && let Err(source) = p.merge(key_count, &batch.data)
                        {
                            e2.record(RunError::Arrow { context: "aggregate merge".into(), source });
                            phase = None;
                        }
                    }
                });
                if frontier.is_empty() {
                    if let (Some(c), Some(p)) = (cap.take(), phase.take()) {
                        match p.finish(&s2, worker) {
                            Ok(Some(batch)) => output.session(&c).give(Batch::new(batch, 0)),
                            Ok(None) => {}
                            Err(source) => e2.record(RunError::Arrow { context: "aggregate".into(), source }),
                        }
                    }
                    cap = None;
                }
            }
        },
    )
}
