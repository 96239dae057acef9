//! The small ai.onnx.ml preprocessing operators: Scaler, Normalizer,
//! ZipMap, Imputer, Binarizer, LabelEncoder, OneHotEncoder,
//! ArrayFeatureExtractor and FeatureVectorizer.

use std::collections::HashMap;

use keel_core::tensor::{Tensor, TensorData};

use crate::error::{runtime, OnnxError};
use crate::ops::attrs::NodeAttrs;
use crate::ops::shape::take;
use crate::tensors::{as_f32, as_i64, make_tensor};

/// Per-column parameters: one value for every column, or one per column.
fn per_column(values: &[f32], column: usize) -> f32 {
    if values.len() == 1 {
        values[0]
    } else {
        values[column]
    }
}

fn check_columns(op: &str, name: &str, values: &[f32], columns: usize) -> Result<(), OnnxError> {
    if values.len() == 1 || values.len() == columns {
        Ok(())
    } else {
        Err(runtime(format!(
            "{op}: {name} has {} values but the input has {columns} columns",
            values.len()
        )))
    }
}

fn last_dim(x: &Tensor) -> usize {
    x.shape().last().copied().unwrap_or(1)
}

#[derive(Debug)]
pub(crate) struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

impl Scaler {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>) -> Result<Scaler, OnnxError> {
        let offset = attrs.floats("offset")?.unwrap_or_else(|| vec![0.0]);
        let scale = attrs.floats("scale")?.unwrap_or_else(|| vec![1.0]);
        if offset.is_empty() || scale.is_empty() {
            return Err(attrs.error("offset and scale must not be empty"));
        }
        Ok(Scaler { offset, scale })
    }

    pub(crate) fn run(&self, x: &Tensor) -> Result<Tensor, OnnxError> {
        let columns = last_dim(x);
        check_columns("Scaler", "offset", &self.offset, columns)?;
        check_columns("Scaler", "scale", &self.scale, columns)?;
        let values = as_f32(x.data())?;
        let out = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let column = i % columns.max(1);
                (v - per_column(&self.offset, column)) * per_column(&self.scale, column)
            })
            .collect();
        make_tensor(x.shape().to_vec(), TensorData::F32(out))
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Norm {
    Max,
    L1,
    L2,
}

impl Norm {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>) -> Result<Norm, OnnxError> {
        match attrs.string_or("norm", "MAX")?.as_str() {
            "MAX" => Ok(Norm::Max),
            "L1" => Ok(Norm::L1),
            "L2" => Ok(Norm::L2),
            other => Err(attrs.error(format!("unknown norm {other}"))),
        }
    }

    /// onnxruntime's Normalizer: rows are left as they are when the norm is 0.
    pub(crate) fn run(self, x: &Tensor) -> Result<Tensor, OnnxError> {
        if x.shape().len() > 2 {
            return Err(runtime(format!(
                "Normalizer takes rank 1 or 2, got {:?}",
                x.shape()
            )));
        }
        let columns = last_dim(x).max(1);
        let values = as_f32(x.data())?;
        let mut out = values.to_vec();
        for row in out.chunks_mut(columns) {
            match self {
                Norm::Max => {
                    let max = row.iter().fold(f32::MIN, |m, &v| m.max(v));
                    if max != 0.0 {
                        row.iter_mut().for_each(|v| *v /= max);
                    }
                }
                Norm::L1 => {
                    let sum: f32 = row.iter().fold(0.0, |s, &v| s + v.abs());
                    if sum != 0.0 {
                        row.iter_mut().for_each(|v| *v /= sum);
                    }
                }
                Norm::L2 => {
                    let sum: f32 = row.iter().fold(0.0, |s, &v| s + v * v);
                    if sum != 0.0 {
                        row.iter_mut().for_each(|v| {
                            let magnitude = (*v * *v / sum).sqrt();
                            *v = if *v < 0.0 { -magnitude } else { magnitude };
                        });
                    }
                }
            }
        }
        make_tensor(x.shape().to_vec(), TensorData::F32(out))
    }
}

