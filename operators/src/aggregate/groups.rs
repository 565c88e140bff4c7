//! Group tables: map key values to dense group ids. A single integer key takes a fast
//! path (with a one-entry cache, since catalogs are laid out by tract/patch); any other
//! key list goes through arrow's row format.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Int64Array};
use arrow_array::{ArrowPrimitiveType, PrimitiveArray};
use arrow_cast::cast;
use arrow_row::{RowConverter, SortField};
use arrow_schema::{ArrowError, DataType};

/// A fast, fixed (process-independent) hasher for group keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        splitmix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = splitmix64(self.0 ^ u64::from_le_bytes(word));
        }
    }
    fn write_i64(&mut self, i: i64) {
        self.0 = self.0.rotate_left(5) ^ i as u64;
    }
}

/// The splitmix64 finaliser: routes keys identically on every process.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

type FastMap<K> = HashMap<K, u32, BuildHasherDefault<KeyHasher>>;

enum Keys {
    /// No keys: one global group.
    Global,
    /// One integer-like key.
    Int {
        map: FastMap<i64>,
        null_group: Option<u32>,
        values: Vec<Option<i64>>,
        data_type: DataType,
        last: Option<(i64, u32)>,
    },
    /// Any keys, in arrow's row format.
    Rows { converter: RowConverter, map: FastMap<Box<[u8]>>, rows: Vec<Box<[u8]>> },
}

/// Assigns dense group ids to key values.
pub(crate) struct GroupTable {
    keys: Keys,
    groups: usize,
}

impl GroupTable {
    /// A table for keys of these types.
    pub fn try_new(types: &[DataType]) -> Result<Self, ArrowError> {
        let keys = match types {
            [] => Keys::Global,
            [t] if t.is_integer() => Keys::Int {
                map: FastMap::default(),
                null_group: None,
                values: Vec::new(),
                data_type: t.clone(),
                last: None,
            },
            _ => Keys::Rows {
                converter: RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?,
                map: FastMap::default(),
                rows: Vec::new(),
            },
        };
        Ok(Self { keys, groups: usize::from(matches!(types, [])) })
    }

    /// Number of groups so far.
    pub fn len(&self) -> usize {
        self.groups
    }

    /// Writes the group id of each row of `keys` into `ids`, creating groups as needed.
    pub fn group_ids(&mut self, keys: &[ArrayRef], rows: usize, ids: &mut Vec<u32>) -> Result<(), ArrowError> {
        ids.clear();
        let groups = &mut self.groups;
        match &mut self.keys {
            Keys::Global => ids.resize(rows, 0),
            Keys::Int { map, null_group, values, last, .. } => {
                let cast_keys;
                let a: &dyn IntKeys = match keys[0].data_type() {
                    DataType::Int32 => keys[0].as_primitive::<Int32Type>(),
                    DataType::Int64 => keys[0].as_primitive::<Int64Type>(),
                    _ => {
                        cast_keys = cast(&keys[0], &DataType::Int64)?;
                        cast_keys.as_primitive::<Int64Type>()
                    }
                };
                for i in 0..rows {
                    let id = if a.null_at(i) {
                        *null_group.get_or_insert_with(|| {
                            values.push(None);
                            *groups += 1;
                            (*groups - 1) as u32
                        })
                    } else {
                        let v = a.key_at(i);
                        match last {
                            Some((k, id)) if *k == v => *id,
                            _ => {
                                let id = *map.entry(v).or_insert_with(|| {
                                    values.push(Some(v));
                                    *groups += 1;
                                    (*groups - 1) as u32
                                });
                                *last = Some((v, id));
                                id
                            }
                        }
                    };
                    ids.push(id);
                }
            }
            Keys::Rows { converter, map, rows: stored } => {
                let converted = converter.convert_columns(keys)?;
                for row in converted.iter() {
                    let bytes = row.as_ref();
                    let id = match map.get(bytes) {
                        Some(id) => *id,
                        None => {
                            let id = *groups as u32;
                            map.insert(bytes.into(), id);
                            stored.push(bytes.into());
                            *groups += 1;
                            id
                        }
                    };
                    ids.push(id);
                }
            }
        }
        Ok(())
    }

    /// A routing hash of each group's key, identical on every process.
    pub fn hashes(&self) -> Vec<u64> {
        match &self.keys {
            Keys::Global => vec![0],
            Keys::Int { values, .. } => values.iter().map(|v| v.map_or(0, |v| splitmix64(v as u64))).collect(),
            Keys::Rows { rows, .. } => rows
                .iter()
                .map(|r| {
                    let mut h = KeyHasher::default();
                    h.write(r);
                    h.finish()
                })
                .collect(),
        }
    }

    /// The key columns of the groups `take` (or all groups, in id order).
    pub fn key_arrays(&self, take: &[u32]) -> Result<Vec<ArrayRef>, ArrowError> {
        match &self.keys {
            Keys::Global => Ok(vec![]),
            Keys::Int { values, data_type, .. } => {
                let a: ArrayRef = Arc::new(take.iter().map(|&g| values[g as usize]).collect::<Int64Array>());
                Ok(vec![cast(&a, data_type)?])
            }
            Keys::Rows { converter, rows, .. } => {
                let parser = converter.parser();
                converter.convert_rows(take.iter().map(|&g| parser.parse(&rows[g as usize])))
            }
        }
    }
}

/// Integer key columns read without widening copies.
trait IntKeys {
    fn null_at(&self, i: usize) -> bool;
    fn key_at(&self, i: usize) -> i64;
}

impl<T: ArrowPrimitiveType> IntKeys for PrimitiveArray<T>
where
    T::Native: Into<i64>,
{
    fn null_at(&self, i: usize) -> bool {
        self.is_null(i)
    }
    fn key_at(&self, i: usize) -> i64 {
        self.value(i).into()
    }
}
