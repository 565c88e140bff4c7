//! `FROM XMATCH(left, right, radius_arcsec [, k])`: the crossmatch as a table. Its columns are
//! both catalogs' columns (a name both have is prefixed with its catalog's name, or with
//! `<catalog>_1_` / `<catalog>_2_` when a catalog is matched with itself) and `_dist_arcsec`.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use sqlparser::ast;
use starflow_catalogs::ParquetCatalog;

use super::PlanOptions;
use super::convert::literal;
use crate::error::PlanError;
use crate::plan::{CrossmatchSpec, Expr, Literal, Plan, PruningSummary, ScanSpec};
use crate::registry::CatalogSet;

/// The distance column.
pub const DIST: &str = "_dist_arcsec";

/// Largest radius (arcseconds) a crossmatch takes: beyond it, it is a cone-search job.
const MAX_RADIUS_ARCSEC: f64 = 3600.0;

/// A planned-to-be crossmatch: its two catalogs and its output columns.
#[derive(Clone)]
pub(super) struct Xmatch {
    sides: [Arc<ParquetCatalog>; 2],
    /// (RA, Dec) column names of each side.
    sky: [(String, String); 2],
    radius_arcsec: f64,
    k: usize,
    exclude_self: bool,
    /// Output schema; field i < `sources.len()` comes from `sources[i]`.
    pub schema: SchemaRef,
    /// (side, input column name) of each output column but the distance.
    sources: Vec<(usize, String)>,
}

/// The RA and Dec columns of a catalog.
pub(crate) fn sky_columns(catalog: &ParquetCatalog) -> Result<(String, String), PlanError> {
    catalog.sky_columns().ok_or_else(|| {
        let tried: Vec<String> = starflow_catalogs::SKY_COLUMNS.iter().map(|(r, d)| format!("{r}/{d}")).collect();
        PlanError::Type(format!("catalog \"{}\" has no RA/Dec columns (looked for {})", catalog.name, tried.join(", ")))
    })
}

const USAGE: &str = "XMATCH(left_catalog, right_catalog, radius_arcsec [, k])";

/// `Some` if `name(args)` is `XMATCH(...)`.
pub(super) fn parse(
    name: &str,
    args: &ast::TableFunctionArgs,
    catalogs: &CatalogSet,
) -> Result<Option<Xmatch>, PlanError> {
    if !name.eq_ignore_ascii_case("XMATCH") {
        return Ok(None);
    }
    let exprs: Vec<&ast::Expr> = args
        .args
        .iter()
        .map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(PlanError::Type(format!("{USAGE}: unexpected argument {other}"))),
        })
        .collect::<Result<_, _>>()?;
    if !(3..=4).contains(&exprs.len()) {
        return Err(PlanError::Type(format!("{USAGE} takes 3 or 4 arguments, got {}", exprs.len())));
    }
    let catalog = |e: &ast::Expr| match e {
        ast::Expr::Identifier(id) => catalogs.resolve(&id.value).cloned(),
        other => Err(PlanError::Type(format!("{USAGE}: {other} is not a catalog name"))),
    };
    let number = |e: &ast::Expr, what: &str| -> Result<f64, PlanError> {
        let (negative, e) = match e {
            ast::Expr::UnaryOp { op: ast::UnaryOperator::Minus, expr } => (true, expr.as_ref()),
            e => (false, e),
        };
        let value = match e {
            ast::Expr::Value(v) => literal(&v.value)?,
            other => return Err(PlanError::Type(format!("{USAGE}: the {what} must be a number, got {other}"))),
        };
        let x = match value {
            Literal::Int(i) => i as f64,
            Literal::Float(x) => x,
            other => return Err(PlanError::Type(format!("{USAGE}: the {what} must be a number, got {other}"))),
        };
        Ok(if negative { -x } else { x })
    };
    let (left, right) = (catalog(exprs[0])?, catalog(exprs[1])?);
    let radius_arcsec = number(exprs[2], "radius")?;
    if !(radius_arcsec > 0.0 && radius_arcsec <= MAX_RADIUS_ARCSEC) {
        return Err(PlanError::Type(format!(
            "{USAGE}: the radius must be above 0 and at most {MAX_RADIUS_ARCSEC} arcseconds, got {radius_arcsec}"
        )));
    }
    let k = match exprs.get(3) {
        None => 1,
        Some(e) => {
            let k = number(e, "k")?;
            if k.fract() != 0.0 || !(1.0..=1000.0).contains(&k) {
                return Err(PlanError::Type(format!("{USAGE}: k must be an integer from 1 to 1000, got {k}")));
            }
            k as usize
        }
    };
    // A catalog matched with itself: the sides are told apart by number.
    let labels = if left.name == right.name {
        [format!("{}_1", left.name), format!("{}_2", right.name)]
    } else {
        [left.name.clone(), right.name.clone()]
    };
    let self_match = left.name == right.name;
    let sky = [sky_columns(&left)?, sky_columns(&right)?];
    Ok(Some(Xmatch::new([left, right], labels, sky, radius_arcsec, k, self_match)))
}

