//! Tensors to the Arrow record batch a worker turns into `predict`'s input,
//! and its Arrow answer back to tensors. The mapping is described in the doc
//! of `crate::python`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, FixedSizeListArray, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, StringArray, UInt16Array,
    UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{
    DataType as ArrowType, Field, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, Schema, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use keel_core::tensor::{f16_to_f32, Tensor, TensorData};

use super::signature::InputLayout;
use crate::{NamedTensor, ServingError};

/// Field metadata with the full shape of a tensor sent as rows.
const SHAPE_KEY: &str = "keel.shape";
/// The request's tensors as one Arrow IPC stream, laid out for `layout`.
pub fn encode_request(
    layout: &InputLayout,
    inputs: &[NamedTensor],
) -> Result<Vec<u8>, ServingError> {
    if inputs.is_empty() {
        return Err(ServingError::invalid("the request has no inputs"));
    }
    let mut metadata = HashMap::new();
    let (fields, columns, rows) = match layout {
        InputLayout::Frame { column_names } => {
            let (columns, unnamed) = frame_columns(inputs, column_names.as_deref())?;
            metadata.insert("keel.layout".to_string(), "dataframe".to_string());
            if unnamed {
                metadata.insert("keel.unnamed".to_string(), "1".to_string());
            }
            let rows = common_rows(
                columns
                    .iter()
                    .map(|(name, array)| (name.as_str(), array.len())),
            )?;
            let fields = columns
                .iter()
                .map(|(name, array)| Field::new(name.as_str(), array.data_type().clone(), true))
                .collect::<Vec<_>>();
            let arrays = columns
                .into_iter()
                .map(|(_, array)| array)
                .collect::<Vec<_>>();
            (fields, arrays, rows)
        }
        InputLayout::Tensors { single } => {
            metadata.insert("keel.layout".to_string(), "tensors".to_string());
            if *single && inputs.len() == 1 {
                metadata.insert("keel.single".to_string(), "1".to_string());
            }
            let rows = common_rows(
                inputs
                    .iter()
                    .map(|input| (input.name.as_str(), input.tensor.batch_size())),
            )?;
            let mut fields = Vec::with_capacity(inputs.len());
            let mut arrays = Vec::with_capacity(inputs.len());
            for input in inputs {
                let array = rows_array(&input.tensor)?;
                let shape = serde_json::to_string(input.tensor.shape()).unwrap_or_default();
                fields.push(
                    Field::new(input.name.as_str(), array.data_type().clone(), true)
                        .with_metadata(HashMap::from([(SHAPE_KEY.to_string(), shape)])),
                );
                arrays.push(array);
            }
            (fields, arrays, rows)
        }
    };
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)
        .map_err(|err| ServingError::invalid(format!("inputs do not form one batch: {err}")))?;
    let mut writer = StreamWriter::try_new(Vec::new(), &schema).map_err(arrow_internal)?;
    writer.write(&batch).map_err(arrow_internal)?;
    writer.finish().map_err(arrow_internal)?;
    writer.into_inner().map_err(arrow_internal)
}