/// ZipMap turns [N, C] scores into a sequence of {label: score} maps. Keel
/// keeps the [N, C] FP32 tensor; its columns are in class-label order.
pub(crate) fn zipmap(x: &Tensor, n_labels: usize) -> Result<Tensor, OnnxError> {
    let (rows, columns) = match x.shape() {
        [columns] => (1, *columns),
        [rows, columns] => (*rows, *columns),
        shape => {
            return Err(runtime(format!(
                "ZipMap takes a [rows, classes] tensor, got {shape:?}"
            )))
        }
    };
    if columns != n_labels {
        return Err(runtime(format!(
            "ZipMap has {n_labels} class labels but the scores have {columns} columns"
        )));
    }
    let values = as_f32(x.data())?.into_owned();
    make_tensor(vec![rows, columns], TensorData::F32(values))
}

#[derive(Debug)]
pub(crate) enum Imputer {
    Floats { imputed: Vec<f32>, replaced: f32 },
    Ints { imputed: Vec<i64>, replaced: i64 },
}

impl Imputer {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>) -> Result<Imputer, OnnxError> {
        let floats = attrs.floats_or_empty("imputed_value_floats")?;
        if !floats.is_empty() {
            return Ok(Imputer::Floats {
                imputed: floats,
                replaced: attrs.float_or("replaced_value_float", 0.0)?,
            });
        }
        let ints = attrs.ints_or_empty("imputed_value_int64s")?;
        if !ints.is_empty() {
            return Ok(Imputer::Ints {
                imputed: ints,
                replaced: attrs.int_or("replaced_value_int64", 0)?,
            });
        }
        Err(attrs.error("imputed_value_floats or imputed_value_int64s must be set"))
    }

    pub(crate) fn run(&self, x: &Tensor) -> Result<Tensor, OnnxError> {
        let columns = last_dim(x).max(1);
        let data = match self {
            Imputer::Floats { imputed, replaced } => {
                check_columns("Imputer", "imputed_value_floats", imputed, columns)?;
                let values = as_f32(x.data())?;
                let matches = |v: f32| {
                    if replaced.is_nan() {
                        v.is_nan()
                    } else {
                        v == *replaced
                    }
                };
                TensorData::F32(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| {
                            if matches(v) {
                                per_column(imputed, i % columns)
                            } else {
                                v
                            }
                        })
                        .collect(),
                )
            }
            Imputer::Ints { imputed, replaced } => {
                if imputed.len() != 1 && imputed.len() != columns {
                    return Err(runtime(
                        "Imputer: imputed_value_int64s does not match the columns",
                    ));
                }
                let values = as_i64(x.data())?;
                TensorData::I64(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| {
                            if v == *replaced {
                                imputed[if imputed.len() == 1 { 0 } else { i % columns }]
                            } else {
                                v
                            }
                        })
                        .collect(),
                )
            }
        };
        make_tensor(x.shape().to_vec(), data)
    }
}

pub(crate) fn binarize(x: &Tensor, threshold: f32) -> Result<Tensor, OnnxError> {
    let data = match x.data() {
        TensorData::F64(values) => TensorData::F64(
            values
                .iter()
                .map(|&v| if v > f64::from(threshold) { 1.0 } else { 0.0 })
                .collect(),
        ),
        other => TensorData::F32(
            as_f32(other)?
                .iter()
                .map(|&v| if v > threshold { 1.0 } else { 0.0 })
                .collect(),
        ),
    };
    make_tensor(x.shape().to_vec(), data)
}

/// A LabelEncoder key: strings, integers, or floats compared by bits (with
/// every NaN the same key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Text(Vec<u8>),
    Int(i64),
    Float(u32),
}

fn float_key(value: f32) -> Key {
    if value.is_nan() {
        Key::Float(f32::NAN.to_bits())
    } else if value == 0.0 {
        Key::Float(0)
    } else {
        Key::Float(value.to_bits())
    }
}

#[derive(Debug, Clone)]
enum Values {
    Text(Vec<Vec<u8>>, Vec<u8>),
    Int(Vec<i64>, i64),
    Float(Vec<f32>, f32),
}

#[derive(Debug)]
pub(crate) struct LabelEncoder {
    lookup: HashMap<Key, usize>,
    values: Values,
    /// Set for the opset-1 form (`classes_strings`), which maps strings to
    /// their index (this default when unknown) and integers to the string.
    legacy_int_default: Option<i64>,
}

