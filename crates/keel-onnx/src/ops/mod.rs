//! Operators: each ONNX node is compiled once, at load, into an [`Op`] whose
//! attributes are parsed and validated; running it only touches tensors.

pub(crate) mod attrs;
mod elementwise;
mod linear;
mod math;
mod ml;
mod post;
mod shape;
mod tree;

use keel_core::tensor::{DataType, Tensor, TensorData};

use crate::error::{runtime, OnnxError};
use crate::proto::NodeProto;
use crate::tensors::{as_i64, cast_data, datatype_from_onnx, make_tensor};
use attrs::NodeAttrs;
use elementwise::{BinaryOp, UnaryOp};
use math::{GemmAttrs, ReduceKind};

pub(crate) const DOMAIN_ML: &str = "ai.onnx.ml";

/// True for the default ONNX domain, however the model spells it.
pub(crate) fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

#[derive(Debug)]
pub(crate) enum Op {
    Identity,
    Cast(DataType),
    Constant(Tensor),
    Reshape {
        allow_zero: bool,
        shape_attr: Option<Vec<i64>>,
    },
    Flatten(i64),
    Concat(i64),
    Squeeze(Option<Vec<i64>>),
    Unsqueeze(Option<Vec<i64>>),
    Transpose(Option<Vec<i64>>),
    Shape {
        start: i64,
        end: Option<i64>,
    },
    Gather(i64),
    Slice(Option<SliceAttrs>),
    Binary(BinaryOp),
    Unary(UnaryOp),
    MatMul,
    Gemm(GemmAttrs),
    Softmax {
        axis: i64,
        legacy: bool,
        log: bool,
    },
    ArgExtreme {
        axis: i64,
        keepdims: bool,
        select_last: bool,
        max: bool,
    },
    Reduce {
        kind: ReduceKind,
        attr_axes: Option<Vec<i64>>,
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    ClipAttrs {
        min: f32,
        max: f32,
    },
    ClipInputs,
    Where,
    Dropout,
    TreeRegressor(Box<tree::TreeRegressor>),
    TreeClassifier(Box<tree::TreeClassifier>),
    LinearClassifier(Box<linear::LinearClassifier>),
    LinearRegressor(Box<linear::LinearRegressor>),
    Scaler(ml::Scaler),
    Normalizer(ml::Norm),
    ZipMap(usize),
    Imputer(ml::Imputer),
    Binarizer(f32),
    LabelEncoder(Box<ml::LabelEncoder>),
    OneHotEncoder(Box<ml::OneHotEncoder>),
    ArrayFeatureExtractor,
    FeatureVectorizer(Vec<usize>),
}

/// Slice before opset 10 takes its ranges as attributes.
#[derive(Debug)]
pub(crate) struct SliceAttrs {
    starts: Vec<i64>,
    ends: Vec<i64>,
    axes: Option<Vec<i64>>,
}

fn unsupported(node: &NodeProto) -> OnnxError {
    OnnxError::UnsupportedOperator {
        op_type: node.op_type.clone(),
        domain: if node.domain.is_empty() {
            "ai.onnx".into()
        } else {
            node.domain.clone()
        },
        node: node.name.clone(),
    }
}

impl Op {
    /// Compiles `node`; `opset` is the version the model imports for the
    /// node's domain.
    pub(crate) fn compile(node: &NodeProto, opset: i64) -> Result<Op, OnnxError> {
        let attrs = NodeAttrs::new(node);
        if is_default_domain(&node.domain) {
            compile_default(&attrs, opset)
        } else if node.domain == DOMAIN_ML {
            compile_ml(&attrs, opset)
        } else {
            Err(unsupported(node))
        }
    }

    /// The number of class labels of a ZipMap, for the output's declared shape.
    pub(crate) fn zipmap_width(&self) -> Option<usize> {
        match self {
            Op::ZipMap(width) => Some(*width),
            _ => None,
        }
    }

