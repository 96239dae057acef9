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


def tree(root: Path) -> dict:
    """Every file under root (but .dvc/ and .git/), relative path → bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not {".dvc", ".git"} & set(path.relative_to(root).parts)
    }


def commit_and_clone(repo: Path, clone: Path) -> Path:
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-q", "-m", "data")
    run(repo.parent, "git", "clone", "-q", str(repo), str(clone))
    return clone


def test_keel_remote_add_writes_a_config_dvc_reads(repos, tmp_path):
    by_keel, by_dvc = repos
    keel(by_keel, "remote", "add", "-d", "storage", "../remote")
    dvc(by_dvc, "remote", "add", "-d", "storage", "../remote")
    assert (by_keel / ".dvc" / "config").read_bytes() == (by_dvc / ".dvc" / "config").read_bytes()
    # dvc wraps long lines at the terminal's width; the words are the same.
    assert dvc(by_keel, "remote", "list").stdout.split() == keel(by_keel, "remote", "list").stdout.split()
    assert "storage" in dvc(by_keel, "remote", "list").stdout
    assert dvc(by_keel, "remote", "default").stdout.strip() == "storage"
    keel(by_keel, "remote", "add", "--local", "private", str(tmp_path / "private"))
    assert "private" in dvc(by_keel, "remote", "list", "--local").stdout
    keel(by_keel, "remote", "remove", "storage")
    assert "storage" not in dvc(by_keel, "remote", "list").stdout


def test_keel_push_then_dvc_pull_in_a_fresh_clone(repos, tmp_path):
    by_keel, _ = repos
    remote = tmp_path / "remote"
    keel(by_keel, "remote", "add", "-d", "storage", str(remote))
    assert "new:" in keel(by_keel, "status", "--cloud").stdout
    assert "5 files pushed" in keel(by_keel, "push").stdout
    assert keel(by_keel, "status", "--cloud").stdout == dvc(by_keel, "status", "-c").stdout
    assert "in sync" in dvc(by_keel, "status", "-c").stdout
    clone = commit_and_clone(by_keel, tmp_path / "clone-of-keel")
    dvc(clone, "pull", "-q")
    assert tree(clone) == tree(by_keel)
    assert "up to date" in dvc(clone, "status").stdout


def test_dvc_push_then_keel_pull_in_a_fresh_clone(repos, tmp_path):
    _, by_dvc = repos
    remote = tmp_path / "remote"
    dvc(by_dvc, "remote", "add", "-q", "-d", "storage", str(remote))
    dvc(by_dvc, "push", "-q")
    clone = commit_and_clone(by_dvc, tmp_path / "clone-of-dvc")
    cloud = keel(clone, "status", "--cloud").stdout
    # dvc lists in set order; the lines are the same.
    assert sorted(cloud.splitlines()) == sorted(dvc(clone, "status", "-c").stdout.splitlines())
    assert "deleted:" in cloud
    pulled = keel(clone, "pull")
    assert "4 files fetched" in pulled.stdout, "the manifest came with status --cloud, as with dvc"
    assert tree(clone) == tree(by_dvc)
    assert "up to date" in dvc(clone, "status").stdout
    assert "in sync" in keel(clone, "status", "--cloud").stdout


def test_transfers_without_a_usable_remote_fail_with_one_clear_line(repos):
    by_keel, _ = repos
    no_remote = keel(by_keel, "push", check=False)
    assert no_remote.returncode == 1
    assert "keel data remote add -d NAME URL" in no_remote.stderr and "panicked" not in no_remote.stderr
    keel(by_keel, "remote", "add", "-d", "cloud", "ssh://host/path")
    cloud = keel(by_keel, "pull", check=False)
    assert cloud.returncode == 1
    assert "only local directories and s3://, gs://, azure:// (or az://) remotes are supported" in cloud.stderr
