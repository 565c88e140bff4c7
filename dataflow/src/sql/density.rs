//! `FROM DENSITY(catalog, order)`: the sky density of a catalog as a table — one row per
//! HEALPix pixel of `order` holding rows: `pixel`, the centre's `ra` and `dec`, and `count`.
//! Planned as a group-by on `HEALPIX(order, ra, dec)` (partial per worker, merged by pixel).

use sqlparser::ast;

use super::{PlanOptions, plan_sql};
use crate::error::PlanError;
use crate::plan::Plan;
use crate::registry::CatalogSet;

const USAGE: &str = "DENSITY(catalog, healpix_order)";

/// `Some` if `name(args)` is `DENSITY(...)`: its plan.
pub(super) fn parse(
    name: &str,
    args: &ast::TableFunctionArgs,
    catalogs: &CatalogSet,
    options: &PlanOptions,
) -> Result<Option<Plan>, PlanError> {
    if !name.eq_ignore_ascii_case("DENSITY") {
        return Ok(None);
    }
    let [catalog, order] = args.args.as_slice() else {
        return Err(PlanError::Type(format!("{USAGE} takes 2 arguments, got {}", args.args.len())));
    };
    let catalog = match catalog {
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Identifier(id))) => {
            catalogs.resolve(&id.value)?
        }
        other => return Err(PlanError::Type(format!("{USAGE}: {other} is not a catalog name"))),
    };
    let order = match order {
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Value(v))) => v.value.to_string(),
        other => {
            return Err(PlanError::Type(format!("{USAGE}: the order must be an integer from 0 to 29, got {other}")));
        }
    };
    let (ra, dec) = super::xmatch::sky_columns(catalog)?;
    let pixel = format!("HEALPIX({order}, \"{ra}\", \"{dec}\")");
    let sql = format!(
        "SELECT {pixel} AS pixel, HEALPIX_RA({order}, {pixel}) AS ra, HEALPIX_DEC({order}, {pixel}) AS dec, \
         COUNT(*) AS count FROM \"{}\" WHERE {pixel} IS NOT NULL GROUP BY pixel",
        catalog.name
    );
    Ok(Some(plan_sql(&sql, catalogs, options)?.plan))
}