    pub(crate) fn run(
        &self,
        inputs: &[Option<&Tensor>],
        outputs: &mut Vec<Tensor>,
    ) -> Result<(), OnnxError> {
        let x = || required(inputs, 0);
        match self {
            Op::Identity | Op::Dropout => {
                let x = x()?;
                outputs.push(x.clone());
                if matches!(self, Op::Dropout) {
                    outputs.push(make_tensor(
                        x.shape().to_vec(),
                        TensorData::Bool(vec![true; x.len()]),
                    )?);
                }
            }
            Op::Cast(to) => {
                let x = x()?;
                outputs.push(make_tensor(x.shape().to_vec(), cast_data(x.data(), *to)?)?);
            }
            Op::Constant(tensor) => outputs.push(tensor.clone()),
            Op::Reshape {
                allow_zero,
                shape_attr,
            } => {
                let target = match shape_attr {
                    Some(shape) => shape.clone(),
                    None => as_i64(required(inputs, 1)?.data())?.into_owned(),
                };
                outputs.push(shape::reshape(x()?, &target, *allow_zero)?);
            }
            Op::Flatten(axis) => outputs.push(shape::flatten(x()?, *axis)?),
            Op::Concat(axis) => {
                let all = inputs.iter().flatten().copied().collect::<Vec<_>>();
                outputs.push(shape::concat(&all, *axis)?);
            }
            Op::Squeeze(attr_axes) => {
                let axes = axes_from(attr_axes, inputs.get(1).copied().flatten())?;
                outputs.push(shape::squeeze(x()?, axes.as_deref())?);
            }
            Op::Unsqueeze(attr_axes) => {
                let axes = axes_from(attr_axes, inputs.get(1).copied().flatten())?
                    .ok_or_else(|| runtime("Unsqueeze needs axes"))?;
                outputs.push(shape::unsqueeze(x()?, &axes)?);
            }
            Op::Transpose(perm) => outputs.push(shape::transpose(x()?, perm.as_deref())?),
            Op::Shape { start, end } => outputs.push(shape::shape_of(x()?, *start, *end)?),
            Op::Gather(axis) => {
                let indices = required(inputs, 1)?;
                let values = as_i64(indices.data())?;
                outputs.push(shape::gather(x()?, indices, *axis, &values)?);
            }
            Op::Slice(attrs) => {
                let x = x()?;
                let out = match attrs {
                    Some(a) => shape::slice(x, &a.starts, &a.ends, a.axes.as_deref(), None)?,
                    None => {
                        let starts = as_i64(required(inputs, 1)?.data())?;
                        let ends = as_i64(required(inputs, 2)?.data())?;
                        let axes = optional_i64(inputs, 3)?;
                        let steps = optional_i64(inputs, 4)?;
                        shape::slice(x, &starts, &ends, axes.as_deref(), steps.as_deref())?
                    }
                };
                outputs.push(out);
            }
            Op::Binary(op) => outputs.push(elementwise::binary(*op, x()?, required(inputs, 1)?)?),
            Op::Unary(op) => outputs.push(elementwise::unary(*op, x()?)?),
            Op::MatMul => outputs.push(math::matmul(x()?, required(inputs, 1)?)?),
            Op::Gemm(attrs) => outputs.push(math::gemm(
                x()?,
                required(inputs, 1)?,
                inputs.get(2).copied().flatten(),
                *attrs,
            )?),
            Op::Softmax { axis, legacy, log } => {
                outputs.push(math::softmax(x()?, *axis, *legacy, *log)?)
            }
            Op::ArgExtreme {
                axis,
                keepdims,
                select_last,
                max,
            } => outputs.push(math::arg_extreme(
                x()?,
                *axis,
                *keepdims,
                *select_last,
                *max,
            )?),
            Op::Reduce {
                kind,
                attr_axes,
                keepdims,
                noop_with_empty_axes,
            } => {
                let axes =
                    axes_from(attr_axes, inputs.get(1).copied().flatten())?.unwrap_or_default();
                outputs.push(math::reduce(
                    x()?,
                    *kind,
                    &axes,
                    *keepdims,
                    *noop_with_empty_axes,
                )?);
            }
            Op::ClipAttrs { min, max } => outputs.push(elementwise::clip_values(
                x()?,
                Some(f64::from(*min)),
                Some(f64::from(*max)),
            )?),
            Op::ClipInputs => outputs.push(elementwise::clip(
                x()?,
                inputs.get(1).copied().flatten(),
                inputs.get(2).copied().flatten(),
            )?),
            Op::Where => outputs.push(elementwise::where_op(
                x()?,
                required(inputs, 1)?,
                required(inputs, 2)?,
            )?),
            Op::TreeRegressor(regressor) => outputs.push(regressor.run(x()?)?),
            Op::TreeClassifier(classifier) => {
                let (label, scores) = classifier.run(x()?)?;
                outputs.push(label);
                outputs.push(scores);
            }
            Op::LinearClassifier(classifier) => {
                let (label, scores) = classifier.run(x()?)?;
                outputs.push(label);
                outputs.push(scores);
            }
            Op::LinearRegressor(regressor) => outputs.push(regressor.run(x()?)?),
            Op::Scaler(scaler) => outputs.push(scaler.run(x()?)?),
            Op::Normalizer(norm) => outputs.push(norm.run(x()?)?),
            Op::ZipMap(width) => outputs.push(ml::zipmap(x()?, *width)?),
            Op::Imputer(imputer) => outputs.push(imputer.run(x()?)?),
            Op::Binarizer(threshold) => outputs.push(ml::binarize(x()?, *threshold)?),
            Op::LabelEncoder(encoder) => outputs.push(encoder.run(x()?)?),
            Op::OneHotEncoder(encoder) => outputs.push(encoder.run(x()?)?),
            Op::ArrayFeatureExtractor => {
                outputs.push(ml::array_feature_extractor(x()?, required(inputs, 1)?)?)
            }
            Op::FeatureVectorizer(dims) => {
                let all = inputs.iter().flatten().copied().collect::<Vec<_>>();
                outputs.push(ml::feature_vectorizer(&all, dims)?);
            }
        }
        Ok(())
    }
}

fn required<'a>(inputs: &[Option<&'a Tensor>], index: usize) -> Result<&'a Tensor, OnnxError> {
    inputs
        .get(index)
        .copied()
        .flatten()
        .ok_or_else(|| runtime(format!("input {index} is missing")))
}

