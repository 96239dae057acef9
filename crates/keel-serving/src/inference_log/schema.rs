//! From a record to flat, typed columns: one row per row (first dimension)
//! of the batch, one column per element of a row.
//!
//! - The fixed columns come first: `timestamp` (microseconds, UTC),
//!   `request_id`, `row` (index in the request's batch).
//! - A tensor whose row holds one element gives a column named after the
//!   tensor; one whose row holds k elements gives `{name}.0` .. `{name}.{k-1}`,
//!   unless its parameters carry `feature_names` (a JSON array of k strings,
//!   or a string holding one, since gRPC parameters are scalars), which then
//!   name the columns.
//! - Inputs come before outputs. An output whose column names collide with
//!   an input's (or the fixed columns) gets the prefix `output.`; an input
//!   that collides with a fixed column gets `input.`. A tensor whose names
//!   still collide is left out and counted.
//! - The batch size is the largest first dimension among the inputs (among
//!   the outputs if no input has a dimension). A tensor with first dimension
//!   1, or a scalar, is repeated on every row; any other mismatch leaves the
//!   tensor out, counted.
//! - FP16/FP32 → Float32, FP64 → Float64, UINT64 → UInt64, other integers →
//!   Int64, BOOL → Boolean, BYTES → Utf8 when every value of the column in
//!   this record is UTF-8, else Binary. A record whose signature differs
//!   from the open file's starts a new file, except that text values go on
//!   into a file whose column is already Binary (see [`fits`]).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};
use keel_core::tensor::{DataType, Tensor, TensorData};

use super::{InferenceRecord, MAX_COLUMNS_PER_TENSOR};
use crate::inference::NamedTensor;

pub(super) const TIMESTAMP_COLUMN: &str = "timestamp";
pub(super) const REQUEST_ID_COLUMN: &str = "request_id";
pub(super) const ROW_COLUMN: &str = "row";
const FIXED_COLUMNS: [&str; 3] = [TIMESTAMP_COLUMN, REQUEST_ID_COLUMN, ROW_COLUMN];

/// The Arrow type of a feature column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColumnKind {
    Float32,
    Float64,
    Int64,
    UInt64,
    Boolean,
    Utf8,
    Binary,
}

impl ColumnKind {
    pub(super) fn arrow_type(self) -> ArrowType {
        match self {
            ColumnKind::Float32 => ArrowType::Float32,
            ColumnKind::Float64 => ArrowType::Float64,
            ColumnKind::Int64 => ArrowType::Int64,
            ColumnKind::UInt64 => ArrowType::UInt64,
            ColumnKind::Boolean => ArrowType::Boolean,
            ColumnKind::Utf8 => ArrowType::Utf8,
            ColumnKind::Binary => ArrowType::Binary,
        }
    }

    /// The kind for a non-BYTES datatype; BYTES needs the values.
    fn for_numeric(datatype: DataType) -> ColumnKind {
        match datatype {
            DataType::F16 | DataType::F32 => ColumnKind::Float32,
            DataType::F64 => ColumnKind::Float64,
            DataType::U64 => ColumnKind::UInt64,
            DataType::Bool => ColumnKind::Boolean,
            DataType::Bytes => ColumnKind::Binary,
            DataType::U8
            | DataType::U16
            | DataType::U32
            | DataType::I8
            | DataType::I16
            | DataType::I32
            | DataType::I64 => ColumnKind::Int64,
        }
    }
}

/// Which tensor of the record a column reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TensorRef {
    Input(usize),
    Output(usize),
}

/// Where a column's value for row `r` is: element `element + r * row_stride`
/// of the tensor's flat buffer (`row_stride` 0 repeats the tensor's only row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnSource {
    pub tensor: TensorRef,
    pub element: usize,
    pub row_stride: usize,
}

/// Names and types of the feature columns, compared between the records of
/// a partition: a signature that does not fit the open file starts a new one.
pub(super) type Signature = Vec<(String, ColumnKind)>;

/// Whether rows planned as `record` can go to a file of signature `file`:
/// same names in the same order and the same types, except that text may
/// go to a Binary column (so a BYTES column that was binary once does not
/// start a new file whenever a record's values happen to be UTF-8).
pub(super) fn fits(record: &Signature, file: &Signature) -> bool {
    record.len() == file.len()
        && record
            .iter()
            .zip(file)
            .all(|((record_name, record_kind), (file_name, file_kind))| {
                record_name == file_name
                    && (record_kind == file_kind
                        || (*record_kind == ColumnKind::Utf8 && *file_kind == ColumnKind::Binary))
            })
}

