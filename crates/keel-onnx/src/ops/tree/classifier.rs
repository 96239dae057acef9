//! `TreeEnsembleClassifier`: per-class leaf weights summed over trees, then
//! onnxruntime's finalization (base values, the two-class single-column
//! margin, `post_transform`) and the label of the winning class.

use keel_core::tensor::{Tensor, TensorData};

use super::attributes::{floats_or_tensor, raw_nodes_v1, raw_weights_v1};
use super::{feature_rows, for_row_chunks, Forest, ROW_BLOCK};
use crate::error::OnnxError;
use crate::ops::attrs::NodeAttrs;
use crate::ops::post::{logistic, probit, PostTransform};
use crate::tensors::make_tensor;

#[derive(Debug)]
pub(crate) enum ClassLabels {
    Ints(Vec<i64>),
    Strings(Vec<Vec<u8>>),
}

impl ClassLabels {
    pub(crate) fn len(&self) -> usize {
        match self {
            ClassLabels::Ints(labels) => labels.len(),
            ClassLabels::Strings(labels) => labels.len(),
        }
    }

    pub(crate) fn from_attrs(
        attrs: &NodeAttrs<'_>,
        ints_name: &str,
        strings_name: &str,
    ) -> Result<ClassLabels, OnnxError> {
        let strings = attrs.strings_or_empty(strings_name)?;
        if !strings.is_empty() {
            return Ok(ClassLabels::Strings(strings));
        }
        let ints = attrs.ints_or_empty(ints_name)?;
        if ints.is_empty() {
            return Err(attrs.error(format!("neither {ints_name} nor {strings_name} is set")));
        }
        Ok(ClassLabels::Ints(ints))
    }

    /// Builds the label tensor from per-row picks.
    pub(crate) fn label_tensor(&self, picks: &[LabelPick]) -> Result<Tensor, OnnxError> {
        let n_rows = picks.len();
        let data = match self {
            ClassLabels::Ints(labels) => TensorData::I64(
                picks
                    .iter()
                    .map(|pick| match *pick {
                        LabelPick::Index(index) => labels.get(index).copied().unwrap_or_default(),
                        LabelPick::Raw(value) => value,
                    })
                    .collect(),
            ),
            ClassLabels::Strings(labels) => TensorData::Bytes(
                picks
                    .iter()
                    .map(|pick| {
                        let index = match *pick {
                            LabelPick::Index(index) => index,
                            LabelPick::Raw(value) => usize::try_from(value).unwrap_or(0),
                        };
                        labels.get(index).cloned().unwrap_or_default()
                    })
                    .collect(),
            ),
        };
        make_tensor(vec![n_rows], data)
    }
}

/// A classifier's choice for one row: a position in the label list, or (in
/// onnxruntime's two-class fallback) the literal label 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelPick {
    Index(usize),
    Raw(i64),
}

#[derive(Debug)]
pub(crate) struct TreeClassifier {
    forest: Forest,
    labels: ClassLabels,
    post: PostTransform,
    base_values: Vec<f32>,
    /// Two labels but weights for only one class: the score is a margin.
    binary_case: bool,
    weights_are_all_positive: bool,
}

