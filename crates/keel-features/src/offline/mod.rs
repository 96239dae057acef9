//! The offline store: point-in-time correct historical retrieval over Parquet
//! and CSV file sources, the latest rows per entity for materialization, and
//! appends (Feast's push to the offline store).
//!
//! Sources are streamed in batches, never loaded whole: a historical query
//! holds O(entity rows + one source batch) per view, whatever the source size
//! (Feast's file offline store loads every source into pandas).

mod append;
mod gather;
mod keys;
mod latest;
mod pit;
mod source;
mod timestamps;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::{can_cast_types, cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::FormatOptions;

use self::gather::{available_threads, run_parallel};
use self::pit::EntityIndex;
use self::source::Source;
use self::timestamps::{is_timestamp_type, to_micros};
use crate::{FeatureError, Result};

/// Rows per batch read from a source, unless [`ReadOptions`] says otherwise.
pub(crate) const DEFAULT_BATCH_SIZE: usize = 8192;

/// How a source's files are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    Parquet,
    Csv,
}

/// A file source as the offline engine reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// A file, or a directory read as all its files with the format's
    /// extension (recursively; sorted by path; names starting with `.` or `_`
    /// skipped).
    pub path: PathBuf,
    pub format: FileFormat,
    pub timestamp_field: String,
    pub created_timestamp_column: Option<String>,
    /// Source column name -> name used in definitions.
    pub field_mapping: BTreeMap<String, String>,
}

/// One feature view's part of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewQuery {
    pub name: String,
    pub source: SourceSpec,
    /// Names (after field_mapping) that must also be columns of the entity table.
    pub join_keys: Vec<String>,
    /// Feature names (after mapping) and declared types; values are cast to these.
    pub features: Vec<(String, DataType)>,
    /// `None` or `Some(0)`: no ttl.
    pub ttl_micros: Option<i64>,
    /// One per feature: the output column name (the caller applies full_feature_names).
    pub output_names: Vec<String>,
}

/// Tuning knobs of the offline engine; the defaults suit every caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Rows per batch decoded from a source.
    pub batch_size: usize,
    /// Threads to use; 0 means one per core.
    pub threads: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            threads: 0,
        }
    }
}

/// Feast's point-in-time join. Output: all entity-table columns unchanged and
/// in their order, then for each view in order its features named
/// `output_names`. Exactly one output row per entity row, in the entity
/// table's order.
///
/// An entity row's value for a view comes from the source row with the same
/// key and the greatest event time at or before the entity row's time (and,
/// with a ttl, no older than its time minus the ttl); ties go to the greatest
/// created time, then to the later row of the source. No such row: nulls.
pub fn get_historical(
    entity: &RecordBatch,
    entity_ts_column: &str,
    views: &[ViewQuery],
) -> Result<RecordBatch> {
    get_historical_with_options(entity, entity_ts_column, views, &ReadOptions::default())
}