/// How one record becomes rows.
#[derive(Debug)]
pub(super) struct RecordPlan {
    pub rows: usize,
    pub signature: Signature,
    pub sources: Vec<ColumnSource>,
    /// Tensors left out, with the reason, for the warning.
    pub skipped_tensors: Vec<String>,
}

/// Plans the columns of `record`; `Err` when nothing of it can be logged.
pub(super) fn plan(record: &InferenceRecord) -> Result<RecordPlan, String> {
    if record.inputs.is_empty() && record.outputs.is_empty() {
        return Err("the record has no tensor".to_owned());
    }
    let rows = batch_size(&record.inputs)
        .or_else(|| batch_size(&record.outputs))
        .unwrap_or(1);
    let mut planner = Planner {
        rows,
        taken: FIXED_COLUMNS
            .iter()
            .map(|name| (*name).to_owned())
            .collect(),
        plan: RecordPlan {
            rows,
            signature: Vec::new(),
            sources: Vec::new(),
            skipped_tensors: Vec::new(),
        },
    };
    for (idx, named) in record.inputs.iter().enumerate() {
        planner.add_tensor(named, TensorRef::Input(idx), "input.");
    }
    for (idx, named) in record.outputs.iter().enumerate() {
        planner.add_tensor(named, TensorRef::Output(idx), "output.");
    }
    Ok(planner.plan)
}

/// The largest first dimension among `tensors` that have one.
fn batch_size(tensors: &[NamedTensor]) -> Option<usize> {
    tensors
        .iter()
        .filter_map(|named| named.tensor.shape().first().copied())
        .max()
}

struct Planner {
    rows: usize,
    taken: HashSet<String>,
    plan: RecordPlan,
}

impl Planner {
    fn add_tensor(&mut self, named: &NamedTensor, tensor_ref: TensorRef, collision_prefix: &str) {
        let tensor = &named.tensor;
        let tensor_rows = tensor.batch_size();
        let row_stride = if tensor_rows == self.rows {
            tensor.row_len()
        } else if tensor_rows == 1 {
            0
        } else {
            self.skip(
                named,
                format!("{} rows where the batch has {}", tensor_rows, self.rows),
            );
            return;
        };
        let row_len = tensor.row_len();
        if row_len > MAX_COLUMNS_PER_TENSOR {
            self.skip(
                named,
                format!("{row_len} elements per row, more than {MAX_COLUMNS_PER_TENSOR}"),
            );
            return;
        }
        let mut names = column_names(named, row_len);
        if names.iter().any(|name| self.taken.contains(name)) {
            names = names
                .iter()
                .map(|name| format!("{collision_prefix}{name}"))
                .collect();
        }
        let distinct: HashSet<&String> = names.iter().collect();
        if distinct.len() != names.len() || names.iter().any(|name| self.taken.contains(name)) {
            self.skip(named, "column names already used".to_owned());
            return;
        }
        for (element, name) in names.into_iter().enumerate() {
            let kind = column_kind(tensor, element, row_stride, self.rows);
            self.taken.insert(name.clone());
            self.plan.signature.push((name, kind));
            self.plan.sources.push(ColumnSource {
                tensor: tensor_ref,
                element,
                row_stride,
            });
        }
    }

    fn skip(&mut self, named: &NamedTensor, reason: String) {
        self.plan
            .skipped_tensors
            .push(format!("{}: {reason}", named.name));
    }
}

/// `{name}` for one element per row, `{name}.{j}` for more, or the
/// tensor's `feature_names` when it gives exactly one name per element.
fn column_names(named: &NamedTensor, row_len: usize) -> Vec<String> {
    if let Some(feature_names) = feature_names(named) {
        if feature_names.len() == row_len {
            return feature_names;
        }
    }
    if row_len == 1 {
        return vec![named.name.clone()];
    }
    (0..row_len)
        .map(|element| format!("{}.{element}", named.name))
        .collect()
}

fn feature_names(named: &NamedTensor) -> Option<Vec<String>> {
    let value = named.parameters.get("feature_names")?;
    let parsed;
    let array = match value {
        serde_json::Value::Array(array) => array,
        serde_json::Value::String(text) => {
            parsed = serde_json::from_str::<serde_json::Value>(text).ok()?;
            parsed.as_array()?
        }
        _ => return None,
    };
    array
        .iter()
        .map(|name| name.as_str().map(str::to_owned))
        .collect()
}

