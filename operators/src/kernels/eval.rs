//! Evaluates plan expressions over a record batch with arrow kernels. Comparisons follow
//! IEEE semantics: NaN compares false (as in pandas), NULL propagates (three-valued logic).

use std::sync::Arc;

use arrow_arith::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow_arith::numeric;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Datum, Float64Array, Int64Array, RecordBatch, Scalar, new_null_array,
};
use arrow_buffer::{BooleanBuffer, NullBuffer};
use arrow_cast::cast;
use arrow_schema::{ArrowError, DataType};
use starflow_dataflow::plan::expr::numeric_supertype;
use starflow_dataflow::plan::{BinaryOp, Expr, Func, Literal};

use crate::kernels::angular::{self, Operand};

/// A value: one per row, or one for all rows.
#[derive(Clone)]
enum Val {
    Array(ArrayRef),
    Scalar(ArrayRef),
}

impl Val {
    fn array(&self) -> &ArrayRef {
        match self {
            Val::Array(a) | Val::Scalar(a) => a,
        }
    }

    fn data_type(&self) -> &DataType {
        self.array().data_type()
    }

    fn into_array(self, rows: usize) -> Result<ArrayRef, ArrowError> {
        match self {
            Val::Array(a) => Ok(a),
            Val::Scalar(s) => {
                let indices = arrow_array::UInt32Array::from(vec![0u32; rows]);
                arrow_select::take::take(&s, &indices, None)
            }
        }
    }

    fn datum(&self) -> Box<dyn Datum + '_> {
        match self {
            Val::Array(a) => Box::new(a.clone()),
            Val::Scalar(s) => Box::new(Scalar::new(s.clone())),
        }
    }

    fn cast_to(&self, t: &DataType) -> Result<Val, ArrowError> {
        if self.data_type() == t {
            return Ok(self.clone());
        }
        let c = cast(self.array(), t)?;
        Ok(match self {
            Val::Array(_) => Val::Array(c),
            Val::Scalar(_) => Val::Scalar(c),
        })
    }
}

/// Evaluates `expr` over `batch`, returning one value per row.
pub fn evaluate(expr: &Expr, batch: &RecordBatch) -> Result<ArrayRef, ArrowError> {
    eval(expr, batch)?.into_array(batch.num_rows())
}

/// Evaluates a predicate; NULL counts as false.
pub fn evaluate_predicate(expr: &Expr, batch: &RecordBatch) -> Result<BooleanArray, ArrowError> {
    let v = evaluate(expr, batch)?;
    match v.data_type() {
        DataType::Boolean => Ok(v.as_boolean().clone()),
        DataType::Null => Ok(BooleanArray::from(vec![false; batch.num_rows()])),
        other => Err(ArrowError::InvalidArgumentError(format!("predicate {expr} is {other}, not boolean"))),
    }
}

fn literal(l: &Literal) -> ArrayRef {
    match l {
        Literal::Null => new_null_array(&DataType::Null, 1),
        Literal::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        Literal::Int(i) => Arc::new(Int64Array::from(vec![*i])),
        Literal::Float(f) => Arc::new(Float64Array::from(vec![*f])),
        Literal::Str(s) => Arc::new(arrow_array::StringArray::from(vec![s.as_str()])),
    }
}

fn eval(expr: &Expr, batch: &RecordBatch) -> Result<Val, ArrowError> {
    Ok(match expr {
        Expr::Column(c) => Val::Array(
            batch
                .column_by_name(c)
                .ok_or_else(|| ArrowError::SchemaError(format!("column \"{c}\" missing from batch")))?
                .clone(),
        ),
        Expr::Literal(l) => Val::Scalar(literal(l)),
        Expr::Binary { op, left, right } => binary(*op, eval(left, batch)?, eval(right, batch)?, batch.num_rows())?,
        Expr::Not(e) => {
            let v = eval(e, batch)?;
            map_bool(&v, not)?
        }
        Expr::Negate(e) => {
            let v = eval(e, batch)?;
            let t = numeric_supertype(v.data_type(), v.data_type());
            let v = v.cast_to(&t)?;
            let a = numeric::neg(v.array().as_ref())?;
            match v {
                Val::Array(_) => Val::Array(a),
                Val::Scalar(_) => Val::Scalar(a),
            }
        }
        Expr::IsNull { expr, negated } => {
            let v = eval(expr, batch)?;
            let r = if *negated { is_not_null(v.array().as_ref())? } else { is_null(v.array().as_ref())? };
            match v {
                Val::Array(_) => Val::Array(Arc::new(r)),
                Val::Scalar(_) => Val::Scalar(Arc::new(r)),
            }
        }
        Expr::InList { expr, list, negated } => {
            let v = eval(expr, batch)?;
            let mut acc: Option<Val> = None;
            for l in list {
                let eq = binary(BinaryOp::Eq, v.clone(), Val::Scalar(literal(l)), batch.num_rows())?;
                acc = Some(match acc {
                    None => eq,
                    Some(a) => binary(BinaryOp::Or, a, eq, batch.num_rows())?,
                });
            }
            let acc = acc.unwrap_or_else(|| Val::Scalar(Arc::new(BooleanArray::from(vec![false]))));
            if *negated { map_bool(&acc, not)? } else { acc }
        }
        Expr::Call { func, args } => call(*func, args, batch)?,
    })
}

