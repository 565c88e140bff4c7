//! Converts sqlparser expressions into plan expressions: name resolution, literals,
//! functions, ADQL geometry, and (in aggregate context) extraction of aggregate calls.

use arrow_schema::{DataType, Schema};
use sqlparser::ast::{self, BinaryOperator, FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator, Value};

use crate::error::{PlanError, nearest};
use crate::plan::{AggCall, AggFunc, BinaryOp, Expr, Func, Literal};

/// Where names resolve and whether aggregates are allowed.
pub(crate) struct Scope<'a> {
    /// Input schema (the catalog's).
    pub schema: &'a Schema,
    /// Catalog name and alias, accepted as qualifiers.
    pub qualifiers: Vec<String>,
    /// Human description for errors.
    pub description: String,
    /// Aggregates found so far; None where aggregates are not allowed (WHERE).
    pub aggs: Option<Vec<AggCall>>,
    /// For a join: each side's qualifiers and columns, so that `a.mag` names side a's `mag`.
    pub sides: Vec<Side>,
}

/// One side of a join: its qualifiers (catalog name, alias) and (input column, column in the
/// scope's schema) names.
pub(crate) type Side = (Vec<String>, Vec<(String, String)>);

impl Scope<'_> {
    /// Resolves a column name: exact first, then case-insensitive.
    pub fn column(&self, name: &str) -> Result<String, PlanError> {
        if self.schema.field_with_name(name).is_ok() {
            return Ok(name.to_string());
        }
        let lower = name.to_lowercase();
        let mut found = self.schema.fields().iter().filter(|f| f.name().to_lowercase() == lower);
        if let (Some(f), None) = (found.next(), found.next()) {
            return Ok(f.name().clone());
        }
        Err(PlanError::UnknownColumn {
            column: name.to_string(),
            scope: self.description.clone(),
            nearest: nearest(name, self.schema.fields().iter().map(|f| f.name().as_str())),
        })
    }

    /// Converts an expression.
    pub fn convert(&mut self, e: &ast::Expr) -> Result<Expr, PlanError> {
        self.convert_inner(e, false)
    }

    fn convert_inner(&mut self, e: &ast::Expr, in_agg: bool) -> Result<Expr, PlanError> {
        use ast::Expr as S;
        Ok(match e {
            S::Identifier(id) => Expr::Column(self.column(&id.value)?),
            S::CompoundIdentifier(parts) => {
                let (last, quals) = parts.split_last().expect("compound identifier has parts");
                let q = quals.last().map(|i| i.value.to_lowercase()).unwrap_or_default();
                if let Some((_, columns)) = self.sides.iter().find(|(qs, _)| qs.iter().any(|k| k.to_lowercase() == q)) {
                    let want = last.value.to_lowercase();
                    return match columns.iter().find(|(input, _)| input.to_lowercase() == want) {
                        Some((_, name)) => Ok(Expr::Column(name.clone())),
                        None => Err(PlanError::UnknownColumn {
                            column: format!("{q}.{}", last.value),
                            scope: self.description.clone(),
                            nearest: nearest(&last.value, columns.iter().map(|(input, _)| input.as_str())),
                        }),
                    };
                }
                let all: Vec<&String> =
                    self.qualifiers.iter().chain(self.sides.iter().flat_map(|(qs, _)| qs)).collect();
                if !all.iter().any(|k| k.to_lowercase() == q) {
                    return Err(PlanError::UnknownCatalog {
                        catalog: quals.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join("."),
                        nearest: nearest(&q, all.iter().map(|s| s.as_str())),
                    });
                }
                Expr::Column(self.column(&last.value)?)
            }
            S::Nested(inner) => self.convert_inner(inner, in_agg)?,
            S::Value(v) => Expr::Literal(literal(&v.value)?),
            S::UnaryOp { op: UnaryOperator::Not, expr } => Expr::Not(Box::new(self.convert_inner(expr, in_agg)?)),
            S::UnaryOp { op: UnaryOperator::Minus, expr } => match self.convert_inner(expr, in_agg)? {
                Expr::Literal(Literal::Int(i)) => Expr::Literal(Literal::Int(-i)),
                Expr::Literal(Literal::Float(f)) => Expr::Literal(Literal::Float(-f)),
                other => Expr::Negate(Box::new(other)),
            },
            S::UnaryOp { op: UnaryOperator::Plus, expr } => self.convert_inner(expr, in_agg)?,
            S::BinaryOp { left, op, right } => self.binary(left, op, right, in_agg)?,
            S::IsNull(x) => Expr::IsNull { expr: Box::new(self.convert_inner(x, in_agg)?), negated: false },
            S::IsNotNull(x) => Expr::IsNull { expr: Box::new(self.convert_inner(x, in_agg)?), negated: true },
            S::Between { expr, negated, low, high } => {
                let x = self.convert_inner(expr, in_agg)?;
                let lo = self.convert_inner(low, in_agg)?;
                let hi = self.convert_inner(high, in_agg)?;
                let both = Expr::binary(
                    BinaryOp::And,
                    Expr::binary(BinaryOp::GtEq, x.clone(), lo),
                    Expr::binary(BinaryOp::LtEq, x, hi),
                );
                if *negated { Expr::Not(Box::new(both)) } else { both }
            }
            S::In { expr, target: ast::InTarget::List(list), negated, .. } => {
                let x = self.convert_inner(expr, in_agg)?;
                let mut values = Vec::with_capacity(list.len());
                for item in list {
                    match self.convert_inner(item, in_agg)? {
                        Expr::Literal(l) => values.push(l),
                        other => {
                            return Err(PlanError::Unsupported(format!("IN lists must hold constants, found {other}")));
                        }
                    }
                }
                Expr::InList { expr: Box::new(x), list: values, negated: *negated }
            }
            S::Function(f) => self.function(f, in_agg)?,
            // sqlparser parses FLOOR(x) as its own expression kind.
            S::Floor { expr, field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) } => {
                Expr::Call { func: Func::Floor, args: vec![self.convert_inner(expr, in_agg)?] }
            }
            other => return Err(PlanError::Unsupported(format!("expression {other}"))),
        })
    }

    fn binary(
        &mut self,
        left: &ast::Expr,
        op: &BinaryOperator,
        right: &ast::Expr,
        in_agg: bool,
    ) -> Result<Expr, PlanError> {
        let op = match op {
            BinaryOperator::Plus => BinaryOp::Add,
            BinaryOperator::Minus => BinaryOp::Sub,
            BinaryOperator::Multiply => BinaryOp::Mul,
            BinaryOperator::Divide => BinaryOp::Div,
            BinaryOperator::Modulo => BinaryOp::Mod,
            BinaryOperator::Eq => BinaryOp::Eq,
            BinaryOperator::NotEq => BinaryOp::NotEq,
            BinaryOperator::Lt => BinaryOp::Lt,
            BinaryOperator::LtEq => BinaryOp::LtEq,
            BinaryOperator::Gt => BinaryOp::Gt,
            BinaryOperator::GtEq => BinaryOp::GtEq,
            BinaryOperator::And => BinaryOp::And,
            BinaryOperator::Or => BinaryOp::Or,
            other => return Err(PlanError::Unsupported(format!("operator {other}"))),
        };
        let l = self.convert_inner(left, in_agg)?;
        let r = self.convert_inner(right, in_agg)?;
        // ADQL: CONTAINS(...) = 1 means "inside", = 0 means "outside".
        if matches!(op, BinaryOp::Eq | BinaryOp::NotEq) {
            for (geo, other) in [(&l, &r), (&r, &l)] {
                if let (
                    Expr::Call { func: Func::InCircle | Func::InBox | Func::InPolygon, .. },
                    Expr::Literal(Literal::Int(v @ (0 | 1))),
                ) = (geo, other)
                {
                    let inside = (*v == 1) == (op == BinaryOp::Eq);
                    return Ok(if inside { geo.clone() } else { Expr::Not(Box::new(geo.clone())) });
                }
            }
        }
        Ok(Expr::binary(op, l, r))
    }

    fn function(&mut self, f: &ast::Function, in_agg: bool) -> Result<Expr, PlanError> {
        let name = f.name.to_string().to_uppercase();
        let args = function_args(f)?;
        if let Some(func) = aggregate_func(&name, &args) {
            return self.aggregate(func, &name, f, &args, in_agg);
        }
        match name.as_str() {
            "CONTAINS" => {
                let [point, shape] = exact::<2>(&name, &args)?;
                let point = self.geometry(point, "POINT", &[2], in_agg)?;
                let (shape_name, shape_args) = geometry_name(shape)?;
                let (func, arity): (Func, Vec<usize>) = match shape_name.as_str() {
                    "CIRCLE" => (Func::InCircle, vec![3]),
                    "BOX" => (Func::InBox, vec![4]),
                    // 3 to 20 vertices, two numbers each.
                    "POLYGON" => (Func::InPolygon, (6..=40).step_by(2).collect()),
                    other => {
                        return Err(PlanError::Unsupported(format!(
                            "CONTAINS with {other}: only CIRCLE, BOX and POLYGON are supported"
                        )));
                    }
                };
                let _ = shape_args;
                let shape = self.geometry(shape, &shape_name, &arity, in_agg)?;
                if func == Func::InPolygon && shape.iter().any(|v| super::bounds::constant(v).is_none()) {
                    return Err(PlanError::Type(format!(
                        "POLYGON vertices must be numeric constants: {shape_name} in {f}"
                    )));
                }
                Ok(Expr::Call { func, args: point.into_iter().chain(shape).collect() })
            }
            "DISTANCE" => {
                let args = if args.len() == 2 {
                    let a = self.geometry(args[0], "POINT", &[2], in_agg)?;
                    let b = self.geometry(args[1], "POINT", &[2], in_agg)?;
                    a.into_iter().chain(b).collect()
                } else if args.len() == 4 {
                    args.iter().map(|a| self.convert_inner(a, in_agg)).collect::<Result<_, _>>()?
                } else {
                    return Err(PlanError::Type(format!(
                        "DISTANCE takes two POINTs (or four numbers), got {} arguments",
                        args.len()
                    )));
                };
                Ok(Expr::Call { func: Func::Distance, args })
            }
            "POINT" | "CIRCLE" | "BOX" | "POLYGON" => {
                Err(PlanError::Unsupported(format!("{name}(...) is only meaningful inside CONTAINS or DISTANCE")))
            }
            _ => {
                let func = Func::from_name(&name).ok_or_else(|| PlanError::UnknownFunction {
                    name: f.name.to_string(),
                    nearest: nearest(&name, Func::NAMES.iter().copied()),
                })?;
                if !func.arity().contains(&args.len()) {
                    return Err(PlanError::Type(format!(
                        "{name} takes {:?} argument(s), got {}",
                        func.arity(),
                        args.len()
                    )));
                }
                let args = args.iter().map(|a| self.convert_inner(a, in_agg)).collect::<Result<_, _>>()?;
                Ok(Expr::Call { func, args })
            }
        }
    }

    /// Converts the numeric arguments of POINT/CIRCLE/BOX, dropping an optional leading
    /// coordinate-system string ('ICRS').
    fn geometry(
        &mut self,
        e: &ast::Expr,
        expected: &str,
        arity: &[usize],
        in_agg: bool,
    ) -> Result<Vec<Expr>, PlanError> {
        let (name, args) = geometry_name(e)?;
        if name != expected {
            return Err(PlanError::Type(format!("expected {expected}(...), found {e}")));
        }
        let mut args: &[&ast::Expr] = &args;
        if let Some(ast::Expr::Value(v)) = args.first()
            && matches!(v.value, Value::SingleQuotedString(_) | Value::DoubleQuotedString(_))
        {
            args = &args[1..];
        }
        if !arity.contains(&args.len()) {
            return Err(PlanError::Type(format!(
                "{expected} takes {} numeric argument(s) (after an optional coordinate system), got {}",
                arity[0],
                args.len()
            )));
        }
        args.iter().map(|a| self.convert_inner(a, in_agg)).collect()
    }

    fn aggregate(
        &mut self,
        func: AggFunc,
        name: &str,
        f: &ast::Function,
        args: &[&ast::Expr],
        in_agg: bool,
    ) -> Result<Expr, PlanError> {
        if in_agg {
            return Err(PlanError::Type(format!("aggregate {name} inside another aggregate")));
        }
        if let FunctionArguments::List(l) = &f.args
            && l.duplicate_treatment.is_some()
        {
            return Err(PlanError::Unsupported(format!("{name}(DISTINCT ...)")));
        }
        let (arg, arg_type) = match func {
            AggFunc::CountStar => (None, DataType::Null),
            _ => {
                let [a] = exact::<1>(name, args)?;
                let arg = self.convert_inner(a, true)?;
                let t = arg.data_type(self.schema)?;
                if func != AggFunc::Count && !crate::plan::expr::is_numeric(&t) {
                    return Err(PlanError::Type(format!("{name}({arg}) needs a number, {arg} is {t}")));
                }
                (Some(arg), t)
            }
        };
        let Some(aggs) = self.aggs.as_mut() else {
            return Err(PlanError::Type(format!("aggregate {f} is not allowed in WHERE")));
        };
        let call = AggCall { func, arg, name: String::new(), arg_type };
        let index = match aggs.iter().position(|a| a.func == call.func && a.arg == call.arg) {
            Some(i) => i,
            None => {
                aggs.push(AggCall { name: format!("__agg{}", aggs.len()), ..call });
                aggs.len() - 1
            }
        };
        Ok(Expr::Column(aggs[index].name.clone()))
    }
}

