"""Params are immutable, tags are not, and a deleted run refuses writes."""

import pytest
from mlflow.entities import Metric, ViewType
from e2e_helpers import now_ms, raises_mlflow


def test_param_same_value_twice_is_ok_different_value_is_refused(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "lr", "0.1")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_param(run_id, "lr", "0.2")
    assert client.get_run(run_id).data.params == {"lr": "0.1"}


def test_long_param_value_round_trips(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    value = "x" * 6000
    client.log_param(run_id, "long", value)
    assert client.get_run(run_id).data.params["long"] == value


def test_tags_can_be_overwritten_and_deleted(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.set_tag(run_id, "t", "one")
    client.set_tag(run_id, "t", "two")
    assert client.get_run(run_id).data.tags["t"] == "two"
    client.delete_tag(run_id, "t")
    assert "t" not in client.get_run(run_id).data.tags
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.delete_tag(run_id, "t")


WRITES = {
    "log_param": lambda client, run_id: client.log_param(run_id, "p", "v"),
    "log_metric": lambda client, run_id: client.log_metric(run_id, "m", 1.0),
    "set_tag": lambda client, run_id: client.set_tag(run_id, "t", "v"),
    "log_batch": lambda client, run_id: client.log_batch(
        run_id, metrics=[Metric("m", 1.0, now_ms(), 0)]),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_writes_to_deleted_run_are_refused(client, experiment_id, write):
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        write(client, run_id)
    got = client.get_run(run_id)
    assert got.info.lifecycle_stage == "deleted"
    assert got.data.params == {} and got.data.metrics == {}
    assert "t" not in got.data.tags


def test_restored_run_accepts_writes_again(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    client.restore_run(run_id)
    client.log_param(run_id, "p", "v")
    got = client.get_run(run_id)
    assert got.info.lifecycle_stage == "active"
    assert got.data.params == {"p": "v"}


def test_deleted_runs_are_hidden_from_search_unless_asked(client, experiment_id):
    kept = client.create_run(experiment_id).info.run_id
    deleted = client.create_run(experiment_id).info.run_id
    client.delete_run(deleted)
    active = {r.info.run_id for r in client.search_runs([experiment_id])}
    only_deleted = {r.info.run_id for r in client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)}
    every = {r.info.run_id for r in client.search_runs([experiment_id], run_view_type=ViewType.ALL)}
    assert active == {kept}
    assert only_deleted == {deleted}
    assert every == {kept, deleted}


def test_runs_in_a_deleted_experiment_refuse_writes(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_experiment(experiment_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_param(run_id, "p", "v")
    client.restore_experiment(experiment_id)
    client.log_param(run_id, "p", "v")
    assert client.get_run(run_id).data.params == {"p": "v"}
