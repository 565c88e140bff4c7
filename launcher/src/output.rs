//! Result writers: table, CSV, JSON and Parquet. CSV and JSON stream batch by batch.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::cli::Format;

/// Where results go (one per statement: variant sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub enum Output {
    Table { out: Box<dyn Write>, batches: Vec<RecordBatch>, schema: SchemaRef },
    Csv { out: Box<dyn Write>, header_done: bool, schema: SchemaRef },
    Json { out: Box<dyn Write>, rows: u64 },
    Parquet { writer: ArrowWriter<File> },
}

fn options() -> FormatOptions<'static> {
    FormatOptions::default().with_null("")
}

impl Output {
    pub fn open(format: Format, out: Option<&Path>, schema: SchemaRef) -> Result<Self> {
        let sink = |out: Option<&Path>| -> Result<Box<dyn Write>> {
            Ok(match out {
                Some(p) => {
                    Box::new(BufWriter::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?))
                }
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            })
        };
        Ok(match format {
            Format::Table => Output::Table { out: sink(out)?, batches: Vec::new(), schema },
            Format::Csv => Output::Csv { out: sink(out)?, header_done: false, schema },
            Format::Json => Output::Json { out: sink(out)?, rows: 0 },
            Format::Parquet => {
                let Some(path) = out else { bail!("--format parquet needs --out FILE") };
                let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
                Output::Parquet { writer: ArrowWriter::try_new(file, schema, Some(props))? }
            }
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Output::Table { batches, .. } => batches.push(batch.clone()),
            Output::Csv { out, header_done, schema } => {
                if !*header_done {
                    write_csv_header(out, schema)?;
                    *header_done = true;
                }
                write_csv(out, batch)?;
            }
            Output::Json { out, rows } => write_json(out, batch, rows)?,
            Output::Parquet { writer } => writer.write(batch)?,
        }
        Ok(())
    }

    /// Pushes what was written so far to its destination (streamed results).
    pub fn flush(&mut self) -> Result<()> {
        match self {
            Output::Csv { out, .. } | Output::Json { out, .. } => out.flush()?,
            Output::Table { .. } | Output::Parquet { .. } => {}
        }
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        match self {
            Output::Table { mut out, batches, schema } => {
                let shown = if batches.is_empty() { vec![RecordBatch::new_empty(schema)] } else { batches.clone() };
                let table = arrow_cast::pretty::pretty_format_batches_with_options(
                    &shown,
                    &FormatOptions::default().with_null("NULL"),
                )?;
                writeln!(out, "{table}")?;
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
                out.flush()?;
            }
            Output::Csv { mut out, header_done, schema } => {
                if !header_done {
                    write_csv_header(&mut out, &schema)?;
                }
                out.flush()?;
            }
            Output::Json { mut out, rows } => {
                writeln!(out, "{}", if rows == 0 { "[]" } else { "\n]" })?;
                out.flush()?;
            }
            Output::Parquet { writer } => {
                writer.close()?;
            }
        }
        Ok(())
    }
}

fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")).into() } else { s.into() }
}

fn write_csv_header(out: &mut dyn Write, schema: &SchemaRef) -> Result<()> {
    let names: Vec<_> = schema.fields().iter().map(|f| csv_field(f.name()).into_owned()).collect();
    writeln!(out, "{}", names.join(","))?;
    Ok(())
}

fn write_csv(out: &mut dyn Write, batch: &RecordBatch) -> Result<()> {
    let opts = options();
    let formatters: Vec<ArrayFormatter> =
        batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts)).collect::<Result<_, _>>()?;
    let mut line = String::new();
    for row in 0..batch.num_rows() {
        line.clear();
        for (i, f) in formatters.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&csv_field(&f.value(row).to_string()));
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

fn write_json(out: &mut dyn Write, batch: &RecordBatch, rows: &mut u64) -> Result<()> {
    let opts = options();
    let schema = batch.schema();
    for row in 0..batch.num_rows() {
        let mut object = serde_json::Map::new();
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            object.insert(field.name().clone(), json_value(column.as_ref(), row, &opts)?);
        }
        out.write_all(if *rows == 0 { b"[\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *out, &serde_json::Value::Object(object))?;
        *rows += 1;
    }
    Ok(())
}

fn json_value(column: &dyn Array, row: usize, opts: &FormatOptions) -> Result<serde_json::Value> {
    use arrow_array::cast::AsArray;
    use serde_json::Value;
    if column.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match column.data_type() {
        DataType::Boolean => Value::Bool(column.as_boolean().value(row)),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            let s = ArrayFormatter::try_new(column, opts)?.value(row).to_string();
            serde_json::from_str(&s).unwrap_or(Value::String(s))
        }
        DataType::Float32 => {
            // Shortest decimal form of the f32 itself, not of its f64 widening.
            let x = column.as_primitive::<arrow_array::types::Float32Type>().value(row);
            if x.is_finite() { serde_json::from_str(&x.to_string())? } else { Value::Null }
        }
        DataType::Float64 => float(column.as_primitive::<arrow_array::types::Float64Type>().value(row)),
        _ => Value::String(ArrayFormatter::try_new(column, opts)?.value(row).to_string()),
    })
}

/// JSON has no NaN or infinity: those become null.
fn float(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}