impl Xmatch {
    /// A crossmatch of `sides` (labelled for clashing column names) on their `sky` columns;
    /// `exclude_self`: a row is never its own match (the same catalog on both sides).
    pub(super) fn new(
        sides: [Arc<ParquetCatalog>; 2],
        labels: [String; 2],
        sky: [(String, String); 2],
        radius_arcsec: f64,
        k: usize,
        exclude_self: bool,
    ) -> Self {
        let mut fields = Vec::new();
        let mut sources = Vec::new();
        for (side, catalog) in sides.iter().enumerate() {
            let other = &sides[1 - side];
            for (i, f) in catalog.schema.fields().iter().enumerate() {
                if catalog.is_file_column(i) {
                    continue;
                }
                let clashes = other.schema.field_with_name(f.name()).is_ok() || f.name() == DIST;
                let name = if clashes { format!("{}_{}", labels[side], f.name()) } else { f.name().clone() };
                fields.push(Field::new(name, f.data_type().clone(), true));
                sources.push((side, f.name().clone()));
            }
        }
        fields.push(Field::new(DIST, DataType::Float64, false));
        Self { sides, sky, radius_arcsec, k, exclude_self, schema: Arc::new(Schema::new(fields)), sources }
    }

    /// Each side's (input column, output name) pairs, for qualified names (`a.mag`).
    pub(super) fn columns_of(&self, side: usize) -> Vec<(String, String)> {
        self.schema
            .fields()
            .iter()
            .zip(&self.sources)
            .filter(|(_, (s, _))| *s == side)
            .map(|(f, (_, input))| (input.clone(), f.name().clone()))
            .collect()
    }

    /// The crossmatch reading only the input columns behind `needed` (output names) and the
    /// positions. The conditions of `predicate` on the left side alone are applied while
    /// reading it (with row-group pruning): each left row's matches do not depend on other left
    /// rows. So are those on the right side alone when every pair is kept (the join form).
    /// Returns the plan and the conditions left for the pairs.
    pub(super) fn plan(
        &self,
        needed: &[String],
        predicate: Option<Expr>,
        options: &PlanOptions,
    ) -> Result<(Plan, Option<Expr>), PlanError> {
        let mut outputs: [Vec<(String, String)>; 2] = [Vec::new(), Vec::new()]; // (output, input) names
        for (field, (side, input)) in self.schema.fields().iter().zip(&self.sources) {
            if needed.contains(field.name()) {
                outputs[*side].push((field.name().clone(), input.clone()));
            }
        }
        let (pushed, rest) = self.split(predicate);
        let mut scans = Vec::new();
        let mut specs = Vec::new();
        for (side, ((catalog, (ra, dec)), outputs)) in self.sides.iter().zip(&self.sky).zip(&outputs).enumerate() {
            let mut columns: Vec<String> = outputs.iter().map(|(_, input)| input.clone()).collect();
            for c in [ra, dec] {
                if !columns.contains(c) {
                    columns.push(c.clone());
                }
            }
            let output_columns = columns.len();
            let predicate = pushed[side].clone();
            if let Some(p) = &predicate {
                p.columns(&mut columns);
            }
            let column_indices: Vec<usize> =
                columns.iter().map(|c| catalog.schema.index_of(c).expect("a catalog column")).collect();
            let mut fields: Vec<Field> =
                column_indices[..output_columns].iter().map(|&i| catalog.schema.field(i).clone()).collect();
            if self.exclude_self {
                fields.push(Field::new(crate::plan::ROW_ID, DataType::UInt64, false));
            }
            let bounds = predicate.as_ref().map(|p| super::bounds::bounds_of(p, &catalog.schema)).unwrap_or_default();
            let regions = super::sky_regions(catalog, predicate.as_ref());
            let (partitions, report) = catalog.partitions_in(&bounds, &regions, options.partition_rows)?;
            let position = |name: &str| columns.iter().position(|c| c == name).expect("read");
            specs.push((
                (position(ra), position(dec)),
                outputs.iter().map(|(_, input)| position(input)).collect::<Vec<_>>(),
            ));
            scans.push(Plan::Scan(ScanSpec {
                catalog: catalog.name.clone(),
                output_columns,
                columns,
                column_indices,
                predicate,
                bounds,
                partitions,
                limit: None,
                batch_rows: options.batch_rows,
                pruning: PruningSummary::from(&report),
                row_ids: self.exclude_self,
                schema: Arc::new(Schema::new(fields)),
            }));
        }
        let mut fields: Vec<Field> = outputs
            .iter()
            .flatten()
            .map(|(out, _)| self.schema.field_with_name(out).expect("output").clone())
            .collect();
        fields.push(Field::new(DIST, DataType::Float64, false));
        let right = scans.pop().expect("two scans");
        let left = scans.pop().expect("two scans");
        let spec = CrossmatchSpec {
            radius_arcsec: self.radius_arcsec,
            k: self.k,
            order: partition_order(self.radius_arcsec),
            left_radec: specs[0].0,
            right_radec: specs[1].0,
            left_out: specs[0].1.clone(),
            right_out: specs[1].1.clone(),
            self_match: self.exclude_self,
            schema: Arc::new(Schema::new(fields)),
        };
        Ok((Plan::Crossmatch { left: Box::new(left), right: Box::new(right), spec }, rest))
    }

