//! Plain values for comparing query results with brute-force references: result batches
//! become `Vec<Vec<Value>>`, compared exactly or with a relative float tolerance.

use std::cmp::Ordering;
use std::fmt;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

/// One cell. Float32 cells widen to `Float` exactly, so an `f32` reference compares bit for bit.
#[derive(Debug, Clone)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer type.
    Int(i64),
    /// Any float type (NaN allowed; NaN equals NaN here).
    Float(f64),
    /// A string.
    Str(String),
}

impl Value {
    /// A float cell from an `f32` (exact widening).
    pub fn f32(x: f32) -> Self {
        Value::Float(f64::from(x))
    }

    /// A float cell, or NULL for `None`.
    pub fn opt_f64(x: Option<f64>) -> Self {
        x.map_or(Value::Null, Value::Float)
    }

    /// The number in a numeric cell.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The integer in an integer cell.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) => 3,
            Value::Str(_) => 4,
        }
    }

    /// True when the cells are equal: floats within `tol` (relative, or absolute near zero).
    pub fn matches(&self, other: &Value, tol: Tol) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => match tol {
                Tol::Exact => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || a == b,
                Tol::Rel(r) => {
                    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= r * a.abs().max(b.abs()).max(1.0)
                }
            },
            _ => self.total_cmp(other) == Ordering::Equal,
        }
    }

    /// A total order (NULL first, then by kind; floats by `f64::total_cmp`), for sorting
    /// results whose order is unspecified.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Exact equality (NaN equals NaN), as [`Value::matches`] with [`Tol::Exact`].
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.matches(other, Tol::Exact)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// How floats are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tol {
    /// Bit for bit (NaN equals NaN): passthrough columns and exactly reproducible arithmetic.
    Exact,
    /// Relative tolerance (absolute below magnitude 1): aggregates, whose summation order
    /// depends on the partitioning.
    Rel(f64),
}

/// The tolerance for aggregates.
pub const AGG: Tol = Tol::Rel(1e-9);

/// The cells of one result column.
pub fn column_values(column: &dyn Array) -> Vec<Value> {
    macro_rules! ints {
        ($t:ty) => {{
            let a = column.as_primitive::<$t>();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { Value::Int(a.value(i) as i64) }).collect()
        }};
    }
    match column.data_type() {
        DataType::Null => vec![Value::Null; column.len()],
        DataType::Boolean => {
            let a = column.as_boolean();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { Value::Bool(a.value(i)) }).collect()
        }
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Float32 => {
            let a = column.as_primitive::<Float32Type>();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { Value::f32(a.value(i)) }).collect()
        }
        DataType::Float64 => {
            let a = column.as_primitive::<Float64Type>();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { Value::Float(a.value(i)) }).collect()
        }
        DataType::Utf8 => {
            let a = column.as_string::<i32>();
            (0..a.len()).map(|i| if a.is_null(i) { Value::Null } else { Value::Str(a.value(i).to_string()) }).collect()
        }
        other => panic!("test helper cannot read result columns of type {other}"),
    }
}

/// The rows of result batches, in order.
pub fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<Vec<Value>> = batch.columns().iter().map(|c| column_values(c.as_ref())).collect();
        for r in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[r].clone()).collect());
        }
    }
    rows
}

/// Rows sorted by all columns (for results whose order is unspecified).
pub fn sorted(mut rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    rows.sort_by(|a, b| {
        a.iter().zip(b).map(|(x, y)| x.total_cmp(y)).find(|o| o.is_ne()).unwrap_or(a.len().cmp(&b.len()))
    });
    rows
}

fn show(row: &[Value]) -> String {
    let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
    format!("[{}]", cells.join(", "))
}

/// Compares rows in order; `Err` describes the first difference.
pub fn compare_rows(actual: &[Vec<Value>], expected: &[Vec<Value>], tol: Tol) -> Result<(), String> {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        if a.len() != e.len() || a.iter().zip(e).any(|(x, y)| !x.matches(y, tol)) {
            return Err(format!("row {i} differs:\n  actual   {}\n  expected {}", show(a), show(e)));
        }
    }
    if actual.len() != expected.len() {
        let (longer, which) = if actual.len() > expected.len() { (actual, "actual") } else { (expected, "expected") };
        let extra: Vec<String> = longer[actual.len().min(expected.len())..].iter().take(5).map(|r| show(r)).collect();
        return Err(format!(
            "{} rows, expected {}; first extra {which} rows:\n  {}",
            actual.len(),
            expected.len(),
            extra.join("\n  ")
        ));
    }
    Ok(())
}

/// Asserts rows are equal in order.
#[track_caller]
pub fn assert_rows_eq(actual: &[Vec<Value>], expected: &[Vec<Value>], tol: Tol, context: &str) {
    if let Err(e) = compare_rows(actual, expected, tol) {
        panic!("{context}\n{e}");
    }
}

/// Asserts rows are equal as multisets.
#[track_caller]
pub fn assert_same_rows(actual: Vec<Vec<Value>>, expected: Vec<Vec<Value>>, tol: Tol, context: &str) {
    assert_rows_eq(&sorted(actual), &sorted(expected), tol, context);
}
