"""`keel data` and the real `dvc` drive the same repository interchangeably:
the same `.dvc` bytes for the same data, and each one's work is clean and
restorable for the other."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import keel_bin

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def run(cwd, *args, check=True):
    result = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def keel(cwd, *args, check=True):
    return run(cwd, str(keel_bin()), "data", *args, check=check)


def dvc(cwd, *args, check=True):
    return run(cwd, DVC, *args, check=check)


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    run(path, "git", "init", "-q")
    (path / "data").mkdir()
    (path / "data" / "foo").write_text("foo")
    (path / "data" / "bar").write_text("bar")
    (path / "data" / "nested").mkdir()
    (path / "data" / "nested" / "é unicode.txt").write_text("ünïcode\n" * 100)
    (path / "table.csv").write_text("x,y\n1,2\n")
    return path


@pytest.fixture
def repos(tmp_path):
    by_keel = make_repo(tmp_path / "by-keel")
    keel(by_keel, "init")
    keel(by_keel, "add", "data", "table.csv")
    by_dvc = make_repo(tmp_path / "by-dvc")
    dvc(by_dvc, "init", "-q")
    dvc(by_dvc, "add", "-q", "data", "table.csv")
    return by_keel, by_dvc


def test_keel_writes_the_bytes_dvc_writes(repos):
    by_keel, by_dvc = repos
    for name in ["data.dvc", "table.csv.dvc", ".gitignore"]:
        assert (by_keel / name).read_bytes() == (by_dvc / name).read_bytes(), name
    assert "nfiles: 3" in (by_keel / "data.dvc").read_text()


def test_dvc_sees_keels_work_as_clean_and_restores_it(repos):
    by_keel, _ = repos
    assert "up to date" in dvc(by_keel, "status").stdout
    shutil.rmtree(by_keel / "data")
    (by_keel / "table.csv").unlink()
    dvc(by_keel, "checkout", "-q")
    assert (by_keel / "data" / "foo").read_text() == "foo"
    assert (by_keel / "data" / "nested" / "é unicode.txt").read_text() == "ünïcode\n" * 100
    assert (by_keel / "table.csv").read_text() == "x,y\n1,2\n"
    assert "up to date" in dvc(by_keel, "status").stdout


def test_keel_sees_dvcs_work_as_clean_and_restores_it(repos):
    _, by_dvc = repos
    assert "up to date" in keel(by_dvc, "status").stdout
    (by_dvc / "table.csv").write_text("changed\n")
    status = keel(by_dvc, "status")
    assert "modified" in status.stdout and "table.csv" in status.stdout
    refused = keel(by_dvc, "checkout", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error:") and "panicked" not in refused.stderr
    assert (by_dvc / "table.csv").read_text() == "changed\n", "nothing overwritten without --force"
    keel(by_dvc, "checkout", "--force")
    assert (by_dvc / "table.csv").read_text() == "x,y\n1,2\n"
    assert "up to date" in dvc(by_dvc, "status").stdout
