"""Edge cases a careful client (or an attacker) reaches: limits, names, tokens, origins."""

import uuid

import pytest
import requests
from mlflow.entities import Metric
from e2e_helpers import now_ms, raises_mlflow, unique_name

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.mark.parametrize("key", ["../escape", "a/../b", "./x", "bad\nkey", "semi;colon"])
def test_metric_keys_that_are_not_safe_names_are_refused(client, experiment_id, key):
    run_id = client.create_run(experiment_id).info.run_id
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client._tracking_client.store.log_metric(run_id, Metric(key, 1.0, now_ms(), 0))


@pytest.mark.parametrize("key", ["with space", "unicode-学习率", "slash/ok", "dots.and-dashes_1", "colon:ok"])
def test_param_keys_with_allowed_characters_round_trip(client, experiment_id, key):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, key, "v")
    assert client.get_run(run_id).data.params == {key: "v"}


LONG_VALUES = {
    # endpoint, body-maker, reader, limit. MLflow's server silently truncates such values
    # (MLFLOW_TRUNCATE_LONG_VALUES); Keel refuses them so nothing is lost without a word.
    "log-parameter": ("runs/log-parameter", lambda run_id, v: {"run_id": run_id, "key": "k", "value": v},
                      lambda run: run.data.params.get("k"), 6000),
    "set-tag": ("runs/set-tag", lambda run_id, v: {"run_id": run_id, "key": "k", "value": v},
                lambda run: run.data.tags.get("k"), 8000),
    "log-batch param": ("runs/log-batch",
                        lambda run_id, v: {"run_id": run_id, "params": [{"key": "k", "value": v}]},
                        lambda run: run.data.params.get("k"), 6000),
}


@pytest.mark.beyond_mlflow
@pytest.mark.parametrize("endpoint,make_body,read_back,limit", LONG_VALUES.values(), ids=LONG_VALUES.keys())
def test_over_long_values_from_other_clients_are_refused_not_truncated(
        tracking_uri, client, experiment_id, endpoint, make_body, read_back, limit):
    """The Python client truncates before sending; other clients get a clear error instead of lost data."""
    run_id = client.create_run(experiment_id).info.run_id
    response = requests.post(f"{tracking_uri}{API}/{endpoint}", json=make_body(run_id, "x" * (limit + 1)))
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "exceeds the maximum length" in response.json()["message"]
    assert read_back(client.get_run(run_id)) is None
    response = requests.post(f"{tracking_uri}{API}/{endpoint}", json=make_body(run_id, "x" * limit))
    assert response.status_code == 200, response.text
    assert read_back(client.get_run(run_id)) == "x" * limit


def test_search_runs_max_results_over_threshold_is_refused(client, experiment_id):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([experiment_id], "", max_results=50_001)


def test_search_runs_with_garbage_page_token_is_refused(client, experiment_id):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([experiment_id], "", page_token="not-a-token")


def test_search_experiments_with_garbage_page_token_is_refused(client):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_experiments(page_token="bm90LWEtdG9rZW4=")


def test_experiment_name_with_url_special_characters(client):
    name = f"a&b=c/d?e#f %20 ü 'q' {uuid.uuid4().hex[:6]}"
    experiment_id = client.create_experiment(name)
    assert client.get_experiment_by_name(name).experiment_id == experiment_id
    assert client.get_experiment(experiment_id).name == name


def test_filter_with_quoted_keys(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "with space", "v")
    client.set_tag(run_id, "dotted.key", "w")
    assert [r.info.run_id for r in client.search_runs([experiment_id], 'params."with space" = \'v\'')] == [run_id]
    assert [r.info.run_id for r in client.search_runs([experiment_id], "tags.`dotted.key` = 'w'")] == [run_id]


def test_like_wildcards(client, experiment_id):
    ids = {}
    for value in ("abc", "a_c", "axc", "ABC"):
        ids[value] = client.create_run(experiment_id).info.run_id
        client.log_param(ids[value], "p", value)

    def found(flt):
        return {r.info.run_id for r in client.search_runs([experiment_id], flt)}

    assert found("params.p LIKE 'a_c'") == {ids["abc"], ids["a_c"], ids["axc"]}
    assert found("params.p LIKE 'a%'") == {ids["abc"], ids["a_c"], ids["axc"]}
    assert found("params.p ILIKE 'abc'") == {ids["abc"], ids["ABC"]}
    assert found("params.p = 'ABC'") == {ids["ABC"]}


def test_order_by_several_keys(client, experiment_id):
    rows = [("b", 1.0), ("a", 2.0), ("a", 1.0), ("b", 2.0)]
    ids = []
    for group, score in rows:
        run_id = client.create_run(experiment_id).info.run_id
        client.log_param(run_id, "group", group)
        client.log_metric(run_id, "score", score)
        ids.append(run_id)
    runs = client.search_runs([experiment_id], "", order_by=["params.group ASC", "metrics.score DESC"])
    assert [r.info.run_id for r in runs] == [ids[1], ids[2], ids[3], ids[0]]


def test_artifact_delete_through_proxy(tracking_uri, client, experiment_id, tmp_path):
    run = client.create_run(experiment_id)
    source = tmp_path / "gone.txt"
    source.write_text("bye")
    client.log_artifact(run.info.run_id, str(source))
    proxied = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    response = requests.delete(f"{tracking_uri}{ARTIFACTS}/{proxied}/gone.txt")
    assert response.status_code == 200
    assert client.list_artifacts(run.info.run_id) == []


