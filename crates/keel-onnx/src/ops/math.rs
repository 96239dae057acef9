//! Dense math: MatMul, Gemm, Softmax/LogSoftmax, ArgMax/ArgMin and the
//! Reduce* family.

use keel_core::tensor::{Tensor, TensorData};

use crate::error::{runtime, OnnxError};
use crate::ops::elementwise::broadcast_shape;
use crate::ops::shape::normalize_axis;
use crate::tensors::make_tensor;

/// `out[m, n] += a[m, k] * b[k, n]` for row-major blocks (i-k-j order, so
/// the inner loop runs over contiguous memory and vectorizes).
fn gemm_block(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let out_row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let scale = a[i * k + p];
            let b_row = &b[p * n..(p + 1) * n];
            for (o, &bv) in out_row.iter_mut().zip(b_row) {
                *o += scale * bv;
            }
        }
    }
}

fn gemm_block_f64(a: &[f64], b: &[f64], out: &mut [f64], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let out_row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let scale = a[i * k + p];
            let b_row = &b[p * n..(p + 1) * n];
            for (o, &bv) in out_row.iter_mut().zip(b_row) {
                *o += scale * bv;
            }
        }
    }
}

/// numpy `matmul`: 1-D operands are promoted and the promoted axis dropped;
/// leading (batch) axes broadcast.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, OnnxError> {
    let (mut a_shape, mut b_shape) = (a.shape().to_vec(), b.shape().to_vec());
    if a_shape.is_empty() || b_shape.is_empty() {
        return Err(runtime("MatMul does not take scalars"));
    }
    let a_vector = a_shape.len() == 1;
    let b_vector = b_shape.len() == 1;
    if a_vector {
        a_shape.insert(0, 1);
    }
    if b_vector {
        b_shape.push(1);
    }
    let (m, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let (k2, n) = (b_shape[b_shape.len() - 2], b_shape[b_shape.len() - 1]);
    if k != k2 {
        return Err(runtime(format!(
            "MatMul: shapes {:?} and {:?} do not align",
            a.shape(),
            b.shape()
        )));
    }
    let batch = broadcast_shape(&a_shape[..a_shape.len() - 2], &b_shape[..b_shape.len() - 2])?;
    let n_batches: usize = batch.iter().product();
    let a_batches: usize = a_shape[..a_shape.len() - 2].iter().product();
    let b_batches: usize = b_shape[..b_shape.len() - 2].iter().product();
    // Only whole-operand broadcasting of the batch (one side has 1 batch, or
    // both match); mixed patterns are rare in tabular models.
    if !(a_batches == n_batches || a_batches == 1) || !(b_batches == n_batches || b_batches == 1) {
        return Err(runtime(
            "MatMul: partially broadcast batch dimensions are not supported",
        ));
    }
    let mut shape = batch.clone();
    if !a_vector {
        shape.push(m);
    }
    if !b_vector {
        shape.push(n);
    }
    let data = match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            let mut out = vec![0f32; n_batches * m * n];
            for batch_index in 0..n_batches {
                let ai = if a_batches == 1 { 0 } else { batch_index };
                let bi = if b_batches == 1 { 0 } else { batch_index };
                gemm_block(
                    &x[ai * m * k..(ai + 1) * m * k],
                    &y[bi * k * n..(bi + 1) * k * n],
                    &mut out[batch_index * m * n..(batch_index + 1) * m * n],
                    m,
                    k,
                    n,
                );
            }
            TensorData::F32(out)
        }
        (TensorData::F64(x), TensorData::F64(y)) => {
            let mut out = vec![0f64; n_batches * m * n];
            for batch_index in 0..n_batches {
                let ai = if a_batches == 1 { 0 } else { batch_index };
                let bi = if b_batches == 1 { 0 } else { batch_index };
                gemm_block_f64(
                    &x[ai * m * k..(ai + 1) * m * k],
                    &y[bi * k * n..(bi + 1) * k * n],
                    &mut out[batch_index * m * n..(batch_index + 1) * m * n],
                    m,
                    k,
                    n,
                );
            }
            TensorData::F64(out)
        }
        _ => {
            return Err(runtime(format!(
                "MatMul is not supported for {} and {} operands",
                a.datatype(),
                b.datatype()
            )))
        }
    };
    make_tensor(shape, data)
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct GemmAttrs {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

pub(crate) fn gemm(
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    attrs: GemmAttrs,
) -> Result<Tensor, OnnxError> {
    let (TensorData::F32(a_values), TensorData::F32(b_values)) = (a.data(), b.data()) else {
        return Err(runtime(format!(
            "Gemm is supported for FP32 operands, got {} and {}",
            a.datatype(),
            b.datatype()
        )));
    };
    let ([a0, a1], [b0, b1]) = (a.shape(), b.shape()) else {
        return Err(runtime("Gemm takes two matrices"));
    };
    let (m, k) = if attrs.trans_a {
        (*a1, *a0)
    } else {
        (*a0, *a1)
    };
    let (k2, n) = if attrs.trans_b {
        (*b1, *b0)
    } else {
        (*b0, *b1)
    };
    if k != k2 {
        return Err(runtime(format!(
            "Gemm: shapes {:?} and {:?} do not align",
            a.shape(),
            b.shape()
        )));
    }
    let a_rows = if attrs.trans_a {
        transposed(a_values, *a0, *a1)
    } else {
        a_values.clone()
    };
    let b_rows = if attrs.trans_b {
        transposed(b_values, *b0, *b1)
    } else {
        b_values.clone()
    };
    let mut out = vec![0f32; m * n];
    gemm_block(&a_rows, &b_rows, &mut out, m, k, n);
    if attrs.alpha != 1.0 {
        out.iter_mut().for_each(|v| *v *= attrs.alpha);
    }
    if let Some(c) = c {
        let TensorData::F32(c_values) = c.data() else {
            return Err(runtime("Gemm: C must be FP32"));
        };
        let out_shape = broadcast_shape(c.shape(), &[m, n])?;
        if out_shape != [m, n] {
            return Err(runtime(format!(
                "Gemm: C of shape {:?} does not broadcast to [{m}, {n}]",
                c.shape()
            )));
        }
        let (c_rows, c_cols) = match c.shape() {
            [] => (1, 1),
            [cols] => (1, *cols),
            [rows, cols] => (*rows, *cols),
            _ => return Err(runtime("Gemm: C has too many dimensions")),
        };
        for i in 0..m {
            for j in 0..n {
                let cv = c_values
                    [(if c_rows == 1 { 0 } else { i }) * c_cols + if c_cols == 1 { 0 } else { j }];
                out[i * n + j] += attrs.beta * cv;
            }
        }
    }
    make_tensor(vec![m, n], TensorData::F32(out))
}

/// Softmax or LogSoftmax. Before opset 13 the input is coerced to 2-D at
/// `axis` (default 1); from 13 on it runs along `axis` (default -1).
pub(crate) fn softmax(x: &Tensor, axis: i64, legacy: bool, log: bool) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len();
    let axis = normalize_axis(axis, rank)?;
    let (outer, length, inner) = if legacy {
        (
            x.shape()[..axis].iter().product::<usize>(),
            x.shape()[axis..].iter().product::<usize>(),
            1,
        )
    } else {
        (
            x.shape()[..axis].iter().product::<usize>(),
            x.shape()[axis],
            x.shape()[axis + 1..].iter().product::<usize>(),
        )
    };
    macro_rules! run {
        ($values:expr, $ty:ty, $variant:ident) => {{
            let mut out: Vec<$ty> = $values.clone();
            for o in 0..outer {
                for i in 0..inner {
                    let at = |j: usize| (o * length + j) * inner + i;
                    let max = (0..length)
                        .map(|j| out[at(j)])
                        .fold(<$ty>::NEG_INFINITY, <$ty>::max);
                    let mut sum: $ty = 0.0;
                    for j in 0..length {
                        let e = (out[at(j)] - max).exp();
                        sum += e;
                        if !log {
                            out[at(j)] = e;
                        }
                    }
                    for j in 0..length {
                        let idx = at(j);
                        out[idx] = if log {
                            out[idx] - max - sum.ln()
                        } else {
                            out[idx] / sum
                        };
                    }
                }
            }
            TensorData::$variant(out)
        }};
    }
    let data = match x.data() {
        TensorData::F32(values) => run!(values, f32, F32),
        TensorData::F64(values) => run!(values, f64, F64),
        other => {
            return Err(runtime(format!(
                "Softmax is not supported for {} tensors",
                other.datatype()
            )))
        }
    };
    make_tensor(x.shape().to_vec(), data)
}