fn optional_i64(inputs: &[Option<&Tensor>], index: usize) -> Result<Option<Vec<i64>>, OnnxError> {
    match inputs.get(index).copied().flatten() {
        Some(tensor) => Ok(Some(as_i64(tensor.data())?.into_owned())),
        None => Ok(None),
    }
}

fn axes_from(
    attr_axes: &Option<Vec<i64>>,
    input: Option<&Tensor>,
) -> Result<Option<Vec<i64>>, OnnxError> {
    if let Some(axes) = attr_axes {
        return Ok(Some(axes.clone()));
    }
    match input {
        Some(tensor) => Ok(Some(as_i64(tensor.data())?.into_owned())),
        None => Ok(None),
    }
}

fn cast_target(attrs: &NodeAttrs<'_>) -> Result<DataType, OnnxError> {
    let to = attrs
        .int("to")?
        .ok_or_else(|| attrs.error("attribute to is missing"))?;
    let to = i32::try_from(to).map_err(|_| attrs.error(format!("unknown datatype {to}")))?;
    datatype_from_onnx(to).ok_or_else(|| {
        OnnxError::UnsupportedModel(format!(
            "Cast node \"{}\" converts to {}",
            attrs.node().name,
            crate::tensors::onnx_type_name(to)
        ))
    })
}

fn constant_value(attrs: &NodeAttrs<'_>) -> Result<Tensor, OnnxError> {
    if let Some(tensor) = attrs.tensor("value")? {
        return Ok(tensor);
    }
    if let Some(v) = attrs.float("value_float")? {
        return make_tensor(vec![], TensorData::F32(vec![v]));
    }
    if let Some(v) = attrs.floats("value_floats")? {
        return make_tensor(vec![v.len()], TensorData::F32(v));
    }
    if let Some(v) = attrs.int("value_int")? {
        return make_tensor(vec![], TensorData::I64(vec![v]));
    }
    if let Some(v) = attrs.ints("value_ints")? {
        return make_tensor(vec![v.len()], TensorData::I64(v));
    }
    if let Some(v) = attrs.string("value_string")? {
        return make_tensor(vec![], TensorData::Bytes(vec![v.into_bytes()]));
    }
    if let Some(v) = attrs.strings("value_strings")? {
        return make_tensor(vec![v.len()], TensorData::Bytes(v));
    }
    Err(attrs.error("Constant has no supported value attribute"))
}