impl LabelEncoder {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>, opset: i64) -> Result<LabelEncoder, OnnxError> {
        if opset < 2 {
            // classes_strings: strings map to their index, ints to the string.
            let classes = attrs.strings_or_empty("classes_strings")?;
            let default_int = attrs.int_or("default_int64", -1)?;
            let default_string = attrs.string_or("default_string", "_Unused")?.into_bytes();
            let lookup = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (Key::Text(c.clone()), i))
                .collect();
            return Ok(LabelEncoder {
                lookup,
                values: Values::Text(classes, default_string),
                legacy_int_default: Some(default_int),
            });
        }
        if attrs.has("keys_tensor") || attrs.has("values_tensor") {
            return Err(OnnxError::UnsupportedModel(
                "LabelEncoder with keys_tensor/values_tensor is not supported".into(),
            ));
        }
        let keys: Vec<Key> = if let Some(keys) = attrs.strings("keys_strings")? {
            keys.into_iter().map(Key::Text).collect()
        } else if let Some(keys) = attrs.ints("keys_int64s")? {
            keys.into_iter().map(Key::Int).collect()
        } else if let Some(keys) = attrs.floats("keys_floats")? {
            keys.into_iter().map(float_key).collect()
        } else {
            return Err(attrs.error("keys_strings, keys_int64s or keys_floats must be set"));
        };
        let values = if let Some(values) = attrs.strings("values_strings")? {
            Values::Text(
                values,
                attrs.string_or("default_string", "_Unused")?.into_bytes(),
            )
        } else if let Some(values) = attrs.ints("values_int64s")? {
            Values::Int(values, attrs.int_or("default_int64", -1)?)
        } else if let Some(values) = attrs.floats("values_floats")? {
            Values::Float(values, attrs.float_or("default_float", -0.0)?)
        } else {
            return Err(attrs.error("values_strings, values_int64s or values_floats must be set"));
        };
        let n_values = match &values {
            Values::Text(v, _) => v.len(),
            Values::Int(v, _) => v.len(),
            Values::Float(v, _) => v.len(),
        };
        if n_values != keys.len() {
            return Err(attrs.error(format!("{} keys but {n_values} values", keys.len())));
        }
        let mut lookup = HashMap::with_capacity(keys.len());
        for (i, key) in keys.into_iter().enumerate() {
            lookup.entry(key).or_insert(i);
        }
        Ok(LabelEncoder {
            lookup,
            values,
            legacy_int_default: None,
        })
    }

    pub(crate) fn run(&self, x: &Tensor) -> Result<Tensor, OnnxError> {
        let keys: Vec<Key> = match x.data() {
            TensorData::Bytes(values) => values.iter().cloned().map(Key::Text).collect(),
            TensorData::F32(values) => values.iter().map(|&v| float_key(v)).collect(),
            TensorData::F64(values) => values.iter().map(|&v| float_key(v as f32)).collect(),
            other => as_i64(other)?.iter().map(|&v| Key::Int(v)).collect(),
        };
        let data = match (&self.values, x.data()) {
            // Legacy form: ints index the class list.
            (Values::Text(classes, default), TensorData::I64(_))
                if self.legacy_int_default.is_some() =>
            {
                TensorData::Bytes(
                    keys.iter()
                        .map(|key| match key {
                            Key::Int(i) => usize::try_from(*i)
                                .ok()
                                .and_then(|i| classes.get(i).cloned())
                                .unwrap_or_else(|| default.clone()),
                            _ => default.clone(),
                        })
                        .collect(),
                )
            }
            (Values::Text(_, _), TensorData::Bytes(_)) if self.legacy_int_default.is_some() => {
                let default = self.legacy_int_default.unwrap_or(-1);
                TensorData::I64(
                    keys.iter()
                        .map(|key| self.lookup.get(key).map_or(default, |&i| i as i64))
                        .collect(),
                )
            }
            (Values::Text(values, default), _) => TensorData::Bytes(
                keys.iter()
                    .map(|key| {
                        self.lookup
                            .get(key)
                            .map_or_else(|| default.clone(), |&i| values[i].clone())
                    })
                    .collect(),
            ),
            (Values::Int(values, default), _) => TensorData::I64(
                keys.iter()
                    .map(|key| self.lookup.get(key).map_or(*default, |&i| values[i]))
                    .collect(),
            ),
            (Values::Float(values, default), _) => TensorData::F32(
                keys.iter()
                    .map(|key| self.lookup.get(key).map_or(*default, |&i| values[i]))
                    .collect(),
            ),
        };
        make_tensor(x.shape().to_vec(), data)
    }
}

#[derive(Debug)]
pub(crate) struct OneHotEncoder {
    lookup: HashMap<Key, usize>,
    n_categories: usize,
    zeros: bool,
}