fn aggregate_func(name: &str, args: &[&ast::Expr]) -> Option<AggFunc> {
    Some(match name {
        "COUNT" if args.is_empty() => AggFunc::CountStar,
        "COUNT" => AggFunc::Count,
        "SUM" => AggFunc::Sum,
        "AVG" | "MEAN" => AggFunc::Avg,
        "MIN" => AggFunc::Min,
        "MAX" => AggFunc::Max,
        "STDDEV" | "STDDEV_SAMP" | "STD" => AggFunc::Stddev,
        _ => return None,
    })
}

fn exact<'a, const N: usize>(name: &str, args: &[&'a ast::Expr]) -> Result<[&'a ast::Expr; N], PlanError> {
    args.try_into().map_err(|_| PlanError::Type(format!("{name} takes {N} argument(s), got {}", args.len())))
}

/// The arguments of a call; `COUNT(*)` yields none.
fn function_args(f: &ast::Function) -> Result<Vec<&ast::Expr>, PlanError> {
    match &f.args {
        FunctionArguments::None => Ok(vec![]),
        FunctionArguments::Subquery(_) => Err(PlanError::Unsupported("subqueries".into())),
        FunctionArguments::List(list) => {
            let mut out = Vec::new();
            for a in &list.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => out.push(e),
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => {}
                    other => return Err(PlanError::Unsupported(format!("function argument {other}"))),
                }
            }
            Ok(out)
        }
    }
}

fn geometry_name(e: &ast::Expr) -> Result<(String, Vec<&ast::Expr>), PlanError> {
    match e {
        ast::Expr::Function(f) => Ok((f.name.to_string().to_uppercase(), function_args(f)?)),
        ast::Expr::Nested(inner) => geometry_name(inner),
        other => Err(PlanError::Type(format!("expected a geometry such as POINT(...), found {other}"))),
    }
}

/// Converts a SQL literal.
pub(crate) fn literal(v: &Value) -> Result<Literal, PlanError> {
    Ok(match v {
        Value::Number(s, _) => match s.parse::<i64>() {
            Ok(i) => Literal::Int(i),
            Err(_) => Literal::Float(s.parse::<f64>().map_err(|_| PlanError::Syntax(format!("bad number {s}")))?),
        },
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Literal::Str(s.clone()),
        Value::Boolean(b) => Literal::Bool(*b),
        Value::Null => Literal::Null,
        other => return Err(PlanError::Unsupported(format!("literal {other}"))),
    })
}
