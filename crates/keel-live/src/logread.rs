//! Reading a window of the inference log back: the partitions
//! `{root}/{model}/{version}/date=YYYY-MM-DD/hour=HH/part-*.parquet` whose
//! hour overlaps the window (others are never opened), only the columns a
//! monitor needs, only the rows whose `timestamp` lies in the window.
//! Files written under different signatures are unified: a column missing
//! from a file is null there, numeric columns of different widths are
//! widened to Float64.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, BooleanArray};
use arrow::compute::{and, cast, filter_record_batch, kernels::cmp};
use arrow::datatypes::{DataType, Field, Schema, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::LiveError;

/// The fixed columns the inference log writes before the features.
pub const TIMESTAMP_COLUMN: &str = "timestamp";
pub const REQUEST_ID_COLUMN: &str = "request_id";
pub const ROW_COLUMN: &str = "row";

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// As the inference log encodes directory names.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

/// The rows of one model version in a window.
#[derive(Debug, Clone)]
pub struct VersionRows {
    pub version: String,
    /// Batches sharing one schema (the requested columns found in any file).
    pub batches: Vec<RecordBatch>,
}

impl VersionRows {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Reads `model`'s rows with `start_us <= timestamp < end_us` (microseconds
/// since the epoch), keeping `columns` (`None`: every column), per version.
/// Versions without rows in the window are left out.
pub fn read_window(
    root: &Path,
    model: &str,
    start_us: i64,
    end_us: i64,
    columns: Option<&[String]>,
) -> Result<Vec<VersionRows>, LiveError> {
    let model_dir = root.join(utf8_percent_encode(model, PATH_SEGMENT).to_string());
    let mut out = Vec::new();
    for (version, version_dir) in subdirectories(&model_dir)? {
        let version = percent_encoding::percent_decode_str(&version)
            .decode_utf8_lossy()
            .into_owned();
        let mut batches = Vec::new();
        for file in partition_files(&version_dir, start_us, end_us)? {
            batches.extend(read_file(&file, start_us, end_us, columns)?);
        }
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        if !batches.is_empty() {
            out.push(VersionRows {
                version,
                batches: unify(batches)?,
            });
        }
    }
    out.sort_by(|a, b| version_order(&a.version, &b.version));
    Ok(out)
}

/// Numeric versions in numeric order, others after them by name.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

fn io_error(path: &Path, err: std::io::Error) -> LiveError {
    LiveError::Log(format!("cannot read {}: {err}", path.display()))
}

/// `(name, path)` of each subdirectory; none when `dir` does not exist.
fn subdirectories(dir: &Path) -> Result<Vec<(String, PathBuf)>, LiveError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_error(dir, err)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| io_error(dir, err))?;
        if entry
            .file_type()
            .map_err(|err| io_error(dir, err))?
            .is_dir()
        {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
    }
    out.sort();
    Ok(out)
}

