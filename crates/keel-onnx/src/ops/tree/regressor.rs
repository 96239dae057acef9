//! `TreeEnsembleRegressor`: leaf values combined by SUM, AVERAGE, MIN or
//! MAX, plus base values and `post_transform`, as onnxruntime does.

use keel_core::tensor::{Tensor, TensorData};

use super::attributes::{floats_or_tensor, raw_nodes_v1, raw_weights_v1};
use super::{feature_rows, for_row_chunks, Aggregate, Forest, ROW_BLOCK};
use crate::error::OnnxError;
use crate::ops::attrs::NodeAttrs;
use crate::ops::post::{probit, PostTransform};
use crate::tensors::make_tensor;

#[derive(Debug)]
pub(crate) struct TreeRegressor {
    pub(super) forest: Forest,
    pub(super) aggregate: Aggregate,
    pub(super) post: PostTransform,
    pub(super) base_values: Vec<f32>,
}

impl TreeRegressor {
    pub(crate) fn compile(attrs: &NodeAttrs<'_>) -> Result<TreeRegressor, OnnxError> {
        let n_targets = attrs.int_or("n_targets", 0)?;
        let n_targets = usize::try_from(n_targets)
            .ok()
            .filter(|&n| n > 0 && n < 1 << 20)
            .ok_or_else(|| attrs.error(format!("n_targets must be positive, got {n_targets}")))?;
        let raw_nodes = raw_nodes_v1(attrs)?;
        let raw_weights = raw_weights_v1(attrs, "target")?;
        let forest = Forest::build(&raw_nodes, &raw_weights, n_targets, attrs)?;
        let aggregate = Aggregate::parse(&attrs.string_or("aggregate_function", "SUM")?)
            .map_err(|e| attrs.error(e))?;
        let post = PostTransform::parse(&attrs.string_or("post_transform", "NONE")?)
            .map_err(|e| attrs.error(e))?;
        let base_values = floats_or_tensor(attrs, "base_values")?;
        Ok(TreeRegressor {
            forest,
            aggregate,
            post,
            base_values,
        })
    }

    pub(crate) fn run(&self, x: &Tensor) -> Result<Tensor, OnnxError> {
        let (features, n_rows, n_cols) = feature_rows(x, &self.forest)?;
        let n_targets = self.forest.n_targets;
        let mut out = vec![0f32; n_rows * n_targets];
        let features = &*features;
        for_row_chunks(n_rows, &mut out, n_targets, &|first_row, rows, chunk| {
            let x = &features[first_row * n_cols..(first_row + rows) * n_cols];
            self.score_rows(x, n_cols, chunk);
        });
        make_tensor(vec![n_rows, n_targets], TensorData::F32(out))
    }

    fn score_rows(&self, x: &[f32], n_cols: usize, out: &mut [f32]) {
        let n_targets = self.forest.n_targets;
        let n_rows = out.len() / n_targets.max(1);
        let mut scores = vec![0f32; ROW_BLOCK.min(n_rows) * n_targets];
        let mut has = vec![false; scores.len()];
        for block_start in (0..n_rows).step_by(ROW_BLOCK) {
            let block_rows = ROW_BLOCK.min(n_rows - block_start);
            let scores = &mut scores[..block_rows * n_targets];
            let has = &mut has[..block_rows * n_targets];
            scores.fill(0.0);
            has.fill(false);
            for &root in &self.forest.roots {
                for row in 0..block_rows {
                    let features =
                        &x[(block_start + row) * n_cols..(block_start + row + 1) * n_cols];
                    let leaf = self.forest.leaf(root, features);
                    if n_targets == 1 {
                        accumulate_one(self.aggregate, &mut scores[row], &mut has[row], leaf.value);
                    } else {
                        let row_scores = &mut scores[row * n_targets..(row + 1) * n_targets];
                        let row_has = &mut has[row * n_targets..(row + 1) * n_targets];
                        for weight in self.forest.leaf_weights(leaf) {
                            let target = weight.target as usize;
                            accumulate_one(
                                self.aggregate,
                                &mut row_scores[target],
                                &mut row_has[target],
                                weight.value,
                            );
                        }
                    }
                }
            }
            for row in 0..block_rows {
                let range = row * n_targets..(row + 1) * n_targets;
                let out_row =
                    &mut out[(block_start + row) * n_targets..(block_start + row + 1) * n_targets];
                self.finalize(&mut scores[range.clone()], &has[range], out_row);
            }
        }
    }

    fn finalize(&self, scores: &mut [f32], has: &[bool], out: &mut [f32]) {
        let n_trees = self.forest.n_trees() as f32;
        if scores.len() == 1 {
            let origin = if self.base_values.len() == 1 {
                self.base_values[0]
            } else {
                0.0
            };
            let score = match self.aggregate {
                Aggregate::Sum => scores[0] + origin,
                Aggregate::Average => scores[0] / n_trees + origin,
                Aggregate::Min | Aggregate::Max => {
                    if has[0] {
                        scores[0] + origin
                    } else {
                        origin
                    }
                }
            };
            out[0] = if self.post == PostTransform::Probit {
                probit(score)
            } else {
                score
            };
            return;
        }
        let use_base = self.base_values.len() == scores.len();
        for (target, out_value) in out.iter_mut().enumerate() {
            let base = if use_base {
                self.base_values[target]
            } else {
                0.0
            };
            let score = match self.aggregate {
                Aggregate::Sum | Aggregate::Min | Aggregate::Max => scores[target] + base,
                Aggregate::Average => scores[target] / n_trees + base,
            };
            // onnxruntime reads a target no leaf reached as 0, base value or not.
            *out_value = if has[target] { score } else { 0.0 };
        }
        self.post.apply_row(out);
    }
}

#[inline(always)]
fn accumulate_one(aggregate: Aggregate, score: &mut f32, has: &mut bool, value: f32) {
    match aggregate {
        Aggregate::Sum | Aggregate::Average => *score += value,
        Aggregate::Min => {
            if !*has || value < *score {
                *score = value;
            }
        }
        Aggregate::Max => {
            if !*has || value > *score {
                *score = value;
            }
        }
    }
    *has = true;
}
