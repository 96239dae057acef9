"""Model registry: registering with the real client, aliases, stages, `models:/` URIs that load
through the artifact proxy, rename/delete, searches with filters and pages, error codes, and
refused sources."""

import mlflow
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from e2e_helpers import raises_mlflow, unique_name


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def trained(iris):
    features, labels = iris
    return LogisticRegression(max_iter=300).fit(features, labels)


def rest_version(server, name, version):
    """The raw JSON of a version: the 3.x client drops `model_id` when it parses responses."""
    response = requests.get(f"{server.uri}/api/2.0/mlflow/model-versions/get",
                            params={"name": name, "version": version}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["model_version"]


def log_registered(estimator, name, features):
    """Log `estimator` in a new run and register it as the next version of `name`."""
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            estimator, name="model", registered_model_name=name, input_example=features[:2]
        )
    return run, info


def test_log_model_with_registered_model_name_loads_by_version_and_alias(client, keel, iris,
                                                                         trained):
    features, _ = iris
    mlflow.set_experiment(unique_name("registry-log"))
    name = unique_name("clf")
    run, info = log_registered(trained, name, features)

    assert int(info.registered_model_version) == 1
    version = client.get_model_version(name, "1")
    assert version.status == "READY"
    assert version.current_stage == "None"
    assert version.run_id == run.info.run_id
    assert version.source == f"models:/{info.model_id}"
    assert rest_version(keel, name, "1")["model_id"] == info.model_id
    download_uri = client.get_model_version_download_uri(name, "1")
    assert download_uri == mlflow.get_logged_model(info.model_id).artifact_location
    assert download_uri.startswith("mlflow-artifacts:/")

    client.set_registered_model_alias(name, "champion", "1")
    expected = trained.predict(features[:20])
    for uri in (f"models:/{name}/1", f"models:/{name}@champion", f"models:/{name}/latest",
                f"models:/{info.model_id}"):
        loaded = mlflow.pyfunc.load_model(uri)
        np.testing.assert_array_equal(loaded.predict(features[:20]), expected, err_msg=uri)

    # MLflow 3 lists the registered versions on the logged model.
    logged = mlflow.get_logged_model(info.model_id)
    assert name in logged.tags.get("mlflow.modelVersions", "")


def test_register_model_from_a_runs_uri(client, keel, iris, trained):
    features, _ = iris
    mlflow.set_experiment(unique_name("registry-runs-uri"))
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(trained, name="model")
    name = unique_name("from-run")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert int(version.version) == 1
    got = client.get_model_version(name, "1")
    assert got.run_id == run.info.run_id
    assert rest_version(keel, name, "1")["model_id"] == info.model_id
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_array_equal(loaded.predict(features[:5]), trained.predict(features[:5]))

    # A second registration from the logged model URI is version 2.
    second = mlflow.register_model(f"models:/{info.model_id}", name)
    assert int(second.version) == 2


def test_aliases_set_get_move_and_delete(client, iris, trained):
    features, _ = iris
    mlflow.set_experiment(unique_name("registry-alias"))
    name = unique_name("aliased")
    log_registered(trained, name, features)
    log_registered(trained, name, features)

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    client.set_registered_model_alias(name, "champion", "2")
    moved = client.get_model_version_by_alias(name, "champion")
    assert moved.version == "2"
    assert moved.aliases == ["champion"]
    assert client.get_registered_model(name).aliases == {"champion": "2"}

    client.delete_registered_model_alias(name, "champion")
    assert client.get_registered_model(name).aliases == {}
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.get_model_version_by_alias(name, "champion")


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v1", "V3"])
def test_reserved_alias_names_are_refused(client, alias):
    name = unique_name("reserved")
    client.create_registered_model(name)
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.set_registered_model_alias(name, alias, "1")


def test_stages_and_latest_versions(client, iris, trained):
    features, _ = iris
    mlflow.set_experiment(unique_name("registry-stages"))
    name = unique_name("staged")
    for _ in range(3):
        log_registered(trained, name, features)
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [v.version for v in latest] == ["2"]
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/Production")
    np.testing.assert_array_equal(loaded.predict(features[:5]), trained.predict(features[:5]))


def test_rename_keeps_versions_tags_and_aliases(client, iris, trained):
    features, _ = iris
    mlflow.set_experiment(unique_name("registry-rename"))
    name = unique_name("before")
    log_registered(trained, name, features)
    client.set_registered_model_tag(name, "team", "vision")
    client.set_model_version_tag(name, "1", "quality", "good")
    client.set_registered_model_alias(name, "champion", "1")

    new_name = unique_name("after")
    client.rename_registered_model(name, new_name)
    renamed = client.get_registered_model(new_name)
    assert renamed.tags == {"team": "vision"}
    assert renamed.aliases == {"champion": "1"}
    assert client.get_model_version(new_name, "1").tags == {"quality": "good"}
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(name)
    loaded = mlflow.pyfunc.load_model(f"models:/{new_name}@champion")
    np.testing.assert_array_equal(loaded.predict(features[:5]), trained.predict(features[:5]))


