"""DVC's link types (`cache.type`), `checkout --relink` and `.dvcignore`,
with `keel data` and the real `dvc` on the same repositories: keel makes the
links dvc makes, each one reads the other's links as clean, a link is never
written through into the cache, and `.dvcignore` gives the same `.dvc` bytes."""

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

from test_data_dvc import dvc, keel, make_repo

TABLE_MD5 = hashlib.md5(b"x,y\n1,2\n").hexdigest()
FOO_MD5 = hashlib.md5(b"foo").hexdigest()


def cache_object(repo: Path, md5: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def entry_kind(path: Path, object_path: Path) -> str:
    """What a workspace entry is relative to its cache object."""
    if path.is_symlink():
        return "symlink"
    if os.stat(path).st_ino == os.stat(object_path).st_ino:
        return "hardlink"
    return "copy"


def workspace_kinds(repo: Path) -> dict:
    return {
        "table.csv": entry_kind(repo / "table.csv", cache_object(repo, TABLE_MD5)),
        "data/foo": entry_kind(repo / "data" / "foo", cache_object(repo, FOO_MD5)),
    }


def symlink_targets(repo: Path) -> dict:
    return {name: os.readlink(repo / name) for name in ["table.csv", "data/foo"] if (repo / name).is_symlink()}


def remove_outputs(repo: Path):
    shutil.rmtree(repo / "data")
    (repo / "table.csv").unlink()


# On ext4 (where these tests run) reflink is refused, so `reflink,copy` copies.
EXPECTED_KIND = {"hardlink": "hardlink", "symlink": "symlink", "reflink,copy": "copy"}


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink", "reflink,copy"])
def test_keel_add_links_as_configured_and_agrees_with_dvc_checkout(tmp_path, cache_type):
    repo = make_repo(tmp_path / "repo")
    keel(repo, "init")
    dvc(repo, "config", "cache.type", cache_type)
    keel(repo, "add", "data", "table.csv")
    kind = EXPECTED_KIND[cache_type]
    assert workspace_kinds(repo) == {"table.csv": kind, "data/foo": kind}
    if kind != "copy":
        mode = os.stat(repo / "table.csv").st_mode
        assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "linked entries are read-only"
    assert "up to date" in dvc(repo, "status").stdout

    remove_outputs(repo)
    dvc(repo, "checkout", "-q")
    by_dvc = workspace_kinds(repo), symlink_targets(repo)
    assert "up to date" in keel(repo, "status").stdout

    remove_outputs(repo)
    keel(repo, "checkout")
    by_keel = workspace_kinds(repo), symlink_targets(repo)
    assert by_keel == by_dvc
    assert (repo / "table.csv").read_text() == "x,y\n1,2\n"
    assert (repo / "data" / "nested" / "é unicode.txt").read_text() == "ünïcode\n" * 100
    assert "up to date" in dvc(repo, "status").stdout
    assert "up to date" in keel(repo, "status").stdout


@pytest.mark.parametrize("cache_type", ["hardlink", "symlink"])
def test_keel_sees_a_dvc_made_linked_workspace_as_clean(tmp_path, cache_type):
    repo = make_repo(tmp_path / "repo")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "cache.type", cache_type)
    dvc(repo, "add", "-q", "data", "table.csv")
    assert workspace_kinds(repo) == {"table.csv": cache_type, "data/foo": cache_type}
    assert keel(repo, "status").stdout == "Data and pipelines are up to date.\n"
    before = workspace_kinds(repo), symlink_targets(repo)
    assert keel(repo, "checkout").stdout == ""
    assert (workspace_kinds(repo), symlink_targets(repo)) == before


def test_relink_turns_copies_into_hardlinks_after_cache_type_changes(tmp_path):
    repo = make_repo(tmp_path / "repo")
    keel(repo, "init")
    dvc(repo, "config", "cache.type", "copy")
    keel(repo, "add", "data", "table.csv")
    assert workspace_kinds(repo) == {"table.csv": "copy", "data/foo": "copy"}
    dvc(repo, "config", "cache.type", "hardlink")
    keel(repo, "checkout")
    assert workspace_kinds(repo) == {"table.csv": "copy", "data/foo": "copy"}, "only --relink relinks"
    keel(repo, "checkout", "--relink")
    assert workspace_kinds(repo) == {"table.csv": "hardlink", "data/foo": "hardlink"}
    assert (repo / "data" / "bar").stat().st_ino == cache_object(repo, hashlib.md5(b"bar").hexdigest()).stat().st_ino
    assert "up to date" in dvc(repo, "status").stdout
    assert "up to date" in keel(repo, "status").stdout