def test_traversal_on_artifact_delete_deletes_nothing(tracking_uri, keel):
    victim_dir = keel.artifacts_dir.parent
    victim = victim_dir / f"victim-{uuid.uuid4().hex}"
    victim.write_text("precious")
    for path in (f"..%2F{victim.name}", f"0/..%2F..%2F{victim.name}"):
        response = requests.delete(f"{tracking_uri}{ARTIFACTS}/{path}")
        assert response.status_code == 400, path
    # An absolute path is either refused or taken relative to the artifact root (MLflow).
    response = requests.delete(f"{tracking_uri}{ARTIFACTS}/" + str(victim).replace("/", "%2F"))
    assert response.status_code in (200, 400, 404)
    assert victim.read_text() == "precious"


def test_cross_origin_state_change_is_refused(tracking_uri):
    """A web page on another origin must not be able to drive the API from a browser."""
    name = unique_name("csrf")
    response = requests.post(f"{tracking_uri}{API}/experiments/create", json={"name": name},
                             headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    response = requests.get(f"{tracking_uri}{API}/experiments/get-by-name",
                            params={"experiment_name": name})
    assert response.status_code == 404


def test_same_origin_state_change_is_allowed(tracking_uri):
    response = requests.post(f"{tracking_uri}{API}/experiments/create", json={"name": unique_name("cors-ok")},
                             headers={"Origin": tracking_uri})
    assert response.status_code == 200


def test_run_name_follows_the_run_name_tag(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    generated = client.get_run(run_id)
    assert generated.info.run_name  # MLflow generates a name when none is given
    assert generated.data.tags["mlflow.runName"] == generated.info.run_name
    client.set_tag(run_id, "mlflow.runName", "renamed-by-tag")
    assert client.get_run(run_id).info.run_name == "renamed-by-tag"


def test_create_run_takes_its_name_from_the_tag(client, experiment_id):
    run = client.create_run(experiment_id, tags={"mlflow.runName": "from-tag"})
    assert client.get_run(run.info.run_id).info.run_name == "from-tag"


@pytest.mark.beyond_mlflow  # MLflow answers 200 and leaves the status as it was
def test_invalid_run_status_is_refused(tracking_uri, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    response = requests.post(f"{tracking_uri}{API}/runs/update", json={"run_id": run_id, "status": "BOGUS"})
    assert response.status_code == 400
    assert client.get_run(run_id).info.status == "RUNNING"


def test_ajax_artifact_listing(tracking_uri, client, experiment_id, tmp_path):
    run = client.create_run(experiment_id)
    source = tmp_path / "f.txt"
    source.write_text("x")
    client.log_artifact(run.info.run_id, str(source))
    response = requests.get(f"{tracking_uri}{API}/artifacts/list", params={"run_id": run.info.run_id})
    assert response.status_code == 200
    assert [f["path"] for f in response.json()["files"]] == ["f.txt"]
    proxied = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    response = requests.get(f"{tracking_uri}/ajax-api/2.0/mlflow-artifacts/artifacts", params={"path": proxied})
    assert response.status_code == 200
    assert [f["path"] for f in response.json()["files"]] == ["f.txt"]


@pytest.mark.parametrize("path", ["../../../../../../etc", "a/../../..", "..%2F..%2Fetc"])
def test_run_artifact_listing_traversal_is_400(tracking_uri, client, experiment_id, path):
    run_id = client.create_run(experiment_id).info.run_id
    response = requests.get(f"{tracking_uri}{API}/artifacts/list", params={"run_id": run_id, "path": path})
    assert response.status_code == 400
    assert "files" not in response.json()


def test_run_artifact_listing_of_absolute_path_lists_nothing_of_the_host(tracking_uri, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    response = requests.get(f"{tracking_uri}{API}/artifacts/list", params={"run_id": run_id, "path": "/etc"})
    assert response.status_code in (200, 400)
    assert response.json().get("files", []) == []


@pytest.mark.parametrize("path", ["../../../../../../etc/passwd", "/etc/passwd"])
def test_ui_get_artifact_traversal_reads_nothing(tracking_uri, client, experiment_id, path):
    run_id = client.create_run(experiment_id).info.run_id
    response = requests.get(f"{tracking_uri}/get-artifact", params={"path": path, "run_uuid": run_id})
    assert response.status_code in (400, 404)
    assert "root:x:0:0" not in response.text


def test_experiment_with_foreign_artifact_location_leaks_nothing(tracking_uri, client):
    """A client-chosen artifact location must not turn the server into a file reader."""
    response = requests.post(f"{tracking_uri}{API}/experiments/create",
                             json={"name": unique_name("foreign-loc"), "artifact_location": "file:///etc"})
    if response.status_code != 200:
        assert response.status_code == 400  # refusing such locations outright is fine too
        return
    experiment_id = response.json()["experiment_id"]
    run_id = client.create_run(experiment_id).info.run_id
    for url, params in (
        (f"{tracking_uri}/get-artifact", {"path": "passwd", "run_uuid": run_id}),
        (f"{tracking_uri}/get-artifact", {"path": "../../passwd", "run_uuid": run_id}),
        (f"{tracking_uri}{API}/artifacts/list", {"run_id": run_id, "path": "../.."}),
    ):
        response = requests.get(url, params=params)
        assert "root:x:0:0" not in response.text
        assert '"passwd"' not in response.text
