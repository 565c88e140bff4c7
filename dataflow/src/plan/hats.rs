//! `starflow hats import` as one plan node: its first input counts the catalog's rows per
//! HEALPix pixel, its second reads the rows (once the counts are complete); its output is
//! one row per HATS partition file written.

use std::path::PathBuf;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// Writes rows into the partitions of a HATS catalog (and of its margin catalog). Every
/// worker receives every pixel count and cuts the same partitions from them
/// (hats-import's alignment); then each row
/// goes to the worker of its partition, and to the workers of the partitions whose margin it
/// falls in; each worker spools what it receives (to disk beyond its memory budget), then
/// writes each of its partitions sorted by `_healpix_29` (then by row id, so the files do
/// not depend on the number of workers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HatsWriteSpec {
    /// The primary catalog's folder (its `dataset/` is written here).
    pub out: PathBuf,
    /// The margin catalog's folder, when margins are written.
    pub margin_out: Option<PathBuf>,
    /// Margin width, arcseconds.
    pub margin_arcsec: f64,
    /// RA and Dec columns of the input, by index.
    pub radec: (usize, usize),
    /// The input's row-id column (scan row ids: the tie-break of the sort), by index.
    pub row_id: usize,
    /// HEALPix order of the counts (the deepest a partition may have).
    pub highest_order: u8,
    /// Shallowest order a partition may have.
    pub lowest_order: u8,
    /// Most rows per partition.
    pub threshold: u64,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Where each worker spools beyond its memory budget.
    pub spool: PathBuf,
    /// Bytes a worker holds before it spools to disk.
    pub memory_budget: usize,
}

/// The schema of a [`super::Plan::HatsWrite`]'s output: one row per file written.
pub fn hats_write_schema() -> SchemaRef {
    std::sync::Arc::new(Schema::new(vec![
        Field::new("Norder", DataType::Int64, false),
        Field::new("Npix", DataType::Int64, false),
        Field::new("margin", DataType::Boolean, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
    ]))
}
