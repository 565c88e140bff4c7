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
use crate::plan::{CrossmatchSpec, Literal, Plan, PruningSummary, ScanSpec};
use crate::registry::CatalogSet;

/// The distance column.
pub const DIST: &str = "_dist_arcsec";

/// Largest radius (arcseconds) a crossmatch takes: beyond it, it is a cone-search job.
const MAX_RADIUS_ARCSEC: f64 = 3600.0;

/// A planned-to-be crossmatch: its two catalogs and its output columns.
pub(super) struct Xmatch {
    sides: [Arc<ParquetCatalog>; 2],
    /// (RA, Dec) column names of each side.
    sky: [(String, String); 2],
    radius_arcsec: f64,
    k: usize,
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
    let sky = [sky_columns(&left)?, sky_columns(&right)?];
    let same = left.name == right.name;
    let mut fields = Vec::new();
    let mut sources = Vec::new();
    for (side, catalog) in [&left, &right].into_iter().enumerate() {
        let other = if side == 0 { &right } else { &left };
        for (i, f) in catalog.schema.fields().iter().enumerate() {
            if catalog.is_file_column(i) {
                continue;
            }
            let clashes = other.schema.field_with_name(f.name()).is_ok() || f.name() == DIST;
            let name = match (clashes, same) {
                (false, _) => f.name().clone(),
                (true, false) => format!("{}_{}", catalog.name, f.name()),
                (true, true) => format!("{}_{}_{}", catalog.name, side + 1, f.name()),
            };
            fields.push(Field::new(name, f.data_type().clone(), true));
            sources.push((side, f.name().clone()));
        }
    }
    fields.push(Field::new(DIST, DataType::Float64, false));
    Ok(Some(Xmatch { sides: [left, right], sky, radius_arcsec, k, schema: Arc::new(Schema::new(fields)), sources }))
}

impl Xmatch {
    /// The crossmatch reading only the input columns behind `needed` (output names) and the
    /// positions.
    pub(super) fn plan(&self, needed: &[String], options: &PlanOptions) -> Result<Plan, PlanError> {
        let mut scans = Vec::new();
        let mut outputs: [Vec<(String, String)>; 2] = [Vec::new(), Vec::new()]; // (output, input) names
        for (field, (side, input)) in self.schema.fields().iter().zip(&self.sources) {
            if needed.contains(field.name()) {
                outputs[*side].push((field.name().clone(), input.clone()));
            }
        }
        let mut specs = Vec::new();
        for ((catalog, (ra, dec)), outputs) in self.sides.iter().zip(&self.sky).zip(&outputs) {
            let mut columns: Vec<String> = outputs.iter().map(|(_, input)| input.clone()).collect();
            for c in [ra, dec] {
                if !columns.contains(c) {
                    columns.push(c.clone());
                }
            }
            let column_indices: Vec<usize> =
                columns.iter().map(|c| catalog.schema.index_of(c).expect("a catalog column")).collect();
            let schema = Arc::new(Schema::new(
                column_indices.iter().map(|&i| catalog.schema.field(i).clone()).collect::<Vec<Field>>(),
            ));
            let (partitions, report) = catalog.partitions(&[], options.partition_rows)?;
            let position = |name: &str| columns.iter().position(|c| c == name).expect("read");
            specs.push((
                (position(ra), position(dec)),
                outputs.iter().map(|(_, input)| position(input)).collect::<Vec<_>>(),
            ));
            scans.push(Plan::Scan(ScanSpec {
                catalog: catalog.name.clone(),
                output_columns: columns.len(),
                columns,
                column_indices,
                predicate: None,
                bounds: vec![],
                partitions,
                limit: None,
                batch_rows: options.batch_rows,
                pruning: PruningSummary::from(&report),
                schema,
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
            self_match: self.sides[0].name == self.sides[1].name,
            schema: Arc::new(Schema::new(fields)),
        };
        Ok(Plan::Crossmatch { left: Box::new(left), right: Box::new(right), spec })
    }
}

/// The HEALPix order rows meet at: pixels about 100 radii across (so few right rows reach a
/// second pixel), at most order 10 (3.4′) and at least order 3 (7.3°) for balance.
fn partition_order(radius_arcsec: f64) -> u8 {
    // Pixel size at order k ≈ 58.6° / 2^k.
    let pixel_arcsec = |k: u8| 58.6 * 3600.0 / f64::from(1u32 << k);
    (3..=10u8).rev().find(|&k| pixel_arcsec(k) >= 100.0 * radius_arcsec).unwrap_or(3)
}
