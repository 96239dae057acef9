//! Push, fetch and `status --cloud` against a local directory remote, and a
//! second checkout of the repository (as a fresh `git clone` gets it: `.dvc`
//! files and config, no cache, no data) restored from it.

use std::path::{Path, PathBuf};

use keel_data::remote::{ConfigLevel, LocalRemote, RemoteConfig};
use keel_data::repo::Repo;
use keel_data::transfer::{
    cloud_status, fetch, push, CloudStatus, CloudStatusEntry, TransferOptions,
};
use keel_data::DataError;

const FOO_MD5: &str = "acbd18db4cc2f85cedef654fccc4a4d8";
const BAR_MD5: &str = "37b51d194a7513e45b56f6524f2d51f2";
const IMAGES_OID: &str = "5ea40360f5b4ec688df672a4db9c17d1.dir";

fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

fn object(root: &Path, oid: &str) -> PathBuf {
    root.join("files/md5").join(&oid[..2]).join(&oid[2..])
}

struct Setup {
    _dir: tempfile::TempDir,
    origin: PathBuf,
    clone: PathBuf,
    remote: LocalRemote,
}

/// `origin/` holds `data.csv` ("foo") and `images/{foo,bar}`, added, with a
/// default remote `storage` at `remote/`; `clone/` has only what git would
/// carry (the `.dvc` files and `.dvc/config`).
fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let origin = dir.path().join("origin");
    let clone = dir.path().join("clone");
    let remote_root = dir.path().join("remote");
    std::fs::create_dir_all(origin.join(".git")).expect("mkdir");
    Repo::init(&origin).expect("init");
    write(&origin.join("data.csv"), "foo");
    write(&origin.join("images/foo"), "foo");
    write(&origin.join("images/bar"), "bar");
    let repo = Repo::find(&origin).expect("find");
    repo.add(&origin.join("data.csv")).expect("add file");
    repo.add(&origin.join("images")).expect("add dir");
    RemoteConfig::new(&origin)
        .add(
            &origin,
            "storage",
            "../remote",
            ConfigLevel::Project,
            true,
            false,
        )
        .expect("remote add");
    for carried in [
        ".dvc/config",
        ".dvc/.gitignore",
        "data.csv.dvc",
        "images.dvc",
    ] {
        write(&clone.join(carried), &read(&origin.join(carried)));
    }
    let remote = RemoteConfig::new(&origin).resolve(None).expect("resolve");
    assert_eq!(remote.root, remote_root);
    Setup {
        _dir: dir,
        origin,
        clone,
        remote,
    }
}

fn options() -> TransferOptions {
    TransferOptions {
        n_jobs: Some(2),
        show_progress: false,
    }
}

#[test]
fn push_then_fetch_and_checkout_in_a_clone_restores_file_and_directory() {
    let setup = setup();
    let origin = Repo::find(&setup.origin).expect("find");
    let report = push(&origin, &setup.remote, options()).expect("push");
    assert_eq!(report.n_transferred, 3, "foo (once), bar, the manifest");
    assert!(report.missing.is_empty());
    for oid in [FOO_MD5, BAR_MD5, IMAGES_OID] {
        let pushed = object(&setup.remote.root, oid);
        assert!(pushed.is_file(), "{oid} on the remote");
        assert!(std::fs::metadata(&pushed)
            .expect("stat")
            .permissions()
            .readonly());
    }
    assert_eq!(
        push(&origin, &setup.remote, options())
            .expect("push again")
            .n_transferred,
        0
    );

    let clone = Repo::find(&setup.clone).expect("find clone");
    let remote = RemoteConfig::new(&setup.clone)
        .resolve(None)
        .expect("resolve");
    assert_eq!(
        remote, setup.remote,
        "relative url resolves the same from the clone"
    );
    let fetched = fetch(&clone, &remote, options()).expect("fetch");
    assert_eq!(fetched.n_transferred, 3);
    clone.checkout(false).expect("checkout");
    assert_eq!(read(&setup.clone.join("data.csv")), "foo");
    assert_eq!(read(&setup.clone.join("images/foo")), "foo");
    assert_eq!(read(&setup.clone.join("images/bar")), "bar");
    assert!(clone.status().expect("status").is_empty());
}

