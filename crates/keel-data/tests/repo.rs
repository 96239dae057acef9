//! A repository driven end to end through `Repo`: init, add, status,
//! checkout, on the formats DVC 3 writes.

use std::path::Path;

use keel_data::repo::{CheckoutOptions, OutputStatus, Repo, StatusEntry};

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

fn set_cache_type(root: &Path, value: &str) {
    write(
        &root.join(".dvc/config.local"),
        &format!("[cache]\n    type = \"{value}\"\n"),
    );
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).expect("stat"))
}

/// The repository of `added_repo`, added with `cache.type` set to `value`.
fn added_repo_linked(value: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).expect("mkdir .git");
    Repo::init(dir.path()).expect("init");
    set_cache_type(dir.path(), value);
    write(&dir.path().join("data.csv"), "foo");
    write(&dir.path().join("images/foo"), "foo");
    write(&dir.path().join("images/bar"), "bar");
    let repo = Repo::find(dir.path()).expect("find");
    repo.add(&dir.path().join("data.csv")).expect("add file");
    repo.add(&dir.path().join("images")).expect("add dir");
    dir
}

const FOO_OBJECT: &str = ".dvc/cache/files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8";

#[cfg(unix)]
#[test]
fn add_with_hardlink_leaves_the_workspace_as_read_only_links_to_the_cache() {
    let dir = added_repo_linked("hardlink");
    let root = dir.path();
    let object = root.join(FOO_OBJECT);
    assert_eq!(inode(&root.join("data.csv")), inode(&object));
    assert_eq!(inode(&root.join("images/foo")), inode(&object));
    assert!(std::fs::metadata(root.join("data.csv"))
        .expect("stat")
        .permissions()
        .readonly());
    let repo = Repo::find(root).expect("find");
    assert_eq!(repo.status().expect("status"), []);
}

#[cfg(unix)]
#[test]
fn add_with_symlink_links_every_file_and_status_follows_them() {
    let dir = added_repo_linked("symlink");
    let root = dir.path();
    let object = std::fs::canonicalize(root)
        .expect("canonical")
        .join(FOO_OBJECT);
    assert_eq!(
        std::fs::read_link(root.join("data.csv")).expect("link"),
        object
    );
    assert_eq!(
        std::fs::read_link(root.join("images/foo")).expect("link"),
        object
    );
    let repo = Repo::find(root).expect("find");
    assert_eq!(repo.status().expect("status"), []);
    std::fs::remove_file(root.join("data.csv")).expect("rm");
    std::fs::remove_file(root.join("images/bar")).expect("rm");
    repo.checkout(true).expect("checkout");
    for restored in ["data.csv", "images/bar"] {
        assert!(std::fs::symlink_metadata(root.join(restored))
            .expect("stat")
            .file_type()
            .is_symlink());
    }
    assert_eq!(read(&root.join("images/bar")), "bar");
}

#[cfg(unix)]
#[test]
fn relink_turns_copies_into_hardlinks_after_cache_type_changes() {
    let dir = added_repo_linked("copy");
    let root = dir.path();
    let object = root.join(FOO_OBJECT);
    assert_ne!(inode(&root.join("data.csv")), inode(&object));
    set_cache_type(root, "hardlink");
    let repo = Repo::find(root).expect("find");
    assert_eq!(repo.checkout(false).expect("checkout").relinked, [""; 0]);
    assert_ne!(inode(&root.join("data.csv")), inode(&object));
    let report = repo
        .checkout_with(CheckoutOptions {
            force: false,
            relink: true,
        })
        .expect("relink");
    assert_eq!(report.relinked, ["data.csv", "images"]);
    assert_eq!(report.restored, [""; 0]);
    assert_eq!(inode(&root.join("data.csv")), inode(&object));
    assert_eq!(inode(&root.join("images/foo")), inode(&object));
    assert_eq!(repo.status().expect("status"), []);
}

#[cfg(unix)]
#[test]
fn replacing_a_hardlinked_file_shows_it_modified_and_leaves_the_cache_intact() {
    use std::os::unix::fs::PermissionsExt;
    let dir = added_repo_linked("hardlink");
    let root = dir.path();
    let workspace = root.join("data.csv");
    // What an editor does: make it writable, write a new file, rename it over.
    std::fs::set_permissions(&workspace, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    write(&root.join(".data.csv.swp"), "edited");
    std::fs::rename(root.join(".data.csv.swp"), &workspace).expect("rename");
    let repo = Repo::find(root).expect("find");
    assert_eq!(
        repo.status().expect("status")[0].status,
        OutputStatus::Modified
    );
    assert_eq!(read(&root.join(FOO_OBJECT)), "foo");
    repo.checkout(true).expect("checkout --force");
    assert_eq!(read(&workspace), "foo");
    assert!(std::fs::metadata(root.join(FOO_OBJECT))
        .expect("stat")
        .permissions()
        .readonly());
}

#[test]
fn dvcignore_leaves_files_out_of_the_manifest_and_checkout_keeps_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir(root.join(".git")).expect("mkdir .git");
    Repo::init(root).expect("init");
    write(&root.join(".dvcignore"), "*.tmp\n");
    write(&root.join("group/.dvcignore"), "/images/logs/\n!keep.tmp\n");
    write(&root.join("group/images/foo"), "foo");
    write(&root.join("group/images/bar"), "bar");
    write(&root.join("group/images/scratch.tmp"), "scratch");
    write(&root.join("group/images/keep.tmp"), "kept");
    write(&root.join("group/images/logs/run.log"), "log");
    let repo = Repo::find(root).expect("find");
    repo.add(&root.join("group/images")).expect("add");
    let dvc_file = read(&root.join("group/images.dvc"));
    assert!(dvc_file.contains("nfiles: 3"), "{dvc_file}");
    write(&root.join("group/images/more.tmp"), "more");
    assert_eq!(repo.status().expect("status"), []);
    std::fs::remove_file(root.join("group/images/foo")).expect("rm");
    repo.checkout(true).expect("checkout");
    assert_eq!(read(&root.join("group/images/foo")), "foo");
    assert_eq!(read(&root.join("group/images/scratch.tmp")), "scratch");
    assert_eq!(read(&root.join("group/images/logs/run.log")), "log");
}

#[test]
fn a_dvcignore_inside_a_tracked_directory_is_refused_as_dvc_refuses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    Repo::init(root).expect("init");
    write(&root.join("images/foo"), "foo");
    write(&root.join("images/sub/.dvcignore"), "*.log\n");
    let repo = Repo::find(root).expect("find");
    let error = repo.add(&root.join("images")).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("should not be in collected dir path"),
        "{error}"
    );
    assert!(!root.join("images.dvc").exists());
}

#[test]
fn an_unknown_cache_type_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    Repo::init(dir.path()).expect("init");
    set_cache_type(dir.path(), "hardlink,softlink");
    let error = Repo::find(dir.path()).expect_err("bad type");
    assert!(error.to_string().contains("softlink"), "{error}");
}
