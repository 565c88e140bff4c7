//! Derives row-group pruning bounds from the conjuncts of a `WHERE` predicate.

use arrow_schema::{DataType, Schema};
use starflow_catalogs::{ColumnBound, SkyRegion};

use crate::plan::{BinaryOp, Expr, Func, Literal};

/// Bounds implied by `predicate` on numeric columns of `schema`.
pub(crate) fn bounds_of(predicate: &Expr, schema: &Schema) -> Vec<ColumnBound> {
    let numeric = |c: &str| schema.field_with_name(c).is_ok_and(|f| f.data_type().is_numeric());
    let mut out = Vec::new();
    for conjunct in predicate.conjuncts() {
        match conjunct {
            Expr::Binary { op, left, right } if op.is_comparison() && *op != BinaryOp::NotEq => {
                let (col, value, op) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(l)) => (c, l, *op),
                    (Expr::Literal(l), Expr::Column(c)) => (c, l, op.flipped()),
                    _ => continue,
                };
                let (Some(v), true) = (value.as_f64(), numeric(col)) else { continue };
                let t = schema.field_with_name(col).map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
                // Bounds must agree with how the comparison is evaluated: a Float32 column is
                // compared with the literal rounded to f32; integer statistics and literals
                // round to f64 (ids above 2^53), where only non-strict order survives.
                let v = if t == DataType::Float32 { v as f32 as f64 } else { v };
                let strict = !t.is_integer();
                let (lower, upper) = match op {
                    BinaryOp::Lt => (None, Some((v, !strict))),
                    BinaryOp::LtEq => (None, Some((v, true))),
                    BinaryOp::Gt => (Some((v, !strict)), None),
                    BinaryOp::GtEq => (Some((v, true)), None),
                    BinaryOp::Eq => (Some((v, true)), Some((v, true))),
                    _ => continue,
                };
                out.push(ColumnBound { column: col.clone(), lower, upper });
            }
            Expr::InList { expr, list, negated: false } => {
                let Expr::Column(col) = expr.as_ref() else { continue };
                let values: Option<Vec<f64>> = list.iter().map(Literal::as_f64).collect();
                if let (Some(values), true) = (values, numeric(col)) {
                    if values.is_empty() {
                        continue;
                    }
                    let f32_column = schema.field_with_name(col).is_ok_and(|f| *f.data_type() == DataType::Float32);
                    let values: Vec<f64> =
                        values.iter().map(|v| if f32_column { *v as f32 as f64 } else { *v }).collect();
                    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    out.push(ColumnBound { column: col.clone(), lower: Some((lo, true)), upper: Some((hi, true)) });
                }
            }
            Expr::Call { func: func @ (Func::InCircle | Func::InBox), args } => {
                out.extend(sky_bounds(*func, args, &numeric));
            }
            _ => {}
        }
    }
    out
}

/// The sky regions (cone, box, polygon with constant shapes) the conjuncts of `predicate`
/// confine positions (`ra`, `dec`) to: a HATS catalog reads only the pixels they reach.
pub(crate) fn regions_of(predicate: &Expr, ra: &str, dec: &str) -> Vec<SkyRegion> {
    let mut out = Vec::new();
    for conjunct in predicate.conjuncts() {
        let Expr::Call { func, args } = conjunct else { continue };
        if !matches!(func, Func::InCircle | Func::InBox | Func::InPolygon) {
            continue;
        }
        let on_position = matches!((&args[0], &args[1]), (Expr::Column(a), Expr::Column(d)) if a == ra && d == dec);
        let Some(c) = args[2..].iter().map(constant).collect::<Option<Vec<f64>>>() else { continue };
        if !on_position || c.iter().any(|v| !v.is_finite()) {
            continue;
        }
        out.push(match func {
            Func::InCircle => SkyRegion::Cone { ra: c[0], dec: c[1], radius: c[2] },
            Func::InBox => SkyRegion::Box { ra: c[0], dec: c[1], width: c[2], height: c[3] },
            _ => SkyRegion::Polygon(c.chunks(2).map(|v| (v[0], v[1])).collect()),
        });
    }
    out
}

/// A numeric constant (a literal, possibly negated).
pub(crate) fn constant(e: &Expr) -> Option<f64> {
    match e {
        Expr::Literal(l) => l.as_f64(),
        Expr::Negate(inner) => constant(inner).map(|v| -v),
        _ => None,
    }
}

/// The RA/Dec bounding box of a cone or box with constant centre and size.
fn sky_bounds(func: Func, args: &[Expr], numeric: &dyn Fn(&str) -> bool) -> Vec<ColumnBound> {
    let (Expr::Column(ra), Expr::Column(dec)) = (&args[0], &args[1]) else { return vec![] };
    if !numeric(ra) || !numeric(dec) {
        return vec![];
    }
    let consts: Option<Vec<f64>> = args[2..].iter().map(constant).collect();
    let Some(c) = consts else { return vec![] };
    let (ra0, dec0) = (c[0], c[1]);
    // Half-extent in Dec and (at the widest Dec) in RA, in degrees.
    let (half_dec, half_ra) = match func {
        Func::InCircle => {
            let r = c[2];
            let widest = (dec0.abs() + r).min(90.0);
            let half_ra = if widest >= 89.999 || r >= 90.0 {
                f64::INFINITY
            } else {
                // Exact RA half-width of a cone: asin(sin r / cos dec0), with margin for rounding.
                let s = r.to_radians().sin() / dec0.to_radians().cos();
                if s >= 1.0 { f64::INFINITY } else { s.asin().to_degrees() * 1.000_001 + 1e-9 }
            };
            (r * 1.000_001 + 1e-9, half_ra)
        }
        _ => (c[3] / 2.0 + 1e-9, c[2] / 2.0 + 1e-9),
    };
    let mut out = vec![ColumnBound {
        column: dec.clone(),
        lower: Some((dec0 - half_dec, true)),
        upper: Some((dec0 + half_dec, true)),
    }];
    let (lo, hi) = (ra0 - half_ra, ra0 + half_ra);
    // Only when the RA range does not wrap around 0/360 (stored RA is in [0, 360)).
    if half_ra.is_finite() && lo >= 0.0 && hi < 360.0 {
        out.push(ColumnBound { column: ra.clone(), lower: Some((lo, true)), upper: Some((hi, true)) });
    }
    out
}
