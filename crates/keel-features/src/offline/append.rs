//! Appending rows to a file source (Feast's push to the offline store). Every
//! write goes to a temporary file first and is renamed into place, so readers
//! see the old rows or the old and new rows, never a half-written file.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::FormatOptions;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::source::{csv_header, list_files, Source};
use super::{FileFormat, SourceSpec, DEFAULT_BATCH_SIZE};
use crate::{FeatureError, Result};

/// Tells apart part files written in the same millisecond by this process.
static PART_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn append_rows(spec: &SourceSpec, batch: &RecordBatch) -> Result<()> {
    let batch = rename_to_stored(spec, batch)?;
    if batch.num_rows() == 0 {
        return Ok(());
    }
    match fs::metadata(&spec.path) {
        Ok(metadata) if metadata.is_dir() => append_to_directory(spec, &batch),
        Ok(_) => match spec.format {
            FileFormat::Parquet => rewrite_parquet(spec, &batch),
            FileFormat::Csv => rewrite_csv(&spec.path, &batch),
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let is_file = spec
                .path
                .extension()
                .is_some_and(|ext| ext == spec.format.extension());
            if is_file {
                let directory = parent_directory(&spec.path);
                fs::create_dir_all(&directory).map_err(|err| FeatureError::io(&directory, err))?;
                let temporary = temporary_path(&spec.path);
                write_new_file(&temporary, spec.format, &batch)?;
                publish(&temporary, &spec.path)
            } else {
                fs::create_dir_all(&spec.path).map_err(|err| FeatureError::io(&spec.path, err))?;
                append_to_directory(spec, &batch)
            }
        }
        Err(err) => Err(FeatureError::io(&spec.path, err)),
    }
}

/// Renames the batch's columns from definition names to stored names.
fn rename_to_stored(spec: &SourceSpec, batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let stored = spec
            .field_mapping
            .iter()
            .find(|(_, definition)| *definition == field.name())
            .map_or(field.name().as_str(), |(stored, _)| stored.as_str());
        if fields.iter().any(|seen: &Field| seen.name() == stored) {
            return Err(FeatureError::invalid(format!(
                "rows pushed to source `{}` hold column `{stored}` twice (after field_mapping)",
                spec.path.display()
            )));
        }
        fields.push(field.as_ref().clone().with_name(stored));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        batch.columns().to_vec(),
    )?)
}

fn append_to_directory(spec: &SourceSpec, batch: &RecordBatch) -> Result<()> {
    let existing = list_files(&spec.path, spec.format)?;
    let batch = if existing.is_empty() {
        batch.clone()
    } else {
        let source = Source::open(spec)?;
        match spec.format {
            FileFormat::Parquet => conform(spec, batch, source.stored_schema(), true)?,
            FileFormat::Csv => conform(spec, batch, source.stored_schema(), false)?,
        }
    };
    loop {
        let millis = chrono::Utc::now().timestamp_millis();
        let counter = PART_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("part-{millis}-{counter:06}.{}", spec.format.extension());
        let destination = spec.path.join(&name);
        if destination.exists() {
            continue;
        }
        let temporary = temporary_path(&destination);
        write_new_file(&temporary, spec.format, &batch)?;
        // A hard link never replaces a file another writer put there meanwhile.
        match fs::hard_link(&temporary, &destination) {
            Ok(()) => {
                fs::remove_file(&temporary).map_err(|err| FeatureError::io(&temporary, err))?;
                return Ok(());
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                fs::remove_file(&temporary).map_err(|err| FeatureError::io(&temporary, err))?;
            }
            // File systems without hard links: a rename is atomic too.
            Err(_) => return publish(&temporary, &destination),
        }
    }
}

/// Rewrites a Parquet file as its old rows then the new ones.
fn rewrite_parquet(spec: &SourceSpec, batch: &RecordBatch) -> Result<()> {
    let source = Source::open(spec)?;
    let schema = source.stored_schema().clone();
    let batch = conform(spec, batch, &schema, true)?;
    let temporary = temporary_path(&spec.path);
    let written = (|| -> Result<()> {
        let file = File::create(&temporary).map_err(|err| FeatureError::io(&temporary, err))?;
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))?;
        let all_columns: Vec<usize> = (0..schema.fields().len()).collect();
        for unit in source.units() {
            source.scan(&unit, &all_columns, DEFAULT_BATCH_SIZE, |_, arrays| {
                writer.write(&RecordBatch::try_new(schema.clone(), arrays.to_vec())?)?;
                Ok(ControlFlow::Continue(()))
            })?;
        }
        writer.write(&batch)?;
        let file = writer.into_inner()?;
        file.sync_all()
            .map_err(|err| FeatureError::io(&temporary, err))
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(err);
    }
    publish(&temporary, &spec.path)
}

