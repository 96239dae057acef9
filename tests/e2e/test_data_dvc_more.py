"""`keel data commit / diff / ls / gc / remote modify` against the real `dvc`:
for the same repository state both tools report the same changes, list the
same files, collect the same objects and write the same bytes."""

import json
import shutil
from pathlib import Path

import pytest

from test_data_dvc import dvc, keel, make_repo, run


def commit(repo: Path, message: str):
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-q", "-m", message)


def history_repo(path: Path) -> Path:
    """`data/` and `table.csv` added by dvc over three commits — v1 (branch
    `v1`), v2, v2b (the current branch's tip) — plus a version of `table.csv`
    that was cached but never committed; the workspace holds a fourth,
    uncommitted version."""
    repo = make_repo(path)
    dvc(repo, "init", "-q")
    dvc(repo, "add", "-q", "data", "table.csv")
    commit(repo, "v1")
    run(repo, "git", "branch", "v1")
    (repo / "data" / "foo").write_text("foo v2")
    (repo / "data" / "added").write_text("added")
    (repo / "table.csv").write_text("x,y\n3,4\n")
    dvc(repo, "add", "-q", "data", "table.csv")
    commit(repo, "v2")
    (repo / "table.csv").write_text("orphan\n")
    dvc(repo, "add", "-q", "table.csv")
    (repo / "table.csv").write_text("x,y\n9,9\n")
    dvc(repo, "add", "-q", "table.csv")
    commit(repo, "v2b")
    (repo / "data" / "bar").unlink()
    (repo / "table.csv").write_text("x,y\n5,6\n")
    dvc(repo, "add", "-q", "data", "table.csv")
    return repo