def test_replacing_a_hardlinked_file_is_a_modification_and_the_cache_keeps_its_bytes(tmp_path):
    repo = make_repo(tmp_path / "repo")
    keel(repo, "init")
    dvc(repo, "config", "cache.type", "hardlink")
    keel(repo, "add", "table.csv")
    table = repo / "table.csv"
    object_path = cache_object(repo, TABLE_MD5)
    assert entry_kind(table, object_path) == "hardlink"
    # As an editor saves: make it writable, write a new file, rename it over.
    table.chmod(0o644)
    scratch = repo / ".table.csv.swp"
    scratch.write_text("x,y\n3,4\n")
    os.replace(scratch, table)
    status = keel(repo, "status").stdout
    assert "modified:" in status and "table.csv" in status
    assert "modified" in dvc(repo, "status").stdout
    assert hashlib.md5(object_path.read_bytes()).hexdigest() == TABLE_MD5
    keel(repo, "checkout", "--force")
    assert table.read_text() == "x,y\n1,2\n"
    assert entry_kind(table, object_path) == "hardlink"
    assert "up to date" in dvc(repo, "status").stdout


def write_ignored_tree(repo: Path):
    """`*.tmp` and a subdirectory pattern at the root, and a `.dvcignore` in a
    directory above a tracked one (anchored there, re-including a name)."""
    (repo / ".dvcignore").write_text("*.tmp\ndata/nested/logs/\n")
    (repo / "data" / "scratch.tmp").write_text("scratch")
    (repo / "data" / "nested" / "deep.tmp").write_text("deep")
    (repo / "data" / "nested" / "logs").mkdir()
    (repo / "data" / "nested" / "logs" / "run.txt").write_text("log")
    group = repo / "group"
    (group / "raw" / "skip").mkdir(parents=True)
    (group / "raw" / "deep" / "raw" / "skip").mkdir(parents=True)
    (group / ".dvcignore").write_text("/raw/skip/\n!keep.tmp\n*.bak\n")
    (group / "raw" / "a").write_text("a")
    (group / "raw" / "b.bak").write_text("b")
    (group / "raw" / "keep.tmp").write_text("kept")
    (group / "raw" / "t.tmp").write_text("t")
    (group / "raw" / "skip" / "s").write_text("s")
    (group / "raw" / "deep" / "raw" / "skip" / "d").write_text("d")


def test_dvcignore_gives_the_dvc_files_dvc_writes(tmp_path):
    by_keel = make_repo(tmp_path / "by-keel")
    keel(by_keel, "init")
    write_ignored_tree(by_keel)
    keel(by_keel, "add", "data", "group/raw")
    by_dvc = make_repo(tmp_path / "by-dvc")
    dvc(by_dvc, "init", "-q")
    write_ignored_tree(by_dvc)
    dvc(by_dvc, "add", "-q", "data", "group/raw")
    for name in ["data.dvc", "group/raw.dvc"]:
        assert (by_keel / name).read_bytes() == (by_dvc / name).read_bytes(), name
    assert "nfiles: 3" in (by_keel / "group" / "raw.dvc").read_text()
    assert "up to date" in dvc(by_keel, "status").stdout
    (by_keel / "data" / "another.tmp").write_text("still ignored")
    assert "up to date" in keel(by_keel, "status").stdout
    assert "up to date" in dvc(by_keel, "status").stdout
    # Checkout restores tracked files and leaves ignored ones alone.
    (by_keel / "data" / "foo").unlink()
    keel(by_keel, "checkout", "--force")
    assert (by_keel / "data" / "foo").read_text() == "foo"
    assert (by_keel / "data" / "scratch.tmp").read_text() == "scratch"
    assert (by_keel / "data" / "nested" / "logs" / "run.txt").read_text() == "log"


def test_a_dvcignore_inside_a_tracked_directory_is_refused_by_both(tmp_path):
    repo = make_repo(tmp_path / "repo")
    keel(repo, "init")
    (repo / "data" / "nested" / ".dvcignore").write_text("*.log\n")
    by_dvc = dvc(repo, "add", "data", check=False)
    by_keel = keel(repo, "add", "data", check=False)
    assert by_dvc.returncode != 0 and by_keel.returncode != 0
    assert "should not be in collected dir path" in by_dvc.stderr + by_dvc.stdout
    assert "should not be in collected dir path" in by_keel.stderr
    assert "panicked" not in by_keel.stderr
    assert not (repo / "data.dvc").exists()
