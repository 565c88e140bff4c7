//! Aggregate accumulators. Every aggregate keeps four per-group state vectors (count, two
//! floats, one integer) whose meaning depends on the function; partial states travel as
//! columns and merge exactly (Chan's formula for the variance).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_array::{ArrowPrimitiveType, PrimitiveArray};
use arrow_cast::cast;
use arrow_schema::{ArrowError, DataType, Field};
use starflow_dataflow::plan::{AggCall, AggFunc, Expr, Func, Literal};

use crate::kernels::eval::evaluate;

/// Per-group state of one aggregate.
#[derive(Default)]
struct State {
    /// Values seen (non-null, non-NaN).
    count: Vec<i64>,
    /// Sum, mean, min or max (float inputs).
    f1: Vec<f64>,
    /// M2 of the variance.
    f2: Vec<f64>,
    /// Sum, min or max (integer inputs).
    i1: Vec<i64>,
    /// While folding raw rows, STDDEV keeps sums of `x - shift` and `(x - shift)²`, with the
    /// group's first value as shift (no division per row); exported as mean and M2.
    shift: Vec<f64>,
}

/// Raw-row statistics of one floating-point argument, shared by every aggregate over it
/// (AVG, STDDEV, MIN and MAX of one column cost one pass, not four). Count and sum are
/// always kept; the rest only if an aggregate reads them.
#[derive(Default)]
struct Moments {
    /// Shifted sums (STDDEV), min, max, sum of squares: which of them some aggregate reads.
    needs: (bool, bool, bool, bool),
    /// Sums of `x²`.
    sq: Vec<f64>,
    count: Vec<i64>,
    sum: Vec<f64>,
    /// The group's first value; `s1`, `s2` are sums of `x - shift` and `(x - shift)²`.
    shift: Vec<f64>,
    s1: Vec<f64>,
    s2: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
}

/// The accumulators of all aggregates of a group-by.
pub(crate) struct Accumulators {
    calls: Vec<AggCall>,
    states: Vec<State>,
    /// Folding raw rows: shared statistics per floating-point argument.
    moments: Vec<(Expr, Moments)>,
    /// For each call, the `moments` entry it reads (raw phase, float arguments), and whether
    /// it is the entry's sum of squares (`SUM(POWER(x, 2))`).
    uses: Vec<Option<(usize, bool)>>,
}

const STATE_COLUMNS: usize = 4;

fn integer(call: &AggCall) -> bool {
    call.arg_type.is_integer()
}

impl Accumulators {
    /// Accumulators for raw rows (`raw`: the partial phase) or for partial states (final).
    pub fn new(calls: &[AggCall], raw: bool) -> Self {
        let mut moments: Vec<(Expr, Moments)> = Vec::new();
        let uses = calls
            .iter()
            .map(|call| {
                let arg = call.arg.as_ref()?;
                // SUM(POWER(x, 2)) (a variance's partial) is read off x's own pass.
                let (arg, square) = match (call.func, squared(arg)) {
                    (AggFunc::Sum, Some(x)) if call.arg_type.is_floating() => (x, true),
                    _ => (arg, false),
                };
                // COUNT(x) of a float x too: both skip NULL and NaN.
                let float = call.arg_type.is_floating()
                    || (call.arg_type.is_integer() && matches!(call.func, AggFunc::Avg | AggFunc::Stddev));
                if !raw || !float {
                    return None;
                }
                let m = moments.iter().position(|(e, _)| e == arg).unwrap_or_else(|| {
                    moments.push((arg.clone(), Moments::default()));
                    moments.len() - 1
                });
                let needs = &mut moments[m].1.needs;
                match call.func {
                    AggFunc::Stddev => needs.0 = true,
                    AggFunc::Min => needs.1 = true,
                    AggFunc::Max => needs.2 = true,
                    AggFunc::Sum if square => needs.3 = true,
                    _ => {}
                }
                Some((m, square))
            })
            .collect();
        Self { calls: calls.to_vec(), states: calls.iter().map(|_| State::default()).collect(), moments, uses }
    }

    /// Grows every state to `groups` groups.
    pub fn resize(&mut self, groups: usize) {
        for (call, s) in self.calls.iter().zip(&mut self.states) {
            let (lo, hi) = match call.func {
                AggFunc::Min => (f64::INFINITY, i64::MAX),
                AggFunc::Max => (f64::NEG_INFINITY, i64::MIN),
                _ => (0.0, 0),
            };
            s.count.resize(groups, 0);
            s.f1.resize(groups, lo);
            s.f2.resize(groups, 0.0);
            s.i1.resize(groups, hi);
            s.shift.resize(groups, f64::NAN);
        }
        for (_, m) in &mut self.moments {
            m.count.resize(groups, 0);
            m.sum.resize(groups, 0.0);
            m.shift.resize(groups, 0.0);
            m.s1.resize(groups, 0.0);
            m.s2.resize(groups, 0.0);
            m.min.resize(groups, f64::INFINITY);
            m.max.resize(groups, f64::NEG_INFINITY);
            m.sq.resize(groups, 0.0);
        }
    }