def current_branch(repo: Path) -> str:
    return run(repo, "git", "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()


def cache_files(repo: Path) -> set:
    cache = repo / ".dvc" / "cache"
    return {path.relative_to(cache).as_posix() for path in cache.rglob("*") if path.is_file()}


def change_workspace(repo: Path):
    """Every kind of change `dvc diff` reports, against HEAD."""
    (repo / "data" / "foo").write_text("foo v3")
    (repo / "data" / "nested" / "é unicode.txt").rename(repo / "data" / "nested" / "moved.txt")
    (repo / "data" / "new").write_text("new")
    (repo / "table.csv").unlink()
    (repo / "other.txt").write_text("other")
    dvc(repo, "add", "-q", "other.txt")


@pytest.mark.parametrize("revs", [[], ["HEAD~1"], ["HEAD~1", "HEAD"], ["v1", "HEAD"]])
def test_diff_json_and_text_match_dvc(tmp_path, revs):
    repo = history_repo(tmp_path / "repo")
    commit(repo, "v3")
    change_workspace(repo)
    # An object of HEAD missing from the cache: "not in cache" against the workspace.
    (repo / ".dvc" / "cache" / "files" / "md5" / "37" / "b51d194a7513e45b56f6524f2d51f2").unlink()
    for flags in [["--json"], ["--json", "--show-hash"], ["--json", "--hide-missing"]]:
        expected = json.loads(dvc(repo, "diff", *flags, *revs).stdout)
        actual = json.loads(keel(repo, "diff", *flags, *revs).stdout)
        assert actual == expected, flags
    for flags in [[], ["--show-hash"]]:
        assert keel(repo, "diff", *flags, *revs).stdout == dvc(repo, "diff", *flags, *revs).stdout


def test_diff_reports_nothing_for_the_same_commit(tmp_path):
    repo = history_repo(tmp_path / "repo")
    assert keel(repo, "diff", "--json", "HEAD", "HEAD").stdout.strip() == "{}"
    assert dvc(repo, "diff", "--json", "HEAD", "HEAD").stdout.strip() == "{}"


@pytest.mark.parametrize("scope", ["-w", "-a", "-A"])
def test_gc_removes_exactly_what_dvc_gc_removes(tmp_path, scope):
    by_dvc = history_repo(tmp_path / "by-dvc")
    by_keel = tmp_path / "by-keel"
    shutil.copytree(by_dvc, by_keel, symlinks=True)
    before = cache_files(by_keel)
    dry = keel(by_keel, "gc", scope, "--dry")
    assert cache_files(by_keel) == before, "--dry removes nothing"
    dvc(by_dvc, "gc", scope, "-f")
    keel(by_keel, "gc", scope, "-f")
    assert cache_files(by_keel) == cache_files(by_dvc)
    assert cache_files(by_keel) < before
    would_remove = {line.split("/.dvc/cache/", 1)[1] for line in dry.stdout.splitlines() if line.startswith("Removing ")}
    assert would_remove == before - cache_files(by_keel)
    assert "up to date" in dvc(by_keel, "status").stdout
    shutil.rmtree(by_keel / "data")
    dvc(by_keel, "checkout", "-q")
    assert (by_keel / "data" / "added").read_text() == "added"


def test_gc_refuses_without_a_scope_or_a_confirmation(tmp_path):
    repo = history_repo(tmp_path / "repo")
    before = cache_files(repo)
    no_scope = keel(repo, "gc", "-f", check=False)
    assert no_scope.returncode != 0 and "-w|--workspace" in no_scope.stderr
    unconfirmed = keel(repo, "gc", "-w", check=False)
    assert unconfirmed.returncode != 0 and "--force" in unconfirmed.stderr
    assert "panicked" not in no_scope.stderr + unconfirmed.stderr
    assert cache_files(repo) == before


def test_gc_cloud_collects_a_local_remote_as_dvc_does(tmp_path):
    by_dvc = tmp_path / "by-dvc"
    repo = history_repo(by_dvc / "repo")
    commit(repo, "v3")
    # config.local is not in git, so every checked-out revision sees the remote.
    dvc(repo, "remote", "add", "--local", "-d", "storage", "../remote")
    for rev in ["v1", current_branch(repo)]:
        run(repo, "git", "checkout", "-q", rev)
        dvc(repo, "checkout", "-q", "--force")
        dvc(repo, "push", "-q")
    by_keel = tmp_path / "by-keel"
    shutil.copytree(by_dvc, by_keel, symlinks=True)
    remote_files = lambda root: {p.relative_to(root).as_posix() for p in (root / "remote").rglob("*") if p.is_file()}  # noqa: E731
    before = remote_files(by_keel)
    dvc(repo, "gc", "-w", "--cloud", "-f")
    keel(by_keel / "repo", "gc", "-w", "--cloud", "-f")
    assert remote_files(by_keel) == remote_files(by_dvc) < before
    assert cache_files(by_keel / "repo") == cache_files(repo)


def test_commit_makes_dvc_status_clean_and_writes_dvcs_bytes(tmp_path):
    by_keel = history_repo(tmp_path / "by-keel")
    for repo in [by_keel]:
        (repo / "data" / "foo").write_text("committed")
        (repo / "data" / "more").write_text("more")
        (repo / "table.csv").write_text("x,y\n7,8\n")
        (repo / "table.csv").chmod(0o755)
    by_dvc = tmp_path / "by-dvc"
    shutil.copytree(by_keel, by_dvc, symlinks=True)
    assert "modified" in dvc(by_keel, "status").stdout
    keel(by_keel, "commit")
    dvc(by_dvc, "commit", "-f")
    assert "up to date" in dvc(by_keel, "status").stdout
    for name in ["data.dvc", "table.csv.dvc"]:
        assert (by_keel / name).read_bytes() == (by_dvc / name).read_bytes(), name
    assert cache_files(by_keel) == cache_files(by_dvc)
    (by_keel / "table.csv").unlink()
    missing = keel(by_keel, "commit", check=False)
    assert missing.returncode != 0 and "table.csv" in missing.stderr


@pytest.mark.parametrize("args", [[], ["-R"], ["--dvc-only"], ["-R", "--dvc-only"], ["data"], ["data", "-R"], ["table.csv"]])
def test_ls_json_matches_dvc_ls(tmp_path, args):
    repo = history_repo(tmp_path / "repo")
    (repo / "untracked.txt").write_text("u")
    (repo / "sub" / "deep").mkdir(parents=True)
    (repo / "sub" / "deep" / "t.csv").write_text("t")
    dvc(repo, "add", "-q", "sub/deep/t.csv")
    (repo / "data" / "foo").unlink()  # tracked, gone from the workspace
    path_args = [a for a in args if not a.startswith("-")]
    flags = [a for a in args if a.startswith("-")]
    expected = json.loads(dvc(repo, "ls", "--json", ".", *path_args, *flags).stdout)
    actual = json.loads(keel(repo, "ls", "--json", *path_args, *flags).stdout)
    assert actual == expected
    assert keel(repo, "ls", *path_args, *flags).stdout.split() == dvc(repo, "ls", ".", *path_args, *flags).stdout.split()


def test_remote_modify_writes_what_dvc_writes(tmp_path):
    by_keel, by_dvc = make_repo(tmp_path / "by-keel"), make_repo(tmp_path / "by-dvc")
    keel(by_keel, "init")
    dvc(by_dvc, "init", "-q")
    steps = [
        ["remote", "add", "r", "/tmp/somewhere"],
        ["remote", "modify", "r", "verify", "True"],
        ["remote", "modify", "r", "jobs", "4"],
        ["remote", "modify", "--local", "r", "jobs", "8"],
        ["remote", "modify", "r", "url", "../elsewhere"],
        ["remote", "modify", "r", "--unset", "jobs"],
        ["remote", "modify", "--local", "r", "--unset", "jobs"],
    ]
    for step in steps:
        keel(by_keel, *step)
        dvc(by_dvc, *step)
        for name in ["config", "config.local"]:
            keel_file, dvc_file = by_keel / ".dvc" / name, by_dvc / ".dvc" / name
            assert keel_file.exists() == dvc_file.exists(), (step, name)
            if dvc_file.exists():
                assert keel_file.read_bytes() == dvc_file.read_bytes(), (step, name)
    for bad in [["r", "foo", "bar"], ["r", "verify", "maybe"], ["r", "jobs", "0"], ["nope", "jobs", "1"]]:
        assert dvc(by_dvc, "remote", "modify", *bad, check=False).returncode != 0
        refused = keel(by_keel, "remote", "modify", *bad, check=False)
        assert refused.returncode != 0 and refused.stderr.startswith("error:"), bad
