"""Run search: the filter grammar on metrics, params, tags, attributes; ordering; pages."""

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag
from e2e_helpers import now_ms, raises_mlflow, unique_name

# name: (status, params, metrics, tags)
RUNS = {
    "alpha": ("FINISHED", {"p": "a"}, {"f1 score": 0.9, "acc": 0.7}, {"t": "team-red"}),
    "beta": ("FINISHED", {"p": "b"}, {"f1 score": 0.4, "acc": 0.9}, {"t": "team-blue"}),
    "gamma": ("FAILED", {"p": "c"}, {"f1 score": 0.6}, {"t": "TEAM-green"}),
    "delta": ("RUNNING", {}, {"acc": 0.1}, {}),
}


@pytest.fixture(scope="module")
def seeded(client):
    experiment_id = client.create_experiment(unique_name("search-runs"))
    run_ids = {}
    base_ms = now_ms() - 60_000
    for idx, (name, (status, params, metrics, tags)) in enumerate(RUNS.items()):
        # Distinct start times keep the default order (newest first) deterministic.
        run_id = client.create_run(experiment_id, run_name=name,
                                   start_time=base_ms + idx * 1000).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now_ms(), 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if status != "RUNNING":
            client.set_terminated(run_id, status=status)
        run_ids[name] = run_id
    return experiment_id, run_ids


def found_names(client, experiment_id, filter_string="", order_by=None):
    runs = client.search_runs([experiment_id], filter_string, order_by=order_by)
    return [run.info.run_name for run in runs]


FILTERS = {
    "attributes.status = 'FINISHED'": {"alpha", "beta"},
    "attributes.status != 'RUNNING'": {"alpha", "beta", "gamma"},
    "status = 'FAILED'": {"gamma"},
    "run_name = 'beta'": {"beta"},
    "attributes.run_name LIKE 'g%'": {"gamma"},
    "metrics.`f1 score` > 0.5": {"alpha", "gamma"},
    "metrics.`f1 score` <= 0.6": {"beta", "gamma"},
    "metrics.acc = 0.9": {"beta"},
    "metrics.acc != 0.9": {"alpha", "delta"},
    "params.p = 'a'": {"alpha"},
    "params.p != 'a'": {"beta", "gamma"},
    "params.p LIKE '%'": {"alpha", "beta", "gamma"},
    "params.p IS NULL": {"delta"},
    "params.p IS NOT NULL": {"alpha", "beta", "gamma"},
    "tags.t LIKE 'team-%'": {"alpha", "beta"},
    "tags.t ILIKE 'team-%'": {"alpha", "beta", "gamma"},
    "tags.t IS NULL": {"delta"},
    "tags.`t` = 'team-red'": {"alpha"},
    "metrics.acc >= 0.7 and params.p = 'b'": {"beta"},
    "metrics.acc > 0.05 AND tags.t ILIKE '%RED' AND attributes.status = 'FINISHED'": {"alpha"},
    "attributes.start_time > 0": {"alpha", "beta", "gamma", "delta"},
    "metrics.acc > 5": set(),
}


@pytest.mark.parametrize("filter_string,expected", FILTERS.items(), ids=FILTERS.keys())
def test_filter(client, seeded, filter_string, expected):
    experiment_id, _ = seeded
    assert set(found_names(client, experiment_id, filter_string)) == expected


def test_filter_on_run_id_in_list(client, seeded):
    experiment_id, run_ids = seeded
    flt = f"attributes.run_id IN ('{run_ids['alpha']}', '{run_ids['delta']}')"
    assert set(found_names(client, experiment_id, flt)) == {"alpha", "delta"}


ORDERINGS = {
    "metrics.acc DESC": ["beta", "alpha", "delta", "gamma"],  # no value: last
    "metrics.acc ASC": ["delta", "alpha", "beta", "gamma"],  # no value: last here too
    "metrics.`f1 score` DESC": ["alpha", "gamma", "beta", "delta"],
    "params.p DESC": ["gamma", "beta", "alpha", "delta"],
    "attributes.run_name ASC": ["alpha", "beta", "delta", "gamma"],
}


@pytest.mark.parametrize("order_by,expected", ORDERINGS.items(), ids=ORDERINGS.keys())
def test_order_by(client, seeded, order_by, expected):
    experiment_id, _ = seeded
    assert found_names(client, experiment_id, order_by=[order_by]) == expected


