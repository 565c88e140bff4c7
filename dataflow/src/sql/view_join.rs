//! Planning a join view: `SELECT a.x, b.y AS z FROM A a JOIN B b ON a.k = b.k [AND …]
//! [WHERE conditions on one side each]`. Each side's files contribute (join key, the columns
//! the view shows from that side), filtered by that side's conditions; the view's dataflow
//! joins the two arranged inputs on the key.

use arrow_schema::{Field, Schema};
use sqlparser::ast::{self, BinaryOperator, JoinConstraint, JoinOperator, SelectItem, TableFactor};
use std::sync::Arc;

use super::view::{JoinSide, ViewPlan};
use crate::error::PlanError;
use crate::registry::CatalogSet;
use crate::view::ViewKind;

fn unsupported(what: &str) -> PlanError {
    PlanError::Unsupported(format!(
        "{what} in a join view (supported: SELECT columns FROM a JOIN b ON a.k = b.k [AND …] [WHERE conditions on one side each])"
    ))
}

struct Side {
    catalog: String,
    table_sql: String,
    qualifiers: Vec<String>,
    schema: arrow_schema::SchemaRef,
    keys: Vec<String>,
    columns: Vec<String>,
    conditions: Vec<String>,
}

impl Side {
    /// The column `name` of this side if `qualifier` (when given) names it.
    fn owns(&self, qualifier: Option<&str>, name: &str) -> bool {
        qualifier.is_none_or(|q| self.qualifiers.iter().any(|s| s.eq_ignore_ascii_case(q)))
            && self.schema.field_with_name(name).is_ok()
    }
}

/// Which side a column reference belongs to, and its column name.
fn column(e: &ast::Expr, sides: &[Side; 2]) -> Result<Option<(usize, String)>, PlanError> {
    let (qualifier, name) = match e {
        ast::Expr::Identifier(id) => (None, id.value.clone()),
        ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
            (Some(parts[0].value.as_str()), parts[1].value.clone())
        }
        _ => return Ok(None),
    };
    let owners: Vec<usize> = (0..2).filter(|&s| sides[s].owns(qualifier, &name)).collect();
    match owners.as_slice() {
        [s] => Ok(Some((*s, name))),
        [] => Err(PlanError::Unsupported(format!("column {e} is in neither catalog of the join"))),
        _ => Err(PlanError::Unsupported(format!("column {e} is in both catalogs of the join: qualify it"))),
    }
}

/// The sides a condition refers to.
fn sides_of(e: &ast::Expr, sides: &[Side; 2], out: &mut Vec<usize>) -> Result<(), PlanError> {
    if let Some((s, _)) = column(e, sides)? {
        out.push(s);
        return Ok(());
    }
    match e {
        ast::Expr::BinaryOp { left, right, .. } => {
            sides_of(left, sides, out)?;
            sides_of(right, sides, out)
        }
        ast::Expr::UnaryOp { expr, .. }
        | ast::Expr::Nested(expr)
        | ast::Expr::IsNull(expr)
        | ast::Expr::IsNotNull(expr)
        | ast::Expr::IsNotTrue(expr)
        | ast::Expr::IsTrue(expr) => sides_of(expr, sides, out),
        ast::Expr::Between { expr, low, high, .. } => {
            for x in [expr, low, high] {
                sides_of(x, sides, out)?;
            }
            Ok(())
        }
        ast::Expr::In { expr, target: ast::InTarget::List(list), .. } => {
            sides_of(expr, sides, out)?;
            list.iter().try_for_each(|x| sides_of(x, sides, out))
        }
        ast::Expr::Function(f) => match &f.args {
            ast::FunctionArguments::List(l) => l.args.iter().try_for_each(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => sides_of(x, sides, out),
                _ => Ok(()),
            }),
            _ => Ok(()),
        },
        ast::Expr::Value(_) => Ok(()),
        other => Err(unsupported(&format!("the condition {other}"))),
    }
}

fn conjuncts(e: &ast::Expr, out: &mut Vec<ast::Expr>) {
    match e {
        ast::Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        ast::Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other.clone()),
    }
}

