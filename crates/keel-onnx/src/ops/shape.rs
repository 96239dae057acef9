//! Operators that move elements without computing on them: Reshape,
//! Flatten, Concat, Squeeze, Unsqueeze, Transpose, Shape, Gather, Slice.

use keel_core::tensor::{Tensor, TensorData};

use crate::error::{runtime, OnnxError};
use crate::tensors::make_tensor;

/// The elements at `indices`, in order (indices must be in range).
pub(crate) fn take(data: &TensorData, indices: &[usize]) -> TensorData {
    macro_rules! pick {
        ($values:expr, $variant:ident) => {
            TensorData::$variant(indices.iter().map(|&i| $values[i].clone()).collect())
        };
    }
    match data {
        TensorData::Bool(v) => pick!(v, Bool),
        TensorData::U8(v) => pick!(v, U8),
        TensorData::U16(v) => pick!(v, U16),
        TensorData::U32(v) => pick!(v, U32),
        TensorData::U64(v) => pick!(v, U64),
        TensorData::I8(v) => pick!(v, I8),
        TensorData::I16(v) => pick!(v, I16),
        TensorData::I32(v) => pick!(v, I32),
        TensorData::I64(v) => pick!(v, I64),
        TensorData::F16(v) => pick!(v, F16),
        TensorData::F32(v) => pick!(v, F32),
        TensorData::F64(v) => pick!(v, F64),
        TensorData::Bytes(v) => pick!(v, Bytes),
    }
}

/// Resolves a possibly negative axis against `rank`.
pub(crate) fn normalize_axis(axis: i64, rank: usize) -> Result<usize, OnnxError> {
    let rank_i = rank as i64;
    let resolved = if axis < 0 { axis + rank_i } else { axis };
    if resolved < 0 || resolved >= rank_i {
        return Err(runtime(format!(
            "axis {axis} is out of range for rank {rank}"
        )));
    }
    Ok(resolved as usize)
}

pub(crate) fn reshape(x: &Tensor, target: &[i64], allow_zero: bool) -> Result<Tensor, OnnxError> {
    let total = x.len();
    let mut shape = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &dim) in target.iter().enumerate() {
        match dim {
            -1 => {
                if infer_at.replace(i).is_some() {
                    return Err(runtime("Reshape: more than one -1 in the target shape"));
                }
                shape.push(1);
            }
            0 if !allow_zero => {
                let copied = x.shape().get(i).copied().ok_or_else(|| {
                    runtime(format!("Reshape: dimension {i} to copy does not exist"))
                })?;
                shape.push(copied);
            }
            d if d >= 0 => shape.push(d as usize),
            d => return Err(runtime(format!("Reshape: invalid dimension {d}"))),
        }
    }
    if let Some(i) = infer_at {
        let known: usize = shape.iter().product();
        if total.checked_rem(known) != Some(0) {
            return Err(runtime(format!(
                "Reshape: cannot reshape {:?} into {target:?}",
                x.shape()
            )));
        }
        shape[i] = total / known;
    }
    if shape.iter().product::<usize>() != total {
        return Err(runtime(format!(
            "Reshape: cannot reshape {:?} into {target:?}",
            x.shape()
        )));
    }
    make_tensor(shape, x.data().clone())
}

pub(crate) fn flatten(x: &Tensor, axis: i64) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    if axis < 0 || axis > rank {
        return Err(runtime(format!(
            "Flatten: axis out of range for rank {rank}"
        )));
    }
    let (outer, inner) = x.shape().split_at(axis as usize);
    let shape = vec![outer.iter().product(), inner.iter().product()];
    make_tensor(shape, x.data().clone())
}

pub(crate) fn concat(inputs: &[&Tensor], axis: i64) -> Result<Tensor, OnnxError> {
    let Some(first) = inputs.first() else {
        return Err(runtime("Concat needs at least one input"));
    };
    let rank = first.shape().len();
    let axis = normalize_axis(axis, rank)?;
    let mut shape = first.shape().to_vec();
    shape[axis] = 0;
    for input in inputs {
        if input.datatype() != first.datatype() || input.shape().len() != rank {
            return Err(runtime("Concat inputs differ in datatype or rank"));
        }
        for (d, (&a, &b)) in input.shape().iter().zip(first.shape()).enumerate() {
            if d != axis && a != b {
                return Err(runtime(format!(
                    "Concat inputs {:?} and {:?} differ outside axis {axis}",
                    input.shape(),
                    first.shape()
                )));
            }
        }
        shape[axis] += input.shape()[axis];
    }
    let outer: usize = shape[..axis].iter().product();
    let mut data = TensorData::with_capacity(first.datatype(), shape.iter().product());
    for row in 0..outer {
        for input in inputs {
            let chunk: usize = input.shape()[axis..].iter().product();
            if !data.extend_from(&input.data().slice(row * chunk, (row + 1) * chunk)) {
                return Err(runtime("Concat inputs differ in datatype"));
            }
        }
    }
    make_tensor(shape, data)
}

