//! Tree ensembles: `TreeEnsembleClassifier` and `TreeEnsembleRegressor`
//! (ai.onnx.ml 1-3) and `TreeEnsemble` (ai.onnx.ml 5).
//!
//! At load, every tree is flattened into one array of 16-byte nodes laid out
//! in depth-first order from its root (so a child always sits after its
//! parent, which both bounds every walk and keeps a path's nodes close in
//! memory). Leaves point at a range of `(target, weight)` pairs. Scores are
//! accumulated in f32, tree by tree in model order, and finalized with
//! onnxruntime's exact rules (base values, binary classifiers that carry a
//! single weight column, `post_transform`), so results agree with it.

use std::collections::HashMap;

use keel_core::tensor::Tensor;

use crate::error::{invalid_input, OnnxError};
use crate::ops::attrs::NodeAttrs;
use crate::tensors::as_f32;

mod attributes;
mod classifier;
mod regressor;

pub(crate) use attributes::compile_tree_ensemble_v5;
pub(crate) use classifier::{ClassLabels, LabelPick, TreeClassifier};
pub(crate) use regressor::TreeRegressor;

const FEATURE_BITS: u32 = 28;
const FEATURE_MASK: u32 = (1 << FEATURE_BITS) - 1;
const MODE_SHIFT: u32 = FEATURE_BITS;
const MODE_MASK: u32 = 0b111;
const MISSING_TRACKS_TRUE: u32 = 1 << 31;

/// Comparison a branch node applies: go to the true child when
/// `x <op> threshold` (or when x is NaN and the node tracks missing as true).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum NodeMode {
    Leq = 0,
    Lt = 1,
    Gte = 2,
    Gt = 3,
    Eq = 4,
    Neq = 5,
    Leaf = 6,
}

impl NodeMode {
    fn parse(name: &[u8]) -> Option<NodeMode> {
        Some(match name {
            b"BRANCH_LEQ" => NodeMode::Leq,
            b"BRANCH_LT" => NodeMode::Lt,
            b"BRANCH_GTE" => NodeMode::Gte,
            b"BRANCH_GT" => NodeMode::Gt,
            b"BRANCH_EQ" => NodeMode::Eq,
            b"BRANCH_NEQ" => NodeMode::Neq,
            b"LEAF" => NodeMode::Leaf,
            _ => return None,
        })
    }
}

const LEAF_CODE: u32 = NodeMode::Leaf as u32;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Branch: the threshold. Leaf: its first weight (the fast path for
    /// single-target ensembles, as in onnxruntime).
    value: f32,
    /// Feature id (low 28 bits), mode (3 bits), missing-tracks-true (top bit).
    packed: u32,
    /// Branch: index of the true child. Leaf: index of its first weight.
    first: u32,
    /// Branch: index of the false child. Leaf: number of weights.
    second: u32,
}

impl Node {
    #[inline(always)]
    fn mode(self) -> u32 {
        (self.packed >> MODE_SHIFT) & MODE_MASK
    }
}

#[derive(Debug, Clone, Copy)]
struct LeafWeight {
    target: u32,
    value: f32,
}

/// One node as a model spells it, before flattening.
pub(crate) struct RawNode {
    pub tree_id: i64,
    pub node_id: i64,
    pub feature: i64,
    pub threshold: f32,
    pub mode: NodeMode,
    pub true_id: i64,
    pub false_id: i64,
    pub missing_tracks_true: bool,
}

/// One leaf weight as a model spells it.
pub(crate) struct RawWeight {
    pub tree_id: i64,
    pub node_id: i64,
    pub target: i64,
    pub value: f32,
}

/// What flattening a tree reads.
#[derive(Clone, Copy)]
struct FlattenContext<'a, 'b> {
    raw_nodes: &'a [RawNode],
    index_of: &'a HashMap<(i64, i64), usize>,
    leaf_weights: &'a [Vec<LeafWeight>],
    attrs: &'a NodeAttrs<'b>,
}

/// The flattened forest, shared by the classifier and the regressor.
#[derive(Debug)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    weights: Vec<LeafWeight>,
    n_targets: usize,
    /// Smallest number of input columns every path can read from.
    n_features: usize,
}

