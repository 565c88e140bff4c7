//! Worker-count invariance: every statement of the other modules gives the same result on
//! 1, 2 and 4 workers. Results without ORDER BY or a limit are compared as multisets;
//! aggregates within the aggregate tolerance (their summation order follows the partitioning),
//! everything else exactly.

use starflow_e2e::{AGG, Tol, WORKER_COUNTS, compare_rows, sorted, try_query};

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

fn same_on_every_worker_count(sql: &String) -> Result<(), String> {
    let run = |workers: usize| try_query(sql, workers).map(|out| if ordered(sql) { out.rows() } else { sorted(out.rows()) });
    let base = run(WORKER_COUNTS[0]).map_err(|e| format!("{sql}\n1 worker: {e}"))?;
    for workers in &WORKER_COUNTS[1..] {
        let other = run(*workers).map_err(|e| format!("{sql}\n{workers} workers: {e}"))?;
        compare_rows(&other, &base, tolerance(sql))
            .map_err(|e| format!("{sql}\n{workers} workers differ from 1 worker:\n{e}"))?;
    }
    Ok(())
}

#[test]
fn scans_agree_on_every_worker_count() {
    check_all("scan", &crate::scan::queries(), same_on_every_worker_count);
}

#[test]
fn aggregates_agree_on_every_worker_count() {
    check_all("aggregate", &crate::aggregate::queries(), same_on_every_worker_count);
}

#[test]
fn sorts_agree_on_every_worker_count() {
    check_all("sort", &crate::sort::queries(), same_on_every_worker_count);
}

#[test]
fn geometry_agrees_on_every_worker_count() {
    check_all("geometry", &crate::geometry::queries(), same_on_every_worker_count);
}

#[test]
fn pruned_scans_agree_on_every_worker_count() {
    check_all("pruning", &crate::pruning::queries(), same_on_every_worker_count);
}