    /// `predicate`'s conditions for each side's scan (in its input names) and the rest.
    fn split(&self, predicate: Option<Expr>) -> ([Option<Expr>; 2], Option<Expr>) {
        let and =
            |a: Option<Expr>, b: Expr| Some(a.map_or(b.clone(), |a| Expr::binary(crate::plan::BinaryOp::And, a, b)));
        let mut pushed: [Option<Expr>; 2] = [None, None];
        let mut rest = None;
        let Some(predicate) = predicate else { return (pushed, rest) };
        let source =
            |name: &str| self.schema.fields().iter().position(|f| f.name() == name).and_then(|i| self.sources.get(i));
        for c in predicate.conjuncts() {
            let mut columns = Vec::new();
            c.columns(&mut columns);
            let sides: Option<Vec<usize>> = columns.iter().map(|n| source(n).map(|(s, _)| *s)).collect();
            let side = match sides.as_deref() {
                Some([first, others @ ..]) if others.iter().all(|s| s == first) => Some(*first),
                _ => None,
            };
            match side {
                Some(s) if s == 0 || self.k == ALL_PAIRS => {
                    let renamed = c.rename(&|n| source(n).map_or(n.to_string(), |(_, input)| input.clone()));
                    pushed[s] = and(pushed[s].take(), renamed);
                }
                _ => rest = and(rest.take(), c.clone()),
            }
        }
        (pushed, rest)
    }
}

/// The HEALPix order rows meet at: pixels about 100 radii across (so few right rows reach a
/// second pixel), at most order 10 (3.4′) and at least order 3 (7.3°) for balance.
fn partition_order(radius_arcsec: f64) -> u8 {
    // Pixel size at order k ≈ 58.6° / 2^k.
    let pixel_arcsec = |k: u8| 58.6 * 3600.0 / f64::from(1u32 << k);
    (3..=10u8).rev().find(|&k| pixel_arcsec(k) >= 100.0 * radius_arcsec).unwrap_or(3)
}

/// The ADQL form: `FROM a [AS x] JOIN b [AS y] ON DISTANCE(POINT(x.ra, x.dec), POINT(y.ra,
/// y.dec)) < r` (r in degrees; or `CONTAINS(POINT(x…), CIRCLE(y.ra, y.dec, r)) = 1`, and more
/// conditions with `AND`): every pair within r, each catalog's columns named by its alias.
pub(super) struct Join<'q> {
    pub xmatch: Xmatch,
    /// Qualifiers (catalog name, alias) of each side.
    pub qualifiers: [Vec<String>; 2],
    pub on: &'q ast::Expr,
}

/// Pairs kept per left row by the join form (every pair within the radius, as SQL says).
const ALL_PAIRS: usize = 1_000_000;

const JOIN_USAGE: &str =
    "a join of two catalogs needs ON DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < radius_degrees";

