"""`keel data get` against a repository built by the real `dvc` (add, push to a local remote,
git commit): the same bytes `dvc get` writes, at HEAD or an older revision, from a local path or
a git URL, for tracked directories, files inside them and plain git files."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import keel_bin

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "RUST_BACKTRACE": "1"}


def run(cwd, *args, check=True):
    result = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True,
                            timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def keel(cwd, *args, check=True):
    return run(cwd, str(keel_bin()), "data", *args, check=check)


def dvc(cwd, *args, check=True):
    return run(cwd, DVC, *args, check=check)


def tree(path: Path) -> dict:
    """Every file below `path` (or `path` itself) with its bytes."""
    if path.is_file():
        return {".": path.read_bytes()}
    return {
        str(file.relative_to(path)): file.read_bytes()
        for file in sorted(path.rglob("*"))
        if file.is_file()
    }


def commit(root: Path, message: str) -> str:
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", message)
    return run(root, "git", "rev-parse", "HEAD").stdout.strip()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A repository made by dvc: `data/` (tracked directory) and `model.bin` (tracked file)
    pushed to a local remote, `params.yaml` and `src/` in git; two commits, v1 and v2; v2 adds
    a pipeline stage whose output `gen/` is recorded in dvc.lock."""
    base = tmp_path_factory.mktemp("get-source")
    root = base / "source"
    root.mkdir()
    run(root, "git", "init", "-q")
    dvc(root, "init", "-q")
    dvc(root, "remote", "add", "-d", "storage", str(base / "remote"))
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("x\n1\n")
    (root / "data" / "sub" / "b.txt").write_text("bee\n" * 1000)
    (root / "model.bin").write_bytes(os.urandom(300_000))
    (root / "params.yaml").write_text("lr: 0.1\n")
    (root / "src").mkdir()
    (root / "src" / "train.sh").write_text("#!/bin/sh\necho train\n")
    (root / "src" / "train.sh").chmod(0o755)
    dvc(root, "add", "-q", "data", "model.bin")
    dvc(root, "push", "-q")
    v1 = commit(root, "v1")
    (root / "data" / "a.csv").write_text("x\n1\n2\n")
    (root / "data" / "c.csv").write_text("y\n3\n")
    (root / "params.yaml").write_text("lr: 0.2\n")
    dvc(root, "add", "-q", "data")
    dvc(root, "stage", "add", "-q", "-n", "gen", "-d", "params.yaml", "-o", "gen",
        "mkdir -p gen && cp params.yaml gen/copy.yaml && echo made > gen/made.txt")
    dvc(root, "repro", "-q")
    dvc(root, "push", "-q")
    v2 = commit(root, "v2")
    return {"root": root, "remote": base / "remote", "v1": v1, "v2": v2}


@pytest.mark.parametrize("path", ["data", "model.bin", "data/sub", "data/sub/b.txt",
                                  "params.yaml", "src", "gen", "gen/made.txt"])
def test_get_writes_what_dvc_get_writes(source, tmp_path, path):
    keel(tmp_path, "get", str(source["root"]), path, "-o", "by-keel")
    dvc(tmp_path, "get", str(source["root"]), path, "-o", "by-dvc")
    assert tree(tmp_path / "by-keel") == tree(tmp_path / "by-dvc")
    assert tree(tmp_path / "by-keel")


def test_git_files_keep_their_executable_bit(source, tmp_path):
    # `dvc get` drops it (3.x writes git files 0644); git records it, so Keel keeps it.
    keel(tmp_path, "get", str(source["root"]), "src")
    assert os.access(tmp_path / "src" / "train.sh", os.X_OK)
    assert not os.access(tmp_path / "params.yaml", os.F_OK)


def test_get_leaves_the_source_repository_untouched(source, tmp_path):
    cache = source["root"] / ".dvc" / "cache"
    before = sorted(cache.rglob("*"))
    keel(tmp_path, "get", str(source["root"]), "data", "--rev", source["v1"])
    assert run(source["root"], "git", "status", "--porcelain").stdout == ""
    assert sorted(cache.rglob("*")) == before


