//! Fixtures of the end-to-end suite: a generated DP0.2-like catalog and its brute-force
//! copy, a small nullable catalog, helpers that run SQL through the library and through the
//! `starflow` binary, result comparison, reference computations and golden scripts.

pub mod cli;
pub mod engine;
pub mod fixture;
pub mod golden;
pub mod image;
pub mod load;
pub mod reference;
pub mod serve;
pub mod value;

pub use cli::{CliOutput, catalog_args, output_lines, starflow, starflow_bin, starflow_query};
pub use engine::{
    QueryOutput, WORKER_COUNTS, WORKERS, catalogs, explain, query, rows, small_partitions, try_plan, try_query,
    try_query_with,
};
pub use fixture::{DP02, Dp02Fixture, NULLS, Scratch, big_catalog, dp02, nulls_catalog, write_parquet};
pub use load::{DP02_COLUMNS, Dp02Row};
pub use reference::{FloatAgg, haversine_deg, healpix_nested, uniform, wrap_ra};
pub use serve::{ServeProcess, eventually};
pub use value::{AGG, Tol, Value, assert_rows_eq, assert_same_rows, compare_rows, rows_of, sorted};