impl Forest {
    pub(crate) fn build(
        raw_nodes: &[RawNode],
        raw_weights: &[RawWeight],
        n_targets: usize,
        attrs: &NodeAttrs<'_>,
    ) -> Result<Forest, OnnxError> {
        if raw_nodes.is_empty() {
            return Err(attrs.error("the ensemble has no nodes"));
        }
        if raw_nodes.len() >= u32::MAX as usize / 2 {
            return Err(attrs.error("the ensemble has too many nodes"));
        }
        let mut index_of: HashMap<(i64, i64), usize> = HashMap::with_capacity(raw_nodes.len());
        for (index, node) in raw_nodes.iter().enumerate() {
            if index_of
                .insert((node.tree_id, node.node_id), index)
                .is_some()
            {
                return Err(attrs.error(format!(
                    "node {} of tree {} is defined twice",
                    node.node_id, node.tree_id
                )));
            }
        }
        // Leaf weights, grouped per node in model order.
        let mut leaf_weights: Vec<Vec<LeafWeight>> = vec![Vec::new(); raw_nodes.len()];
        for weight in raw_weights {
            let Some(&index) = index_of.get(&(weight.tree_id, weight.node_id)) else {
                return Err(attrs.error(format!(
                    "a weight refers to node {} of tree {}, which does not exist",
                    weight.node_id, weight.tree_id
                )));
            };
            let target = usize::try_from(weight.target)
                .ok()
                .filter(|&target| target < n_targets)
                .ok_or_else(|| {
                    attrs.error(format!(
                        "a weight targets class or target {} but there are only {n_targets}",
                        weight.target
                    ))
                })?;
            // onnxruntime ignores weights attached to branch nodes.
            if raw_nodes[index].mode == NodeMode::Leaf {
                leaf_weights[index].push(LeafWeight {
                    target: target as u32,
                    value: weight.value,
                });
            }
        }

        // A tree starts wherever the tree id changes (onnxruntime's rule).
        let mut root_indices = Vec::new();
        let mut previous_tree = None;
        for (index, node) in raw_nodes.iter().enumerate() {
            if previous_tree != Some(node.tree_id) {
                root_indices.push(index);
            }
            previous_tree = Some(node.tree_id);
        }

        let mut forest = Forest {
            nodes: Vec::with_capacity(raw_nodes.len()),
            roots: Vec::with_capacity(root_indices.len()),
            weights: Vec::with_capacity(raw_weights.len()),
            n_targets,
            n_features: 0,
        };
        // Where each raw node landed and in which walk, so a tree whose id
        // reappears later (onnxruntime then walks it again from that node)
        // reuses its nodes instead of copying them: memory stays linear.
        let mut placed: Vec<Option<(u32, usize)>> = vec![None; raw_nodes.len()];
        let context = FlattenContext {
            raw_nodes,
            index_of: &index_of,
            leaf_weights: &leaf_weights,
            attrs,
        };
        for (walk, root) in root_indices.into_iter().enumerate() {
            let flat_root = match placed[root] {
                Some((flat, _)) => flat,
                None => forest.flatten_tree(root, walk, &mut placed, &context)?,
            };
            forest.roots.push(flat_root);
        }
        Ok(forest)
    }

