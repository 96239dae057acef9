"""`keel data` and the real `dvc` (with `dvc-s3`) share an S3 remote: what one
pushes, the other pulls in a fresh clone, both reading the remote's settings
from the same `.dvc/config` and `.dvc/config.local`, as `dvc remote modify`
writes them.

The server is the S3-compatible one of `scripts/s3-server.sh` (started by
`.ci/run`), found through KEEL_TEST_S3_ENDPOINT, KEEL_TEST_S3_BUCKET,
KEEL_TEST_S3_ACCESS_KEY_ID and KEEL_TEST_S3_SECRET_ACCESS_KEY; a server that
cannot be reached fails these tests, it never skips them."""

import os
import random
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from test_data_dvc import commit_and_clone, dvc, keel, make_repo, tree

ENDPOINT = os.environ.get("KEEL_TEST_S3_ENDPOINT", "http://127.0.0.1:9000")
BUCKET = os.environ.get("KEEL_TEST_S3_BUCKET", "keel-test")
HOW_TO_START = "start it with `scripts/s3-server.sh start`"


def key_pair():
    """KEEL_TEST_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY, or else the key
    `scripts/s3-server.sh start` made."""
    key_id = os.environ.get("KEEL_TEST_S3_ACCESS_KEY_ID")
    secret = os.environ.get("KEEL_TEST_S3_SECRET_ACCESS_KEY")
    if key_id and secret:
        return key_id, secret
    server_dir = Path(os.environ.get("KEEL_S3_DIR", Path(tempfile.gettempdir()) / "keel-s3-server"))
    try:
        key_id, secret = (server_dir / "credentials").read_text().split()[:2]
    except (OSError, ValueError):
        pytest.fail(f"no key pair for the S3 server at {ENDPOINT}: {HOW_TO_START}")
    return key_id, secret

# Above both tools' single-request limits: goes up and down in parts.
BIG_SIZE = 20 * 1024 * 1024 + 7


@pytest.fixture
def s3_url():
    """A fresh prefix of the test bucket; fails when no server answers."""
    endpoint = urlparse(ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 80), timeout=5).close()
    except OSError as error:
        pytest.fail(
            f"the S3 interop tests need the S3 server at {ENDPOINT} ({HOW_TO_START}): {error}"
        )
    return f"s3://{BUCKET}/e2e/{uuid.uuid4().hex}"


def with_big_file(repo: Path) -> Path:
    rng = random.Random(7)
    (repo / "data" / "big.bin").write_bytes(rng.randbytes(BIG_SIZE))
    return repo


def configure_remote(repo: Path, url: str):
    """The remote as a DVC user sets it up: url and endpoint for everyone,
    keys in the git-ignored config.local."""
    key_id, secret = key_pair()
    dvc(repo, "remote", "add", "-q", "-d", "storage", url)
    dvc(repo, "remote", "modify", "storage", "endpointurl", ENDPOINT)
    dvc(repo, "remote", "modify", "--local", "storage", "access_key_id", key_id)
    dvc(repo, "remote", "modify", "--local", "storage", "secret_access_key", secret)


def clone_with_credentials(repo: Path, clone: Path) -> Path:
    """A fresh `git clone`, plus the config.local a user keeps their keys in."""
    commit_and_clone(repo, clone)
    shutil.copy(repo / ".dvc" / "config.local", clone / ".dvc" / "config.local")
    return clone


def test_dvc_push_then_keel_pull_in_a_fresh_clone(tmp_path, s3_url):
    by_dvc = with_big_file(make_repo(tmp_path / "by-dvc"))
    dvc(by_dvc, "init", "-q")
    dvc(by_dvc, "add", "-q", "data", "table.csv")
    configure_remote(by_dvc, s3_url)
    dvc(by_dvc, "push", "-q")
    assert "in sync" in keel(by_dvc, "status", "--cloud").stdout

    clone = clone_with_credentials(by_dvc, tmp_path / "clone-of-dvc")
    cloud = keel(clone, "status", "--cloud").stdout
    assert sorted(cloud.splitlines()) == sorted(dvc(clone, "status", "-c").stdout.splitlines())
    assert "deleted:" in cloud
    pulled = keel(clone, "pull")
    assert "5 files fetched" in pulled.stdout, "the manifest came with status --cloud, as with dvc"
    assert tree(clone) == tree(by_dvc)
    assert "up to date" in dvc(clone, "status").stdout
    assert "in sync" in keel(clone, "status", "--cloud").stdout
    assert "in sync" in dvc(clone, "status", "-c").stdout


def test_keel_push_then_dvc_pull_and_status_in_another_clone(tmp_path, s3_url):
    by_keel = with_big_file(make_repo(tmp_path / "by-keel"))
    keel(by_keel, "init")
    keel(by_keel, "add", "data", "table.csv")
    configure_remote(by_keel, s3_url)
    assert "new:" in keel(by_keel, "status", "--cloud").stdout
    assert "6 files pushed" in keel(by_keel, "push").stdout
    assert "Everything is up to date." in keel(by_keel, "push").stdout
    assert keel(by_keel, "status", "--cloud").stdout == dvc(by_keel, "status", "-c").stdout
    assert "in sync" in dvc(by_keel, "status", "-c").stdout

    clone = clone_with_credentials(by_keel, tmp_path / "clone-of-keel")
    dvc(clone, "pull", "-q")
    assert tree(clone) == tree(by_keel)
    assert "up to date" in dvc(clone, "status").stdout
    assert "in sync" in dvc(clone, "status", "-c").stdout
    assert "in sync" in keel(clone, "status", "--cloud").stdout


def test_wrong_keys_fail_with_one_clear_line(tmp_path, s3_url):
    repo = make_repo(tmp_path / "repo")
    keel(repo, "init")
    keel(repo, "add", "data")
    configure_remote(repo, s3_url)
    dvc(repo, "remote", "modify", "--local", "storage", "secret_access_key", "not-the-secret")
    denied = keel(repo, "push", check=False)
    assert denied.returncode == 1
    lines = denied.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), denied.stderr
    assert "access denied by remote 'storage'" in lines[0]
    assert "panicked" not in denied.stderr
