//! HATS catalogs (HEALPix-partitioned Parquet, as written by hats-import and read by LSDB):
//! a folder with `hats.properties` (or the legacy `properties`), `partition_info.csv`, and
//! `dataset/Norder=K/Dir=D/Npix=N.parquet` files (or `Npix=N/` folders of files), with
//! `dataset/_common_metadata` (the schema) and `dataset/_metadata` (every footer).
//!
//! Opening reads the properties, the partition list and the schema, never a partition's
//! footer: a catalog of 200,000 partitions opens (and a cone over it is planned) in about
//! 0.1 s. Each partition's footer is read by the worker that scans it
//! ([`CatalogFile::lazy`]). A collection folder (`collection.properties`) opens its primary
//! catalog.

pub mod alignment;
pub mod properties;
pub mod region;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, Result};
use crate::parquet::{CatalogFile, ParquetCatalog, load_footer};
use properties::Properties;
use region::pixel_range;

/// The spatial index column HATS adds: the order-29 nested pixel of each row.
pub const HEALPIX_29_COLUMN: &str = "_healpix_29";

/// What a HATS catalog says of itself, and the pixel of each of its files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HatsInfo {
    /// The catalog folder.
    pub root: PathBuf,
    /// `dataproduct_type`: object, source, margin, …
    pub kind: String,
    /// `hats_col_ra`.
    pub ra_column: String,
    /// `hats_col_dec`.
    pub dec_column: String,
    /// `hats_nrows`, when given.
    pub total_rows: Option<u64>,
    /// `hats_margin_threshold` (arcsec) of a margin catalog.
    pub margin_arcsec: Option<f64>,
    /// (order, pixel) of each file of the catalog, in file order.
    pub pixels: Vec<(u8, u64)>,
}

impl HatsInfo {
    /// The order-29 range each file covers.
    pub fn file_range(&self, file: usize) -> std::ops::Range<u64> {
        let (order, pixel) = self.pixels[file];
        pixel_range(order, pixel)
    }

    /// The deepest partition order.
    pub fn max_order(&self) -> u8 {
        self.pixels.iter().map(|p| p.0).max().unwrap_or(0)
    }
}

/// Whether `dir` is a HATS catalog or collection folder.
pub fn is_hats(dir: &Path) -> bool {
    dir.is_dir()
        && (dir.join("hats.properties").is_file()
            || dir.join("collection.properties").is_file()
            || (dir.join("properties").is_file() && dir.join("dataset").is_dir()))
}

