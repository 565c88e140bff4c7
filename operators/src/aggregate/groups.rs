//! Group tables: map key values to dense group ids. Integer keys (one, or up to four) take a
//! fast path (with a one-entry cache, since catalogs are laid out by tract/patch and a view's
//! contribution query groups by file too); any other key list goes through arrow's row format.

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
    /// Two to four integer-like keys (each row's key: values, and a bit per NULL).
    Ints { map: FastMap<IntsKey>, values: Vec<IntsKey>, data_types: Vec<DataType>, last: Option<(IntsKey, u32)> },
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
            [t] if fits_i64(t) => Keys::Int {
                map: FastMap::default(),
                null_group: None,
                values: Vec::new(),
                data_type: t.clone(),
                last: None,
            },
            _ if (2..=MAX_INT_KEYS).contains(&types.len()) && types.iter().all(fits_i64) => {
                Keys::Ints { map: FastMap::default(), values: Vec::new(), data_types: types.to_vec(), last: None }
            }
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
            Keys::Ints { map, values, last, .. } => {
                let widened = keys.iter().map(widen).collect::<Result<Vec<_>, _>>()?;
                // Key columns constant over the batch (a contribution query's file, a key
                // the files are laid out by) are read once, not per row.
                let mut template: IntsKey = ([0; MAX_INT_KEYS], 0);
                let mut varying: Vec<(usize, &dyn IntKeys)> = Vec::with_capacity(keys.len());
                for (k, (w, key)) in widened.iter().zip(keys).enumerate() {
                    // An Int32 or Int64 column, or its Int64 copy.
                    let array = w.as_ref().unwrap_or(key);
                    match constant(array, rows) {
                        Some(v) => template.0[k] = v,
                        None if array.data_type() == &DataType::Int32 => {
                            varying.push((k, array.as_primitive::<Int32Type>()))
                        }
                        None => varying.push((k, array.as_primitive::<Int64Type>())),
                    }
                }
                if varying.is_empty() && rows > 0 {
                    ids.resize(rows, ints_id(map, values, groups, last, template));
                    return Ok(());
                }
                for i in 0..rows {
                    let mut key = template;
                    for &(k, c) in &varying {
                        if c.null_at(i) {
                            key.1 |= 1 << k;
                        } else {
                            key.0[k] = c.key_at(i);
                        }
                    }
                    ids.push(ints_id(map, values, groups, last, key));
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
            Keys::Ints { values, .. } => values
                .iter()
                .map(|(v, nulls)| v.iter().fold(splitmix64(*nulls as u64), |h, &x| splitmix64(h ^ x as u64)))
                .collect(),
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
            Keys::Ints { values, data_types, .. } => data_types
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    let a: ArrayRef = Arc::new(
                        take.iter()
                            .map(|&g| {
                                let (v, nulls) = values[g as usize];
                                (nulls & (1 << k) == 0).then_some(v[k])
                            })
                            .collect::<Int64Array>(),
                    );
                    cast(&a, t)
                })
                .collect(),
            Keys::Rows { converter, rows, .. } => {
                let parser = converter.parser();
                converter.convert_rows(take.iter().map(|&g| parser.parse(&rows[g as usize])))
            }
        }
    }
}

/// The group of an integer key list (the last one's again, or one found or made in `map`).
fn ints_id(
    map: &mut FastMap<IntsKey>,
    values: &mut Vec<IntsKey>,
    groups: &mut usize,
    last: &mut Option<(IntsKey, u32)>,
    key: IntsKey,
) -> u32 {
    match last {
        Some((k, id)) if *k == key => *id,
        _ => {
            let id = *map.entry(key).or_insert_with(|| {
                values.push(key);
                *groups += 1;
                (*groups - 1) as u32
            });
            *last = Some((key, id));
            id
        }
    }
}

/// Integer types whose every value is an `i64` (UInt64 keys take the row format).
fn fits_i64(t: &DataType) -> bool {
    t.is_integer() && *t != DataType::UInt64
}

/// Most integer keys the `Ints` path takes.
const MAX_INT_KEYS: usize = 4;

/// A row's integer keys: values (0 where NULL) and a bit per NULL key.
type IntsKey = ([i64; MAX_INT_KEYS], u8);

/// Integer key columns other than Int32 and Int64, widened to Int64 (None: read as they are).
fn widen(keys: &ArrayRef) -> Result<Option<ArrayRef>, ArrowError> {
    match keys.data_type() {
        DataType::Int32 | DataType::Int64 => Ok(None),
        _ => cast(keys, &DataType::Int64).map(Some),
    }
}