#[test]
fn a_corrupted_object_on_the_remote_is_refused_on_fetch() {
    let setup = setup();
    let origin = Repo::find(&setup.origin).expect("find");
    push(&origin, &setup.remote, options()).expect("push");
    let corrupted = object(&setup.remote.root, BAR_MD5);
    std::fs::remove_file(&corrupted).expect("rm");
    write(&corrupted, "not bar");

    let clone = Repo::find(&setup.clone).expect("find clone");
    let error = fetch(&clone, &setup.remote, options()).expect_err("corrupt");
    assert!(matches!(error, DataError::CorruptObject { .. }), "{error}");
    assert!(clone.cache().find(BAR_MD5).is_none(), "never stored");
    // The intact objects did arrive.
    assert!(clone.cache().find(FOO_MD5).is_some());
}

#[test]
fn an_interrupted_push_finishes_on_rerun() {
    let setup = setup();
    let origin = Repo::find(&setup.origin).expect("find");
    // As a push killed mid-copy leaves it: one object done, one half-written
    // temp file beside where the next would land, no manifest.
    let done = object(&setup.remote.root, FOO_MD5);
    write(&done, "foo");
    let half_written = object(&setup.remote.root, BAR_MD5).with_file_name(".keel-tmp-interrupted");
    write(&half_written, "b");
    assert_eq!(
        cloud_status(&origin, &setup.remote).expect("status"),
        [
            CloudStatusEntry {
                name: "images".into(),
                status: CloudStatus::New
            },
            CloudStatusEntry {
                name: "images/bar".into(),
                status: CloudStatus::New
            },
        ]
    );

    let report = push(&origin, &setup.remote, options()).expect("rerun");
    assert_eq!(report.n_transferred, 2, "bar and the manifest");
    assert_eq!(read(&object(&setup.remote.root, BAR_MD5)), "bar");
    assert!(cloud_status(&origin, &setup.remote)
        .expect("status")
        .is_empty());
}

#[test]
fn a_manifest_is_pushed_only_with_all_its_files() {
    let setup = setup();
    let origin = Repo::find(&setup.origin).expect("find");
    let cached_bar = origin.cache().object_path(BAR_MD5);
    std::fs::remove_file(&cached_bar).expect("rm");

    let report = push(&origin, &setup.remote, options()).expect("push");
    assert_eq!(report.missing, [BAR_MD5]);
    assert!(!object(&setup.remote.root, IMAGES_OID).exists());
    assert_eq!(
        cloud_status(&origin, &setup.remote).expect("status"),
        [
            CloudStatusEntry {
                name: "images".into(),
                status: CloudStatus::New
            },
            CloudStatusEntry {
                name: "images/bar".into(),
                status: CloudStatus::Missing
            },
        ]
    );
}

#[test]
fn objects_only_on_the_remote_are_deleted_in_cloud_status() {
    // As in DVC, the manifest itself is fetched to list the directory.
    let setup = setup();
    let origin = Repo::find(&setup.origin).expect("find");
    push(&origin, &setup.remote, options()).expect("push");
    let clone = Repo::find(&setup.clone).expect("find clone");
    let statuses = cloud_status(&clone, &setup.remote).expect("status");
    let names: Vec<(&str, CloudStatus)> = statuses
        .iter()
        .map(|entry| (entry.name.as_str(), entry.status))
        .collect();
    assert_eq!(
        names,
        [
            ("data.csv", CloudStatus::Deleted),
            ("images/bar", CloudStatus::Deleted),
            ("images/foo", CloudStatus::Deleted),
        ]
    );
}
