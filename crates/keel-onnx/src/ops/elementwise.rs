//! Elementwise operators with numpy broadcasting: arithmetic, comparisons,
//! logic, `Where`, `Clip`, and the unary math functions.

use keel_core::tensor::{Tensor, TensorData};

use crate::error::{runtime, OnnxError};
use crate::tensors::{cast_data, make_tensor};

/// The shape both operands broadcast to, numpy style.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, OnnxError> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, dim) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        *dim = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(runtime(format!(
                    "shapes {a:?} and {b:?} cannot be broadcast together"
                )))
            }
        };
    }
    Ok(out)
}

/// True when an operand of `shape` repeats whole along the leading axes of
/// `out` (e.g. a bias [1, H] or [H] against [N, H]): element i reads i % len.
fn is_suffix_of(shape: &[usize], out: &[usize]) -> bool {
    let offset = out.len() - shape.len();
    let first_real = shape.iter().position(|&d| d != 1).unwrap_or(shape.len());
    shape[first_real..] == out[offset + first_real..]
}

/// For each element of `out_shape`, the index into an operand of `shape`.
fn broadcast_index_map(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let rank = out_shape.len();
    let mut strides = vec![0usize; rank];
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        let out_axis = i + rank - shape.len();
        strides[out_axis] = if shape[i] == 1 { 0 } else { stride };
        stride *= shape[i];
    }
    let total: usize = out_shape.iter().product();
    let mut map = Vec::with_capacity(total);
    let mut index = vec![0usize; rank];
    let mut offset = 0usize;
    for _ in 0..total {
        map.push(offset);
        for axis in (0..rank).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < out_shape[axis] {
                break;
            }
            offset -= strides[axis] * index[axis];
            index[axis] = 0;
        }
    }
    map
}

/// Applies `f` elementwise over the broadcast of `a` and `b`.
pub(crate) fn broadcast_apply<A: Copy, B: Copy, O>(
    a: &[A],
    a_shape: &[usize],
    b: &[B],
    b_shape: &[usize],
    f: impl Fn(A, B) -> O,
) -> Result<(Vec<usize>, Vec<O>), OnnxError> {
    let out_shape = broadcast_shape(a_shape, b_shape)?;
    let total: usize = out_shape.iter().product();
    let out = if a.len() == total && b.len() == total {
        a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
    } else if a.len() == total && !b.is_empty() && is_suffix_of(b_shape, &out_shape) {
        let n = b.len();
        a.iter().enumerate().map(|(i, &x)| f(x, b[i % n])).collect()
    } else if b.len() == total && !a.is_empty() && is_suffix_of(a_shape, &out_shape) {
        let n = a.len();
        b.iter().enumerate().map(|(i, &y)| f(a[i % n], y)).collect()
    } else {
        let a_map = broadcast_index_map(a_shape, &out_shape);
        let b_map = broadcast_index_map(b_shape, &out_shape);
        a_map
            .iter()
            .zip(&b_map)
            .map(|(&i, &j)| f(a[i], b[j]))
            .collect()
    };
    Ok((out_shape, out))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    Equal,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    And,
    Or,
    Xor,
}

impl BinaryOp {
    pub(crate) fn from_op_type(op_type: &str) -> Option<BinaryOp> {
        Some(match op_type {
            "Add" => BinaryOp::Add,
            "Sub" => BinaryOp::Sub,
            "Mul" => BinaryOp::Mul,
            "Div" => BinaryOp::Div,
            "Pow" => BinaryOp::Pow,
            "Max" => BinaryOp::Max,
            "Min" => BinaryOp::Min,
            "Equal" => BinaryOp::Equal,
            "Greater" => BinaryOp::Greater,
            "Less" => BinaryOp::Less,
            "GreaterOrEqual" => BinaryOp::GreaterOrEqual,
            "LessOrEqual" => BinaryOp::LessOrEqual,
            "And" => BinaryOp::And,
            "Or" => BinaryOp::Or,
            "Xor" => BinaryOp::Xor,
            _ => return None,
        })
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Equal
                | BinaryOp::Greater
                | BinaryOp::Less
                | BinaryOp::GreaterOrEqual
                | BinaryOp::LessOrEqual
        )
    }
}

