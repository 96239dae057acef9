"""What the server acknowledged survives `kill -9` and a restart on the same database."""

import hashlib

import pytest
import requests
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from conftest import KeelServer
from e2e_helpers import now_ms


@pytest.fixture
def own_server(tmp_path):
    server = KeelServer(tmp_path / "durable")
    server.start()
    yield server
    server.stop()


def test_acknowledged_writes_survive_kill_9(own_server, tmp_path):
    client = MlflowClient(tracking_uri=own_server.uri)
    experiment_id = client.create_experiment("durable", tags={"k": "v"})
    run_id = client.create_run(experiment_id, run_name="survivor").info.run_id
    timestamp = now_ms()
    client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (s + 1), timestamp + s, s) for s in range(500)])
    client.log_param(run_id, "lr", "0.01")
    client.set_tag(run_id, "note", "before the crash")
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(bytes(range(256)) * 4096)
    client.log_artifact(run_id, str(artifact))
    client.set_terminated(run_id)
    last_run_id = client.create_run(experiment_id, run_name="last-write").info.run_id

    own_server.kill9()
    own_server.start()

    client = MlflowClient(tracking_uri=own_server.uri)
    experiment = client.get_experiment_by_name("durable")
    assert experiment.experiment_id == experiment_id
    assert experiment.tags["k"] == "v"
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "survivor"
    assert run.data.params == {"lr": "0.01"}
    assert run.data.tags["note"] == "before the crash"
    assert run.data.metrics["loss"] == pytest.approx(1.0 / 500)
    assert len(client.get_metric_history(run_id, "loss")) == 500
    assert client.get_run(last_run_id).info.run_name == "last-write"
    (tmp_path / "back").mkdir()
    restored = client.download_artifacts(run_id, "weights.bin", str(tmp_path / "back"))
    with open(restored, "rb") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(artifact.read_bytes()).digest()

    # The restarted server keeps working on the same data.
    client.log_param(last_run_id, "after", "restart")
    assert client.get_run(last_run_id).data.params == {"after": "restart"}
    assert requests.get(f"{own_server.uri}/health").status_code == 200


def test_graceful_stop_and_restart_keeps_ids_moving_forward(own_server):
    client = MlflowClient(tracking_uri=own_server.uri)
    first = client.create_experiment("before-restart")
    own_server.stop()
    own_server.start()
    client = MlflowClient(tracking_uri=own_server.uri)
    second = client.create_experiment("after-restart")
    assert second != first
    assert client.get_experiment(first).name == "before-restart"
    assert client.get_experiment(second).name == "after-restart"
