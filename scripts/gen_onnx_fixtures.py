#!/usr/bin/env python3
"""Generates the ONNX fixtures that keel-onnx's integration tests compare against.

Each fixture is a small model trained with a fixed seed on a synthetic tabular
data set, exported at the converters' default options, plus a JSON file with
the input rows and onnxruntime's outputs for them:

    crates/keel-onnx/tests/fixtures/NAME.onnx
    crates/keel-onnx/tests/fixtures/NAME.json

Run from the repository root:

    python3 -m venv /tmp/onnxgen
    /tmp/onnxgen/bin/pip install -r scripts/requirements-onnx-fixtures.txt
    /tmp/onnxgen/bin/python scripts/gen_onnx_fixtures.py

Versions used for the committed fixtures (also pinned in
scripts/requirements-onnx-fixtures.txt):
    scikit-learn 1.9.1, skl2onnx 1.20.0, onnxmltools 1.16.0, onnx 1.23.2,
    onnxruntime 1.32.0, xgboost 3.2.0, lightgbm 4.7.0, numpy 2.4.6

JSON layout: {"model": NAME, "inputs": [TENSOR...], "outputs": [TENSOR...]}
with TENSOR = {"name", "datatype" (FP32, INT64, BYTES, ...), "shape", "data"};
floats that JSON cannot spell are written as the strings "NaN", "Infinity",
"-Infinity". A ZipMap output (a list of {label: probability} dicts) is written
as an FP32 [N, C] tensor whose columns follow the ZipMap's class-label order,
which is how keel-onnx returns it.

onnxmltools names graph nodes randomly, so its .onnx files change bytes on
every run while their outputs (the .json files) do not; keep the committed
.onnx files unless the models themselves change.
"""

import json
import math
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

warnings.filterwarnings("ignore")
# LightGBM models declare a label shape of [1] they do not keep; ORT warns on every run.
ort.set_default_logger_severity(3)

SEED = 0
N_FEATURES = 10
N_ROWS = 20
OUT_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "crates", "keel-onnx", "tests", "fixtures"
)


def classification(n_classes):
    x, y = make_classification(
        n_samples=400,
        n_features=N_FEATURES,
        n_informative=6,
        n_redundant=2,
        n_classes=n_classes,
        random_state=SEED,
    )
    return x.astype(np.float32), y


def regression():
    x, y = make_regression(n_samples=400, n_features=N_FEATURES, noise=5.0, random_state=SEED)
    return x.astype(np.float32), y.astype(np.float32)


def test_rows(x, with_nan):
    rows = x[-N_ROWS:].copy()
    if with_nan:
        rows[3, 2] = np.nan
        rows[7, :] = np.nan
    return rows


def to_skl2onnx(model, name):
    from skl2onnx import to_onnx

    return to_onnx(model, np.zeros((1, N_FEATURES), dtype=np.float32), target_opset=None)


def to_onnxmltools(model, kind):
    from onnxmltools.convert import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    initial_types = [("input", FloatTensorType([None, N_FEATURES]))]
    if kind == "xgboost":
        return convert_xgboost(model, initial_types=initial_types)
    return convert_lightgbm(model, initial_types=initial_types)


def encode_float(value):
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def tensor_json(name, array):
    array = np.asarray(array)
    if array.dtype.kind in ("U", "S", "O"):
        return {
            "name": name,
            "datatype": "BYTES",
            "shape": list(array.shape),
            "data": [str(v) for v in array.reshape(-1)],
        }
    datatype = {
        np.dtype(np.float32): "FP32",
        np.dtype(np.float64): "FP64",
        np.dtype(np.int64): "INT64",
        np.dtype(np.int32): "INT32",
        np.dtype(np.bool_): "BOOL",
    }[array.dtype]
    flat = array.reshape(-1).tolist()
    if array.dtype.kind == "f":
        flat = [encode_float(v) for v in flat]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": flat}


def zipmap_labels(model_proto, output_name):
    for node in model_proto.graph.node:
        if node.op_type == "ZipMap" and output_name in node.output:
            for attr in node.attribute:
                if attr.name == "classlabels_int64s":
                    return list(attr.ints)
                if attr.name == "classlabels_strings":
                    return [s.decode() for s in attr.strings]
    raise ValueError(f"no ZipMap produces {output_name}")


