"""Metric history: paging past one page, special float values, latest-value semantics."""

import math

import pytest
from mlflow.entities import Metric
from e2e_helpers import now_ms

# MlflowClient.get_metric_history asks for pages of 25,000 points
# (mlflow.store.tracking.GET_METRIC_HISTORY_MAX_RESULTS) and follows next_page_token.
N_STEPS_OVER_ONE_PAGE = 30_000


def test_metric_history_longer_than_one_page(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    start = now_ms()
    metrics = [Metric("loss", step * 0.5, start + step, step) for step in range(N_STEPS_OVER_ONE_PAGE)]
    client.log_batch(run_id, metrics=metrics)  # the client sends 30 requests of 1000

    history = client.get_metric_history(run_id, "loss")
    assert len(history) == N_STEPS_OVER_ONE_PAGE
    assert sorted(m.step for m in history) == list(range(N_STEPS_OVER_ONE_PAGE))
    assert all(m.value == m.step * 0.5 and m.timestamp == start + m.step for m in history)
    assert client.get_run(run_id).data.metrics["loss"] == (N_STEPS_OVER_ONE_PAGE - 1) * 0.5


def test_metric_history_pages_with_tokens(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    start = now_ms()
    client.log_batch(run_id, metrics=[Metric("acc", float(s), start, s) for s in range(250)])
    store = client._tracking_client.store
    seen, token, n_pages = [], None, 0
    while True:
        page = store.get_metric_history(run_id, "acc", max_results=100, page_token=token)
        assert len(page) <= 100
        seen.extend(m.step for m in page)
        n_pages += 1
        token = page.token
        if not token:
            break
        assert n_pages < 10, "paging does not terminate"
    assert n_pages == 3
    assert sorted(seen) == list(range(250))


def test_nan_and_extreme_values_round_trip(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    timestamp = now_ms()
    values = [float("nan"), 1.5, -0.0, 1e308, -1e308, 5e-324]
    client.log_batch(run_id, metrics=[Metric("odd", v, timestamp, step) for step, v in enumerate(values)])
    client.log_metric(run_id, "only_nan", float("nan"))

    by_step = {m.step: m.value for m in client.get_metric_history(run_id, "odd")}
    assert math.isnan(by_step[0])
    assert [by_step[step] for step in range(1, len(values))] == values[1:]
    got = client.get_run(run_id)
    assert got.data.metrics["odd"] == 5e-324  # the value at the highest step
    assert math.isnan(got.data.metrics["only_nan"])


@pytest.mark.beyond_mlflow  # MLflow's SQL store clamps to +-1.7976931348623157e308
def test_infinities_round_trip(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    timestamp = now_ms()
    client.log_batch(run_id, metrics=[Metric("inf", math.inf, timestamp, 0),
                                      Metric("inf", -math.inf, timestamp, 1)])
    by_step = {m.step: m.value for m in client.get_metric_history(run_id, "inf")}
    assert by_step == {0: math.inf, 1: -math.inf}
    assert client.get_run(run_id).data.metrics["inf"] == -math.inf


def test_latest_metric_is_the_highest_step_not_the_last_logged(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    timestamp = now_ms()
    client.log_metric(run_id, "m", 10.0, timestamp=timestamp, step=5)
    client.log_metric(run_id, "m", 20.0, timestamp=timestamp + 1000, step=3)
    assert client.get_run(run_id).data.metrics["m"] == 10.0
    client.log_metric(run_id, "m", 30.0, timestamp=timestamp + 2000, step=5)
    assert client.get_run(run_id).data.metrics["m"] == 30.0  # same step: later timestamp wins


def test_repeated_values_at_one_step_are_all_kept(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    timestamp = now_ms()
    client.log_metric(run_id, "m", 1.0, timestamp=timestamp, step=0)
    client.log_metric(run_id, "m", 2.0, timestamp=timestamp + 1, step=0)
    history = client.get_metric_history(run_id, "m")
    assert sorted(m.value for m in history) == [1.0, 2.0]


def test_history_of_unknown_metric_is_empty(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    assert list(client.get_metric_history(run_id, "never-logged")) == []


def test_negative_and_large_steps(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    timestamp = now_ms()
    steps = [-3, 0, 2**40]
    client.log_batch(run_id, metrics=[Metric("s", float(i), timestamp, s) for i, s in enumerate(steps)])
    assert sorted(m.step for m in client.get_metric_history(run_id, "s")) == steps


@pytest.mark.parametrize("value", [True, 3])
def test_integer_and_bool_metric_values_become_floats(client, experiment_id, value):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "v", value)
    assert client.get_run(run_id).data.metrics["v"] == float(value)
