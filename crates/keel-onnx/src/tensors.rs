//! Bridges between ONNX's tensor encoding and `keel_core::tensor`, plus the
//! small tensor helpers every operator uses (datatype casts, typed views).

use std::borrow::Cow;

use keel_core::tensor::{element_count, f16_to_f32, f32_to_f16, DataType, Tensor, TensorData};

use crate::error::{malformed, runtime, OnnxError};
use crate::proto::{elem_type, TensorProto};

/// The Keel datatype of an ONNX element type, if Keel has one.
pub(crate) fn datatype_from_onnx(elem: i32) -> Option<DataType> {
    Some(match elem {
        elem_type::FLOAT => DataType::F32,
        elem_type::UINT8 => DataType::U8,
        elem_type::INT8 => DataType::I8,
        elem_type::UINT16 => DataType::U16,
        elem_type::INT16 => DataType::I16,
        elem_type::INT32 => DataType::I32,
        elem_type::INT64 => DataType::I64,
        elem_type::STRING => DataType::Bytes,
        elem_type::BOOL => DataType::Bool,
        elem_type::FLOAT16 => DataType::F16,
        elem_type::DOUBLE => DataType::F64,
        elem_type::UINT32 => DataType::U32,
        elem_type::UINT64 => DataType::U64,
        _ => return None,
    })
}

/// ONNX's name for an element type, for error messages.
pub(crate) fn onnx_type_name(elem: i32) -> String {
    match elem {
        14 => "complex64".into(),
        15 => "complex128".into(),
        16 => "bfloat16".into(),
        17..=25 => "float8/int4 family".into(),
        other => format!("element type {other}"),
    }
}

/// Builds a tensor, turning a shape/length mismatch into a runtime error.
pub(crate) fn make_tensor(shape: Vec<usize>, data: TensorData) -> Result<Tensor, OnnxError> {
    Tensor::new(shape, data).map_err(|err| runtime(err.to_string()))
}

fn checked_dims(dims: &[i64], what: &str) -> Result<Vec<usize>, OnnxError> {
    dims.iter()
        .map(|&dim| {
            usize::try_from(dim)
                .map_err(|_| malformed(format!("{what} has negative dimension {dim}")))
        })
        .collect()
}

/// Decodes an initializer or attribute tensor (typed fields or `raw_data`).
pub(crate) fn tensor_from_proto(proto: &TensorProto) -> Result<Tensor, OnnxError> {
    let what = if proto.name.is_empty() {
        "tensor".to_string()
    } else {
        format!("tensor \"{}\"", proto.name)
    };
    if proto.data_location == 1 || !proto.external_data.is_empty() {
        return Err(OnnxError::UnsupportedModel(format!(
            "{what} keeps its data in an external file; save the model with its weights inside it"
        )));
    }
    let datatype = datatype_from_onnx(proto.data_type).ok_or_else(|| {
        OnnxError::UnsupportedModel(format!("{what} has {}", onnx_type_name(proto.data_type)))
    })?;
    let shape = checked_dims(&proto.dims, &what)?;
    let count = element_count(&shape).ok_or_else(|| malformed(format!("{what} is too large")))?;
    let data = if datatype != DataType::Bytes
        && (!proto.raw_data.is_empty() || (count > 0 && has_no_typed_data(proto)))
    {
        decode_raw(datatype, &proto.raw_data, count, &what)?
    } else {
        decode_typed(datatype, proto, &what)?
    };
    if data.len() != count {
        return Err(malformed(format!(
            "{what} has shape {shape:?} ({count} elements) but holds {} values",
            data.len()
        )));
    }
    make_tensor(shape, data).map_err(|err| malformed(format!("{what}: {err}")))
}

fn has_no_typed_data(proto: &TensorProto) -> bool {
    proto.float_data.is_empty()
        && proto.int32_data.is_empty()
        && proto.string_data.is_empty()
        && proto.int64_data.is_empty()
        && proto.double_data.is_empty()
        && proto.uint64_data.is_empty()
}