/// The DataFrame columns of a request, and whether they are unnamed (0..F-1).
fn frame_columns(
    inputs: &[NamedTensor],
    column_names: Option<&[String]>,
) -> Result<(Vec<(String, ArrayRef)>, bool), ServingError> {
    let is_named_column =
        |name: &str| column_names.is_some_and(|names| names.iter().any(|column| column == name));
    if let [input] = inputs {
        if !is_named_column(&input.name) {
            // One matrix [N, F]: F columns, named after the signature when it has F of them.
            let shape = input.tensor.shape();
            let width = match shape.len() {
                0 | 1 => 1,
                2 => shape[1],
                _ => {
                    return Err(ServingError::invalid(format!(
                        "input '{}' has shape {shape:?}; a DataFrame model takes [rows] or [rows, columns]",
                        input.name
                    )))
                }
            };
            let named = column_names.filter(|names| names.len() == width);
            let columns = (0..width)
                .map(|column| {
                    let name =
                        named.map_or_else(|| column.to_string(), |names| names[column].clone());
                    (
                        name,
                        flat_array(&gather_column(input.tensor.data(), width, column)),
                    )
                })
                .collect();
            return Ok((columns, named.is_none()));
        }
    }
    let mut columns = Vec::with_capacity(inputs.len());
    for input in inputs {
        let shape = input.tensor.shape();
        let is_column = shape.len() <= 1 || (shape.len() == 2 && shape[1] == 1);
        if !is_column {
            return Err(ServingError::invalid(format!(
                "input '{}' has shape {shape:?}; with several inputs each one is a column of shape [rows] or [rows, 1]",
                input.name
            )));
        }
        columns.push((input.name.clone(), flat_array(input.tensor.data())));
    }
    Ok((columns, false))
}

/// Every column has the same number of rows; that number.
fn common_rows<'a>(
    mut lengths: impl Iterator<Item = (&'a str, usize)>,
) -> Result<usize, ServingError> {
    let Some((first_name, rows)) = lengths.next() else {
        return Ok(0);
    };
    for (name, length) in lengths {
        if length != rows {
            return Err(ServingError::invalid(format!(
                "input '{name}' has {length} rows but '{first_name}' has {rows}"
            )));
        }
    }
    Ok(rows)
}

/// A tensor as one Arrow value per row: flat when rank is at most 1, else a
/// fixed-size list of the row's elements.
fn rows_array(tensor: &Tensor) -> Result<ArrayRef, ServingError> {
    let values = flat_array(tensor.data());
    if tensor.shape().len() <= 1 {
        return Ok(values);
    }
    let row_len = i32::try_from(tensor.row_len()).map_err(|_| {
        ServingError::invalid(format!("rows of shape {:?} are too large", tensor.shape()))
    })?;
    let item = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    let list = FixedSizeListArray::try_new(item, row_len, values, None).map_err(arrow_internal)?;
    Ok(Arc::new(list))
}

/// Every `width`-th element starting at `column`: one column of a row-major matrix.
fn gather_column(data: &TensorData, width: usize, column: usize) -> TensorData {
    macro_rules! gather {
        ($($variant:ident),*) => {
            match data {
                $(TensorData::$variant(values) => {
                    TensorData::$variant(values.iter().skip(column).step_by(width.max(1)).cloned().collect())
                })*
            }
        };
    }
    if width == 1 {
        return data.clone();
    }
    gather!(Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, F32, F64, Bytes)
}

/// A flat buffer as an Arrow array; FP16 widens to float32, BYTES become
/// utf-8 strings when they all are, binary otherwise.
fn flat_array(data: &TensorData) -> ArrayRef {
    match data {
        TensorData::Bool(values) => Arc::new(BooleanArray::from(values.clone())),
        TensorData::U8(values) => Arc::new(UInt8Array::from(values.clone())),
        TensorData::U16(values) => Arc::new(UInt16Array::from(values.clone())),
        TensorData::U32(values) => Arc::new(UInt32Array::from(values.clone())),
        TensorData::U64(values) => Arc::new(UInt64Array::from(values.clone())),
        TensorData::I8(values) => Arc::new(Int8Array::from(values.clone())),
        TensorData::I16(values) => Arc::new(Int16Array::from(values.clone())),
        TensorData::I32(values) => Arc::new(Int32Array::from(values.clone())),
        TensorData::I64(values) => Arc::new(Int64Array::from(values.clone())),
        TensorData::F16(values) => Arc::new(Float32Array::from_iter_values(
            values.iter().map(|&bits| f16_to_f32(bits)),
        )),
        TensorData::F32(values) => Arc::new(Float32Array::from(values.clone())),
        TensorData::F64(values) => Arc::new(Float64Array::from(values.clone())),
        TensorData::Bytes(values) => {
            let texts: Option<Vec<&str>> = values
                .iter()
                .map(|value| std::str::from_utf8(value).ok())
                .collect();
            match texts {
                Some(texts) => Arc::new(StringArray::from(texts)),
                None => Arc::new(BinaryArray::from_iter_values(values.iter())),
            }
        }
    }
}

