//! The protocol's raw tensor encoding, shared by the REST binary extension
//! and gRPC `raw_input_contents`/`raw_output_contents`: elements little-endian
//! back to back, BOOL as one byte, BYTES as a 4-byte little-endian length
//! followed by the bytes, for each element.

use keel_core::tensor::{element_count, DataType, Tensor, TensorData};

use crate::ServingError;

/// Decodes `bytes` as `count(shape)` elements of `datatype`.
pub fn decode_raw(
    datatype: DataType,
    shape: &[usize],
    bytes: &[u8],
) -> Result<Tensor, ServingError> {
    let count = element_count(shape)
        .ok_or_else(|| ServingError::invalid(format!("shape {shape:?} is too large")))?;
    let data = match datatype.element_size() {
        Some(size) => {
            let expected = count.saturating_mul(size);
            if bytes.len() != expected {
                return Err(ServingError::invalid(format!(
                    "raw data holds {} bytes but shape {shape:?} of {datatype} needs {expected}",
                    bytes.len()
                )));
            }
            decode_fixed(datatype, bytes)?
        }
        None => TensorData::Bytes(decode_bytes_elements(bytes, count)?),
    };
    Tensor::new(shape.to_vec(), data).map_err(|err| ServingError::invalid(err.to_string()))
}

fn decode_fixed(datatype: DataType, bytes: &[u8]) -> Result<TensorData, ServingError> {
    macro_rules! le {
        ($ty:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|chunk| {
                    let mut buf = [0u8; $n];
                    buf.copy_from_slice(chunk);
                    <$ty>::from_le_bytes(buf)
                })
                .collect()
        };
    }
    Ok(match datatype {
        DataType::Bool => {
            if let Some(bad) = bytes.iter().find(|&&b| b > 1) {
                return Err(ServingError::invalid(format!(
                    "BOOL raw data must hold bytes 0 or 1, found {bad}"
                )));
            }
            TensorData::Bool(bytes.iter().map(|&b| b == 1).collect())
        }
        DataType::U8 => TensorData::U8(bytes.to_vec()),
        DataType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
        DataType::U16 => TensorData::U16(le!(u16, 2)),
        DataType::I16 => TensorData::I16(le!(i16, 2)),
        DataType::F16 => TensorData::F16(le!(u16, 2)),
        DataType::U32 => TensorData::U32(le!(u32, 4)),
        DataType::I32 => TensorData::I32(le!(i32, 4)),
        DataType::F32 => TensorData::F32(le!(f32, 4)),
        DataType::U64 => TensorData::U64(le!(u64, 8)),
        DataType::I64 => TensorData::I64(le!(i64, 8)),
        DataType::F64 => TensorData::F64(le!(f64, 8)),
        DataType::Bytes => return Err(ServingError::internal("BYTES has no fixed element size")),
    })
}

fn decode_bytes_elements(mut bytes: &[u8], count: usize) -> Result<Vec<Vec<u8>>, ServingError> {
    let mut elements = Vec::with_capacity(count.min(bytes.len() / 4 + 1));
    while !bytes.is_empty() {
        let Some((len_bytes, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(ServingError::invalid(
                "BYTES raw data ends inside a 4-byte length prefix",
            ));
        };
        let len = u32::from_le_bytes(*len_bytes) as usize;
        if rest.len() < len {
            return Err(ServingError::invalid(format!(
                "BYTES raw data element of {len} bytes runs past the end of the data"
            )));
        }
        elements.push(rest[..len].to_vec());
        bytes = &rest[len..];
    }
    if elements.len() != count {
        return Err(ServingError::invalid(format!(
            "BYTES raw data holds {} elements but the shape needs {count}",
            elements.len()
        )));
    }
    Ok(elements)
}

/// Encodes a tensor's elements in the raw format.
pub fn encode_raw(tensor: &Tensor) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(values: &[T], to: fn(T) -> [u8; N]) -> Vec<u8> {
        let mut out = Vec::with_capacity(values.len() * N);
        for &value in values {
            out.extend_from_slice(&to(value));
        }
        out
    }
    match tensor.data() {
        TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        TensorData::U8(v) => v.clone(),
        TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::U16(v) | TensorData::F16(v) => le(v, u16::to_le_bytes),
        TensorData::I16(v) => le(v, i16::to_le_bytes),
        TensorData::U32(v) => le(v, u32::to_le_bytes),
        TensorData::I32(v) => le(v, i32::to_le_bytes),
        TensorData::F32(v) => le(v, f32::to_le_bytes),
        TensorData::U64(v) => le(v, u64::to_le_bytes),
        TensorData::I64(v) => le(v, i64::to_le_bytes),
        TensorData::F64(v) => le(v, f64::to_le_bytes),
        TensorData::Bytes(v) => {
            let mut out = Vec::with_capacity(v.iter().map(|e| e.len() + 4).sum());
            for element in v {
                out.extend_from_slice(&(element.len() as u32).to_le_bytes());
                out.extend_from_slice(element);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_datatype_round_trips() {
        let tensors = [
            Tensor::new(vec![3], TensorData::Bool(vec![true, false, true])),
            Tensor::new(vec![2], TensorData::I8(vec![-1, 7])),
            Tensor::new(vec![2, 1], TensorData::F16(vec![0x3c00, 0xc000])),
            Tensor::new(vec![2], TensorData::I32(vec![-5, i32::MAX])),
            Tensor::new(vec![1, 2], TensorData::F32(vec![1.5, f32::NAN])),
            Tensor::new(vec![2], TensorData::U64(vec![0, u64::MAX])),
            Tensor::new(vec![2], TensorData::F64(vec![-0.25, 1e300])),
            Tensor::new(
                vec![3],
                TensorData::Bytes(vec![b"ab".to_vec(), vec![], b"xyz".to_vec()]),
            ),
        ];
        for tensor in tensors {
            let tensor = tensor.unwrap();
            let raw = encode_raw(&tensor);
            let back = decode_raw(tensor.datatype(), tensor.shape(), &raw).unwrap();
            assert_eq!(encode_raw(&back), raw);
            assert_eq!(back.shape(), tensor.shape());
        }
    }

    #[test]
    fn wrong_sizes_are_invalid_input() {
        assert!(decode_raw(DataType::F32, &[2], &[0; 7]).is_err());
        assert!(decode_raw(DataType::Bool, &[1], &[2]).is_err());
        assert!(decode_raw(DataType::Bytes, &[1], &[5, 0, 0, 0, b'a']).is_err());
        assert!(decode_raw(DataType::Bytes, &[2], &[1, 0, 0, 0, b'a']).is_err());
        assert!(decode_raw(DataType::Bytes, &[1], &[1, 0]).is_err());
        assert!(decode_raw(DataType::F64, &[usize::MAX, 2], &[]).is_err());
    }
}