fn decode_raw(
    datatype: DataType,
    raw: &[u8],
    count: usize,
    what: &str,
) -> Result<TensorData, OnnxError> {
    let Some(size) = datatype.element_size() else {
        return Err(malformed(format!(
            "{what}: string tensors cannot use raw_data"
        )));
    };
    if Some(raw.len()) != count.checked_mul(size) {
        return Err(malformed(format!(
            "{what}: raw_data has {} bytes, expected {count} elements of {size} bytes",
            raw.len()
        )));
    }
    fn chunks<const N: usize, T>(raw: &[u8], convert: impl Fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N)
            .map(|chunk| {
                let mut bytes = [0u8; N];
                bytes.copy_from_slice(chunk);
                convert(bytes)
            })
            .collect()
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(raw.iter().map(|&b| b != 0).collect()),
        DataType::U8 => TensorData::U8(raw.to_vec()),
        DataType::I8 => TensorData::I8(raw.iter().map(|&b| b as i8).collect()),
        DataType::U16 => TensorData::U16(chunks(raw, u16::from_le_bytes)),
        DataType::I16 => TensorData::I16(chunks(raw, i16::from_le_bytes)),
        DataType::F16 => TensorData::F16(chunks(raw, u16::from_le_bytes)),
        DataType::U32 => TensorData::U32(chunks(raw, u32::from_le_bytes)),
        DataType::I32 => TensorData::I32(chunks(raw, i32::from_le_bytes)),
        DataType::F32 => TensorData::F32(chunks(raw, f32::from_le_bytes)),
        DataType::U64 => TensorData::U64(chunks(raw, u64::from_le_bytes)),
        DataType::I64 => TensorData::I64(chunks(raw, i64::from_le_bytes)),
        DataType::F64 => TensorData::F64(chunks(raw, f64::from_le_bytes)),
        DataType::Bytes => unreachable_bytes(),
    })
}

// BYTES has no element size and returns early above; kept total without a panic.
fn unreachable_bytes() -> TensorData {
    TensorData::Bytes(Vec::new())
}

fn decode_typed(
    datatype: DataType,
    proto: &TensorProto,
    what: &str,
) -> Result<TensorData, OnnxError> {
    let int32 = &proto.int32_data;
    Ok(match datatype {
        DataType::F32 => TensorData::F32(proto.float_data.clone()),
        DataType::F64 => TensorData::F64(proto.double_data.clone()),
        DataType::I64 => TensorData::I64(proto.int64_data.clone()),
        DataType::U64 => TensorData::U64(proto.uint64_data.clone()),
        DataType::U32 => TensorData::U32(proto.uint64_data.iter().map(|&v| v as u32).collect()),
        DataType::I32 => TensorData::I32(int32.clone()),
        DataType::I16 => TensorData::I16(int32.iter().map(|&v| v as i16).collect()),
        DataType::I8 => TensorData::I8(int32.iter().map(|&v| v as i8).collect()),
        DataType::U16 => TensorData::U16(int32.iter().map(|&v| v as u16).collect()),
        DataType::U8 => TensorData::U8(int32.iter().map(|&v| v as u8).collect()),
        DataType::F16 => TensorData::F16(int32.iter().map(|&v| v as u16).collect()),
        DataType::Bool => TensorData::Bool(int32.iter().map(|&v| v != 0).collect()),
        DataType::Bytes => {
            if proto.string_data.is_empty() && !proto.raw_data.is_empty() {
                return Err(malformed(format!(
                    "{what}: string tensors cannot use raw_data"
                )));
            }
            TensorData::Bytes(proto.string_data.clone())
        }
    })
}

/// True for the datatypes whose elements are numbers (BOOL counts as 0/1).
pub(crate) fn is_numeric(datatype: DataType) -> bool {
    datatype != DataType::Bytes
}

/// The elements as f32, borrowed when they already are.
pub(crate) fn as_f32(data: &TensorData) -> Result<Cow<'_, [f32]>, OnnxError> {
    Ok(match data {
        TensorData::F32(values) => Cow::Borrowed(values.as_slice()),
        TensorData::F64(values) => Cow::Owned(values.iter().map(|&v| v as f32).collect()),
        TensorData::I64(values) => Cow::Owned(values.iter().map(|&v| v as f32).collect()),
        TensorData::I32(values) => Cow::Owned(values.iter().map(|&v| v as f32).collect()),
        TensorData::F16(values) => Cow::Owned(values.iter().map(|&v| f16_to_f32(v)).collect()),
        TensorData::Bytes(_) => return Err(runtime("expected a numeric tensor, got BYTES")),
        other => match cast_data(other, DataType::F32)? {
            TensorData::F32(values) => Cow::Owned(values),
            _ => return Err(runtime("cast to FP32 failed")),
        },
    })
}

