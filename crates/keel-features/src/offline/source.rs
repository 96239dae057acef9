//! File sources as the offline engine reads them: the files of a source, its
//! schema, definition names resolved to columns, and rows streamed in batches.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;

use super::{FileFormat, SourceSpec};
use crate::{FeatureError, Result};

/// Rows of a CSV source read to infer its column types.
const CSV_INFER_ROWS: usize = 100_000;

/// A row id is `file index << FILE_SHIFT | row within the file`: it orders rows
/// as the source does without knowing the sizes of the files before it.
const FILE_SHIFT: u32 = 40;

/// An opened source: its files (sorted by path), and its schema as stored.
pub(crate) struct Source {
    path: PathBuf,
    format: FileFormat,
    files: Vec<SourceFile>,
    /// The stored schema (of the first file); every file's batches are cast to it.
    schema: SchemaRef,
    field_mapping: BTreeMap<String, String>,
}

struct SourceFile {
    path: PathBuf,
    layout: FileLayout,
}

enum FileLayout {
    Parquet(ArrowReaderMetadata),
    /// A CSV file's header: files may order their columns differently.
    Csv(Vec<String>),
}

/// A piece of a source read as one stream: a Parquet row group or a CSV file.
pub(crate) struct Unit {
    file: usize,
    row_group: Option<usize>,
    first_row: u64,
    /// Rows in the unit, when known before reading it.
    rows: Option<u64>,
}

impl Unit {
    /// The row ids this unit can hold, as a half-open range.
    pub(crate) fn row_ids(&self) -> (u64, u64) {
        let file_base = (self.file as u64) << FILE_SHIFT;
        match self.rows {
            Some(rows) => (
                file_base + self.first_row,
                file_base + self.first_row + rows,
            ),
            None => (file_base, file_base + (1 << FILE_SHIFT)),
        }
    }
}

impl Source {
    /// Lists the source's files and reads the schema (Parquet footers, or the
    /// header and a sample of rows of the first CSV file).
    pub(crate) fn open(spec: &SourceSpec) -> Result<Self> {
        let paths = list_files(&spec.path, spec.format)?;
        if paths.len() >= 1 << (64 - FILE_SHIFT) {
            return Err(FeatureError::invalid(format!(
                "source `{}` has {} files; merge some of them",
                spec.path.display(),
                paths.len()
            )));
        }
        let mut files = Vec::with_capacity(paths.len());
        let mut schema = None;
        for path in paths {
            let layout = match spec.format {
                FileFormat::Parquet => {
                    let file = File::open(&path).map_err(|err| FeatureError::io(&path, err))?;
                    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
                        .map_err(|err| read_error(&path, err))?;
                    schema.get_or_insert_with(|| metadata.schema().clone());
                    FileLayout::Parquet(metadata)
                }
                FileFormat::Csv => FileLayout::Csv(csv_header(&path)?),
            };
            files.push(SourceFile { path, layout });
        }
        if spec.format == FileFormat::Csv && !files.is_empty() {
            let paths: Vec<&Path> = files.iter().map(|file| file.path.as_path()).collect();
            schema = Some(Arc::new(infer_csv_schema(&paths)?));
        }
        let Some(schema) = schema else {
            return Err(FeatureError::not_found(format!(
                "source `{}` has no {} files",
                spec.path.display(),
                spec.format.extension()
            )));
        };
        Ok(Self {
            path: spec.path.clone(),
            format: spec.format,
            files,
            schema,
            field_mapping: spec.field_mapping.clone(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The stored schema.
    pub(crate) fn stored_schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The schema as definitions see it: columns renamed by the field mapping.
    pub(crate) fn definition_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|field| match self.field_mapping.get(field.name()) {
                Some(renamed) => field.as_ref().clone().with_name(renamed),
                None => field.as_ref().clone(),
            })
            .collect();
        Arc::new(Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ))
    }

    /// The stored column that definitions call `name`: the column the field
    /// mapping renames to `name`, else a column named `name` that the mapping
    /// does not rename.
    pub(crate) fn resolve(&self, name: &str) -> Option<usize> {
        let fields = self.schema.fields();
        fields
            .iter()
            .position(|field| {
                self.field_mapping.get(field.name()).map(String::as_str) == Some(name)
            })
            .or_else(|| {
                fields.iter().position(|field| {
                    field.name() == name && !self.field_mapping.contains_key(field.name())
                })
            })
    }

    /// Like [`Source::resolve`], but also accepts the stored name: Feast's docs
    /// say field mappings apply to features only, its code renames every column.
    pub(crate) fn resolve_timestamp(&self, name: &str) -> Option<usize> {
        self.resolve(name).or_else(|| {
            self.schema
                .fields()
                .iter()
                .position(|field| field.name() == name)
        })
    }

    pub(crate) fn data_type(&self, column: usize) -> &DataType {
        self.schema.field(column).data_type()
    }

    /// Reads a CSV column as `data_type` instead of the inferred type (a sample
    /// of rows cannot prove a column's type). No effect on Parquet sources.
    pub(crate) fn read_csv_column_as(&mut self, column: usize, data_type: DataType) {
        if self.format != FileFormat::Csv || !csv_parses(&data_type) {
            return;
        }
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|field| field.as_ref().clone())
            .collect();
        fields[column] = fields[column].clone().with_data_type(data_type);
        self.schema = Arc::new(Schema::new(fields));
    }