def to_tree_ensemble_v5(model_proto):
    """Rewrites a model's TreeEnsembleRegressor as ai.onnx.ml opset 5's
    TreeEnsemble. No converter emits it at default settings (skl2onnx keeps
    TreeEnsembleRegressor even with ai.onnx.ml 5), so this is the only way
    to check keel-onnx's support for it against onnxruntime."""
    from onnx import helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    graph = model.graph
    index = next(i for i, n in enumerate(graph.node) if n.op_type == "TreeEnsembleRegressor")
    old = graph.node[index]
    attrs = {a.name: helper.get_attribute_value(a) for a in old.attribute}
    tree_ids, node_ids = attrs["nodes_treeids"], attrs["nodes_nodeids"]
    modes = [m.decode() for m in attrs["nodes_modes"]]
    key_to_pos = {(t, n): i for i, (t, n) in enumerate(zip(tree_ids, node_ids))}
    branch_index, leaf_index = {}, {}
    for i, mode in enumerate(modes):
        (leaf_index if mode == "LEAF" else branch_index)[i] = len(leaf_index if mode == "LEAF" else branch_index)
    weights = {}
    for t, n, w in zip(attrs["target_treeids"], attrs["target_nodeids"], attrs["target_weights"]):
        weights[key_to_pos[(t, n)]] = w
    mode_codes = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5}
    features, splits, mode_list, true_ids, true_leafs, false_ids, false_leafs, missing = ([] for _ in range(8))
    for i in sorted(branch_index, key=branch_index.get):
        t = tree_ids[i]
        features.append(attrs["nodes_featureids"][i])
        splits.append(attrs["nodes_values"][i])
        mode_list.append(mode_codes[modes[i]])
        missing.append(attrs.get("nodes_missing_value_tracks_true", [0] * len(modes))[i])
        for child, ids, leafs in (
            (attrs["nodes_truenodeids"][i], true_ids, true_leafs),
            (attrs["nodes_falsenodeids"][i], false_ids, false_leafs),
        ):
            pos = key_to_pos[(t, child)]
            if pos in leaf_index:
                ids.append(leaf_index[pos])
                leafs.append(1)
            else:
                ids.append(branch_index[pos])
                leafs.append(0)
    roots = []
    seen = set()
    for i, t in enumerate(tree_ids):
        if t not in seen:
            seen.add(t)
            roots.append(branch_index[i])
    leaves = sorted(leaf_index, key=leaf_index.get)
    aggregate = {"AVERAGE": 0, "SUM": 1, "MIN": 2, "MAX": 3}[attrs.get("aggregate_function", b"SUM").decode()]
    new = helper.make_node(
        "TreeEnsemble",
        list(old.input),
        list(old.output),
        domain="ai.onnx.ml",
        name=old.name,
        aggregate_function=aggregate,
        post_transform=0,
        n_targets=attrs["n_targets"],
        tree_roots=roots,
        nodes_featureids=features,
        nodes_splits=numpy_helper.from_array(np.array(splits, dtype=np.float32)),
        nodes_modes=numpy_helper.from_array(np.array(mode_list, dtype=np.uint8)),
        nodes_truenodeids=true_ids,
        nodes_trueleafs=true_leafs,
        nodes_falsenodeids=false_ids,
        nodes_falseleafs=false_leafs,
        nodes_missing_value_tracks_true=missing,
        leaf_targetids=[0] * len(leaves),
        leaf_weights=numpy_helper.from_array(np.array([weights[i] for i in leaves], dtype=np.float32)),
    )
    graph.node.remove(old)
    graph.node.insert(index, new)
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = 5
    return model


def write_fixture(name, model_proto, rows):
    os.makedirs(OUT_DIR, exist_ok=True)
    data = model_proto.SerializeToString()
    with open(os.path.join(OUT_DIR, f"{name}.onnx"), "wb") as f:
        f.write(data)

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    results = session.run(None, {input_name: rows})
    outputs = []
    for meta, value in zip(session.get_outputs(), results):
        if isinstance(value, list) and value and isinstance(value[0], dict):
            labels = zipmap_labels(model_proto, meta.name)
            value = np.array([[row[label] for label in labels] for row in value], dtype=np.float32)
        outputs.append(tensor_json(meta.name, value))

    fixture = {
        "model": name,
        "inputs": [tensor_json(input_name, rows)],
        "outputs": outputs,
    }
    with open(os.path.join(OUT_DIR, f"{name}.json"), "w") as f:
        json.dump(fixture, f, indent=None, separators=(",", ":"))
        f.write("\n")
    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in model_proto.graph.node})
    print(f"{name}: {len(data)} bytes, ops {ops}")


