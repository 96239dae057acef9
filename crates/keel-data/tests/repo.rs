//! A repository driven end to end through `Repo`: init, add, status,
//! checkout, on the formats DVC 3 writes.

use std::path::Path;

use keel_data::repo::{OutputStatus, Repo, StatusEntry};

fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

/// A git-backed repository holding `data.csv` ("foo") and `images/` with
/// `foo` and `bar`, both added.
fn added_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).expect("mkdir .git");
    Repo::init(dir.path()).expect("init");
    write(&dir.path().join("data.csv"), "foo");
    write(&dir.path().join("images/foo"), "foo");
    write(&dir.path().join("images/bar"), "bar");
    let repo = Repo::find(dir.path()).expect("find");
    repo.add(&dir.path().join("data.csv")).expect("add file");
    repo.add(&dir.path().join("images")).expect("add dir");
    dir
}

#[test]
fn init_writes_what_dvc_init_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    Repo::init(dir.path()).expect("init");
    assert_eq!(
        read(&dir.path().join(".dvc/.gitignore")),
        "/config.local\n/tmp\n/cache\n"
    );
    // Without git, as `dvc init --no-scm`.
    assert_eq!(
        read(&dir.path().join(".dvc/config")),
        "[core]\n    no_scm = True\n"
    );
    assert!(Repo::init(dir.path()).is_err(), "second init must refuse");
}

#[test]
fn add_writes_dvc3_files_cache_objects_and_gitignore() {
    let dir = added_repo();
    let root = dir.path();
    assert_eq!(
        read(&root.join("data.csv.dvc")),
        "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  size: 3\n  hash: md5\n  path: data.csv\n"
    );
    assert_eq!(
        read(&root.join("images.dvc")),
        "outs:\n- md5: 5ea40360f5b4ec688df672a4db9c17d1.dir\n  size: 6\n  nfiles: 2\n  hash: md5\n  path: images\n"
    );
    assert_eq!(read(&root.join(".gitignore")), "/data.csv\n/images\n");
    let objects = root.join(".dvc/cache/files/md5");
    assert_eq!(
        read(&objects.join("ac/bd18db4cc2f85cedef654fccc4a4d8")),
        "foo"
    );
    assert_eq!(
        read(&objects.join("37/b51d194a7513e45b56f6524f2d51f2")),
        "bar"
    );
    assert_eq!(
        read(&objects.join("5e/a40360f5b4ec688df672a4db9c17d1.dir")),
        r#"[{"md5": "37b51d194a7513e45b56f6524f2d51f2", "relpath": "bar"}, {"md5": "acbd18db4cc2f85cedef654fccc4a4d8", "relpath": "foo"}]"#
    );
}

#[test]
fn adding_twice_keeps_one_gitignore_line() {
    let dir = added_repo();
    let repo = Repo::find(dir.path()).expect("find");
    repo.add(&dir.path().join("data.csv")).expect("add again");
    assert_eq!(read(&dir.path().join(".gitignore")), "/data.csv\n/images\n");
}

#[test]
fn modify_status_checkout_cycle() {
    let dir = added_repo();
    let root = dir.path();
    let repo = Repo::find(root).expect("find");
    assert_eq!(repo.status().expect("status"), []);

    write(&root.join("data.csv"), "changed");
    write(&root.join("images/extra"), "new file");
    std::fs::remove_file(root.join("images/bar")).expect("rm");
    assert_eq!(
        repo.status().expect("status"),
        [
            StatusEntry {
                dvc_file: "data.csv.dvc".to_owned(),
                output: "data.csv".to_owned(),
                status: OutputStatus::Modified,
            },
            StatusEntry {
                dvc_file: "images.dvc".to_owned(),
                output: "images".to_owned(),
                status: OutputStatus::Modified,
            },
        ]
    );

    let refused = repo.checkout(false).expect("checkout");
    assert_eq!(refused.refused, ["data.csv", "images"]);
    assert_eq!(read(&root.join("data.csv")), "changed");

    let forced = repo.checkout(true).expect("checkout --force");
    assert_eq!(forced.restored, ["data.csv", "images"]);
    assert_eq!(read(&root.join("data.csv")), "foo");
    assert_eq!(read(&root.join("images/bar")), "bar");
    assert!(!root.join("images/extra").exists());
    assert_eq!(repo.status().expect("status"), []);
}

#[test]
fn deleted_outputs_are_reported_and_restored_without_force() {
    let dir = added_repo();
    let root = dir.path();
    std::fs::remove_dir_all(root.join("images")).expect("rm");
    let repo = Repo::find(root).expect("find");
    let status = repo.status().expect("status");
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].status, OutputStatus::Deleted);
    let report = repo.checkout(false).expect("checkout");
    assert_eq!(report.restored, ["images"]);
    assert_eq!(read(&root.join("images/foo")), "foo");
}

#[test]
fn status_after_add_hashes_nothing_again() {
    let dir = added_repo();
    let repo = Repo::find(dir.path()).expect("find");
    assert_eq!(repo.status().expect("status"), []);
    assert_eq!(repo.state().n_hashed(), 0);
}

#[test]
fn a_corrupted_cache_object_is_not_checked_out() {
    let dir = added_repo();
    let root = dir.path();
    let object = root.join(".dvc/cache/files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8");
    std::fs::remove_file(&object).expect("rm object");
    write(&object, "tampered");
    std::fs::remove_file(root.join("data.csv")).expect("rm");
    let repo = Repo::find(root).expect("find");
    let error = repo.checkout(false).expect_err("corrupt");
    assert!(error.to_string().contains("corrupted"), "{error}");
    assert!(!root.join("data.csv").exists());
}
