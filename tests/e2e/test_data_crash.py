"""`keel data add` and `keel data push` killed with SIGKILL midway, then run again: the re-run
succeeds, every object in the cache (and on the remote) hashes to its name, the workspace is
intact, and the real `dvc` sees the repository as clean."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import keel_bin

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
N_FILES = 3000
FILE_SIZE = 64 * 1024
OID = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
# Only a bound on a hung process: the test waits for the cache to fill, not for time to pass.
POLL_LIMIT_S = 300


def run(cwd, *args, check=True):
    result = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def keel(cwd, *args, check=True):
    return run(cwd, str(keel_bin()), "data", *args, check=check)


def objects_under(root: Path) -> list[Path]:
    """Files named as object ids below a cache-layout directory (temp files left out)."""
    base = root / "files" / "md5"
    if not base.is_dir():
        return []
    return [path for path in base.glob("*/*") if OID.match(path.parent.name + path.name)]


def kill_once_objects_appear(cwd: Path, args: list[str], objects_root: Path, n_objects: int):
    """Starts `keel data ARGS`, waits until `objects_root` holds at least `n_objects` objects,
    then SIGKILLs it; returns the number of objects present at the kill."""
    process = subprocess.Popen([str(keel_bin()), "data", *args], cwd=cwd, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + POLL_LIMIT_S
    try:
        while len(objects_under(objects_root)) < n_objects:
            if process.poll() is not None:
                raise AssertionError(
                    f"keel data {args} ended ({process.returncode}) before it could be killed "
                    f"midway; make the tree bigger:\n{process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"keel data {args} wrote no objects in {POLL_LIMIT_S}s")
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    return len(objects_under(objects_root))


def assert_every_object_hashes_to_its_name(root: Path) -> int:
    objects = objects_under(root)
    for path in objects:
        oid = path.parent.name + path.name
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        assert digest == oid.removesuffix(".dir"), f"{path}: holds md5 {digest}"
    return len(objects)


@pytest.fixture
def repo(tmp_path):
    """A git + DVC repository with `data/`: N_FILES distinct files of FILE_SIZE random bytes
    in 30 subdirectories; answers the repository and each file's md5."""
    root = tmp_path / "repo"
    root.mkdir()
    run(root, "git", "init", "-q")
    keel(root, "init")
    checksums = {}
    for file_idx in range(N_FILES):
        path = root / "data" / f"part-{file_idx % 30:02}" / f"{file_idx:05}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        content = os.urandom(FILE_SIZE)
        path.write_bytes(content)
        checksums[path] = hashlib.md5(content).hexdigest()
    return root, checksums


def test_add_killed_midway_then_rerun_leaves_a_sound_cache(repo):
    root, checksums = repo
    cache = root / ".dvc" / "cache"
    n_at_kill = kill_once_objects_appear(root, ["add", "data"], cache, 20)
    assert n_at_kill < N_FILES, "the add had finished before the kill"

    keel(root, "add", "data")
    assert assert_every_object_hashes_to_its_name(cache) == N_FILES + 1  # files + manifest
    for path, md5 in checksums.items():
        assert hashlib.md5(path.read_bytes()).hexdigest() == md5, f"{path} changed"
    assert run(root, DVC, "status").stdout.strip() == "Data and pipelines are up to date."
    assert keel(root, "status").stdout.strip() == "Data and pipelines are up to date."


def test_push_killed_midway_then_rerun_leaves_a_sound_remote(repo, tmp_path):
    root, _ = repo
    remote = tmp_path / "remote"
    keel(root, "add", "data")
    keel(root, "remote", "add", "-d", "storage", str(remote))
    n_at_kill = kill_once_objects_appear(root, ["push", "--jobs", "2"], remote, 20)
    assert n_at_kill < N_FILES, "the push had finished before the kill"

    keel(root, "push")
    assert assert_every_object_hashes_to_its_name(remote) == N_FILES + 1
    assert keel(root, "status", "--cloud").stdout.strip() == "Cache and remote 'storage' are in sync."
    assert run(root, DVC, "status", "-c").stdout.strip() == "Cache and remote 'storage' are in sync."