/// [`get_historical`] with explicit [`ReadOptions`].
pub fn get_historical_with_options(
    entity: &RecordBatch,
    entity_ts_column: &str,
    views: &[ViewQuery],
    options: &ReadOptions,
) -> Result<RecordBatch> {
    let entity_schema = entity.schema();
    let entity_ts = entity.column_by_name(entity_ts_column).ok_or_else(|| {
        FeatureError::invalid(format!(
            "entity table has no column `{entity_ts_column}` (its event timestamp column)"
        ))
    })?;
    if !is_timestamp_type(entity_ts.data_type()) {
        return Err(FeatureError::invalid(format!(
            "entity table column `{entity_ts_column}` has type {}; the event timestamp column \
             must hold timestamps or dates",
            entity_ts.data_type()
        )));
    }
    let entity_micros = to_micros(entity_ts)?;

    let mut output_names: HashSet<&str> = entity_schema
        .fields()
        .iter()
        .map(|field| field.name().as_str())
        .collect();
    for view in views {
        check_view_shape(view)?;
        for key in &view.join_keys {
            if entity.column_by_name(key).is_none() {
                return Err(FeatureError::invalid(format!(
                    "entity table has no column `{key}` (feature view `{}` joins on it)",
                    view.name
                )));
            }
        }
        for name in &view.output_names {
            if !output_names.insert(name) {
                return Err(FeatureError::invalid(format!(
                    "output column `{name}` (of feature view `{}`) appears twice in the result; \
                     ask for full feature names (`view__feature`) or rename the entity column",
                    view.name
                )));
            }
        }
    }

    // Views that join on the same columns share one index of the entity table.
    let mut index_of_keys: HashMap<&[String], usize> = HashMap::new();
    let mut indexes: Vec<(EntityIndex, Vec<DataType>)> = Vec::new();
    for view in views {
        if index_of_keys.contains_key(view.join_keys.as_slice()) {
            continue;
        }
        let key_columns: Vec<ArrayRef> = view
            .join_keys
            .iter()
            .filter_map(|key| entity.column_by_name(key).cloned())
            .collect();
        let key_types = key_columns
            .iter()
            .map(|column| column.data_type().clone())
            .collect();
        index_of_keys.insert(view.join_keys.as_slice(), indexes.len());
        indexes.push((EntityIndex::build(&key_columns, &entity_micros)?, key_types));
    }

    let threads = available_threads(options.threads);
    let view_workers = threads.min(views.len()).max(1);
    let unit_workers = (threads / view_workers).max(1);
    let per_worker = run_parallel(views.len(), view_workers, Vec::new, |done, view_index| {
        let view = &views[view_index];
        let (index, key_types) = &indexes[index_of_keys[view.join_keys.as_slice()]];
        let columns = pit::join_view(index, key_types, view, options, unit_workers)?;
        done.push((view_index, columns));
        Ok(())
    })?;
    let mut view_columns: Vec<(usize, Vec<ArrayRef>)> = per_worker.into_iter().flatten().collect();
    view_columns.sort_unstable_by_key(|(view_index, _)| *view_index);

    let mut fields: Vec<Field> = entity_schema
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = entity.columns().to_vec();
    for (view, (_, arrays)) in views.iter().zip(view_columns) {
        for ((name, (_, data_type)), array) in
            view.output_names.iter().zip(&view.features).zip(arrays)
        {
            fields.push(Field::new(name, data_type.clone(), true));
            columns.push(array);
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(
        fields,
        entity_schema.metadata().clone(),
    ));
    let batch_options = RecordBatchOptions::new().with_row_count(Some(entity.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema,
        columns,
        &batch_options,
    )?)
}

/// Latest row per entity key among source rows with `start <= event_ts < end`
/// (microseconds since the epoch, UTC); ties on event time go to the later
/// created time, then to the later row of the source. Output columns: the join
/// keys, `event_timestamp` (Timestamp(Microsecond, "UTC")), then the features
/// named by their definition names, cast to their declared types. Rows come in
/// source order of the winning rows.
pub fn read_latest(view: &ViewQuery, start_micros: i64, end_micros: i64) -> Result<RecordBatch> {
    latest::read_latest(view, start_micros, end_micros, &ReadOptions::default())
}

/// [`read_latest`] with explicit [`ReadOptions`].
pub fn read_latest_with_options(
    view: &ViewQuery,
    start_micros: i64,
    end_micros: i64,
    options: &ReadOptions,
) -> Result<RecordBatch> {
    latest::read_latest(view, start_micros, end_micros, options)
}

/// Appends rows to a source (Feast's push to the offline store). The batch
/// holds the source's columns by their definition names (the field mapping
/// is applied in reverse) and is cast to the stored types. A directory source
/// gets a new part file `part-<millis>-<n>.<ext>`; a single file is rewritten
/// with the old rows then the new. Either way the change appears at once
/// (a temporary file renamed into place). A path that does not exist yet
/// becomes a file if it ends in the format's extension, else a directory.
pub fn append_rows(source: &SourceSpec, batch: &RecordBatch) -> Result<()> {
    append::append_rows(source, batch)
}

/// The schema of a source as definitions see it (after the field mapping).
pub fn source_schema(source: &SourceSpec) -> Result<SchemaRef> {
    Ok(Source::open(source)?.definition_schema())
}

/// The stored columns a view reads.
pub(crate) struct ViewColumns {
    pub(crate) keys: Vec<usize>,
    pub(crate) event: usize,
    pub(crate) created: Option<usize>,
    pub(crate) features: Vec<usize>,
}

fn check_view_shape(view: &ViewQuery) -> Result<()> {
    if view.features.len() != view.output_names.len() {
        return Err(FeatureError::invalid(format!(
            "feature view `{}` asks for {} features but names {} output columns",
            view.name,
            view.features.len(),
            view.output_names.len()
        )));
    }
    if view.ttl_micros.is_some_and(|ttl| ttl < 0) {
        return Err(FeatureError::invalid(format!(
            "feature view `{}` has a negative ttl; use 0 for no ttl",
            view.name
        )));
    }
    if view.join_keys.is_empty() {
        return Err(FeatureError::invalid(format!(
            "feature view `{}` has no join keys",
            view.name
        )));
    }
    Ok(())
}

/// Finds the columns a view reads in its source and checks their types.
pub(crate) fn resolve_view(source: &mut Source, view: &ViewQuery) -> Result<ViewColumns> {
    check_view_shape(view)?;
    let source_path = source.path().display().to_string();
    let missing = |role: &str, name: &str| {
        FeatureError::invalid(format!(
            "source `{source_path}` of feature view `{}` has no column `{name}` ({role}); check \
             the column names and the source's field_mapping",
            view.name
        ))
    };
    let mut keys = Vec::with_capacity(view.join_keys.len());
    for key in &view.join_keys {
        keys.push(
            source
                .resolve(key)
                .ok_or_else(|| missing("a join key", key))?,
        );
    }
    let spec = &view.source;
    let event = source
        .resolve_timestamp(&spec.timestamp_field)
        .ok_or_else(|| missing("the timestamp field", &spec.timestamp_field))?;
    let created = match &spec.created_timestamp_column {
        Some(name) => Some(
            source
                .resolve_timestamp(name)
                .ok_or_else(|| missing("the created timestamp column", name))?,
        ),
        None => None,
    };
    for (column, name) in std::iter::once((event, &spec.timestamp_field))
        .chain(created.zip(spec.created_timestamp_column.as_ref()))
    {
        let data_type = source.data_type(column);
        if !is_timestamp_type(data_type) {
            return Err(FeatureError::invalid(format!(
                "column `{name}` of the source of feature view `{}` has type {data_type}; \
                 a timestamp column must hold timestamps or dates",
                view.name
            )));
        }
        source.read_csv_timestamp_as_micros(column);
    }
    let mut features = Vec::with_capacity(view.features.len());
    for (name, declared) in &view.features {
        let column = source
            .resolve(name)
            .ok_or_else(|| missing("a feature", name))?;
        let stored = source.data_type(column).clone();
        if !can_cast_types(&stored, declared) {
            return Err(FeatureError::invalid(format!(
                "feature `{name}` of feature view `{}` is {stored} in its source, which cannot \
                 be read as the declared {declared}",
                view.name
            )));
        }
        // A CSV column is inferred from a sample; read it as declared when
        // that type parses anything the sample could have been inferred as.
        let reads_any_sample =
            declared.is_floating() || matches!(declared, DataType::Utf8 | DataType::LargeUtf8);
        let shared = keys.contains(&column) || column == event || Some(column) == created;
        if reads_any_sample && !shared {
            source.read_csv_column_as(column, declared.clone());
        }
        features.push(column);
    }
    Ok(ViewColumns {
        keys,
        event,
        created,
        features,
    })
}

/// Casts gathered feature values to their declared type; a value that does
/// not fit is an error rather than a silent null.
pub(crate) fn cast_feature(
    values: &ArrayRef,
    declared: &DataType,
    view: &ViewQuery,
    feature: &str,
) -> Result<ArrayRef> {
    if values.data_type() == declared {
        return Ok(values.clone());
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    cast_with_options(values, declared, &options).map_err(|err| {
        FeatureError::invalid(format!(
            "feature `{feature}` of feature view `{}`: a value of type {} does not fit the \
             declared {declared}: {err}",
            view.name,
            values.data_type()
        ))
    })
}
