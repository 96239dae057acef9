"""`keel serve`: the Open Inference Protocol v2 answered to the real `tritonclient` clients
(HTTP and gRPC), plain HTTP, and MLflow models served by alias with a hot swap."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from conftest import free_port, keel_bin
from e2e_helpers import unique_name

READY_TIMEOUT_S = 120
N_FEATURES = 8


class KeelServe:
    """One `keel serve` process; `models` are MODEL_URI arguments."""

    def __init__(self, work_dir: Path, models, extra_args=(), tracking_uri=None):
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.models = list(models)
        self.extra_args = list(extra_args)
        self.tracking_uri = tracking_uri
        self.port = free_port()
        self.grpc_port = free_port()
        self.log_dir = self.work_dir / "inference-log"
        self.log_path = self.work_dir / "serve.log"
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        cmd = [
            str(keel_bin()), "serve", *self.models,
            "--port", str(self.port),
            "--grpc-port", str(self.grpc_port),
            "--model-cache", str(self.work_dir / "cache"),
            "--inference-log", str(self.log_dir),
            "--python", sys.executable,
            "--alias-poll-interval", "0.3",
            *self.extra_args,
        ]
        if self.tracking_uri:
            cmd += ["--tracking-uri", self.tracking_uri]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        env["NO_COLOR"] = "1"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                cmd, cwd=self.work_dir, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"keel serve exited with {self.process.returncode}\n{self.log_text()}",
                            pytrace=False)
            try:
                if requests.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"keel serve not ready within {READY_TIMEOUT_S}s\n{self.log_text()}", pytrace=False)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _dataset(n_rows=300, seed=0, n_classes=2):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n_rows, n_features=N_FEATURES, n_informative=5,
                               n_classes=n_classes, random_state=seed)
    return X.astype(np.float32), y


def _ort_outputs(path, X):
    """onnxruntime's outputs, ZipMap's list of dicts turned into [N, C] in class order."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    values = session.run(None, {session.get_inputs()[0].name: X})
    result = {}
    for name, value in zip(names, values):
        if isinstance(value, list):
            keys = sorted(value[0].keys())
            value = np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
        result[name] = np.asarray(value)
    return result


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    """Three sklearn models exported with skl2onnx's defaults, and rows to score."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression

    out = tmp_path_factory.mktemp("onnx-models")
    X, y = _dataset()
    X3, y3 = _dataset(seed=1, n_classes=3)
    models = {
        "lr": LogisticRegression(max_iter=500).fit(X, y),
        "rf": RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(X3, y3),
        "rfr": RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(X, X[:, 0] * 2 + y),
    }
    paths = {}
    for name, model in models.items():
        onx = to_onnx(model, X[:1])
        paths[name] = out / f"{name}.onnx"
        paths[name].write_bytes(onx.SerializeToString())
    rows = X[:25].copy()
    expected = {name: _ort_outputs(path, rows) for name, path in paths.items()}
    return paths, rows, expected


@pytest.fixture(scope="module")
def onnx_server(onnx_models, tmp_path_factory):
    paths, _, _ = onnx_models
    server = KeelServe(tmp_path_factory.mktemp("serve-onnx"),
                       [f"{name}={path}" for name, path in paths.items()],
                       extra_args=["--max-request-bytes", "2000000"])
    server.start()
    yield server
    server.stop()


def _assert_outputs_match(actual: dict, expected: dict):
    for name, want in expected.items():
        got = actual[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        if want.dtype.kind in "iu":
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("model", ["lr", "rf", "rfr"])
def test_tritonclient_http_matches_onnxruntime(onnx_server, onnx_models, model):
    import tritonclient.http as httpclient

    _, rows, expected = onnx_models
    client = httpclient.InferenceServerClient(f"127.0.0.1:{onnx_server.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(model)
    metadata = client.get_model_metadata(model)
    assert metadata["name"] == model and metadata["platform"] == "onnx"
    input_meta = metadata["inputs"][0]
    assert input_meta["datatype"] == "FP32" and input_meta["shape"][-1] == N_FEATURES
    infer_input = httpclient.InferInput(input_meta["name"], list(rows.shape), "FP32")
    infer_input.set_data_from_numpy(rows, binary_data=True)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=True) for name in expected[model]]
    result = client.infer(model, [infer_input], outputs=outputs, request_id="req-7")
    assert result.get_response()["id"] == "req-7"
    _assert_outputs_match({name: result.as_numpy(name) for name in expected[model]}, expected[model])

    # The same request as JSON, without the binary extension.
    infer_input.set_data_from_numpy(rows, binary_data=False)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in expected[model]]
    result = client.infer(model, [infer_input], outputs=outputs)
    _assert_outputs_match({name: result.as_numpy(name) for name in expected[model]}, expected[model])


@pytest.mark.parametrize("model", ["lr", "rf", "rfr"])
def test_tritonclient_grpc_matches_onnxruntime(onnx_server, onnx_models, model):
    import tritonclient.grpc as grpcclient

    _, rows, expected = onnx_models
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{onnx_server.grpc_port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(model)
    assert not client.is_model_ready("no-such-model")
    metadata = client.get_model_metadata(model, as_json=True)
    assert metadata["name"] == model
    input_name = metadata["inputs"][0]["name"]
    infer_input = grpcclient.InferInput(input_name, list(rows.shape), "FP32")
    infer_input.set_data_from_numpy(rows)
    result = client.infer(model, [infer_input], request_id="g-1")
    assert result.get_response().id == "g-1"
    _assert_outputs_match({name: result.as_numpy(name) for name in expected[model]}, expected[model])


def test_server_metadata_and_plain_json(onnx_server, onnx_models):
    _, rows, expected = onnx_models
    meta = requests.get(f"{onnx_server.url}/v2").json()
    assert meta["name"] == "keel" and "model_repository" in meta["extensions"]
    body = {
        "id": "plain",
        "inputs": [{"name": "X", "shape": [2, N_FEATURES], "datatype": "FP32", "data": rows[:2].tolist()}],
        "outputs": [{"name": "output_label"}],
    }
    response = requests.post(f"{onnx_server.url}/v2/models/lr/infer", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["id"] == "plain" and payload["model_name"] == "lr" and payload["model_version"] == "1"
    assert [output["name"] for output in payload["outputs"]] == ["output_label"]
    assert payload["outputs"][0]["data"] == expected["lr"]["output_label"][:2].tolist()
    versioned = requests.post(f"{onnx_server.url}/v2/models/lr/versions/1/infer", json=body)
    assert versioned.status_code == 200


def test_bad_requests_get_protocol_errors(onnx_server, onnx_models):
    _, rows, _ = onnx_models
    url = f"{onnx_server.url}/v2/models/lr/infer"
    good_input = {"name": "X", "shape": [1, N_FEATURES], "datatype": "FP32", "data": rows[0].tolist()}
    cases = [
        ({"inputs": [{**good_input, "shape": [1, N_FEATURES + 1]}]}, 400, "shape"),
        ({"inputs": [{**good_input, "shape": [2, N_FEATURES]}]}, 400, "elements"),
        ({"inputs": [{**good_input, "datatype": "FLOAT32"}]}, 400, "datatype"),
        ({"inputs": [{**good_input, "datatype": "BYTES", "data": ["a"] * N_FEATURES}]}, 400, ""),
        ({"inputs": []}, 400, "missing input"),
        ({"inputs": [{**good_input, "name": "nope"}]}, 400, "unexpected input"),
        ({"inputs": [good_input], "outputs": [{"name": "nope"}]}, 400, "no output"),
    ]
    for body, status, needle in cases:
        response = requests.post(url, json=body)
        assert response.status_code == status, (body, response.text)
        assert needle in response.json()["error"], response.text
    malformed = requests.post(url, data=b'{"inputs": [', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "error" in malformed.json()
    huge = requests.post(url, data=b" " * 3_000_000, headers={"Content-Type": "application/json"})
    assert huge.status_code == 413 and "error" in huge.json()
    unknown = requests.post(f"{onnx_server.url}/v2/models/nope/infer", json={"inputs": [good_input]})
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    assert requests.get(f"{onnx_server.url}/v2/models/nope").status_code == 404
    # Still serving after all of that.
    assert requests.post(url, json={"inputs": [good_input]}).status_code == 200


def test_metrics_count_requests(onnx_server, onnx_models):
    _, rows, _ = onnx_models
    body = {"inputs": [{"name": "X", "shape": [1, N_FEATURES], "datatype": "FP32", "data": rows[0].tolist()}]}
    assert requests.post(f"{onnx_server.url}/v2/models/rfr/infer", json=body).status_code == 200
    response = requests.get(f"{onnx_server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'keel_inference_requests_total{model="rfr",status="ok",version="1"}' in text
    assert 'keel_inference_request_seconds_bucket{model="rfr",version="1",le="+Inf"}' in text
    assert "keel_inference_in_flight" in text and "keel_inference_batch_size" in text


def test_repository_unload_and_load(onnx_server):
    index = requests.post(f"{onnx_server.url}/v2/repository/index").json()
    assert {entry["name"] for entry in index} >= {"lr", "rf", "rfr"}
    assert requests.post(f"{onnx_server.url}/v2/repository/models/rfr/unload").status_code == 200
    assert requests.get(f"{onnx_server.url}/v2/models/rfr/ready").status_code != 200
    index = requests.post(f"{onnx_server.url}/v2/repository/index").json()
    assert {"name": "rfr", "state": "UNAVAILABLE", "reason": "unloaded"} in index
    assert requests.post(f"{onnx_server.url}/v2/repository/models/rfr/load").status_code == 200
    assert requests.get(f"{onnx_server.url}/v2/models/rfr/ready").status_code == 200
    missing = requests.post(f"{onnx_server.url}/v2/repository/models/never/load")
    assert missing.status_code == 404 and "error" in missing.json()


def test_batched_server_answers_concurrent_requests(onnx_models, tmp_path):
    paths, rows, expected = onnx_models
    server = KeelServe(tmp_path, [f"rf={paths['rf']}"],
                       extra_args=["--max-batch-size", "32", "--max-batch-delay", "5"]).start()
    try:
        errors = []

        def one(row_idx):
            body = {"inputs": [{"name": "X", "shape": [1, N_FEATURES], "datatype": "FP32",
                                "data": rows[row_idx].tolist()}]}
            response = requests.post(f"{server.url}/v2/models/rf/infer", json=body)
            label = response.json()["outputs"][0]["data"][0]
            if label != int(expected["rf"]["output_label"][row_idx]):
                errors.append((row_idx, label))

        threads = [threading.Thread(target=one, args=(idx,)) for idx in range(len(rows))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        metrics = requests.get(f"{server.url}/metrics").text
        assert 'keel_inference_batch_size_count{model="rf",version="1"}' in metrics
    finally:
        server.stop()


def test_inference_log_is_written_as_parquet(onnx_models, tmp_path):
    import pyarrow.parquet as pq

    paths, rows, _ = onnx_models
    server = KeelServe(tmp_path, [f"lr={paths['lr']}"]).start()
    body = {"id": "logged", "inputs": [{"name": "X", "shape": [3, N_FEATURES], "datatype": "FP32",
                                          "data": rows[:3].tolist()}]}
    for _ in range(4):
        assert requests.post(f"{server.url}/v2/models/lr/infer", json=body).status_code == 200
    server.stop()
    files = sorted((server.log_dir / "lr" / "1").rglob("*.parquet"))
    assert files, list(server.log_dir.rglob("*"))
    assert all(part.name.startswith("part-") for part in files)
    assert "date=" in str(files[0]) and "hour=" in str(files[0])
    table = pq.read_table(files[0].parent)
    assert table.num_rows == 12
    assert set(table.column("request_id").to_pylist()) == {"logged"}
    np.testing.assert_allclose(table.column("X.0").to_numpy()[:3], rows[:3, 0], rtol=1e-6)
    assert "output_label" in table.column_names


def test_keel_predict_scores_csv_and_json(onnx_models, tmp_path):
    paths, rows, expected = onnx_models
    csv_path = tmp_path / "rows.csv"
    header = ",".join(f"f{idx}" for idx in range(N_FEATURES))
    csv_path.write_text(header + "\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in rows[:5]) + "\n")
    out = subprocess.run([str(keel_bin()), "predict", str(paths["rfr"]), "--input", str(csv_path)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    np.testing.assert_allclose(np.array(payload["outputs"][0]["data"]),
                               expected["rfr"]["variable"][:5].ravel(), rtol=1e-5)
    bad = subprocess.run([str(keel_bin()), "predict", str(paths["rfr"]), "--input", str(tmp_path / "nope.csv")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "cannot read" in bad.stderr and "panicked" not in bad.stderr


def _log_sklearn_version(client, name, flip):
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X, y = _dataset(n_rows=200, seed=3)
    frame = pd.DataFrame(X.astype(np.float64), columns=[f"f{idx}" for idx in range(N_FEATURES)])
    labels = 1 - y if flip else y
    model = LogisticRegression(max_iter=500).fit(frame, labels)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                        signature=infer_signature(frame, model.predict(frame)))
    return frame, model, info


def test_mlflow_model_served_by_alias_swaps_without_errors(client, tracking_uri, tmp_path):
    name = unique_name("served")
    frame, model_v1, _ = _log_sklearn_version(client, name, flip=False)
    _, model_v2, _ = _log_sklearn_version(client, name, flip=True)
    client.set_registered_model_alias(name, "champion", "1")
    server = KeelServe(tmp_path, [f"models:/{name}@champion"], tracking_uri=tracking_uri,
                       extra_args=["--workers", "2"]).start()
    try:
        metadata = requests.get(f"{server.url}/v2/models/{name}").json()
        assert metadata["platform"] == "mlflow_pyfunc"
        input_name = metadata["inputs"][0]["name"]
        rows = frame.to_numpy()[:10]
        body = {"inputs": [{"name": input_name, "shape": list(rows.shape), "datatype": "FP64",
                            "data": rows.tolist()}]}
        first = requests.post(f"{server.url}/v2/models/{name}/infer", json=body)
        assert first.status_code == 200, first.text
        assert first.json()["model_version"] == "1"
        np.testing.assert_array_equal(first.json()["outputs"][0]["data"], model_v1.predict(frame[:10]))

        failures, versions, stop = [], set(), threading.Event()

        def load():
            session = requests.Session()
            while not stop.is_set():
                try:
                    response = session.post(f"{server.url}/v2/models/{name}/infer", json=body, timeout=30)
                    if response.status_code != 200:
                        failures.append(response.text)
                    else:
                        versions.add(response.json()["model_version"])
                except requests.RequestException as error:
                    failures.append(repr(error))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        client.set_registered_model_alias(name, "champion", "2")
        deadline = time.monotonic() + 90
        while "2" not in versions and time.monotonic() < deadline and not failures:
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()
        assert failures == []
        assert versions == {"1", "2"}, versions
        after = requests.post(f"{server.url}/v2/models/{name}/infer", json=body).json()
        assert after["model_version"] == "2"
        np.testing.assert_array_equal(after["outputs"][0]["data"], model_v2.predict(frame[:10]))
    finally:
        server.stop()


def test_canary_and_shadow_split_traffic(onnx_models, tmp_path):
    paths, rows, _ = onnx_models
    server = KeelServe(tmp_path, [f"m={paths['lr']}"],
                       extra_args=["--canary", f"m={paths['rfr']}", "--canary-percent", "30",
                                   "--shadow", f"m={paths['rf']}"]).start()
    try:
        body = {"inputs": [{"name": "X", "shape": [1, N_FEATURES], "datatype": "FP32", "data": rows[0].tolist()}]}
        versions = {}
        for _ in range(200):
            response = requests.post(f"{server.url}/v2/models/m/infer", json=body)
            assert response.status_code == 200, response.text
            version = response.json()["model_version"]
            versions[version] = versions.get(version, 0) + 1
        assert set(versions) == {"1", "rfr"}, versions
        assert 20 <= versions["rfr"] <= 110, versions
        # The shadow never answered a routed request (checked above). That it ran a copy of each is
        # not visible from outside (shadow calls skip the per-version metrics); the manager's unit
        # test `canary_takes_its_share_and_shadow_sees_every_request` counts them. Here: it is
        # loaded and answers when named.
        assert requests.post(f"{server.url}/v2/models/m/versions/rf/infer", json=body).status_code == 200
        index = {entry.get("version") for entry in requests.post(f"{server.url}/v2/repository/index").json()}
        assert {"1", "rfr", "rf"} <= index
    finally:
        server.stop()
    bad = subprocess.run([str(keel_bin()), "serve", f"m={paths['lr']}", "--canary", f"other={paths['rf']}"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not among the served models" in bad.stderr
