//! Reads one partition of a catalog: projection, row groups, batch size; columns a file
//! lacks are filled with nulls so every batch has the requested catalog schema.

use std::fs::File;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions, new_null_array};
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::error::{CatalogError, Result};
use crate::parquet::{ParquetCatalog, load_footer};
use crate::partition::Partition;

/// Streams the record batches of one partition with the catalog columns `columns` (indices
/// into the catalog schema, in output order).
pub struct PartitionReader {
    inner: Option<ParquetRecordBatchReader>,
    /// Output schema.
    schema: SchemaRef,
    /// For each output column, its position in the reader's batches (None: fill with nulls).
    positions: Vec<Option<usize>>,
    /// Rows still to produce when no column is read (row counts come from the footer).
    rows_without_columns: u64,
    batch_rows: usize,
    path: std::path::PathBuf,
    /// Compressed bytes of the column chunks this partition reads.
    pub bytes: u64,
}

impl PartitionReader {
    /// Opens `partition` of `catalog`, reading only `columns`, in batches of `batch_rows`.
    /// `footer` caches the last footer this reader's worker decoded (partitions of one
    /// file usually follow each other).
    pub fn open(
        catalog: &ParquetCatalog,
        partition: &Partition,
        columns: &[usize],
        batch_rows: usize,
        footer: &mut Option<(usize, ArrowReaderMetadata)>,
    ) -> Result<Self> {
        let file = &catalog.files[partition.file];
        let schema =
            Arc::new(Schema::new(columns.iter().map(|&c| catalog.schema.field(c).clone()).collect::<Vec<_>>()));
        let mut roots: Vec<usize> = columns.iter().filter_map(|&c| file.columns[c]).collect();
        roots.sort_unstable();
        roots.dedup();
        let positions = columns
            .iter()
            .map(|&c| file.columns[c].map(|root| roots.binary_search(&root).expect("root present")))
            .collect();
        if roots.is_empty() {
            return Ok(Self {
                inner: None,
                schema,
                positions,
                rows_without_columns: partition.rows,
                batch_rows,
                path: file.path.clone(),
                bytes: 0,
            });
        }
        let metadata = match footer {
            Some((f, m)) if *f == partition.file => m.clone(),
            _ => {
                let m = load_footer(&file.path)?;
                check_unchanged(catalog, partition.file, &m)?;
                *footer = Some((partition.file, m.clone()));
                m
            }
        };
        let parquet = metadata.metadata();
        let descr = parquet.file_metadata().schema_descr();
        let bytes = partition
            .row_groups
            .clone()
            .filter_map(|rg| parquet.row_groups().get(rg))
            .flat_map(|rg| rg.columns().iter().enumerate())
            .filter(|(leaf, _)| roots.binary_search(&descr.get_column_root_idx(*leaf)).is_ok())
            .map(|(_, chunk)| chunk.compressed_size().max(0) as u64)
            .sum();
        let handle = File::open(&file.path).map_err(|source| CatalogError::Io { path: file.path.clone(), source })?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(handle, metadata);
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_row_groups(partition.row_groups.clone().collect())
            .with_batch_size(batch_rows)
            .build()
            .map_err(|source| CatalogError::Parquet { path: file.path.clone(), source })?;
        Ok(Self {
            inner: Some(reader),
            schema,
            positions,
            rows_without_columns: 0,
            batch_rows,
            path: file.path.clone(),
            bytes,
        })
    }

    /// The next batch, or None at the end of the partition.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let Some(reader) = self.inner.as_mut() else {
            if self.rows_without_columns == 0 {
                return Ok(None);
            }
            let rows = self.rows_without_columns.min(self.batch_rows as u64) as usize;
            self.rows_without_columns -= rows as u64;
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            let columns = self.schema.fields().iter().map(|f| new_null_array(f.data_type(), rows)).collect();
            return RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
                .map(Some)
                .map_err(|source| CatalogError::Arrow { path: self.path.clone(), source });
        };
        let Some(batch) = reader.next() else { return Ok(None) };
        let batch = batch.map_err(|source| CatalogError::Arrow { path: self.path.clone(), source })?;
        let rows = batch.num_rows();
        let columns = self
            .positions
            .iter()
            .zip(self.schema.fields())
            .map(|(pos, field)| match pos {
                Some(p) => batch.column(*p).clone(),
                None => new_null_array(field.data_type(), rows),
            })
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map(Some)
            .map_err(|source| CatalogError::Arrow { path: self.path.clone(), source })
    }
}

/// Fails when a file no longer has the columns it had when the catalog was opened.
fn check_unchanged(catalog: &ParquetCatalog, file: usize, metadata: &ArrowReaderMetadata) -> Result<()> {
    let f = &catalog.files[file];
    let schema = metadata.schema();
    let rows = metadata.metadata().file_metadata().num_rows() as u64;
    let same = rows == f.num_rows
        && f.columns.iter().enumerate().all(|(c, root)| match root {
            Some(r) => schema.fields().get(*r).is_some_and(|field| {
                let expected = catalog.schema.field(c);
                field.name() == expected.name() && field.data_type() == expected.data_type()
            }),
            None => true,
        });
    if same { Ok(()) } else { Err(CatalogError::Changed { path: f.path.clone() }) }
}