fn compile_default(attrs: &NodeAttrs<'_>, opset: i64) -> Result<Op, OnnxError> {
    let node = attrs.node();
    let op_type = node.op_type.as_str();
    if let Some(op) = BinaryOp::from_op_type(op_type) {
        if opset < 7 && attrs.int_or("broadcast", 0)? != 0 && attrs.has("axis") {
            return Err(OnnxError::UnsupportedModel(format!(
                "{op_type} node \"{}\" uses pre-opset-7 axis broadcasting",
                node.name
            )));
        }
        return Ok(Op::Binary(op));
    }
    if let Some(op) = UnaryOp::from_op_type(op_type) {
        return Ok(Op::Unary(op));
    }
    if let Some(kind) = ReduceKind::from_op_type(op_type) {
        let attr_axes = if opset < kind.axes_input_since() {
            Some(attrs.ints_or_empty("axes")?)
        } else {
            None
        };
        return Ok(Op::Reduce {
            kind,
            attr_axes,
            keepdims: attrs.int_or("keepdims", 1)? != 0,
            noop_with_empty_axes: attrs.int_or("noop_with_empty_axes", 0)? != 0,
        });
    }
    Ok(match op_type {
        "Identity" => Op::Identity,
        "Dropout" => Op::Dropout,
        "Cast" => Op::Cast(cast_target(attrs)?),
        "Constant" => Op::Constant(constant_value(attrs)?),
        "Reshape" => Op::Reshape {
            allow_zero: attrs.int_or("allowzero", 0)? != 0,
            shape_attr: if opset < 5 {
                attrs.ints("shape")?
            } else {
                None
            },
        },
        "Flatten" => Op::Flatten(attrs.int_or("axis", 1)?),
        "Concat" => Op::Concat(
            attrs
                .int("axis")?
                .ok_or_else(|| attrs.error("attribute axis is missing"))?,
        ),
        "Squeeze" => Op::Squeeze(if opset < 13 {
            attrs.ints("axes")?
        } else {
            None
        }),
        "Unsqueeze" => Op::Unsqueeze(if opset < 13 {
            attrs.ints("axes")?
        } else {
            None
        }),
        "Transpose" => Op::Transpose(attrs.ints("perm")?),
        "Shape" => Op::Shape {
            start: attrs.int_or("start", 0)?,
            end: attrs.int("end")?,
        },
        "Gather" => Op::Gather(attrs.int_or("axis", 0)?),
        "Slice" => Op::Slice(if opset < 10 {
            Some(SliceAttrs {
                starts: attrs.ints_or_empty("starts")?,
                ends: attrs.ints_or_empty("ends")?,
                axes: attrs.ints("axes")?,
            })
        } else {
            None
        }),
        "MatMul" => Op::MatMul,
        "Gemm" => Op::Gemm(GemmAttrs {
            alpha: attrs.float_or("alpha", 1.0)?,
            beta: attrs.float_or("beta", 1.0)?,
            trans_a: attrs.int_or("transA", 0)? != 0,
            trans_b: attrs.int_or("transB", 0)? != 0,
        }),
        "Softmax" | "LogSoftmax" => Op::Softmax {
            axis: attrs.int_or("axis", if opset < 13 { 1 } else { -1 })?,
            legacy: opset < 13,
            log: op_type == "LogSoftmax",
        },
        "ArgMax" | "ArgMin" => Op::ArgExtreme {
            axis: attrs.int_or("axis", 0)?,
            keepdims: attrs.int_or("keepdims", 1)? != 0,
            select_last: attrs.int_or("select_last_index", 0)? != 0,
            max: op_type == "ArgMax",
        },
        "Clip" if opset < 11 => Op::ClipAttrs {
            min: attrs.float_or("min", f32::MIN)?,
            max: attrs.float_or("max", f32::MAX)?,
        },
        "Clip" => Op::ClipInputs,
        "Where" => Op::Where,
        _ => return Err(unsupported(node)),
    })
}

