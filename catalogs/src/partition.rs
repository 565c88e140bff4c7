//! Partitions: the unit of work handed to a worker (a row-group range of one file).

use serde::{Deserialize, Serialize};

/// One unit of scan work: some row groups of one file of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Position of the partition in catalog order (files in path order, row groups in file order).
    pub index: usize,
    /// Index of the file in the catalog's file list.
    pub file: usize,
    /// Consecutive row groups of that file.
    pub row_groups: std::ops::Range<usize>,
    /// Rows in those row groups.
    pub rows: u64,
}
