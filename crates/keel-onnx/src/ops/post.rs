//! Score transforms shared by the ai.onnx.ml classifiers and regressors
//! (`post_transform`), computed in f32 the way onnxruntime computes them.

use crate::error::OnnxError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub(crate) fn parse(name: &str) -> Result<PostTransform, String> {
        Ok(match name {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            other => return Err(format!("unknown post_transform {other}")),
        })
    }

    /// The integer spelling of `TreeEnsemble` (ai.onnx.ml opset 5).
    pub(crate) fn from_code(code: i64) -> Result<PostTransform, OnnxError> {
        Ok(match code {
            0 => PostTransform::None,
            1 => PostTransform::Softmax,
            2 => PostTransform::Logistic,
            3 => PostTransform::SoftmaxZero,
            4 => PostTransform::Probit,
            other => {
                return Err(OnnxError::MalformedModel(format!(
                    "unknown post_transform {other}"
                )))
            }
        })
    }

    /// Applies the transform to one row of two or more scores, in place.
    pub(crate) fn apply_row(self, scores: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
            PostTransform::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
            PostTransform::Softmax => softmax(scores),
            PostTransform::SoftmaxZero => softmax_zero(scores),
        }
    }
}

pub(crate) fn logistic(value: f32) -> f32 {
    let v = 1.0 / (1.0 + (-value.abs()).exp());
    if value < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// onnxruntime's approximation of the inverse error function (Winitzki).
fn erf_inv(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sign * v3.sqrt()
}

pub(crate) fn probit(value: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * value - 1.0)
}

pub(crate) fn softmax(values: &mut [f32]) {
    let max = values
        .iter()
        .fold(-f32::MAX, |max, &v| if v > max { v } else { max });
    let mut sum = 0.0f32;
    for value in values.iter_mut() {
        *value = (*value - max).exp();
        sum += *value;
    }
    for value in values.iter_mut() {
        *value /= sum;
    }
}

/// Softmax that leaves (near-)zero scores at zero weight, as onnxruntime does.
pub(crate) fn softmax_zero(values: &mut [f32]) {
    let max = values
        .iter()
        .fold(-f32::MAX, |max, &v| if v > max { v } else { max });
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0f32;
    for value in values.iter_mut() {
        if *value > 0.000_000_1 || *value < -0.000_000_1 {
            *value = (*value - max).exp();
            sum += *value;
        } else {
            *value *= exp_neg_max;
        }
    }
    for value in values.iter_mut() {
        *value /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_match_their_definitions() {
        assert!((logistic(0.0) - 0.5).abs() < 1e-7);
        assert!((logistic(-3.0) - 1.0 / (1.0 + 3.0f32.exp())).abs() < 1e-7);
        let mut row = [1.0f32, 2.0, 3.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[2] > row[1] && row[1] > row[0]);
        // probit is the inverse of the normal cdf: probit(0.5) = 0, probit(0.975) ~ 1.96
        assert!(probit(0.5).abs() < 1e-6);
        assert!((probit(0.975) - 1.96).abs() < 1e-2);
        let mut zeros = [0.0f32, 2.0];
        softmax_zero(&mut zeros);
        assert_eq!(zeros[0], 0.0);
        assert!((zeros[1] - 1.0).abs() < 1e-7);
    }
}