def test_get_an_older_revision(source, tmp_path):
    keel(tmp_path, "get", str(source["root"]), "data", "-o", "old", "--rev", source["v1"])
    dvc(tmp_path, "get", str(source["root"]), "data", "-o", "old-dvc", "--rev", source["v1"])
    assert tree(tmp_path / "old") == tree(tmp_path / "old-dvc")
    assert (tmp_path / "old" / "a.csv").read_text() == "x\n1\n"
    assert not (tmp_path / "old" / "c.csv").exists()
    keel(tmp_path, "get", str(source["root"]), "params.yaml", "--rev", source["v1"])
    assert (tmp_path / "params.yaml").read_text() == "lr: 0.1\n"


def test_default_destination_is_the_base_name_and_is_not_overwritten(source, tmp_path):
    keel(tmp_path, "get", str(source["root"]), "data/a.csv")
    assert (tmp_path / "a.csv").read_text() == "x\n1\n2\n"
    (tmp_path / "a.csv").write_text("mine")
    result = keel(tmp_path, "get", str(source["root"]), "data/a.csv", check=False)
    assert result.returncode != 0 and "--force" in result.stderr
    assert (tmp_path / "a.csv").read_text() == "mine"
    keel(tmp_path, "get", str(source["root"]), "data/a.csv", "--force")
    assert (tmp_path / "a.csv").read_text() == "x\n1\n2\n"


def test_get_from_a_git_url_fetches_from_the_remote(source, tmp_path):
    url = source["root"].as_uri()
    keel(tmp_path, "get", url, "data", "-o", "cloned", "--rev", source["v1"])
    dvc(tmp_path, "get", str(source["root"]), "data", "-o", "expected", "--rev", source["v1"])
    assert tree(tmp_path / "cloned") == tree(tmp_path / "expected")


def test_get_without_the_source_cache_reads_the_remote_and_verifies_md5(source, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(source["root"], copy)
    shutil.rmtree(copy / ".dvc" / "cache")
    keel(tmp_path, "get", str(copy), "data", "-o", "out")
    assert tree(tmp_path / "out") == tree(source["root"] / "data")
    assert not (copy / ".dvc" / "cache" / "files").exists(), "get wrote into the source cache"

    # A corrupted object on a remote is refused, and nothing is left at the destination.
    remote = tmp_path / "bad-remote"
    shutil.copytree(source["remote"], remote)
    config = copy / ".dvc" / "config"
    config.write_text(config.read_text().replace(str(source["remote"]), str(remote)))
    md5 = next(line.split()[-1] for line in (copy / "model.bin.dvc").read_text().splitlines()
               if line.strip().startswith("- md5:"))
    corrupted = remote / "files" / "md5" / md5[:2] / md5[2:]
    corrupted.chmod(0o644)
    corrupted.write_bytes(b"not the model")
    result = keel(tmp_path, "get", str(copy), "model.bin", check=False)
    assert result.returncode != 0 and "panicked" not in result.stderr
    assert md5 in result.stderr, result.stderr
    assert not (tmp_path / "model.bin").exists()


def test_a_path_not_in_the_repository_is_named(source, tmp_path):
    result = keel(tmp_path, "get", str(source["root"]), "data/nope.csv", check=False)
    assert result.returncode != 0 and "panicked" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "data/nope.csv" in lines[0] and "not found" in lines[0]


def test_no_remote_and_no_cache_is_a_clear_error(tmp_path):
    root = tmp_path / "lonely"
    root.mkdir()
    run(root, "git", "init", "-q")
    dvc(root, "init", "-q")
    (root / "data.csv").write_text("a\n1\n")
    dvc(root, "add", "-q", "data.csv")
    commit(root, "data")
    shutil.rmtree(root / ".dvc" / "cache")
    result = keel(tmp_path, "get", str(root), "data.csv", "-o", "out.csv", check=False)
    assert result.returncode != 0 and "panicked" not in result.stderr
    assert "no default remote" in result.stderr, result.stderr
    assert not (tmp_path / "out.csv").exists()