macro_rules! float_arith {
    ($op:expr, $a:expr, $a_shape:expr, $b:expr, $b_shape:expr, $variant:ident) => {{
        let (shape, values) = match $op {
            BinaryOp::Add => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x + y)?,
            BinaryOp::Sub => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x - y)?,
            BinaryOp::Mul => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x * y)?,
            BinaryOp::Div => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x / y)?,
            BinaryOp::Pow => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x.powf(y))?,
            // ONNX Max/Min propagate NaN.
            BinaryOp::Max => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| {
                if x.is_nan() || x > y {
                    x
                } else {
                    y
                }
            })?,
            BinaryOp::Min => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| {
                if x.is_nan() || x < y {
                    x
                } else {
                    y
                }
            })?,
            _ => return Err(runtime("unsupported arithmetic")),
        };
        (shape, TensorData::$variant(values))
    }};
}

macro_rules! int_arith {
    ($op:expr, $a:expr, $a_shape:expr, $b:expr, $b_shape:expr, $variant:ident, $ty:ty) => {{
        let (shape, values) = match $op {
            BinaryOp::Add => broadcast_apply($a, $a_shape, $b, $b_shape, |x: $ty, y: $ty| {
                x.wrapping_add(y)
            })?,
            BinaryOp::Sub => broadcast_apply($a, $a_shape, $b, $b_shape, |x: $ty, y: $ty| {
                x.wrapping_sub(y)
            })?,
            BinaryOp::Mul => broadcast_apply($a, $a_shape, $b, $b_shape, |x: $ty, y: $ty| {
                x.wrapping_mul(y)
            })?,
            BinaryOp::Max => {
                broadcast_apply($a, $a_shape, $b, $b_shape, |x: $ty, y: $ty| x.max(y))?
            }
            BinaryOp::Min => {
                broadcast_apply($a, $a_shape, $b, $b_shape, |x: $ty, y: $ty| x.min(y))?
            }
            BinaryOp::Div => {
                let (shape, values) =
                    broadcast_apply($a, $a_shape, $b, $b_shape, |x: $ty, y: $ty| {
                        x.checked_div(y)
                    })?;
                let values = values
                    .into_iter()
                    .collect::<Option<Vec<$ty>>>()
                    .ok_or_else(|| runtime("integer division by zero"))?;
                (shape, values)
            }
            BinaryOp::Pow => broadcast_apply($a, $a_shape, $b, $b_shape, |x: $ty, y: $ty| {
                (x as f64).powf(y as f64) as $ty
            })?,
            _ => return Err(runtime("unsupported arithmetic")),
        };
        (shape, TensorData::$variant(values))
    }};
}

macro_rules! compare {
    ($op:expr, $a:expr, $a_shape:expr, $b:expr, $b_shape:expr) => {{
        let (shape, values) = match $op {
            BinaryOp::Equal => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x == y)?,
            BinaryOp::Greater => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x > y)?,
            BinaryOp::Less => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x < y)?,
            BinaryOp::GreaterOrEqual => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x >= y)?,
            BinaryOp::LessOrEqual => broadcast_apply($a, $a_shape, $b, $b_shape, |x, y| x <= y)?,
            _ => return Err(runtime("unsupported comparison")),
        };
        (shape, TensorData::Bool(values))
    }};
}

pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, OnnxError> {
    let (a_shape, b_shape) = (a.shape(), b.shape());
    // Pow's exponent may have its own type: bring it to the base's.
    let converted;
    let b_data = if op == BinaryOp::Pow && a.datatype() != b.datatype() {
        converted = cast_data(b.data(), a.datatype())?;
        &converted
    } else {
        b.data()
    };
    let (shape, data) = match (a.data(), b_data) {
        (TensorData::Bool(x), TensorData::Bool(y)) => match op {
            BinaryOp::And => bool_op(x, a_shape, y, b_shape, |p, q| p && q)?,
            BinaryOp::Or => bool_op(x, a_shape, y, b_shape, |p, q| p || q)?,
            BinaryOp::Xor => bool_op(x, a_shape, y, b_shape, |p, q| p != q)?,
            BinaryOp::Equal => bool_op(x, a_shape, y, b_shape, |p, q| p == q)?,
            _ => return Err(unsupported_types(op, a, b)),
        },
        (TensorData::Bytes(x), TensorData::Bytes(y)) if op == BinaryOp::Equal => {
            let a_index: Vec<usize> = (0..x.len()).collect();
            let b_index: Vec<usize> = (0..y.len()).collect();
            let (shape, values) =
                broadcast_apply(&a_index, a_shape, &b_index, b_shape, |i, j| x[i] == y[j])?;
            (shape, TensorData::Bool(values))
        }
        (TensorData::F32(x), TensorData::F32(y)) if op.is_comparison() => {
            compare!(op, x, a_shape, y, b_shape)
        }
        (TensorData::F64(x), TensorData::F64(y)) if op.is_comparison() => {
            compare!(op, x, a_shape, y, b_shape)
        }
        (TensorData::I64(x), TensorData::I64(y)) if op.is_comparison() => {
            compare!(op, x, a_shape, y, b_shape)
        }
        (TensorData::I32(x), TensorData::I32(y)) if op.is_comparison() => {
            compare!(op, x, a_shape, y, b_shape)
        }
        (_, _)
            if op.is_comparison() || matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor) =>
        {
            return Err(unsupported_types(op, a, b))
        }
        (TensorData::F32(x), TensorData::F32(y)) => float_arith!(op, x, a_shape, y, b_shape, F32),
        (TensorData::F64(x), TensorData::F64(y)) => float_arith!(op, x, a_shape, y, b_shape, F64),
        (TensorData::I64(x), TensorData::I64(y)) => {
            int_arith!(op, x, a_shape, y, b_shape, I64, i64)
        }
        (TensorData::I32(x), TensorData::I32(y)) => {
            int_arith!(op, x, a_shape, y, b_shape, I32, i32)
        }
        _ => return Err(unsupported_types(op, a, b)),
    };
    make_tensor(shape, data)
}

fn bool_op(
    a: &[bool],
    a_shape: &[usize],
    b: &[bool],
    b_shape: &[usize],
    f: impl Fn(bool, bool) -> bool,
) -> Result<(Vec<usize>, TensorData), OnnxError> {
    let (shape, values) = broadcast_apply(a, a_shape, b, b_shape, f)?;
    Ok((shape, TensorData::Bool(values)))
}