def test_delete_cascades_and_version_numbers_are_not_reused(client, iris, trained):
    features, _ = iris
    mlflow.set_experiment(unique_name("registry-delete"))
    name = unique_name("doomed")
    log_registered(trained, name, features)
    log_registered(trained, name, features)
    client.delete_model_version(name, "2")
    _, info = log_registered(trained, name, features)
    assert int(info.registered_model_version) == 3

    client.set_registered_model_alias(name, "champion", "3")
    client.delete_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(name, "1")
    assert client.search_model_versions(f"name = '{name}'") == []


def test_search_registered_models_and_versions_with_filters_and_pages(client):
    prefix = unique_name("search")
    names = [f"{prefix}-{idx}" for idx in range(5)]
    for idx, name in enumerate(names):
        client.create_registered_model(name, tags={"parity": "even" if idx % 2 == 0 else "odd"})

    found = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert sorted(m.name for m in found) == names
    even = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}-%' AND tags.parity = 'even'"
    )
    assert [m.name for m in even] == [names[0], names[2], names[4]]
    desc = client.search_registered_models(filter_string=f"name LIKE '{prefix}%'",
                                           order_by=["name DESC"])
    assert [m.name for m in desc] == list(reversed(names))

    first = client.search_registered_models(filter_string=f"name ILIKE '{prefix.upper()}-%'",
                                            max_results=2)
    assert len(first) == 2 and first.token
    collected = list(first)
    token = first.token
    while token:
        page = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'",
                                               max_results=2, page_token=token)
        collected.extend(page)
        token = page.token
    assert [m.name for m in collected] == names

    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_registered_models(filter_string="run_id = 'x'")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_model_versions("version_number LIKE '1'")


def test_search_model_versions_filters(client, iris, trained):
    features, _ = iris
    mlflow.set_experiment(unique_name("registry-version-search"))
    name = unique_name("versions")
    runs = [log_registered(trained, name, features)[0] for _ in range(3)]
    client.set_model_version_tag(name, "2", "quality", "good")

    by_name = client.search_model_versions(f"name = '{name}'", order_by=["version_number ASC"])
    assert [v.version for v in by_name] == ["1", "2", "3"]
    by_run = client.search_model_versions(f"run_id = '{runs[1].info.run_id}'")
    assert [(v.name, v.version) for v in by_run] == [(name, "2")]
    by_runs = client.search_model_versions(
        f"run_id IN ('{runs[0].info.run_id}', '{runs[2].info.run_id}')",
        order_by=["version_number DESC"],
    )
    assert [v.version for v in by_runs] == ["3", "1"]
    newer = client.search_model_versions(f"name = '{name}' AND version_number > 1")
    assert sorted(v.version for v in newer) == ["2", "3"]
    tagged = client.search_model_versions(f"name = '{name}' AND tags.quality = 'good'")
    assert [v.version for v in tagged] == ["2"]
    page = client.search_model_versions(f"name = '{name}'", max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_model_versions(f"name = '{name}'", max_results=2, page_token=page.token)
    assert len(rest) == 1 and not rest.token


def test_missing_models_and_versions_are_resource_does_not_exist(client):
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(unique_name("missing"))
    name = unique_name("present")
    client.create_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_model_version(name, "7")
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        mlflow.pyfunc.load_model(f"models:/{unique_name('missing')}/1")


@pytest.mark.parametrize(
    "source",
    [
        "/etc/passwd",
        "file:///etc/passwd",
        "mlflow-artifacts:/0/x/artifacts/../../../../etc",
        "mlflow-artifacts:/0/x/artifacts/%2e%2e/%2e%2e/etc",
        "mlflow-artifacts:/0/x/artifacts/%252e%252e/%252e%252e/etc",
        "s3://someone-elses-bucket/model",
        "http://evil.example/model",
    ],
)
def test_hostile_sources_are_refused(client, source):
    mlflow.set_experiment(unique_name("registry-hostile"))
    with mlflow.start_run() as run:
        pass
    name = unique_name("hostile")
    client.create_registered_model(name)
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_model_version(name, source, run_id=run.info.run_id)
    assert client.search_model_versions(f"name = '{name}'") == []


def test_model_version_artifact_is_served_under_the_ajax_prefix(client, keel, iris, trained):
    features, _ = iris
    mlflow.set_experiment(unique_name("registry-get-artifact"))
    name = unique_name("served")
    log_registered(trained, name, features)
    url = f"{keel.uri}/ajax-api/2.0/mlflow/model-versions/get-artifact"
    response = requests.get(url, params={"name": name, "version": "1", "path": "MLmodel"},
                            timeout=30)
    assert response.status_code == 200
    assert b"flavors" in response.content
    response = requests.get(url, params={"name": name, "version": "1", "path": "../../../keel.db"},
                            timeout=30)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
