//! The latest source row per entity key within a time window (what
//! materialization writes to the online store): one pass keeps the best row
//! per key, a second reads those rows back. Memory: O(distinct keys).

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::gather::{available_threads, gather};
use super::keys::KeyTable;
use super::source::Source;
use super::timestamps::to_micros;
use super::{cast_feature, resolve_view, ReadOptions, ViewQuery};
use crate::Result;

/// The output column holding each row's event time.
const EVENT_TIMESTAMP: &str = "event_timestamp";

pub(crate) fn read_latest(
    view: &ViewQuery,
    start_micros: i64,
    end_micros: i64,
    options: &ReadOptions,
) -> Result<RecordBatch> {
    let mut source = Source::open(&view.source)?;
    let columns = resolve_view(&mut source, view)?;
    let key_types: Vec<DataType> = columns
        .keys
        .iter()
        .map(|&column| source.data_type(column).clone())
        .collect();
    // The best row per key: (event time, created time, row id), greatest wins.
    let mut best: KeyTable<(i64, i64, u64)> = KeyTable::new(key_types.clone())?;

    let n_keys = columns.keys.len();
    let mut scanned = columns.keys.clone();
    scanned.push(columns.event);
    scanned.extend(columns.created);
    let batch_size = options.batch_size.max(1);
    if start_micros < end_micros {
        for unit in source.units() {
            source.scan(&unit, &scanned, batch_size, |first_row, arrays| {
                let encoded = best.encode(&arrays[..n_keys])?;
                let events = to_micros(&arrays[n_keys])?;
                let created = arrays.get(n_keys + 1).map(to_micros).transpose()?;
                for row in 0..events.len() {
                    if events.is_null(row) {
                        continue;
                    }
                    let event = events.value(row);
                    if event < start_micros || event >= end_micros {
                        continue;
                    }
                    let created = match &created {
                        Some(created) if !created.is_null(row) => created.value(row),
                        _ => i64::MIN,
                    };
                    let candidate = (event, created, first_row + row as u64);
                    if let Some(slot) = best.get_or_insert_with(&encoded, row, || candidate) {
                        if candidate > *slot {
                            *slot = candidate;
                        }
                    }
                }
                Ok(ControlFlow::Continue(()))
            })?;
        }
    }

    let mut winners: Vec<(u64, i64)> = best
        .into_values()
        .into_iter()
        .map(|(event, _, row_id)| (row_id, event))
        .collect();
    winners.sort_unstable();
    let row_ids: Vec<u64> = winners.iter().map(|&(row_id, _)| row_id).collect();
    let mut read = columns.keys.clone();
    read.extend(&columns.features);
    let workers = available_threads(options.threads);
    let gathered = gather(&source, &row_ids, &read, batch_size, workers)?;

    let mut fields = Vec::with_capacity(gathered.len() + 1);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(gathered.len() + 1);
    for ((name, data_type), values) in view.join_keys.iter().zip(&key_types).zip(&gathered) {
        fields.push(Field::new(name, data_type.clone(), true));
        arrays.push(values.clone());
    }
    let utc = Arc::<str>::from("UTC");
    fields.push(Field::new(
        EVENT_TIMESTAMP,
        DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())),
        true,
    ));
    let events: TimestampMicrosecondArray = winners.iter().map(|&(_, event)| Some(event)).collect();
    arrays.push(Arc::new(events.with_timezone(utc)));
    for ((name, declared), values) in view.features.iter().zip(&gathered[n_keys..]) {
        fields.push(Field::new(name, declared.clone(), true));
        arrays.push(cast_feature(values, declared, view, name)?);
    }
    let batch_options = RecordBatchOptions::new().with_row_count(Some(row_ids.len()));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &batch_options,
    )?)
}
