//! Catalogs at rest: multi-file Parquet catalogs and HATS catalogs, partitions (file × row groups),
//! row-group pruning and the deterministic DP0.2-shaped demo generator. No timely here.
#![warn(missing_docs)]

pub mod atomic;
pub mod dp02;
pub mod dp02_release;
pub mod error;
pub mod hats;
pub mod parquet;
pub mod partition;
pub mod release;
pub mod schema_serde;

pub use error::{CatalogError, Result};
pub use hats::HatsInfo;
pub use hats::region::SkyRegion;
pub use parquet::prune::{ColumnBound, ColumnStats};
pub use parquet::reader::PartitionReader;
pub use parquet::{CatalogFile, FILE_COLUMN, ParquetCatalog, PruneReport, RowGroupStats, SKY_COLUMNS};
pub use partition::{Partition, file_part, owners, process_share};

/// The cores this process may use (looked up once: `available_parallelism` reads cgroup
/// files every time it is asked).
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
