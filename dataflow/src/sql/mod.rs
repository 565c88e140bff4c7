//! SQL (the ADQL dialect astronomers write for TAP services) to plans. Parsing and
//! planning happen off the workers; the result is a [`Plan`] every worker installs.

mod bounds;
mod convert;
mod density;
pub mod view;
mod view_join;
mod xmatch;

use std::sync::Arc;

use arrow_schema::{Field, Schema};
use sqlparser::ast::{self, GroupByExpr, LimitClause, OrderByKind, SelectItem, SetExpr, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::error::PlanError;
use crate::plan::{AggregateSpec, Expr, Literal, Plan, ProjectSpec, PruningSummary, ScanSpec, SortKey, SortSpec};
use crate::registry::CatalogSet;
use convert::Scope;

/// A planned statement.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// `EXPLAIN` was asked for: print the plan instead of running it.
    pub explain: bool,
}

/// Planner knobs.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Rows per scanned batch.
    pub batch_rows: usize,
    /// Most rows per partition (a run of row groups of one file handed to one worker).
    pub partition_rows: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { batch_rows: 16_384, partition_rows: 1 << 20 }
    }
}

/// Parses and plans one statement.
pub fn plan_sql(sql: &str, catalogs: &CatalogSet, options: &PlanOptions) -> Result<Planned, PlanError> {
    let trimmed = sql.trim_start();
    let (explain, body) = match trimmed.get(..8) {
        Some(head) if head.eq_ignore_ascii_case("explain ") || head.eq_ignore_ascii_case("explain\n") => {
            (true, &trimmed[8..])
        }
        _ => (false, sql),
    };
    let mut statements = Parser::parse_sql(&GenericDialect {}, body).map_err(|e| {
        let message = e.to_string().trim_start_matches("sql parser error: ").to_string();
        if message.contains("Line:") {
            PlanError::Syntax(message)
        } else {
            // sqlparser gives no position at the end of the input: say where that is.
            let line = body.lines().count().max(1);
            let column = body.lines().last().map_or(0, |l| l.chars().count()) + 1;
            PlanError::Syntax(format!("{message} at Line: {line}, Column: {column} (end of input)"))
        }
    })?;
    if statements.len() != 1 {
        return Err(PlanError::Syntax(format!("expected one statement, found {}", statements.len())));
    }
    let Statement::Query(query) = statements.remove(0) else {
        return Err(PlanError::Unsupported("only SELECT (and EXPLAIN SELECT) statements".into()));
    };
    let plan = plan_query(&query, catalogs, options)?;
    Ok(Planned { plan, explain })
}

