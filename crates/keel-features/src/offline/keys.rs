//! Entity keys as hash-map keys: a single integer key as an `i64`, any other
//! key (strings, composite keys) in Arrow's row format.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, Rows, SortField};

use crate::Result;

/// A hash map from entity keys of fixed column types to values `V`.
pub(crate) struct KeyTable<V> {
    types: Vec<DataType>,
    map: KeyMap<V>,
}

enum KeyMap<V> {
    Int(HashMap<i64, V, BuildKeyHasher>),
    Rows(RowConverter, HashMap<Box<[u8]>, V, BuildKeyHasher>),
}

/// One batch of keys, encoded for lookups; rows with a null in any key
/// column match nothing (as in SQL joins).
pub(crate) enum EncodedKeys {
    Int(Int64Array),
    Rows(Rows, Option<NullBuffer>),
}

impl<V> KeyTable<V> {
    pub(crate) fn new(types: Vec<DataType>) -> Result<Self> {
        let map = match types.as_slice() {
            [single] if is_small_integer(single) => KeyMap::Int(HashMap::default()),
            _ => {
                let fields = types
                    .iter()
                    .map(|data_type| SortField::new(data_type.clone()))
                    .collect();
                KeyMap::Rows(RowConverter::new(fields)?, HashMap::default())
            }
        };
        Ok(Self { types, map })
    }

    pub(crate) fn len(&self) -> usize {
        match &self.map {
            KeyMap::Int(map) => map.len(),
            KeyMap::Rows(_, map) => map.len(),
        }
    }

    /// Encodes key columns, cast to the table's types first.
    pub(crate) fn encode(&self, columns: &[ArrayRef]) -> Result<EncodedKeys> {
        let mut cast_columns = Vec::with_capacity(columns.len());
        for (column, data_type) in columns.iter().zip(&self.types) {
            if column.data_type() == data_type {
                cast_columns.push(column.clone());
            } else {
                cast_columns.push(cast(column, data_type)?);
            }
        }
        match &self.map {
            KeyMap::Int(_) => {
                let ints = cast(&cast_columns[0], &DataType::Int64)?;
                Ok(EncodedKeys::Int(ints.as_primitive::<Int64Type>().clone()))
            }
            KeyMap::Rows(converter, _) => {
                let nulls = cast_columns.iter().fold(None, |nulls, column| {
                    NullBuffer::union(nulls.as_ref(), column.logical_nulls().as_ref())
                });
                Ok(EncodedKeys::Rows(
                    converter.convert_columns(&cast_columns)?,
                    nulls,
                ))
            }
        }
    }

    /// The value of the key in row `row` of `keys`, if the table holds it.
    #[inline]
    pub(crate) fn get(&self, keys: &EncodedKeys, row: usize) -> Option<&V> {
        match (&self.map, keys) {
            (KeyMap::Int(map), EncodedKeys::Int(ints)) => {
                if ints.is_null(row) {
                    return None;
                }
                map.get(&ints.value(row))
            }
            (KeyMap::Rows(_, map), EncodedKeys::Rows(rows, nulls)) => {
                if nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
                    return None;
                }
                map.get(rows.row(row).as_ref())
            }
            _ => None,
        }
    }

    /// The value of the key in row `row` of `keys`, inserted by `make` if
    /// the key is new; `None` for a null key.
    #[inline]
    pub(crate) fn get_or_insert_with(
        &mut self,
        keys: &EncodedKeys,
        row: usize,
        make: impl FnOnce() -> V,
    ) -> Option<&mut V> {
        match (&mut self.map, keys) {
            (KeyMap::Int(map), EncodedKeys::Int(ints)) => {
                if ints.is_null(row) {
                    return None;
                }
                Some(map.entry(ints.value(row)).or_insert_with(make))
            }
            (KeyMap::Rows(_, map), EncodedKeys::Rows(rows, nulls)) => {
                if nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
                    return None;
                }
                let key = rows.row(row);
                if !map.contains_key(key.as_ref()) {
                    map.insert(key.as_ref().into(), make());
                }
                map.get_mut(key.as_ref())
            }
            _ => None,
        }
    }

    /// The same keys with values `f(value)`.
    pub(crate) fn map_values<W>(self, mut f: impl FnMut(V) -> W) -> KeyTable<W> {
        let map = match self.map {
            KeyMap::Int(map) => KeyMap::Int(
                map.into_iter()
                    .map(|(key, value)| (key, f(value)))
                    .collect(),
            ),
            KeyMap::Rows(converter, map) => KeyMap::Rows(
                converter,
                map.into_iter()
                    .map(|(key, value)| (key, f(value)))
                    .collect(),
            ),
        };
        KeyTable {
            types: self.types,
            map,
        }
    }

    /// The values, in no particular order.
    pub(crate) fn into_values(self) -> Vec<V> {
        match self.map {
            KeyMap::Int(map) => map.into_values().collect(),
            KeyMap::Rows(_, map) => map.into_values().collect(),
        }
    }
}

/// Integer types whose every value fits an `i64`.
fn is_small_integer(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

type BuildKeyHasher = BuildHasherDefault<KeyHasher>;

/// A fast hasher for keys read from the user's own files (FxHash's mixing,
/// with a final avalanche so that sequential ids spread over the table).
/// Not DoS-resistant, which these keys do not need.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    #[inline]
    fn write_i64(&mut self, value: i64) {
        self.add(value as u64);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // murmur3's fmix64
        let mut hash = self.0;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^ (hash >> 33)
    }
}
