//! Tensors as inference speaks them: a shape, a datatype from the Open
//! Inference Protocol's set, and a flat row-major buffer. Runtimes (native
//! ONNX, Python workers) and the wire layers (REST, gRPC) all meet here.

use std::fmt;

/// The Open Inference Protocol's tensor datatypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    F32,
    F64,
    Bytes,
}

impl DataType {
    pub const ALL: [DataType; 13] = [
        DataType::Bool,
        DataType::U8,
        DataType::U16,
        DataType::U32,
        DataType::U64,
        DataType::I8,
        DataType::I16,
        DataType::I32,
        DataType::I64,
        DataType::F16,
        DataType::F32,
        DataType::F64,
        DataType::Bytes,
    ];

    /// The protocol's spelling: `BOOL`, `UINT8`, ..., `FP32`, `BYTES`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::U8 => "UINT8",
            DataType::U16 => "UINT16",
            DataType::U32 => "UINT32",
            DataType::U64 => "UINT64",
            DataType::I8 => "INT8",
            DataType::I16 => "INT16",
            DataType::I32 => "INT32",
            DataType::I64 => "INT64",
            DataType::F16 => "FP16",
            DataType::F32 => "FP32",
            DataType::F64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|dt| dt.as_str() == name)
    }

    /// Bytes per element in the binary encoding; `None` for BYTES, whose
    /// elements carry their own 4-byte little-endian length prefix.
    pub fn element_size(self) -> Option<usize> {
        match self {
            DataType::Bool | DataType::U8 | DataType::I8 => Some(1),
            DataType::U16 | DataType::I16 | DataType::F16 => Some(2),
            DataType::U32 | DataType::I32 | DataType::F32 => Some(4),
            DataType::U64 | DataType::I64 | DataType::F64 => Some(8),
            DataType::Bytes => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flat, row-major element buffer. FP16 is kept as raw IEEE-754 half bits.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F16(Vec<u16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

macro_rules! each_variant {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Bool($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::U16($v) => $body,
            TensorData::U32($v) => $body,
            TensorData::U64($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::I16($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::F16($v) => $body,
            TensorData::F32($v) => $body,
            TensorData::F64($v) => $body,
            TensorData::Bytes($v) => $body,
        }
    };
}

impl TensorData {
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::U8(_) => DataType::U8,
            TensorData::U16(_) => DataType::U16,
            TensorData::U32(_) => DataType::U32,
            TensorData::U64(_) => DataType::U64,
            TensorData::I8(_) => DataType::I8,
            TensorData::I16(_) => DataType::I16,
            TensorData::I32(_) => DataType::I32,
            TensorData::I64(_) => DataType::I64,
            TensorData::F16(_) => DataType::F16,
            TensorData::F32(_) => DataType::F32,
            TensorData::F64(_) => DataType::F64,
            TensorData::Bytes(_) => DataType::Bytes,
        }
    }

    pub fn len(&self) -> usize {
        each_variant!(self, values => values.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty buffer of `datatype` with room for `capacity` elements.
    pub fn with_capacity(datatype: DataType, capacity: usize) -> TensorData {
        match datatype {
            DataType::Bool => TensorData::Bool(Vec::with_capacity(capacity)),
            DataType::U8 => TensorData::U8(Vec::with_capacity(capacity)),
            DataType::U16 => TensorData::U16(Vec::with_capacity(capacity)),
            DataType::U32 => TensorData::U32(Vec::with_capacity(capacity)),
            DataType::U64 => TensorData::U64(Vec::with_capacity(capacity)),
            DataType::I8 => TensorData::I8(Vec::with_capacity(capacity)),
            DataType::I16 => TensorData::I16(Vec::with_capacity(capacity)),
            DataType::I32 => TensorData::I32(Vec::with_capacity(capacity)),
            DataType::I64 => TensorData::I64(Vec::with_capacity(capacity)),
            DataType::F16 => TensorData::F16(Vec::with_capacity(capacity)),
            DataType::F32 => TensorData::F32(Vec::with_capacity(capacity)),
            DataType::F64 => TensorData::F64(Vec::with_capacity(capacity)),
            DataType::Bytes => TensorData::Bytes(Vec::with_capacity(capacity)),
        }
    }

    /// Appends `other` (same datatype) to `self`; false when the types differ.
    pub fn extend_from(&mut self, other: &TensorData) -> bool {
        match (self, other) {
            (TensorData::Bool(a), TensorData::Bool(b)) => a.extend_from_slice(b),
            (TensorData::U8(a), TensorData::U8(b)) => a.extend_from_slice(b),
            (TensorData::U16(a), TensorData::U16(b)) => a.extend_from_slice(b),
            (TensorData::U32(a), TensorData::U32(b)) => a.extend_from_slice(b),
            (TensorData::U64(a), TensorData::U64(b)) => a.extend_from_slice(b),
            (TensorData::I8(a), TensorData::I8(b)) => a.extend_from_slice(b),
            (TensorData::I16(a), TensorData::I16(b)) => a.extend_from_slice(b),
            (TensorData::I32(a), TensorData::I32(b)) => a.extend_from_slice(b),
            (TensorData::I64(a), TensorData::I64(b)) => a.extend_from_slice(b),
            (TensorData::F16(a), TensorData::F16(b)) => a.extend_from_slice(b),
            (TensorData::F32(a), TensorData::F32(b)) => a.extend_from_slice(b),
            (TensorData::F64(a), TensorData::F64(b)) => a.extend_from_slice(b),
            (TensorData::Bytes(a), TensorData::Bytes(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }

    /// Elements `start..end` as a new buffer (clamped to the length).
    pub fn slice(&self, start: usize, end: usize) -> TensorData {
        let end = end.min(self.len());
        let start = start.min(end);
        match self {
            TensorData::Bool(v) => TensorData::Bool(v[start..end].to_vec()),
            TensorData::U8(v) => TensorData::U8(v[start..end].to_vec()),
            TensorData::U16(v) => TensorData::U16(v[start..end].to_vec()),
            TensorData::U32(v) => TensorData::U32(v[start..end].to_vec()),
            TensorData::U64(v) => TensorData::U64(v[start..end].to_vec()),
            TensorData::I8(v) => TensorData::I8(v[start..end].to_vec()),
            TensorData::I16(v) => TensorData::I16(v[start..end].to_vec()),
            TensorData::I32(v) => TensorData::I32(v[start..end].to_vec()),
            TensorData::I64(v) => TensorData::I64(v[start..end].to_vec()),
            TensorData::F16(v) => TensorData::F16(v[start..end].to_vec()),
            TensorData::F32(v) => TensorData::F32(v[start..end].to_vec()),
            TensorData::F64(v) => TensorData::F64(v[start..end].to_vec()),
            TensorData::Bytes(v) => TensorData::Bytes(v[start..end].to_vec()),
        }
    }

    /// Every element as f64 (BOOL as 0/1, FP16 decoded); `None` for BYTES.
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        Some(match self {
            TensorData::Bool(v) => v.iter().map(|&b| f64::from(u8::from(b))).collect(),
            TensorData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::F16(v) => v.iter().map(|&bits| f64::from(f16_to_f32(bits))).collect(),
            TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::F64(v) => v.clone(),
            TensorData::Bytes(_) => return None,
        })
    }
}

/// Decodes IEEE-754 binary16 bits (subnormals, infinities and NaN included).
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        (0, _) => {
            // Subnormal: value = mantissa * 2^-24, exact in f32.
            return sign_factor(sign) * (mantissa as f32) * f32::powi(2.0, -24);
        }
        (0x1f, 0) => 0x7f80_0000,
        (0x1f, _) => 0x7fc0_0000 | (mantissa << 13),
        _ => ((exponent + 127 - 15) << 23) | (mantissa << 13),
    };
    f32::from_bits(sign | magnitude)
}

fn sign_factor(sign: u32) -> f32 {
    if sign == 0 {
        1.0
    } else {
        -1.0
    }
}

/// Encodes an f32 as IEEE-754 binary16 bits, rounding to nearest even.
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exponent == 0xff {
        let nan_bit = if mantissa != 0 { 0x200 } else { 0 };
        return sign | 0x7c00 | nan_bit;
    }
    let half_exponent = exponent - 127 + 15;
    if half_exponent >= 0x1f {
        return sign | 0x7c00;
    }
    if half_exponent <= 0 {
        if half_exponent < -10 {
            return sign;
        }
        let full_mantissa = mantissa | 0x80_0000;
        let shift = (14 - half_exponent) as u32;
        let half_mantissa = full_mantissa >> shift;
        let remainder = full_mantissa & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        let round_up = remainder > halfway || (remainder == halfway && half_mantissa & 1 == 1);
        return sign | (half_mantissa as u16 + u16::from(round_up));
    }
    let half_mantissa = (mantissa >> 13) as u16;
    let remainder = mantissa & 0x1fff;
    let round_up = remainder > 0x1000 || (remainder == 0x1000 && half_mantissa & 1 == 1);
    // A carry out of the mantissa correctly bumps the exponent.
    (sign | ((half_exponent as u16) << 10) | half_mantissa) + u16::from(round_up)
}

/// Why a shape and a buffer do not make a tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    #[error("shape {shape:?} holds {expected} elements but {actual} were given")]
    ShapeMismatch {
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("shape {0:?} is too large")]
    ShapeOverflow(Vec<usize>),
}

/// A shape and a buffer whose length is the product of the shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, TensorError> {
        let expected =
            element_count(&shape).ok_or_else(|| TensorError::ShapeOverflow(shape.clone()))?;
        if expected != data.len() {
            return Err(TensorError::ShapeMismatch {
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Tensor { shape, data })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &TensorData {
        &self.data
    }

    pub fn datatype(&self) -> DataType {
        self.data.datatype()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn into_parts(self) -> (Vec<usize>, TensorData) {
        (self.shape, self.data)
    }

    /// The first dimension (rows of a batch); 1 for a scalar.
    pub fn batch_size(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per row of the first dimension.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
}

/// The product of `shape`, or `None` on overflow.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatype_names_round_trip() {
        for dt in DataType::ALL {
            assert_eq!(DataType::parse(dt.as_str()), Some(dt));
        }
        assert_eq!(DataType::parse("FLOAT"), None);
    }

    #[test]
    fn shape_must_match_buffer() {
        assert!(Tensor::new(vec![2, 3], TensorData::F32(vec![0.0; 6])).is_ok());
        let err = Tensor::new(vec![2, 3], TensorData::F32(vec![0.0; 5])).unwrap_err();
        assert_eq!(
            err,
            TensorError::ShapeMismatch {
                shape: vec![2, 3],
                expected: 6,
                actual: 5
            }
        );
        assert!(matches!(
            Tensor::new(vec![usize::MAX, 3], TensorData::F32(vec![])),
            Err(TensorError::ShapeOverflow(_))
        ));
    }

    #[test]
    fn half_precision_round_trips_representable_values() {
        for value in [
            0.0f32,
            -0.0,
            1.0,
            -2.5,
            65504.0,
            0.000_061_035_156,
            5.960_464_5e-8,
            0.333_251_95,
        ] {
            assert_eq!(f16_to_f32(f32_to_f16(value)), value, "{value}");
        }
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
        assert_eq!(f16_to_f32(f32_to_f16(1e6)), f32::INFINITY);
        assert_eq!(f32_to_f16(1.0), 0x3c00);
    }

    #[test]
    fn extend_and_slice_keep_order() {
        let mut data = TensorData::I64(vec![1, 2]);
        assert!(data.extend_from(&TensorData::I64(vec![3])));
        assert!(!data.extend_from(&TensorData::F32(vec![3.0])));
        assert_eq!(data.slice(1, 3), TensorData::I64(vec![2, 3]));
        assert_eq!(data.slice(2, 10), TensorData::I64(vec![3]));
    }
}