/// Opens the HATS catalog (or collection's primary catalog) at `dir` as catalog `name`.
pub fn open(name: &str, dir: &Path) -> Result<ParquetCatalog> {
    let collection = dir.join("collection.properties");
    if collection.is_file() {
        let p = Properties::read(&collection)?;
        let primary = p.get("hats_primary_table_url").ok_or_else(|| CatalogError::Hats {
            path: collection.clone(),
            message: "a collection names its catalog in hats_primary_table_url; it has none".into(),
        })?;
        return open(name, &dir.join(primary));
    }
    let props_path =
        [dir.join("hats.properties"), dir.join("properties")].into_iter().find(|p| p.is_file()).ok_or_else(|| {
            CatalogError::Hats { path: dir.into(), message: "no hats.properties (or properties) file".into() }
        })?;
    let props = Properties::read(&props_path)?;
    let required = |key: &str| {
        props
            .get(key)
            .map(str::to_string)
            .ok_or_else(|| CatalogError::Hats { path: props_path.clone(), message: format!("missing {key}") })
    };
    let kind = props.get("dataproduct_type").unwrap_or("object").to_string();
    let (ra_column, dec_column) = (required("hats_col_ra")?, required("hats_col_dec")?);
    let number = |key: &str| -> Result<Option<f64>> {
        props
            .get(key)
            .map(|v| {
                v.parse::<f64>().map_err(|_| CatalogError::Hats {
                    path: props_path.clone(),
                    message: format!("{key} is not a number: {v:?}"),
                })
            })
            .transpose()
    };
    let total_rows = number("hats_nrows")?.map(|v| v as u64);
    let margin_arcsec = number("hats_margin_threshold")?;
    let suffix = props.get("hats_npix_suffix").unwrap_or(".parquet").to_string();
    let dataset = dir.join("dataset");
    let mut pixels = read_pixels(dir, &dataset)?;
    // Files in sky order (by their order-29 range); a pixel listed twice is one partition.
    pixels.sort_by_key(|&(order, pixel)| (pixel_range(order, pixel).start, order));
    pixels.dedup();
    if let Some(w) = pixels.windows(2).find(|w| pixel_range(w[0].0, w[0].1).end > pixel_range(w[1].0, w[1].1).start) {
        return Err(CatalogError::Hats {
            path: dir.join("partition_info.csv"),
            message: format!(
                "partitions Norder={} Npix={} and Norder={} Npix={} overlap",
                w[0].0, w[0].1, w[1].0, w[1].1
            ),
        });
    }
    let schema = read_schema(&dataset, &pixels, &suffix)?;
    for column in [&ra_column, &dec_column] {
        if schema.field_with_name(column).is_err() {
            return Err(CatalogError::Hats {
                path: props_path.clone(),
                message: format!("the catalog has no column {column:?} (named by hats_col_ra/hats_col_dec)"),
            });
        }
    }
    let columns: Arc<[Option<usize>]> = (0..schema.fields().len()).map(Some).collect();
    let mut files = Vec::with_capacity(pixels.len());
    let mut file_pixels = Vec::with_capacity(pixels.len());
    for &(order, pixel) in &pixels {
        let base = pixel_dir(&dataset, order, pixel);
        let paths = if suffix.ends_with('/') {
            folder_files(&base.join(format!("Npix={pixel}")))?
        } else {
            vec![base.join(format!("Npix={pixel}{suffix}"))]
        };
        for path in paths {
            files.push(CatalogFile {
                path,
                columns: columns.clone(),
                num_rows: 0,
                row_group_rows: Vec::new(),
                lazy: true,
                footer: None,
            });
            file_pixels.push((order, pixel));
        }
    }
    let hats = HatsInfo {
        root: dir.to_path_buf(),
        kind,
        ra_column,
        dec_column,
        total_rows,
        margin_arcsec,
        pixels: file_pixels,
    };
    Ok(ParquetCatalog { name: name.to_string(), files, schema, file_column: false, hats: Some(Arc::new(hats)) })
}

/// `dataset/Norder=K/Dir=D` of a pixel (D: the pixel rounded down to a multiple of 10,000).
pub fn pixel_dir(dataset: &Path, order: u8, pixel: u64) -> PathBuf {
    dataset.join(format!("Norder={order}")).join(format!("Dir={}", pixel / 10_000 * 10_000))
}

/// The partitions: from `partition_info.csv`, else `_metadata`'s file paths, else the
/// dataset folder's names.
fn read_pixels(dir: &Path, dataset: &Path) -> Result<Vec<(u8, u64)>> {
    let csv = dir.join("partition_info.csv");
    if csv.is_file() {
        return read_partition_info(&csv);
    }
    let metadata = dataset.join("_metadata");
    if metadata.is_file() {
        let footer = load_footer(&metadata)?;
        let mut out = Vec::new();
        for rg in footer.metadata().row_groups() {
            if let Some(p) = rg.columns().first().and_then(|c| c.file_path()).and_then(pixel_of_path) {
                out.push(p);
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    let mut out = Vec::new();
    walk_pixels(dataset, &mut out)?;
    if out.is_empty() {
        return Err(CatalogError::Hats {
            path: dir.into(),
            message: "no partition_info.csv, no usable dataset/_metadata, and no Norder=K/…/Npix=N under dataset/"
                .into(),
        });
    }
    Ok(out)
}

/// Parses `partition_info.csv`: a header naming `Norder` and `Npix` (other columns ignored).
pub fn read_partition_info(csv: &Path) -> Result<Vec<(u8, u64)>> {
    let text = std::fs::read_to_string(csv).map_err(|source| CatalogError::Io { path: csv.into(), source })?;
    let bad = |message: String| CatalogError::Hats { path: csv.into(), message };
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad("empty file".into()))?;
    let names: Vec<&str> = header.split(',').map(|s| s.trim().trim_matches('"')).collect();
    let at = |n: &str| names.iter().position(|h| h.eq_ignore_ascii_case(n));
    let (Some(o), Some(p)) = (at("Norder"), at("Npix")) else {
        return Err(bad(format!("the header {header:?} has no Norder and Npix columns")));
    };
    lines
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').map(|s| s.trim().trim_matches('"')).collect();
            let cell = |c: usize| cells.get(c).copied().unwrap_or("");
            let order: u8 = cell(o)
                .parse()
                .ok()
                .filter(|&k| k <= region::MAX_ORDER)
                .ok_or_else(|| bad(format!("line {}: Norder {:?} is not an order from 0 to 29", i + 1, cell(o))))?;
            let pixel: u64 =
                cell(p).parse().ok().filter(|&n| n < 12u64 << (2 * u32::from(order))).ok_or_else(|| {
                    bad(format!("line {}: Npix {:?} is not a pixel of order {order}", i + 1, cell(p)))
                })?;
            Ok((order, pixel))
        })
        .collect()
}

