//! Running SQL through the library API, wired as `starflow query` wires it
//! (`launcher/src/query.rs`): `plan_sql` → `run_query` with the `Operators` renderer.

use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use starflow_catalogs::ParquetCatalog;
use starflow_dataflow::plan::explain::explain as explain_plan;
use starflow_dataflow::{CatalogSet, ExecOptions, PlanOptions, QueryStats, plan_sql, run_query};
use starflow_operators::Operators;

use crate::fixture::{DP02, NULLS, dp02, nulls_catalog};
use crate::value::{Value, rows_of};

/// Worker count of the reference tests (odd on purpose: partitions split unevenly).
pub const WORKERS: usize = 3;

/// The worker counts every query must agree across.
pub const WORKER_COUNTS: [usize; 3] = [1, 2, 4];

/// What a query returned.
#[derive(Debug)]
pub struct QueryOutput {
    /// The planned output schema (also for empty results).
    pub schema: SchemaRef,
    /// Result batches, in delivery order.
    pub batches: Vec<RecordBatch>,
    /// The runner's counters.
    pub stats: QueryStats,
}

impl QueryOutput {
    /// The result rows, in order.
    pub fn rows(&self) -> Vec<Vec<Value>> {
        rows_of(&self.batches)
    }

    /// Output column names.
    pub fn names(&self) -> Vec<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// Output column types.
    pub fn types(&self) -> Vec<DataType> {
        self.schema.fields().iter().map(|f| f.data_type().clone()).collect()
    }
}

/// The catalogs every library-level query sees: `dp02` and `nulls`.
pub fn catalogs() -> Arc<CatalogSet> {
    static SET: OnceLock<Arc<CatalogSet>> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = CatalogSet::new();
        let dp02_dir = dp02().dir.to_str().expect("utf-8 fixture path").to_string();
        set.insert(ParquetCatalog::open(DP02, &dp02_dir).expect("open dp02 fixture"));
        let nulls_dir = nulls_catalog().to_str().expect("utf-8 fixture path").to_string();
        set.insert(ParquetCatalog::open(NULLS, &nulls_dir).expect("open nulls fixture"));
        Arc::new(set)
    })
    .clone()
}

/// Plans and runs `sql` on `workers` threads; planning and run errors become `Err(message)`.
pub fn try_query(sql: &str, workers: usize) -> Result<QueryOutput, String> {
    try_query_with(sql, workers, &PlanOptions::default())
}

/// Small partitions and batches: one row group per partition, several batches per row
/// group, so ordering and early stop are exercised across many partition and batch edges.
pub fn small_partitions() -> PlanOptions {
    PlanOptions { batch_rows: 700, partition_rows: 2_000 }
}

/// [`try_query`] with explicit planner options.
pub fn try_query_with(sql: &str, workers: usize, options: &PlanOptions) -> Result<QueryOutput, String> {
    let catalogs = catalogs();
    let planned = plan_sql(sql, &catalogs, options).map_err(|e| format!("planning: {e}"))?;
    assert!(!planned.explain, "use explain() for EXPLAIN statements");
    try_plan(&planned.plan, workers)
}

/// Runs a planned query over the test catalog on `workers` threads.
pub fn try_plan(plan: &starflow_dataflow::Plan, workers: usize) -> Result<QueryOutput, String> {
    let mut batches = Vec::new();
    let stats = run_query(plan, catalogs(), Operators, ExecOptions::local(workers), |batch| {
        batches.push(batch);
        Ok(())
    })
    .map_err(|e| format!("running: {e}"))?;
    Ok(QueryOutput { schema: plan.schema(), batches, stats })
}

/// Runs `sql`, panicking (with the statement) if it fails.
#[track_caller]
pub fn query(sql: &str, workers: usize) -> QueryOutput {
    try_query(sql, workers).unwrap_or_else(|e| panic!("query failed: {e}\n  sql: {sql}"))
}

/// The result rows of `sql` on `workers` threads.
#[track_caller]
pub fn rows(sql: &str, workers: usize) -> Vec<Vec<Value>> {
    query(sql, workers).rows()
}

/// The `EXPLAIN` text of `sql` (with or without the `EXPLAIN` keyword).
#[track_caller]
pub fn explain(sql: &str, workers: usize) -> String {
    let sql = if sql.trim_start().to_ascii_uppercase().starts_with("EXPLAIN") {
        sql.to_string()
    } else {
        format!("EXPLAIN {sql}")
    };
    let planned = plan_sql(&sql, &catalogs(), &PlanOptions::default())
        .unwrap_or_else(|e| panic!("planning failed: {e}\n  sql: {sql}"));
    assert!(planned.explain, "EXPLAIN was not recognised: {sql}");
    explain_plan(&planned.plan, workers)
}