/// The worker's Arrow answer as tensors: one per column, in order.
pub fn decode_response(payload: &[u8]) -> Result<Vec<NamedTensor>, ServingError> {
    let reader =
        StreamReader::try_new(std::io::Cursor::new(payload), None).map_err(arrow_internal)?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow_internal)?;
    let [batch] = batches.as_slice() else {
        return Err(ServingError::internal(format!(
            "python worker answered {} record batches instead of one",
            batches.len()
        )));
    };
    let schema = batch.schema();
    let mut outputs = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name();
        let (data, row_len) = match column.data_type() {
            ArrowType::FixedSizeList(_, size) => {
                let list = column.as_fixed_size_list();
                let size = usize::try_from(*size).unwrap_or_default();
                let values = list.values().slice(list.offset() * size, list.len() * size);
                (flat_data(name, values.as_ref())?, Some(size))
            }
            _ => (flat_data(name, column.as_ref())?, None),
        };
        let rows = column.len();
        let shape = match field.metadata().get(SHAPE_KEY) {
            Some(shape) => serde_json::from_str::<Vec<usize>>(shape).map_err(|err| {
                ServingError::internal(format!(
                    "output '{name}' has an unreadable shape {shape:?}: {err}"
                ))
            })?,
            None => row_len.map_or_else(|| vec![rows], |size| vec![rows, size]),
        };
        let tensor = Tensor::new(shape, data).map_err(|err| {
            ServingError::internal(format!("output '{name}' does not fit its shape: {err}"))
        })?;
        outputs.push(NamedTensor::new(name.as_str(), tensor));
    }
    Ok(outputs)
}

/// A flat Arrow array as a tensor buffer.
fn flat_data(name: &str, array: &dyn Array) -> Result<TensorData, ServingError> {
    let is_text = matches!(
        array.data_type(),
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Binary | ArrowType::LargeBinary
    );
    if array.null_count() > 0 && !is_text {
        return Err(ServingError::internal(format!(
            "output '{name}' has {} missing values; the model must return complete arrays",
            array.null_count()
        )));
    }
    macro_rules! primitive {
        ($variant:ident, $arrow:ty) => {
            TensorData::$variant(array.as_primitive::<$arrow>().values().to_vec())
        };
    }
    Ok(match array.data_type() {
        ArrowType::Boolean => TensorData::Bool(
            array
                .as_boolean()
                .iter()
                .map(|value| value.unwrap_or(false))
                .collect(),
        ),
        ArrowType::UInt8 => primitive!(U8, UInt8Type),
        ArrowType::UInt16 => primitive!(U16, UInt16Type),
        ArrowType::UInt32 => primitive!(U32, UInt32Type),
        ArrowType::UInt64 => primitive!(U64, UInt64Type),
        ArrowType::Int8 => primitive!(I8, Int8Type),
        ArrowType::Int16 => primitive!(I16, Int16Type),
        ArrowType::Int32 => primitive!(I32, Int32Type),
        ArrowType::Int64 => primitive!(I64, Int64Type),
        ArrowType::Float16 => TensorData::F16(
            array
                .as_primitive::<Float16Type>()
                .values()
                .iter()
                .map(|value| value.to_bits())
                .collect(),
        ),
        ArrowType::Float32 => primitive!(F32, Float32Type),
        ArrowType::Float64 => primitive!(F64, Float64Type),
        ArrowType::Utf8 => bytes_of(
            array
                .as_string::<i32>()
                .iter()
                .map(|value| value.map(str::as_bytes)),
        ),
        ArrowType::LargeUtf8 => bytes_of(
            array
                .as_string::<i64>()
                .iter()
                .map(|value| value.map(str::as_bytes)),
        ),
        ArrowType::Binary => bytes_of(array.as_binary::<i32>().iter()),
        ArrowType::LargeBinary => bytes_of(array.as_binary::<i64>().iter()),
        other => {
            return Err(ServingError::internal(format!(
                "output '{name}' has arrow type {other}, which has no tensor datatype"
            )))
        }
    })
}