/// (order, pixel) of a path `…Norder=K/…Npix=N…`.
fn pixel_of_path(path: &str) -> Option<(u8, u64)> {
    let number_after = |key: &str| -> Option<u64> {
        let at = path.rfind(key)? + key.len();
        let digits: String = path[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some((u8::try_from(number_after("Norder=")?).ok()?, number_after("Npix=")?))
}

fn walk_pixels(dir: &Path, out: &mut Vec<(u8, u64)>) -> Result<()> {
    let io = |source| CatalogError::Io { path: dir.to_path_buf(), source };
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("Npix=") {
            out.extend(pixel_of_path(&path.to_string_lossy()));
        } else if path.is_dir() && (name.starts_with("Norder=") || name.starts_with("Dir=")) {
            walk_pixels(&path, out)?;
        }
    }
    Ok(())
}

/// The Parquet files of a partition folder, by name.
fn folder_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| CatalogError::Io { path: dir.to_path_buf(), source };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The schema: `_common_metadata`, else `_metadata`, else the first partition's footer.
fn read_schema(dataset: &Path, pixels: &[(u8, u64)], suffix: &str) -> Result<SchemaRef> {
    for name in ["_common_metadata", "_metadata"] {
        let path = dataset.join(name);
        if path.is_file() {
            return Ok(load_footer(&path)?.schema().clone());
        }
    }
    let &(order, pixel) = pixels
        .first()
        .ok_or_else(|| CatalogError::Hats { path: dataset.into(), message: "the catalog lists no partition".into() })?;
    let base = pixel_dir(dataset, order, pixel);
    let first = if suffix.ends_with('/') {
        folder_files(&base.join(format!("Npix={pixel}")))?.into_iter().next().ok_or_else(|| CatalogError::Hats {
            path: base.clone(),
            message: format!("partition folder Npix={pixel} holds no file"),
        })?
    } else {
        base.join(format!("Npix={pixel}{suffix}"))
    };
    Ok(load_footer(&first)?.schema().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_from_paths_and_csv() {
        assert_eq!(pixel_of_path("dataset/Norder=3/Dir=0/Npix=123.parquet"), Some((3, 123)));
        assert_eq!(pixel_of_path("x/Norder=10/Dir=10000/Npix=12345/part0.parquet"), Some((10, 12345)));
        assert_eq!(pixel_of_path("nothing.parquet"), None);
        let dir = std::env::temp_dir().join(format!("starflow-hats-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("partition_info.csv");
        std::fs::write(&csv, "Norder,Dir,Npix,num_rows\n0,0,11,131\n1,0,44,3\n").unwrap();
        assert_eq!(read_partition_info(&csv).unwrap(), vec![(0, 11), (1, 44)]);
        std::fs::write(&csv, "Norder,Npix\n1,48\n").unwrap();
        let e = read_partition_info(&csv).unwrap_err().to_string();
        assert!(e.contains("partition_info.csv") && e.contains("line 2") && e.contains("order 1"), "{e}");
        std::fs::write(&csv, "order,pixel\n").unwrap();
        assert!(read_partition_info(&csv).unwrap_err().to_string().contains("no Norder and Npix"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