    /// Appends the tree rooted at `root` in depth-first order; returns the
    /// flat index of its root. A node reached twice in one walk (a cycle or
    /// a shared subtree) is refused, so every walk ends; a node placed by an
    /// earlier walk is linked to, not copied.
    fn flatten_tree(
        &mut self,
        root: usize,
        walk: usize,
        placed: &mut [Option<(u32, usize)>],
        context: &FlattenContext<'_, '_>,
    ) -> Result<u32, OnnxError> {
        let FlattenContext {
            raw_nodes,
            index_of,
            leaf_weights,
            attrs,
        } = *context;
        let tree_id = raw_nodes[root].tree_id;
        // (raw index, flat index of the parent slot to patch, is true child)
        let mut stack: Vec<(usize, Option<(usize, bool)>)> = vec![(root, None)];
        let first_flat = self.nodes.len();
        while let Some((raw_index, parent)) = stack.pop() {
            let flat_index = match placed[raw_index] {
                Some((_, earlier_walk)) if earlier_walk == walk => {
                    return Err(attrs.error(format!(
                        "tree {tree_id} is not a tree: node {} is reached twice",
                        raw_nodes[raw_index].node_id
                    )));
                }
                Some((flat, _)) => flat as usize,
                None => self.nodes.len(),
            };
            if let Some((parent_flat, is_true)) = parent {
                let parent_node = &mut self.nodes[parent_flat];
                if is_true {
                    parent_node.first = flat_index as u32;
                } else {
                    parent_node.second = flat_index as u32;
                }
            }
            if flat_index < self.nodes.len() {
                continue; // placed by an earlier walk
            }
            placed[raw_index] = Some((flat_index as u32, walk));
            let raw = &raw_nodes[raw_index];
            if raw.mode == NodeMode::Leaf {
                let weights = &leaf_weights[raw_index];
                let Some(first_weight) = weights.first() else {
                    return Err(attrs.error(format!(
                        "leaf {} of tree {tree_id} has no weight",
                        raw.node_id
                    )));
                };
                self.nodes.push(Node {
                    value: first_weight.value,
                    packed: LEAF_CODE << MODE_SHIFT,
                    first: self.weights.len() as u32,
                    second: weights.len() as u32,
                });
                self.weights.extend_from_slice(weights);
                continue;
            }
            let feature = u32::try_from(raw.feature)
                .ok()
                .filter(|&feature| feature <= FEATURE_MASK)
                .ok_or_else(|| {
                    attrs.error(format!(
                        "node {} of tree {tree_id} reads feature {}, which is out of range",
                        raw.node_id, raw.feature
                    ))
                })?;
            self.n_features = self.n_features.max(feature as usize + 1);
            let child = |id: i64, which: &str| {
                index_of.get(&(tree_id, id)).copied().ok_or_else(|| {
                    attrs.error(format!(
                        "node {} of tree {tree_id} has {which} child {id}, which does not exist",
                        raw.node_id
                    ))
                })
            };
            let true_child = child(raw.true_id, "true")?;
            let false_child = child(raw.false_id, "false")?;
            let missing = if raw.missing_tracks_true {
                MISSING_TRACKS_TRUE
            } else {
                0
            };
            self.nodes.push(Node {
                value: raw.threshold,
                packed: feature | ((raw.mode as u32) << MODE_SHIFT) | missing,
                first: 0,
                second: 0,
            });
            // Pop the true child first so it lands right after its parent.
            stack.push((false_child, Some((flat_index, false))));
            stack.push((true_child, Some((flat_index, true))));
        }
        Ok(first_flat as u32)
    }

    /// The leaf `row` reaches in the tree rooted at `root`.
    #[inline]
    fn leaf(&self, root: u32, row: &[f32]) -> Node {
        let mut node = self.nodes[root as usize];
        loop {
            let mode = node.mode();
            if mode == LEAF_CODE {
                return node;
            }
            let x = row[(node.packed & FEATURE_MASK) as usize];
            let threshold = node.value;
            let go_true = match mode {
                0 => x <= threshold,
                1 => x < threshold,
                2 => x >= threshold,
                3 => x > threshold,
                4 => x == threshold,
                _ => x != threshold,
            } || (node.packed & MISSING_TRACKS_TRUE != 0 && x.is_nan());
            node = self.nodes[if go_true { node.first } else { node.second } as usize];
        }
    }

    fn leaf_weights(&self, leaf: Node) -> &[LeafWeight] {
        let start = leaf.first as usize;
        &self.weights[start..start + leaf.second as usize]
    }

    pub(crate) fn n_trees(&self) -> usize {
        self.roots.len()
    }
}

/// How a regressor combines the trees' leaf values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

impl Aggregate {
    fn parse(name: &str) -> Result<Aggregate, String> {
        Ok(match name {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => return Err(format!("unknown aggregate_function {other}")),
        })
    }

    fn from_code(code: i64) -> Option<Aggregate> {
        Some(match code {
            0 => Aggregate::Average,
            1 => Aggregate::Sum,
            2 => Aggregate::Min,
            3 => Aggregate::Max,
            _ => return None,
        })
    }
}