fn compile_ml(attrs: &NodeAttrs<'_>, opset: i64) -> Result<Op, OnnxError> {
    let node = attrs.node();
    Ok(match node.op_type.as_str() {
        "TreeEnsembleRegressor" => {
            Op::TreeRegressor(Box::new(tree::TreeRegressor::compile(attrs)?))
        }
        "TreeEnsembleClassifier" => {
            Op::TreeClassifier(Box::new(tree::TreeClassifier::compile(attrs)?))
        }
        "TreeEnsemble" => Op::TreeRegressor(Box::new(tree::compile_tree_ensemble_v5(attrs)?)),
        "LinearClassifier" => {
            Op::LinearClassifier(Box::new(linear::LinearClassifier::compile(attrs)?))
        }
        "LinearRegressor" => {
            Op::LinearRegressor(Box::new(linear::LinearRegressor::compile(attrs)?))
        }
        "Scaler" => Op::Scaler(ml::Scaler::compile(attrs)?),
        "Normalizer" => Op::Normalizer(ml::Norm::compile(attrs)?),
        "ZipMap" => {
            let ints = attrs.ints_or_empty("classlabels_int64s")?;
            let strings = attrs.strings_or_empty("classlabels_strings")?;
            let width = ints.len().max(strings.len());
            if width == 0 || (!ints.is_empty() && !strings.is_empty()) {
                return Err(attrs.error(
                    "exactly one of classlabels_int64s and classlabels_strings must be set",
                ));
            }
            Op::ZipMap(width)
        }
        "Imputer" => Op::Imputer(ml::Imputer::compile(attrs)?),
        "Binarizer" => Op::Binarizer(attrs.float_or("threshold", 0.0)?),
        "LabelEncoder" => Op::LabelEncoder(Box::new(ml::LabelEncoder::compile(attrs, opset)?)),
        "OneHotEncoder" => Op::OneHotEncoder(Box::new(ml::OneHotEncoder::compile(attrs)?)),
        "ArrayFeatureExtractor" => Op::ArrayFeatureExtractor,
        "FeatureVectorizer" => Op::FeatureVectorizer(
            attrs
                .ints_or_empty("inputdimensions")?
                .into_iter()
                .map(|d| {
                    usize::try_from(d)
                        .map_err(|_| attrs.error(format!("invalid input dimension {d}")))
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(unsupported(node)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{attribute_type, AttributeProto};

    fn node(op_type: &str, domain: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op_type.into(),
            domain: domain.into(),
            name: "n0".into(),
            attribute,
            ..Default::default()
        }
    }

    #[test]
    fn unknown_operators_are_refused_by_name() {
        let err = Op::compile(&node("Conv", "", vec![]), 17).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported onnx operator Conv (domain \"ai.onnx\") in node \"n0\"; serve this model with the python runtime instead"
        );
        let err = Op::compile(&node("Foo", "com.example", vec![]), 1).unwrap_err();
        assert!(
            matches!(err, OnnxError::UnsupportedOperator { ref domain, .. } if domain == "com.example")
        );
    }

    #[test]
    fn cast_converts_between_types() {
        let cast = Op::compile(
            &node(
                "Cast",
                "",
                vec![AttributeProto {
                    name: "to".into(),
                    r#type: attribute_type::INT,
                    i: 7,
                    ..Default::default()
                }],
            ),
            13,
        )
        .unwrap();
        let x = Tensor::new(vec![2], TensorData::F32(vec![1.9, -0.5])).unwrap();
        let mut out = Vec::new();
        cast.run(&[Some(&x)], &mut out).unwrap();
        assert_eq!(out[0].data(), &TensorData::I64(vec![1, 0]));
    }

    #[test]
    fn zipmap_keeps_scores_in_label_order() {
        let zipmap = Op::compile(
            &node(
                "ZipMap",
                DOMAIN_ML,
                vec![AttributeProto {
                    name: "classlabels_strings".into(),
                    r#type: attribute_type::STRINGS,
                    strings: vec![b"b".to_vec(), b"a".to_vec()],
                    ..Default::default()
                }],
            ),
            1,
        )
        .unwrap();
        let scores = Tensor::new(vec![1, 2], TensorData::F32(vec![0.25, 0.75])).unwrap();
        let mut out = Vec::new();
        zipmap.run(&[Some(&scores)], &mut out).unwrap();
        assert_eq!(out[0], scores);
        let wrong = Tensor::new(vec![1, 3], TensorData::F32(vec![0.2, 0.3, 0.5])).unwrap();
        assert!(zipmap.run(&[Some(&wrong)], &mut Vec::new()).is_err());
    }
}
