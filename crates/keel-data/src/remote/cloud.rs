//! A remote in an object store (S3, GCS, Azure) through `object_store`,
//! objects at `<prefix>/files/md5/<2 hex>/<30 hex>` as DVC 3 lays them out.
//! The API is synchronous: each remote owns a small tokio runtime, and the
//! transfer threads block on it one object at a time.
//!
//! - Uploads stream from the cache: one PUT up to `CHUNK_SIZE`, a multipart
//!   upload (two parts in flight) above. The bytes are hashed on the way and
//!   the upload is aborted, never completed, if they do not match the oid.
//! - Downloads stream into a temp file beside the object's place in the cache,
//!   hashed on the way; only an object that matches its oid is renamed into
//!   place (`cache::write_verified`), so a corrupted one never lands.
//! - Existence checks choose, by the numbers, between one HEAD per object and
//!   listing `files/md5/` (see `choose_lookup`), and keep the remote index.
//! - Transient failures (5xx, timeouts, dropped connections, a body cut short)
//!   are retried by object_store's `RetryConfig` (see `cloud_config`).

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::runtime::Runtime;

use super::cloud_config::{build_store, CloudUrl, RemoteOptions};
use super::index::RemoteIndex;
use crate::cache::{write_verified, Cache, NOT_SYNCED};
use crate::{DataError, Result};

/// Files up to this size go in one PUT; larger ones in parts of this size
/// (S3 wants at least 5 MiB per part but the last).
const CHUNK_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;
/// Objects per page of a listing (S3's and GCS's maximum).
const LIST_PAGE: usize = 1000;
/// Two hex digits: the subdirectories of `files/md5/`.
const N_PREFIXES: usize = 256;

/// How to learn which of some oids a remote holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// One HEAD per oid, `jobs` at a time.
    Head,
    /// One listing of `files/md5/`, page after page.
    ListWhole,
    /// 256 listings, one per `files/md5/xx/`, `jobs` at a time.
    ListByPrefix,
}

/// Picks the cheapest way to check `n_oids` oids on a remote estimated to
/// hold `estimated_size` objects, counting rounds of `jobs` parallel
/// requests: HEADs take `n_oids / jobs` rounds; a listing takes one request
/// per 1,000 objects, sequential for one listing, or at least 256 requests
/// spread over `jobs` when listing prefix by prefix.
pub(crate) fn choose_lookup(n_oids: usize, estimated_size: usize, jobs: usize) -> Lookup {
    let jobs = jobs.max(1);
    let head_rounds = n_oids.div_ceil(jobs);
    let n_pages = estimated_size.div_ceil(LIST_PAGE).max(1);
    let by_prefix_rounds = n_pages.max(N_PREFIXES).div_ceil(jobs);
    let (list_rounds, list) = if n_pages <= by_prefix_rounds {
        (n_pages, Lookup::ListWhole)
    } else {
        (by_prefix_rounds, Lookup::ListByPrefix)
    };
    if head_rounds <= list_rounds {
        Lookup::Head
    } else {
        list
    }
}

/// A cloud remote: its store, its runtime and its index.
pub(crate) struct CloudRemote {
    name: String,
    url: CloudUrl,
    store: Arc<dyn ObjectStore>,
    /// `<prefix>/files/md5`.
    files_prefix: ObjectPath,
    runtime: Runtime,
    index_path: PathBuf,
    /// Loaded on first use.
    index: Mutex<Option<RemoteIndex>>,
}

impl std::fmt::Debug for CloudRemote {
    // The store's own Debug may show credentials; the URL is enough.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CloudRemote")
            .field("name", &self.name)
            .field("url", &self.url.display(""))
            .finish_non_exhaustive()
    }
}

fn usage(message: impl Into<String>) -> DataError {
    DataError::Usage(message.into())
}

