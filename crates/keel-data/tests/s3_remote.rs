//! Push, fetch, `status --cloud` and the `gc --cloud` primitives against a
//! real S3-compatible server (`scripts/s3-server.sh`, started by `.ci/run`):
//! `KEEL_TEST_S3_ENDPOINT` (default `http://127.0.0.1:9000`),
//! `KEEL_TEST_S3_BUCKET` (`keel-test`), `KEEL_TEST_S3_ACCESS_KEY_ID` and
//! `KEEL_TEST_S3_SECRET_ACCESS_KEY` (by default the key the script made, from
//! its `credentials` file). A server that cannot be reached fails these
//! tests; they never pass without one. Each test works under its own prefix
//! of the bucket.
//!
//! What the remote holds is checked with a separate `object_store` client,
//! never through the code under test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use md5::{Digest, Md5};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use keel_data::config::ConfigFile;
use keel_data::remote::{ConfigLevel, Remote, RemoteConfig};
use keel_data::repo::Repo;
use keel_data::transfer::{
    cloud_status, fetch, push, CloudStatus, CloudStatusEntry, TransferOptions,
};
use keel_data::DataError;

const FOO_MD5: &str = "acbd18db4cc2f85cedef654fccc4a4d8";
const BAR_MD5: &str = "37b51d194a7513e45b56f6524f2d51f2";
const IMAGES_OID: &str = "5ea40360f5b4ec688df672a4db9c17d1.dir";
/// Above the 8 MiB single-PUT limit: goes up in three parts.
const BIG_SIZE: usize = 20 * 1024 * 1024 + 123;

struct S3Env {
    endpoint: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
}

