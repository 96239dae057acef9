//! Partitions and their files: where a record's rows go
//! (`{root}/{model}/{version}/date=YYYY-MM-DD/hour=HH/`, UTC, hive-style),
//! the rows buffered for the next row group, and the Parquet file being
//! written, which appears under its final name only once finished.

use std::fs::{self, File};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use keel_core::tensor::{f16_to_f32, TensorData};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::format::KeyValue;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::schema::{arrow_schema, ColumnKind, ColumnSource, RecordPlan, Signature, TensorRef};
use super::InferenceRecord;

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// Everything outside `[A-Za-z0-9._-]` is percent-encoded in directory names.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

/// A model version's rows of one UTC hour.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PartitionKey {
    pub model_name: String,
    pub model_version: String,
    /// Hours since the Unix epoch.
    pub hour: i64,
}

impl PartitionKey {
    pub(super) fn for_record(record: &InferenceRecord) -> PartitionKey {
        PartitionKey {
            model_name: record.model_name.clone(),
            model_version: record.model_version.clone(),
            hour: unix_micros(record.timestamp).div_euclid(MICROS_PER_HOUR),
        }
    }

    pub(super) fn directory(&self, root: &Path) -> PathBuf {
        let start =
            DateTime::<Utc>::from_timestamp(self.hour.saturating_mul(3600), 0).unwrap_or_default();
        root.join(path_segment(&self.model_name))
            .join(path_segment(&self.model_version))
            .join(start.format("date=%Y-%m-%d").to_string())
            .join(start.format("hour=%H").to_string())
    }
}

/// Microseconds since the Unix epoch, negative before it, saturating.
pub(super) fn unix_micros(timestamp: SystemTime) -> i64 {
    match timestamp.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => {
            i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |micros| -micros)
        }
    }
}

/// A name usable as one directory: `[A-Za-z0-9._-]` kept, the rest
/// percent-encoded, and a leading `.` or `_` encoded too, because readers
/// (pyarrow, Spark) skip paths that start with them and `.`/`..` would
/// leave the directory. An empty name becomes `%00`.
pub(super) fn path_segment(name: &str) -> String {
    if name.is_empty() {
        return "%00".to_owned();
    }
    let encoded = utf8_percent_encode(name, PATH_SEGMENT).to_string();
    match encoded.as_bytes()[0] {
        b'.' => format!("%2E{}", &encoded[1..]),
        b'_' => format!("%5F{}", &encoded[1..]),
        _ => encoded,
    }
}

/// Why a file operation failed, for the rate-limited log line.
#[derive(Debug)]
pub(super) struct WriteError {
    pub action: &'static str,
    pub path: PathBuf,
    pub message: String,
}

impl WriteError {
    fn new(action: &'static str, path: &Path, error: impl std::fmt::Display) -> WriteError {
        WriteError {
            action,
            path: path.to_owned(),
            message: error.to_string(),
        }
    }
}

/// The open part file of a partition and the rows not yet written to it.
pub(super) struct PartitionFile {
    pub signature: Signature,
    schema: SchemaRef,
    temp_path: PathBuf,
    final_path: PathBuf,
    writer: ArrowWriter<File>,
    buffer: RowBuffer,
    /// Rows already written as row groups.
    written_rows: usize,
    pub last_write: Instant,
}

impl PartitionFile {
    /// Creates `.part-{uuid}.parquet.tmp` in the partition's directory.
    pub(super) fn create(
        root: &Path,
        key: &PartitionKey,
        signature: Signature,
        row_group_rows: usize,
    ) -> Result<PartitionFile, WriteError> {
        let directory = key.directory(root);
        fs::create_dir_all(&directory)
            .map_err(|error| WriteError::new("create directory", &directory, error))?;
        let file_id = uuid::Uuid::new_v4();
        let temp_path = directory.join(format!(".part-{file_id}.parquet.tmp"));
        let final_path = directory.join(format!("part-{file_id}.parquet"));
        let file = File::create_new(&temp_path)
            .map_err(|error| WriteError::new("create file", &temp_path, error))?;
        let schema = arrow_schema(&signature);
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(row_group_rows)
            .set_key_value_metadata(Some(vec![
                KeyValue::new("keel.model_name".to_owned(), key.model_name.clone()),
                KeyValue::new("keel.model_version".to_owned(), key.model_version.clone()),
            ]))
            .build();
        let writer = match ArrowWriter::try_new(file, Arc::clone(&schema), Some(properties)) {
            Ok(writer) => writer,
            Err(error) => {
                let _ = fs::remove_file(&temp_path);
                return Err(WriteError::new("start parquet file", &temp_path, error));
            }
        };
        let buffer = RowBuffer::new(&signature, row_group_rows);
        Ok(PartitionFile {
            signature,
            schema,
            temp_path,
            final_path,
            writer,
            buffer,
            written_rows: 0,
            last_write: Instant::now(),
        })
    }