/// The elements as i64 (shape, axes and index inputs).
pub(crate) fn as_i64(data: &TensorData) -> Result<Cow<'_, [i64]>, OnnxError> {
    Ok(match data {
        TensorData::I64(values) => Cow::Borrowed(values.as_slice()),
        TensorData::I32(values) => Cow::Owned(values.iter().map(|&v| i64::from(v)).collect()),
        TensorData::Bytes(_) => return Err(runtime("expected an integer tensor, got BYTES")),
        other => match cast_data(other, DataType::I64)? {
            TensorData::I64(values) => Cow::Owned(values),
            _ => return Err(runtime("cast to INT64 failed")),
        },
    })
}

/// Numbers widened to one of three exact carriers, the hub of every cast.
enum Wide {
    Bool(Vec<bool>),
    Signed(Vec<i64>),
    Unsigned(Vec<u64>),
    Float(Vec<f64>),
    Text(Vec<Vec<u8>>),
}

fn widen(data: &TensorData) -> Wide {
    match data {
        TensorData::Bool(v) => Wide::Bool(v.clone()),
        TensorData::U8(v) => Wide::Unsigned(v.iter().map(|&x| u64::from(x)).collect()),
        TensorData::U16(v) => Wide::Unsigned(v.iter().map(|&x| u64::from(x)).collect()),
        TensorData::U32(v) => Wide::Unsigned(v.iter().map(|&x| u64::from(x)).collect()),
        TensorData::U64(v) => Wide::Unsigned(v.clone()),
        TensorData::I8(v) => Wide::Signed(v.iter().map(|&x| i64::from(x)).collect()),
        TensorData::I16(v) => Wide::Signed(v.iter().map(|&x| i64::from(x)).collect()),
        TensorData::I32(v) => Wide::Signed(v.iter().map(|&x| i64::from(x)).collect()),
        TensorData::I64(v) => Wide::Signed(v.clone()),
        TensorData::F16(v) => Wide::Float(v.iter().map(|&x| f64::from(f16_to_f32(x))).collect()),
        TensorData::F32(v) => Wide::Float(v.iter().map(|&x| f64::from(x)).collect()),
        TensorData::F64(v) => Wide::Float(v.clone()),
        TensorData::Bytes(v) => Wide::Text(v.clone()),
    }
}

macro_rules! narrow_to {
    ($wide:expr, $variant:ident, $ty:ty, $from_float:expr) => {
        TensorData::$variant(match $wide {
            Wide::Bool(v) => v.into_iter().map(|x| u8::from(x) as $ty).collect(),
            Wide::Signed(v) => v.into_iter().map(|x| x as $ty).collect(),
            Wide::Unsigned(v) => v.into_iter().map(|x| x as $ty).collect(),
            Wide::Float(v) => v.into_iter().map($from_float).collect(),
            Wide::Text(v) => v
                .iter()
                .map(|s| parse_number(s).map($from_float))
                .collect::<Result<Vec<$ty>, OnnxError>>()?,
        })
    };
}

fn parse_number(text: &[u8]) -> Result<f64, OnnxError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| runtime("cannot cast a non-utf-8 string to a number"))?;
    let trimmed = text.trim();
    let lowered = trimmed.to_ascii_lowercase();
    match lowered.as_str() {
        "nan" | "-nan" => return Ok(f64::NAN),
        "inf" | "infinity" | "+inf" | "+infinity" => return Ok(f64::INFINITY),
        "-inf" | "-infinity" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    trimmed
        .parse::<f64>()
        .map_err(|_| runtime(format!("cannot cast string \"{trimmed}\" to a number")))
}

fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "INF".into()
        } else {
            "-INF".into()
        }
    } else {
        format!("{value}")
    }
}