fn env_or(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// The key pair `scripts/s3-server.sh start` made, from its `credentials` file.
fn script_credentials() -> Option<(String, String)> {
    let dir = std::env::var_os("KEEL_S3_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("keel-s3-server"));
    let text = std::fs::read_to_string(dir.join("credentials")).ok()?;
    let mut lines = text.lines();
    Some((lines.next()?.to_owned(), lines.next()?.to_owned()))
}

const HOW_TO_START: &str = "start one with `scripts/s3-server.sh start` \
     (or point KEEL_TEST_S3_ENDPOINT, KEEL_TEST_S3_ACCESS_KEY_ID and \
     KEEL_TEST_S3_SECRET_ACCESS_KEY at another)";

/// The test server's settings; fails the test when nothing listens there.
fn s3_env() -> S3Env {
    let endpoint = env_or("KEEL_TEST_S3_ENDPOINT", "http://127.0.0.1:9000");
    let address = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    if let Err(error) = std::net::TcpStream::connect(&address) {
        panic!(
            "the S3 remote tests need an S3-compatible server at KEEL_TEST_S3_ENDPOINT or \
             else http://127.0.0.1:9000 ({HOW_TO_START}): {address}: {error}"
        );
    }
    let from_env = (
        std::env::var("KEEL_TEST_S3_ACCESS_KEY_ID").ok(),
        std::env::var("KEEL_TEST_S3_SECRET_ACCESS_KEY").ok(),
    );
    let (access_key_id, secret_access_key) = match from_env {
        (Some(key_id), Some(secret)) if !key_id.is_empty() && !secret.is_empty() => {
            (key_id, secret)
        }
        _ => script_credentials().unwrap_or_else(|| {
            panic!("no key pair for the S3 server at {endpoint}: {HOW_TO_START}")
        }),
    };
    S3Env {
        endpoint,
        bucket: env_or("KEEL_TEST_S3_BUCKET", "keel-test"),
        access_key_id,
        secret_access_key,
    }
}

/// A prefix of the bucket no other test (or run) uses.
fn unique_prefix() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!(
        "keel-data-tests/{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An object_store client of its own, to look at the remote from outside.
struct Inspector {
    runtime: tokio::runtime::Runtime,
    store: AmazonS3,
    prefix: String,
}

impl Inspector {
    fn new(env: &S3Env, prefix: &str) -> Inspector {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = AmazonS3Builder::new()
            .with_endpoint(&env.endpoint)
            .with_allow_http(true)
            .with_bucket_name(&env.bucket)
            .with_access_key_id(&env.access_key_id)
            .with_secret_access_key(&env.secret_access_key)
            .build()
            .expect("s3 client");
        Inspector {
            runtime,
            store,
            prefix: prefix.to_owned(),
        }
    }

    fn path(&self, oid: &str) -> ObjectPath {
        ObjectPath::from(format!(
            "{}/files/md5/{}/{}",
            self.prefix,
            &oid[..2],
            &oid[2..]
        ))
    }

    fn get(&self, oid: &str) -> Option<Vec<u8>> {
        self.runtime.block_on(async {
            match self.store.get(&self.path(oid)).await {
                Ok(result) => Some(result.bytes().await.expect("body").to_vec()),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(error) => panic!("get {oid}: {error}"),
            }
        })
    }

    fn put(&self, oid: &str, bytes: &[u8]) {
        self.runtime
            .block_on(self.store.put(&self.path(oid), bytes.to_vec().into()))
            .expect("put");
    }

    fn delete(&self, oid: &str) {
        self.runtime
            .block_on(self.store.delete(&self.path(oid)))
            .expect("delete");
    }

    /// Every key under the prefix, relative to it, sorted.
    fn keys(&self) -> Vec<String> {
        use futures_util::TryStreamExt;
        let prefix = ObjectPath::from(self.prefix.as_str());
        let mut keys: Vec<String> = self
            .runtime
            .block_on(
                self.store
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location.to_string())
                    .try_collect::<Vec<String>>(),
            )
            .expect("list");
        for key in &mut keys {
            *key = key[self.prefix.len() + 1..].to_owned();
        }
        keys.sort();
        keys
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

fn write(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

/// Bytes that do not repeat with any short period.
fn big_content() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BIG_SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

struct Setup {
    _dir: tempfile::TempDir,
    origin: PathBuf,
    clone: PathBuf,
    env: S3Env,
    prefix: String,
    big_md5: String,
}

impl Setup {
    fn inspector(&self) -> Inspector {
        Inspector::new(&self.env, &self.prefix)
    }

    fn origin(&self) -> Repo {
        Repo::find(&self.origin).expect("find origin")
    }

    fn clone_repo(&self) -> Repo {
        Repo::find(&self.clone).expect("find clone")
    }

    fn remote(&self, root: &Path) -> Remote {
        RemoteConfig::new(root).resolve(None).expect("resolve")
    }
}

/// Sets the remote's options as `dvc remote modify [--local]` writes them.
fn modify_remote(root: &Path, name: &str, level: ConfigLevel, options: &[(&str, &str)]) {
    let path = match level {
        ConfigLevel::Project => root.join(".dvc/config"),
        ConfigLevel::Local => root.join(".dvc/config.local"),
    };
    let mut config = ConfigFile::read(&path).expect("read config");
    for (key, value) in options {
        config.set(&format!("remote \"{name}\""), key, value);
    }
    config.write(&path).expect("write config");
}

/// `origin/` holds `data.csv` ("foo"), `images/{foo,bar}` and `big.bin`
/// (20 MiB), added, with a default S3 remote `storage` whose endpoint is in
/// `.dvc/config` and whose keys are in `.dvc/config.local`; `clone/` has what
/// a `git clone` and a copy of the credentials would give it.
fn setup() -> Setup {
    let env = s3_env();
    let prefix = unique_prefix();
    let dir = tempfile::tempdir().expect("tempdir");
    let origin = dir.path().join("origin");
    let clone = dir.path().join("clone");
    std::fs::create_dir_all(origin.join(".git")).expect("mkdir");
    Repo::init(&origin).expect("init");
    write(&origin.join("data.csv"), b"foo");
    write(&origin.join("images/foo"), b"foo");
    write(&origin.join("images/bar"), b"bar");
    let big = big_content();
    write(&origin.join("big.bin"), &big);
    let repo = Repo::find(&origin).expect("find");
    for path in ["data.csv", "images", "big.bin"] {
        repo.add(&origin.join(path)).expect("add");
    }
    let url = format!("s3://{}/{prefix}", env.bucket);
    RemoteConfig::new(&origin)
        .add(&origin, "storage", &url, ConfigLevel::Project, true, false)
        .expect("remote add");
    modify_remote(
        &origin,
        "storage",
        ConfigLevel::Project,
        &[("endpointurl", &env.endpoint)],
    );
    modify_remote(
        &origin,
        "storage",
        ConfigLevel::Local,
        &[
            ("access_key_id", &env.access_key_id),
            ("secret_access_key", &env.secret_access_key),
        ],
    );
    for carried in [
        ".dvc/config",
        ".dvc/config.local",
        ".dvc/.gitignore",
        "data.csv.dvc",
        "images.dvc",
        "big.bin.dvc",
    ] {
        write(
            &clone.join(carried),
            &std::fs::read(origin.join(carried)).expect("read"),
        );
    }
    Setup {
        _dir: dir,
        origin,
        clone,
        env,
        prefix,
        big_md5: md5_hex(&big),
    }
}

fn options() -> TransferOptions {
    TransferOptions {
        n_jobs: Some(4),
        show_progress: false,
    }
}

fn in_sync() -> Vec<CloudStatusEntry> {
    Vec::new()
}

#[test]
fn push_then_fetch_into_a_clone_restores_every_object_verified() {
    let setup = setup();
    let origin = setup.origin();
    let remote = setup.remote(&setup.origin);
    assert!(remote.is_cloud());
    let report = push(&origin, &remote, options()).expect("push");
    assert_eq!(
        report.n_transferred, 4,
        "foo (once), bar, big.bin, the manifest"
    );
    assert!(report.missing.is_empty());

    // On the remote, in DVC 3's layout, each object's bytes hash to its name.
    let inspector = setup.inspector();
    let mut expected_keys: Vec<String> = [FOO_MD5, BAR_MD5, IMAGES_OID, setup.big_md5.as_str()]
        .iter()
        .map(|oid| format!("files/md5/{}/{}", &oid[..2], &oid[2..]))
        .collect();
    expected_keys.sort();
    assert_eq!(inspector.keys(), expected_keys);
    for oid in [FOO_MD5, BAR_MD5, IMAGES_OID, setup.big_md5.as_str()] {
        let bytes = inspector.get(oid).expect("pushed");
        assert_eq!(md5_hex(&bytes), oid.trim_end_matches(".dir"), "{oid}");
    }
    assert_eq!(
        push(&origin, &remote, options())
            .expect("push again")
            .n_transferred,
        0
    );
    assert_eq!(cloud_status(&origin, &remote).expect("status"), in_sync());

    let clone = setup.clone_repo();
    let clone_remote = setup.remote(&setup.clone);
    assert_eq!(clone_remote, remote, "the clone resolves the same remote");
    let fetched = fetch(&clone, &clone_remote, options()).expect("fetch");
    assert_eq!(fetched.n_transferred, 4);
    assert!(fetched.missing.is_empty());
    for oid in [FOO_MD5, BAR_MD5, IMAGES_OID, setup.big_md5.as_str()] {
        let cached = clone.cache().find(oid).expect("in the clone's cache");
        let bytes = std::fs::read(&cached).expect("read");
        assert_eq!(md5_hex(&bytes), oid.trim_end_matches(".dir"), "{oid}");
        assert!(std::fs::metadata(&cached)
            .expect("stat")
            .permissions()
            .readonly());
    }
    clone.checkout(false).expect("checkout");
    assert_eq!(
        std::fs::read(setup.clone.join("big.bin")).expect("read"),
        big_content()
    );
    assert_eq!(
        std::fs::read_to_string(setup.clone.join("images/bar")).expect("read"),
        "bar"
    );
    assert!(clone.status().expect("status").is_empty());
    assert_eq!(
        cloud_status(&clone, &clone_remote).expect("status"),
        in_sync()
    );
}

#[test]
fn status_cloud_names_what_only_one_side_has() {
    let setup = setup();
    let origin = setup.origin();
    let remote = setup.remote(&setup.origin);
    let names = |entries: Vec<CloudStatusEntry>| -> Vec<(String, CloudStatus)> {
        entries
            .into_iter()
            .map(|entry| (entry.name, entry.status))
            .collect()
    };
    assert_eq!(
        names(cloud_status(&origin, &remote).expect("status")),
        [
            ("big.bin".to_owned(), CloudStatus::New),
            ("data.csv".to_owned(), CloudStatus::New),
            ("images".to_owned(), CloudStatus::New),
            ("images/bar".to_owned(), CloudStatus::New),
            ("images/foo".to_owned(), CloudStatus::New),
        ]
    );
    push(&origin, &remote, options()).expect("push");
    // The clone has no cache: the manifest is fetched to list the directory.
    let clone = setup.clone_repo();
    assert_eq!(
        names(cloud_status(&clone, &setup.remote(&setup.clone)).expect("status")),
        [
            ("big.bin".to_owned(), CloudStatus::Deleted),
            ("data.csv".to_owned(), CloudStatus::Deleted),
            ("images/bar".to_owned(), CloudStatus::Deleted),
            ("images/foo".to_owned(), CloudStatus::Deleted),
        ]
    );
}

#[test]
fn a_corrupted_object_on_the_remote_is_refused_and_never_cached() {
    let setup = setup();
    let origin = setup.origin();
    push(&origin, &setup.remote(&setup.origin), options()).expect("push");
    let inspector = setup.inspector();
    inspector.put(BAR_MD5, b"not bar");
    let mut big = big_content();
    big[BIG_SIZE / 2] ^= 1;
    inspector.put(&setup.big_md5, &big);

    let clone = setup.clone_repo();
    let error = fetch(&clone, &setup.remote(&setup.clone), options()).expect_err("corrupt");
    assert!(matches!(error, DataError::CorruptObject { .. }), "{error}");
    assert!(
        error.to_string().contains("s3://"),
        "names the remote object: {error}"
    );
    assert!(clone.cache().find(BAR_MD5).is_none(), "bar never stored");
    assert!(
        clone.cache().find(&setup.big_md5).is_none(),
        "big.bin never stored"
    );
    for oid in [BAR_MD5, setup.big_md5.as_str()] {
        let place = clone.cache().object_path(oid);
        let leftovers: Vec<_> = std::fs::read_dir(place.parent().expect("parent"))
            .map(|entries| entries.filter_map(|entry| entry.ok()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "no temp file left: {leftovers:?}");
    }
    // The intact objects did arrive.
    assert!(clone.cache().find(FOO_MD5).is_some());
    assert!(clone.cache().find(IMAGES_OID).is_some());
}

#[test]
fn a_push_cut_short_finishes_on_rerun() {
    let setup = setup();
    let origin = setup.origin();
    let remote = setup.remote(&setup.origin);
    // The first push gets only part of the way: bar is not available, so
    // the directory's manifest must not go up either.
    let cached_bar = origin.cache().object_path(BAR_MD5);
    let bar_bytes = std::fs::read(&cached_bar).expect("read");
    std::fs::remove_file(&cached_bar).expect("rm");
    let first = push(&origin, &remote, options()).expect("partial push");
    assert_eq!(first.missing, [BAR_MD5]);
    assert_eq!(first.n_transferred, 2, "foo and big.bin");
    let inspector = setup.inspector();
    assert!(
        inspector.get(IMAGES_OID).is_none(),
        "no manifest without bar"
    );

    write(&cached_bar, &bar_bytes);
    assert_eq!(
        cloud_status(&origin, &remote).expect("status"),
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
    let rerun = push(&origin, &remote, options()).expect("rerun");
    assert_eq!(rerun.n_transferred, 2, "bar and the manifest");
    assert!(rerun.missing.is_empty());
    assert_eq!(inspector.get(BAR_MD5).as_deref(), Some(&b"bar"[..]));
    assert_eq!(cloud_status(&origin, &remote).expect("status"), in_sync());
}

#[test]
fn an_object_deleted_behind_keels_back_is_pushed_again() {
    // The remote index lists it, but a push asks the remote, never the index.
    let setup = setup();
    let origin = setup.origin();
    let remote = setup.remote(&setup.origin);
    push(&origin, &remote, options()).expect("push");
    assert!(setup.origin.join(".dvc/tmp/remote-index/storage").is_file());
    setup.inspector().delete(FOO_MD5);
    let again = push(&origin, &remote, options()).expect("push again");
    assert_eq!(again.n_transferred, 1);
    assert_eq!(setup.inspector().get(FOO_MD5).as_deref(), Some(&b"foo"[..]));
    assert_eq!(cloud_status(&origin, &remote).expect("status"), in_sync());
}

#[test]
fn many_files_are_checked_by_listing_and_gc_primitives_list_and_delete() {
    let setup = setup();
    let origin = setup.origin();
    let remote = setup.remote(&setup.origin);
    // 40 distinct files: more than one round of HEADs at 4 jobs, so the
    // push lists the (empty) remote instead.
    for file_idx in 0..40 {
        write(
            &setup.origin.join(format!("many/file-{file_idx:02}")),
            format!("content {file_idx}\n").as_bytes(),
        );
    }
    origin.add(&setup.origin.join("many")).expect("add many");
    let report = push(&origin, &remote, options()).expect("push");
    assert_eq!(
        report.n_transferred, 45,
        "40 + foo, bar, big.bin, 2 manifests"
    );
    assert_eq!(cloud_status(&origin, &remote).expect("status"), in_sync());

    let listed = remote.list_oids().expect("list");
    assert_eq!(listed.len(), 45);
    assert!(listed.windows(2).all(|pair| pair[0] < pair[1]), "sorted");
    assert!(listed.contains(&IMAGES_OID.to_owned()));
    assert_eq!(
        remote
            .delete_oids(&[BAR_MD5.to_owned(), FOO_MD5.to_owned()])
            .expect("delete"),
        2
    );
    assert!(setup.inspector().get(BAR_MD5).is_none());
    let listed = remote.list_oids().expect("list again");
    assert_eq!(listed.len(), 43);
    assert!(!listed.contains(&BAR_MD5.to_owned()));
    // The listing refreshed the index, so even `status --cloud` sees it.
    let status = cloud_status(&origin, &remote).expect("status");
    assert!(
        status.contains(&CloudStatusEntry {
            name: "images/bar".into(),
            status: CloudStatus::New
        }),
        "{status:?}"
    );
}

#[test]
fn wrong_credentials_are_a_clear_error() {
    let setup = setup();
    modify_remote(
        &setup.origin,
        "storage",
        ConfigLevel::Local,
        &[("secret_access_key", "not-the-secret")],
    );
    let remote = setup.remote(&setup.origin);
    let error = push(&setup.origin(), &remote, options()).expect_err("denied");
    let message = error.to_string();
    assert!(
        message.contains("access denied by remote 'storage'"),
        "{message}"
    );
    assert!(message.contains("secret_access_key"), "{message}");
}

#[test]
fn an_unreachable_endpoint_is_a_clear_error() {
    let setup = setup();
    // Nothing listens on port 1; object_store retries, then gives up.
    modify_remote(
        &setup.origin,
        "storage",
        ConfigLevel::Project,
        &[("endpointurl", "http://127.0.0.1:1")],
    );
    let remote = setup.remote(&setup.origin);
    let error = push(&setup.origin(), &remote, options()).expect_err("unreachable");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "s3://{}/{}/files/md5/",
            setup.env.bucket, setup.prefix
        )),
        "names the object: {message}"
    );
    assert!(
        !message.is_empty() && !message.contains("panicked"),
        "{message}"
    );
}

#[test]
fn gc_cloud_removes_exactly_what_no_output_uses() {
    let setup = setup();
    let origin = setup.origin();
    let remote = setup.remote(&setup.origin);
    push(&origin, &remote, options()).expect("push");
    // Keep big.bin and data.csv ("foo"); the images directory's manifest and
    // its "bar" file are unused ("foo" is shared with data.csv).
    let used: std::collections::BTreeSet<String> =
        [setup.big_md5.clone(), FOO_MD5.to_owned()].into();
    let dry = keel_data::gc::collect_remote(&remote, &used, true).expect("dry gc");
    let mut dry_oids: Vec<&str> = dry.removed.iter().map(|o| o.oid.as_str()).collect();
    dry_oids.sort_unstable();
    let mut expected = vec![BAR_MD5, IMAGES_OID];
    expected.sort_unstable();
    assert_eq!(dry_oids, expected);
    assert_eq!(dry.removed[0].oid, IMAGES_OID, "manifests go first");
    assert_eq!(
        remote.list_oids().expect("list").len(),
        4,
        "a dry run removes nothing"
    );
    let done = keel_data::gc::collect_remote(&remote, &used, false).expect("gc");
    assert_eq!(done.removed.len(), 2);
    let mut left = remote.list_oids().expect("list");
    left.sort_unstable();
    let mut kept = vec![setup.big_md5.clone(), FOO_MD5.to_owned()];
    kept.sort_unstable();
    assert_eq!(left, kept);
}
