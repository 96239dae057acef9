"""`log-batch`: the limits MLflow enforces per request, and all-or-nothing writes.

`MlflowClient.log_batch` splits big inputs into requests that fit the limits, so the
over-limit cases go through the client's REST store, which sends exactly one request.
"""

import pytest
from mlflow.entities import Metric, Param, RunTag
from e2e_helpers import now_ms, raises_mlflow


def rest_store(client):
    return client._tracking_client.store


def test_log_batch_with_1000_metrics_100_params_100_tags(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    timestamp = now_ms()
    metrics = [Metric(f"m{idx}", float(idx), timestamp, 0) for idx in range(1000)]
    params = [Param(f"p{idx}", f"value-{idx}") for idx in range(100)]
    tags = [RunTag(f"t{idx}", f"tag-{idx}") for idx in range(100)]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    got = client.get_run(run_id)
    assert got.data.metrics == {f"m{idx}": float(idx) for idx in range(1000)}
    assert got.data.params == {f"p{idx}": f"value-{idx}" for idx in range(100)}
    for idx in range(100):
        assert got.data.tags[f"t{idx}"] == f"tag-{idx}"


def test_single_request_at_exact_limits_is_accepted(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    timestamp = now_ms()
    store = rest_store(client)
    store.log_batch(run_id, [Metric(f"m{i}", 1.0, timestamp, 0) for i in range(1000)], [], [])
    store.log_batch(run_id, [], [Param(f"p{i}", "v") for i in range(100)], [])
    store.log_batch(run_id, [], [], [RunTag(f"t{i}", "v") for i in range(100)])
    got = client.get_run(run_id)
    assert len(got.data.metrics) == 1000
    assert len(got.data.params) == 100


OVER_LIMIT_CASES = {
    "1001 metrics": (1001, 0, 0),
    "101 params": (0, 101, 0),
    "101 tags": (0, 0, 101),
    "1001 entities in total": (901, 50, 50),
}


@pytest.mark.parametrize("n_metrics,n_params,n_tags", OVER_LIMIT_CASES.values(),
                         ids=OVER_LIMIT_CASES.keys())
def test_over_limit_batch_is_refused_and_writes_nothing(client, experiment_id,
                                                        n_metrics, n_params, n_tags):
    run_id = client.create_run(experiment_id).info.run_id
    timestamp = now_ms()
    metrics = [Metric(f"m{i}", 1.0, timestamp, 0) for i in range(n_metrics)]
    params = [Param(f"p{i}", "v") for i in range(n_params)]
    tags = [RunTag(f"t{i}", "v") for i in range(n_tags)]
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        rest_store(client).log_batch(run_id, metrics, params, tags)
    got = client.get_run(run_id)
    assert got.data.metrics == {}
    assert got.data.params == {}
    assert not any(key.startswith("t") and key[1:].isdigit() for key in got.data.tags)


def test_batch_with_conflicting_param_is_refused_whole(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "lr", "0.1")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_batch(run_id, metrics=[Metric("loss", 0.5, now_ms(), 0)],
                         params=[Param("lr", "0.2")])
    assert client.get_run(run_id).data.params == {"lr": "0.1"}


def test_batch_with_duplicate_param_keys_is_refused(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        rest_store(client).log_batch(run_id, [], [Param("a", "1"), Param("a", "2")], [])
    assert client.get_run(run_id).data.params == {}


def test_batch_with_too_long_metric_key_is_refused(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        rest_store(client).log_batch(run_id, [Metric("k" * 251, 1.0, now_ms(), 0)], [], [])


def test_batch_with_same_param_value_again_is_accepted(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(run_id, params=[Param("a", "1"), Param("b", "2")])
    client.log_batch(run_id, params=[Param("a", "1")])
    assert client.get_run(run_id).data.params == {"a": "1", "b": "2"}
