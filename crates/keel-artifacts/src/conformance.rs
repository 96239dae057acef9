//! The behaviour every [`ArtifactStore`] backend must show, as async checks that panic on a
//! violation. Each check expects an empty store; a backend runs all of them with
//! [`artifact_store_conformance_tests!`](crate::artifact_store_conformance_tests) (see the
//! tests of `local.rs`). Enabled in other crates by the `conformance` feature.

use std::io;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use keel_core::ErrorCode;

use crate::{ArtifactStat, ArtifactStore, ByteStream, FileInfo, RelativeArtifactPath};

/// Expands to one `#[tokio::test]` per check. `$make_store` is evaluated afresh for every
/// test and must give `(guard, store)`: `store` implements [`ArtifactStore`] and is empty,
/// `guard` keeps whatever backs it (a temporary directory, a server) alive until the end.
#[macro_export]
macro_rules! artifact_store_conformance_tests {
    ($make_store:expr) => {
        $crate::artifact_store_conformance_tests!(@each $make_store;
            put_then_get_returns_the_same_bytes,
            put_of_an_empty_body_makes_an_empty_file,
            put_replaces_an_existing_file,
            put_streams_many_chunks,
            list_returns_direct_children_sorted_with_sizes,
            list_of_the_root_shows_top_level_entries,
            list_of_a_missing_path_or_a_file_is_empty,
            get_of_a_missing_file_is_resource_does_not_exist,
            get_of_a_directory_is_invalid,
            failed_upload_leaves_nothing_behind,
            failed_upload_keeps_the_previous_content,
            put_to_the_root_is_invalid,
            put_below_a_file_is_invalid,
            put_over_a_directory_is_invalid,
            delete_removes_a_file,
            delete_removes_a_directory_tree,
            delete_of_a_missing_path_succeeds,
            delete_of_the_root_is_refused,
            stat_and_exists_describe_what_is_there,
        );
    };
    (@each $make_store:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let (_guard, store) = $make_store;
                $crate::conformance::$check(&store).await;
            }
        )*
    };
}

pub fn path(raw: &str) -> RelativeArtifactPath {
    RelativeArtifactPath::parse(raw).expect("test paths are valid")
}

/// `content` as a stream of chunks of at most `chunk_len` bytes.
pub fn body_in_chunks(content: &[u8], chunk_len: usize) -> ByteStream {
    let chunks: Vec<io::Result<Bytes>> = content
        .chunks(chunk_len.max(1))
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    Box::pin(stream::iter(chunks))
}

pub fn body(content: &[u8]) -> ByteStream {
    body_in_chunks(content, 7)
}

/// A body that delivers `prefix` and then fails, as a client that disconnects mid-upload.
pub fn broken_body(prefix: &[u8]) -> ByteStream {
    let chunks: Vec<io::Result<Bytes>> = vec![
        Ok(Bytes::copy_from_slice(prefix)),
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    Box::pin(stream::iter(chunks))
}

pub async fn read_all(store: &dyn ArtifactStore, raw_path: &str) -> Vec<u8> {
    let download = store
        .get(&path(raw_path))
        .await
        .expect("artifact can be read");
    let expected_len = download.size;
    let mut content = Vec::new();
    let mut chunks = download.stream;
    while let Some(chunk) = chunks.next().await {
        content.extend_from_slice(&chunk.expect("download stream does not fail"));
    }
    assert_eq!(
        content.len() as u64,
        expected_len,
        "announced size of {raw_path}"
    );
    content
}

pub async fn put(store: &dyn ArtifactStore, raw_path: &str, content: &[u8]) {
    let written = store
        .put(&path(raw_path), body(content))
        .await
        .expect("upload succeeds");
    assert_eq!(written, content.len() as u64);
}

async fn list(store: &dyn ArtifactStore, raw_dir: &str) -> Vec<FileInfo> {
    store.list(&path(raw_dir)).await.expect("listing succeeds")
}

fn file(path: &str, size: u64) -> FileInfo {
    FileInfo {
        path: path.to_owned(),
        is_dir: false,
        file_size: Some(size),
    }
}

fn dir(path: &str) -> FileInfo {
    FileInfo {
        path: path.to_owned(),
        is_dir: true,
        file_size: None,
    }
}

pub async fn put_then_get_returns_the_same_bytes(store: &dyn ArtifactStore) {
    put(store, "run/model/weights.bin", b"\x00\x01binary\xffcontent").await;
    assert_eq!(
        read_all(store, "run/model/weights.bin").await,
        b"\x00\x01binary\xffcontent"
    );
}

pub async fn put_of_an_empty_body_makes_an_empty_file(store: &dyn ArtifactStore) {
    put(store, "empty.txt", b"").await;
    assert_eq!(read_all(store, "empty.txt").await, b"");
    assert_eq!(list(store, "").await, vec![file("empty.txt", 0)]);
}

pub async fn put_replaces_an_existing_file(store: &dyn ArtifactStore) {
    put(store, "a/notes.txt", b"first version, longer").await;
    put(store, "a/notes.txt", b"second").await;
    assert_eq!(read_all(store, "a/notes.txt").await, b"second");
    assert_eq!(list(store, "a").await, vec![file("a/notes.txt", 6)]);
}

pub async fn put_streams_many_chunks(store: &dyn ArtifactStore) {
    let content: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|idx| (idx % 251) as u8)
        .collect();
    let written = store
        .put(&path("big/blob.bin"), body_in_chunks(&content, 64 * 1024))
        .await
        .expect("upload succeeds");
    assert_eq!(written, content.len() as u64);
    assert!(read_all(store, "big/blob.bin").await == content);
}

