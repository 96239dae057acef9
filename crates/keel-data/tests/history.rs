//! Commands that look at git history or rewrite `.dvc` files — `gc` scopes,
//! `diff` between commits and against the workspace, `commit`, `ls` — on
//! real git repositories driven with the `git` command-line.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use keel_data::diff::{diff, DiffEntry, ModifiedEntry, RenamedEntry};
use keel_data::gc::{collect_cache, used_oids, GcScope};
use keel_data::hashing::bytes_md5;
use keel_data::ls::{ls, LsOptions};
use keel_data::manifest::{Manifest, ManifestEntry};
use keel_data::repo::Repo;

fn git(root: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(root)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

fn commit_all(root: &Path, message: &str) {
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", message]);
}

/// The oid of a directory holding these (relpath, content) files.
fn dir_oid(files: &[(&str, &str)]) -> String {
    Manifest::new(
        files
            .iter()
            .map(|(relpath, content)| ManifestEntry {
                md5: bytes_md5(content.as_bytes()),
                relpath: (*relpath).to_owned(),
            })
            .collect(),
    )
    .oid()
}

/// History of `data.csv` and `images/`:
/// c1 (branch `keep-v1`): data.csv=v1, images={foo}
/// c2 (tag `v2`):         data.csv=v2, images={foo, bar}
/// c3 (main):             data.csv=v3
/// workspace:             data.csv=v4 (added, not committed)
fn repo_with_history() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    Repo::init(root).expect("init");
    let repo = Repo::find(root).expect("find");
    write(&root.join("data.csv"), "v1");
    write(&root.join("images/foo"), "foo");
    repo.add(&root.join("data.csv")).expect("add");
    repo.add(&root.join("images")).expect("add");
    commit_all(root, "c1");
    git(root, &["branch", "keep-v1"]);
    write(&root.join("data.csv"), "v2");
    write(&root.join("images/bar"), "bar");
    repo.add(&root.join("data.csv")).expect("add");
    repo.add(&root.join("images")).expect("add");
    commit_all(root, "c2");
    git(root, &["tag", "-a", "v2", "-m", "annotated"]);
    write(&root.join("data.csv"), "v3");
    repo.add(&root.join("data.csv")).expect("add");
    commit_all(root, "c3");
    write(&root.join("data.csv"), "v4");
    repo.add(&root.join("data.csv")).expect("add");
    (dir, repo)
}

fn md5s(contents: &[&str]) -> BTreeSet<String> {
    contents
        .iter()
        .map(|content| bytes_md5(content.as_bytes()))
        .collect()
}

#[test]
fn each_scope_keeps_what_its_revisions_reference() {
    let (_dir, repo) = repo_with_history();
    let images_v1 = dir_oid(&[("foo", "foo")]);
    let images_v2 = dir_oid(&[("bar", "bar"), ("foo", "foo")]);
    let with_images = |data: &[&str], dirs: &[&String]| {
        let mut expected = md5s(data);
        expected.extend(md5s(&["foo", "bar"]));
        expected.extend(dirs.iter().map(|oid| (*oid).clone()));
        expected
    };
    let workspace = GcScope {
        workspace: true,
        ..GcScope::default()
    };
    assert_eq!(
        used_oids(&repo, workspace).expect("workspace"),
        with_images(&["v4"], &[&images_v2])
    );
    let branches = GcScope {
        all_branches: true,
        ..GcScope::default()
    };
    let mut expected = with_images(&["v4", "v3", "v1"], &[&images_v2, &images_v1]);
    assert_eq!(used_oids(&repo, branches).expect("branches"), expected);
    let tags = GcScope {
        all_tags: true,
        ..GcScope::default()
    };
    assert_eq!(
        used_oids(&repo, tags).expect("tags"),
        with_images(&["v4", "v2"], &[&images_v2])
    );
    let commits = GcScope {
        all_commits: true,
        ..GcScope::default()
    };
    expected.extend(md5s(&["v2"]));
    assert_eq!(used_oids(&repo, commits).expect("commits"), expected);
}

#[test]
fn no_scope_is_refused() {
    let (_dir, repo) = repo_with_history();
    let error = used_oids(&repo, GcScope::default()).expect_err("no scope");
    assert!(error.to_string().contains("-w|--workspace"), "{error}");
}

fn cached_oids(repo: &Repo) -> BTreeSet<String> {
    repo.cache()
        .list_objects()
        .expect("list")
        .into_iter()
        .map(|object| object.oid)
        .collect()
}

#[test]
fn workspace_gc_removes_old_versions_and_a_dry_run_removes_nothing() {
    let (_dir, repo) = repo_with_history();
    let before = cached_oids(&repo);
    let used = used_oids(
        &repo,
        GcScope {
            workspace: true,
            ..GcScope::default()
        },
    )
    .expect("used");
    let dry = collect_cache(&repo, &used, true).expect("dry");
    assert_eq!(cached_oids(&repo), before, "a dry run removes nothing");
    let expected_removed: BTreeSet<String> = before.difference(&used).cloned().collect();
    let dry_removed: BTreeSet<String> = dry
        .removed
        .iter()
        .map(|object| object.oid.clone())
        .collect();
    assert_eq!(dry_removed, expected_removed);
    assert!(expected_removed.contains(&bytes_md5(b"v1")));
    assert!(expected_removed.contains(&dir_oid(&[("foo", "foo")])));
    // Manifests are removed before files, as DVC removes them.
    assert!(dry.removed[0].oid.ends_with(".dir"));

    collect_cache(&repo, &used, false).expect("gc");
    assert_eq!(cached_oids(&repo), used);
    assert!(repo.status().expect("status").is_empty());
}