impl CloudRemote {
    /// Builds the client (no request is sent); a configuration mistake is a
    /// sentence naming the remote.
    pub fn new(
        name: &str,
        url: CloudUrl,
        options: &RemoteOptions,
        index_path: PathBuf,
    ) -> Result<CloudRemote> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("keel-remote")
            .enable_all()
            .build()
            .map_err(|error| {
                usage(format!(
                    "remote '{name}': cannot start its I/O runtime: {error}"
                ))
            })?;
        let store = {
            let _context = runtime.enter();
            build_store(name, &url, options).map_err(usage)?
        };
        let prefix = ObjectPath::parse(&url.prefix).map_err(|error| {
            usage(format!(
                "{}: the path is not usable: {error}",
                url.display("")
            ))
        })?;
        let files_prefix = prefix.join("files").join("md5");
        Ok(CloudRemote {
            name: name.to_owned(),
            url,
            store,
            files_prefix,
            runtime,
            index_path,
            index: Mutex::new(None),
        })
    }

    /// The URL of the remote (`s3://bucket/prefix`).
    pub fn url(&self) -> String {
        self.url.display("")
    }

    fn object_path(&self, oid: &str) -> ObjectPath {
        let (prefix, rest) = oid.split_at(oid.len().min(2));
        self.files_prefix.clone().join(prefix).join(rest)
    }

    /// The object's URL, for messages.
    fn object_url(&self, oid: &str) -> String {
        let (prefix, rest) = oid.split_at(oid.len().min(2));
        self.url.display(&format!("files/md5/{prefix}/{rest}"))
    }

    /// The oid an object path stands for, if it is one (temp files and
    /// anything else under `files/md5/` are not).
    fn oid_of(&self, location: &ObjectPath) -> Option<String> {
        let parts: Vec<String> = location
            .prefix_match(&self.files_prefix)?
            .map(|part| part.as_ref().to_owned())
            .collect();
        let [prefix, rest] = parts.as_slice() else {
            return None;
        };
        let oid = format!("{prefix}{rest}");
        (prefix.len() == 2 && super::is_valid_oid(&oid)).then_some(oid)
    }

    /// The error for a failed request on `what` (an object URL).
    fn remote_error(&self, what: String, error: object_store::Error) -> DataError {
        let io_error = match &error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "access denied by remote '{}': check its credentials \
                     (`dvc remote modify --local {} access_key_id|secret_access_key ...`, \
                     or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): {error}",
                    self.name, self.name
                ),
            ),
            object_store::Error::NotFound { .. } => {
                std::io::Error::new(std::io::ErrorKind::NotFound, error.to_string())
            }
            _ => {
                std::io::Error::other(format!("request to remote '{}' failed: {error}", self.name))
            }
        };
        DataError::Io {
            path: PathBuf::from(what),
            io_error,
        }
    }

    /// The error for a request that cannot meet a missing object: a 404
    /// there means the bucket itself is missing.
    fn bucket_error(&self, what: String, error: object_store::Error) -> DataError {
        if !matches!(error, object_store::Error::NotFound { .. }) {
            return self.remote_error(what, error);
        }
        DataError::Io {
            path: PathBuf::from(what),
            io_error: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "bucket '{}' of remote '{}' was not found (create it, or fix the remote's url): {error}",
                    self.url.bucket, self.name
                ),
            ),
        }
    }

    /// Runs `change` on the index (loaded on first use) and saves it when
    /// `change` says it changed something. The index is a hint: failing to
    /// save it (a read-only `.dvc/tmp`) costs requests later, never
    /// correctness, so it is not an error.
    fn update_index(&self, change: impl FnOnce(&mut RemoteIndex) -> bool) {
        let mut slot = self
            .index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let url = self.url();
        let index = slot.get_or_insert_with(|| RemoteIndex::load(&self.index_path, &url));
        if change(index) {
            let _ = index.save(&self.index_path, &url);
        }
    }

    /// Records oids seen on the remote (uploaded, found).
    pub fn index_add<'a>(&self, oids: impl IntoIterator<Item = &'a String>) {
        self.update_index(|index| {
            let mut changed = false;
            for oid in oids {
                changed |= index.oids.insert(oid.clone());
            }
            changed
        })
    }

    /// Forgets oids seen missing from the remote (or deleted).
    pub fn index_remove<'a>(&self, oids: impl IntoIterator<Item = &'a String>) {
        self.update_index(|index| {
            let mut changed = false;
            for oid in oids {
                changed |= index.oids.remove(oid);
            }
            changed
        })
    }

    /// Replaces the index with a full listing.
    fn index_replace(&self, oids: &BTreeSet<String>) {
        self.update_index(|index| {
            let changed = index.oids != *oids;
            index.oids = oids.clone();
            changed
        })
    }

    /// Which of `oids` the remote holds. With `trust_index`, oids in the
    /// index count as present without a request (see `index`'s rules).
    pub fn existing(
        &self,
        oids: &[String],
        trust_index: bool,
        jobs: usize,
    ) -> Result<HashSet<String>> {
        let mut present = HashSet::new();
        let mut to_check = Vec::new();
        let mut known = BTreeSet::new();
        if trust_index {
            self.update_index(|index| {
                known = index.oids.clone();
                false
            });
        }
        for oid in oids {
            if known.contains(oid) {
                present.insert(oid.clone());
            } else {
                to_check.push(oid.clone());
            }
        }
        if to_check.is_empty() {
            return Ok(present);
        }
        // One round of HEADs cannot be beaten; only then is the remote's
        // size worth a request.
        let lookup = if to_check.len() <= jobs {
            Lookup::Head
        } else {
            choose_lookup(to_check.len(), self.estimate_size()?, jobs)
        };
        match lookup {
            Lookup::Head => {
                let found = self.head_many(&to_check, jobs)?;
                let absent: Vec<&String> = to_check
                    .iter()
                    .filter(|oid| !found.contains(*oid))
                    .collect();
                self.index_add(&found);
                self.index_remove(absent);
                present.extend(found);
            }
            Lookup::ListWhole | Lookup::ListByPrefix => {
                let listed = self.list_oids(lookup == Lookup::ListByPrefix, jobs)?;
                present.extend(to_check.into_iter().filter(|oid| listed.contains(oid)));
            }
        }
        Ok(present)
    }

    /// The number of objects on the remote, from one page of one of its
    /// 256 prefixes.
    fn estimate_size(&self) -> Result<usize> {
        let sample = self.files_prefix.clone().join("00");
        let n_listed = self.runtime.block_on(async {
            self.store
                .list(Some(&sample))
                .take(LIST_PAGE)
                .try_fold(0usize, |count, _| async move { Ok(count + 1) })
                .await
        });
        let n_listed =
            n_listed.map_err(|error| self.bucket_error(self.url.display("files/md5/00"), error))?;
        Ok(n_listed * N_PREFIXES)
    }

    fn head_many(&self, oids: &[String], jobs: usize) -> Result<HashSet<String>> {
        let results: Vec<(String, object_store::Result<_>)> = self.runtime.block_on(
            stream::iter(oids.iter().cloned())
                .map(|oid| async move {
                    let path = self.object_path(&oid);
                    let result = self.store.head(&path).await;
                    (oid, result)
                })
                .buffer_unordered(jobs.max(1))
                .collect(),
        );
        let mut found = HashSet::new();
        for (oid, result) in results {
            match result {
                Ok(_) => {
                    found.insert(oid);
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(self.remote_error(self.object_url(&oid), error)),
            }
        }
        Ok(found)
    }

    /// Every oid under `files/md5/`, listed whole or prefix by prefix; the
    /// index is replaced by the result.
    pub fn list_oids(&self, by_prefix: bool, jobs: usize) -> Result<BTreeSet<String>> {
        let prefixes: Vec<ObjectPath> = if by_prefix {
            (0..N_PREFIXES)
                .map(|byte| self.files_prefix.clone().join(format!("{byte:02x}")))
                .collect()
        } else {
            vec![self.files_prefix.clone()]
        };
        let listings: Vec<object_store::Result<Vec<ObjectPath>>> = self.runtime.block_on(
            stream::iter(prefixes)
                .map(|prefix| async move {
                    self.store
                        .list(Some(&prefix))
                        .map_ok(|meta| meta.location)
                        .try_collect::<Vec<ObjectPath>>()
                        .await
                })
                .buffer_unordered(jobs.max(1))
                .collect(),
        );
        let mut oids = BTreeSet::new();
        for listing in listings {
            let locations =
                listing.map_err(|error| self.bucket_error(self.url.display("files/md5"), error))?;
            oids.extend(
                locations
                    .iter()
                    .filter_map(|location| self.oid_of(location)),
            );
        }
        self.index_replace(&oids);
        Ok(oids)
    }

    /// Deletes `oids` (absent ones are no error); returns how many requests
    /// succeeded.
    pub fn delete_oids(&self, oids: &[String]) -> Result<usize> {
        let paths: Vec<object_store::Result<ObjectPath>> =
            oids.iter().map(|oid| Ok(self.object_path(oid))).collect();
        let results: Vec<object_store::Result<ObjectPath>> = self.runtime.block_on(
            self.store
                .delete_stream(stream::iter(paths).boxed())
                .collect(),
        );
        let mut n_deleted = 0;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(_) => n_deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => {
                    first_error.get_or_insert(self.remote_error(self.url(), error));
                }
            }
        }
        // Forget them all: a failed delete leaves an object the next
        // listing will find again.
        self.index_remove(oids);
        match first_error {
            Some(error) => Err(error),
            None => Ok(n_deleted),
        }
    }

    /// Uploads object `oid` from the cache, checking on the way that its
    /// bytes still hash to the oid.
    pub fn upload(&self, cache: &Cache, oid: &str) -> Result<()> {
        let source = cache.find(oid).ok_or_else(|| DataError::MissingObject {
            oid: oid.to_owned(),
        })?;
        let mut file = File::open(&source).map_err(|error| DataError::io(&source, error))?;
        let size = file
            .metadata()
            .map_err(|error| DataError::io(&source, error))?
            .len();
        let expected = super::object_md5(oid);
        let path = self.object_path(oid);
        if size <= CHUNK_SIZE as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes)
                .map_err(|error| DataError::io(&source, error))?;
            check_md5(&source, expected, Md5::digest(&bytes).as_slice())?;
            return self
                .runtime
                .block_on(self.store.put(&path, bytes.into()))
                .map(|_| ())
                .map_err(|error| self.bucket_error(self.object_url(oid), error));
        }
        self.runtime.block_on(async {
            let upload = self
                .store
                .put_multipart(&path)
                .await
                .map_err(|error| self.bucket_error(self.object_url(oid), error))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK_SIZE);
            let mut hasher = Md5::new();
            // Reading the file blocks this thread only: it is a transfer
            // thread, not one of the runtime's workers.
            let outcome: Result<()> = async {
                loop {
                    let chunk = read_chunk(&mut file, &source)?;
                    if chunk.is_empty() {
                        break;
                    }
                    hasher.update(&chunk);
                    writer
                        .wait_for_capacity(PARTS_IN_FLIGHT)
                        .await
                        .map_err(|error| self.bucket_error(self.object_url(oid), error))?;
                    writer.put(chunk);
                }
                check_md5(&source, expected, hasher.finalize_reset().as_slice())
            }
            .await;
            match outcome {
                Ok(()) => writer
                    .finish()
                    .await
                    .map(|_| ())
                    .map_err(|error| self.bucket_error(self.object_url(oid), error)),
                Err(error) => {
                    // Never complete an upload whose bytes are wrong or cut
                    // short; the abort's own failure changes nothing.
                    let _ = writer.abort().await;
                    Err(error)
                }
            }
        })
    }

    /// Downloads object `oid` into the cache, verified; `Ok(false)` when the
    /// remote does not have it.
    pub fn download(&self, cache: &Cache, oid: &str) -> Result<bool> {
        let target = cache.object_path(oid);
        if target.is_file() {
            return Ok(true);
        }
        let path = self.object_path(oid);
        let object_url = self.object_url(oid);
        let body = match self.runtime.block_on(self.store.get(&path)) {
            Ok(result) => result.into_stream(),
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(self.remote_error(object_url, error)),
        };
        let mut reader = BodyReader {
            runtime: &self.runtime,
            body,
            pending: Bytes::new(),
        };
        write_verified(
            &mut reader,
            Path::new(&object_url),
            &target,
            super::object_md5(oid),
            Some(0o444),
            NOT_SYNCED,
        )?;
        Ok(true)
    }
}