fn map_bool(v: &Val, f: impl Fn(&BooleanArray) -> Result<BooleanArray, ArrowError>) -> Result<Val, ArrowError> {
    let b = cast(v.array(), &DataType::Boolean)?;
    let r: ArrayRef = Arc::new(f(b.as_boolean())?);
    Ok(match v {
        Val::Array(_) => Val::Array(r),
        Val::Scalar(_) => Val::Scalar(r),
    })
}

fn binary(op: BinaryOp, l: Val, r: Val, rows: usize) -> Result<Val, ArrowError> {
    let scalar = matches!((&l, &r), (Val::Scalar(_), Val::Scalar(_)));
    let wrap = |a: ArrayRef| if scalar { Val::Scalar(a) } else { Val::Array(a) };
    match op {
        BinaryOp::And | BinaryOp::Or => {
            let (la, ra) = (
                cast(&l.clone().into_array(if scalar { 1 } else { rows })?, &DataType::Boolean)?,
                cast(&r.clone().into_array(if scalar { 1 } else { rows })?, &DataType::Boolean)?,
            );
            let f = if op == BinaryOp::And { and_kleene } else { or_kleene };
            Ok(wrap(Arc::new(f(la.as_boolean(), ra.as_boolean())?)))
        }
        op if op.is_comparison() => compare(op, l, r, scalar),
        BinaryOp::Div => {
            let (l, r) = (l.cast_to(&DataType::Float64)?, r.cast_to(&DataType::Float64)?);
            Ok(wrap(numeric::div(l.datum().as_ref(), r.datum().as_ref())?))
        }
        _ => {
            let t = numeric_supertype(l.data_type(), r.data_type());
            let (l, r) = (l.cast_to(&t)?, r.cast_to(&t)?);
            let (ld, rd) = (l.datum(), r.datum());
            let a = match op {
                BinaryOp::Add => numeric::add(ld.as_ref(), rd.as_ref())?,
                BinaryOp::Sub => numeric::sub(ld.as_ref(), rd.as_ref())?,
                BinaryOp::Mul => numeric::mul(ld.as_ref(), rd.as_ref())?,
                BinaryOp::Mod => numeric::rem(ld.as_ref(), rd.as_ref())?,
                _ => unreachable!("arithmetic operator"),
            };
            Ok(wrap(a))
        }
    }
}

/// The type both sides of a comparison are cast to: a constant adopts the column's type
/// when it can (so `mag_i < 26` compares Float32 without widening the column).
fn comparison_type(l: &Val, r: &Val) -> DataType {
    let (lt, rt) = (l.data_type(), r.data_type());
    if lt == rt {
        return lt.clone();
    }
    if !(lt.is_numeric() || *lt == DataType::Null) || !(rt.is_numeric() || *rt == DataType::Null) {
        return if *lt == DataType::Null { rt.clone() } else { lt.clone() };
    }
    match (l, r) {
        (Val::Array(a), Val::Scalar(s)) | (Val::Scalar(s), Val::Array(a)) => {
            let (at, st) = (a.data_type(), s.data_type());
            if at.is_floating() || (at.is_integer() && (st.is_integer() || *st == DataType::Null)) {
                return if at.is_integer() { DataType::Int64 } else { at.clone() };
            }
            DataType::Float64
        }
        _ => numeric_supertype(lt, rt),
    }
}

fn compare(op: BinaryOp, l: Val, r: Val, scalar: bool) -> Result<Val, ArrowError> {
    let t = comparison_type(&l, &r);
    let (l, r) = (l.cast_to(&t)?, r.cast_to(&t)?);
    let result: BooleanArray = match t {
        DataType::Float32 => float_compare::<Float32Type>(op, &l, &r),
        DataType::Float64 => float_compare::<Float64Type>(op, &l, &r),
        _ => {
            let (ld, rd) = (l.datum(), r.datum());
            let (a, b) = (ld.as_ref(), rd.as_ref());
            match op {
                BinaryOp::Eq => arrow_ord::cmp::eq(a, b)?,
                BinaryOp::NotEq => arrow_ord::cmp::neq(a, b)?,
                BinaryOp::Lt => arrow_ord::cmp::lt(a, b)?,
                BinaryOp::LtEq => arrow_ord::cmp::lt_eq(a, b)?,
                BinaryOp::Gt => arrow_ord::cmp::gt(a, b)?,
                BinaryOp::GtEq => arrow_ord::cmp::gt_eq(a, b)?,
                _ => unreachable!("comparison operator"),
            }
        }
    };
    let a: ArrayRef = Arc::new(result);
    Ok(if scalar { Val::Scalar(a) } else { Val::Array(a) })
}