/// Rewrites a CSV file as its old bytes then the new rows, in its column order.
fn rewrite_csv(path: &Path, batch: &RecordBatch) -> Result<()> {
    let header = csv_header(path)?;
    let fields: Vec<Field> = header
        .iter()
        .map(|name| Field::new(name, DataType::Utf8, true))
        .collect();
    let spec_for_messages = SourceSpec {
        path: path.to_path_buf(),
        format: FileFormat::Csv,
        timestamp_field: String::new(),
        created_timestamp_column: None,
        field_mapping: Default::default(),
    };
    let batch = conform(
        &spec_for_messages,
        batch,
        &Arc::new(Schema::new(fields)),
        false,
    )?;
    let temporary = temporary_path(path);
    let written = (|| -> Result<()> {
        let mut old = File::open(path).map_err(|err| FeatureError::io(path, err))?;
        let mut file = File::create(&temporary).map_err(|err| FeatureError::io(&temporary, err))?;
        let copied =
            std::io::copy(&mut old, &mut file).map_err(|err| FeatureError::io(path, err))?;
        if copied > 0 {
            let mut last = [0u8; 1];
            old.seek(SeekFrom::End(-1))
                .map_err(|err| FeatureError::io(path, err))?;
            old.read_exact(&mut last)
                .map_err(|err| FeatureError::io(path, err))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .map_err(|err| FeatureError::io(&temporary, err))?;
            }
        }
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(copied == 0)
            .build(BufWriter::new(file));
        writer.write(&with_offset_zones(&batch)?)?;
        let file = writer
            .into_inner()
            .into_inner()
            .map_err(|err| FeatureError::io(&temporary, err.into_error()))?;
        file.sync_all()
            .map_err(|err| FeatureError::io(&temporary, err))
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(err);
    }
    publish(&temporary, path)
}

/// Orders and casts the batch's columns as `schema` has them; absent nullable
/// columns become nulls. With `cast_types` false (CSV, where text is text) the
/// batch keeps its own types.
fn conform(
    spec: &SourceSpec,
    batch: &RecordBatch,
    schema: &SchemaRef,
    cast_types: bool,
) -> Result<RecordBatch> {
    let batch_schema = batch.schema();
    if let Some(extra) = batch_schema
        .fields()
        .iter()
        .find(|field| schema.field_with_name(field.name()).is_err())
    {
        return Err(FeatureError::invalid(format!(
            "source `{}` has no column `{}`; push only the source's columns",
            spec.path.display(),
            extra.name()
        )));
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(column) if !cast_types || column.data_type() == field.data_type() => column.clone(),
            Some(column) => cast_with_options(column, field.data_type(), &options).map_err(|err| {
                FeatureError::invalid(format!(
                    "column `{}` pushed to source `{}` is {}, which does not fit the stored {}: {err}",
                    field.name(),
                    spec.path.display(),
                    column.data_type(),
                    field.data_type()
                ))
            })?,
            None if field.is_nullable() => new_null_array(field.data_type(), batch.num_rows()),
            None => {
                return Err(FeatureError::invalid(format!(
                    "rows pushed to source `{}` lack column `{}`, which the source requires",
                    spec.path.display(),
                    field.name()
                )))
            }
        };
        fields.push(
            field
                .as_ref()
                .clone()
                .with_data_type(column.data_type().clone()),
        );
        columns.push(column);
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Arrow's CSV writer formats zoned timestamps only for offset zones (named
/// zones need chrono-tz); the values are UTC instants, so "+00:00" is exact.
fn with_offset_zones(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Timestamp(unit, Some(_)) => {
                let utc = DataType::Timestamp(*unit, Some("+00:00".into()));
                let data = column
                    .to_data()
                    .into_builder()
                    .data_type(utc.clone())
                    .build()?;
                fields.push(field.as_ref().clone().with_data_type(utc));
                columns.push(arrow::array::make_array(data));
            }
            _ => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn write_new_file(path: &Path, format: FileFormat, batch: &RecordBatch) -> Result<()> {
    let written = (|| -> Result<()> {
        let file = File::create(path).map_err(|err| FeatureError::io(path, err))?;
        let file = match format {
            FileFormat::Parquet => {
                let mut writer =
                    ArrowWriter::try_new(file, batch.schema(), Some(writer_properties()))?;
                writer.write(batch)?;
                writer.into_inner()?
            }
            FileFormat::Csv => {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(BufWriter::new(file));
                writer.write(&with_offset_zones(batch)?)?;
                writer
                    .into_inner()
                    .into_inner()
                    .map_err(|err| FeatureError::io(path, err.into_error()))?
            }
        };
        file.sync_all().map_err(|err| FeatureError::io(path, err))
    })();
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build()
}

/// A hidden name next to `path`: source listings skip names starting with `.`.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let unique = PART_COUNTER.fetch_add(1, Ordering::Relaxed);
    parent_directory(path).join(format!(".{name}.{}-{unique}.tmp", std::process::id()))
}

fn parent_directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn publish(temporary: &Path, destination: &Path) -> Result<()> {
    fs::rename(temporary, destination).map_err(|err| {
        let _ = fs::remove_file(temporary);
        FeatureError::io(destination, err)
    })
}