pub async fn list_returns_direct_children_sorted_with_sizes(store: &dyn ArtifactStore) {
    put(store, "exp/run/b.txt", b"bb").await;
    put(store, "exp/run/a.txt", b"a").await;
    put(store, "exp/run/sub/deep/c.txt", b"ccc").await;
    put(store, "exp/other.txt", b"o").await;
    assert_eq!(
        list(store, "exp/run").await,
        vec![
            file("exp/run/a.txt", 1),
            file("exp/run/b.txt", 2),
            dir("exp/run/sub"),
        ]
    );
    // Same directory, spelled the way MLflow's clients sometimes spell it.
    assert_eq!(list(store, "exp//run/").await.len(), 3);
    assert_eq!(list(store, "exp/run").await[2].name(), "sub");
}

pub async fn list_of_the_root_shows_top_level_entries(store: &dyn ArtifactStore) {
    assert_eq!(list(store, "").await, Vec::new());
    put(store, "top.txt", b"t").await;
    put(store, "dir/inner.txt", b"i").await;
    assert_eq!(
        store
            .list(&RelativeArtifactPath::root())
            .await
            .expect("listing succeeds"),
        vec![dir("dir"), file("top.txt", 1)]
    );
}

pub async fn list_of_a_missing_path_or_a_file_is_empty(store: &dyn ArtifactStore) {
    put(store, "present/file.txt", b"x").await;
    assert_eq!(list(store, "absent").await, Vec::new());
    assert_eq!(list(store, "present/absent/deeper").await, Vec::new());
    assert_eq!(list(store, "present/file.txt").await, Vec::new());
    assert_eq!(list(store, "present/file.txt/below").await, Vec::new());
}

pub async fn get_of_a_missing_file_is_resource_does_not_exist(store: &dyn ArtifactStore) {
    let err = store
        .get(&path("nothing/here.txt"))
        .await
        .expect_err("missing file");
    assert_eq!(err.code, ErrorCode::ResourceDoesNotExist);
    assert!(err.message.contains("nothing/here.txt"), "{}", err.message);
}

pub async fn get_of_a_directory_is_invalid(store: &dyn ArtifactStore) {
    put(store, "folder/file.txt", b"x").await;
    let err = store.get(&path("folder")).await.expect_err("directory");
    assert_eq!(err.code, ErrorCode::InvalidParameterValue);
    let err = store
        .get(&RelativeArtifactPath::root())
        .await
        .expect_err("root is a directory");
    assert_eq!(err.code, ErrorCode::InvalidParameterValue);
}