def main():
    only = set(sys.argv[1:])

    def want(name):
        return not only or name in only

    x2, y2 = classification(2)
    x3, y3 = classification(3)
    xr, yr = regression()
    train = slice(0, -N_ROWS)

    sklearn_models = [
        ("logreg_binary", LogisticRegression(max_iter=500), x2, y2, False),
        ("logreg_multiclass", LogisticRegression(max_iter=500), x3, y3, False),
        (
            "random_forest_classifier",
            RandomForestClassifier(n_estimators=10, max_depth=5, random_state=SEED),
            x3,
            y3,
            True,
        ),
        (
            "random_forest_regressor",
            RandomForestRegressor(n_estimators=10, max_depth=5, random_state=SEED),
            xr,
            yr,
            True,
        ),
        (
            "gradient_boosting_binary",
            GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=SEED),
            x2,
            y2,
            True,
        ),
        (
            "gradient_boosting_multiclass",
            GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=SEED),
            x3,
            y3,
            True,
        ),
        (
            "gradient_boosting_regressor",
            GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=SEED),
            xr,
            yr,
            True,
        ),
        (
            "pipeline_scaler_logreg",
            Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]),
            x3,
            y3,
            False,
        ),
        ("linear_regression", LinearRegression(), xr, yr, False),
        (
            "mlp_classifier",
            MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=SEED),
            x3,
            y3,
            False,
        ),
        (
            "mlp_classifier_binary",
            MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=SEED),
            x2,
            y2,
            False,
        ),
    ]
    for name, model, x, y, with_nan in sklearn_models:
        if not want(name):
            continue
        model.fit(x[train], y[train])
        write_fixture(name, to_skl2onnx(model, name), test_rows(x, with_nan))

    if want("random_forest_regressor_ml5"):
        model = RandomForestRegressor(n_estimators=10, max_depth=5, random_state=SEED).fit(xr[train], yr[train])
        proto = to_tree_ensemble_v5(to_skl2onnx(model, "random_forest_regressor_ml5"))
        write_fixture("random_forest_regressor_ml5", proto, test_rows(xr, True))
    if want("string_labels_tree"):
        labels = np.array(["cat", "dog", "emu"])[y3]
        model = DecisionTreeClassifier(max_depth=4, random_state=SEED).fit(x3[train], labels[train])
        write_fixture("string_labels_tree", to_skl2onnx(model, "string_labels_tree"), test_rows(x3, True))
    if want("string_labels_logreg"):
        labels = np.array(["no", "yes"])[y2]
        model = LogisticRegression(max_iter=500).fit(x2[train], labels[train])
        write_fixture("string_labels_logreg", to_skl2onnx(model, "string_labels_logreg"), test_rows(x2, False))

    import lightgbm
    import xgboost

    boosted = [
        ("xgb_binary", "xgboost", xgboost.XGBClassifier(n_estimators=10, max_depth=3), x2, y2),
        ("xgb_multiclass", "xgboost", xgboost.XGBClassifier(n_estimators=10, max_depth=3), x3, y3),
        ("xgb_regressor", "xgboost", xgboost.XGBRegressor(n_estimators=10, max_depth=3), xr, yr),
        (
            "lgbm_binary",
            "lightgbm",
            lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1, random_state=SEED),
            x2,
            y2,
        ),
        (
            "lgbm_multiclass",
            "lightgbm",
            lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1, random_state=SEED),
            x3,
            y3,
        ),
        (
            "lgbm_regressor",
            "lightgbm",
            lightgbm.LGBMRegressor(n_estimators=10, num_leaves=8, verbose=-1, random_state=SEED),
            xr,
            yr,
        ),
    ]
    for name, kind, model, x, y in boosted:
        if not want(name):
            continue
        model.fit(x[train], y[train])
        try:
            proto = to_onnxmltools(model, kind)
        except Exception as err:  # converter/library version mismatches are reported, not fatal
            print(f"{name}: conversion failed: {err!r}")
            continue
        write_fixture(name, proto, test_rows(x, True))


if __name__ == "__main__":
    np.random.seed(SEED)
    main()
