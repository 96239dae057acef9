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

use keel_core::tensor::{Tensor, TensorData};

use crate::error::{invalid_input, OnnxError};
use crate::ops::attrs::NodeAttrs;
use crate::ops::post::{logistic, probit, PostTransform};
use crate::tensors::{as_f32, as_i64, make_tensor};

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
        for root in root_indices {
            let flat_root =
                forest.flatten_tree(root, raw_nodes, &index_of, &leaf_weights, attrs)?;
            forest.roots.push(flat_root);
        }
        Ok(forest)
    }

    /// Appends the tree rooted at `root` in depth-first order; returns the
    /// flat index of its root. A node reached twice (a cycle or a shared
    /// subtree) is refused, so every walk ends.
    fn flatten_tree(
        &mut self,
        root: usize,
        raw_nodes: &[RawNode],
        index_of: &HashMap<(i64, i64), usize>,
        leaf_weights: &[Vec<LeafWeight>],
        attrs: &NodeAttrs<'_>,
    ) -> Result<u32, OnnxError> {
        let tree_id = raw_nodes[root].tree_id;
        let mut seen: HashMap<usize, ()> = HashMap::new();
        // (raw index, flat index of the parent slot to patch, is true child)
        let mut stack: Vec<(usize, Option<(usize, bool)>)> = vec![(root, None)];
        let first_flat = self.nodes.len();
        while let Some((raw_index, parent)) = stack.pop() {
            if seen.insert(raw_index, ()).is_some() {
                return Err(attrs.error(format!(
                    "tree {tree_id} is not a tree: node {} is reached twice",
                    raw_nodes[raw_index].node_id
                )));
            }
            let flat_index = self.nodes.len();
            if let Some((parent_flat, is_true)) = parent {
                let parent_node = &mut self.nodes[parent_flat];
                if is_true {
                    parent_node.first = flat_index as u32;
                } else {
                    parent_node.second = flat_index as u32;
                }
            }
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

// ---------------------------------------------------------------- regressor

#[derive(Debug)]
pub(crate) struct TreeRegressor {
    forest: Forest,
    aggregate: Aggregate,
    post: PostTransform,
    base_values: Vec<f32>,
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

// ---------------------------------------------------------------- classifier

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

// ---------------------------------------------------------------- attributes

/// Reads `name` as floats, or `name_as_tensor` (doubles, narrowed to f32).
fn floats_or_tensor(attrs: &NodeAttrs<'_>, name: &str) -> Result<Vec<f32>, OnnxError> {
    if let Some(values) = attrs.floats(name)? {
        return Ok(values);
    }
    match attrs.tensor(&format!("{name}_as_tensor"))? {
        Some(tensor) => Ok(as_f32(tensor.data())?.into_owned()),
        None => Ok(Vec::new()),
    }
}

fn same_length(
    attrs: &NodeAttrs<'_>,
    expected: usize,
    lengths: &[(&str, usize)],
) -> Result<(), OnnxError> {
    for (name, len) in lengths {
        if *len != expected {
            return Err(attrs.error(format!("{name} has {len} values, expected {expected}")));
        }
    }
    Ok(())
}

/// The nodes of a `TreeEnsembleClassifier`/`TreeEnsembleRegressor`.
fn raw_nodes_v1(attrs: &NodeAttrs<'_>) -> Result<Vec<RawNode>, OnnxError> {
    let tree_ids = attrs.ints_or_empty("nodes_treeids")?;
    let node_ids = attrs.ints_or_empty("nodes_nodeids")?;
    let features = attrs.ints_or_empty("nodes_featureids")?;
    let modes = attrs.strings_or_empty("nodes_modes")?;
    let true_ids = attrs.ints_or_empty("nodes_truenodeids")?;
    let false_ids = attrs.ints_or_empty("nodes_falsenodeids")?;
    let thresholds = floats_or_tensor(attrs, "nodes_values")?;
    let missing = attrs.ints_or_empty("nodes_missing_value_tracks_true")?;
    let n = tree_ids.len();
    same_length(
        attrs,
        n,
        &[
            ("nodes_nodeids", node_ids.len()),
            ("nodes_featureids", features.len()),
            ("nodes_modes", modes.len()),
            ("nodes_truenodeids", true_ids.len()),
            ("nodes_falsenodeids", false_ids.len()),
            ("nodes_values", thresholds.len()),
        ],
    )?;
    if !missing.is_empty() && missing.len() != n {
        return Err(attrs.error(format!(
            "nodes_missing_value_tracks_true has {} values, expected {n}",
            missing.len()
        )));
    }
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let mode = NodeMode::parse(&modes[i]).ok_or_else(|| {
            attrs.error(format!(
                "unknown node mode {}",
                String::from_utf8_lossy(&modes[i])
            ))
        })?;
        nodes.push(RawNode {
            tree_id: tree_ids[i],
            node_id: node_ids[i],
            feature: features[i],
            threshold: thresholds[i],
            mode,
            true_id: true_ids[i],
            false_id: false_ids[i],
            missing_tracks_true: missing.get(i) == Some(&1),
        });
    }
    Ok(nodes)
}

/// The leaf weights of a v1 ensemble; `prefix` is `class` or `target`.
fn raw_weights_v1(attrs: &NodeAttrs<'_>, prefix: &str) -> Result<Vec<RawWeight>, OnnxError> {
    let tree_ids = attrs.ints_or_empty(&format!("{prefix}_treeids"))?;
    let node_ids = attrs.ints_or_empty(&format!("{prefix}_nodeids"))?;
    let targets = attrs.ints_or_empty(&format!("{prefix}_ids"))?;
    let values = floats_or_tensor(attrs, &format!("{prefix}_weights"))?;
    let n = tree_ids.len();
    same_length(
        attrs,
        n,
        &[
            (&format!("{prefix}_nodeids"), node_ids.len()),
            (&format!("{prefix}_ids"), targets.len()),
            (&format!("{prefix}_weights"), values.len()),
        ],
    )?;
    Ok((0..n)
        .map(|i| RawWeight {
            tree_id: tree_ids[i],
            node_id: node_ids[i],
            target: targets[i],
            value: values[i],
        })
        .collect())
}

// ---------------------------------------------------------------- TreeEnsemble (ml opset 5)

/// `TreeEnsemble` from ai.onnx.ml opset 5: leaves are separate from nodes,
/// thresholds and weights are tensors, and `BRANCH_MEMBER` tests set
/// membership. Compiled onto the same flattened forest (as a regressor);
/// set-membership nodes are refused.
pub(crate) fn compile_tree_ensemble_v5(attrs: &NodeAttrs<'_>) -> Result<TreeRegressor, OnnxError> {
    let features = attrs.ints_or_empty("nodes_featureids")?;
    let splits = attrs
        .tensor("nodes_splits")?
        .ok_or_else(|| attrs.error("nodes_splits is missing"))?;
    let splits = as_f32(splits.data())?.into_owned();
    let modes = attrs
        .tensor("nodes_modes")?
        .ok_or_else(|| attrs.error("nodes_modes is missing"))?;
    let modes = as_i64(modes.data())?.into_owned();
    let true_ids = attrs.ints_or_empty("nodes_truenodeids")?;
    let true_leafs = attrs.ints_or_empty("nodes_trueleafs")?;
    let false_ids = attrs.ints_or_empty("nodes_falsenodeids")?;
    let false_leafs = attrs.ints_or_empty("nodes_falseleafs")?;
    let missing = attrs.ints_or_empty("nodes_missing_value_tracks_true")?;
    let leaf_targets = attrs.ints_or_empty("leaf_targetids")?;
    let leaf_weights = attrs
        .tensor("leaf_weights")?
        .ok_or_else(|| attrs.error("leaf_weights is missing"))?;
    let leaf_weights = as_f32(leaf_weights.data())?.into_owned();
    let tree_roots = attrs.ints_or_empty("tree_roots")?;
    let n_targets = attrs.int_or("n_targets", 1)?;
    let n_nodes = features.len();
    same_length(
        attrs,
        n_nodes,
        &[
            ("nodes_splits", splits.len()),
            ("nodes_modes", modes.len()),
            ("nodes_truenodeids", true_ids.len()),
            ("nodes_trueleafs", true_leafs.len()),
            ("nodes_falsenodeids", false_ids.len()),
            ("nodes_falseleafs", false_leafs.len()),
        ],
    )?;
    same_length(
        attrs,
        leaf_targets.len(),
        &[("leaf_weights", leaf_weights.len())],
    )?;
    if !missing.is_empty() && missing.len() != n_nodes {
        return Err(attrs.error("nodes_missing_value_tracks_true has the wrong length"));
    }
    let n_targets = usize::try_from(n_targets)
        .ok()
        .filter(|&n| n > 0 && n < 1 << 20)
        .ok_or_else(|| attrs.error(format!("n_targets must be positive, got {n_targets}")))?;

    // Re-spell as v1 nodes: branch k keeps id k, leaf j becomes id n_nodes + j,
    // and every tree gets its own tree id so ids resolve per tree.
    let leaf_id = |j: i64| -> Result<i64, OnnxError> {
        usize::try_from(j)
            .ok()
            .filter(|&j| j < leaf_targets.len())
            .map(|j| (n_nodes + j) as i64)
            .ok_or_else(|| attrs.error(format!("leaf {j} does not exist")))
    };
    let node_id = |k: i64| -> Result<i64, OnnxError> {
        usize::try_from(k)
            .ok()
            .filter(|&k| k < n_nodes)
            .map(|k| k as i64)
            .ok_or_else(|| attrs.error(format!("node {k} does not exist")))
    };
    let mut raw_nodes = Vec::new();
    let mut raw_weights = Vec::new();
    for (tree, &root) in tree_roots.iter().enumerate() {
        let tree = tree as i64;
        // Walk the tree to emit its nodes; the walk is bounded because
        // Forest::build refuses any node reached twice.
        let mut stack = vec![(root, false)];
        let mut emitted = std::collections::HashSet::new();
        while let Some((id, is_leaf)) = stack.pop() {
            let resolved = if is_leaf { leaf_id(id)? } else { node_id(id)? };
            if !emitted.insert(resolved) {
                continue;
            }
            if emitted.len() > n_nodes + leaf_targets.len() {
                return Err(attrs.error("tree walk does not end"));
            }
            if is_leaf {
                let j = (resolved as usize) - n_nodes;
                raw_nodes.push(RawNode {
                    tree_id: tree,
                    node_id: resolved,
                    feature: 0,
                    threshold: 0.0,
                    mode: NodeMode::Leaf,
                    true_id: 0,
                    false_id: 0,
                    missing_tracks_true: false,
                });
                raw_weights.push(RawWeight {
                    tree_id: tree,
                    node_id: resolved,
                    target: leaf_targets[j],
                    value: leaf_weights[j],
                });
                continue;
            }
            let k = resolved as usize;
            let mode = match modes[k] {
                0 => NodeMode::Leq,
                1 => NodeMode::Lt,
                2 => NodeMode::Gte,
                3 => NodeMode::Gt,
                4 => NodeMode::Eq,
                5 => NodeMode::Neq,
                6 => {
                    return Err(OnnxError::UnsupportedModel(
                        "TreeEnsemble nodes with BRANCH_MEMBER are not supported".into(),
                    ))
                }
                other => return Err(attrs.error(format!("unknown node mode {other}"))),
            };
            let true_resolved = if true_leafs[k] != 0 {
                leaf_id(true_ids[k])?
            } else {
                node_id(true_ids[k])?
            };
            let false_resolved = if false_leafs[k] != 0 {
                leaf_id(false_ids[k])?
            } else {
                node_id(false_ids[k])?
            };
            raw_nodes.push(RawNode {
                tree_id: tree,
                node_id: resolved,
                feature: features[k],
                threshold: splits[k],
                mode,
                true_id: true_resolved,
                false_id: false_resolved,
                missing_tracks_true: missing.get(k) == Some(&1),
            });
            stack.push((false_ids[k], false_leafs[k] != 0));
            stack.push((true_ids[k], true_leafs[k] != 0));
        }
    }
    let forest = Forest::build(&raw_nodes, &raw_weights, n_targets, attrs)?;
    let aggregate = Aggregate::from_code(attrs.int_or("aggregate_function", 1)?)
        .ok_or_else(|| attrs.error("unknown aggregate_function"))?;
    let post = PostTransform::from_code(attrs.int_or("post_transform", 0)?)?;
    Ok(TreeRegressor {
        forest,
        aggregate,
        post,
        base_values: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{attribute_type, AttributeProto, NodeProto};

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