#[test]
fn diff_between_commits_expands_directories() {
    let (dir, repo) = repo_with_history();
    let changes = diff(&repo, Some("HEAD~2"), Some("HEAD~1")).expect("diff");
    assert_eq!(
        changes.added,
        [DiffEntry {
            path: "images/bar".into(),
            hash: Some(bytes_md5(b"bar"))
        }]
    );
    assert_eq!(
        changes.modified,
        [
            ModifiedEntry {
                path: "data.csv".into(),
                old_hash: Some(bytes_md5(b"v1")),
                new_hash: Some(bytes_md5(b"v2")),
            },
            ModifiedEntry {
                path: "images/".into(),
                old_hash: Some(dir_oid(&[("foo", "foo")])),
                new_hash: Some(dir_oid(&[("bar", "bar"), ("foo", "foo")])),
            },
        ]
    );
    assert!(changes.deleted.is_empty() && changes.renamed.is_empty());
    assert!(changes.not_in_cache.is_empty());
    let json = changes.to_dvc_json(false, false);
    assert_eq!(
        json,
        r#"{"added": [{"path": "images/bar"}], "deleted": [], "modified": [{"path": "data.csv"}, {"path": "images/"}], "renamed": []}"#
    );
    let same = diff(&repo, Some("main"), Some("HEAD")).expect("same commit");
    assert_eq!(same.to_dvc_json(true, false), "{}");
    let error = diff(&repo, Some("no-such-rev"), None).expect_err("unknown rev");
    assert!(error.to_string().contains("no-such-rev"), "{error}");
    drop(dir);
}

#[test]
fn diff_against_the_workspace_sees_renames_deletions_and_missing_objects() {
    let (dir, repo) = repo_with_history();
    let root = dir.path();
    commit_all(root, "c4");
    std::fs::rename(root.join("images/bar"), root.join("images/baz")).expect("rename");
    std::fs::remove_file(root.join("data.csv")).expect("remove");
    let foo_object = repo.cache().object_path(&bytes_md5(b"foo"));
    std::fs::remove_file(&foo_object).expect("remove object");
    let changes = diff(&repo, None, None).expect("diff");
    assert_eq!(
        changes.renamed,
        [RenamedEntry {
            old_path: "images/bar".into(),
            new_path: "images/baz".into(),
            hash: Some(bytes_md5(b"bar")),
        }]
    );
    assert_eq!(changes.deleted.len(), 1);
    assert_eq!(changes.deleted[0].path, "data.csv");
    assert_eq!(changes.modified.len(), 1);
    assert_eq!(changes.modified[0].path, "images/");
    assert_eq!(
        changes.not_in_cache,
        [DiffEntry {
            path: "images/foo".into(),
            hash: Some(bytes_md5(b"foo"))
        }]
    );
}

#[test]
fn commit_records_the_workspace_and_status_is_clean_after() {
    let (dir, repo) = repo_with_history();
    let root = dir.path();
    write(&root.join("data.csv"), "v5");
    write(&root.join("images/new"), "new");
    assert_eq!(repo.status().expect("status").len(), 2);
    let report = keel_data::commit::commit(&repo, &[]).expect("commit");
    assert_eq!(report.updated, ["data.csv.dvc", "images.dvc"]);
    assert!(repo.status().expect("status").is_empty());
    assert_eq!(
        std::fs::read_to_string(root.join("data.csv.dvc")).expect("read"),
        format!(
            "outs:\n- md5: {}\n  size: 2\n  hash: md5\n  path: data.csv\n",
            bytes_md5(b"v5")
        )
    );
    let nothing = keel_data::commit::commit(&repo, &[root.join("images")]).expect("again");
    assert!(nothing.updated.is_empty());
    std::fs::remove_file(root.join("data.csv")).expect("remove");
    let error = keel_data::commit::commit(&repo, &[]).expect_err("missing output");
    assert_eq!(error.to_string(), "output 'data.csv' does not exist");
    let error = keel_data::commit::commit(&repo, &[root.join("nope")]).expect_err("unknown");
    assert!(error.to_string().contains("'nope'"), "{error}");
}

#[test]
fn ls_merges_the_workspace_with_tracked_data() {
    let (dir, repo) = repo_with_history();
    let root = dir.path();
    std::fs::remove_file(root.join("images/foo")).expect("remove");
    let entries = ls(&repo, root, LsOptions::default()).expect("ls");
    let paths: Vec<&str> = entries.iter().map(|entry| entry.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            ".dvcignore",
            ".gitignore",
            "data.csv",
            "data.csv.dvc",
            "images",
            "images.dvc"
        ]
    );
    let data = &entries[2];
    assert!(data.isout && !data.isdir);
    assert_eq!(data.md5, Some(bytes_md5(b"v4")));
    assert_eq!(data.size, Some(2));
    let images = ls(
        &repo,
        &root.join("images"),
        LsOptions {
            recursive: true,
            dvc_only: false,
        },
    )
    .expect("ls images");
    // foo is gone from the workspace but still tracked: listed, without a size.
    assert_eq!(images.len(), 2);
    assert_eq!(images[1].path, "foo");
    assert_eq!(images[1].size, None);
    assert_eq!(images[1].md5, Some(bytes_md5(b"foo")));
    let dvc_only = ls(
        &repo,
        root,
        LsOptions {
            recursive: false,
            dvc_only: true,
        },
    )
    .expect("dvc only");
    let paths: Vec<&str> = dvc_only.iter().map(|entry| entry.path.as_str()).collect();
    assert_eq!(paths, ["data.csv", "images"]);
    assert_eq!(dvc_only[1].size, Some(6));
    assert!(ls(&repo, &root.join("missing"), LsOptions::default()).is_err());
}
