//! [`Remote`]: what transfers and `gc --cloud` see of a remote, whichever
//! backend holds it: a local directory laid out as DVC's cache (handled
//! here) or an object store (`cloud.rs`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cloud::CloudRemote;
use crate::cache::{write_verified, Cache, NOT_SYNCED};
use crate::{DataError, Result};

/// Parallel requests to a cloud remote when `--jobs` is not given.
pub(super) const DEFAULT_CLOUD_JOBS: usize = 16;

/// A remote that objects can be copied to and from: a directory laid out as
/// DVC's cache, or a bucket (and prefix) of an object store with the same
/// layout below it.
#[derive(Debug, Clone)]
pub struct Remote {
    pub name: String,
    /// The directory of a local remote; empty for a cloud remote.
    pub root: PathBuf,
    /// The URL as configured, a relative local path resolved against `.dvc/`.
    pub url: String,
    pub(super) backend: Backend,
}

/// The name transfers used when only local directories were supported.
pub type LocalRemote = Remote;

#[derive(Debug, Clone)]
pub(super) enum Backend {
    Local,
    Cloud(Arc<CloudRemote>),
}

impl PartialEq for Remote {
    /// Two remotes are the same when they name the same place.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.root == other.root && self.url == other.url
    }
}

impl Eq for Remote {}

