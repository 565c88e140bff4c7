//! `EXPLAIN`: one line per operator, inputs indented below, with pruning and exchanges.

use std::fmt::Write;

use crate::plan::{AggFunc, Plan, SortKey};

/// Renders the plan as an indented tree, root first. `workers` is the total worker count.
pub fn explain(plan: &Plan, workers: usize) -> String {
    let mut out = String::new();
    if !plan.is_gathered() {
        let _ = writeln!(out, "Gather → worker 0 (exchange: all workers → worker 0)");
        node(plan, 1, workers, &mut out);
    } else {
        node(plan, 0, workers, &mut out);
    }
    out
}

/// One line naming a plan node (its first `EXPLAIN` line).
pub fn node_label(plan: &Plan, workers: usize) -> String {
    let mut out = String::new();
    node(plan, 0, workers, &mut out);
    out.lines().next().unwrap_or_default().trim().to_string()
}

fn node(plan: &Plan, depth: usize, workers: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match plan {
        Plan::Scan(s) => {
            let p = &s.pruning;
            let _ = writeln!(out, "{pad}Scan {} on {workers} worker(s)", s.catalog);
            let cols =
                if s.columns.is_empty() { "(none: row counts from footers)".to_string() } else { s.columns.join(", ") };
            let _ = writeln!(out, "{pad}  columns read: {cols}");
            if s.output_columns < s.columns.len() {
                let _ = writeln!(
                    out,
                    "{pad}  columns emitted: {}",
                    if s.output_columns == 0 {
                        "(none: row counts only)".to_string()
                    } else {
                        s.columns[..s.output_columns].join(", ")
                    }
                );
            }
            match &s.predicate {
                Some(e) => {
                    let _ = writeln!(out, "{pad}  predicate (applied while reading): {e}");
                }
                None => {
                    let _ = writeln!(out, "{pad}  predicate: none");
                }
            }
            if s.bounds.is_empty() {
                let _ = writeln!(out, "{pad}  pruning: no column bounds");
            } else {
                let bounds: Vec<String> = s
                    .bounds
                    .iter()
                    .map(|b| {
                        let lo = b
                            .lower
                            .map(|(v, inc)| format!("{v} {} ", if inc { "<=" } else { "<" }))
                            .unwrap_or_default();
                        let hi = b
                            .upper
                            .map(|(v, inc)| format!(" {} {v}", if inc { "<=" } else { "<" }))
                            .unwrap_or_default();
                        format!("{lo}{}{hi}", b.column)
                    })
                    .collect();
                let _ = writeln!(out, "{pad}  pruning bounds: {}", bounds.join(", "));
            }
            if p.lazy_files > 0 {
                let _ = writeln!(
                    out,
                    "{pad}  HEALPix partitions: {} of {} kept ({} pruned by sky region); row groups pruned by each worker from its partitions' footers",
                    p.files_kept,
                    p.files_total,
                    p.files_total - p.files_kept,
                );
            } else {
                let _ = writeln!(
                    out,
                    "{pad}  files: {} of {} kept ({} pruned); row groups: {} of {} kept ({} pruned); {} rows to read",
                    p.files_kept,
                    p.files_total,
                    p.files_total - p.files_kept,
                    p.row_groups_kept,
                    p.row_groups_total,
                    p.row_groups_total - p.row_groups_kept,
                    p.rows_kept
                );
            }
            if let Some(n) = s.limit {
                let _ = writeln!(out, "{pad}  early stop: each worker stops after {n} matching rows");
            }
        }
        Plan::Filter { input, predicate } => {
            let _ = writeln!(out, "{pad}Filter {predicate}");
            node(input, depth + 1, workers, out);
        }
        Plan::Project { input, spec } => {
            let cols: Vec<String> = spec
                .columns
                .iter()
                .map(|(e, n)| {
                    if matches!(e, crate::plan::Expr::Column(c) if c == n) { n.clone() } else { format!("{e} AS {n}") }
                })
                .collect();
            let _ = writeln!(out, "{pad}Project {}", cols.join(", "));
            node(input, depth + 1, workers, out);
        }
        Plan::Aggregate { input, spec } => {
            let keys: Vec<&str> = spec.keys.iter().map(|(_, n)| n.as_str()).collect();
            let aggs: Vec<String> = spec
                .aggs
                .iter()
                .map(|a| {
                    let arg = a.arg.as_ref().map_or("*".to_string(), ToString::to_string);
                    let f = match a.func {
                        AggFunc::CountStar | AggFunc::Count => "COUNT",
                        AggFunc::Sum => "SUM",
                        AggFunc::Avg => "AVG",
                        AggFunc::Min => "MIN",
                        AggFunc::Max => "MAX",
                        AggFunc::Stddev => "STDDEV",
                    };
                    format!("{f}({arg}) AS {}", a.name)
                })
                .collect();
            if keys.is_empty() {
                let _ = writeln!(out, "{pad}Aggregate final on worker 0: {}", aggs.join(", "));
                let _ = writeln!(out, "{pad}  exchange: partial states → worker 0");
            } else {
                let _ = writeln!(out, "{pad}Aggregate final by [{}]: {}", keys.join(", "), aggs.join(", "));
                let _ =
                    writeln!(out, "{pad}  exchange: partial states by hash of [{}] across workers", keys.join(", "));
            }
            let _ = writeln!(out, "{pad}  Aggregate partial (per worker)");
            node(input, depth + 2, workers, out);
        }
        Plan::Sort { input, spec } => {
            let keys: Vec<String> = spec.keys.iter().map(sort_key).collect();
            match spec.limit {
                Some(k) => {
                    let _ = writeln!(
                        out,
                        "{pad}TopK {k} by {} (local top-k per worker, exchange → worker 0, merge)",
                        keys.join(", ")
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "{pad}Sort by {} (local sort per worker, exchange → worker 0, merge)",
                        keys.join(", ")
                    );
                }
            }
            node(input, depth + 1, workers, out);
        }
        Plan::Limit { input, n } => {
            let _ = writeln!(out, "{pad}Limit {n} in catalog order (exchange → worker 0)");
            node(input, depth + 1, workers, out);
        }
        Plan::Workers => {
            let _ = writeln!(out, "{pad}Workers: every worker measures its process (exchange → worker 0)");
        }
        Plan::Crossmatch { left, right, spec } => {
            let _ = writeln!(
                out,
                "{pad}Crossmatch: {} nearest within {}\" (exchange by HEALPix pixel at order {}; right rows also to the pixels their radius reaches){}",
                spec.k,
                spec.radius_arcsec,
                spec.order,
                if spec.self_match { "; a row is not its own match" } else { "" }
            );
            node(left, depth + 1, workers, out);
            node(right, depth + 1, workers, out);
        }
        Plan::HatsWrite { counts, input, spec } => {
            let _ = writeln!(
                out,
                "{pad}HatsWrite: partitions of at most {} rows, orders {}–{}, into {}{} (counts broadcast to every worker; rows exchanged by partition; each worker sorts and writes its own)",
                spec.threshold,
                spec.lowest_order,
                spec.highest_order,
                spec.out.display(),
                match &spec.margin_out {
                    Some(m) => format!(", {}\" margins into {}", spec.margin_arcsec, m.display()),
                    None => String::new(),
                }
            );
            node(counts, depth + 1, workers, out);
            node(input, depth + 1, workers, out);
        }
    }
}

fn sort_key(k: &SortKey) -> String {
    format!(
        "{} {}{}",
        k.expr,
        if k.descending { "DESC" } else { "ASC" },
        if k.nulls_first { " NULLS FIRST" } else { "" }
    )
}
