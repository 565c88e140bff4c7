//! Project: computes the output columns of each batch.

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_cast::cast;
use starflow_dataflow::plan::ProjectSpec;
use starflow_dataflow::timely::dataflow::channels::pact::Pipeline;
use starflow_dataflow::timely::dataflow::operators::generic::Operator;
use starflow_dataflow::{Batch, BatchStream, RenderContext, RunError};

use crate::kernels::eval::evaluate;

/// Computes `spec`'s columns over one batch.
pub fn project_batch(spec: &ProjectSpec, batch: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut columns = Vec::with_capacity(spec.columns.len());
    for ((expr, _), field) in spec.columns.iter().zip(spec.schema.fields()) {
        let mut a = evaluate(expr, batch)?;
        if a.data_type() != field.data_type() {
            a = cast(&a, field.data_type())?;
        }
        columns.push(a);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(spec.schema.clone(), columns, &options)
}

/// Renders a projection.
pub(crate) fn render_project<'s>(
    ctx: &RenderContext<'s>,
    input: BatchStream<'s>,
    spec: &ProjectSpec,
) -> BatchStream<'s> {
    let spec = spec.clone();
    let errors = ctx.errors.clone();
    let names: Vec<&str> = spec.columns.iter().map(|(_, n)| n.as_str()).collect();
    let name = format!("Project[{}]", names.join(", "));
    input.unary(Pipeline, &name, move |_cap, _info| {
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for batch in data.drain(..) {
                    match project_batch(&spec, &batch.data) {
                        Ok(rows) => session.give(Batch { data: rows.into(), ..batch }),
                        Err(source) => errors.record(RunError::Arrow { context: "projection".into(), source }),
                    }
                }
            });
        }
    })
}