    pub(super) fn buffered_rows(&self) -> usize {
        self.buffer.rows
    }

    /// Rows written or buffered.
    pub(super) fn total_rows(&self) -> usize {
        self.written_rows + self.buffer.rows
    }

    /// Buffers rows `rows` of `record`; `Err` only on an internal
    /// inconsistency, after which the file must be abandoned.
    pub(super) fn append(
        &mut self,
        record: &InferenceRecord,
        plan: &RecordPlan,
        rows: Range<usize>,
    ) -> Result<(), String> {
        self.last_write = Instant::now();
        self.buffer.append(record, plan, rows)
    }

    /// Writes the buffered rows as one row group.
    pub(super) fn write_row_group(&mut self) -> Result<(), WriteError> {
        if self.buffer.rows == 0 {
            return Ok(());
        }
        let rows = self.buffer.rows;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), self.buffer.finish())
            .map_err(|error| WriteError::new("assemble row group", &self.temp_path, error))?;
        self.writer
            .write(&batch)
            .and_then(|()| self.writer.flush())
            .map_err(|error| WriteError::new("write row group", &self.temp_path, error))?;
        self.written_rows += rows;
        Ok(())
    }

    /// Writes the last row group and the footer, syncs, and renames the file
    /// to its final name; returns the number of rows in it.
    pub(super) fn finish(mut self) -> Result<usize, WriteError> {
        if let Err(error) = self.write_row_group() {
            self.abandon();
            return Err(error);
        }
        let temp_path = self.temp_path;
        let file = self
            .writer
            .into_inner()
            .map_err(|error| WriteError::new("finish parquet file", &temp_path, error));
        let synced = file.and_then(|file| {
            file.sync_data()
                .map_err(|error| WriteError::new("sync file", &temp_path, error))
        });
        let renamed = synced.and_then(|()| {
            fs::rename(&temp_path, &self.final_path)
                .map_err(|error| WriteError::new("rename file", &self.final_path, error))
        });
        if let Err(error) = renamed {
            let _ = fs::remove_file(&temp_path);
            return Err(error);
        }
        Ok(self.written_rows)
    }

    /// Gives up on the file: its rows are lost, its temporary file removed.
    pub(super) fn abandon(self) {
        drop(self.writer);
        let _ = fs::remove_file(&self.temp_path);
    }
}

/// Rows buffered for the next row group, column by column.
struct RowBuffer {
    rows: usize,
    timestamps: TimestampMicrosecondBuilder,
    request_ids: StringBuilder,
    row_indices: UInt32Builder,
    columns: Vec<ColumnBuilder>,
}

impl RowBuffer {
    fn new(signature: &Signature, capacity: usize) -> RowBuffer {
        RowBuffer {
            rows: 0,
            timestamps: TimestampMicrosecondBuilder::with_capacity(capacity),
            request_ids: StringBuilder::new(),
            row_indices: UInt32Builder::with_capacity(capacity),
            columns: signature
                .iter()
                .map(|(_, kind)| ColumnBuilder::new(*kind, capacity))
                .collect(),
        }
    }

    fn append(
        &mut self,
        record: &InferenceRecord,
        plan: &RecordPlan,
        rows: Range<usize>,
    ) -> Result<(), String> {
        if plan.sources.len() != self.columns.len() {
            return Err("the plan does not match the file's columns".to_owned());
        }
        let timestamp = unix_micros(record.timestamp);
        for row in rows.clone() {
            self.timestamps.append_value(timestamp);
            self.request_ids.append_value(&record.request_id);
            self.row_indices
                .append_value(u32::try_from(row).unwrap_or(u32::MAX));
        }
        for (column, source) in self.columns.iter_mut().zip(&plan.sources) {
            let named = match source.tensor {
                TensorRef::Input(idx) => record.inputs.get(idx),
                TensorRef::Output(idx) => record.outputs.get(idx),
            };
            let Some(named) = named else {
                return Err("the plan names a tensor the record does not have".to_owned());
            };
            column.append(named.tensor.data(), source, rows.clone())?;
        }
        self.rows += rows.len();
        Ok(())
    }

    /// The buffered columns, in schema order; the buffer is empty after.
    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.timestamps.finish().with_timezone("UTC")),
            Arc::new(self.request_ids.finish()),
            Arc::new(self.row_indices.finish()),
        ];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        arrays
    }
}

