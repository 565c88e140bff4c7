//! Arrow record batches ⇄ view rows ([`Datum`]s).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, SchemaRef};

use super::{Datum, Row};
use crate::error::RunError;

fn unsupported(t: &DataType) -> RunError {
    RunError::Internal(format!("views cannot hold columns of type {t} yet"))
}

/// The rows of `batch`.
pub fn rows_of(batch: &RecordBatch) -> Result<Vec<Row>, RunError> {
    let mut rows: Vec<Row> = (0..batch.num_rows()).map(|_| Vec::with_capacity(batch.num_columns())).collect();
    for column in batch.columns() {
        let c = column.as_ref();
        for (i, row) in rows.iter_mut().enumerate() {
            row.push(if c.is_null(i) { Datum::Null } else { datum(c, i)? });
        }
    }
    Ok(rows)
}

fn datum(c: &dyn Array, i: usize) -> Result<Datum, RunError> {
    Ok(match c.data_type() {
        DataType::Boolean => Datum::Bool(c.as_boolean().value(i)),
        DataType::Int8 => Datum::Int(c.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => Datum::Int(c.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => Datum::Int(c.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => Datum::Int(c.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Datum::UInt(c.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => Datum::UInt(c.as_primitive::<UInt16Type>().value(i).into()),
        DataType::UInt32 => Datum::UInt(c.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => Datum::UInt(c.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => Datum::float(c.as_primitive::<Float32Type>().value(i).into()),
        DataType::Float64 => Datum::float(c.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Datum::Str(c.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Datum::Str(c.as_string::<i64>().value(i).to_string()),
        t => return Err(unsupported(t)),
    })
}

/// A batch of `rows` with `schema` (each datum converted to its column's type).
pub fn batch_of(rows: &[&Row], schema: &SchemaRef) -> Result<RecordBatch, RunError> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (j, field) in schema.fields().iter().enumerate() {
        let values = rows.iter().map(|r| r.get(j).unwrap_or(&Datum::Null));
        let t = field.data_type();
        let array: ArrayRef = if t.is_floating() {
            Arc::new(Float64Array::from_iter(values.map(|d| match d {
                Datum::Float(v) => Some(v.get()),
                Datum::Int(v) => Some(*v as f64),
                Datum::UInt(v) => Some(*v as f64),
                _ => None,
            })))
        } else if t.is_signed_integer() {
            Arc::new(Int64Array::from_iter(values.map(|d| match d {
                Datum::Int(v) => Some(*v),
                Datum::UInt(v) => i64::try_from(*v).ok(),
                _ => None,
            })))
        } else if t.is_unsigned_integer() {
            Arc::new(UInt64Array::from_iter(values.map(|d| match d {
                Datum::UInt(v) => Some(*v),
                Datum::Int(v) => u64::try_from(*v).ok(),
                _ => None,
            })))
        } else if *t == DataType::Boolean {
            Arc::new(BooleanArray::from_iter(values.map(|d| match d {
                Datum::Bool(b) => Some(*b),
                _ => None,
            })))
        } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8) {
            Arc::new(StringArray::from_iter(values.map(|d| match d {
                Datum::Str(s) => Some(s.as_str()),
                _ => None,
            })))
        } else {
            return Err(unsupported(t));
        };
        let array = if array.data_type() == t {
            array
        } else {
            arrow_cast::cast(&array, t)
                .map_err(|source| RunError::Arrow { context: format!("view column {}", field.name()), source })?
        };
        columns.push(array);
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|source| RunError::Arrow { context: "view rows".into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Float32Array;
    use arrow_schema::{Field, Schema};

    #[test]
    fn batches_round_trip_through_rows() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("f", DataType::Float32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(arrow_array::Int32Array::from(vec![Some(1), None, Some(-7)])),
                Arc::new(Float32Array::from(vec![Some(0.1), Some(f32::NAN), None])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ],
        )
        .unwrap();
        let rows = rows_of(&batch).unwrap();
        assert_eq!(rows[1][0], Datum::Null);
        let back = batch_of(&rows.iter().collect::<Vec<_>>(), &schema).unwrap();
        assert_eq!(back.column(0), batch.column(0));
        assert_eq!(back.column(2), batch.column(2));
        let f = back.column(1).as_primitive::<Float32Type>();
        assert_eq!(f.value(0), 0.1f32);
        assert!(f.value(1).is_nan() && f.is_null(2));
    }
}
