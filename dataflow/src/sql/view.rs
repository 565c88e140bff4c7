//! Planning a maintained view (`CREATE MATERIALIZED VIEW name AS SELECT …`): which catalog it
//! reads, what kind of view it is, and the query that computes one partition's contribution.
//!
//! - `SELECT exprs FROM c [WHERE p]` → a row view; a partition contributes its result rows.
//! - `SELECT keys, aggregates FROM c [WHERE p] GROUP BY keys` → a group-by view; a partition
//!   contributes, per group, partial aggregates: `COUNT` → count; `SUM`/`AVG` → count and sum;
//!   `STDDEV` → count, sum and sum of squares; `MIN`/`MAX` → min/max.

use arrow_schema::SchemaRef;
use sqlparser::ast::{self, FunctionArguments, GroupByExpr, SelectItem, SetExpr, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::{PlanOptions, plan_sql};
use crate::error::PlanError;
use crate::plan::Plan;
use crate::registry::CatalogSet;
use crate::view::{Datum, OutputColumn, Row, ViewAgg, ViewKind};

/// A planned view.
#[derive(Debug, Clone)]
pub struct ViewPlan {
    /// The catalog it reads (resolved name).
    pub catalog: String,
    /// Row or group-by view.
    pub kind: ViewKind,
    /// The query that computes one partition's contribution (over the catalog's name): the
    /// group keys first, then the partial aggregates; for row views the view's own query.
    pub contribution_sql: String,
    /// Number of group keys at the front of a contribution row (0 for row views).
    pub keys: usize,
    /// The view's output schema (as the same query run from scratch returns it).
    pub schema: SchemaRef,
    /// A join view's second catalog (the fields above describe the first).
    pub other: Option<JoinSide>,
    /// Group-by views: for each partial of each aggregate, in order, its column in a
    /// contribution row after the keys (shared partials — `AVG(x)` and `STDDEV(x)` both need
    /// `COUNT(x)` and `SUM(x)` — are computed once).
    pub layout: Vec<usize>,
}

/// The second catalog of a join view.
#[derive(Debug, Clone)]
pub struct JoinSide {
    /// The catalog (resolved name).
    pub catalog: String,
    /// One file's contribution: the join keys, then the columns the view shows.
    pub contribution_sql: String,
    /// Number of join keys at the front of a contribution row.
    pub keys: usize,
}

impl ViewPlan {
    /// The catalogs the view reads, by side.
    pub fn catalogs(&self) -> Vec<&str> {
        std::iter::once(self.catalog.as_str()).chain(self.other.as_ref().map(|o| o.catalog.as_str())).collect()
    }

    /// (catalog, contribution query, keys) of side `side`.
    pub fn side(&self, side: usize) -> (&str, &str, usize) {
        match (side, &self.other) {
            (1, Some(o)) => (&o.catalog, &o.contribution_sql, o.keys),
            _ => (&self.catalog, &self.contribution_sql, self.keys),
        }
    }
}

impl ViewPlan {
    /// The contribution query of side `side` computed for many files at once: the virtual
    /// file column ([`starflow_catalogs::FILE_COLUMN`]) first, and grouped by too, so each
    /// result row tells whose contribution it is. None for top-k views (a file contributes its
    /// own top k, which a query over several files cannot tell apart).
    pub fn contribution_by_file(&self, side: usize) -> Option<String> {
        if matches!(self.kind, ViewKind::TopK { .. }) {
            return None;
        }
        let mut statements = Parser::parse_sql(&GenericDialect {}, self.side(side).1).ok()?;
        let Some(Statement::Query(mut query)) = statements.pop() else { return None };
        let SetExpr::Select(select) = query.body.as_mut() else { return None };
        let file = ast::Expr::Identifier(ast::Ident::new(starflow_catalogs::FILE_COLUMN));
        select.projection.insert(0, SelectItem::UnnamedExpr(file.clone()));
        // Aggregates (global ones too) are grouped by file; rows just carry it.
        match &mut select.group_by {
            GroupByExpr::Expressions(exprs, _) if matches!(self.kind, ViewKind::Aggregate { .. }) => {
                exprs.insert(0, file)
            }
            GroupByExpr::Expressions(..) => {}
            GroupByExpr::All(_) => return None,
        }
        Some(query.to_string())
    }

    /// What a file without a matching row contributes to a view of global aggregates (its one
    /// group exists even over no rows, as `COUNT(*)` = 0): counts of 0 and NULL for the other
    /// partials, in the contribution query's column order. None for other views, where a
    /// group without rows does not exist.
    pub fn empty_contribution(&self) -> Option<Row> {
        let ViewKind::Aggregate { aggs, .. } = &self.kind else { return None };
        if self.keys != 0 {
            return None;
        }
        let mut row = vec![Datum::Null; self.layout.iter().max().map_or(0, |m| m + 1)];
        let mut slots = self.layout.iter();
        for agg in aggs {
            // The partials of each aggregate, in layout order (see `plan_view`).
            let (count_first, partials) = match agg {
                ViewAgg::Count => (true, 1),
                ViewAgg::Sum | ViewAgg::Avg => (true, 2),
                ViewAgg::Stddev => (true, 3),
                ViewAgg::Min | ViewAgg::Max => (false, 1),
            };
            let first = *slots.next()?;
            if count_first {
                row[first] = Datum::Int(0);
            }
            slots.by_ref().take(partials - 1).for_each(drop);
        }
        Some(row)
    }
}

fn unsupported(what: &str) -> PlanError {
    PlanError::Unsupported(format!(
        "{what} in a materialized view (supported: filters, projections, GROUP BY with COUNT/SUM/AVG/STDDEV/MIN/MAX)"
    ))
}

/// Plans `sql` (a SELECT) as a maintained view over `catalogs`.
pub fn plan_view(sql: &str, catalogs: &CatalogSet) -> Result<ViewPlan, PlanError> {
    if let Ok(mut statements) = Parser::parse_sql(&GenericDialect {}, sql)
        && let Some(Statement::Query(query)) = statements.pop()
        && let SetExpr::Select(select) = query.body.as_ref()
        && select.from.first().is_some_and(|f| !f.joins.is_empty())
    {
        return super::view_join::plan_join(&query, select, catalogs);
    }
    let planned = plan_sql(sql, catalogs, &PlanOptions::default())?;
    if planned.explain {
        return Err(PlanError::Unsupported("EXPLAIN as a view".into()));
    }
    let catalog = planned.plan.catalogs().first().map(|c| c.to_string()).ok_or_else(|| unsupported("no catalog"))?;
    let schema = planned.plan.schema();
    let mut statements = Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| PlanError::Syntax(e.to_string()))?;
    let Some(Statement::Query(query)) = statements.pop() else {
        return Err(unsupported("a statement other than SELECT"));
    };
    let SetExpr::Select(select) = query.body.as_ref() else { return Err(unsupported("a set operation")) };
    if query.order_by.is_some() || query.limit_clause.is_some() || query.fetch.is_some() || select.top.is_some() {
        return top_k(&planned.plan, &query, select, catalog, schema);
    }
    if select.distinct.is_some() {
        return Err(unsupported("DISTINCT"));
    }
    if select.having.is_some() {
        return Err(unsupported("HAVING"));
    }
    let group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.clone(),
        GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
    };
    if !contains_aggregate(&planned.plan) {
        return Ok(ViewPlan {
            catalog,
            kind: ViewKind::Rows,
            contribution_sql: sql.trim().to_string(),
            keys: 0,
            schema,
            other: None,
            layout: vec![],
        });
    }
    let items: Vec<(&ast::Expr, Option<&str>)> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Ok((e, None)),
            SelectItem::ExprWithAlias { expr, alias } => Ok((expr, Some(alias.value.as_str()))),
            _ => Err(unsupported("* with GROUP BY")),
        })
        .collect::<Result<_, _>>()?;
    // Group keys, with aliases and ordinals resolved to the select item they name.
    let keys: Vec<String> = group_by
        .iter()
        .map(|g| match g {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => n
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i.wrapping_sub(1)))
                    .map(|(e, _)| e.to_string())
                    .ok_or_else(|| PlanError::Type(format!("GROUP BY {n} is not a select item position"))),
                _ => Ok(g.to_string()),
            },
            ast::Expr::Identifier(id) => Ok(items
                .iter()
                .find(|(_, a)| a.is_some_and(|a| a.eq_ignore_ascii_case(&id.value)))
                .map_or_else(|| g.to_string(), |(e, _)| e.to_string())),
            _ => Ok(g.to_string()),
        })
        .collect::<Result<_, _>>()?;
    let mut aggs = Vec::new();
    let mut partials: Vec<String> = Vec::new();
    let mut layout = Vec::new();
    let mut output = Vec::new();
    for (expr, _) in &items {
        if let Some((agg, arg)) = aggregate_call(expr)? {
            let needed: Vec<String> = match (agg, arg.as_deref()) {
                (ViewAgg::Count, None) => vec!["COUNT(*)".into()],
                (ViewAgg::Count, Some(x)) => vec![format!("COUNT({x})")],
                (ViewAgg::Sum | ViewAgg::Avg, Some(x)) => vec![format!("COUNT({x})"), format!("SUM({x})")],
                (ViewAgg::Stddev, Some(x)) => {
                    vec![format!("COUNT({x})"), format!("SUM({x})"), format!("SUM(POWER({x}, 2))")]
                }
                (ViewAgg::Min, Some(x)) => vec![format!("MIN({x})")],
                (ViewAgg::Max, Some(x)) => vec![format!("MAX({x})")],
                (_, None) => return Err(PlanError::Type(format!("{expr} needs an argument"))),
            };
            for p in needed {
                let slot = partials.iter().position(|q| *q == p).unwrap_or_else(|| {
                    partials.push(p);
                    partials.len() - 1
                });
                layout.push(slot);
            }
            output.push(OutputColumn::Agg(aggs.len()));
            aggs.push(agg);
        } else {
            let text = expr.to_string();
            let i = keys.iter().position(|k| *k == text).ok_or_else(|| {
                PlanError::Unsupported(format!(
                    "{text} in a materialized view is neither a GROUP BY key nor an aggregate (expressions over aggregates are not supported in views yet)"
                ))
            })?;
            output.push(OutputColumn::Key(i));
        }
    }
    let key_list: Vec<String> = keys.iter().enumerate().map(|(i, k)| format!("{k} AS __k{i}")).collect();
    let select_list = key_list
        .into_iter()
        .chain(partials.iter().enumerate().map(|(i, p)| format!("{p} AS __p{i}")))
        .collect::<Vec<_>>()
        .join(", ");
    let from = select.from.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let mut contribution = format!("SELECT {select_list} FROM {from}");
    if let Some(w) = &select.selection {
        contribution += &format!(" WHERE {w}");
    }
    if !keys.is_empty() {
        contribution += &format!(" GROUP BY {}", keys.join(", "));
    }
    Ok(ViewPlan {
        catalog,
        kind: ViewKind::Aggregate { aggs, output },
        contribution_sql: contribution,
        keys: keys.len(),
        schema,
        other: None,
        layout,
    })
}