    /// A CSV timestamp column inferred at a finer unit than microseconds is
    /// read as microseconds, which cannot overflow for dates after 2262.
    pub(crate) fn read_csv_timestamp_as_micros(&mut self, column: usize) {
        if let DataType::Timestamp(_, zone) = self.data_type(column) {
            let data_type = DataType::Timestamp(TimeUnit::Microsecond, zone.clone());
            self.read_csv_column_as(column, data_type);
        }
    }

    /// The pieces the source is read in, in source order.
    pub(crate) fn units(&self) -> Vec<Unit> {
        let mut units = Vec::new();
        for (file_index, file) in self.files.iter().enumerate() {
            match &file.layout {
                FileLayout::Parquet(metadata) => {
                    let mut first_row = 0;
                    for (row_group, group) in metadata.metadata().row_groups().iter().enumerate() {
                        let rows = u64::try_from(group.num_rows()).unwrap_or(0);
                        if rows == 0 {
                            continue;
                        }
                        units.push(Unit {
                            file: file_index,
                            row_group: Some(row_group),
                            first_row,
                            rows: Some(rows),
                        });
                        first_row += rows;
                    }
                }
                FileLayout::Csv(_) => units.push(Unit {
                    file: file_index,
                    row_group: None,
                    first_row: 0,
                    rows: None,
                }),
            }
        }
        units
    }