fn check_md5(source: &Path, expected: &str, digest: &[u8]) -> Result<()> {
    let actual = hex::encode(digest);
    if actual == expected {
        return Ok(());
    }
    Err(DataError::CorruptObject {
        path: source.to_path_buf(),
        expected: expected.to_owned(),
        actual,
    })
}

/// Up to `CHUNK_SIZE` bytes of `file`; empty at its end.
fn read_chunk(file: &mut File, source: &Path) -> Result<Bytes> {
    let mut chunk = Vec::with_capacity(CHUNK_SIZE);
    file.by_ref()
        .take(CHUNK_SIZE as u64)
        .read_to_end(&mut chunk)
        .map_err(|error| DataError::io(source, error))?;
    Ok(Bytes::from(chunk))
}

/// A download's body as a blocking reader, for `write_verified`.
struct BodyReader<'a> {
    runtime: &'a Runtime,
    body: BoxStream<'static, object_store::Result<Bytes>>,
    pending: Bytes,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.is_empty() {
            match self.runtime.block_on(self.body.next()) {
                None => return Ok(0),
                Some(Ok(bytes)) => self.pending = bytes,
                Some(Err(error)) => return Err(std::io::Error::other(error.to_string())),
            }
        }
        let n_copied = buffer.len().min(self.pending.len());
        buffer[..n_copied].copy_from_slice(&self.pending.split_to(n_copied));
        Ok(n_copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_oids_are_checked_by_head_many_by_listing() {
        // Ten new files against a remote of 600,000 objects: HEAD.
        assert_eq!(choose_lookup(10, 600_000, 16), Lookup::Head);
        // A first push of 20,000 files to an empty remote: one listing page.
        assert_eq!(choose_lookup(20_000, 0, 16), Lookup::ListWhole);
        // 20,000 files against 600,000 objects: 600 pages, spread over prefixes.
        assert_eq!(choose_lookup(20_000, 600_000, 16), Lookup::ListByPrefix);
        // 100 files against 600,000 objects: 7 rounds of HEADs beat 38 of listing.
        assert_eq!(choose_lookup(100, 600_000, 16), Lookup::Head);
        // 5,000 files against 5,000 objects: 5 pages beat 313 rounds of HEADs.
        assert_eq!(choose_lookup(5_000, 5_000, 16), Lookup::ListWhole);
        // Against 50,000 objects, 256 prefix listings (16 rounds) beat 50 pages.
        assert_eq!(choose_lookup(5_000, 50_000, 16), Lookup::ListByPrefix);
    }
}
