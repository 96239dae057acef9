"""Models: sklearn autologging, `log_model` into MLflow 3 logged models, loading them back."""

import mlflow
import numpy as np
import pytest
from mlflow.entities import LoggedModelStatus
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from e2e_helpers import raises_mlflow, unique_name


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_sklearn_autolog_records_params_metrics_and_model(client, iris):
    features, labels = iris
    experiment = mlflow.set_experiment(unique_name("autolog"))
    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=300, C=0.5).fit(features, labels)
    finally:
        mlflow.sklearn.autolog(disable=True)

    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params["max_iter"] == "300"
    assert got.data.params["C"] == "0.5"
    assert got.data.metrics["training_accuracy_score"] > 0.9
    assert "training_f1_score" in got.data.metrics
    assert got.data.tags["estimator_name"] == "LogisticRegression"

    models = mlflow.search_logged_models(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
        output_format="list",
    )
    assert len(models) == 1
    model = models[0]
    assert model.status == LoggedModelStatus.READY
    artifact_paths = {info.path for info in client.list_logged_model_artifacts(model.model_id)}
    assert "MLmodel" in artifact_paths
    assert any(path.endswith(".pkl") for path in artifact_paths)
    assert [o.model_id for o in got.outputs.model_outputs] == [model.model_id]

    loaded = mlflow.sklearn.load_model(f"models:/{model.model_id}")
    assert loaded.predict(features[:3]).shape == (3,)


def test_log_model_creates_logged_model_that_loads_and_predicts(client, iris):
    features, labels = iris
    experiment = mlflow.set_experiment(unique_name("log-model"))
    estimator = LogisticRegression(max_iter=300).fit(features, labels)
    with mlflow.start_run() as run:
        model_info = mlflow.sklearn.log_model(estimator, name="model", input_example=features[:2])
        mlflow.log_metric("accuracy", 0.97, model_id=model_info.model_id)

    assert model_info.model_uri == f"models:/{model_info.model_id}"
    assert model_info.model_id.startswith("m-")

    logged = mlflow.get_logged_model(model_info.model_id)
    assert logged.name == "model"
    assert logged.experiment_id == experiment.experiment_id
    assert logged.source_run_id == run.info.run_id
    assert logged.status == LoggedModelStatus.READY
    assert logged.artifact_location.startswith(f"mlflow-artifacts:/{experiment.experiment_id}/")
    assert {m.key: m.value for m in logged.metrics} == {"accuracy": 0.97}

    found = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    assert [m.model_id for m in found] == [model_info.model_id]
    found = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id],
                                        filter_string="name = 'model' AND metrics.accuracy > 0.9",
                                        output_format="list")
    assert [m.model_id for m in found] == [model_info.model_id]

    loaded = mlflow.pyfunc.load_model(model_info.model_uri)
    np.testing.assert_array_equal(loaded.predict(features[:10]), estimator.predict(features[:10]))
    assert loaded.metadata.model_uuid


def test_logged_model_params_tags_and_ordering(client):
    experiment = mlflow.set_experiment(unique_name("logged-model-meta"))
    first = mlflow.initialize_logged_model(name="first", params={"depth": "3"})
    second = mlflow.initialize_logged_model(name="second", tags={"stage": "dev"})
    mlflow.set_logged_model_tags(first.model_id, {"stage": "prod", "owner": "keel"})
    mlflow.log_model_params({"lr": "0.1"}, model_id=second.model_id)
    mlflow.delete_logged_model_tag(second.model_id, "stage")
    mlflow.finalize_logged_model(first.model_id, LoggedModelStatus.READY)
    mlflow.finalize_logged_model(second.model_id, LoggedModelStatus.FAILED)

    got_first = mlflow.get_logged_model(first.model_id)
    assert got_first.params == {"depth": "3"}
    assert got_first.tags["stage"] == "prod" and got_first.tags["owner"] == "keel"
    assert got_first.status == LoggedModelStatus.READY
    got_second = mlflow.get_logged_model(second.model_id)
    assert got_second.params == {"lr": "0.1"}
    assert "stage" not in got_second.tags
    assert got_second.status == LoggedModelStatus.FAILED

    ordered = mlflow.search_logged_models(
        experiment_ids=[experiment.experiment_id],
        order_by=[{"field_name": "name", "ascending": False}],
        output_format="list",
    )
    assert [m.name for m in ordered] == ["second", "first"]
    tagged = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id],
                                         filter_string="tags.stage = 'prod'", output_format="list")
    assert [m.name for m in tagged] == ["first"]


def test_deleted_logged_model_is_gone(client):
    experiment = mlflow.set_experiment(unique_name("logged-model-delete"))
    model = mlflow.initialize_logged_model(name="doomed")
    client.delete_logged_model(model.model_id)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        mlflow.get_logged_model(model.model_id)
    assert mlflow.search_logged_models(experiment_ids=[experiment.experiment_id],
                                       output_format="list") == []


def test_unknown_logged_model(client):
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        mlflow.get_logged_model("m-" + "0" * 32)


def test_model_loads_through_a_runs_uri(client, iris):
    features, labels = iris
    mlflow.set_experiment(unique_name("runs-uri"))
    estimator = LogisticRegression(max_iter=300).fit(features, labels)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(estimator, name="model")
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(features[:5]), estimator.predict(features[:5]))


def test_search_logged_models_pages(client):
    experiment = mlflow.set_experiment(unique_name("logged-model-pages"))
    created = [mlflow.initialize_logged_model(name=f"m{idx}").model_id for idx in range(5)]
    seen, token = [], None
    for _ in range(10):
        page = client.search_logged_models(experiment_ids=[experiment.experiment_id], max_results=2,
                                           page_token=token)
        assert len(page) <= 2
        seen.extend(m.model_id for m in page)
        token = page.token
        if not token:
            break
    assert sorted(seen) == sorted(created)
