//! The point-in-time join of one feature view against the entity table, in
//! two streamed passes over the source.
//!
//! Pass 1 drops each source row into the bucket of the first entity row (of
//! its key, by time) at or after the row's event time, keeping the best row
//! per bucket; a running maximum along each key's entity rows then gives
//! every entity row the latest source row at or before its time. Pass 2 reads
//! the winning rows' features back. Memory: O(entity rows + one batch).

use std::ops::ControlFlow;

use arrow::array::{new_null_array, Array, ArrayRef, Int64Array, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::DataType;

use super::gather::{gather, run_parallel};
use super::keys::{EncodedKeys, KeyTable};
use super::source::Source;
use super::timestamps::to_micros;
use super::{cast_feature, resolve_view, ReadOptions, ViewQuery};
use crate::{FeatureError, Result};

/// Marks a slot that no source row has reached.
const NO_ROW: u64 = u64::MAX;

/// One entity row's bucket in pass 1: its time, and the best source row
/// (event time, created time, row id; greatest wins) dropped into it. The
/// entity time sits next to the candidate so that one cache line serves both.
#[derive(Clone, Copy)]
struct Slot {
    entity_micros: i64,
    event: i64,
    created: i64,
    row_id: u64,
}

impl Slot {
    #[inline]
    fn offer(&mut self, event: i64, created: i64, row_id: u64) {
        if self.row_id == NO_ROW
            || (event, created, row_id) > (self.event, self.created, self.row_id)
        {
            self.event = event;
            self.created = created;
            self.row_id = row_id;
        }
    }
}

/// The entity table's rows grouped by key and sorted by time within a key.
pub(crate) struct EntityIndex {
    /// Each key's positions `start..end` in the sorted arrays.
    keys: KeyTable<(u32, u32)>,
    /// Key groups in position order: group `g` is `group_start[g]..group_start[g + 1]`.
    group_start: Vec<u32>,
    sorted_micros: Vec<i64>,
    sorted_rows: Vec<u32>,
    n_entity_rows: usize,
}

impl EntityIndex {
    /// Indexes the entity rows; rows with a null key or time match nothing.
    pub(crate) fn build(key_columns: &[ArrayRef], micros: &Int64Array) -> Result<Self> {
        let n_entity_rows = micros.len();
        if u32::try_from(n_entity_rows).is_err() {
            return Err(FeatureError::invalid(format!(
                "the entity table has {n_entity_rows} rows; split it into tables of at most {} rows",
                u32::MAX
            )));
        }
        let types = key_columns
            .iter()
            .map(|column| column.data_type().clone())
            .collect();
        let mut ids: KeyTable<u32> = KeyTable::new(types)?;
        let encoded = ids.encode(key_columns)?;
        let mut entries: Vec<(u32, i64, u32)> = Vec::with_capacity(n_entity_rows);
        for row in 0..n_entity_rows {
            if micros.is_null(row) {
                continue;
            }
            // Fits: there are fewer keys than rows, and rows fit a u32.
            let next_id = ids.len() as u32;
            if let Some(&mut key_id) = ids.get_or_insert_with(&encoded, row, || next_id) {
                entries.push((key_id, micros.value(row), row as u32));
            }
        }
        entries.sort_unstable();
        let mut group_start = vec![0u32; ids.len() + 1];
        for &(key_id, _, _) in &entries {
            group_start[key_id as usize + 1] += 1;
        }
        for key_id in 0..ids.len() {
            group_start[key_id + 1] += group_start[key_id];
        }
        let keys = ids.map_values(|key_id| {
            (
                group_start[key_id as usize],
                group_start[key_id as usize + 1],
            )
        });
        Ok(Self {
            keys,
            group_start,
            sorted_micros: entries.iter().map(|&(_, micros, _)| micros).collect(),
            sorted_rows: entries.iter().map(|&(_, _, row)| row).collect(),
            n_entity_rows,
        })
    }

    /// Entity rows that can match a source row.
    pub(crate) fn n_positions(&self) -> usize {
        self.sorted_rows.len()
    }

    /// A worker's empty buckets, one per position.
    fn empty_slots(&self) -> Vec<Slot> {
        self.sorted_micros
            .iter()
            .map(|&entity_micros| Slot {
                entity_micros,
                event: i64::MIN,
                created: i64::MIN,
                row_id: NO_ROW,
            })
            .collect()
    }

    /// Pass 1 for one batch of source rows.
    fn bucket_rows(
        &self,
        slots: &mut [Slot],
        keys: &EncodedKeys,
        events: &Int64Array,
        created: Option<&Int64Array>,
        first_row: u64,
    ) {
        for row in 0..events.len() {
            if events.is_null(row) {
                continue;
            }
            let Some(&(start, end)) = self.keys.get(keys, row) else {
                continue;
            };
            let event = events.value(row);
            let key_slots = &mut slots[start as usize..end as usize];
            let bucket = key_slots.partition_point(|slot| slot.entity_micros < event);
            let Some(slot) = key_slots.get_mut(bucket) else {
                continue;
            };
            let created = match created {
                Some(created) if !created.is_null(row) => created.value(row),
                _ => i64::MIN,
            };
            slot.offer(event, created, first_row + row as u64);
        }
    }

    /// Each entity row's answer from the buckets: the best row at or before
    /// its time (a running maximum along its key's rows), if within the ttl.
    fn answers(&self, slots: &[Slot], ttl_micros: Option<i64>) -> Vec<Option<u64>> {
        let mut answers = vec![None; self.n_entity_rows];
        for group in self.group_start.windows(2) {
            let mut running: Option<(i64, i64, u64)> = None;
            for position in group[0] as usize..group[1] as usize {
                let slot = &slots[position];
                if slot.row_id != NO_ROW {
                    running = running.max(Some((slot.event, slot.created, slot.row_id)));
                }
                let Some((event, _, row_id)) = running else {
                    continue;
                };
                let fresh = match ttl_micros {
                    Some(ttl) if ttl > 0 => event >= slot.entity_micros.saturating_sub(ttl),
                    _ => true,
                };
                if fresh {
                    answers[self.sorted_rows[position] as usize] = Some(row_id);
                }
            }
        }
        answers
    }
}

/// The output columns of one view: its features for every entity row.
pub(crate) fn join_view(
    index: &EntityIndex,
    entity_key_types: &[DataType],
    view: &ViewQuery,
    options: &ReadOptions,
    workers: usize,
) -> Result<Vec<ArrayRef>> {
    let mut source = Source::open(&view.source)?;
    let columns = resolve_view(&mut source, view)?;
    for ((name, &column), entity_type) in view
        .join_keys
        .iter()
        .zip(&columns.keys)
        .zip(entity_key_types)
    {
        if matches!(entity_type, DataType::Utf8 | DataType::LargeUtf8) {
            // So that a CSV key "007" stays "007" rather than becoming 7.
            source.read_csv_column_as(column, entity_type.clone());
        }
        let source_type = source.data_type(column);
        if !arrow::compute::can_cast_types(source_type, entity_type) {
            return Err(FeatureError::invalid(format!(
                "join key `{name}` is {source_type} in the source of feature view `{}` but \
                 {entity_type} in the entity table; give the entity column a compatible type",
                view.name
            )));
        }
    }
    let n_entity_rows = index.n_entity_rows;
    if index.n_positions() == 0 {
        return Ok(view
            .features
            .iter()
            .map(|(_, data_type)| new_null_array(data_type, n_entity_rows))
            .collect());
    }

    let n_keys = columns.keys.len();
    let mut scanned = columns.keys.clone();
    scanned.push(columns.event);
    scanned.extend(columns.created);
    let units = source.units();
    let batch_size = options.batch_size.max(1);
    let per_worker = run_parallel(
        units.len(),
        workers,
        || index.empty_slots(),
        |slots: &mut Vec<Slot>, unit_index| {
            source.scan(
                &units[unit_index],
                &scanned,
                batch_size,
                |first_row, arrays| {
                    let keys = index.keys.encode(&arrays[..n_keys])?;
                    let events = to_micros(&arrays[n_keys])?;
                    let created = arrays.get(n_keys + 1).map(to_micros).transpose()?;
                    index.bucket_rows(slots, &keys, &events, created.as_ref(), first_row);
                    Ok(ControlFlow::Continue(()))
                },
            )
        },
    )?;
    let mut per_worker = per_worker.into_iter();
    let mut slots = per_worker.next().unwrap_or_default();
    for other in per_worker {
        for (mine, theirs) in slots.iter_mut().zip(other) {
            if theirs.row_id != NO_ROW {
                mine.offer(theirs.event, theirs.created, theirs.row_id);
            }
        }
    }

    let answers = index.answers(&slots, view.ttl_micros);
    let mut row_ids: Vec<u64> = answers.iter().flatten().copied().collect();
    row_ids.sort_unstable();
    row_ids.dedup();
    let gathered = gather(&source, &row_ids, &columns.features, batch_size, workers)?;
    let indices: UInt32Array = answers
        .iter()
        .map(|answer| {
            answer.and_then(|row_id| row_ids.binary_search(&row_id).ok().map(|at| at as u32))
        })
        .collect();
    let mut outputs = Vec::with_capacity(gathered.len());
    for (values, (name, data_type)) in gathered.iter().zip(&view.features) {
        let values = cast_feature(values, data_type, view, name)?;
        outputs.push(take(values.as_ref(), &indices, None)?);
    }
    Ok(outputs)
}