fn column_kind(tensor: &Tensor, element: usize, row_stride: usize, rows: usize) -> ColumnKind {
    let TensorData::Bytes(values) = tensor.data() else {
        return ColumnKind::for_numeric(tensor.datatype());
    };
    let all_utf8 = (0..rows).all(|row| {
        values
            .get(element + row * row_stride)
            .is_some_and(|value| std::str::from_utf8(value).is_ok())
    });
    if all_utf8 {
        ColumnKind::Utf8
    } else {
        ColumnKind::Binary
    }
}

/// The Arrow schema of a file holding rows of `signature`.
pub(super) fn arrow_schema(signature: &Signature) -> SchemaRef {
    let mut fields = Vec::with_capacity(signature.len() + FIXED_COLUMNS.len());
    fields.push(Field::new(
        TIMESTAMP_COLUMN,
        ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    ));
    fields.push(Field::new(REQUEST_ID_COLUMN, ArrowType::Utf8, false));
    fields.push(Field::new(ROW_COLUMN, ArrowType::UInt32, false));
    // Nullable, so that readers merging files of different signatures can
    // fill a column missing from one file with nulls.
    fields.extend(
        signature
            .iter()
            .map(|(name, kind)| Field::new(name.clone(), kind.arrow_type(), true)),
    );
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use keel_core::tensor::{Tensor, TensorData};

    use super::*;

    fn named(name: &str, shape: Vec<usize>, data: TensorData) -> NamedTensor {
        match Tensor::new(shape, data) {
            Ok(tensor) => NamedTensor::new(name, tensor),
            Err(error) => panic!("bad test tensor: {error}"),
        }
    }

    fn record(inputs: Vec<NamedTensor>, outputs: Vec<NamedTensor>) -> InferenceRecord {
        InferenceRecord {
            model_name: "m".to_owned(),
            model_version: "1".to_owned(),
            request_id: "r".to_owned(),
            timestamp: SystemTime::UNIX_EPOCH,
            inputs,
            outputs,
        }
    }

    fn names(plan: &RecordPlan) -> Vec<&str> {
        plan.signature
            .iter()
            .map(|(name, _)| name.as_str())
            .collect()
    }

    #[test]
    fn outputs_colliding_with_inputs_are_prefixed() {
        let plan = plan(&record(
            vec![named("x", vec![2], TensorData::I32(vec![1, 2]))],
            vec![
                named("x", vec![2], TensorData::F64(vec![0.5, 0.5])),
                named("row", vec![2], TensorData::Bool(vec![true, false])),
            ],
        ));
        let plan = plan.unwrap_or_else(|reason| panic!("{reason}"));
        assert_eq!(names(&plan), ["x", "output.x", "output.row"]);
        assert_eq!(plan.signature[0].1, ColumnKind::Int64);
    }

    #[test]
    fn scalars_repeat_and_mismatched_batches_are_skipped() {
        let plan = plan(&record(
            vec![
                named("features", vec![3, 2], TensorData::F32(vec![0.0; 6])),
                named("temperature", vec![], TensorData::F32(vec![0.7])),
                named("odd", vec![2], TensorData::F32(vec![0.0; 2])),
            ],
            vec![],
        ));
        let plan = plan.unwrap_or_else(|reason| panic!("{reason}"));
        assert_eq!(plan.rows, 3);
        assert_eq!(names(&plan), ["features.0", "features.1", "temperature"]);
        assert_eq!(plan.sources[2].row_stride, 0);
        assert_eq!(plan.skipped_tensors.len(), 1);
    }

    #[test]
    fn feature_names_may_come_as_a_json_string() {
        let mut input = named("x", vec![1, 2], TensorData::F32(vec![1.0, 2.0]));
        input.parameters.insert(
            "feature_names".to_owned(),
            serde_json::json!("[\"age\", \"income\"]"),
        );
        let plan = plan(&record(vec![input], vec![]));
        let plan = plan.unwrap_or_else(|reason| panic!("{reason}"));
        assert_eq!(names(&plan), ["age", "income"]);
    }

    #[test]
    fn a_record_without_tensors_is_refused() {
        assert!(plan(&record(vec![], vec![])).is_err());
    }
}