/// Whether `oid` is an md5 (32 lowercase hex digits), or one with `.dir`.
pub(crate) fn is_valid_oid(oid: &str) -> bool {
    let md5 = object_md5(oid);
    md5.len() == 32
        && md5
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// The md5 an object's bytes hash to (`.dir` manifests hash like files).
pub(crate) fn object_md5(oid: &str) -> &str {
    oid.strip_suffix(".dir").unwrap_or(oid)
}

impl Remote {
    /// A local directory remote.
    pub fn local(name: impl Into<String>, root: impl Into<PathBuf>) -> Remote {
        let root = root.into();
        Remote {
            name: name.into(),
            url: root.to_string_lossy().into_owned(),
            root,
            backend: Backend::Local,
        }
    }

    /// Whether the remote is in an object store rather than a directory.
    pub fn is_cloud(&self) -> bool {
        matches!(self.backend, Backend::Cloud(_))
    }

    /// Parallel transfers when the user gave no `--jobs`: the number of
    /// cores for a directory, 16 requests in flight for an object store.
    pub fn default_jobs(&self) -> usize {
        match self.backend {
            Backend::Local => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            Backend::Cloud(_) => DEFAULT_CLOUD_JOBS,
        }
    }

    fn local_objects(&self) -> Cache {
        Cache::new(&self.root)
    }

    /// Every object on the remote (DVC 3 layout, `files/md5/`), sorted; for
    /// `gc --cloud`. A cloud remote is listed prefix by prefix in parallel.
    pub fn list_oids(&self) -> Result<Vec<String>> {
        match &self.backend {
            Backend::Local => list_local_oids(&self.root),
            Backend::Cloud(cloud) => Ok(cloud
                .list_oids(true, DEFAULT_CLOUD_JOBS)?
                .into_iter()
                .collect()),
        }
    }

    /// Deletes objects from the remote (absent ones are skipped); returns
    /// how many were deleted (for a cloud remote: delete requests that
    /// succeeded, which S3 also answers for absent keys).
    pub fn delete_oids(&self, oids: &[String]) -> Result<usize> {
        if let Some(oid) = oids.iter().find(|oid| !is_valid_oid(oid)) {
            return Err(DataError::Usage(format!("{oid:?} is not an object id")));
        }
        match &self.backend {
            Backend::Local => {
                let objects = self.local_objects();
                let mut n_deleted = 0;
                for oid in oids {
                    let path = objects.object_path(oid);
                    match std::fs::remove_file(&path) {
                        Ok(()) => n_deleted += 1,
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                        Err(error) => return Err(DataError::io(path, error)),
                    }
                }
                Ok(n_deleted)
            }
            Backend::Cloud(cloud) => cloud.delete_oids(oids),
        }
    }

    /// Which of `oids` the remote holds (DVC 3 layout). With `trust_index`,
    /// a cloud remote answers from its index where it can (a hint: see
    /// `index.rs`); a directory is always asked.
    pub(crate) fn existing(
        &self,
        oids: &[String],
        trust_index: bool,
        jobs: usize,
    ) -> Result<HashSet<String>> {
        match &self.backend {
            Backend::Local => {
                let objects = self.local_objects();
                Ok(oids
                    .iter()
                    .filter(|oid| objects.object_path(oid).is_file())
                    .cloned()
                    .collect())
            }
            Backend::Cloud(cloud) => cloud.existing(oids, trust_index, jobs),
        }
    }

    /// Copies object `oid` from `cache` to the remote, verified on the way.
    pub(crate) fn upload(&self, cache: &Cache, oid: &str) -> Result<()> {
        match &self.backend {
            Backend::Local => copy_verified(cache, &self.local_objects(), oid).map(|_| ()),
            Backend::Cloud(cloud) => cloud.upload(cache, oid),
        }
    }

    /// Copies object `oid` from the remote into `cache`, verified on the way;
    /// `Ok(false)` when the remote does not have it. A local remote's 2.x
    /// layout is read as a fallback.
    pub(crate) fn download(&self, cache: &Cache, oid: &str) -> Result<bool> {
        match &self.backend {
            Backend::Local => copy_verified(&self.local_objects(), cache, oid),
            Backend::Cloud(cloud) => cloud.download(cache, oid),
        }
    }

    /// Records in the remote index objects now known to be there.
    pub(crate) fn note_present(&self, oids: &[String]) {
        if let Backend::Cloud(cloud) = &self.backend {
            cloud.index_add(oids);
        }
    }

    /// Drops from the remote index objects found missing.
    pub(crate) fn note_absent(&self, oids: &[String]) {
        if let Backend::Cloud(cloud) = &self.backend {
            cloud.index_remove(oids);
        }
    }
}

/// Copies object `oid` between two directories laid out as the cache,
/// hashing on the way; `Ok(false)` when `source` lacks it.
fn copy_verified(source: &Cache, destination: &Cache, oid: &str) -> Result<bool> {
    let target = destination.object_path(oid);
    if target.is_file() {
        return Ok(true);
    }
    let Some(from) = source.find(oid) else {
        return Ok(false);
    };
    let mut reader = std::fs::File::open(&from).map_err(|err| DataError::io(&from, err))?;
    write_verified(
        &mut reader,
        &from,
        &target,
        object_md5(oid),
        Some(0o444),
        NOT_SYNCED,
    )?;
    Ok(true)
}

/// The oids under `root/files/md5/`, sorted; temp files and strays skipped.
fn list_local_oids(root: &Path) -> Result<Vec<String>> {
    let files = root.join("files").join("md5");
    let prefixes = match std::fs::read_dir(&files) {
        Ok(prefixes) => prefixes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(DataError::io(&files, error)),
    };
    let mut oids = Vec::new();
    for prefix in prefixes {
        let prefix = prefix.map_err(|error| DataError::io(&files, error))?;
        let prefix_name = prefix.file_name().to_string_lossy().into_owned();
        if prefix_name.len() != 2 || !prefix.path().is_dir() {
            continue;
        }
        let objects = std::fs::read_dir(prefix.path())
            .map_err(|error| DataError::io(prefix.path(), error))?;
        for object in objects {
            let object = object.map_err(|error| DataError::io(prefix.path(), error))?;
            let oid = format!("{prefix_name}{}", object.file_name().to_string_lossy());
            if is_valid_oid(&oid) {
                oids.push(oid);
            }
        }
    }
    oids.sort();
    Ok(oids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_remote_lists_and_deletes_its_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let remote = Remote::local("r", dir.path());
        assert_eq!(remote.list_oids().expect("empty"), Vec::<String>::new());
        let foo = "acbd18db4cc2f85cedef654fccc4a4d8";
        let manifest = "5ea40360f5b4ec688df672a4db9c17d1.dir";
        for oid in [foo, manifest] {
            let path = Cache::new(dir.path()).object_path(oid);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "x").expect("write");
        }
        std::fs::write(
            Cache::new(dir.path())
                .object_path(foo)
                .with_file_name(".keel-tmp-abc"),
            "partial",
        )
        .expect("write");
        assert_eq!(remote.list_oids().expect("list"), [manifest, foo]);
        assert_eq!(
            remote
                .delete_oids(&[
                    foo.to_owned(),
                    "37b51d194a7513e45b56f6524f2d51f2".to_owned()
                ])
                .expect("delete"),
            1
        );
        assert_eq!(remote.list_oids().expect("list"), [manifest]);
        let error = remote
            .delete_oids(&["../x".to_owned()])
            .expect_err("invalid");
        assert_eq!(error.to_string(), "\"../x\" is not an object id");
    }
}