fn plan_query(query: &ast::Query, catalogs: &CatalogSet, options: &PlanOptions) -> Result<Plan, PlanError> {
    if query.with.is_some() {
        return Err(PlanError::Unsupported("WITH".into()));
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(PlanError::Unsupported("only plain SELECT (no UNION, VALUES, ...)".into()));
    };
    // FROM: exactly one catalog.
    let [from] = select.from.as_slice() else {
        return Err(PlanError::Unsupported("exactly one catalog in FROM (joins come later)".into()));
    };
    let mut join = xmatch::join(from, catalogs)?;
    let ast::TableFactor::Table { name, alias, args, .. } = &from.relation else {
        return Err(PlanError::Unsupported("FROM must name a catalog".into()));
    };
    let relation = name.0.last().map(|p| p.to_string()).unwrap_or_default();
    // A catalog, a crossmatch of two (`XMATCH(a, b, radius)` or a join on a distance), or a
    // density table (`DENSITY(a, order)`).
    let source = match (args, join.as_ref()) {
        (_, Some(j)) => Source::Xmatch(j.xmatch.clone()),
        (Some(args), None) => match xmatch::parse(&relation, args, catalogs)? {
            Some(x) => Source::Xmatch(x),
            None => Source::Derived(density::parse(&relation, args, catalogs, options)?.ok_or_else(|| {
                PlanError::Unsupported(format!("table function {relation} (there are XMATCH and DENSITY)"))
            })?),
        },
        (None, None) => Source::Catalog(catalogs.resolve(relation.trim_matches('"'))?.clone()),
    };
    let (schema, mut qualifiers, description) = match &source {
        Source::Catalog(c) => (c.schema.clone(), vec![c.name.clone()], format!("catalog \"{}\"", c.name)),
        Source::Xmatch(x) => (x.schema.clone(), vec![], "XMATCH".to_string()),
        Source::Derived(p) => (p.schema(), vec![], relation.to_uppercase()),
    };
    let sides = match (&join, &source) {
        (Some(j), Source::Xmatch(x)) => (0..2).map(|s| (j.qualifiers[s].clone(), x.columns_of(s))).collect(),
        _ => {
            if let Some(a) = alias {
                qualifiers.push(a.name.value.clone());
            }
            Vec::new()
        }
    };
    let mut scope = Scope { schema: &schema, qualifiers, description, aggs: None, sides };
    // The join form: ON gives the radius and the positions; its other conditions join WHERE's.
    let mut on_rest = None;
    let source = match (join.as_mut(), source) {
        (Some(j), Source::Xmatch(_)) => {
            let on = scope.convert(j.on)?;
            on_rest = j.take_distance(on)?;
            Source::Xmatch(j.xmatch.clone())
        }
        (_, other) => other,
    };

    let predicate = select.selection.as_ref().map(|w| scope.convert(w)).transpose()?;
    let predicate = match (predicate, on_rest) {
        (Some(a), Some(b)) => Some(Expr::binary(crate::plan::BinaryOp::And, b, a)),
        (a, b) => a.or(b),
    };
    if let Some(p) = &predicate {
        let t = p.data_type(&schema)?;
        if t != arrow_schema::DataType::Boolean {
            return Err(PlanError::Type(format!("WHERE needs a boolean condition, {p} is {t}")));
        }
    }

    // SELECT list (aggregates allowed).
    scope.aggs = Some(Vec::new());
    let mut items: Vec<(Expr, String)> = Vec::new();
    for item in &select.projection {
        match item {
            // `*` is the catalog's own columns (not the virtual file column).
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => items.extend(
                schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !matches!(&source, Source::Catalog(c) if c.is_file_column(*i)))
                    .map(|(_, f)| (Expr::col(f.name()), f.name().clone())),
            ),
            SelectItem::UnnamedExpr(e) => {
                let converted = scope.convert(e)?;
                let name = match &converted {
                    Expr::Column(c) if !c.starts_with("__agg") => c.clone(),
                    _ => e.to_string(),
                };
                items.push((converted, name));
            }
            SelectItem::ExprWithAlias { expr, alias } => items.push((scope.convert(expr)?, alias.value.clone())),
            other => return Err(PlanError::Unsupported(format!("select item {other}"))),
        }
    }
    let alias_of = |name: &str| items.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(e, _)| e.clone());

    // GROUP BY keys (names may refer to select aliases).
    let mut keys: Vec<Expr> = Vec::new();
    match &select.group_by {
        GroupByExpr::All(_) => return Err(PlanError::Unsupported("GROUP BY ALL".into())),
        GroupByExpr::Expressions(exprs, _) => {
            for e in exprs {
                let k = match e {
                    ast::Expr::Identifier(id) if schema.field_with_name(&id.value).is_err() => {
                        match alias_of(&id.value) {
                            Some(x) => x,
                            None => scope.convert(e)?,
                        }
                    }
                    ast::Expr::Value(v) => ordinal(&v.value, &items)?.0.clone(),
                    _ => scope.convert(e)?,
                };
                if k.to_string().contains("__agg") {
                    return Err(PlanError::Type(format!("GROUP BY {e} uses an aggregate")));
                }
                keys.push(k);
            }
        }
    }
    let distinct = match &select.distinct {
        None => false,
        Some(ast::Distinct::Distinct) | Some(ast::Distinct::All) => {
            matches!(select.distinct, Some(ast::Distinct::Distinct))
        }
        Some(other) => return Err(PlanError::Unsupported(format!("{other}"))),
    };
    if distinct {
        keys.extend(items.iter().map(|(e, _)| e.clone()));
    }
    let having = select.having.as_ref().map(|h| scope.convert(h)).transpose()?;

    // ORDER BY: select aliases, ordinals, or expressions.
    let mut sort_keys = Vec::new();
    if let Some(order) = &query.order_by {
        let OrderByKind::Expressions(exprs) = &order.kind else {
            return Err(PlanError::Unsupported("ORDER BY ALL".into()));
        };
        for o in exprs {
            let expr = match &o.expr {
                ast::Expr::Identifier(id)
                    if schema.field_with_name(&id.value).is_err() || alias_of(&id.value).is_some() =>
                {
                    match alias_of(&id.value) {
                        Some(x) => x,
                        None => scope.convert(&o.expr)?,
                    }
                }
                ast::Expr::Value(v) => ordinal(&v.value, &items)?.0.clone(),
                e => scope.convert(e)?,
            };
            let descending = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            // PostgreSQL's default: NULLs sort as if larger than any value.
            sort_keys.push(SortKey { expr, descending, nulls_first: o.options.nulls_first.unwrap_or(descending) });
        }
    }
    let limit = limit_of(query, select)?;
    let aggs = scope.aggs.take().unwrap_or_default();
    let aggregate = !aggs.is_empty() || !keys.is_empty() || having.is_some();

    // Columns the scan must read: those used after the scan, then predicate-only ones.
    let mut needed = Vec::new();
    for (e, _) in &items {
        e.columns(&mut needed);
    }
    for k in &keys {
        k.columns(&mut needed);
    }
    for a in &aggs {
        if let Some(arg) = &a.arg {
            arg.columns(&mut needed);
        }
    }
    for s in &sort_keys {
        s.expr.columns(&mut needed);
    }
    if let Some(h) = &having {
        h.columns(&mut needed);
    }
    needed.retain(|c| schema.field_with_name(c).is_ok());
    let output_columns = needed.len();
    if let Some(p) = &predicate {
        p.columns(&mut needed);
    }
    let catalog = match source {
        Source::Catalog(c) => c,
        Source::Derived(plan) => {
            let plan = match predicate {
                Some(predicate) => Plan::Filter { input: Box::new(plan), predicate },
                None => plan,
            };
            return finish(plan, items, keys, aggs, having, sort_keys, limit, aggregate);
        }
        Source::Xmatch(x) => {
            // Conditions on one side go into its scan where that keeps the answer; the others
            // apply to the matched pairs.
            let (matched, predicate) = x.plan(&needed, predicate, options)?;
            let plan = match predicate {
                Some(predicate) => Plan::Filter { input: Box::new(matched), predicate },
                None => matched,
            };
            return finish(plan, items, keys, aggs, having, sort_keys, limit, aggregate);
        }
    };
    let column_indices: Vec<usize> = needed.iter().map(|c| schema.index_of(c).expect("resolved")).collect();
    let scan_schema = Arc::new(Schema::new(
        column_indices[..output_columns].iter().map(|&i| schema.field(i).clone()).collect::<Vec<Field>>(),
    ));

    let bounds = predicate.as_ref().map(|p| bounds::bounds_of(p, &schema)).unwrap_or_default();
    let regions = sky_regions(&catalog, predicate.as_ref());
    let (partitions, report) = catalog.partitions_in(&bounds, &regions, options.partition_rows)?;
    let scan_limit = if !aggregate && sort_keys.is_empty() { limit } else { None };
    let plan = Plan::Scan(ScanSpec {
        catalog: catalog.name.clone(),
        columns: needed,
        column_indices,
        output_columns,
        predicate,
        bounds,
        partitions,
        limit: scan_limit,
        batch_rows: options.batch_rows,
        pruning: PruningSummary::from(&report),
        row_ids: false,
        schema: scan_schema,
    });
    finish(plan, items, keys, aggs, having, sort_keys, limit, aggregate)
}

