//! `LinearClassifier` and `LinearRegressor` (ai.onnx.ml): `X W^T + b` in
//! f32, then onnxruntime's labelling and score transforms.

use keel_core::tensor::{Tensor, TensorData};

use crate::error::{invalid_input, OnnxError};
use crate::ops::attrs::NodeAttrs;
use crate::ops::post::{probit, PostTransform};
use crate::ops::tree::{ClassLabels, LabelPick};
use crate::tensors::{as_f32, make_tensor};

/// Rows and columns of a [rows, features] or [features] input.
fn rows_and_features(x: &Tensor, op: &str) -> Result<(usize, usize), OnnxError> {
    match x.shape() {
        [features] => Ok((1, *features)),
        [rows, features] => Ok((*rows, *features)),
        shape => Err(invalid_input(format!(
            "{op} takes a [rows, features] tensor, got shape {shape:?}"
        ))),
    }
}

/// `out[r, t] = sum_f x[r, f] * coefficients[t, f] + intercepts[t]`.
fn affine(
    x: &[f32],
    n_rows: usize,
    n_features: usize,
    coefficients: &[f32],
    intercepts: &[f32],
    n_targets: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; n_rows * n_targets];
    for (row, out_row) in out
        .chunks_exact_mut(n_targets.max(1))
        .enumerate()
        .take(n_rows)
    {
        let features = &x[row * n_features..(row + 1) * n_features];
        for (target, value) in out_row.iter_mut().enumerate() {
            let weights = &coefficients[target * n_features..(target + 1) * n_features];
            let dot = features
                .iter()
                .zip(weights)
                .fold(0f32, |acc, (&a, &b)| acc + a * b);
            *value = dot + intercepts.get(target).copied().unwrap_or(0.0);
        }
    }
    out
}

fn n_targets_for(
    coefficients: &[f32],
    intercepts: &[f32],
    n_features: usize,
    op: &str,
) -> Result<usize, OnnxError> {
    let n_targets = if intercepts.is_empty() {
        coefficients.len().checked_div(n_features).unwrap_or(0)
    } else {
        intercepts.len()
    };
    if n_targets.checked_mul(n_features) != Some(coefficients.len()) {
        return Err(invalid_input(format!(
            "{op} has {} coefficients for {n_targets} targets; the input must have {} features, got {n_features}",
            coefficients.len(),
            coefficients.len().checked_div(n_targets).unwrap_or(0)
        )));
    }
    Ok(n_targets)
}

#[derive(Debug)]
pub(crate) struct LinearClassifier {
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    labels: ClassLabels,
    post: PostTransform,
}

