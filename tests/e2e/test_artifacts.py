"""Artifacts through the server's proxy (`mlflow-artifacts:/`): upload, list, download."""

import hashlib
import os
from pathlib import Path

import mlflow
import pytest
from e2e_helpers import unique_name

BIG_FILE_BYTES = 50 * 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture
def run_id(client, experiment_id):
    return client.create_run(experiment_id).info.run_id


def make_tree(root: Path):
    files = {
        "a.txt": b"alpha\n",
        "empty.bin": b"",
        "nested/b.json": b'{"b": 1}',
        "nested/deeper/c.csv": b"x,y\n1,2\n",
        "with space ü.txt": "unicode name ✓".encode(),
    }
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return files


def test_log_artifact_and_list(client, run_id, tmp_path):
    source = tmp_path / "model.txt"
    source.write_text("weights")
    client.log_artifact(run_id, str(source))
    client.log_artifact(run_id, str(source), artifact_path="sub/dir")

    top = {info.path: info for info in client.list_artifacts(run_id)}
    assert set(top) == {"model.txt", "sub"}
    assert not top["model.txt"].is_dir and top["model.txt"].file_size == len("weights")
    assert top["sub"].is_dir
    nested = client.list_artifacts(run_id, "sub/dir")
    assert [(i.path, i.is_dir, i.file_size) for i in nested] == [("sub/dir/model.txt", False, 7)]


def test_log_artifacts_directory_round_trip(client, run_id, tmp_path):
    source = tmp_path / "src"
    files = make_tree(source)
    client.log_artifacts(run_id, str(source), artifact_path="data")

    listed = {(i.path, i.is_dir) for i in client.list_artifacts(run_id, "data")}
    assert listed == {
        ("data/a.txt", False), ("data/empty.bin", False), ("data/nested", True),
        ("data/with space ü.txt", False),
    }
    deeper = client.list_artifacts(run_id, "data/nested/deeper")
    assert [(i.path, i.file_size) for i in deeper] == [("data/nested/deeper/c.csv", 8)]

    destination = tmp_path / "back"
    destination.mkdir()
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data",
                                                     dst_path=str(destination)))
    for rel, content in files.items():
        assert (local / rel).read_bytes() == content, rel


def test_download_single_file(client, run_id, tmp_path):
    source = tmp_path / "single.txt"
    source.write_bytes(b"one file\n")
    client.log_artifact(run_id, str(source), artifact_path="x")
    downloaded = client.download_artifacts(run_id, "x/single.txt", str(tmp_path))
    assert Path(downloaded).read_bytes() == b"one file\n"


def test_fifty_mebibyte_file_round_trip(client, run_id, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        for _ in range(BIG_FILE_BYTES // (1 << 20)):
            handle.write(os.urandom(1 << 20))
    client.log_artifact(run_id, str(big))
    [info] = [i for i in client.list_artifacts(run_id) if i.path == "big.bin"]
    assert info.file_size == BIG_FILE_BYTES
    destination = tmp_path / "back"
    destination.mkdir()
    downloaded = Path(client.download_artifacts(run_id, "big.bin", str(destination)))
    assert downloaded.stat().st_size == BIG_FILE_BYTES
    assert sha256_of(downloaded) == sha256_of(big)


def test_fluent_text_and_dict_artifacts(client):
    mlflow.set_experiment(unique_name("artifacts-fluent"))
    with mlflow.start_run() as run:
        mlflow.log_text("hello keel", "notes/hello.txt")
        mlflow.log_dict({"layers": [1, 2, 3]}, "config/model.json")
    base = run.info.artifact_uri
    assert base.startswith("mlflow-artifacts:/")
    assert mlflow.artifacts.load_text(f"{base}/notes/hello.txt") == "hello keel"
    assert mlflow.artifacts.load_dict(f"{base}/config/model.json") == {"layers": [1, 2, 3]}


def test_listing_a_missing_path_is_empty(client, run_id):
    assert client.list_artifacts(run_id, "does/not/exist") == []


def test_runs_do_not_see_each_others_artifacts(client, experiment_id, tmp_path):
    first = client.create_run(experiment_id).info.run_id
    second = client.create_run(experiment_id).info.run_id
    source = tmp_path / "only-first.txt"
    source.write_text("1")
    client.log_artifact(first, str(source))
    assert [i.path for i in client.list_artifacts(first)] == ["only-first.txt"]
    assert client.list_artifacts(second) == []
