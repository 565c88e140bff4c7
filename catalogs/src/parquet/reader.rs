//! Reads one partition of a catalog: projection, row groups, batch size; columns a file
//! lacks are filled with nulls so every batch has the requested catalog schema.

use std::fs::File;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, new_null_array};
use arrow_schema::{Field, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::error::{CatalogError, Result};
use crate::parquet::prune::{ColumnBound, ColumnStats, row_group_may_match};
use crate::parquet::{ParquetCatalog, RowGroupStats, load_footer};
use crate::partition::Partition;

/// Streams the record batches of one partition with the catalog columns `columns` (indices
/// into the catalog schema, in output order).
pub struct PartitionReader {
    inner: Option<ParquetRecordBatchReader>,
    /// Output schema.
    schema: SchemaRef,
    /// Where each output column comes from.
    positions: Vec<Source>,
    /// The value of the virtual file column ([`Partition::file_part`]), and that column for
    /// a whole batch once made (smaller batches are slices of it).
    file_part: i64,
    file_column: std::cell::OnceCell<ArrayRef>,
    /// Rows still to produce when no column is read (row counts come from the footer).
    rows_without_columns: u64,
    batch_rows: usize,
    path: std::path::PathBuf,
    /// Compressed bytes of the column chunks this partition reads.
    pub bytes: u64,
    /// Row groups this partition reads.
    pub row_groups: usize,
}

impl PartitionReader {
    /// Opens `partition` of `catalog`, reading only `columns`, in batches of `batch_rows`.
    /// `footer` caches the last footer this reader's worker decoded (partitions of one
    /// file usually follow each other). A lazy file's row groups are pruned here with
    /// `bounds` (other files were pruned when the partitions were listed).
    pub fn open(
        catalog: &ParquetCatalog,
        partition: &Partition,
        columns: &[usize],
        batch_rows: usize,
        bounds: &[ColumnBound],
        footer: &mut Option<(usize, ArrowReaderMetadata)>,
    ) -> Result<Self> {
        let file = &catalog.files[partition.file];
        let schema =
            Arc::new(Schema::new(columns.iter().map(|&c| catalog.schema.field(c).clone()).collect::<Vec<_>>()));
        let needs_footer =
            file.lazy || columns.iter().any(|&c| !catalog.is_file_column(c) && file.columns[c].is_some());
        let metadata = if needs_footer {
            Some(match (footer.as_ref(), &file.footer) {
                (Some((f, m)), _) if *f == partition.file => m.clone(),
                (_, Some(m)) => m.clone(),
                _ => {
                    let m = tracing::debug_span!("footer").in_scope(|| load_footer(&file.path))?;
                    check_unchanged(catalog, partition.file, &m)?;
                    *footer = Some((partition.file, m.clone()));
                    m
                }
            })
        } else {
            None
        };
        // A lazy file's columns are found by name in its own footer.
        let lazy_roots: Option<Vec<Option<usize>>> =
            metadata.as_ref().filter(|_| file.lazy).map(|m| lazy_columns(catalog, partition.file, m)).transpose()?;
        let root = |c: usize| match (&lazy_roots, catalog.is_file_column(c)) {
            (_, true) => None,
            (Some(r), false) => r[c],
            (None, false) => file.columns[c],
        };
        let mut roots: Vec<usize> = columns.iter().filter_map(|&c| root(c)).collect();
        roots.sort_unstable();
        roots.dedup();
        let positions = columns
            .iter()
            .map(|&c| match root(c) {
                Some(r) => Source::Read(roots.binary_search(&r).expect("root present")),
                None if catalog.is_file_column(c) => Source::File,
                None => Source::Null,
            })
            .collect();
        // The row groups to read: the partition's, or (lazy) every one its statistics keep.
        let row_groups: Vec<usize> = match (&metadata, file.lazy) {
            (Some(m), true) => {
                let parquet = m.metadata();
                let flat = parquet.file_metadata().schema_descr().num_columns() == m.schema().fields().len();
                let column_of = |name: &str| {
                    let c = catalog.schema.index_of(name).ok()?;
                    // Nested schemas: leaf statistics do not line up with roots (unknown).
                    lazy_roots.as_ref().and_then(|r| r[c]).map(|i| if flat { i } else { usize::MAX })
                };
                parquet
                    .row_groups()
                    .iter()
                    .enumerate()
                    .filter(|(_, rg)| {
                        bounds.is_empty() || {
                            let stats = RowGroupStats {
                                rows: rg.num_rows() as u64,
                                columns: (0..rg.num_columns())
                                    .map(|i| ColumnStats::of(rg.column(i).statistics(), rg.num_rows() as u64))
                                    .collect(),
                            };
                            row_group_may_match(&stats, bounds, column_of)
                        }
                    })
                    .map(|(i, _)| i)
                    .collect()
            }
            _ => partition.row_groups.clone().collect(),
        };
        let (Some(metadata), false) = (&metadata, roots.is_empty()) else {
            let rows = match (&metadata, file.lazy) {
                (Some(m), true) => row_groups.iter().map(|&rg| m.metadata().row_group(rg).num_rows() as u64).sum(),
                _ => partition.rows,
            };
            return Ok(Self {
                inner: None,
                schema,
                positions,
                file_part: partition.file_part(),
                file_column: Default::default(),
                rows_without_columns: rows,
                batch_rows,
                path: file.path.clone(),
                bytes: 0,
                row_groups: row_groups.len(),
            });
        };
        let parquet = metadata.metadata();
        let descr = parquet.file_metadata().schema_descr();
        let bytes = row_groups
            .iter()
            .filter_map(|&rg| parquet.row_groups().get(rg))
            .flat_map(|rg| rg.columns().iter().enumerate())
            .filter(|(leaf, _)| roots.binary_search(&descr.get_column_root_idx(*leaf)).is_ok())
            .map(|(_, chunk)| chunk.compressed_size().max(0) as u64)
            .sum();
        let handle = File::open(&file.path).map_err(|source| CatalogError::Io { path: file.path.clone(), source })?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(handle, metadata.clone());
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        let count = row_groups.len();
        let reader = builder
            .with_projection(mask)
            .with_row_groups(row_groups)
            .with_batch_size(batch_rows)
            .build()
            .map_err(|source| CatalogError::Parquet { path: file.path.clone(), source })?;
        Ok(Self {
            inner: Some(reader),
            schema,
            positions,
            file_part: partition.file_part(),
            file_column: Default::default(),
            rows_without_columns: 0,
            batch_rows,
            path: file.path.clone(),
            bytes,
            row_groups: count,
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
            let columns =
                self.positions.iter().zip(self.schema.fields()).map(|(s, f)| self.column(s, f, rows, None)).collect();
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
            .map(|(source, field)| self.column(source, field, rows, Some(&batch)))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map(Some)
            .map_err(|source| CatalogError::Arrow { path: self.path.clone(), source })
    }
}

/// Where an output column comes from.
enum Source {
    /// This column of the batches read.
    Read(usize),
    /// Absent from the file: nulls.
    Null,
    /// The virtual file column.
    File,
}

impl PartitionReader {
    fn column(&self, source: &Source, field: &Field, rows: usize, read: Option<&RecordBatch>) -> ArrayRef {
        match (source, read) {
            (Source::Read(p), Some(batch)) => batch.column(*p).clone(),
            (Source::File, _) => {
                let column = self.file_column.get_or_init(|| {
                    Arc::new(Int64Array::from_value(self.file_part, rows.max(self.batch_rows))) as ArrayRef
                });
                if column.len() >= rows {
                    column.slice(0, rows)
                } else {
                    Arc::new(Int64Array::from_value(self.file_part, rows))
                }
            }
            _ => new_null_array(field.data_type(), rows),
        }
    }
}

/// Where each catalog column is in a lazy file (by name); a column of another type, or a
/// missing column the schema says is never null, is an error naming the file.
fn lazy_columns(catalog: &ParquetCatalog, file: usize, metadata: &ArrowReaderMetadata) -> Result<Vec<Option<usize>>> {
    let schema = metadata.schema();
    let mismatch = |column: &arrow_schema::Field, found: String| CatalogError::SchemaMismatch {
        column: column.name().clone(),
        first: catalog.hats.as_ref().map(|h| h.root.join("dataset/_common_metadata")).unwrap_or_default(),
        first_type: column.data_type().to_string(),
        second: catalog.files[file].path.clone(),
        second_type: found,
    };
    catalog
        .schema
        .fields()
        .iter()
        .enumerate()
        .map(|(c, field)| {
            if catalog.is_file_column(c) {
                return Ok(None);
            }
            match schema.index_of(field.name()) {
                Ok(i) if schema.field(i).data_type() == field.data_type() => Ok(Some(i)),
                Ok(i) => Err(mismatch(field, schema.field(i).data_type().to_string())),
                Err(_) if field.is_nullable() => Ok(None),
                Err(_) => Err(mismatch(field, "no such column (and the column is not nullable)".into())),
            }
        })
        .collect()
}

/// Fails when a file no longer has the columns it had when the catalog was opened.
fn check_unchanged(catalog: &ParquetCatalog, file: usize, metadata: &ArrowReaderMetadata) -> Result<()> {
    let f = &catalog.files[file];
    if f.lazy {
        // A lazy file's columns are checked as they are found ([`lazy_columns`]).
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FILE_COLUMN;
    use crate::dp02::{Dp02Options, generate_dp02};
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    #[test]
    fn the_file_column_tells_each_rows_file() {
        let dir = std::env::temp_dir().join(format!("starflow-file-column-{}", std::process::id()));
        let _ = fs_remove(&dir);
        generate_dp02(&dir, &Dp02Options { files: 3, rows: 3_000, seed: 5, row_group_rows: 400 }).unwrap();
        let catalog = ParquetCatalog::open("c", &dir.to_string_lossy()).unwrap();
        let plain_columns = catalog.schema.fields().len();
        let catalog = catalog.with_file_column().unwrap();
        assert_eq!(catalog.schema.fields().len(), plain_columns + 1);
        let file_column = catalog.schema.index_of(FILE_COLUMN).unwrap();
        assert!(catalog.is_file_column(file_column) && !catalog.is_file_column(0));
        assert!(catalog.clone().with_file_column().is_ok(), "adding it twice keeps one");
        // Partitions of a few row groups: several per file.
        let (partitions, _) = catalog.partitions(&[], 1_000).unwrap();
        assert!(partitions.len() > catalog.files.len());
        // The file column with a real column, and alone (no column of the file read).
        for columns in [vec![file_column, 0], vec![file_column]] {
            let mut rows_per_file = vec![0u64; catalog.files.len()];
            for p in &partitions {
                let mut reader = PartitionReader::open(&catalog, p, &columns, 256, &[], &mut None).unwrap();
                while let Some(batch) = reader.next_batch().unwrap() {
                    let files = batch.column(0).as_primitive::<Int64Type>();
                    assert!(files.values().iter().all(|&f| crate::file_part(f) == (p.file, p.row_groups.start)));
                    rows_per_file[p.file] += batch.num_rows() as u64;
                }
            }
            let expected: Vec<u64> = catalog.files.iter().map(|f| f.num_rows).collect();
            assert_eq!(rows_per_file, expected);
        }
        fs_remove(&dir).unwrap();
    }

    fn fs_remove(dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::remove_dir_all(dir)
    }
}