/// Converts every element to `to`, as ONNX `Cast` does: floats to integers
/// truncate toward zero (saturating), numbers to BOOL test for non-zero,
/// strings parse as numbers.
pub(crate) fn cast_data(data: &TensorData, to: DataType) -> Result<TensorData, OnnxError> {
    if data.datatype() == to {
        return Ok(data.clone());
    }
    // f32 -> f16 must round from the f32 value, not from a widened f64.
    if to == DataType::F16 {
        let floats = match cast_data(data, DataType::F32)? {
            TensorData::F32(values) => values,
            _ => return Err(runtime("cast to FP16 failed")),
        };
        return Ok(TensorData::F16(
            floats.into_iter().map(f32_to_f16).collect(),
        ));
    }
    let wide = widen(data);
    Ok(match to {
        DataType::Bool => TensorData::Bool(match wide {
            Wide::Bool(v) => v,
            Wide::Signed(v) => v.into_iter().map(|x| x != 0).collect(),
            Wide::Unsigned(v) => v.into_iter().map(|x| x != 0).collect(),
            Wide::Float(v) => v.into_iter().map(|x| x != 0.0).collect(),
            Wide::Text(v) => v
                .iter()
                .map(|s| parse_number(s).map(|x| x != 0.0))
                .collect::<Result<_, _>>()?,
        }),
        DataType::U8 => narrow_to!(wide, U8, u8, |x: f64| x as u8),
        DataType::U16 => narrow_to!(wide, U16, u16, |x: f64| x as u16),
        DataType::U32 => narrow_to!(wide, U32, u32, |x: f64| x as u32),
        DataType::U64 => narrow_to!(wide, U64, u64, |x: f64| x as u64),
        DataType::I8 => narrow_to!(wide, I8, i8, |x: f64| x as i8),
        DataType::I16 => narrow_to!(wide, I16, i16, |x: f64| x as i16),
        DataType::I32 => narrow_to!(wide, I32, i32, |x: f64| x as i32),
        DataType::I64 => narrow_to!(wide, I64, i64, |x: f64| x as i64),
        DataType::F32 => narrow_to!(wide, F32, f32, |x: f64| x as f32),
        DataType::F64 => narrow_to!(wide, F64, f64, |x: f64| x),
        DataType::F16 => return Err(runtime("cast to FP16 failed")),
        DataType::Bytes => TensorData::Bytes(match wide {
            Wide::Bool(v) => v
                .into_iter()
                .map(|x| (if x { "1" } else { "0" }).into())
                .collect(),
            Wide::Signed(v) => v.into_iter().map(|x| x.to_string().into_bytes()).collect(),
            Wide::Unsigned(v) => v.into_iter().map(|x| x.to_string().into_bytes()).collect(),
            Wide::Float(v) => v
                .into_iter()
                .map(|x| format_float(x).into_bytes())
                .collect(),
            Wide::Text(v) => v,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_covers_numbers_bools_and_strings() {
        let floats = TensorData::F32(vec![1.7, -2.9, 0.0, f32::NAN]);
        assert_eq!(
            cast_data(&floats, DataType::I64).unwrap(),
            TensorData::I64(vec![1, -2, 0, 0])
        );
        assert_eq!(
            cast_data(&floats, DataType::Bool).unwrap(),
            TensorData::Bool(vec![true, true, false, true])
        );
        let labels = TensorData::I32(vec![3, -1]);
        assert_eq!(
            cast_data(&labels, DataType::Bytes).unwrap(),
            TensorData::Bytes(vec![b"3".to_vec(), b"-1".to_vec()])
        );
        let text = TensorData::Bytes(vec![b"2.5".to_vec(), b" nan".to_vec()]);
        match cast_data(&text, DataType::F64).unwrap() {
            TensorData::F64(v) => {
                assert_eq!(v[0], 2.5);
                assert!(v[1].is_nan());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(cast_data(&TensorData::Bytes(vec![b"cat".to_vec()]), DataType::F32).is_err());
        assert_eq!(
            cast_data(&TensorData::F64(vec![1.0]), DataType::F16).unwrap(),
            TensorData::F16(vec![0x3c00])
        );
        let big = TensorData::I64(vec![i64::MAX]);
        assert_eq!(
            cast_data(&big, DataType::U64).unwrap(),
            TensorData::U64(vec![i64::MAX as u64])
        );
    }

    #[test]
    fn raw_data_must_match_the_shape() {
        let proto = TensorProto {
            dims: vec![2],
            data_type: elem_type::FLOAT,
            raw_data: vec![0; 7],
            ..Default::default()
        };
        assert!(matches!(
            tensor_from_proto(&proto),
            Err(OnnxError::MalformedModel(_))
        ));
        let proto = TensorProto {
            dims: vec![2],
            data_type: elem_type::FLOAT,
            raw_data: [1.5f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat(),
            ..Default::default()
        };
        assert_eq!(
            tensor_from_proto(&proto).unwrap().data(),
            &TensorData::F32(vec![1.5, 2.0])
        );
    }
}