/// IEEE comparison of float columns/constants: NaN compares false (`<>`: true).
fn float_compare<T>(op: BinaryOp, l: &Val, r: &Val) -> BooleanArray
where
    T: arrow_array::ArrowPrimitiveType,
    T::Native: PartialOrd + Copy,
{
    let la = l.array().as_primitive::<T>();
    let ra = r.array().as_primitive::<T>();
    let (lv, rv) = (la.values(), ra.values());
    let len = match (l, r) {
        (Val::Scalar(_), Val::Array(_)) => rv.len(),
        _ => lv.len(),
    };
    let li = |i: usize| if matches!(l, Val::Scalar(_)) { lv[0] } else { lv[i] };
    let ri = |i: usize| if matches!(r, Val::Scalar(_)) { rv[0] } else { rv[i] };
    macro_rules! cmp {
        ($f:expr) => {
            match (l, r) {
                (Val::Array(_), Val::Scalar(_)) => {
                    let c = rv[0];
                    BooleanBuffer::collect_bool(len, |i| $f(lv[i], c))
                }
                _ => BooleanBuffer::collect_bool(len, |i| $f(li(i), ri(i))),
            }
        };
    }
    let values = match op {
        BinaryOp::Eq => cmp!(|a: T::Native, b: T::Native| a == b),
        BinaryOp::NotEq => cmp!(|a: T::Native, b: T::Native| a != b),
        BinaryOp::Lt => cmp!(|a: T::Native, b: T::Native| a < b),
        BinaryOp::LtEq => cmp!(|a: T::Native, b: T::Native| a <= b),
        BinaryOp::Gt => cmp!(|a: T::Native, b: T::Native| a > b),
        BinaryOp::GtEq => cmp!(|a: T::Native, b: T::Native| a >= b),
        _ => unreachable!("comparison operator"),
    };
    let nulls = match (l, r) {
        (Val::Array(_), Val::Scalar(_)) if ra.is_valid(0) => la.nulls().cloned(),
        (Val::Scalar(_), Val::Array(_)) if la.is_valid(0) => ra.nulls().cloned(),
        (Val::Array(_), Val::Array(_)) => NullBuffer::union(la.nulls(), ra.nulls()),
        _ => Some(NullBuffer::new_null(len)),
    };
    BooleanArray::new(values, nulls)
}

/// Evaluates to an `f64` column (casting), or a constant.
fn float_operand(v: &Val) -> Result<(Option<Float64Array>, f64), ArrowError> {
    let c = cast(v.array(), &DataType::Float64)?;
    let c = c.as_primitive::<Float64Type>().clone();
    Ok(match v {
        Val::Scalar(_) => (None, if c.is_valid(0) { c.value(0) } else { f64::NAN }),
        Val::Array(_) => (Some(c), 0.0),
    })
}

