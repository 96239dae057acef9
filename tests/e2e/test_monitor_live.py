"""Live monitors in `keel serve --monitors`: drift of served traffic against the training
data, read back from the real inference log, quiet on undrifted traffic and loud on drifted
traffic; labels posted later by request id give scikit-learn's accuracy, F1 and ROC AUC;
verdicts are stored, queryable over time and exported as Prometheus gauges."""

import json
import subprocess
import time

import numpy as np
import pytest
import requests

from conftest import keel_bin
from test_serving import N_FEATURES, KeelServe
from test_webhooks import Receiver, verify_signature

ALERT_SECRET = "alert-secret"

def _column_map():
    return {f"X.{i}": f"f{i}" for i in range(N_FEATURES)}


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    work = tmp_path_factory.mktemp("monitored")
    receiver = Receiver()
    X, y = make_classification(n_samples=3000, n_features=N_FEATURES, n_informative=5, random_state=7)
    X = X.astype(np.float32)
    train_X, train_y = X[:2000], y[:2000]
    model = LogisticRegression(max_iter=500).fit(train_X, train_y)
    onx = to_onnx(model, train_X[:1], options={id(model): {"zipmap": False}})
    onnx_path = work / "lr.onnx"
    onnx_path.write_bytes(onx.SerializeToString())
    # The reference: training rows, with the model's predictions on them and the truth, so that
    # performance can be estimated before labels arrive (CBPE).
    reference = {f"f{i}": train_X[:, i] for i in range(N_FEATURES)}
    reference.update(y=train_y, pred=model.predict(train_X), proba=model.predict_proba(train_X)[:, 1])
    pq.write_table(pa.table(reference), work / "ref.parquet")
    column_map = json.dumps(_column_map())
    perf = ("{task: classification, prediction: label, score: probabilities.1, "
            "estimate: {target: y, prediction: pred, score: proba, chunk_size: 100}}")
    multivariate = json.dumps({"columns": [f"f{i}" for i in range(N_FEATURES)], "chunk_size": 200})
    (work / "monitors.yaml").write_text(f"""monitors:
  - name: lr-drift
    model: lr
    reference: ref.parquet
    column_map: {column_map}
    window: 1h
    min_rows: 50
    multivariate: {multivariate}
    performance: {perf}
  - name: shifted-drift
    model: shifted
    reference: ref.parquet
    column_map: {column_map}
    min_rows: 50
    multivariate: {multivariate}
    alerts:
      - {{name: drifted, when: dataset_drift, webhook: {{url: "{receiver.url}", secret: {ALERT_SECRET}}}}}
      - {{name: slow-burn, when: drifted_share >= 0.5, for: 1h, webhook: {{url: "{receiver.url}"}}}}
      - {{name: needs-many, when: dataset_drift, min_rows: 100000, webhook: {{url: "{receiver.url}"}}}}
  - name: lr-scheduled
    model: lr
    reference: ref.parquet
    column_map: {column_map}
    every: 1s
    min_rows: 1
""")
    server = KeelServe(work, [f"lr={onnx_path}", f"shifted={onnx_path}"],
                       extra_args=["--monitors", str(work / "monitors.yaml"),
                                   "--monitor-db", str(work / "monitors.db"),
                                   "--webhook-allowed-destinations", "127.0.0.1"])
    server.start()
    server.receiver = receiver
    yield server, X[2000:], y[2000:]
    server.stop()
    receiver.close()