fn bytes_of<'a>(values: impl Iterator<Item = Option<&'a [u8]>>) -> TensorData {
    TensorData::Bytes(
        values
            .map(|value| value.unwrap_or_default().to_vec())
            .collect(),
    )
}

fn arrow_internal(err: arrow::error::ArrowError) -> ServingError {
    ServingError::internal(format!("arrow encoding failed: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(payload: &[u8]) -> RecordBatch {
        let reader = StreamReader::try_new(std::io::Cursor::new(payload), None).expect("a stream");
        let mut batches = reader.collect::<Result<Vec<_>, _>>().expect("batches");
        assert_eq!(batches.len(), 1);
        batches.remove(0)
    }

    fn matrix(rows: usize, width: usize) -> NamedTensor {
        let values = (0..rows * width).map(|value| value as f64).collect();
        NamedTensor::new(
            "input-0",
            Tensor::new(vec![rows, width], TensorData::F64(values)).expect("a matrix"),
        )
    }

    #[test]
    fn matrix_becomes_signature_columns_when_widths_match() {
        let layout = InputLayout::Frame {
            column_names: Some(vec!["a".to_string(), "b".to_string()]),
        };
        let batch = read_back(&encode_request(&layout, &[matrix(3, 2)]).expect("encoded"));
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            batch
                .column(1)
                .as_primitive::<Float64Type>()
                .values()
                .to_vec(),
            [1.0, 3.0, 5.0]
        );
        assert_eq!(batch.schema_ref().metadata().get("keel.unnamed"), None);
    }

    #[test]
    fn matrix_of_another_width_gets_unnamed_columns() {
        let layout = InputLayout::Frame {
            column_names: Some(vec!["a".to_string(), "b".to_string()]),
        };
        let batch = read_back(&encode_request(&layout, &[matrix(2, 3)]).expect("encoded"));
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        assert_eq!(names, ["0", "1", "2"]);
        assert_eq!(
            batch
                .schema_ref()
                .metadata()
                .get("keel.unnamed")
                .map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn several_inputs_must_be_columns_of_equal_length() {
        let layout = InputLayout::Frame { column_names: None };
        let column = |name: &str, rows: usize| {
            NamedTensor::new(
                name,
                Tensor::new(vec![rows], TensorData::I64(vec![1; rows])).expect("a column"),
            )
        };
        let err = encode_request(&layout, &[column("x", 2), matrix(2, 2)])
            .expect_err("a matrix among columns");
        assert!(err.message.contains("[rows] or [rows, 1]"), "{err}");
        let err =
            encode_request(&layout, &[column("x", 2), column("y", 3)]).expect_err("uneven columns");
        assert!(err.message.contains("has 3 rows"), "{err}");
    }

    #[test]
    fn tensors_round_trip_with_their_shapes() {
        let layout = InputLayout::Tensors { single: true };
        let input = NamedTensor::new(
            "images",
            Tensor::new(
                vec![2, 2, 2],
                TensorData::F32((0..8).map(|v| v as f32).collect()),
            )
            .expect("a tensor"),
        );
        let payload = encode_request(&layout, std::slice::from_ref(&input)).expect("encoded");
        // The worker answers in the same encoding, so decoding the request gives it back.
        let decoded = decode_response(&payload).expect("decoded");
        assert_eq!(decoded, vec![input]);
    }
}