pub async fn failed_upload_leaves_nothing_behind(store: &dyn ArtifactStore) {
    let err = store
        .put(&path("new/nested/dir/file.bin"), broken_body(b"partial"))
        .await
        .expect_err("broken body");
    assert_eq!(err.code, ErrorCode::BadRequest);
    assert_eq!(
        store.stat(&path("new/nested/dir/file.bin")).await.ok(),
        Some(None)
    );
    assert_eq!(
        list(store, "").await,
        Vec::new(),
        "no directory is left behind"
    );
}

pub async fn failed_upload_keeps_the_previous_content(store: &dyn ArtifactStore) {
    put(store, "keep/me.txt", b"original").await;
    store
        .put(
            &path("keep/me.txt"),
            broken_body(b"replacement that never finishes"),
        )
        .await
        .expect_err("broken body");
    assert_eq!(read_all(store, "keep/me.txt").await, b"original");
    assert_eq!(list(store, "keep").await, vec![file("keep/me.txt", 8)]);
}

pub async fn put_to_the_root_is_invalid(store: &dyn ArtifactStore) {
    let err = store
        .put(&RelativeArtifactPath::root(), body(b"x"))
        .await
        .expect_err("root is not a file");
    assert_eq!(err.code, ErrorCode::InvalidParameterValue);
}

pub async fn put_below_a_file_is_invalid(store: &dyn ArtifactStore) {
    put(store, "plain.txt", b"x").await;
    let err = store
        .put(&path("plain.txt/child.txt"), body(b"y"))
        .await
        .expect_err("parent is a file");
    assert_eq!(err.code, ErrorCode::InvalidParameterValue);
    assert_eq!(read_all(store, "plain.txt").await, b"x");
}

pub async fn put_over_a_directory_is_invalid(store: &dyn ArtifactStore) {
    put(store, "d/inner.txt", b"x").await;
    let err = store
        .put(&path("d"), body(b"y"))
        .await
        .expect_err("a directory is there");
    assert_eq!(err.code, ErrorCode::InvalidParameterValue);
    assert_eq!(read_all(store, "d/inner.txt").await, b"x");
}

pub async fn delete_removes_a_file(store: &dyn ArtifactStore) {
    put(store, "x/gone.txt", b"1").await;
    put(store, "x/stays.txt", b"2").await;
    store
        .delete(&path("x/gone.txt"))
        .await
        .expect("delete succeeds");
    assert_eq!(list(store, "x").await, vec![file("x/stays.txt", 1)]);
}

pub async fn delete_removes_a_directory_tree(store: &dyn ArtifactStore) {
    put(store, "tree/a/b/c.txt", b"1").await;
    put(store, "tree/a/d.txt", b"2").await;
    put(store, "sibling.txt", b"3").await;
    store
        .delete(&path("tree/a"))
        .await
        .expect("delete succeeds");
    assert_eq!(list(store, "tree").await, Vec::new());
    assert_eq!(store.stat(&path("tree/a/b/c.txt")).await.ok(), Some(None));
    assert_eq!(read_all(store, "sibling.txt").await, b"3");
}

pub async fn delete_of_a_missing_path_succeeds(store: &dyn ArtifactStore) {
    store
        .delete(&path("never/existed.txt"))
        .await
        .expect("deleting nothing succeeds");
}

pub async fn delete_of_the_root_is_refused(store: &dyn ArtifactStore) {
    put(store, "precious.txt", b"1").await;
    let err = store
        .delete(&RelativeArtifactPath::root())
        .await
        .expect_err("root");
    assert_eq!(err.code, ErrorCode::InvalidParameterValue);
    assert_eq!(read_all(store, "precious.txt").await, b"1");
}

pub async fn stat_and_exists_describe_what_is_there(store: &dyn ArtifactStore) {
    put(store, "s/file.txt", b"12345").await;
    let stat =
        |raw: &'static str| async move { store.stat(&path(raw)).await.expect("stat succeeds") };
    assert_eq!(
        stat("s/file.txt").await,
        Some(ArtifactStat::File { size: 5 })
    );
    assert_eq!(stat("s").await, Some(ArtifactStat::Directory));
    assert_eq!(stat("").await, Some(ArtifactStat::Directory));
    assert_eq!(stat("s/missing").await, None);
    assert!(store
        .exists(&path("s/file.txt"))
        .await
        .expect("exists succeeds"));
    assert!(!store.exists(&path("nope")).await.expect("exists succeeds"));
}