impl OneHotEncoder {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>) -> Result<OneHotEncoder, OnnxError> {
        let keys: Vec<Key> = if let Some(cats) = attrs.strings("cats_strings")? {
            cats.into_iter().map(Key::Text).collect()
        } else if let Some(cats) = attrs.ints("cats_int64s")? {
            cats.into_iter().map(Key::Int).collect()
        } else {
            return Err(attrs.error("cats_strings or cats_int64s must be set"));
        };
        let n_categories = keys.len();
        let mut lookup = HashMap::with_capacity(n_categories);
        for (i, key) in keys.into_iter().enumerate() {
            lookup.entry(key).or_insert(i);
        }
        Ok(OneHotEncoder {
            lookup,
            n_categories,
            zeros: attrs.int_or("zeros", 1)? != 0,
        })
    }

    pub(crate) fn run(&self, x: &Tensor) -> Result<Tensor, OnnxError> {
        let keys: Vec<Key> = match x.data() {
            TensorData::Bytes(values) => values.iter().cloned().map(Key::Text).collect(),
            TensorData::F32(values) => values.iter().map(|&v| Key::Int(v as i64)).collect(),
            TensorData::F64(values) => values.iter().map(|&v| Key::Int(v as i64)).collect(),
            other => as_i64(other)?.iter().map(|&v| Key::Int(v)).collect(),
        };
        let mut out = vec![0f32; keys.len() * self.n_categories];
        for (row, key) in keys.iter().enumerate() {
            match self.lookup.get(key) {
                Some(&category) => out[row * self.n_categories + category] = 1.0,
                None if self.zeros => {}
                None => return Err(runtime("OneHotEncoder: unknown category and zeros=0")),
            }
        }
        let mut shape = x.shape().to_vec();
        shape.push(self.n_categories);
        make_tensor(shape, TensorData::F32(out))
    }
}

/// onnxruntime's ArrayFeatureExtractor: picks columns of the last axis; a
/// 1-D input gives a [1, k] output.
pub(crate) fn array_feature_extractor(x: &Tensor, indices: &Tensor) -> Result<Tensor, OnnxError> {
    let Some(&stride) = x.shape().last() else {
        return Err(runtime(
            "ArrayFeatureExtractor needs a tensor of rank 1 or more",
        ));
    };
    let picks = as_i64(indices.data())?
        .iter()
        .map(|&i| {
            usize::try_from(i)
                .ok()
                .filter(|&i| i < stride)
                .ok_or_else(|| {
                    runtime(format!(
                        "ArrayFeatureExtractor: index {i} is out of range for {stride} columns"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rows = x.len().checked_div(stride).unwrap_or(0);
    let mut flat = Vec::with_capacity(rows * picks.len());
    for row in 0..rows {
        flat.extend(picks.iter().map(|&p| row * stride + p));
    }
    let shape = if x.shape().len() == 1 {
        vec![1, picks.len()]
    } else {
        let mut shape = x.shape().to_vec();
        let last = shape.len() - 1;
        shape[last] = picks.len();
        shape
    };
    make_tensor(shape, take(x.data(), &flat))
}

/// Concatenates inputs column-wise into [N, sum(inputdimensions)] floats,
/// truncating or zero-padding each input to its declared width.
pub(crate) fn feature_vectorizer(inputs: &[&Tensor], dims: &[usize]) -> Result<Tensor, OnnxError> {
    if inputs.len() != dims.len() {
        return Err(runtime(format!(
            "FeatureVectorizer has {} inputs but {} inputdimensions",
            inputs.len(),
            dims.len()
        )));
    }
    let rows = inputs
        .first()
        .map(|x| {
            if x.shape().len() <= 1 {
                1
            } else {
                x.shape()[0]
            }
        })
        .unwrap_or(0);
    let width: usize = dims.iter().sum();
    let mut out = vec![0f32; rows * width];
    let mut offset = 0;
    for (x, &dim) in inputs.iter().zip(dims) {
        let values = as_f32(x.data())?;
        let x_rows = if x.shape().len() <= 1 {
            1
        } else {
            x.shape()[0]
        };
        if x_rows != rows {
            return Err(runtime(
                "FeatureVectorizer inputs have different row counts",
            ));
        }
        let x_width = values.len().checked_div(rows).unwrap_or(0);
        for row in 0..rows {
            for column in 0..dim.min(x_width) {
                out[row * width + offset + column] = values[row * x_width + column];
            }
        }
        offset += dim;
    }
    make_tensor(vec![rows, width], TensorData::F32(out))
}