enum ColumnBuilder {
    Float32(Float32Builder),
    Float64(Float64Builder),
    Int64(Int64Builder),
    UInt64(UInt64Builder),
    Boolean(BooleanBuilder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
}

impl ColumnBuilder {
    fn new(kind: ColumnKind, capacity: usize) -> ColumnBuilder {
        match kind {
            ColumnKind::Float32 => ColumnBuilder::Float32(Float32Builder::with_capacity(capacity)),
            ColumnKind::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(capacity)),
            ColumnKind::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(capacity)),
            ColumnKind::UInt64 => ColumnBuilder::UInt64(UInt64Builder::with_capacity(capacity)),
            ColumnKind::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(capacity)),
            ColumnKind::Utf8 => ColumnBuilder::Utf8(StringBuilder::new()),
            ColumnKind::Binary => ColumnBuilder::Binary(BinaryBuilder::new()),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Float32(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Float64(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Int64(builder) => Arc::new(builder.finish()),
            ColumnBuilder::UInt64(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Boolean(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Utf8(builder) => Arc::new(builder.finish()),
            ColumnBuilder::Binary(builder) => Arc::new(builder.finish()),
        }
    }

    /// Appends the column's value for each row of `rows`. Every index is
    /// checked first, so an error leaves the column unchanged.
    fn append(
        &mut self,
        data: &TensorData,
        source: &ColumnSource,
        rows: Range<usize>,
    ) -> Result<(), String> {
        let indices = rows.map(|row| source.element + row * source.row_stride);
        if let Some(last) = indices.clone().max() {
            if last >= data.len() {
                return Err(format!(
                    "element {last} is past the tensor's {} elements",
                    data.len()
                ));
            }
        }
        match (self, data) {
            (ColumnBuilder::Float32(builder), TensorData::F32(values)) => {
                indices.for_each(|idx| builder.append_value(values[idx]));
            }
            (ColumnBuilder::Float32(builder), TensorData::F16(values)) => {
                indices.for_each(|idx| builder.append_value(f16_to_f32(values[idx])));
            }
            (ColumnBuilder::Float64(builder), TensorData::F64(values)) => {
                indices.for_each(|idx| builder.append_value(values[idx]));
            }
            (ColumnBuilder::UInt64(builder), TensorData::U64(values)) => {
                indices.for_each(|idx| builder.append_value(values[idx]));
            }
            (ColumnBuilder::Boolean(builder), TensorData::Bool(values)) => {
                indices.for_each(|idx| builder.append_value(values[idx]));
            }
            (ColumnBuilder::Int64(builder), data) => append_integers(builder, data, indices)?,
            (ColumnBuilder::Utf8(builder), TensorData::Bytes(values)) => {
                indices.for_each(|idx| builder.append_value(String::from_utf8_lossy(&values[idx])));
            }
            (ColumnBuilder::Binary(builder), TensorData::Bytes(values)) => {
                indices.for_each(|idx| builder.append_value(&values[idx]));
            }
            (_, data) => {
                return Err(format!(
                    "a {} tensor does not fit its column",
                    data.datatype()
                ))
            }
        }
        Ok(())
    }
}

fn append_integers(
    builder: &mut Int64Builder,
    data: &TensorData,
    indices: impl Iterator<Item = usize>,
) -> Result<(), String> {
    match data {
        TensorData::I8(values) => {
            indices.for_each(|idx| builder.append_value(i64::from(values[idx])))
        }
        TensorData::I16(values) => {
            indices.for_each(|idx| builder.append_value(i64::from(values[idx])))
        }
        TensorData::I32(values) => {
            indices.for_each(|idx| builder.append_value(i64::from(values[idx])))
        }
        TensorData::I64(values) => indices.for_each(|idx| builder.append_value(values[idx])),
        TensorData::U8(values) => {
            indices.for_each(|idx| builder.append_value(i64::from(values[idx])))
        }
        TensorData::U16(values) => {
            indices.for_each(|idx| builder.append_value(i64::from(values[idx])))
        }
        TensorData::U32(values) => {
            indices.for_each(|idx| builder.append_value(i64::from(values[idx])))
        }
        other => {
            return Err(format!(
                "a {} tensor does not fit an integer column",
                other.datatype()
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_stay_one_visible_directory() {
        assert_eq!(path_segment("fraud-model_v2.onnx"), "fraud-model_v2.onnx");
        assert_eq!(path_segment("team/model"), "team%2Fmodel");
        assert_eq!(path_segment(".."), "%2E.");
        assert_eq!(path_segment("_hidden"), "%5Fhidden");
        assert_eq!(path_segment("é"), "%C3%A9");
        assert_eq!(path_segment(""), "%00");
    }

    #[test]
    fn partitions_are_utc_hours() {
        // 2024-03-05T07:59:59.999999Z and the hour before the epoch.
        let key = PartitionKey {
            model_name: "m".to_owned(),
            model_version: "3".to_owned(),
            hour: 1_709_625_599 / 3600,
        };
        assert_eq!(
            key.directory(Path::new("/log")),
            Path::new("/log/m/3/date=2024-03-05/hour=07")
        );
        let before_epoch = UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert_eq!(unix_micros(before_epoch).div_euclid(MICROS_PER_HOUR), -1);
    }
}
