//! `CatalogError`: everything that can go wrong with data at rest.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Errors of catalogs at rest: finding files, reading footers, reconciling schemas.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// An I/O error on a named file or folder.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A Parquet file could not be read (truncated, corrupt, not Parquet).
    #[error("{path}: not a readable Parquet file: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow error while decoding or building batches of a named file.
    #[error("{path}: {source}")]
    Arrow {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: arrow_schema::ArrowError,
    },
    /// A catalog path matched no Parquet files.
    #[error("no Parquet files found at \"{path}\"")]
    Empty {
        /// What the user gave.
        path: String,
    },
    /// A release cannot be ingested (schema change, reused label, …); the message says why.
    #[error("{0}")]
    Release(String),
    /// A glob pattern was malformed.
    #[error("bad glob pattern \"{pattern}\": {message}")]
    BadGlob {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// Two files of one catalog disagree on a column.
    #[error("schemas disagree on column \"{column}\": {first} has {first_type}, {second} has {second_type}")]
    SchemaMismatch {
        /// The column.
        column: String,
        /// The file that set the schema.
        first: PathBuf,
        /// Its type of the column.
        first_type: String,
        /// The file that disagrees.
        second: PathBuf,
        /// Its type of the column (or "no such column").
        second_type: String,
    },
    /// A file changed between opening the catalog and reading it.
    #[error("{path}: the file changed since the catalog was opened (schema or row count differs)")]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// A HATS catalog folder is malformed (missing or bad properties, partition list, …).
    #[error("{path}: {message}")]
    Hats {
        /// The file or folder at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Invalid options given to a generator or reader.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}
