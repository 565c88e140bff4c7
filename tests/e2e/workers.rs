//! Worker-count invariance: every statement of the other modules gives the same result on
//! 1, 2 and 4 workers, and on 4 workers with small partitions and batches. Results without
//! ORDER BY or a limit are compared as multisets; aggregates within the aggregate tolerance
//! (their summation order follows the partitioning), everything else exactly.

use starflow_dataflow::PlanOptions;
use starflow_e2e::{AGG, Tol, WORKER_COUNTS, compare_rows, small_partitions, sorted, try_query_with};

use crate::check_all;

fn tolerance(sql: &str) -> Tol {
    let upper = sql.to_ascii_uppercase();
    let aggregates = ["COUNT(", "SUM(", "AVG(", "MIN(", "MAX(", "STDDEV("];
    if upper.contains("GROUP BY") || aggregates.iter().any(|a| upper.contains(a)) { AGG } else { Tol::Exact }
}

fn ordered(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    upper.contains("ORDER BY") || upper.contains(" LIMIT ") || upper.contains("SELECT TOP ")
}

fn same_everywhere(sql: &String) -> Result<(), String> {
    let run = |workers: usize, options: &PlanOptions| {
        try_query_with(sql, workers, options)
            .map(|out| if ordered(sql) { out.rows() } else { sorted(out.rows()) })
            .map_err(|e| format!("{sql}\n{workers} worker(s): {e}"))
    };
    let base = run(1, &PlanOptions::default())?;
    let mut variants: Vec<(usize, PlanOptions, &str)> =
        WORKER_COUNTS[1..].iter().map(|w| (*w, PlanOptions::default(), "")).collect();
    variants.push((*WORKER_COUNTS.last().expect("worker counts"), small_partitions(), " with small partitions"));
    for (workers, options, label) in variants {
        let other = run(workers, &options)?;
        compare_rows(&other, &base, tolerance(sql))
            .map_err(|e| format!("{sql}\n{workers} workers{label} differ from 1 worker:\n{e}"))?;
    }
    Ok(())
}

#[test]
fn filters_agree_on_every_worker_count() {
    let queries = crate::scan::filter_queries();
    check_all("filter", &queries[..queries.len() / 2], same_everywhere);
}

#[test]
fn more_filters_agree_on_every_worker_count() {
    let queries = crate::scan::filter_queries();
    check_all("filter", &queries[queries.len() / 2..], same_everywhere);
}

#[test]
fn projections_agree_on_every_worker_count() {
    check_all("projection", &crate::scan::projection_queries(), same_everywhere);
}

#[test]
fn limits_and_nulls_agree_on_every_worker_count() {
    check_all("scan", &crate::scan::other_queries(), same_everywhere);
}

#[test]
fn aggregates_agree_on_every_worker_count() {
    check_all("aggregate", &crate::aggregate::queries(), same_everywhere);
}

#[test]
fn sorts_agree_on_every_worker_count() {
    check_all("sort", &crate::sort::queries(), same_everywhere);
}

#[test]
fn geometry_agrees_on_every_worker_count() {
    check_all("geometry", &crate::geometry::queries(), same_everywhere);
}

#[test]
fn pruned_scans_agree_on_every_worker_count() {
    check_all("pruning", &crate::pruning::queries(), same_everywhere);
}