impl LinearClassifier {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>) -> Result<LinearClassifier, OnnxError> {
        let coefficients = attrs
            .floats("coefficients")?
            .ok_or_else(|| attrs.error("coefficients is missing"))?;
        let intercepts = attrs.floats_or_empty("intercepts")?;
        let labels = ClassLabels::from_attrs(attrs, "classlabels_ints", "classlabels_strings")?;
        let post = PostTransform::parse(&attrs.string_or("post_transform", "NONE")?)
            .map_err(|e| attrs.error(e))?;
        if intercepts.len() > 1 && labels.len() != intercepts.len() {
            return Err(attrs.error(format!(
                "{} class labels for {} intercepts",
                labels.len(),
                intercepts.len()
            )));
        }
        Ok(LinearClassifier {
            coefficients,
            intercepts,
            labels,
            post,
        })
    }

    pub(crate) fn run(&self, x: &Tensor) -> Result<(Tensor, Tensor), OnnxError> {
        let (n_rows, n_features) = rows_and_features(x, "LinearClassifier")?;
        let n_targets = n_targets_for(
            &self.coefficients,
            &self.intercepts,
            n_features,
            "LinearClassifier",
        )?;
        if n_targets > 1 && self.labels.len() != n_targets {
            return Err(invalid_input(format!(
                "LinearClassifier has {} class labels for {n_targets} score columns",
                self.labels.len()
            )));
        }
        let features = as_f32(x.data())?;
        let scores = affine(
            &features,
            n_rows,
            n_features,
            &self.coefficients,
            &self.intercepts,
            n_targets,
        );

        let picks: Vec<LabelPick> = if n_targets == 1 {
            let two_labels = self.labels.len() == 2;
            scores
                .iter()
                .map(|&score| match (score > 0.0, two_labels) {
                    (true, true) => LabelPick::Index(1),
                    (false, true) => LabelPick::Index(0),
                    (true, false) => LabelPick::Raw(1),
                    (false, false) => LabelPick::Raw(0),
                })
                .collect()
        } else {
            scores
                .chunks_exact(n_targets.max(1))
                .map(|row| {
                    let mut best = 0;
                    for (class, &score) in row.iter().enumerate().skip(1) {
                        if score > row[best] {
                            best = class;
                        }
                    }
                    LabelPick::Index(best)
                })
                .collect()
        };
        let label = match (&self.labels, n_targets) {
            // With one score column and not two labels, onnxruntime writes "1"/"0".
            (ClassLabels::Strings(labels), 1) if labels.len() != 2 => make_tensor(
                vec![n_rows],
                TensorData::Bytes(
                    picks
                        .iter()
                        .map(|pick| (if *pick == LabelPick::Raw(1) { "1" } else { "0" }).into())
                        .collect(),
                ),
            )?,
            _ => self.labels.label_tensor(&picks)?,
        };

        let add_second_class = n_targets == 1 && self.labels.len() == 2;
        let probabilities = if add_second_class {
            let mut out = Vec::with_capacity(n_rows * 2);
            for &score in &scores {
                if self.post == PostTransform::Probit {
                    // onnxruntime transforms in place and leaves the second column as is.
                    out.extend([probit(score), 0.0]);
                } else {
                    out.extend([1.0 - score, score]);
                }
            }
            make_tensor(vec![n_rows, 2], TensorData::F32(out))?
        } else {
            let mut scores = scores;
            apply_batched(&mut scores, n_targets, self.post);
            make_tensor(vec![n_rows, n_targets], TensorData::F32(scores))?
        };
        Ok((label, probabilities))
    }
}

/// onnxruntime's `batched_update_scores_inplace` without a second class:
/// single-column scores only take PROBIT.
fn apply_batched(scores: &mut [f32], n_targets: usize, post: PostTransform) {
    if n_targets == 1 {
        if post == PostTransform::Probit {
            scores.iter_mut().for_each(|s| *s = probit(*s));
        }
        return;
    }
    if n_targets == 0 {
        return;
    }
    for row in scores.chunks_exact_mut(n_targets) {
        post.apply_row(row);
    }
}

#[derive(Debug)]
pub(crate) struct LinearRegressor {
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    n_targets: usize,
    post: PostTransform,
}

impl LinearRegressor {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>) -> Result<LinearRegressor, OnnxError> {
        let coefficients = attrs
            .floats("coefficients")?
            .ok_or_else(|| attrs.error("coefficients is missing"))?;
        let intercepts = attrs.floats_or_empty("intercepts")?;
        let n_targets = attrs.int_or("targets", 1)?;
        let n_targets = usize::try_from(n_targets)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| attrs.error(format!("targets must be positive, got {n_targets}")))?;
        if !intercepts.is_empty() && intercepts.len() != n_targets {
            return Err(attrs.error(format!(
                "{} intercepts for {n_targets} targets",
                intercepts.len()
            )));
        }
        if coefficients.len() % n_targets != 0 {
            return Err(attrs.error(format!(
                "{} coefficients do not split into {n_targets} targets",
                coefficients.len()
            )));
        }
        let post = PostTransform::parse(&attrs.string_or("post_transform", "NONE")?)
            .map_err(|e| attrs.error(e))?;
        Ok(LinearRegressor {
            coefficients,
            intercepts,
            n_targets,
            post,
        })
    }

    pub(crate) fn run(&self, x: &Tensor) -> Result<Tensor, OnnxError> {
        let (n_rows, n_features) = rows_and_features(x, "LinearRegressor")?;
        let expected = self.coefficients.len() / self.n_targets;
        if n_features != expected {
            return Err(invalid_input(format!(
                "LinearRegressor expects {expected} features, got {n_features}"
            )));
        }
        let features = as_f32(x.data())?;
        let mut scores = affine(
            &features,
            n_rows,
            n_features,
            &self.coefficients,
            &self.intercepts,
            self.n_targets,
        );
        apply_batched(&mut scores, self.n_targets, self.post);
        make_tensor(vec![n_rows, self.n_targets], TensorData::F32(scores))
    }
}