pub(crate) fn squeeze(x: &Tensor, axes: Option<&[i64]>) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len();
    let shape: Vec<usize> = match axes {
        None => x.shape().iter().copied().filter(|&d| d != 1).collect(),
        Some(axes) => {
            let axes = axes
                .iter()
                .map(|&a| normalize_axis(a, rank))
                .collect::<Result<Vec<_>, _>>()?;
            for &a in &axes {
                if x.shape()[a] != 1 {
                    return Err(runtime(format!(
                        "Squeeze: dimension {a} of {:?} is not 1",
                        x.shape()
                    )));
                }
            }
            x.shape()
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        }
    };
    make_tensor(shape, x.data().clone())
}

pub(crate) fn unsqueeze(x: &Tensor, axes: &[i64]) -> Result<Tensor, OnnxError> {
    let out_rank = x.shape().len() + axes.len();
    let mut resolved = axes
        .iter()
        .map(|&a| normalize_axis(a, out_rank))
        .collect::<Result<Vec<_>, _>>()?;
    resolved.sort_unstable();
    if resolved.windows(2).any(|w| w[0] == w[1]) {
        return Err(runtime("Unsqueeze: repeated axis"));
    }
    let mut dims = x.shape().iter();
    let shape = (0..out_rank)
        .map(|i| {
            if resolved.contains(&i) {
                1
            } else {
                dims.next().copied().unwrap_or(1)
            }
        })
        .collect();
    make_tensor(shape, x.data().clone())
}

fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

pub(crate) fn transpose(x: &Tensor, perm: Option<&[i64]>) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len();
    let perm: Vec<usize> = match perm {
        Some(perm) => perm
            .iter()
            .map(|&p| normalize_axis(p, rank))
            .collect::<Result<_, _>>()?,
        None => (0..rank).rev().collect(),
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() {
        return Err(runtime(format!(
            "Transpose: {perm:?} is not a permutation of rank {rank}"
        )));
    }
    let in_strides = strides_of(x.shape());
    let out_shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let total = x.len();
    let mut indices = Vec::with_capacity(total);
    let mut index = vec![0usize; rank];
    for _ in 0..total {
        indices.push(
            index
                .iter()
                .zip(&perm)
                .map(|(&i, &p)| i * in_strides[p])
                .sum(),
        );
        for axis in (0..rank).rev() {
            index[axis] += 1;
            if index[axis] < out_shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    make_tensor(out_shape, take(x.data(), &indices))
}

pub(crate) fn shape_of(x: &Tensor, start: i64, end: Option<i64>) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len() as i64;
    let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let start = clamp(start);
    let end = clamp(end.unwrap_or(rank));
    let dims: Vec<i64> = x.shape()[start..end.max(start)]
        .iter()
        .map(|&d| d as i64)
        .collect();
    make_tensor(vec![dims.len()], TensorData::I64(dims))
}

pub(crate) fn gather(
    x: &Tensor,
    indices: &Tensor,
    axis: i64,
    index_values: &[i64],
) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len();
    if rank == 0 {
        return Err(runtime("Gather needs a tensor of rank 1 or more"));
    }
    let axis = normalize_axis(axis, rank)?;
    let dim = x.shape()[axis];
    let outer: usize = x.shape()[..axis].iter().product();
    let inner: usize = x.shape()[axis + 1..].iter().product();
    let resolved = index_values
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim as i64 } else { i };
            if j < 0 || j >= dim as i64 {
                Err(runtime(format!(
                    "Gather: index {i} is out of range for dimension {dim}"
                )))
            } else {
                Ok(j as usize)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut picks = Vec::with_capacity(outer * resolved.len() * inner);
    for o in 0..outer {
        for &j in &resolved {
            let base = (o * dim + j) * inner;
            picks.extend(base..base + inner);
        }
    }
    let mut shape = x.shape()[..axis].to_vec();
    shape.extend_from_slice(indices.shape());
    shape.extend_from_slice(&x.shape()[axis + 1..]);
    make_tensor(shape, take(x.data(), &picks))
}