def _infer(server, model, rows, request_id):
    body = {"id": request_id, "inputs": [{"name": "X", "shape": list(rows.shape), "datatype": "FP32",
                                          "data": rows.ravel().tolist()}]}
    response = requests.post(f"{server.url}/v2/models/{model}/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    labels = np.array(outputs["label"]["data"])
    proba = np.array(outputs["probabilities"]["data"], dtype=np.float32).reshape(len(rows), 2)
    return labels, proba


def _run(server, name):
    response = requests.post(f"{server.url}/v2/monitors/{name}/run")
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_monitor_is_quiet_on_undrifted_traffic_and_scores_posted_labels(monitored):
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    server, X, y = monitored
    before = _run(server, "lr-drift")
    assert [r["status"] for r in before] == ["insufficient_data"] and before[0]["rows"] == 0

    predictions, scores = [], []
    for start in range(0, 400, 50):
        labels, proba = _infer(server, "lr", X[start:start + 50], f"ok-{start}")
        predictions.append(labels)
        scores.append(proba[:, 1])
    predictions, scores = np.concatenate(predictions), np.concatenate(scores)

    [result] = _run(server, "lr-drift")
    assert result["status"] == "ok", result
    assert result["version"] == "1" and result["rows"] == 400
    drift = result["drift"]
    assert {c["column"] for c in drift["columns"]} == {f"f{i}" for i in range(N_FEATURES)}
    assert drift["dataset_drifted"] is False and drift["drifted_share"] < 0.5
    assert result["multivariate"]["alert"] is False, result["multivariate"]
    assert all(q["missing_share"] == 0 for q in result["data_quality"].values())
    assert result["performance"]["labelled_rows"] == 0
    # No labels yet, but CBPE estimates the performance of each 100-row chunk.
    chunks = result["estimated_performance"]["chunks"]
    assert [(c["start_index"], c["end_index"]) for c in chunks] == [(0, 99), (100, 199), (200, 299), (300, 399)]
    for chunk, start in zip(chunks, range(0, 400, 100)):
        realized = float(np.mean(predictions[start:start + 100] == y[start:start + 100]))
        assert abs(chunk["metrics"]["accuracy"]["value"] - realized) < 0.12, (chunk, realized)
        assert chunk["metrics"]["accuracy"]["alert"] is False
    metrics = requests.get(f"{server.url}/metrics").text
    assert 'keel_model_estimated_performance{metric="accuracy",model="lr",monitor="lr-drift",version="1"}' in metrics

    # Ground truth arrives later: half by row, half as one list per request.
    body = {"labels": []}
    for start in range(0, 400, 50):
        truth = [int(v) for v in y[start:start + 50]]
        if start < 200:
            body["labels"] += [{"request_id": f"ok-{start}", "row": i, "label": v} for i, v in enumerate(truth)]
        else:
            body["labels"].append({"request_id": f"ok-{start}", "labels": truth})
    response = requests.post(f"{server.url}/v2/models/lr/labels", json=body)
    assert response.status_code == 200 and response.json() == {"stored": 400}, response.text

    [result] = _run(server, "lr-drift")
    perf = result["performance"]
    assert perf["labelled_rows"] == 400
    truth = y[:400]
    assert perf["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth, predictions), abs=1e-12)
    assert perf["metrics"]["precision"] == pytest.approx(precision_score(truth, predictions), abs=1e-12)
    assert perf["metrics"]["recall"] == pytest.approx(recall_score(truth, predictions), abs=1e-12)
    assert perf["metrics"]["f1"] == pytest.approx(f1_score(truth, predictions), abs=1e-12)
    assert perf["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)

    stored = requests.get(f"{server.url}/v2/monitors/lr-drift/results", params={"limit": 10}).json()["results"]
    assert [r["status"] for r in stored] == ["ok", "ok", "insufficient_data"]
    assert stored[0]["performance"] == perf
    later = requests.get(f"{server.url}/v2/monitors/lr-drift/results",
                         params={"since": stored[0]["evaluated_at"]}).json()["results"]
    assert len(later) == 1


def test_monitor_flags_injected_drift_in_metrics_and_cli(monitored):
    server, X, _ = monitored
    shifted = X[:300].copy()
    shifted[:, :5] += 3.0  # most features move by about three standard deviations
    for start in range(0, 300, 100):
        _infer(server, "shifted", shifted[start:start + 100], f"shift-{start}")

    out = subprocess.run([str(keel_bin()), "monitor", "run", "shifted-drift", "--url", server.url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "dataset drift DETECTED" in out.stdout, out.stdout
    assert "shifted-drift | model shifted version 1" in out.stdout

    [result] = requests.get(f"{server.url}/v2/monitors/shifted-drift/results").json()["results"]
    assert result["drift"]["dataset_drifted"] is True
    drifted = {c["column"] for c in result["drift"]["columns"] if c["drifted"]}
    assert {f"f{i}" for i in range(5)} <= drifted
    assert result["multivariate"]["alert"] is True
    assert result["multivariate"]["reconstruction_error"] > result["multivariate"]["upper_threshold"]

    metrics = requests.get(f"{server.url}/metrics").text
    assert 'keel_dataset_drift_detected{model="shifted",monitor="shifted-drift",version="1"} 1' in metrics
    assert 'keel_drift_detected{feature="f0",model="shifted",monitor="shifted-drift",version="1"} 1' in metrics
    assert 'keel_monitor_window_rows{model="shifted",monitor="shifted-drift",version="1"} 300' in metrics
    assert 'keel_multivariate_drift_detected{model="shifted",monitor="shifted-drift",version="1"} 1' in metrics
    assert "keel_inference_requests_total" in metrics  # the serving metrics are still there

    # Alert rules: `drifted` fires at once, `slow-burn` waits for its hour, `needs-many`
    # never sees enough rows to be evaluated.
    assert {(a["alert"], a["status"]) for a in result["alerts"]} == {("drifted", "firing"), ("slow-burn", "pending")}
    assert 'keel_monitor_alert_firing{alert="drifted",model="shifted",monitor="shifted-drift",version="1"} 1' in metrics
    assert 'keel_monitor_alert_firing{alert="slow-burn",model="shifted",monitor="shifted-drift",version="1"} 0' in metrics
    delivery = server.receiver.next(timeout=60)
    assert verify_signature(delivery, ALERT_SECRET)
    payload = json.loads(delivery["body"])
    assert payload["alert"] == "drifted" and payload["status"] == "firing"
    assert payload["model"] == "shifted" and payload["version"] == "1" and payload["rows"] == 300
    assert {f"f{i}" for i in range(5)} <= set(payload["drifted_columns"])
    assert server.receiver.deliveries.empty()


def test_scheduled_monitor_evaluates_on_its_own(monitored):
    server, X, _ = monitored
    _infer(server, "lr", X[:10], "scheduled")
    deadline = time.monotonic() + 60
    results = []
    while time.monotonic() < deadline:
        results = requests.get(f"{server.url}/v2/monitors/lr-scheduled/results").json()["results"]
        if any(r["status"] == "ok" for r in results):
            break
        time.sleep(0.5)
    assert any(r["status"] == "ok" and r["rows"] >= 10 for r in results), results
    out = subprocess.run([str(keel_bin()), "monitor", "results", "lr-scheduled", "--url", server.url,
                          "--limit", "1", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 1


def test_bad_requests_get_clear_errors(monitored):
    server, _, _ = monitored
    response = requests.post(f"{server.url}/v2/monitors/nope/run")
    assert response.status_code == 404 and "no monitor named `nope`" in response.json()["error"]
    response = requests.post(f"{server.url}/v2/models/lr/labels", json={"labels": [{"request_id": "a"}]})
    assert response.status_code == 400 and response.json()["error"].startswith("labels[0]")
    response = requests.post(f"{server.url}/v2/models/lr/labels", data=b"not json",
                             headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    response = requests.get(f"{server.url}/v2/monitors/lr-drift/results", params={"since": "yesterday"})
    assert response.status_code == 400
    out = subprocess.run([str(keel_bin()), "monitor", "run", "nope", "--url", server.url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "no monitor named `nope`" in out.stderr
    assert "panicked" not in out.stderr


def test_monitor_of_an_unserved_model_stops_the_server_at_start(tmp_path, monitored):
    server, _, _ = monitored
    spec = tmp_path / "m.yaml"
    spec.write_text(f"monitors:\n  - {{name: m, model: ghost, reference: {server.work_dir / 'ref.parquet'}}}\n")
    onnx = server.work_dir / "lr.onnx"
    out = subprocess.run([str(keel_bin()), "serve", f"lr={onnx}", "--port", "0", "--grpc-port", "0",
                          "--inference-log", str(tmp_path / "log"), "--monitors", str(spec),
                          "--monitor-db", str(tmp_path / "m.db")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "monitor `m` watches model `ghost`, which is not served here" in out.stderr
    spec.write_text("monitors:\n  - {name: m, model: lr, reference: missing.parquet}\n")
    out = subprocess.run([str(keel_bin()), "serve", f"lr={onnx}", "--port", "0", "--grpc-port", "0",
                          "--inference-log", str(tmp_path / "log"), "--monitors", str(spec),
                          "--monitor-db", str(tmp_path / "m.db")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "cannot read the reference" in out.stderr


def test_reference_defaults_to_the_training_dataset_logged_on_the_models_run(client, tracking_uri, tmp_path):
    """A model that came through the registry is monitored against the data it was trained on
    (its run's `log_input(..., context="training")`), without the user naming it."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from e2e_helpers import unique_name

    name = unique_name("monitored")
    X, y = make_classification(n_samples=400, n_features=4, n_informative=3, n_redundant=0, random_state=3)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    train_path = tmp_path / "train.parquet"
    frame.to_parquet(train_path)
    model = LogisticRegression(max_iter=500).fit(frame, y)
    with mlflow.start_run():
        mlflow.log_input(mlflow.data.from_pandas(frame, source=str(train_path), name="train"), context="training")
        mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                 signature=infer_signature(frame, model.predict(frame)))
    serve_dir = tmp_path / "serve"
    serve_dir.mkdir()
    probe = KeelServe(serve_dir, [f"models:/{name}/1"], tracking_uri=tracking_uri).start()
    input_name = requests.get(f"{probe.url}/v2/models/{name}").json()["inputs"][0]["name"]
    probe.stop()
    column_map = json.dumps({f"{input_name}.{i}": f"f{i}" for i in range(4)})
    spec = tmp_path / "monitors.yaml"
    spec.write_text(f"monitors:\n  - {{name: auto, model: {name}, min_rows: 10, column_map: {column_map}}}\n")
    server = KeelServe(serve_dir, [f"models:/{name}/1"], tracking_uri=tracking_uri,
                       extra_args=["--monitors", str(spec), "--monitor-db", str(tmp_path / "m.db")]).start()
    try:
        assert f"monitor `auto`: reference {train_path}" in server.log_text()
        rows = frame.to_numpy()[:40]
        body = {"inputs": [{"name": input_name, "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}]}
        assert requests.post(f"{server.url}/v2/models/{name}/infer", json=body).status_code == 200
        [result] = _run(server, "auto")
        assert result["status"] == "ok" and result["rows"] == 40, result
        assert {c["column"] for c in result["drift"]["columns"]} == {"f0", "f1", "f2", "f3"}
        assert result["drift"]["dataset_drifted"] is False
    finally:
        server.stop()


def test_monitors_defined_through_the_api_persist_across_restarts(monitored, tmp_path):
    server, X, _ = monitored
    onnx, ref = server.work_dir / "lr.onnx", server.work_dir / "ref.parquet"
    db = tmp_path / "api.db"
    spec = {"model": "lr", "reference": str(ref), "column_map": _column_map(), "min_rows": 5, "window": "30m"}

    def serve():
        return KeelServe(tmp_path / "api", [f"lr={onnx}"], extra_args=["--monitor-db", str(db)]).start()

    first = serve()
    try:
        url = f"{first.url}/v2/monitors/api-drift"
        response = requests.put(url, json=spec)
        assert response.status_code == 201, response.text
        assert response.json()["monitor"]["window"] == 1800
        assert requests.put(url, json={**spec, "min_rows": 6}).status_code == 200
        assert requests.get(url).json()["monitor"]["min_rows"] == 6
        _infer(first, "lr", X[:20], "api")
        [result] = _run(first, "api-drift")
        assert result["status"] == "ok" and result["rows"] == 20
        # Mistakes are refused with the reason; nothing is kept.
        for bad, reason in [({**spec, "model": "ghost"}, "not served here"),
                            ({**spec, "reference": "ref.parquet"}, "absolute"),
                            ({**spec, "windw": "1h"}, "windw"),
                            ({**spec, "name": "other"}, "the URL `bad`")]:
            response = requests.put(f"{first.url}/v2/monitors/bad", json=bad)
            assert response.status_code == 400 and reason in response.json()["error"], (bad, response.text)
        assert requests.get(f"{first.url}/v2/monitors/bad").status_code == 404
        assert [m["name"] for m in requests.get(f"{first.url}/v2/monitors").json()["monitors"]] == ["api-drift"]
    finally:
        first.stop()

    second = serve()
    try:
        url = f"{second.url}/v2/monitors/api-drift"
        assert requests.get(url).json()["monitor"]["min_rows"] == 6  # kept across the restart
        stored = requests.get(f"{url}/results").json()["results"]
        assert len(stored) == 1 and stored[0]["rows"] == 20
        assert requests.delete(url).status_code == 200
        assert requests.post(f"{url}/run").status_code == 404
    finally:
        second.stop()
    third = serve()
    try:
        assert requests.get(f"{third.url}/v2/monitors").json()["monitors"] == []
    finally:
        third.stop()

    # A monitor of the --monitors file cannot be replaced or deleted through the API.
    response = requests.put(f"{server.url}/v2/monitors/lr-drift", json=spec)
    assert response.status_code == 400 and "--monitors file" in response.json()["error"]
    assert requests.delete(f"{server.url}/v2/monitors/lr-drift").status_code == 400


def test_keel_server_monitors_the_inference_log_keel_serve_writes_into_its_artifacts(monitored, tmp_path):
    """`keel server --monitors`: the tracking server evaluates monitors over the inference log
    that `keel serve` writes under the server's artifact directory, with the same API and gauges."""
    from conftest import KeelServer

    serving, X, _ = monitored
    onnx, ref = serving.work_dir / "lr.onnx", serving.work_dir / "ref.parquet"
    spec = tmp_path / "monitors.yaml"
    spec.write_text(
        "monitors:\n"
        f"  - {{name: central, model: lr, reference: {ref}, min_rows: 10, column_map: {json.dumps(_column_map())}}}\n"
    )
    server = KeelServer(tmp_path / "server", extra_args=["--monitors", str(spec)])
    server.start()
    try:
        serve = KeelServe(tmp_path / "serve", [f"lr={onnx}"])
        serve.log_dir = server.artifacts_dir / "inference-log"
        serve.start()
        try:
            _infer(serve, "lr", X[:400], "central")
        finally:
            serve.stop()  # the log's files are finished when the serving process stops
        response = requests.post(f"{server.uri}/v2/monitors/central/run")
        assert response.status_code == 200, response.text
        [result] = response.json()["results"]
        assert result["status"] == "ok" and result["rows"] == 400, result
        assert result["drift"]["dataset_drifted"] is False
        metrics = requests.get(f"{server.uri}/metrics").text
        assert 'keel_monitor_window_rows{model="lr",monitor="central",version="1"} 400' in metrics
        out = subprocess.run([str(keel_bin()), "monitor", "results", "central", "--url", server.uri],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "central | model lr version 1" in out.stdout, out.stderr
        # The results share the metadata database with tracking, which goes on working.
        from mlflow.tracking import MlflowClient

        tracking = MlflowClient(tracking_uri=server.uri)
        experiment = tracking.create_experiment("beside-monitors")
        run = tracking.create_run(experiment)
        tracking.log_metric(run.info.run_id, "accuracy", 0.9)
        assert tracking.get_run(run.info.run_id).data.metrics == {"accuracy": 0.9}
        import sqlite3

        tables = {row[0] for row in sqlite3.connect(server.db_path).execute("SELECT name FROM sqlite_master")}
        assert {"monitor_results", "labels", "monitor_specs", "experiments"} <= tables
    finally:
        server.stop()
    spec.write_text("monitors:\n  - {name: nowhere, model: lr}\n")
    out = subprocess.run([str(keel_bin()), "server", "--port", "0", "--monitors", str(spec),
                          "--backend-store-uri", f"sqlite:///{tmp_path / 'other.db'}",
                          "--artifacts-destination", str(tmp_path / "other-artifacts")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "needs `reference:` in `keel server`" in out.stderr, out.stderr


def test_reference_can_be_a_dvc_data_version_and_thresholds_are_per_column(monitored, tmp_path):
    """`reference_rev`: the reference as `keel data` tracked it at a git revision (read from the
    DVC cache), not the file now in the workspace; `column_thresholds` replace a test's default."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    server, X, _ = monitored
    repo = tmp_path / "data-repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}

    def run(*args):
        out = subprocess.run(list(args), cwd=repo, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr

    run("git", "init", "-q")
    run(str(keel_bin()), "data", "init")
    reference = repo / "ref.parquet"
    base = pq.read_table(server.work_dir / "ref.parquet")
    pq.write_table(base, reference)
    run(str(keel_bin()), "data", "add", "ref.parquet")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "reference v1")
    run("git", "tag", "v1")
    shifted = base.to_pandas()
    for i in range(N_FEATURES):
        shifted[f"f{i}"] += 3.0
    pq.write_table(pa.Table.from_pandas(shifted, preserve_index=False), reference)
    run(str(keel_bin()), "data", "add", "ref.parquet")
    run("git", "commit", "-qam", "reference v2")

    _infer(server, "lr", X[:400], "versioned")
    spec = {"model": "lr", "reference": str(reference), "column_map": _column_map(), "min_rows": 5}
    assert requests.put(f"{server.url}/v2/monitors/at-v1", json={**spec, "reference_rev": "v1"}).status_code == 201
    assert requests.put(f"{server.url}/v2/monitors/at-head", json=spec).status_code == 201
    [at_v1] = _run(server, "at-v1")
    [at_head] = _run(server, "at-head")
    assert at_v1["drift"]["dataset_drifted"] is False
    assert at_head["drift"]["dataset_drifted"] is True

    strict = {**spec, "reference_rev": "v1", "column_thresholds": {"f0": 0.0}}
    assert requests.put(f"{server.url}/v2/monitors/strict", json=strict).status_code == 201
    [result] = _run(server, "strict")
    f0 = next(c for c in result["drift"]["columns"] if c["column"] == "f0")
    assert f0["threshold"] == 0.0 and f0["drifted"] is True

    response = requests.put(f"{server.url}/v2/monitors/bad-rev", json={**spec, "reference_rev": "no-such-rev"})
    assert response.status_code == 400 and "no-such-rev" in response.json()["error"], response.text
    for name in ("at-v1", "at-head", "strict"):
        assert requests.delete(f"{server.url}/v2/monitors/{name}").status_code == 200
