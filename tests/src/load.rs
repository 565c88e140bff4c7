//! The brute-force side: reads every file of the generated catalog with the plain `parquet`
//! reader (no starflow code) into row structs, in catalog order.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::value::Value;

/// One row of the DP0.2-like catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Dp02Row {
    /// Index of the file in catalog order.
    pub file: usize,
    /// Row group within the file.
    pub row_group: usize,
    pub object_id: i64,
    pub ra: f64,
    pub dec: f64,
    pub tract: i32,
    pub patch: i32,
    pub primary: bool,
    pub extendedness: f32,
    pub mag_u: f32,
    pub mag_g: f32,
    pub mag_r: f32,
    pub mag_i: f32,
    pub mag_z: f32,
    pub mag_y: f32,
    pub magerr_g: f32,
    pub magerr_r: f32,
    pub magerr_i: f32,
}

/// The catalog's columns, in schema order.
pub const DP02_COLUMNS: [&str; 16] = [
    "objectId",
    "coord_ra",
    "coord_dec",
    "tract",
    "patch",
    "detect_isPrimary",
    "refExtendedness",
    "mag_u",
    "mag_g",
    "mag_r",
    "mag_i",
    "mag_z",
    "mag_y",
    "magerr_g",
    "magerr_r",
    "magerr_i",
];

impl Dp02Row {
    /// A column by catalog name.
    pub fn get(&self, column: &str) -> Value {
        match column {
            "objectId" => Value::Int(self.object_id),
            "coord_ra" => Value::Float(self.ra),
            "coord_dec" => Value::Float(self.dec),
            "tract" => Value::Int(self.tract.into()),
            "patch" => Value::Int(self.patch.into()),
            "detect_isPrimary" => Value::Bool(self.primary),
            other => Value::f32(self.f32(other)),
        }
    }

    /// A Float32 column by catalog name.
    pub fn f32(&self, column: &str) -> f32 {
        match column {
            "refExtendedness" => self.extendedness,
            "mag_u" => self.mag_u,
            "mag_g" => self.mag_g,
            "mag_r" => self.mag_r,
            "mag_i" => self.mag_i,
            "mag_z" => self.mag_z,
            "mag_y" => self.mag_y,
            "magerr_g" => self.magerr_g,
            "magerr_r" => self.magerr_r,
            "magerr_i" => self.magerr_i,
            other => panic!("no Float32 column {other}"),
        }
    }

    /// Several columns by name.
    pub fn select(&self, columns: &[&str]) -> Vec<Value> {
        columns.iter().map(|c| self.get(c)).collect()
    }
}

/// Reads the catalog at `dir`: files sorted by path, row groups per file, rows in order.
pub fn load_dp02(dir: &Path) -> (Vec<PathBuf>, Vec<usize>, Vec<Dp02Row>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read fixture folder")
        .map(|e| e.expect("folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    let mut row_groups = Vec::new();
    for (file_index, path) in files.iter().enumerate() {
        let open = || {
            ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open fixture file"))
                .expect("parquet footer")
        };
        let groups = open().metadata().num_row_groups();
        row_groups.push(groups);
        for rg in 0..groups {
            for batch in open().with_row_groups(vec![rg]).build().expect("reader") {
                push_rows(&batch.expect("decode fixture"), file_index, rg, &mut rows);
            }
        }
    }
    (files, row_groups, rows)
}

fn push_rows(batch: &RecordBatch, file: usize, row_group: usize, out: &mut Vec<Dp02Row>) {
    let col = |name: &str| {
        let c = batch.column_by_name(name).unwrap_or_else(|| panic!("fixture lacks column {name}"));
        assert_eq!(c.null_count(), 0, "fixture column {name} has nulls (NaN expected instead)");
        c.clone()
    };
    let i64s = col("objectId");
    let i64s = i64s.as_primitive::<Int64Type>();
    let (ra, dec) = (col("coord_ra"), col("coord_dec"));
    let (ra, dec) = (ra.as_primitive::<Float64Type>(), dec.as_primitive::<Float64Type>());
    let (tract, patch) = (col("tract"), col("patch"));
    let (tract, patch) = (tract.as_primitive::<Int32Type>(), patch.as_primitive::<Int32Type>());
    let primary = col("detect_isPrimary");
    let primary = primary.as_boolean();
    let floats: Vec<_> = DP02_COLUMNS[6..].iter().map(|n| col(n)).collect();
    let f = |k: usize, i: usize| floats[k].as_primitive::<Float32Type>().value(i);
    for i in 0..batch.num_rows() {
        out.push(Dp02Row {
            file,
            row_group,
            object_id: i64s.value(i),
            ra: ra.value(i),
            dec: dec.value(i),
            tract: tract.value(i),
            patch: patch.value(i),
            primary: primary.value(i),
            extendedness: f(0, i),
            mag_u: f(1, i),
            mag_g: f(2, i),
            mag_r: f(3, i),
            mag_i: f(4, i),
            mag_z: f(5, i),
            mag_y: f(6, i),
            magerr_g: f(7, i),
            magerr_r: f(8, i),
            magerr_i: f(9, i),
        });
    }
}