pub(crate) fn arg_extreme(
    x: &Tensor,
    axis: i64,
    keepdims: bool,
    select_last: bool,
    max: bool,
) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len();
    let axis = normalize_axis(axis, rank)?;
    let outer: usize = x.shape()[..axis].iter().product();
    let length = x.shape()[axis];
    let inner: usize = x.shape()[axis + 1..].iter().product();
    if length == 0 {
        return Err(runtime("ArgMax/ArgMin over an empty axis"));
    }
    let values = x
        .data()
        .to_f64_vec()
        .ok_or_else(|| runtime("ArgMax/ArgMin need a numeric tensor"))?;
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| values[(o * length + j) * inner + i];
            let mut best = 0usize;
            for j in 1..length {
                let better = if max {
                    at(j) > at(best)
                } else {
                    at(j) < at(best)
                };
                let tie = at(j) == at(best);
                if better || (select_last && tie) {
                    best = j;
                }
            }
            out.push(best as i64);
        }
    }
    let mut shape = x.shape().to_vec();
    if keepdims {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    make_tensor(shape, TensorData::I64(out))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReduceKind {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    SumSquare,
    L1,
    L2,
    LogSumExp,
}

impl ReduceKind {
    pub(crate) fn from_op_type(op_type: &str) -> Option<ReduceKind> {
        Some(match op_type {
            "ReduceSum" => ReduceKind::Sum,
            "ReduceMean" => ReduceKind::Mean,
            "ReduceMax" => ReduceKind::Max,
            "ReduceMin" => ReduceKind::Min,
            "ReduceProd" => ReduceKind::Prod,
            "ReduceSumSquare" => ReduceKind::SumSquare,
            "ReduceL1" => ReduceKind::L1,
            "ReduceL2" => ReduceKind::L2,
            "ReduceLogSumExp" => ReduceKind::LogSumExp,
            _ => return None,
        })
    }

    /// The opset from which `axes` is an input instead of an attribute.
    pub(crate) fn axes_input_since(self) -> i64 {
        if self == ReduceKind::Sum {
            13
        } else {
            18
        }
    }
}

/// Reduces over `axes` (all axes when empty, unless `noop_with_empty_axes`).
pub(crate) fn reduce(
    x: &Tensor,
    kind: ReduceKind,
    axes: &[i64],
    keepdims: bool,
    noop_with_empty_axes: bool,
) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len();
    if axes.is_empty() && noop_with_empty_axes {
        return make_tensor(x.shape().to_vec(), x.data().clone());
    }
    let mut reduced = vec![axes.is_empty(); rank];
    for &axis in axes {
        reduced[normalize_axis(axis, rank)?] = true;
    }
    let out_shape_kept: Vec<usize> = x
        .shape()
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let out_len: usize = out_shape_kept.iter().product();
    let in_strides = {
        let mut strides = vec![1usize; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * x.shape()[i + 1];
        }
        strides
    };
    let out_strides = {
        let mut strides = vec![1usize; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * out_shape_kept[i + 1];
        }
        strides
    };
    // Map every input element to its output cell.
    let total = x.len();
    let mut targets = Vec::with_capacity(total);
    for flat in 0..total {
        let mut out_index = 0;
        for axis in 0..rank {
            let i = (flat / in_strides[axis]) % x.shape()[axis].max(1);
            if !reduced[axis] {
                out_index += i * out_strides[axis];
            }
        }
        targets.push(out_index);
    }
    let count = total.checked_div(out_len).unwrap_or(0);
    macro_rules! fold {
        ($values:expr, $ty:ty, $variant:ident) => {{
            let init: $ty = match kind {
                ReduceKind::Max => <$ty>::NEG_INFINITY,
                ReduceKind::Min => <$ty>::INFINITY,
                ReduceKind::Prod => 1.0,
                _ => 0.0,
            };
            let mut acc = vec![init; out_len];
            let mut maxes = vec![<$ty>::NEG_INFINITY; out_len];
            if kind == ReduceKind::LogSumExp {
                for (&v, &t) in $values.iter().zip(&targets) {
                    if v > maxes[t] {
                        maxes[t] = v;
                    }
                }
            }
            for (&v, &t) in $values.iter().zip(&targets) {
                let a = &mut acc[t];
                match kind {
                    ReduceKind::Sum | ReduceKind::Mean => *a += v,
                    ReduceKind::Max => *a = if v > *a || v.is_nan() { v } else { *a },
                    ReduceKind::Min => *a = if v < *a || v.is_nan() { v } else { *a },
                    ReduceKind::Prod => *a *= v,
                    ReduceKind::SumSquare | ReduceKind::L2 => *a += v * v,
                    ReduceKind::L1 => *a += v.abs(),
                    ReduceKind::LogSumExp => *a += (v - maxes[t]).exp(),
                }
            }
            for (t, a) in acc.iter_mut().enumerate() {
                match kind {
                    ReduceKind::Mean => *a /= count as $ty,
                    ReduceKind::L2 => *a = a.sqrt(),
                    ReduceKind::LogSumExp => *a = a.ln() + maxes[t],
                    _ => {}
                }
            }
            TensorData::$variant(acc)
        }};
    }
    let data = match x.data() {
        TensorData::F32(values) => fold!(values, f32, F32),
        TensorData::F64(values) => fold!(values, f64, F64),
        TensorData::I64(values) => {
            let as_f64: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            match fold!(as_f64, f64, F64) {
                TensorData::F64(v) => TensorData::I64(v.into_iter().map(|x| x as i64).collect()),
                other => other,
            }
        }
        other => {
            return Err(runtime(format!(
                "Reduce is not supported for {} tensors",
                other.datatype()
            )))
        }
    };
    let shape = if keepdims {
        out_shape_kept
    } else {
        x.shape()
            .iter()
            .zip(&reduced)
            .filter(|(_, &r)| !r)
            .map(|(&d, _)| d)
            .collect()
    };
    make_tensor(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_tensor(shape: &[usize], values: &[f32]) -> Tensor {
        Tensor::new(shape.to_vec(), TensorData::F32(values.to_vec())).unwrap()
    }

    #[test]
    fn matmul_and_gemm() {
        let a = f32_tensor(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = f32_tensor(&[3, 1], &[1.0, 0.0, -1.0]);
        let product = matmul(&a, &b).unwrap();
        assert_eq!(product.shape(), &[2, 1]);
        assert_eq!(product.data(), &TensorData::F32(vec![-2.0, -2.0]));
        let v = f32_tensor(&[3], &[1.0, 1.0, 1.0]);
        assert_eq!(matmul(&a, &v).unwrap().shape(), &[2]);

        let bias = f32_tensor(&[1], &[0.5]);
        let bt = f32_tensor(&[1, 3], &[1.0, 0.0, -1.0]);
        let attrs = GemmAttrs {
            alpha: 2.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        };
        let out = gemm(&a, &bt, Some(&bias), attrs).unwrap();
        assert_eq!(out.data(), &TensorData::F32(vec![-3.5, -3.5]));
    }

    #[test]
    fn softmax_argmax_reduce() {
        let x = f32_tensor(&[2, 2], &[0.0, 0.0, 1.0, 3.0]);
        let s = softmax(&x, -1, false, false).unwrap();
        let TensorData::F32(values) = s.data() else {
            panic!()
        };
        assert!((values[0] - 0.5).abs() < 1e-7);
        assert!((values[3] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
        let logs = softmax(&x, 1, true, true).unwrap();
        let TensorData::F32(log_values) = logs.data() else {
            panic!()
        };
        assert!((log_values[0] - 0.5f32.ln()).abs() < 1e-6);

        let arg = arg_extreme(&x, 1, false, false, true).unwrap();
        assert_eq!(arg.data(), &TensorData::I64(vec![0, 1]));
        let arg_last = arg_extreme(&x, 1, true, true, true).unwrap();
        assert_eq!(arg_last.shape(), &[2, 1]);
        assert_eq!(arg_last.data(), &TensorData::I64(vec![1, 1]));

        let sum = reduce(&x, ReduceKind::Sum, &[1], false, false).unwrap();
        assert_eq!(sum.data(), &TensorData::F32(vec![0.0, 4.0]));
        let mean = reduce(&x, ReduceKind::Mean, &[], true, false).unwrap();
        assert_eq!(mean.shape(), &[1, 1]);
        assert_eq!(mean.data(), &TensorData::F32(vec![1.0]));
        let max = reduce(&x, ReduceKind::Max, &[0], true, false).unwrap();
        assert_eq!(max.data(), &TensorData::F32(vec![1.0, 3.0]));
    }
}