/// The sky regions a predicate confines a HATS catalog's positions to (none for others).
pub(crate) fn sky_regions(
    catalog: &starflow_catalogs::ParquetCatalog,
    predicate: Option<&Expr>,
) -> Vec<starflow_catalogs::SkyRegion> {
    match (&catalog.hats, predicate) {
        (Some(h), Some(p)) => bounds::regions_of(p, &h.ra_column, &h.dec_column),
        _ => vec![],
    }
}

/// What `FROM` reads.
enum Source {
    Catalog(Arc<starflow_catalogs::ParquetCatalog>),
    Xmatch(xmatch::Xmatch),
    /// A table computed by a plan of its own (`DENSITY`).
    Derived(Plan),
}

/// The plan above the source: aggregate (and `HAVING`), sort or limit, projection.
#[allow(clippy::too_many_arguments)]
fn finish(
    mut plan: Plan,
    mut items: Vec<(Expr, String)>,
    keys: Vec<Expr>,
    aggs: Vec<crate::plan::AggCall>,
    having: Option<Expr>,
    mut sort_keys: Vec<SortKey>,
    limit: Option<u64>,
    aggregate: bool,
) -> Result<Plan, PlanError> {
    if aggregate {
        let input_schema = plan.schema();
        let named_keys: Vec<(Expr, String)> =
            keys.iter().enumerate().map(|(i, k)| (k.clone(), format!("__key{i}"))).collect();
        let spec = AggregateSpec::new(named_keys.clone(), aggs, &input_schema)?;
        let agg_schema = spec.schema.clone();
        plan = Plan::Aggregate { input: Box::new(plan), spec };
        // Rewrite post-aggregate expressions over key and aggregate columns.
        let rewrite = |e: &Expr, what: &str| -> Result<Expr, PlanError> {
            let r = replace_keys(e, &named_keys);
            let mut cols = Vec::new();
            r.columns(&mut cols);
            if let Some(bad) = cols.iter().find(|c| !c.starts_with("__key") && !c.starts_with("__agg")) {
                return Err(PlanError::Type(format!(
                    "column \"{bad}\" in {what} must appear in GROUP BY or be used in an aggregate function"
                )));
            }
            r.data_type(&agg_schema)?;
            Ok(r)
        };
        for (e, _) in items.iter_mut() {
            *e = rewrite(e, "SELECT")?;
        }
        if let Some(h) = &having {
            let predicate = rewrite(h, "HAVING")?;
            plan = Plan::Filter { input: Box::new(plan), predicate };
        }
        for s in sort_keys.iter_mut() {
            s.expr = rewrite(&s.expr, "ORDER BY")?;
        }
    }
    let pre_project = plan.schema();
    for s in &sort_keys {
        s.expr.data_type(&pre_project)?;
    }
    if !sort_keys.is_empty() {
        plan = Plan::Sort { input: Box::new(plan), spec: SortSpec { keys: sort_keys, limit } };
    } else if let Some(n) = limit {
        plan = Plan::Limit { input: Box::new(plan), n };
    }
    let mut fields = Vec::new();
    for (e, name) in &items {
        fields.push(Field::new(name, e.data_type(&pre_project)?, true));
    }
    let spec = ProjectSpec { columns: items, schema: Arc::new(Schema::new(fields)) };
    Ok(Plan::Project { input: Box::new(plan), spec })
}