def test_default_order_is_newest_first(client, seeded):
    experiment_id, _ = seeded
    assert found_names(client, experiment_id) == list(reversed(RUNS))


INVALID_FILTERS = [
    "params.p IN ('a', 'b')",  # IN is only allowed on string attributes
    "metrics.acc LIKE '0.%'",
    "metrics.acc > 'high'",
    "params.p > 'a'",
    "unknown.p = 'a'",
    "attributes.colour = 'red'",
    "metrics.acc >",
    "metrics.acc > 0.5 OR params.p = 'a'",
]


@pytest.mark.parametrize("bad_filter", INVALID_FILTERS)
def test_invalid_filter_is_refused(client, seeded, bad_filter):
    experiment_id, _ = seeded
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([experiment_id], bad_filter)


@pytest.mark.parametrize("bad_order", ["metrics.acc SIDEWAYS", "colour ASC", "metrics.acc DESC extra"])
def test_invalid_order_by_is_refused(client, seeded, bad_order):
    experiment_id, _ = seeded
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([experiment_id], "", order_by=[bad_order])


N_PAGED_RUNS = 25


@pytest.fixture(scope="module")
def paged_experiment(client):
    experiment_id = client.create_experiment(unique_name("search-pages"))
    run_ids = []
    for idx in range(N_PAGED_RUNS):
        run_id = client.create_run(experiment_id, run_name=f"r{idx:02d}",
                                   start_time=now_ms() - 60_000 + idx).info.run_id
        client.log_batch(run_id, metrics=[Metric("idx", float(idx), now_ms(), 0)],
                         params=[Param("parity", "even" if idx % 2 == 0 else "odd")])
        run_ids.append(run_id)
    return experiment_id, run_ids


def test_pages_cover_every_run_once_in_order(client, paged_experiment):
    experiment_id, run_ids = paged_experiment
    collected, token, page_sizes = [], None, []
    while True:
        page = client.search_runs([experiment_id], "", order_by=["metrics.idx ASC"],
                                  max_results=10, page_token=token)
        page_sizes.append(len(page))
        collected.extend(run.info.run_id for run in page)
        token = page.token
        if not token:
            break
        assert len(page_sizes) < 10, "paging does not terminate"
    assert page_sizes == [10, 10, 5]
    assert collected == run_ids


def test_pages_with_filter(client, paged_experiment):
    experiment_id, run_ids = paged_experiment
    first = client.search_runs([experiment_id], "params.parity = 'even'",
                               order_by=["metrics.idx DESC"], max_results=7)
    second = client.search_runs([experiment_id], "params.parity = 'even'",
                                order_by=["metrics.idx DESC"], max_results=7, page_token=first.token)
    collected = [r.info.run_id for r in first] + [r.info.run_id for r in second]
    assert collected == [run_ids[i] for i in range(24, -1, -2)]
    assert not second.token


def test_search_across_experiments(client, seeded, paged_experiment):
    runs = client.search_runs([seeded[0], paged_experiment[0]], "", max_results=1000)
    assert len(runs) == len(RUNS) + N_PAGED_RUNS


def test_fluent_search_runs_dataframe(client, seeded):
    experiment_id, run_ids = seeded
    frame = mlflow.search_runs(experiment_ids=[experiment_id],
                               filter_string="metrics.`f1 score` > 0.1",
                               order_by=["metrics.`f1 score` DESC"])
    assert list(frame["run_id"]) == [run_ids["alpha"], run_ids["gamma"], run_ids["beta"]]
    assert list(frame["metrics.f1 score"]) == [0.9, 0.6, 0.4]
    assert list(frame["params.p"]) == ["a", "c", "b"]
    assert list(frame["tags.t"]) == ["team-red", "TEAM-green", "team-blue"]
    assert list(frame["status"]) == ["FINISHED", "FAILED", "FINISHED"]


def test_fluent_search_runs_pages_internally(client, paged_experiment):
    experiment_id, run_ids = paged_experiment
    as_list = mlflow.search_runs(experiment_ids=[experiment_id], output_format="list",
                                 order_by=["metrics.idx ASC"])
    assert [r.info.run_id for r in as_list] == run_ids


def test_search_by_experiment_name(client, seeded):
    experiment_id, _ = seeded
    name = client.get_experiment(experiment_id).name
    frame = mlflow.search_runs(experiment_names=[name])
    assert len(frame) == len(RUNS)