fn call(func: Func, args: &[Expr], batch: &RecordBatch) -> Result<Val, ArrowError> {
    let rows = batch.num_rows();
    let vals: Vec<Val> = args.iter().map(|a| eval(a, batch)).collect::<Result<_, _>>()?;
    let all_scalar = vals.iter().all(|v| matches!(v, Val::Scalar(_)));
    let n = if all_scalar { 1 } else { rows };
    let wrap = |a: ArrayRef| if all_scalar { Val::Scalar(a) } else { Val::Array(a) };
    if func == Func::Abs && vals[0].data_type().is_integer() {
        let v = vals[0].cast_to(&DataType::Int64)?;
        let a = v.array().as_primitive::<arrow_array::types::Int64Type>();
        let out: Int64Array = a.unary(|x: i64| x.wrapping_abs());
        return Ok(wrap(Arc::new(out)));
    }
    let operands: Vec<(Option<Float64Array>, f64)> = vals.iter().map(float_operand).collect::<Result<_, _>>()?;
    let ops: Vec<Operand> = operands
        .iter()
        .map(|(col, c)| match col {
            Some(a) => Operand::Column(a.values()),
            None => Operand::Const(*c),
        })
        .collect();
    // Nulls of any argument make the result null.
    let nulls = operands.iter().fold(None, |acc: Option<NullBuffer>, (col, _)| match col {
        Some(a) => NullBuffer::union(acc.as_ref(), a.nulls()),
        None => acc,
    });
    let unary = |f: fn(f64) -> f64| -> Val {
        let v = match ops[0] {
            Operand::Column(c) => c.iter().map(|x| f(*x)).collect::<Vec<_>>(),
            Operand::Const(c) => vec![f(c)],
        };
        wrap(Arc::new(Float64Array::new(v.into(), nulls.clone())))
    };
    Ok(match func {
        Func::Abs => unary(f64::abs),
        Func::Sqrt => unary(f64::sqrt),
        Func::Log10 => unary(f64::log10),
        Func::Floor => unary(f64::floor),
        Func::Radians => unary(f64::to_radians),
        Func::Degrees => unary(f64::to_degrees),
        Func::Sin => unary(f64::sin),
        Func::Cos => unary(f64::cos),
        Func::Round | Func::Power => {
            let second = ops.get(1).copied().unwrap_or(Operand::Const(0.0));
            let at = |o: &Operand, i: usize| match o {
                Operand::Column(c) => c[i],
                Operand::Const(c) => *c,
            };
            let v: Vec<f64> = match (func, &ops[0], &second) {
                // Squares (variances, distances) are common: x·x is the correctly rounded
                // square that `powf` returns too, several times faster.
                (Func::Power, Operand::Column(c), Operand::Const(2.0)) => c.iter().map(|x| x * x).collect(),
                _ => (0..n)
                    .map(|i| {
                        let (x, y) = (at(&ops[0], i), at(&second, i));
                        if func == Func::Power {
                            x.powf(y)
                        } else {
                            let scale = 10f64.powi(y as i32);
                            (x * scale).round() / scale
                        }
                    })
                    .collect(),
            };
            wrap(Arc::new(Float64Array::new(v.into(), nulls)))
        }
        Func::Distance => {
            let v = angular::separations(n, ops[0], ops[1], ops[2], ops[3]);
            wrap(Arc::new(Float64Array::new(v.into(), nulls)))
        }
        Func::Healpix | Func::Healpix29 => {
            let (order, ra, dec) = match func {
                Func::Healpix => (
                    starflow_dataflow::plan::expr::healpix_order(&args[0]).map_err(ArrowError::InvalidArgumentError)?,
                    ops[1],
                    ops[2],
                ),
                _ => (starflow_dataflow::plan::expr::HEALPIX_MAX_ORDER, ops[0], ops[1]),
            };
            let pixels = super::healpix::nested(order, n, ra, dec);
            let valid = NullBuffer::from(pixels.iter().map(Option::is_some).collect::<Vec<_>>());
            let values: Vec<i64> = pixels.into_iter().map(Option::unwrap_or_default).collect();
            let nulls = NullBuffer::union(nulls.as_ref(), Some(&valid));
            wrap(Arc::new(Int64Array::new(values.into(), nulls)))
        }
        Func::HealpixRa | Func::HealpixDec => {
            // Pixel numbers are integers beyond 2^53: read as integers, never through f64.
            let order =
                starflow_dataflow::plan::expr::healpix_order(&args[0]).map_err(ArrowError::InvalidArgumentError)?;
            let v = vals[1].cast_to(&DataType::Int64)?;
            let pixels = v.array().as_primitive::<arrow_array::types::Int64Type>();
            let centres = super::healpix::centres(order, pixels.values());
            let valid = NullBuffer::from(centres.iter().map(Option::is_some).collect::<Vec<_>>());
            let pick =
                |c: &Option<(f64, f64)>| c.map_or(0.0, |(ra, dec)| if func == Func::HealpixRa { ra } else { dec });
            let values: Vec<f64> = centres.iter().map(pick).collect();
            wrap(Arc::new(Float64Array::new(values.into(), NullBuffer::union(pixels.nulls(), Some(&valid)))))
        }
        Func::InCircle | Func::InBox => {
            let v = if func == Func::InCircle {
                angular::in_circle(n, ops[0], ops[1], ops[2], ops[3], ops[4])
            } else {
                angular::in_box(n, ops[0], ops[1], ops[2], ops[3], ops[4], ops[5])
            };
            wrap(Arc::new(BooleanArray::new(BooleanBuffer::from(v), nulls)))
        }
        Func::InPolygon => {
            let vertices: Vec<(f64, f64)> = ops[2..]
                .chunks(2)
                .map(|v| match (v[0], v[1]) {
                    (Operand::Const(ra), Operand::Const(dec)) => Ok((ra, dec)),
                    _ => Err(ArrowError::InvalidArgumentError("POLYGON vertices must be constants".into())),
                })
                .collect::<Result<_, _>>()?;
            let v = angular::in_polygon(n, ops[0], ops[1], &vertices);
            wrap(Arc::new(BooleanArray::new(BooleanBuffer::from(v), nulls)))
        }
    })
}