    /// Folds the raw rows of `batch` (group of each row in `ids`) into the states. Each
    /// distinct argument is evaluated once; floats are read in their own width.
    pub fn update(&mut self, batch: &RecordBatch, ids: &[u32]) -> Result<(), ArrowError> {
        let mut evaluated: Vec<(&Expr, ArrayRef)> = Vec::new();
        for (arg, m) in &mut self.moments {
            let values = evaluate(arg, batch)?;
            match values.data_type() {
                DataType::Float32 => m.update(ids, values.as_primitive::<Float32Type>()),
                DataType::Float64 => m.update(ids, values.as_primitive::<Float64Type>()),
                _ => {
                    let v = cast(&values, &DataType::Float64)?;
                    m.update(ids, v.as_primitive::<Float64Type>());
                }
            }
        }
        for ((call, s), uses) in self.calls.iter().zip(&mut self.states).zip(&self.uses) {
            if uses.is_some() {
                continue;
            }
            let Some(arg) = &call.arg else {
                for &g in ids {
                    s.count[g as usize] += 1;
                }
                continue;
            };
            let values = match evaluated.iter().find(|(e, _)| *e == arg) {
                Some((_, v)) => v.clone(),
                None => {
                    let v = evaluate(arg, batch)?;
                    evaluated.push((arg, v.clone()));
                    v
                }
            };
            match values.data_type() {
                DataType::Float32 => update_float(call.func, s, ids, values.as_primitive::<Float32Type>()),
                DataType::Float64 => update_float(call.func, s, ids, values.as_primitive::<Float64Type>()),
                t if t.is_integer() && matches!(call.func, AggFunc::Avg | AggFunc::Stddev) => {
                    let v = cast(&values, &DataType::Float64)?;
                    update_float(call.func, s, ids, v.as_primitive::<Float64Type>());
                }
                t if t.is_integer() => {
                    let v = cast(&values, &DataType::Int64)?;
                    update_int(call, s, ids, v.as_primitive::<Int64Type>())?;
                }
                _ => {
                    for (i, &g) in ids.iter().enumerate() {
                        if values.is_valid(i) {
                            s.count[g as usize] += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Fields of the partial-state columns, after the key columns.
    pub fn state_fields(&self) -> Vec<Field> {
        let mut fields = Vec::new();
        for i in 0..self.calls.len() {
            fields.push(Field::new(format!("__s{i}_count"), DataType::Int64, false));
            fields.push(Field::new(format!("__s{i}_f1"), DataType::Float64, false));
            fields.push(Field::new(format!("__s{i}_f2"), DataType::Float64, false));
            fields.push(Field::new(format!("__s{i}_i1"), DataType::Int64, false));
        }
        fields
    }

    /// The partial states of groups `take`, as columns.
    pub fn state_columns(&self, take: &[u32]) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = Vec::new();
        for ((call, s), uses) in self.calls.iter().zip(&self.states).zip(&self.uses) {
            let pick_i =
                |v: &Vec<i64>| Arc::new(take.iter().map(|&g| v[g as usize]).collect::<Int64Array>()) as ArrayRef;
            let pick_f =
                |v: &Vec<f64>| Arc::new(take.iter().map(|&g| v[g as usize]).collect::<Float64Array>()) as ArrayRef;
            if let Some((m, square)) = uses.map(|(u, square)| (&self.moments[u].1, square)) {
                let n = |g: usize| m.count[g].max(1) as f64;
                let (f1, f2): (Vec<f64>, Vec<f64>) = take
                    .iter()
                    .map(|&g| {
                        let g = g as usize;
                        match call.func {
                            AggFunc::Min => (m.min[g], 0.0),
                            AggFunc::Max => (m.max[g], 0.0),
                            AggFunc::Stddev => {
                                (m.shift[g] + m.s1[g] / n(g), (m.s2[g] - m.s1[g] * m.s1[g] / n(g)).max(0.0))
                            }
                            _ if square => (m.sq[g], 0.0),
                            _ => (m.sum[g], 0.0),
                        }
                    })
                    .unzip();
                let zeros = Int64Array::from(vec![0i64; take.len()]);
                out.extend([
                    pick_i(&m.count),
                    Arc::new(Float64Array::from(f1)) as ArrayRef,
                    Arc::new(Float64Array::from(f2)),
                    Arc::new(zeros),
                ]);
            } else if call.func == AggFunc::Stddev {
                // Shifted sums → (mean, M2).
                let n = |g: usize| s.count[g].max(1) as f64;
                let mean = take.iter().map(|&g| {
                    let g = g as usize;
                    s.shift[g] + s.f1[g] / n(g)
                });
                let m2 = take.iter().map(|&g| {
                    let g = g as usize;
                    (s.f2[g] - s.f1[g] * s.f1[g] / n(g)).max(0.0)
                });
                out.extend([
                    pick_i(&s.count),
                    Arc::new(mean.collect::<Float64Array>()) as ArrayRef,
                    Arc::new(m2.collect::<Float64Array>()) as ArrayRef,
                    pick_i(&s.i1),
                ]);
            } else {
                out.extend([pick_i(&s.count), pick_f(&s.f1), pick_f(&s.f2), pick_i(&s.i1)]);
            }
        }
        out
    }

    /// Merges partial-state columns (starting at column `first`) into the states.
    pub fn merge(&mut self, partial: &RecordBatch, first: usize, ids: &[u32]) -> Result<(), ArrowError> {
        for (k, (call, s)) in self.calls.iter().zip(&mut self.states).enumerate() {
            let col = |j: usize| partial.column(first + k * STATE_COLUMNS + j);
            let count = col(0).as_primitive::<Int64Type>().values().clone();
            let f1 = col(1).as_primitive::<Float64Type>().values().clone();
            let f2 = col(2).as_primitive::<Float64Type>().values().clone();
            let i1 = col(3).as_primitive::<Int64Type>().values().clone();
            for (i, &g) in ids.iter().enumerate() {
                let (g, n) = (g as usize, count[i]);
                if n == 0 {
                    continue;
                }
                match call.func {
                    AggFunc::Sum if integer(call) => {
                        s.i1[g] = s.i1[g].checked_add(i1[i]).ok_or_else(|| sum_overflow(call))?
                    }
                    AggFunc::Min if integer(call) => s.i1[g] = s.i1[g].min(i1[i]),
                    AggFunc::Max if integer(call) => s.i1[g] = s.i1[g].max(i1[i]),
                    AggFunc::Sum | AggFunc::Avg => s.f1[g] += f1[i],
                    AggFunc::Min => s.f1[g] = s.f1[g].min(f1[i]),
                    AggFunc::Max => s.f1[g] = s.f1[g].max(f1[i]),
                    AggFunc::Stddev => {
                        let (na, nb) = (s.count[g] as f64, n as f64);
                        let delta = f1[i] - s.f1[g];
                        let total = na + nb;
                        s.f1[g] += delta * nb / total;
                        s.f2[g] += f2[i] + delta * delta * na * nb / total;
                    }
                    AggFunc::Count | AggFunc::CountStar => {}
                }
                s.count[g] += n;
            }
        }
        Ok(())
    }

    /// Final values of every aggregate for groups `0..groups`.
    pub fn finish(&self, groups: usize) -> Vec<ArrayRef> {
        self.calls
            .iter()
            .zip(&self.states)
            .map(|(call, s)| {
                let some = |g: usize| s.count[g] > 0;
                let a: ArrayRef = match call.func {
                    AggFunc::Count | AggFunc::CountStar => Arc::new(Int64Array::from(s.count[..groups].to_vec())),
                    AggFunc::Sum | AggFunc::Min | AggFunc::Max if integer(call) => {
                        Arc::new((0..groups).map(|g| some(g).then(|| s.i1[g])).collect::<Int64Array>())
                    }
                    AggFunc::Sum | AggFunc::Min | AggFunc::Max => {
                        Arc::new((0..groups).map(|g| some(g).then(|| s.f1[g])).collect::<Float64Array>())
                    }
                    AggFunc::Avg => Arc::new(
                        (0..groups).map(|g| some(g).then(|| s.f1[g] / s.count[g] as f64)).collect::<Float64Array>(),
                    ),
                    AggFunc::Stddev => Arc::new(
                        (0..groups)
                            .map(|g| (s.count[g] > 1).then(|| (s.f2[g] / (s.count[g] - 1) as f64).sqrt()))
                            .collect::<Float64Array>(),
                    ),
                };
                a
            })
            .collect()
    }
}

/// Folds float values (read as `f64`), skipping NULL and NaN. One loop per function.
fn update_float<T>(func: AggFunc, s: &mut State, ids: &[u32], values: &PrimitiveArray<T>)
where
    T: ArrowPrimitiveType,
    T::Native: Into<f64>,
{
    let nulls = values.nulls().filter(|n| n.null_count() > 0);
    let rows = ids.iter().zip(values.values().iter()).enumerate().filter_map(|(i, (&g, &x))| {
        let x: f64 = x.into();
        (!x.is_nan() && nulls.is_none_or(|n| n.is_valid(i))).then_some((g as usize, x))
    });
    let State { count, f1, f2, shift, .. } = s;
    match func {
        AggFunc::Sum | AggFunc::Avg => rows.for_each(|(g, x)| {
            count[g] += 1;
            f1[g] += x;
        }),
        AggFunc::Min => rows.for_each(|(g, x)| {
            count[g] += 1;
            f1[g] = f1[g].min(x);
        }),
        AggFunc::Max => rows.for_each(|(g, x)| {
            count[g] += 1;
            f1[g] = f1[g].max(x);
        }),
        AggFunc::Stddev => rows.for_each(|(g, x)| {
            if count[g] == 0 {
                shift[g] = x;
            }
            count[g] += 1;
            let d = x - shift[g];
            f1[g] += d;
            f2[g] += d * d;
        }),
        AggFunc::Count | AggFunc::CountStar => rows.for_each(|(g, _)| count[g] += 1),
    }
}

/// Folds integer values, skipping NULL. An integer SUM that leaves the 64-bit range is an
/// error, never a wrapped result.
fn update_int(
    call: &AggCall,
    s: &mut State,
    ids: &[u32],
    values: &PrimitiveArray<Int64Type>,
) -> Result<(), ArrowError> {
    for (i, &g) in ids.iter().enumerate() {
        if values.is_null(i) {
            continue;
        }
        let (g, x) = (g as usize, values.value(i));
        s.count[g] += 1;
        match call.func {
            AggFunc::Sum => s.i1[g] = s.i1[g].checked_add(x).ok_or_else(|| sum_overflow(call))?,
            AggFunc::Min => s.i1[g] = s.i1[g].min(x),
            AggFunc::Max => s.i1[g] = s.i1[g].max(x),
            _ => {}
        }
    }
    Ok(())
}

/// `x` if `e` is `POWER(x, 2)`.
fn squared(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Call { func: Func::Power, args } => match args.as_slice() {
            [x, Expr::Literal(Literal::Int(2))] => Some(x),
            [x, Expr::Literal(Literal::Float(f))] if *f == 2.0 => Some(x),
            _ => None,
        },
        _ => None,
    }
}

fn sum_overflow(call: &AggCall) -> ArrowError {
    let arg = call.arg.as_ref().map_or_else(String::new, ToString::to_string);
    ArrowError::ArithmeticOverflow(format!("SUM({arg}) overflows a 64-bit integer"))
}

impl Moments {
    /// One pass over a float column: count and sum per group, and what else is needed
    /// (shifted sums, min, max, sum of squares), skipping NULL and NaN.
    fn update<T>(&mut self, ids: &[u32], values: &PrimitiveArray<T>)
    where
        T: ArrowPrimitiveType,
        T::Native: Into<f64>,
    {
        match self.needs {
            (false, false, false, false) => self.fold::<T, false, false, false, false>(ids, values),
            (false, true, true, false) => self.fold::<T, false, true, true, false>(ids, values),
            (false, true, true, true) => self.fold::<T, false, true, true, true>(ids, values),
            _ => self.fold::<T, true, true, true, true>(ids, values),
        }
    }

    /// The loop of [`Moments::update`], with what is not kept compiled out.
    fn fold<T, const SHIFTED: bool, const MIN: bool, const MAX: bool, const SQUARE: bool>(
        &mut self,
        ids: &[u32],
        values: &PrimitiveArray<T>,
    ) where
        T: ArrowPrimitiveType,
        T::Native: Into<f64>,
    {
        let nulls = values.nulls().filter(|n| n.null_count() > 0);
        for (i, (&g, &x)) in ids.iter().zip(values.values().iter()).enumerate() {
            let x: f64 = x.into();
            if x.is_nan() || nulls.is_some_and(|n| n.is_null(i)) {
                continue;
            }
            let g = g as usize;
            if SHIFTED && self.count[g] == 0 {
                self.shift[g] = x;
            }
            self.count[g] += 1;
            self.sum[g] += x;
            if SHIFTED {
                let d = x - self.shift[g];
                self.s1[g] += d;
                self.s2[g] += d * d;
            }
            if MIN {
                self.min[g] = self.min[g].min(x);
            }
            if MAX {
                self.max[g] = self.max[g].max(x);
            }
            if SQUARE {
                self.sq[g] += x * x;
            }
        }
    }
}