    /// Streams `columns` (stored column indices) of one unit in batches of at
    /// most `batch_size` rows; `visit` gets the row id of each batch's first row
    /// and the columns in the order asked, cast to the stored schema's types,
    /// and may break to stop reading the unit.
    pub(crate) fn scan(
        &self,
        unit: &Unit,
        columns: &[usize],
        batch_size: usize,
        mut visit: impl FnMut(u64, &[ArrayRef]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let file = &self.files[unit.file];
        let names: Vec<&str> = columns
            .iter()
            .map(|&column| self.schema.field(column).name().as_str())
            .collect();
        let mut row_id = unit.row_ids().0;
        let mut emit = |batch: arrow::record_batch::RecordBatch| -> Result<ControlFlow<()>> {
            let mut arrays = Vec::with_capacity(columns.len());
            for (&column, name) in columns.iter().zip(&names) {
                let array = batch
                    .column_by_name(name)
                    .ok_or_else(|| missing_in_file(&file.path, name))?;
                let wanted = self.schema.field(column).data_type();
                if array.data_type() == wanted {
                    arrays.push(array.clone());
                } else {
                    arrays.push(cast(array, wanted).map_err(|err| read_error(&file.path, err))?);
                }
            }
            let flow = visit(row_id, &arrays)?;
            row_id += batch.num_rows() as u64;
            Ok(flow)
        };
        match &file.layout {
            FileLayout::Parquet(metadata) => {
                let file_schema = metadata.schema();
                let mut roots = Vec::with_capacity(names.len());
                for name in &names {
                    let root = file_schema
                        .index_of(name)
                        .map_err(|_| missing_in_file(&file.path, name))?;
                    roots.push(root);
                }
                let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
                let reader =
                    File::open(&file.path).map_err(|err| FeatureError::io(&file.path, err))?;
                let mut builder =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(reader, metadata.clone())
                        .with_projection(mask)
                        .with_batch_size(batch_size);
                if let Some(row_group) = unit.row_group {
                    builder = builder.with_row_groups(vec![row_group]);
                }
                let batches = builder.build().map_err(|err| read_error(&file.path, err))?;
                for batch in batches {
                    if emit(batch.map_err(|err| read_error(&file.path, err))?)?.is_break() {
                        break;
                    }
                }
            }
            FileLayout::Csv(header) => {
                let fields: Vec<Field> = header
                    .iter()
                    .map(|name| match self.schema.field_with_name(name) {
                        Ok(field) => field.clone(),
                        Err(_) => Field::new(name, DataType::Utf8, true),
                    })
                    .collect();
                let mut projection = Vec::with_capacity(names.len());
                for name in &names {
                    let index = header
                        .iter()
                        .position(|column| column == name)
                        .ok_or_else(|| missing_in_file(&file.path, name))?;
                    projection.push(index);
                }
                projection.sort_unstable();
                projection.dedup();
                let reader =
                    File::open(&file.path).map_err(|err| FeatureError::io(&file.path, err))?;
                let batches = arrow::csv::ReaderBuilder::new(Arc::new(Schema::new(fields)))
                    .with_header(true)
                    .with_batch_size(batch_size)
                    .with_projection(projection)
                    .build(BufReader::new(reader))
                    .map_err(|err| read_error(&file.path, err))?;
                for batch in batches {
                    if emit(batch.map_err(|err| read_error(&file.path, err))?)?.is_break() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

impl FileFormat {
    pub(crate) fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
        }
    }
}

/// The data files of a source: the path itself, or every file with the
/// format's extension under the directory (recursively, as Feast's pyarrow
/// datasets do), sorted by path. Names starting with `.` or `_` are skipped
/// (temporary files, `_SUCCESS` markers).
pub(crate) fn list_files(path: &Path, format: FileFormat) -> Result<Vec<PathBuf>> {
    let metadata = std::fs::metadata(path).map_err(|err| FeatureError::io(path, err))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries =
            std::fs::read_dir(&directory).map_err(|err| FeatureError::io(&directory, err))?;
        for entry in entries {
            let entry = entry.map_err(|err| FeatureError::io(&directory, err))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let entry_path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|err| FeatureError::io(&entry_path, err))?;
            if file_type.is_dir() {
                pending.push(entry_path);
            } else if entry_path
                .extension()
                .is_some_and(|ext| ext == format.extension())
            {
                files.push(entry_path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Infers column types from the first rows of the files (empty files say
/// nothing); where files disagree, integers widen to floats and anything
/// else to text, and a column without values is text.
fn infer_csv_schema(paths: &[&Path]) -> Result<Schema> {
    let format = arrow::csv::reader::Format::default().with_header(true);
    let mut fields: Vec<Field> = Vec::new();
    let mut budget = CSV_INFER_ROWS;
    for path in paths {
        let file = File::open(path).map_err(|err| FeatureError::io(path, err))?;
        let (schema, n_read) = format
            .infer_schema(BufReader::new(file), Some(budget.max(1)))
            .map_err(|err| read_error(path, err))?;
        for field in schema.fields() {
            match fields.iter_mut().find(|known| known.name() == field.name()) {
                Some(known) => {
                    let merged = merge_csv_types(known.data_type(), field.data_type());
                    *known = known.clone().with_data_type(merged);
                }
                None => fields.push(field.as_ref().clone()),
            }
        }
        budget = budget.saturating_sub(n_read);
        if budget == 0 {
            break;
        }
    }
    for field in &mut fields {
        if field.data_type() == &DataType::Null {
            *field = field.clone().with_data_type(DataType::Utf8);
        }
    }
    Ok(Schema::new(fields))
}

fn merge_csv_types(known: &DataType, seen: &DataType) -> DataType {
    match (known, seen) {
        _ if known == seen => known.clone(),
        (DataType::Null, other) | (other, DataType::Null) => other.clone(),
        (DataType::Int64, DataType::Float64) | (DataType::Float64, DataType::Int64) => {
            DataType::Float64
        }
        (DataType::Timestamp(_, _), DataType::Timestamp(_, _)) => {
            DataType::Timestamp(TimeUnit::Nanosecond, None)
        }
        _ => DataType::Utf8,
    }
}

pub(crate) fn csv_header(path: &Path) -> Result<Vec<String>> {
    let file = File::open(path).map_err(|err| FeatureError::io(path, err))?;
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (schema, _) = format
        .infer_schema(BufReader::new(file), Some(0))
        .map_err(|err| read_error(path, err))?;
    Ok(schema
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect())
}

/// Types the CSV reader parses directly.
fn csv_parses(data_type: &DataType) -> bool {
    data_type.is_numeric()
        || matches!(
            data_type,
            DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(_, _)
        )
}

/// Wraps a decoding error with the file it came from.
pub(crate) fn read_error(path: &Path, error: impl std::fmt::Display) -> FeatureError {
    FeatureError::io(path, std::io::Error::other(error.to_string()))
}

fn missing_in_file(path: &Path, column: &str) -> FeatureError {
    FeatureError::invalid(format!(
        "file `{}` has no column `{column}`, which the first file of its source has; \
         rewrite it with the same columns",
        path.display()
    ))
}