/// Rows per block: every tree is walked for a block of rows before moving
/// on, which keeps the tree in cache (onnxruntime uses the same size).
const ROW_BLOCK: usize = 128;
/// Batches at least this large are split across threads.
const PARALLEL_ROWS: usize = 1024;

/// Reads the input as rows of f32 features, checking every path can read.
fn feature_rows<'t>(
    x: &'t Tensor,
    forest: &Forest,
) -> Result<(std::borrow::Cow<'t, [f32]>, usize, usize), OnnxError> {
    let (n_rows, n_cols) = match x.shape() {
        [cols] => (1, *cols),
        [rows, cols] => (*rows, *cols),
        shape => {
            return Err(invalid_input(format!(
                "tree ensembles take a [rows, features] tensor, got shape {shape:?}"
            )))
        }
    };
    if n_cols < forest.n_features {
        return Err(invalid_input(format!(
            "the trees read feature {} but the input has {n_cols} features",
            forest.n_features - 1
        )));
    }
    Ok((as_f32(x.data())?, n_rows, n_cols))
}

/// Runs `work(first_row, rows, out_chunk)` over the batch, in blocks of rows
/// on scoped threads when the batch is large.
fn for_row_chunks<T: Send>(
    n_rows: usize,
    out: &mut [T],
    out_per_row: usize,
    work: &(dyn Fn(usize, usize, &mut [T]) + Sync),
) {
    let threads = if n_rows >= PARALLEL_ROWS {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(n_rows / (PARALLEL_ROWS / 4))
    } else {
        1
    };
    if threads <= 1 || out_per_row == 0 {
        work(0, n_rows, out);
        return;
    }
    let rows_per_thread = n_rows.div_ceil(threads);
    std::thread::scope(|scope| {
        for (chunk_index, chunk) in out.chunks_mut(rows_per_thread * out_per_row).enumerate() {
            let first_row = chunk_index * rows_per_thread;
            let rows = chunk.len() / out_per_row;
            scope.spawn(move || work(first_row, rows, chunk));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::post::logistic;
    use crate::proto::{attribute_type, AttributeProto, NodeProto};
    use keel_core::tensor::TensorData;

    fn ints(name: &str, values: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: attribute_type::INTS,
            ints: values.to_vec(),
            ..Default::default()
        }
    }

    fn floats(name: &str, values: &[f32]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: attribute_type::FLOATS,
            floats: values.to_vec(),
            ..Default::default()
        }
    }

    fn strings(name: &str, values: &[&str]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: attribute_type::STRINGS,
            strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    fn string(name: &str, value: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: attribute_type::STRING,
            s: value.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    /// One stump on feature 0 at 0.5 with `mode`; true leaf weighs 10, false leaf 20.
    fn stump(mode: &str, missing_tracks_true: bool) -> NodeProto {
        NodeProto {
            op_type: "TreeEnsembleRegressor".into(),
            domain: "ai.onnx.ml".into(),
            attribute: vec![
                AttributeProto {
                    name: "n_targets".into(),
                    r#type: attribute_type::INT,
                    i: 1,
                    ..Default::default()
                },
                ints("nodes_treeids", &[0, 0, 0]),
                ints("nodes_nodeids", &[0, 1, 2]),
                ints("nodes_featureids", &[0, 0, 0]),
                strings("nodes_modes", &[mode, "LEAF", "LEAF"]),
                ints("nodes_truenodeids", &[1, 0, 0]),
                ints("nodes_falsenodeids", &[2, 0, 0]),
                floats("nodes_values", &[0.5, 0.0, 0.0]),
                ints(
                    "nodes_missing_value_tracks_true",
                    &[i64::from(missing_tracks_true), 0, 0],
                ),
                ints("target_treeids", &[0, 0]),
                ints("target_nodeids", &[1, 2]),
                ints("target_ids", &[0, 0]),
                floats("target_weights", &[10.0, 20.0]),
            ],
            ..Default::default()
        }
    }

    fn predict(node: &NodeProto, x: &[f32]) -> Vec<f32> {
        let regressor = TreeRegressor::compile(&NodeAttrs::new(node)).unwrap();
        let input = Tensor::new(vec![x.len(), 1], TensorData::F32(x.to_vec())).unwrap();
        match regressor.run(&input).unwrap().into_parts().1 {
            TensorData::F32(values) => values,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_branch_mode_compares_as_named() {
        let x = [0.0, 0.5, 1.0];
        let cases = [
            ("BRANCH_LEQ", [10.0, 10.0, 20.0]),
            ("BRANCH_LT", [10.0, 20.0, 20.0]),
            ("BRANCH_GTE", [20.0, 10.0, 10.0]),
            ("BRANCH_GT", [20.0, 20.0, 10.0]),
            ("BRANCH_EQ", [20.0, 10.0, 20.0]),
            ("BRANCH_NEQ", [10.0, 20.0, 10.0]),
        ];
        for (mode, expected) in cases {
            assert_eq!(predict(&stump(mode, false), &x), expected, "{mode}");
        }
    }

    #[test]
    fn nan_follows_missing_value_tracks_true() {
        assert_eq!(predict(&stump("BRANCH_LEQ", false), &[f32::NAN]), [20.0]);
        assert_eq!(predict(&stump("BRANCH_LEQ", true), &[f32::NAN]), [10.0]);
        // NEQ is true for NaN regardless.
        assert_eq!(predict(&stump("BRANCH_NEQ", false), &[f32::NAN]), [10.0]);
    }

    #[test]
    fn aggregates_and_base_values_apply() {
        let mut node = stump("BRANCH_LEQ", false);
        node.attribute.push(floats("base_values", &[1.0]));
        assert_eq!(predict(&node, &[0.0]), [11.0]);
        node.attribute.push(string("aggregate_function", "AVERAGE"));
        assert_eq!(predict(&node, &[1.0]), [21.0]);
    }

    #[test]
    fn out_of_range_children_and_cycles_are_refused() {
        let mut node = stump("BRANCH_LEQ", false);
        for attr in &mut node.attribute {
            if attr.name == "nodes_truenodeids" {
                attr.ints = vec![7, 0, 0];
            }
        }
        let err = TreeRegressor::compile(&NodeAttrs::new(&node)).unwrap_err();
        assert!(err.to_string().contains("true child 7"), "{err}");

        let mut node = stump("BRANCH_LEQ", false);
        for attr in &mut node.attribute {
            if attr.name == "nodes_truenodeids" {
                attr.ints = vec![0, 0, 0];
            }
        }
        let err = TreeRegressor::compile(&NodeAttrs::new(&node)).unwrap_err();
        assert!(err.to_string().contains("reached twice"), "{err}");

        let mut node = stump("BRANCH_LEQ", false);
        for attr in &mut node.attribute {
            if attr.name == "nodes_featureids" {
                attr.ints = vec![-3, 0, 0];
            }
        }
        assert!(TreeRegressor::compile(&NodeAttrs::new(&node)).is_err());
    }

    #[test]
    fn a_tree_id_that_reappears_is_walked_again_like_onnxruntime() {
        // Tree 0's leaves are listed after tree 1, so onnxruntime starts a
        // third walk at leaf (0, 1): its weight counts twice for every row.
        let node = NodeProto {
            op_type: "TreeEnsembleRegressor".into(),
            attribute: vec![
                AttributeProto {
                    name: "n_targets".into(),
                    r#type: attribute_type::INT,
                    i: 1,
                    ..Default::default()
                },
                ints("nodes_treeids", &[0, 1, 0, 0]),
                ints("nodes_nodeids", &[0, 0, 1, 2]),
                ints("nodes_featureids", &[0, 0, 0, 0]),
                strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF", "LEAF"]),
                ints("nodes_truenodeids", &[1, 0, 0, 0]),
                ints("nodes_falsenodeids", &[2, 0, 0, 0]),
                floats("nodes_values", &[0.5, 0.0, 0.0, 0.0]),
                ints("target_treeids", &[1, 0, 0]),
                ints("target_nodeids", &[0, 1, 2]),
                ints("target_ids", &[0, 0, 0]),
                floats("target_weights", &[5.0, 10.0, 20.0]),
            ],
            ..Default::default()
        };
        assert_eq!(predict(&node, &[0.0, 1.0]), [25.0, 35.0]);
        let regressor = TreeRegressor::compile(&NodeAttrs::new(&node)).unwrap();
        assert_eq!(
            regressor.forest.nodes.len(),
            4,
            "nodes are shared, not copied"
        );
    }

    #[test]
    fn missing_features_are_an_input_error() {
        let mut node = stump("BRANCH_LEQ", false);
        for attr in &mut node.attribute {
            if attr.name == "nodes_featureids" {
                attr.ints = vec![4, 0, 0];
            }
        }
        let regressor = TreeRegressor::compile(&NodeAttrs::new(&node)).unwrap();
        let input = Tensor::new(vec![1, 2], TensorData::F32(vec![0.0, 0.0])).unwrap();
        assert!(matches!(
            regressor.run(&input),
            Err(OnnxError::InvalidInput(_))
        ));
    }

    fn binary_classifier(
        weights: &[f32],
        base_values: Option<&[f32]>,
        post: &str,
    ) -> TreeClassifier {
        let mut attributes = vec![
            ints("classlabels_int64s", &[0, 1]),
            ints("nodes_treeids", &[0, 0, 0]),
            ints("nodes_nodeids", &[0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0]),
            strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF"]),
            ints("nodes_truenodeids", &[1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0]),
            floats("nodes_values", &[0.5, 0.0, 0.0]),
            ints("class_treeids", &[0, 0]),
            ints("class_nodeids", &[1, 2]),
            ints("class_ids", &[0, 0]),
            floats("class_weights", weights),
            string("post_transform", post),
        ];
        if let Some(base) = base_values {
            attributes.push(floats("base_values", base));
        }
        let node = NodeProto {
            op_type: "TreeEnsembleClassifier".into(),
            attribute: attributes,
            ..Default::default()
        };
        TreeClassifier::compile(&NodeAttrs::new(&node)).unwrap()
    }

    fn classify(classifier: &TreeClassifier, x: f32) -> (i64, Vec<f32>) {
        let input = Tensor::new(vec![1, 1], TensorData::F32(vec![x])).unwrap();
        let (label, scores) = classifier.run(&input).unwrap();
        let label = match label.data() {
            TensorData::I64(v) => v[0],
            other => panic!("unexpected {other:?}"),
        };
        let scores = match scores.into_parts().1 {
            TensorData::F32(v) => v,
            other => panic!("unexpected {other:?}"),
        };
        (label, scores)
    }

    #[test]
    fn binary_single_column_margin_follows_onnxruntime() {
        // Mixed-sign weights with LOGISTIC: [sigmoid(-s), sigmoid(s)].
        let classifier = binary_classifier(&[-2.0, 3.0], None, "LOGISTIC");
        let (label, scores) = classify(&classifier, 0.0);
        assert_eq!(label, 0);
        assert!((scores[1] - logistic(-2.0)).abs() < 1e-7);
        assert!((scores[0] - logistic(2.0)).abs() < 1e-7);
        let (label, scores) = classify(&classifier, 1.0);
        assert_eq!(label, 1);
        assert!((scores[1] - logistic(3.0)).abs() < 1e-7);

        // Mixed-sign weights without a transform: [-s, s].
        let classifier = binary_classifier(&[-2.0, 3.0], None, "NONE");
        assert_eq!(classify(&classifier, 1.0), (1, vec![-3.0, 3.0]));

        // All-positive weights are probabilities: [1 - p, p], threshold 0.5.
        let classifier = binary_classifier(&[0.25, 0.75], None, "NONE");
        assert_eq!(classify(&classifier, 0.0), (0, vec![0.75, 0.25]));
        assert_eq!(classify(&classifier, 1.0), (1, vec![0.25, 0.75]));

        // One base value is added to the margin before the transform.
        let classifier = binary_classifier(&[-2.0, 3.0], Some(&[1.5]), "LOGISTIC");
        let (label, scores) = classify(&classifier, 0.0);
        assert_eq!(label, 0);
        assert!((scores[1] - logistic(-0.5)).abs() < 1e-7);
    }
}
