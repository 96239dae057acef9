"""Export the MLServer anchor's pickled models to ONNX for `keel serve`.

Usage: python export_serving_models.py <anchor_repo_dir> <out_dir>
Reads <anchor_repo_dir>/{rf,lr}/model.joblib (written by ../shared/bench/anchors/mlserver_train.py),
writes <out_dir>/{rf,lr}.onnx with skl2onnx's default options and the input named `input-0`
(the name the anchor's request bodies use), and checks that onnxruntime predicts the same labels
as the pickles on the 100-row body.
"""
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType

anchor, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
body = json.loads((anchor / "body-b100.json").read_text())["inputs"][0]
rows = np.array(body["data"], dtype=np.float32).reshape(body["shape"])
expected = json.loads((anchor / "expected-b100.json").read_text())
for name in ("rf", "lr"):
    model = joblib.load(anchor / name / "model.joblib")
    onx = to_onnx(model, initial_types=[("input_0", FloatTensorType([None, rows.shape[1]]))])
    # skl2onnx turns '-' into '_' in names; the anchor's bodies say 'input-0', so rename the graph input.
    onx.graph.input[0].name = "input-0"
    for node in onx.graph.node:
        node.input[:] = ["input-0" if name == "input_0" else name for name in node.input]
    path = out / f"{name}.onnx"
    path.write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels = session.run(None, {"input-0": rows})[0]
    assert labels.tolist() == expected[name], f"{name}: onnx labels differ from the pickle's"
    print(f"{path}: {path.stat().st_size} bytes, labels match the pickle on 100 rows")