/// Replaces sub-expressions equal to a group key by the key's column.
fn replace_keys(e: &Expr, keys: &[(Expr, String)]) -> Expr {
    if let Some((_, name)) = keys.iter().find(|(k, _)| k == e) {
        return Expr::Column(name.clone());
    }
    match e {
        Expr::Binary { op, left, right } => Expr::binary(*op, replace_keys(left, keys), replace_keys(right, keys)),
        Expr::Not(x) => Expr::Not(Box::new(replace_keys(x, keys))),
        Expr::Negate(x) => Expr::Negate(Box::new(replace_keys(x, keys))),
        Expr::IsNull { expr, negated } => Expr::IsNull { expr: Box::new(replace_keys(expr, keys)), negated: *negated },
        Expr::InList { expr, list, negated } => {
            Expr::InList { expr: Box::new(replace_keys(expr, keys)), list: list.clone(), negated: *negated }
        }
        Expr::Call { func, args } => {
            Expr::Call { func: *func, args: args.iter().map(|a| replace_keys(a, keys)).collect() }
        }
        Expr::Column(_) | Expr::Literal(_) => e.clone(),
    }
}

/// `ORDER BY 2` / `GROUP BY 1`: the select item at a 1-based position.
fn ordinal<'a>(v: &ast::Value, items: &'a [(Expr, String)]) -> Result<&'a (Expr, String), PlanError> {
    match convert::literal(v)? {
        Literal::Int(i) if i >= 1 && (i as usize) <= items.len() => Ok(&items[i as usize - 1]),
        other => Err(PlanError::Type(format!("position {other} is not in the select list (1..={})", items.len()))),
    }
}

fn limit_of(query: &ast::Query, select: &ast::Select) -> Result<Option<u64>, PlanError> {
    let as_count = |e: &ast::Expr| -> Result<u64, PlanError> {
        match e {
            ast::Expr::Value(v) => match convert::literal(&v.value)? {
                Literal::Int(i) if i >= 0 => Ok(i as u64),
                other => Err(PlanError::Type(format!("LIMIT needs a non-negative integer, got {other}"))),
            },
            other => Err(PlanError::Type(format!("LIMIT needs a non-negative integer, got {other}"))),
        }
    };
    let mut limit = None;
    if let Some(top) = &select.top {
        if top.percent || top.with_ties {
            return Err(PlanError::Unsupported("TOP ... PERCENT / WITH TIES".into()));
        }
        limit = match &top.quantity {
            Some(ast::TopQuantity::Constant(n)) => Some(*n),
            Some(ast::TopQuantity::Expr(e)) => Some(as_count(e)?),
            None => None,
        };
    }
    match &query.limit_clause {
        None => {}
        Some(LimitClause::LimitOffset { limit: l, offset, .. }) => {
            if offset.is_some() {
                return Err(PlanError::Unsupported("OFFSET".into()));
            }
            if let Some(l) = l {
                let n = as_count(l)?;
                limit = Some(limit.map_or(n, |t: u64| t.min(n)));
            }
        }
        Some(LimitClause::OffsetCommaLimit { .. }) => return Err(PlanError::Unsupported("OFFSET".into())),
    }
    Ok(limit)
}