/// `Some` if `from` is a join of two catalogs.
pub(super) fn join<'q>(from: &'q ast::TableWithJoins, catalogs: &CatalogSet) -> Result<Option<Join<'q>>, PlanError> {
    let [join] = from.joins.as_slice() else {
        return if from.joins.is_empty() {
            Ok(None)
        } else {
            Err(PlanError::Unsupported("joins of more than two catalogs".into()))
        };
    };
    let on = match &join.join_operator {
        ast::JoinOperator::Join(ast::JoinConstraint::On(on))
        | ast::JoinOperator::Inner(ast::JoinConstraint::On(on)) => on,
        _ => return Err(PlanError::Unsupported(format!("outer, cross and other joins; {JOIN_USAGE}"))),
    };
    let side = |t: &ast::TableFactor| -> Result<(Arc<ParquetCatalog>, Vec<String>, String), PlanError> {
        let ast::TableFactor::Table { name, alias, args: None, .. } = t else {
            return Err(PlanError::Unsupported(format!("joining {t}: {JOIN_USAGE}")));
        };
        let catalog =
            catalogs.resolve(name.0.last().map(|p| p.to_string()).unwrap_or_default().trim_matches('"'))?.clone();
        let alias = alias.as_ref().map(|a| a.name.value.clone());
        let label = alias.clone().unwrap_or_else(|| catalog.name.clone());
        let qualifiers = std::iter::once(catalog.name.clone()).chain(alias).collect();
        Ok((catalog, qualifiers, label))
    };
    let (left, lq, ll) = side(&from.relation)?;
    let (right, rq, rl) = side(&join.relation)?;
    if ll.eq_ignore_ascii_case(&rl) {
        return Err(PlanError::Type(format!(
            "both sides of the join are called {ll}: give them aliases (FROM {} AS a JOIN {} AS b ON …)",
            left.name, right.name
        )));
    }
    let sky = [sky_columns(&left)?, sky_columns(&right)?];
    // The radius comes from ON (see `Join::take_distance`); SQL keeps a row's pair with itself.
    let xmatch = Xmatch::new([left, right], [ll, rl], sky, MAX_RADIUS_ARCSEC, ALL_PAIRS, false);
    Ok(Some(Join { xmatch, qualifiers: [lq, rq], on }))
}

impl Join<'_> {
    /// Takes the distance condition out of `on` (converted over the join's columns): sets the
    /// radius and the positions it names; returns the other conditions.
    pub fn take_distance(&mut self, on: Expr) -> Result<Option<Expr>, PlanError> {
        let x = &mut self.xmatch;
        let side_of = |e: &Expr| match e {
            Expr::Column(name) => {
                x.schema.fields().iter().position(|f| f.name() == name).and_then(|i| x.sources.get(i).cloned())
            }
            _ => None,
        };
        let mut found = None;
        let mut rest = Vec::new();
        for c in on.conjuncts() {
            let distance = match c {
                Expr::Binary { op: crate::plan::BinaryOp::Lt | crate::plan::BinaryOp::LtEq, left, right } => {
                    match (left.as_ref(), constant(right)) {
                        (Expr::Call { func: crate::plan::Func::Distance, args }, Some(r)) => Some((args, r)),
                        _ => None,
                    }
                }
                Expr::Call { func: crate::plan::Func::InCircle, args } => {
                    args.get(4).and_then(constant).map(|r| (args, r))
                }
                _ => None,
            };
            let points = distance.and_then(|(args, r)| {
                let sides: Vec<(usize, String)> = args.iter().take(4).map(side_of).collect::<Option<_>>()?;
                Some((sides, r))
            });
            match points {
                Some((sides, radius))
                    if found.is_none()
                        && sides[0].0 == sides[1].0
                        && sides[2].0 == sides[3].0
                        && sides[0].0 != sides[2].0 =>
                {
                    found = Some((sides, radius));
                }
                _ => rest.push(c.clone()),
            }
        }
        let Some((sides, radius)) = found else {
            return Err(PlanError::Type(JOIN_USAGE.into()));
        };
        let radius_arcsec = radius * 3600.0;
        if !(radius_arcsec > 0.0 && radius_arcsec <= MAX_RADIUS_ARCSEC) {
            return Err(PlanError::Type(format!(
                "the join's radius must be above 0 and at most {} degree(s), got {radius}",
                MAX_RADIUS_ARCSEC / 3600.0
            )));
        }
        x.radius_arcsec = radius_arcsec;
        for pair in [&sides[0..2], &sides[2..4]] {
            x.sky[pair[0].0] = (pair[0].1.clone(), pair[1].1.clone());
        }
        Ok(rest.into_iter().reduce(|a, b| Expr::binary(crate::plan::BinaryOp::And, a, b)))
    }
}

/// The value of a constant numeric expression (`1.0 / 3600`), if it is one.
fn constant(e: &Expr) -> Option<f64> {
    use crate::plan::BinaryOp;
    match e {
        Expr::Literal(Literal::Int(i)) => Some(*i as f64),
        Expr::Literal(Literal::Float(f)) => Some(*f),
        Expr::Negate(x) => constant(x).map(|v| -v),
        Expr::Binary { op, left, right } => {
            let (a, b) = (constant(left)?, constant(right)?);
            match op {
                BinaryOp::Add => Some(a + b),
                BinaryOp::Sub => Some(a - b),
                BinaryOp::Mul => Some(a * b),
                BinaryOp::Div => Some(a / b),
                _ => None,
            }
        }
        _ => None,
    }
}