fn unsupported_types(op: BinaryOp, a: &Tensor, b: &Tensor) -> OnnxError {
    runtime(format!(
        "{op:?} is not supported for {} and {} operands",
        a.datatype(),
        b.datatype()
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Abs,
    Neg,
    Sqrt,
    Erf,
    Floor,
    Ceil,
    Round,
    Reciprocal,
    Softplus,
    Sign,
    Not,
    IsNaN,
}

impl UnaryOp {
    pub(crate) fn from_op_type(op_type: &str) -> Option<UnaryOp> {
        Some(match op_type {
            "Relu" => UnaryOp::Relu,
            "Sigmoid" => UnaryOp::Sigmoid,
            "Tanh" => UnaryOp::Tanh,
            "Exp" => UnaryOp::Exp,
            "Log" => UnaryOp::Log,
            "Abs" => UnaryOp::Abs,
            "Neg" => UnaryOp::Neg,
            "Sqrt" => UnaryOp::Sqrt,
            "Erf" => UnaryOp::Erf,
            "Floor" => UnaryOp::Floor,
            "Ceil" => UnaryOp::Ceil,
            "Round" => UnaryOp::Round,
            "Reciprocal" => UnaryOp::Reciprocal,
            "Softplus" => UnaryOp::Softplus,
            "Sign" => UnaryOp::Sign,
            "Not" => UnaryOp::Not,
            "IsNaN" => UnaryOp::IsNaN,
            _ => return None,
        })
    }
}

macro_rules! float_unary {
    ($op:expr, $values:expr, $ty:ty, $erf:expr) => {{
        let f: fn($ty) -> $ty = match $op {
            UnaryOp::Relu => |x| if x > 0.0 { x } else { 0.0 },
            UnaryOp::Sigmoid => |x| 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Tanh => |x| x.tanh(),
            UnaryOp::Exp => |x| x.exp(),
            UnaryOp::Log => |x| x.ln(),
            UnaryOp::Abs => |x| x.abs(),
            UnaryOp::Neg => |x| -x,
            UnaryOp::Sqrt => |x| x.sqrt(),
            UnaryOp::Erf => $erf,
            UnaryOp::Floor => |x| x.floor(),
            UnaryOp::Ceil => |x| x.ceil(),
            // ONNX rounds halves to even.
            UnaryOp::Round => |x| x.round_ties_even(),
            UnaryOp::Reciprocal => |x| 1.0 / x,
            UnaryOp::Softplus => |x| (x.exp() + 1.0).ln(),
            UnaryOp::Sign => |x| {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            },
            UnaryOp::Not | UnaryOp::IsNaN => return Err(runtime("unsupported unary operator")),
        };
        $values.iter().map(|&x| f(x)).collect::<Vec<$ty>>()
    }};
}

macro_rules! int_unary {
    ($op:expr, $values:expr, $variant:ident) => {
        TensorData::$variant(match $op {
            UnaryOp::Relu => $values.iter().map(|&x| x.max(0)).collect(),
            UnaryOp::Abs => $values.iter().map(|&x| x.wrapping_abs()).collect(),
            UnaryOp::Neg => $values.iter().map(|&x| x.wrapping_neg()).collect(),
            UnaryOp::Sign => $values.iter().map(|&x| x.signum()).collect(),
            UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => $values.clone(),
            other => {
                return Err(runtime(format!(
                    "{other:?} is not supported for integer tensors"
                )))
            }
        })
    };
}

pub(crate) fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor, OnnxError> {
    let data = match (op, x.data()) {
        (UnaryOp::Not, TensorData::Bool(values)) => {
            TensorData::Bool(values.iter().map(|&v| !v).collect())
        }
        (UnaryOp::IsNaN, TensorData::F32(values)) => {
            TensorData::Bool(values.iter().map(|v| v.is_nan()).collect())
        }
        (UnaryOp::IsNaN, TensorData::F64(values)) => {
            TensorData::Bool(values.iter().map(|v| v.is_nan()).collect())
        }
        (UnaryOp::Not | UnaryOp::IsNaN, _) => {
            return Err(runtime(format!(
                "{op:?} is not supported for {} tensors",
                x.datatype()
            )))
        }
        (_, TensorData::F32(values)) => {
            TensorData::F32(float_unary!(op, values, f32, |x| erf(f64::from(x)) as f32))
        }
        (_, TensorData::F64(values)) => TensorData::F64(float_unary!(op, values, f64, erf)),
        (_, TensorData::I64(values)) => int_unary!(op, values, I64),
        (_, TensorData::I32(values)) => int_unary!(op, values, I32),
        (_, other) => {
            return Err(runtime(format!(
                "{op:?} is not supported for {} tensors",
                other.datatype()
            )))
        }
    };
    make_tensor(x.shape().to_vec(), data)
}

/// The error function (W. J. Cody's rational approximations, |error| < 1e-15).
// The coefficients are kept as published.
#[allow(clippy::excessive_precision)]
pub(crate) fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let result = if ax < 0.5 {
        const P: [f64; 5] = [
            3.209_377_589_138_469_4e3,
            3.774_852_376_853_020_2e2,
            1.138_641_541_510_501_6e2,
            3.161_123_743_870_565_6,
            1.857_777_061_846_031_5e-1,
        ];
        const Q: [f64; 5] = [
            2.844_236_833_439_170_6e3,
            1.282_616_526_077_372_3e3,
            2.440_246_379_344_441_7e2,
            2.360_129_095_234_412_1e1,
            1.0,
        ];
        let z = x * x;
        let num = (((P[4] * z + P[3]) * z + P[2]) * z + P[1]) * z + P[0];
        let den = (((Q[4] * z + Q[3]) * z + Q[2]) * z + Q[1]) * z + Q[0];
        return x * num / den;
    } else if ax < 4.0 {
        const P: [f64; 9] = [
            1.230_339_354_797_997_2e3,
            2.051_078_377_826_071_5e3,
            1.712_047_612_634_070_6e3,
            8.819_522_212_417_690_9e2,
            2.986_351_381_974_001_3e2,
            6.611_919_063_714_162_9e1,
            8.883_149_794_388_375_9,
            5.641_884_969_886_700_9e-1,
            2.153_115_354_744_038_5e-8,
        ];
        const Q: [f64; 9] = [
            1.230_339_354_803_749_4e3,
            3.439_367_674_143_721_6e3,
            4.362_619_090_143_247_2e3,
            3.290_799_235_733_459_7e3,
            1.621_389_574_566_690_2e3,
            5.371_811_018_620_098_6e2,
            1.176_939_508_913_125e2,
            1.574_492_611_070_983_5e1,
            1.0,
        ];
        let num = P.iter().rev().skip(1).fold(P[8], |acc, &p| acc * ax + p);
        let den = Q.iter().rev().skip(1).fold(Q[8], |acc, &q| acc * ax + q);
        1.0 - (-ax * ax).exp() * num / den
    } else {
        const P: [f64; 6] = [
            -6.587_491_615_298_378_5e-4,
            -1.608_378_514_874_227_7e-2,
            -1.257_817_261_112_292_6e-1,
            -3.603_448_999_498_044_4e-1,
            -3.053_266_349_612_323_4e-1,
            -1.631_538_713_730_709_8e-2,
        ];
        const Q: [f64; 6] = [
            2.335_204_976_268_691_8e-3,
            6.051_834_131_244_131_9e-2,
            5.279_051_029_514_284_1e-1,
            1.872_952_849_923_460_4,
            2.568_520_192_289_822_4,
            1.0,
        ];
        let z = 1.0 / (ax * ax);
        let num = P.iter().rev().skip(1).fold(P[5], |acc, &p| acc * z + p);
        let den = Q.iter().rev().skip(1).fold(Q[5], |acc, &q| acc * z + q);
        let frac_1_sqrt_pi = 0.564_189_583_547_756_3;
        let r = (frac_1_sqrt_pi + z * num / den) / ax;
        1.0 - (-ax * ax).exp() * r
    };
    if x < 0.0 {
        -result
    } else {
        result
    }
}

/// `Where(condition, x, y)` with three-way broadcasting.
pub(crate) fn where_op(condition: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor, OnnxError> {
    let TensorData::Bool(cond) = condition.data() else {
        return Err(runtime(format!(
            "Where needs a BOOL condition, got {}",
            condition.datatype()
        )));
    };
    if x.datatype() != y.datatype() {
        return Err(runtime(format!(
            "Where branches have different datatypes {} and {}",
            x.datatype(),
            y.datatype()
        )));
    }
    let shape = broadcast_shape(&broadcast_shape(condition.shape(), x.shape())?, y.shape())?;
    let c_map = broadcast_index_map(condition.shape(), &shape);
    let x_map = broadcast_index_map(x.shape(), &shape);
    let y_map = broadcast_index_map(y.shape(), &shape);
    let picks: Vec<(bool, usize)> = c_map
        .iter()
        .zip(x_map.iter().zip(&y_map))
        .map(|(&c, (&i, &j))| if cond[c] { (true, i) } else { (false, j) })
        .collect();
    macro_rules! select {
        ($xs:expr, $ys:expr, $variant:ident) => {
            TensorData::$variant(
                picks
                    .iter()
                    .map(|&(from_x, index)| {
                        if from_x {
                            $xs[index].clone()
                        } else {
                            $ys[index].clone()
                        }
                    })
                    .collect(),
            )
        };
    }
    let data = match (x.data(), y.data()) {
        (TensorData::F32(a), TensorData::F32(b)) => select!(a, b, F32),
        (TensorData::F64(a), TensorData::F64(b)) => select!(a, b, F64),
        (TensorData::I64(a), TensorData::I64(b)) => select!(a, b, I64),
        (TensorData::I32(a), TensorData::I32(b)) => select!(a, b, I32),
        (TensorData::Bool(a), TensorData::Bool(b)) => select!(a, b, Bool),
        (TensorData::Bytes(a), TensorData::Bytes(b)) => select!(a, b, Bytes),
        _ => {
            return Err(runtime(format!(
                "Where is not supported for {} tensors",
                x.datatype()
            )))
        }
    };
    make_tensor(shape, data)
}

/// `Clip` with optional bounds (already read from attributes or inputs).
pub(crate) fn clip(
    x: &Tensor,
    min: Option<&Tensor>,
    max: Option<&Tensor>,
) -> Result<Tensor, OnnxError> {
    let bound = |bound: Option<&Tensor>| -> Result<Option<f64>, OnnxError> {
        match bound {
            None => Ok(None),
            Some(tensor) => {
                let values = tensor
                    .data()
                    .to_f64_vec()
                    .ok_or_else(|| runtime("Clip bounds must be numeric"))?;
                match values.as_slice() {
                    [value] => Ok(Some(*value)),
                    _ => Err(runtime("Clip bounds must be scalars")),
                }
            }
        }
    };
    let (low, high) = (bound(min)?, bound(max)?);
    clip_values(x, low, high)
}

pub(crate) fn clip_values(
    x: &Tensor,
    low: Option<f64>,
    high: Option<f64>,
) -> Result<Tensor, OnnxError> {
    macro_rules! clamp {
        ($values:expr, $variant:ident, $ty:ty) => {{
            let low = low.map(|v| v as $ty);
            let high = high.map(|v| v as $ty);
            TensorData::$variant(
                $values
                    .iter()
                    .map(|&v| {
                        let v = match low {
                            Some(l) if v < l => l,
                            _ => v,
                        };
                        match high {
                            Some(h) if v > h => h,
                            _ => v,
                        }
                    })
                    .collect(),
            )
        }};
    }
    let data = match x.data() {
        TensorData::F32(values) => clamp!(values, F32, f32),
        TensorData::F64(values) => clamp!(values, F64, f64),
        TensorData::I64(values) => clamp!(values, I64, i64),
        TensorData::I32(values) => clamp!(values, I32, i32),
        other => {
            return Err(runtime(format!(
                "Clip is not supported for {} tensors",
                other.datatype()
            )))
        }
    };
    make_tensor(x.shape().to_vec(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_tensor(shape: &[usize], values: &[f32]) -> Tensor {
        Tensor::new(shape.to_vec(), TensorData::F32(values.to_vec())).unwrap()
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shape(&[2, 3], &[3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shape(&[2, 1], &[1, 3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shape(&[], &[4]).unwrap(), vec![4]);
        assert!(broadcast_shape(&[2, 3], &[2]).is_err());

        // Row bias.
        let a = f32_tensor(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let bias = f32_tensor(&[1, 3], &[10.0, 20.0, 30.0]);
        let sum = binary(BinaryOp::Add, &a, &bias).unwrap();
        assert_eq!(
            sum.data(),
            &TensorData::F32(vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0])
        );
        // Column against row: outer product shape.
        let column = f32_tensor(&[2, 1], &[1.0, 2.0]);
        let row = f32_tensor(&[3], &[1.0, 10.0, 100.0]);
        let product = binary(BinaryOp::Mul, &column, &row).unwrap();
        assert_eq!(product.shape(), &[2, 3]);
        assert_eq!(
            product.data(),
            &TensorData::F32(vec![1.0, 10.0, 100.0, 2.0, 20.0, 200.0])
        );
        // Scalar minus tensor.
        let one = f32_tensor(&[], &[1.0]);
        let diff = binary(BinaryOp::Sub, &one, &row).unwrap();
        assert_eq!(diff.data(), &TensorData::F32(vec![0.0, -9.0, -99.0]));
        // Column [2,1] against [2,3] needs the general path.
        let scaled = binary(BinaryOp::Div, &a, &column).unwrap();
        assert_eq!(
            scaled.data(),
            &TensorData::F32(vec![1.0, 2.0, 3.0, 2.0, 2.5, 3.0])
        );
    }

    #[test]
    fn comparisons_and_mixed_types() {
        let a = f32_tensor(&[3], &[1.0, 2.0, 3.0]);
        let b = f32_tensor(&[], &[2.0]);
        let greater = binary(BinaryOp::Greater, &a, &b).unwrap();
        assert_eq!(greater.data(), &TensorData::Bool(vec![false, false, true]));
        let ints = Tensor::new(vec![1], TensorData::I64(vec![2])).unwrap();
        assert!(binary(BinaryOp::Add, &a, &ints).is_err());
        // Pow accepts an exponent of another type.
        let squared = binary(BinaryOp::Pow, &a, &ints).unwrap();
        assert_eq!(squared.data(), &TensorData::F32(vec![1.0, 4.0, 9.0]));
        let zero = Tensor::new(vec![1], TensorData::I64(vec![0])).unwrap();
        assert!(binary(BinaryOp::Div, &ints, &zero).is_err());
    }

    #[test]
    fn where_and_clip() {
        let condition = Tensor::new(vec![2], TensorData::Bool(vec![true, false])).unwrap();
        let x = f32_tensor(&[2], &[1.0, 2.0]);
        let y = f32_tensor(&[], &[-1.0]);
        let picked = where_op(&condition, &x, &y).unwrap();
        assert_eq!(picked.data(), &TensorData::F32(vec![1.0, -1.0]));
        let clipped =
            clip_values(&f32_tensor(&[3], &[-5.0, 0.5, 5.0]), Some(0.0), Some(1.0)).unwrap();
        assert_eq!(clipped.data(), &TensorData::F32(vec![0.0, 0.5, 1.0]));
    }

    #[test]
    fn erf_is_accurate() {
        for (x, expected) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (-2.0, -0.995_322_265_018_952_7),
            (5.0, 0.999_999_999_998_462_5),
        ] {
            assert!((erf(x) - expected).abs() < 1e-12, "erf({x}) = {}", erf(x));
        }
    }
}
