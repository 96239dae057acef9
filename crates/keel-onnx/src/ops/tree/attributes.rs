//! Reading tree ensembles out of node attributes: the v1 spelling
//! (`TreeEnsembleClassifier`/`TreeEnsembleRegressor`) and ai.onnx.ml opset
//! 5's `TreeEnsemble`, both into [`RawNode`]s and [`RawWeight`]s.

use std::collections::HashMap;

use super::regressor::TreeRegressor;
use super::{Aggregate, Forest, NodeMode, RawNode, RawWeight};
use crate::error::OnnxError;
use crate::ops::attrs::NodeAttrs;
use crate::ops::post::PostTransform;
use crate::tensors::{as_f32, as_i64};

/// Reads `name` as floats, or `name_as_tensor` (doubles, narrowed to f32).
pub(super) fn floats_or_tensor(attrs: &NodeAttrs<'_>, name: &str) -> Result<Vec<f32>, OnnxError> {
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
pub(super) fn raw_nodes_v1(attrs: &NodeAttrs<'_>) -> Result<Vec<RawNode>, OnnxError> {
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
pub(super) fn raw_weights_v1(
    attrs: &NodeAttrs<'_>,
    prefix: &str,
) -> Result<Vec<RawWeight>, OnnxError> {
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
    let mut owner: HashMap<i64, i64> = HashMap::new();
    for (tree, &root) in tree_roots.iter().enumerate() {
        let tree = tree as i64;
        // Each node is emitted once (Forest::build then refuses a node
        // reached twice within a tree); trees must not share nodes, which
        // keeps the re-spelled list as long as the original.
        let mut stack = vec![(root, false)];
        while let Some((id, is_leaf)) = stack.pop() {
            let resolved = if is_leaf { leaf_id(id)? } else { node_id(id)? };
            match owner.insert(resolved, tree) {
                Some(previous) if previous == tree => continue,
                Some(_) => return Err(attrs.error(format!("trees share node {id}"))),
                None => {}
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