impl TreeClassifier {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>) -> Result<TreeClassifier, OnnxError> {
        let labels = ClassLabels::from_attrs(attrs, "classlabels_int64s", "classlabels_strings")?;
        let n_classes = labels.len();
        if n_classes < 2 {
            return Err(attrs.error("a classifier needs at least two class labels"));
        }
        let raw_nodes = raw_nodes_v1(attrs)?;
        let raw_weights = raw_weights_v1(attrs, "class")?;
        let forest = Forest::build(&raw_nodes, &raw_weights, n_classes, attrs)?;
        let post = PostTransform::parse(&attrs.string_or("post_transform", "NONE")?)
            .map_err(|e| attrs.error(e))?;
        let base_values = floats_or_tensor(attrs, "base_values")?;
        let base_ok = match n_classes {
            2 => base_values.len() <= 2,
            n => base_values.is_empty() || base_values.len() == 1 || base_values.len() == n,
        };
        if !base_ok {
            return Err(attrs.error(format!(
                "base_values has {} values for {n_classes} classes",
                base_values.len()
            )));
        }
        let mut classes_with_weights: Vec<i64> = raw_weights.iter().map(|w| w.target).collect();
        classes_with_weights.sort_unstable();
        classes_with_weights.dedup();
        let binary_case = n_classes == 2 && classes_with_weights.len() == 1;
        let weights_are_all_positive = raw_weights.iter().all(|w| w.value >= 0.0);
        Ok(TreeClassifier {
            forest,
            labels,
            post,
            base_values,
            binary_case,
            weights_are_all_positive,
        })
    }

    /// Returns the label tensor and the [rows, classes] score tensor.
    pub(crate) fn run(&self, x: &Tensor) -> Result<(Tensor, Tensor), OnnxError> {
        let (features, n_rows, n_cols) = feature_rows(x, &self.forest)?;
        let n_classes = self.forest.n_targets;
        let mut scores = vec![0f32; n_rows * n_classes];
        let mut picks = vec![LabelPick::Index(0); n_rows];
        let features = &*features;
        {
            // Row-aligned pairs of (scores, label) so threads can split them.
            let mut rows: Vec<(&mut [f32], &mut LabelPick)> =
                scores.chunks_mut(n_classes).zip(picks.iter_mut()).collect();
            for_row_chunks(n_rows, &mut rows, 1, &|first_row, count, chunk| {
                let x = &features[first_row * n_cols..(first_row + count) * n_cols];
                self.score_rows(x, n_cols, chunk);
            });
        }
        let label = self.labels.label_tensor(&picks)?;
        let probabilities = make_tensor(vec![n_rows, n_classes], TensorData::F32(scores))?;
        Ok((label, probabilities))
    }

    fn score_rows(&self, x: &[f32], n_cols: usize, out: &mut [(&mut [f32], &mut LabelPick)]) {
        let n_classes = self.forest.n_targets;
        let n_rows = out.len();
        let mut scores = vec![0f32; ROW_BLOCK.min(n_rows) * n_classes];
        let mut has = vec![false; scores.len()];
        for block_start in (0..n_rows).step_by(ROW_BLOCK) {
            let block_rows = ROW_BLOCK.min(n_rows - block_start);
            let scores = &mut scores[..block_rows * n_classes];
            let has = &mut has[..block_rows * n_classes];
            scores.fill(0.0);
            has.fill(false);
            for &root in &self.forest.roots {
                for row in 0..block_rows {
                    let features =
                        &x[(block_start + row) * n_cols..(block_start + row + 1) * n_cols];
                    let leaf = self.forest.leaf(root, features);
                    for weight in self.forest.leaf_weights(leaf) {
                        let cell = row * n_classes + weight.target as usize;
                        scores[cell] += weight.value;
                        has[cell] = true;
                    }
                }
            }
            for row in 0..block_rows {
                let range = row * n_classes..(row + 1) * n_classes;
                let (out_scores, out_pick) = &mut out[block_start + row];
                let pick = if n_classes == 2 {
                    let mut row_scores = [scores[range.start], scores[range.start + 1]];
                    let mut row_has = [has[range.start], has[range.start + 1]];
                    let mut row_out = [0f32; 2];
                    let pick = self.finalize_binary(&mut row_scores, &mut row_has, &mut row_out);
                    out_scores.copy_from_slice(&row_out);
                    pick
                } else {
                    self.finalize_multiclass(
                        &mut scores[range.clone()],
                        &mut has[range],
                        out_scores,
                    )
                };
                **out_pick = pick;
            }
        }
    }

    fn finalize_multiclass(
        &self,
        scores: &mut [f32],
        has: &mut [bool],
        out: &mut [f32],
    ) -> LabelPick {
        for (k, &base) in self.base_values.iter().enumerate() {
            if has[k] {
                scores[k] += base;
            } else {
                has[k] = true;
                scores[k] = base;
            }
        }
        let mut best: Option<usize> = None;
        let mut best_score = 0f32;
        for k in 0..scores.len() {
            if has[k] && (best.is_none() || scores[k] > best_score) {
                best = Some(k);
                best_score = scores[k];
            }
        }
        for (k, value) in out.iter_mut().enumerate() {
            *value = if has[k] { scores[k] } else { 0.0 };
        }
        self.post.apply_row(out);
        LabelPick::Index(best.unwrap_or(0))
    }

    /// onnxruntime's two-class finalization, including its handling of a
    /// single weight column (the margin of class 1) and of `base_values`.
    fn finalize_binary(
        &self,
        score: &mut [f32; 2],
        has: &mut [bool; 2],
        out: &mut [f32; 2],
    ) -> LabelPick {
        let mut write_additional: i32 = -1;
        let mut n_scores = 2;
        match self.base_values.len() {
            2 => {
                if has[1] {
                    score[1] = self.base_values[1] + score[0];
                    score[0] = -score[1];
                    has[1] = true;
                } else {
                    score[1] += self.base_values[1];
                    score[0] += self.base_values[0];
                }
            }
            1 => {
                score[0] += self.base_values[0];
                if !has[1] {
                    n_scores = 1;
                }
            }
            _ => {
                write_additional = 3;
                if !has[1] {
                    n_scores = 1;
                }
            }
        }
        let positive = if n_scores == 2 && has[1] {
            score[1]
        } else if has[0] {
            score[0]
        } else {
            0.0
        };
        let pick = if self.binary_case {
            if self.weights_are_all_positive {
                if positive > 0.5 {
                    write_additional = 0;
                    LabelPick::Index(1)
                } else {
                    write_additional = 1;
                    LabelPick::Index(0)
                }
            } else if positive > 0.0 {
                write_additional = 2;
                LabelPick::Index(1)
            } else {
                write_additional = 3;
                LabelPick::Index(0)
            }
        } else if positive > 0.0 {
            LabelPick::Raw(1)
        } else {
            LabelPick::Raw(0)
        };

        let read = |k: usize| if has[k] { score[k] } else { 0.0 };
        if n_scores == 2 {
            *out = [read(0), read(1)];
            self.post.apply_row(out);
            return pick;
        }
        let s = read(0);
        *out = if self.post == PostTransform::Probit {
            [probit(s), 0.0]
        } else {
            match write_additional {
                0 | 1 => [1.0 - s, s],
                2 | 3 if self.post == PostTransform::Logistic => [logistic(-s), logistic(s)],
                2 | 3 => [-s, s],
                _ => [s, 0.0],
            }
        };
        pick
    }
}
