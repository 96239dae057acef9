"""`keel data log-input` / `keel data add --log-to-run`: a DVC-tracked data version logged as an
MLflow dataset input of a run (read back with the real `mlflow` client), and Keel's lineage
API naming that data version for a model registered from the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import requests
from sklearn.linear_model import LogisticRegression

from conftest import keel_bin
from e2e_helpers import unique_name

DVC = str(Path(sys.executable).with_name("dvc"))
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1"}


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KEEL_"))}
    env.update(GIT_ENV)
    env["RUST_BACKTRACE"] = "1"  # a panic would print a backtrace; the assertions look for it
    env.update(extra)
    return env


def run(cwd, *args, env=None, check=True):
    result = subprocess.run(list(args), cwd=cwd, env=env or clean_env(), capture_output=True,
                            text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def keel_data(cwd, *args, env=None, check=True):
    return run(cwd, str(keel_bin()), "data", *args, env=env, check=check)


@pytest.fixture
def repo(tmp_path):
    """A git repository with `data/` (two files) tracked by the real dvc, a default local
    remote and an origin URL, all committed."""
    root = tmp_path / "repo"
    root.mkdir()
    run(root, "git", "init", "-q")
    run(root, "git", "remote", "add", "origin", "https://example.com/team/data-repo.git")
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n3,0\n4,1\n")
    (root / "data" / "labels.txt").write_text("0\n1\n")
    run(root, DVC, "init", "-q")
    run(root, DVC, "remote", "add", "-d", "storage", str(tmp_path / "remote"))
    run(root, DVC, "add", "-q", "data")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "data v1")
    return root


def dvc_out(root: Path, dvc_file: str) -> dict:
    """md5, size and nfiles of the single output of a .dvc file (read by dvc's own parser)."""
    from dvc.repo import Repo

    with Repo(str(root)) as dvc_repo:
        stage = dvc_repo.stage.collect(str(root / dvc_file))[0]
        out = stage.outs[0]
        return {"md5": out.hash_info.value, "size": out.meta.size, "nfiles": out.meta.nfiles}


def head(root: Path) -> str:
    return run(root, "git", "rev-parse", "HEAD").stdout.strip()


def test_log_input_records_the_dvc_version_and_lineage_shows_it(repo, tmp_path, tracking_uri,
                                                               client):
    expected = dvc_out(repo, "data.dvc")
    mlflow.set_experiment(unique_name("data-lineage"))
    model_name = unique_name("data-lineage-clf")
    with mlflow.start_run() as active:
        run_id = active.info.run_id
        keel_data(repo, "log-input", "data", "--run-id", run_id, "--context", "training",
                  "--tracking-uri", tracking_uri)
        estimator = LogisticRegression().fit([[1], [2], [3], [4]], [0, 1, 0, 1])
        info = mlflow.sklearn.log_model(estimator, name="model")
    mlflow.register_model(info.model_uri, model_name)

    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.name == "data"
    assert dataset.digest == expected["md5"]
    assert dataset.source_type == "dvc"
    source = json.loads(dataset.source)
    assert source == {
        "path": "data",
        "md5": expected["md5"],
        "rev": head(repo),
        "remote": str(tmp_path / "remote"),
        "repo": "https://example.com/team/data-repo.git",
    }
    assert json.loads(dataset.profile) == {"size": expected["size"], "nfiles": expected["nfiles"]}
    assert {tag.key: tag.value for tag in inputs[0].tags} == {"mlflow.data.context": "training"}

    response = requests.get(f"{tracking_uri}/api/keel/v1/lineage/model-versions/{model_name}/1",
                            timeout=30)
    assert response.status_code == 200, response.text
    lineage = response.json()
    assert lineage["run"]["run_id"] == run_id
    datasets = lineage["run"]["datasets"]
    assert [(d["name"], d["digest"], d["source_type"], d["context"]) for d in datasets] == [
        ("data", expected["md5"], "dvc", "training")
    ]


def test_run_id_defaults_to_mlflow_run_id_and_name_overrides_the_path(repo, tracking_uri, client,
                                                                      experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    env = clean_env(MLFLOW_RUN_ID=run_id, MLFLOW_TRACKING_URI=tracking_uri)
    keel_data(repo, "log-input", "data.dvc", "--name", "train-set", env=env)
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [
        ("train-set", dvc_out(repo, "data.dvc")["md5"])
    ]
    assert inputs[0].tags == []


def test_add_with_log_to_run_tracks_then_logs(repo, tracking_uri, client, experiment_id):
    (repo / "eval.csv").write_text("x,y\n5,0\n")
    run_id = client.create_run(experiment_id).info.run_id
    keel_data(repo, "add", "eval.csv", "--log-to-run", run_id, "--context", "validation",
              "--tracking-uri", tracking_uri)
    assert (repo / "eval.csv.dvc").is_file()
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    expected = dvc_out(repo, "eval.csv.dvc")
    assert inputs[0].dataset.digest == expected["md5"]
    assert json.loads(inputs[0].dataset.profile) == {"size": expected["size"]}
    assert {tag.key: tag.value for tag in inputs[0].tags} == {"mlflow.data.context": "validation"}


def assert_one_error_line(result, *fragments):
    assert result.returncode != 0
    assert "panicked" not in result.stderr and "backtrace" not in result.stderr.lower()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr


def test_an_untracked_path_is_one_error_line(repo, tracking_uri, client, experiment_id):
    (repo / "notes.txt").write_text("not data")
    run_id = client.create_run(experiment_id).info.run_id
    result = keel_data(repo, "log-input", "notes.txt", "--run-id", run_id,
                       "--tracking-uri", tracking_uri, check=False)
    assert_one_error_line(result, "notes.txt", "not tracked")
    assert client.get_run(run_id).inputs.dataset_inputs == []


def test_a_missing_run_id_is_one_error_line(repo, tracking_uri):
    result = keel_data(repo, "log-input", "data", "--tracking-uri", tracking_uri, check=False)
    assert_one_error_line(result, "--run-id", "MLFLOW_RUN_ID")


def test_an_unknown_run_is_one_error_line(repo, tracking_uri):
    result = keel_data(repo, "log-input", "data", "--run-id", "0" * 32,
                       "--tracking-uri", tracking_uri, check=False)
    assert_one_error_line(result, "0" * 32)