/// `SELECT items FROM c [WHERE p] ORDER BY keys LIMIT k`: a partition contributes its own
/// top k with the sort key values appended.
fn top_k(
    plan: &Plan,
    query: &ast::Query,
    select: &ast::Select,
    catalog: String,
    schema: SchemaRef,
) -> Result<ViewPlan, PlanError> {
    let Plan::Project { input, .. } = plan else { return Err(unsupported("this ORDER BY/LIMIT form")) };
    let Plan::Sort { spec, input } = input.as_ref() else {
        return Err(unsupported("LIMIT without ORDER BY (the first rows in catalog order change with every release)"));
    };
    let Some(k) = spec.limit else { return Err(unsupported("ORDER BY without LIMIT")) };
    if contains_aggregate(input) {
        return Err(unsupported("ORDER BY … LIMIT over a GROUP BY"));
    }
    let Some(order) = &query.order_by else { return Err(unsupported("TOP without ORDER BY")) };
    let ast::OrderByKind::Expressions(exprs) = &order.kind else { return Err(unsupported("ORDER BY ALL")) };
    let items: Vec<(String, Option<String>)> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Ok((e.to_string(), None)),
            SelectItem::ExprWithAlias { expr, alias } => Ok((expr.to_string(), Some(alias.value.clone()))),
            _ => Err(unsupported("* with ORDER BY … LIMIT (name the columns)")),
        })
        .collect::<Result<_, _>>()?;
    // Sort keys as SQL over the catalog (aliases and ordinals resolved to their expressions).
    let key_sql: Vec<String> = exprs
        .iter()
        .map(|o| match &o.expr {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => n
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i.wrapping_sub(1)))
                    .map(|(e, _)| e.clone())
                    .ok_or_else(|| PlanError::Type(format!("ORDER BY {n} is not a select item position"))),
                _ => Ok(o.expr.to_string()),
            },
            ast::Expr::Identifier(id) => Ok(items
                .iter()
                .find(|(_, a)| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&id.value)))
                .map_or_else(|| o.expr.to_string(), |(e, _)| e.clone())),
            e => Ok(e.to_string()),
        })
        .collect::<Result<_, _>>()?;
    let select_list: Vec<String> = select
        .projection
        .iter()
        .map(ToString::to_string)
        .chain(key_sql.iter().enumerate().map(|(i, k)| format!("{k} AS __s{i}")))
        .collect();
    let from = select.from.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let mut contribution = format!("SELECT {} FROM {from}", select_list.join(", "));
    if let Some(w) = &select.selection {
        contribution += &format!(" WHERE {w}");
    }
    contribution += &format!(" {order} LIMIT {k}");
    let keys = spec.keys.iter().map(|s| (s.descending, s.nulls_first)).collect();
    let width = schema.fields().len();
    Ok(ViewPlan {
        catalog,
        kind: ViewKind::TopK { k, width, keys },
        contribution_sql: contribution,
        keys: 0,
        schema,
        other: None,
        layout: vec![],
    })
}

