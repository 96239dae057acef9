"""`keel models`: the CLI against a real server, with a model logged and registered by the
real `mlflow` client; every command runs as a subprocess with `--tracking-uri`."""

import json
import os
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.data.pandas_dataset import from_pandas
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from conftest import keel_bin
from e2e_helpers import unique_name


def keel_models(tracking_uri, *args, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KEEL_"))}
    env["RUST_BACKTRACE"] = "1"  # a panic would print a backtrace; the assertions look for it
    result = subprocess.run(
        [str(keel_bin()), "models", *args, "--tracking-uri", tracking_uri],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"keel models {args}: {result.stderr}"
    return result


def keel_json(tracking_uri, *args):
    return json.loads(keel_models(tracking_uri, *args, "--json").stdout)


@pytest.fixture(scope="module")
def registered(tracking_uri):
    """A sklearn model logged from a run with a training dataset, registered as version 1
    and version 2 of a fresh model, alias `champion` on version 1."""
    features, labels = load_iris(return_X_y=True, as_frame=True)
    mlflow.set_experiment(unique_name("models-cli"))
    name = unique_name("cli-clf")
    with mlflow.start_run() as run:
        mlflow.log_input(from_pandas(features.assign(target=labels), name="iris"), context="training")
        mlflow.log_param("C", 0.5)
        estimator = LogisticRegression(max_iter=300, C=0.5).fit(features, labels)
        mlflow.log_metric("accuracy", float(estimator.score(features, labels)))
        info = mlflow.sklearn.log_model(estimator, name="model", registered_model_name=name)
    mlflow.register_model(info.model_uri, name)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")
    return {"name": name, "run_id": run.info.run_id, "model_id": info.model_id}


def test_list_show_and_versions(tracking_uri, registered):
    name = registered["name"]
    listed = keel_json(tracking_uri, "list", "--filter", f"name = '{name}'")
    assert [model["name"] for model in listed["registered_models"]] == [name]
    assert {"alias": "champion", "version": "1"} in listed["registered_models"][0]["aliases"]

    table = keel_models(tracking_uri, "list").stdout
    header, *rows = table.splitlines()
    assert header.split() == ["NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"]
    assert any(row.startswith(name) and "champion=1" in row for row in rows), table

    shown = keel_json(tracking_uri, "show", name)["registered_model"]
    assert shown["name"] == name
    assert shown["aliases"] == [{"alias": "champion", "version": "1"}]

    versions = keel_json(tracking_uri, "versions", name)["model_versions"]
    assert [v["version"] for v in versions] == ["2", "1"]
    assert versions[1]["aliases"] == ["champion"]
    assert all(v["run_id"] == registered["run_id"] for v in versions)


def test_alias_set_and_delete(tracking_uri, registered):
    name = registered["name"]
    client = mlflow.MlflowClient()
    keel_json(tracking_uri, "alias", "set", name, "challenger", "2")
    assert client.get_model_version_by_alias(name, "challenger").version == "2"

    out = keel_models(tracking_uri, "alias", "delete", name, "challenger").stdout
    assert "challenger" in out
    assert "challenger" not in client.get_registered_model(name).aliases


def test_download_matches_mlflow_download_artifacts(tracking_uri, registered, tmp_path):
    name = registered["name"]
    dest = tmp_path / "keel"
    summary = keel_json(tracking_uri, "download", f"{name}@champion", str(dest))
    assert summary["version"] == "1"
    paths = {file["path"] for file in summary["files"]}
    assert {"MLmodel", "requirements.txt"} <= paths, paths

    expected = mlflow.artifacts.download_artifacts(
        f"models:/{name}@champion", dst_path=str(tmp_path / "mlflow")
    )
    assert (dest / "MLmodel").read_bytes() == (Path(expected) / "MLmodel").read_bytes()
    mlflow_files = {
        str(path.relative_to(expected)) for path in Path(expected).rglob("*") if path.is_file()
    }
    # mlflow writes `registered_model_meta` itself, client side, for models:/ URIs.
    assert paths == mlflow_files - {"registered_model_meta"}
    for path in paths:
        assert (dest / path).read_bytes() == (Path(expected) / path).read_bytes(), path

    by_version = keel_models(tracking_uri, "download", f"{name}/2", str(tmp_path / "v2")).stdout
    assert f"of {name}/2" in by_version


def test_lineage_json_and_tree(tracking_uri, registered):
    name = registered["name"]
    lineage = keel_json(tracking_uri, "lineage", f"{name}@champion")
    assert lineage["model_version"]["version"] == 1
    assert lineage["model_version"]["aliases"] == ["champion"]
    assert lineage["logged_model"]["model_id"] == registered["model_id"]
    run = lineage["run"]
    assert run["run_id"] == registered["run_id"]
    assert run["params"]["C"] == "0.5"
    assert [metric["key"] for metric in run["metrics"]] == ["accuracy"]
    dataset = run["datasets"][0]
    assert dataset["name"] == "iris"
    assert dataset["context"] == "training"
    assert dataset["source_type"]
    assert "sepal length" in dataset["schema"]

    tree = keel_models(tracking_uri, "lineage", f"{name}/1").stdout
    assert f"model version {name}/1" in tree
    assert registered["model_id"] in tree
    assert registered["run_id"] in tree
    assert "C = 0.5" in tree
    assert "iris [training]" in tree


@pytest.mark.parametrize(
    "args",
    [
        ("show", "no-such-model-anywhere"),
        ("versions", "no-such-model-anywhere"),
        ("lineage", "no-such-model-anywhere/1"),
        ("download", "no-such-model-anywhere@champion", "unused-dir"),
    ],
)
def test_unknown_model_is_one_error_line_and_exit_1(tracking_uri, args, tmp_path):
    args = tuple(str(tmp_path / arg) if arg == "unused-dir" else arg for arg in args)
    result = keel_models(tracking_uri, *args, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: RESOURCE_DOES_NOT_EXIST"), result.stderr
    assert "no-such-model-anywhere" in lines[0]
    assert "panicked" not in result.stderr
    assert not (tmp_path / "unused-dir").exists()


def test_unreachable_server_names_the_uri(tmp_path):
    from conftest import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    result = keel_models(uri, "list", check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert uri in result.stderr and "--tracking-uri" in result.stderr
    assert "panicked" not in result.stderr
