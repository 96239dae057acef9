"""The fluent API (`mlflow.start_run`, `mlflow.log_*`) as a training script uses it."""

import mlflow
import pytest
from e2e_helpers import now_ms, raises_mlflow, unique_name


def test_fluent_run_records_params_metrics_tags_and_finishes(client):
    experiment = mlflow.set_experiment(unique_name("fluent"))
    started_ms = now_ms()
    with mlflow.start_run(run_name="fluent-run") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 5, "optimizer": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=4)
        mlflow.set_tag("team", "keel")
        mlflow.set_tags({"stage": "dev", "unicode": "héllo wörld ✓"})
        run_id = run.info.run_id

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.lifecycle_stage == "active"
    assert got.info.run_name == "fluent-run"
    assert got.info.experiment_id == experiment.experiment_id
    assert got.info.start_time >= started_ms - 5_000
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time
    assert got.info.artifact_uri.startswith(f"mlflow-artifacts:/{experiment.experiment_id}/")
    assert got.data.params == {"lr": "0.01", "epochs": "5", "optimizer": "adam"}
    assert got.data.metrics == {"loss": pytest.approx(0.2), "acc": 0.9, "f1": 0.8}
    assert got.data.tags["team"] == "keel"
    assert got.data.tags["stage"] == "dev"
    assert got.data.tags["unicode"] == "héllo wörld ✓"
    assert got.data.tags["mlflow.runName"] == "fluent-run"

    history = client.get_metric_history(run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [
        (step, pytest.approx(1.0 / (step + 1))) for step in range(5)
    ]


def test_set_experiment_creates_then_reuses_by_name(client):
    name = unique_name("set-exp")
    first = mlflow.set_experiment(name)
    second = mlflow.set_experiment(name)
    assert first.experiment_id == second.experiment_id
    assert client.get_experiment_by_name(name).experiment_id == first.experiment_id
    assert first.artifact_location == f"mlflow-artifacts:/{first.experiment_id}"


def test_run_that_raises_is_marked_failed(client):
    mlflow.set_experiment(unique_name("fluent-failed"))
    with pytest.raises(RuntimeError):
        with mlflow.start_run() as run:
            mlflow.log_metric("x", 1.0)
            raise RuntimeError("training blew up")
    assert client.get_run(run.info.run_id).info.status == "FAILED"


def test_end_run_with_explicit_status(client):
    mlflow.set_experiment(unique_name("fluent-killed"))
    run = mlflow.start_run()
    mlflow.end_run(status="KILLED")
    assert client.get_run(run.info.run_id).info.status == "KILLED"


def test_nested_runs_record_parent(client):
    mlflow.set_experiment(unique_name("fluent-nested"))
    with mlflow.start_run() as parent:
        with mlflow.start_run(nested=True) as child:
            mlflow.log_param("inner", "yes")
    got = client.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.data.params == {"inner": "yes"}


def test_update_run_name_and_status(client, experiment_id):
    run = client.create_run(experiment_id, run_name="before")
    assert client.get_run(run.info.run_id).info.status == "RUNNING"
    client.update_run(run.info.run_id, name="after")
    client.set_terminated(run.info.run_id, status="FAILED")
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == "after"
    assert got.data.tags["mlflow.runName"] == "after"
    assert got.info.status == "FAILED"
    assert got.info.end_time is not None


def test_get_unknown_run_is_resource_does_not_exist(client):
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_run("0" * 32)


def test_create_run_in_unknown_experiment_is_refused(client):
    with pytest.raises(mlflow.exceptions.MlflowException) as info:
        client.create_run("987654321")
    assert info.value.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