fn contains_aggregate(plan: &Plan) -> bool {
    match plan {
        Plan::Aggregate { .. } => true,
        Plan::Scan(_) | Plan::Workers | Plan::Crossmatch { .. } | Plan::HatsWrite { .. } => false,
        Plan::Filter { input, .. }
        | Plan::Project { input, .. }
        | Plan::Sort { input, .. }
        | Plan::Limit { input, .. } => contains_aggregate(input),
    }
}

/// `COUNT(*)`, `COUNT(x)`, `SUM(x)`, … at the top of a select item: the aggregate and its
/// argument's SQL text.
fn aggregate_call(e: &ast::Expr) -> Result<Option<(ViewAgg, Option<String>)>, PlanError> {
    let ast::Expr::Function(f) = e else { return Ok(None) };
    let name = f.name.to_string().to_uppercase();
    let agg = match name.as_str() {
        "COUNT" => ViewAgg::Count,
        "SUM" => ViewAgg::Sum,
        "AVG" => ViewAgg::Avg,
        "STDDEV" | "STDDEV_SAMP" => ViewAgg::Stddev,
        "MIN" => ViewAgg::Min,
        "MAX" => ViewAgg::Max,
        _ => return Ok(None),
    };
    let FunctionArguments::List(list) = &f.args else { return Ok(Some((agg, None))) };
    if list.duplicate_treatment.is_some() {
        return Err(unsupported(&format!("{name}(DISTINCT …)")));
    }
    let arg = match list.args.as_slice() {
        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard)] | [] => None,
        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a))] => Some(a.to_string()),
        _ => return Err(PlanError::Type(format!("{name} takes one argument"))),
    };
    Ok(Some((agg, arg)))
}