/// The value every one of the first `rows` rows of an Int32/Int64 key column has, if they all
/// have one (no NULL).
fn constant(a: &ArrayRef, rows: usize) -> Option<i64> {
    fn all_equal<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>, rows: usize) -> Option<i64>
    where
        T::Native: Into<i64>,
    {
        let values = &a.values()[..rows.min(a.len())];
        let first = *values.first()?;
        // Chunks compared without a branch per value (so the comparison vectorises), and
        // left at the first chunk that differs.
        let same = |c: &[T::Native]| c.iter().fold(true, |all, v| all & (*v == first));
        let mut chunks = values.chunks_exact(64);
        (a.null_count() == 0 && chunks.all(same) && same(chunks.remainder())).then(|| first.into())
    }
    match a.data_type() {
        DataType::Int32 => all_equal(a.as_primitive::<Int32Type>(), rows),
        DataType::Int64 => all_equal(a.as_primitive::<Int64Type>(), rows),
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int16Array, Int32Array, UInt8Array};
    use std::collections::HashMap;

    /// Several integer keys (with NULLs, of mixed widths) get the same groups as a plain map
    /// of the key tuples, across batches, and give their keys back.
    #[test]
    fn integer_key_lists_group_like_a_map_of_tuples() {
        let types = [DataType::Int32, DataType::Int64, DataType::UInt8, DataType::Int16];
        let mut table = GroupTable::try_new(&types).unwrap();
        assert!(matches!(table.keys, Keys::Ints { .. }));
        let mut reference: HashMap<Vec<Option<i64>>, u32> = HashMap::new();
        let mut first_keys: Vec<Vec<Option<i64>>> = Vec::new();
        let mut state = 7u64;
        let mut next = move |m: u64| {
            state = splitmix64(state);
            state % m
        };
        for _batch in 0..3 {
            let n = 500;
            let mut cols: Vec<Vec<Option<i64>>> = vec![vec![]; 4];
            for _ in 0..n {
                for (k, col) in cols.iter_mut().enumerate() {
                    let v = if next(10) == 0 { None } else { Some(next(3 + k as u64) as i64 - 1) };
                    col.push(v);
                }
            }
            let keys: Vec<ArrayRef> = vec![
                Arc::new(cols[0].iter().map(|v| v.map(|x| x as i32)).collect::<Int32Array>()),
                Arc::new(cols[1].iter().copied().collect::<Int64Array>()),
                Arc::new(cols[2].iter().map(|v| v.map(|x| (x + 1) as u8)).collect::<UInt8Array>()),
                Arc::new(cols[3].iter().map(|v| v.map(|x| x as i16)).collect::<Int16Array>()),
            ];
            let mut ids = Vec::new();
            table.group_ids(&keys, n, &mut ids).unwrap();
            for (i, &id) in ids.iter().enumerate() {
                let mut tuple: Vec<Option<i64>> = (0..4).map(|k| cols[k][i]).collect();
                tuple[2] = tuple[2].map(|x| x + 1);
                let expected = *reference.entry(tuple.clone()).or_insert_with(|| {
                    first_keys.push(tuple);
                    (first_keys.len() - 1) as u32
                });
                assert_eq!(id, expected, "row {i}");
            }
        }
        assert_eq!(table.len(), reference.len());
        let all: Vec<u32> = (0..table.len() as u32).collect();
        let arrays = table.key_arrays(&all).unwrap();
        for (k, (array, t)) in arrays.iter().zip(&types).enumerate() {
            assert_eq!(array.data_type(), t);
            let values = cast(array, &DataType::Int64).unwrap();
            let values = values.as_primitive::<Int64Type>();
            for (g, key) in first_keys.iter().enumerate() {
                assert_eq!(values.is_valid(g).then(|| values.value(g)), key[k], "group {g}, key {k}");
            }
        }
        assert_eq!(table.hashes().len(), table.len());
    }

    /// Key columns constant over a batch (all, some, or one that is constant but for a NULL)
    /// give the same groups as a plain map, and the same ids as rows read one by one.
    #[test]
    fn constant_key_columns_group_like_a_map_of_tuples() {
        let mut table = GroupTable::try_new(&[DataType::Int64, DataType::Int32]).unwrap();
        let mut reference: HashMap<(Option<i64>, Option<i32>), u32> = HashMap::new();
        type Columns = (Vec<Option<i64>>, Vec<Option<i32>>);
        let batches: Vec<Columns> = vec![
            (vec![Some(7); 5], vec![Some(3); 5]),
            (vec![Some(7); 4], vec![Some(1), Some(3), Some(1), Some(2)]),
            (vec![Some(8); 3], vec![Some(3); 3]),
            (vec![Some(7), None, Some(7)], vec![Some(3); 3]),
            (vec![Some(7); 2], vec![Some(3); 2]),
        ];
        for (a, b) in batches {
            let n = a.len();
            let keys: Vec<ArrayRef> = vec![
                Arc::new(a.iter().copied().collect::<Int64Array>()),
                Arc::new(b.iter().copied().collect::<Int32Array>()),
            ];
            let mut ids = Vec::new();
            table.group_ids(&keys, n, &mut ids).unwrap();
            assert_eq!(ids.len(), n);
            for (i, &id) in ids.iter().enumerate() {
                let next = reference.len() as u32;
                assert_eq!(id, *reference.entry((a[i], b[i])).or_insert(next), "row {i} of {a:?} {b:?}");
            }
        }
        assert_eq!(table.len(), reference.len());
    }

    #[test]
    fn uint64_keys_take_the_row_format() {
        let table = GroupTable::try_new(&[DataType::UInt64, DataType::Int32]).unwrap();
        assert!(matches!(table.keys, Keys::Rows { .. }));
        let table = GroupTable::try_new(&[DataType::UInt64]).unwrap();
        assert!(matches!(table.keys, Keys::Rows { .. }));
    }
}