pub(crate) fn slice(
    x: &Tensor,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Tensor, OnnxError> {
    let rank = x.shape().len();
    if starts.len() != ends.len() {
        return Err(runtime("Slice: starts and ends differ in length"));
    }
    let default_axes: Vec<i64> = (0..starts.len() as i64).collect();
    let axes = axes.unwrap_or(&default_axes);
    if axes.len() != starts.len() || steps.is_some_and(|s| s.len() != starts.len()) {
        return Err(runtime(
            "Slice: starts, ends, axes and steps differ in length",
        ));
    }
    // Per axis: (start, step, count).
    let mut ranges: Vec<(i64, i64, usize)> = x.shape().iter().map(|&d| (0, 1, d)).collect();
    for (k, &axis) in axes.iter().enumerate() {
        let axis = normalize_axis(axis, rank)?;
        let dim = x.shape()[axis] as i64;
        let step = steps.map_or(1, |s| s[k]);
        if step == 0 {
            return Err(runtime("Slice: step cannot be 0"));
        }
        let resolve = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (start, end) = (resolve(starts[k]), resolve(ends[k]));
        let (start, count) = if dim == 0 {
            (0, 0)
        } else if step > 0 {
            let start = start.clamp(0, dim);
            let end = end.clamp(0, dim);
            (
                start,
                if end > start {
                    (end - start + step - 1) / step
                } else {
                    0
                },
            )
        } else {
            let start = start.clamp(0, dim - 1);
            let end = end.clamp(-1, dim - 1);
            (
                start,
                if start > end {
                    (start - end - step - 1) / -step
                } else {
                    0
                },
            )
        };
        ranges[axis] = (start, step, count.max(0) as usize);
    }
    let strides = strides_of(x.shape());
    let out_shape: Vec<usize> = ranges.iter().map(|r| r.2).collect();
    let total: usize = out_shape.iter().product();
    let mut picks = Vec::with_capacity(total);
    let mut index = vec![0usize; rank];
    for _ in 0..total {
        let offset: i64 = index
            .iter()
            .zip(&ranges)
            .zip(&strides)
            .map(|((&i, &(start, step, _)), &stride)| (start + i as i64 * step) * stride as i64)
            .sum();
        picks.push(offset as usize);
        for axis in (0..rank).rev() {
            index[axis] += 1;
            if index[axis] < out_shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    make_tensor(out_shape, take(x.data(), &picks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range_tensor(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::new(shape.to_vec(), TensorData::I64((0..n as i64).collect())).unwrap()
    }

    #[test]
    fn reshape_copies_and_infers() {
        let x = range_tensor(&[2, 3]);
        assert_eq!(reshape(&x, &[-1], false).unwrap().shape(), &[6]);
        assert_eq!(reshape(&x, &[0, -1], false).unwrap().shape(), &[2, 3]);
        assert_eq!(reshape(&x, &[3, 2], false).unwrap().shape(), &[3, 2]);
        assert!(reshape(&x, &[4, -1], false).is_err());
    }

    #[test]
    fn transpose_gather_slice_concat() {
        let x = range_tensor(&[2, 3]);
        let t = transpose(&x, None).unwrap();
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.data(), &TensorData::I64(vec![0, 3, 1, 4, 2, 5]));

        let idx = Tensor::new(vec![2], TensorData::I64(vec![2, -3])).unwrap();
        let g = gather(&x, &idx, 1, &[2, -3]).unwrap();
        assert_eq!(g.shape(), &[2, 2]);
        assert_eq!(g.data(), &TensorData::I64(vec![2, 0, 5, 3]));
        assert!(gather(&x, &idx, 1, &[3]).is_err());

        let s = slice(&x, &[1], &[i64::MAX], Some(&[1]), None).unwrap();
        assert_eq!(s.data(), &TensorData::I64(vec![1, 2, 4, 5]));
        let reversed = slice(&x, &[-1], &[i64::MIN], Some(&[1]), Some(&[-1])).unwrap();
        assert_eq!(reversed.data(), &TensorData::I64(vec![2, 1, 0, 5, 4, 3]));

        let c = concat(&[&x, &x], 1).unwrap();
        assert_eq!(c.shape(), &[2, 6]);
        assert_eq!(
            c.data(),
            &TensorData::I64(vec![0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])
        );
    }

    #[test]
    fn squeeze_and_unsqueeze() {
        let x = range_tensor(&[1, 3, 1]);
        assert_eq!(squeeze(&x, None).unwrap().shape(), &[3]);
        assert_eq!(squeeze(&x, Some(&[-1])).unwrap().shape(), &[1, 3]);
        assert!(squeeze(&x, Some(&[1])).is_err());
        let y = range_tensor(&[3]);
        assert_eq!(unsqueeze(&y, &[0, -1]).unwrap().shape(), &[1, 3, 1]);
    }
}