/// Plans a join view (the FROM clause has one JOIN).
pub(super) fn plan_join(
    query: &ast::Query,
    select: &ast::Select,
    catalogs: &CatalogSet,
) -> Result<ViewPlan, PlanError> {
    if query.order_by.is_some() || query.limit_clause.is_some() || select.top.is_some() {
        return Err(unsupported("ORDER BY or LIMIT"));
    }
    if select.distinct.is_some() || select.having.is_some() {
        return Err(unsupported("DISTINCT or HAVING"));
    }
    if !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty()) {
        return Err(unsupported("GROUP BY"));
    }
    let [from] = select.from.as_slice() else { return Err(unsupported("several FROM items")) };
    let [join] = from.joins.as_slice() else { return Err(unsupported("more than one JOIN")) };
    let on = match &join.join_operator {
        JoinOperator::Inner(JoinConstraint::On(on)) | JoinOperator::Join(JoinConstraint::On(on)) => on,
        _ => return Err(unsupported("a join other than [INNER] JOIN … ON")),
    };
    let side = |relation: &TableFactor| -> Result<Side, PlanError> {
        let TableFactor::Table { name, alias, .. } = relation else {
            return Err(unsupported("a FROM item that is not a catalog"));
        };
        let catalog = catalogs.resolve(name.to_string().trim_matches('"'))?;
        let mut qualifiers = vec![catalog.name.clone(), name.to_string()];
        qualifiers.extend(alias.as_ref().map(|a| a.name.value.clone()));
        Ok(Side {
            catalog: catalog.name.clone(),
            table_sql: relation.to_string(),
            qualifiers,
            schema: catalog.schema.clone(),
            keys: vec![],
            columns: vec![],
            conditions: vec![],
        })
    };
    let mut sides = [side(&from.relation)?, side(&join.relation)?];
    if sides[0].catalog == sides[1].catalog {
        return Err(unsupported("a catalog joined with itself"));
    }
    // ON: equalities between one column of each side.
    let mut ons = Vec::new();
    conjuncts(on, &mut ons);
    for c in &ons {
        let ast::Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = c else {
            return Err(unsupported(&format!("the join condition {c} (only a.k = b.k)")));
        };
        match (column(left, &sides)?, column(right, &sides)?) {
            (Some((l, lc)), Some((r, rc))) if l != r => {
                let (lt, rt) = (
                    sides[l].schema.field_with_name(&lc).map(|f| f.data_type().clone()),
                    sides[r].schema.field_with_name(&rc).map(|f| f.data_type().clone()),
                );
                if let (Ok(lt), Ok(rt)) = (&lt, &rt)
                    && lt != rt
                    && !(lt.is_integer() && rt.is_integer())
                {
                    return Err(PlanError::Type(format!("the join compares {left} ({lt}) with {right} ({rt})")));
                }
                sides[l].keys.push(left.to_string());
                sides[r].keys.push(right.to_string());
            }
            _ => return Err(unsupported(&format!("the join condition {c} (only a.k = b.k)"))),
        }
    }
    // WHERE: each condition goes to the side it reads.
    if let Some(w) = &select.selection {
        let mut ws = Vec::new();
        conjuncts(w, &mut ws);
        for c in ws {
            let mut used = Vec::new();
            sides_of(&c, &sides, &mut used)?;
            used.sort_unstable();
            used.dedup();
            match used.as_slice() {
                [s] => sides[*s].conditions.push(c.to_string()),
                [] => return Err(unsupported(&format!("the constant condition {c}"))),
                _ => return Err(unsupported(&format!("the condition {c} on both catalogs"))),
            }
        }
    }
    // SELECT: columns of either side.
    let mut output = Vec::new();
    let mut fields = Vec::new();
    for item in &select.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            _ => return Err(unsupported("*")),
        };
        let Some((s, name)) = column(expr, &sides)? else {
            return Err(unsupported(&format!("the expression {expr} (select columns)")));
        };
        let field = sides[s]
            .schema
            .field_with_name(&name)
            .map_err(|_| PlanError::Unsupported(format!("column {expr}")))?
            .clone();
        let text = expr.to_string();
        let index = match sides[s].columns.iter().position(|c| *c == text) {
            Some(i) => i,
            None => {
                sides[s].columns.push(text);
                sides[s].columns.len() - 1
            }
        };
        output.push((s, index));
        fields.push(Field::new(alias.unwrap_or(name), field.data_type().clone(), true));
    }
    let contribution = |s: &Side| {
        let list: Vec<String> = s
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} AS __j{i}"))
            .chain(s.columns.iter().enumerate().map(|(i, c)| format!("{c} AS __c{i}")))
            .collect();
        let mut sql = format!("SELECT {} FROM {}", list.join(", "), s.table_sql);
        if !s.conditions.is_empty() {
            sql += &format!(" WHERE {}", s.conditions.join(" AND "));
        }
        sql
    };
    let keys = ons.len();
    let other = JoinSide { catalog: sides[1].catalog.clone(), contribution_sql: contribution(&sides[1]), keys };
    Ok(ViewPlan {
        catalog: sides[0].catalog.clone(),
        kind: ViewKind::Join { output },
        contribution_sql: contribution(&sides[0]),
        keys,
        schema: Arc::new(Schema::new(fields)),
        other: Some(other),
        layout: vec![],
    })
}