/// The finished part files of the hours overlapping `[start_us, end_us)`.
fn partition_files(
    version_dir: &Path,
    start_us: i64,
    end_us: i64,
) -> Result<Vec<PathBuf>, LiveError> {
    let first_hour = start_us.div_euclid(MICROS_PER_HOUR);
    let last_hour = (end_us - 1).div_euclid(MICROS_PER_HOUR);
    let mut files = Vec::new();
    for (date_name, date_dir) in subdirectories(version_dir)? {
        let Some(date) = date_name.strip_prefix("date=") else {
            continue;
        };
        let Ok(day) = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
            continue;
        };
        let day_start_hour = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp().div_euclid(3600))
            .unwrap_or_default();
        if day_start_hour + 23 < first_hour || day_start_hour > last_hour {
            continue;
        }
        for (hour_name, hour_dir) in subdirectories(&date_dir)? {
            let Some(hour) = hour_name
                .strip_prefix("hour=")
                .and_then(|h| h.parse::<i64>().ok())
            else {
                continue;
            };
            let hour = day_start_hour + hour;
            if hour < first_hour || hour > last_hour {
                continue;
            }
            let entries = std::fs::read_dir(&hour_dir).map_err(|err| io_error(&hour_dir, err))?;
            for entry in entries {
                let entry = entry.map_err(|err| io_error(&hour_dir, err))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                // Files being written have a temporary name; only finished ones count.
                if name.starts_with("part-") && name.ends_with(".parquet") {
                    files.push(entry.path());
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(
    path: &Path,
    start_us: i64,
    end_us: i64,
    columns: Option<&[String]>,
) -> Result<Vec<RecordBatch>, LiveError> {
    let bad = |err: &dyn std::fmt::Display| {
        LiveError::Log(format!("cannot read {}: {err}", path.display()))
    };
    let file = File::open(path).map_err(|err| bad(&err))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|err| bad(&err))?;
    let schema = builder.schema().clone();
    let keep: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| {
            field.name() == TIMESTAMP_COLUMN
                || columns.is_none_or(|columns| columns.iter().any(|c| c == field.name()))
        })
        .map(|(index, _)| index)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), keep);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(|err| bad(&err))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|err| bad(&err))?;
        let Some(timestamps) = batch.column_by_name(TIMESTAMP_COLUMN) else {
            return Err(LiveError::Log(format!(
                "{} has no `timestamp` column",
                path.display()
            )));
        };
        let timestamps = cast(
            timestamps,
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
        )
        .map_err(|err| bad(&err))?;
        let timestamps = timestamps.as_primitive::<TimestampMicrosecondType>();
        let lower = cmp::gt_eq(
            timestamps,
            &arrow::array::TimestampMicrosecondArray::new_scalar(start_us),
        )
        .map_err(|err| bad(&err))?;
        let upper = cmp::lt(
            timestamps,
            &arrow::array::TimestampMicrosecondArray::new_scalar(end_us),
        )
        .map_err(|err| bad(&err))?;
        let inside: BooleanArray = and(&lower, &upper).map_err(|err| bad(&err))?;
        out.push(filter_record_batch(&batch, &inside).map_err(|err| bad(&err))?);
    }
    Ok(out)
}

/// One schema for all batches: the union of their columns in first-seen
/// order; a column's type is the first seen, widened to Float64 where
/// numeric types differ, to Utf8 where anything else differs.
fn unify(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, LiveError> {
    let mut types: Vec<(String, DataType)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for batch in &batches {
        for field in batch.schema().fields() {
            match index.get(field.name()) {
                Some(&at) => {
                    let current = &types[at].1;
                    if current != field.data_type() {
                        let widened = if current.is_numeric() && field.data_type().is_numeric() {
                            DataType::Float64
                        } else {
                            DataType::Utf8
                        };
                        types[at].1 = widened;
                    }
                }
                None => {
                    index.insert(field.name().clone(), types.len());
                    types.push((field.name().clone(), field.data_type().clone()));
                }
            }
        }
    }
    let schema = Arc::new(Schema::new(
        types
            .iter()
            .map(|(name, data_type)| Field::new(name, data_type.clone(), true))
            .collect::<Vec<_>>(),
    ));
    batches
        .into_iter()
        .map(|batch| {
            let columns: Vec<ArrayRef> = types
                .iter()
                .map(|(name, data_type)| match batch.column_by_name(name) {
                    Some(column) if column.data_type() == data_type => Ok(column.clone()),
                    Some(column) => cast(column, data_type),
                    None => Ok(new_null_array(data_type, batch.num_rows())),
                })
                .collect::<Result<_, _>>()
                .map_err(|err| {
                    LiveError::Log(format!("cannot unify inference-log files: {err}"))
                })?;
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|err| LiveError::Log(format!("cannot unify inference-log files: {err}")))
        })
        .collect()
}

/// Microseconds since the epoch.
pub fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

/// A column as text values (nulls as `None`), for joining and labels.
pub fn text_values(column: &dyn Array) -> Result<Vec<Option<String>>, LiveError> {
    let text = cast(column, &DataType::Utf8)
        .map_err(|err| LiveError::Log(format!("cannot read a column as text: {err}")))?;
    let text = text.as_string::<i32>();
    Ok((0..text.len())
        .map(|i| text.is_valid(i).then(|| text.value(i).to_owned()))
        .collect())
}

/// A column as numbers (nulls and non-numbers as `None`).
pub fn number_values(column: &dyn Array) -> Result<Vec<Option<f64>>, LiveError> {
    let numbers = cast(column, &DataType::Float64)
        .map_err(|err| LiveError::Log(format!("cannot read a column as numbers: {err}")))?;
    let numbers = numbers.as_primitive::<arrow::datatypes::Float64Type>();
    Ok((0..numbers.len())
        .map(|i| numbers.is_valid(i).then(|| numbers.value(i)))
        .collect())
}
