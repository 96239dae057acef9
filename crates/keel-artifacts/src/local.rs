//! `LocalArtifactStore`: artifacts as files under one directory on local disk.
//!
//! Symlinks are checked at access time: every operation canonicalizes the part of the path
//! that exists and refuses to touch anything whose real location is outside the (canonical)
//! root. A process that can swap directories for symlinks inside the root while a request is
//! in flight can still race these checks; guarding against a hostile local user needs
//! `openat`-style descriptors, which is out of scope for a store that trusts its own disk.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::StreamExt;
use keel_core::{KeelError, Result};
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::safe_path::RelativeArtifactPath;
use crate::store::{ArtifactDownload, ArtifactStat, ArtifactStore, ByteStream, FileInfo};

/// Names of in-progress uploads; hidden from listings.
const UPLOAD_TEMP_PREFIX: &str = ".keel-upload-";
/// Chunk size of download streams.
const READ_CHUNK_BYTES: usize = 128 * 1024;

/// Artifacts stored as plain files under `root`.
#[derive(Debug, Clone)]
pub struct LocalArtifactStore {
    /// Canonical (symlink-free, absolute) root directory.
    root: PathBuf,
}

impl LocalArtifactStore {
    /// Opens the store at `root_dir`, creating the directory if needed.
    ///
    /// Blocks briefly on the filesystem: call it at startup, not from a request.
    pub fn new(root_dir: impl AsRef<Path>) -> Result<Self> {
        let root_dir = root_dir.as_ref();
        std::fs::create_dir_all(root_dir).map_err(|err| {
            KeelError::internal(format!(
                "could not create artifact root '{}': {err}; check that the parent exists and is writable",
                root_dir.display()
            ))
        })?;
        let root = std::fs::canonicalize(root_dir).map_err(|err| {
            KeelError::internal(format!(
                "could not resolve artifact root '{}': {err}",
                root_dir.display()
            ))
        })?;
        Ok(LocalArtifactStore { root })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `path` would be if no symlink were involved.
    fn lexical_location(&self, path: &RelativeArtifactPath) -> PathBuf {
        let mut location = self.root.clone();
        location.extend(path.components());
        location
    }

    fn ensure_inside_root(&self, path: &RelativeArtifactPath, real: &Path) -> Result<()> {
        if real.starts_with(&self.root) {
            return Ok(());
        }
        Err(KeelError::invalid(format!(
            "invalid artifact path '{path}': it leads outside the artifact root through a symbolic link"
        )))
    }

    /// The real location of `path` when something exists there, checked to be inside the root.
    async fn resolve_existing(&self, path: &RelativeArtifactPath) -> Result<Option<PathBuf>> {
        match tokio::fs::canonicalize(self.lexical_location(path)).await {
            Ok(real) => {
                self.ensure_inside_root(path, &real)?;
                Ok(Some(real))
            }
            Err(err) if is_absent(&err) => Ok(None),
            Err(err) => Err(backend_error("resolve", path, err)),
        }
    }

    /// Makes sure the directory that will hold `path` exists, creating nothing outside the root.
    ///
    /// Returns the directory's real location and, when this call created directories, the
    /// topmost one, so a failed upload can remove them again.
    async fn create_parent_dir(
        &self,
        path: &RelativeArtifactPath,
    ) -> Result<(PathBuf, Option<PathBuf>)> {
        let parent = path.parent().unwrap_or_else(RelativeArtifactPath::root);
        let components: Vec<&str> = parent.components().collect();

        // Canonicalize the deepest ancestor that exists, so a symlink on the way is seen
        // before anything gets created through it.
        let mut n_existing = components.len();
        let existing_real = loop {
            let mut candidate = self.root.clone();
            candidate.extend(&components[..n_existing]);
            match tokio::fs::canonicalize(&candidate).await {
                Ok(real) => break real,
                Err(err) if is_absent(&err) && n_existing > 0 => n_existing -= 1,
                Err(err) => return Err(backend_error("resolve", path, err)),
            }
        };
        self.ensure_inside_root(path, &existing_real)?;
        let existing_metadata = tokio::fs::metadata(&existing_real)
            .await
            .map_err(|err| backend_error("resolve", path, err))?;
        if !existing_metadata.is_dir() {
            return Err(parent_is_a_file(path));
        }

        let missing = &components[n_existing..];
        let Some(first_missing) = missing.first() else {
            return Ok((existing_real, None));
        };
        let topmost_created = existing_real.join(first_missing);
        let mut parent_location = existing_real;
        parent_location.extend(missing);
        tokio::fs::create_dir_all(&parent_location)
            .await
            .map_err(|err| backend_error("create the directory of", path, err))?;
        let parent_real = tokio::fs::canonicalize(&parent_location)
            .await
            .map_err(|err| backend_error("resolve", path, err))?;
        self.ensure_inside_root(path, &parent_real)?;
        Ok((parent_real, Some(topmost_created)))
    }

    /// Streams `body` into a temporary file beside the target, then renames it into place.
    async fn write_atomically(
        &self,
        path: &RelativeArtifactPath,
        parent_real: &Path,
        file_name: &str,
        mut body: ByteStream,
    ) -> Result<u64> {
        let target = parent_real.join(file_name);
        if let Ok(existing) = tokio::fs::symlink_metadata(&target).await {
            if existing.is_dir() {
                return Err(KeelError::invalid(format!(
                    "invalid artifact path '{path}': a directory is already there; delete it first or choose another name"
                )));
            }
        }

        let temp_dir = parent_real.to_path_buf();
        let (std_file, temp_path) = tokio::task::spawn_blocking(move || new_temp_file(&temp_dir))
            .await
            .map_err(task_failed)?
            .map_err(|err| backend_error("create", path, err))?;
        // From here on, dropping `temp_path` (on error or cancellation) deletes the partial file.
        let mut file = tokio::fs::File::from_std(std_file);
        let mut n_bytes: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| {
                KeelError::bad_request(format!(
                    "upload of artifact '{path}' broke off: {err}; send it again"
                ))
            })?;
            file.write_all(&chunk)
                .await
                .map_err(|err| backend_error("write", path, err))?;
            n_bytes += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(|err| backend_error("write", path, err))?;
        file.sync_all()
            .await
            .map_err(|err| backend_error("write", path, err))?;
        drop(file);

        tokio::task::spawn_blocking(move || temp_path.persist(&target))
            .await
            .map_err(task_failed)?
            .map_err(|err| backend_error("store", path, err.error))?;
        Ok(n_bytes)
    }

    /// What a directory entry holds, following a symlink only when it stays inside the root.
    async fn stat_entry(&self, entry: &tokio::fs::DirEntry) -> io::Result<Option<ArtifactStat>> {
        let file_type = entry.file_type().await?;
        let metadata = if file_type.is_symlink() {
            let Ok(real) = tokio::fs::canonicalize(entry.path()).await else {
                return Ok(None); // dangling link
            };
            if !real.starts_with(&self.root) {
                return Ok(None);
            }
            tokio::fs::metadata(&real).await?
        } else {
            entry.metadata().await?
        };
        Ok(stat_of(&metadata))
    }
}

#[async_trait]
impl ArtifactStore for LocalArtifactStore {
    async fn list(&self, dir: &RelativeArtifactPath) -> Result<Vec<FileInfo>> {
        let Some(real) = self.resolve_existing(dir).await? else {
            return Ok(Vec::new());
        };
        match tokio::fs::metadata(&real).await {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Ok(Vec::new()),
            Err(err) if is_absent(&err) => return Ok(Vec::new()),
            Err(err) => return Err(backend_error("list", dir, err)),
        }

        let mut entries = tokio::fs::read_dir(&real)
            .await
            .map_err(|err| backend_error("list", dir, err))?;
        let mut infos = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|err| backend_error("list", dir, err))?
        {
            let Ok(name) = entry.file_name().into_string() else {
                tracing::debug!(dir = %dir, "skipping an artifact whose name is not utf-8");
                continue;
            };
            if name.starts_with(UPLOAD_TEMP_PREFIX) || !is_addressable_name(&name) {
                continue;
            }
            let stat = match self.stat_entry(&entry).await {
                Ok(Some(stat)) => stat,
                Ok(None) => continue,
                Err(err) if is_absent(&err) => continue, // deleted while listing
                Err(err) => return Err(backend_error("list", dir, err)),
            };
            let path = if dir.is_root() {
                name
            } else {
                format!("{dir}/{name}")
            };
            infos.push(match stat {
                ArtifactStat::File { size } => FileInfo {
                    path,
                    is_dir: false,
                    file_size: Some(size),
                },
                ArtifactStat::Directory => FileInfo {
                    path,
                    is_dir: true,
                    file_size: None,
                },
            });
        }
        infos.sort_by(|left, right| left.path.cmp(&right.path));
        Ok(infos)
    }

    async fn get(&self, path: &RelativeArtifactPath) -> Result<ArtifactDownload> {
        let Some(real) = self.resolve_existing(path).await? else {
            return Err(does_not_exist(path));
        };
        // Check the type before opening: opening a FIFO would block until a writer appears.
        let metadata = tokio::fs::metadata(&real)
            .await
            .map_err(|err| backend_error("read", path, err))?;
        if metadata.is_dir() {
            return Err(KeelError::invalid(format!(
                "artifact '{path}' is a directory; list it instead of downloading it"
            )));
        }
        if !metadata.is_file() {
            return Err(KeelError::invalid(format!(
                "artifact '{path}' is not a regular file"
            )));
        }
        let file = tokio::fs::File::open(&real)
            .await
            .map_err(|err| backend_error("read", path, err))?;
        // The size of what was opened, not of what the path held a moment ago.
        let size = file
            .metadata()
            .await
            .map_err(|err| backend_error("read", path, err))?
            .len();
        Ok(ArtifactDownload {
            size,
            stream: Box::pin(ReaderStream::with_capacity(file, READ_CHUNK_BYTES)),
        })
    }

    async fn put(&self, path: &RelativeArtifactPath, body: ByteStream) -> Result<u64> {
        let Some(file_name) = path.file_name() else {
            return Err(KeelError::invalid(
                "invalid artifact path '': give a file path, not the artifact root",
            ));
        };
        let (parent_real, topmost_created) = self.create_parent_dir(path).await?;
        let written = self
            .write_atomically(path, &parent_real, file_name, body)
            .await;
        if written.is_err() {
            if let Some(topmost_created) = topmost_created {
                remove_created_dirs(parent_real, topmost_created).await;
            }
        }
        written
    }

    async fn delete(&self, path: &RelativeArtifactPath) -> Result<()> {
        let (Some(file_name), Some(parent)) = (path.file_name(), path.parent()) else {
            return Err(KeelError::invalid(
                "invalid artifact path '': refusing to delete the artifact root; delete the paths inside it",
            ));
        };
        let Some(parent_real) = self.resolve_existing(&parent).await? else {
            return Ok(());
        };
        // Look at the entry itself, not through it: a symlink is removed, never its target.
        let target = parent_real.join(file_name);
        let metadata = match tokio::fs::symlink_metadata(&target).await {
            Ok(metadata) => metadata,
            Err(err) if is_absent(&err) => return Ok(()),
            Err(err) => return Err(backend_error("delete", path, err)),
        };
        let removed = if metadata.is_dir() {
            tokio::fs::remove_dir_all(&target).await
        } else {
            tokio::fs::remove_file(&target).await
        };
        match removed {
            Ok(()) => Ok(()),
            Err(err) if is_absent(&err) => Ok(()),
            Err(err) => Err(backend_error("delete", path, err)),
        }
    }

    async fn stat(&self, path: &RelativeArtifactPath) -> Result<Option<ArtifactStat>> {
        let Some(real) = self.resolve_existing(path).await? else {
            return Ok(None);
        };
        match tokio::fs::metadata(&real).await {
            Ok(metadata) => Ok(stat_of(&metadata)),
            Err(err) if is_absent(&err) => Ok(None),
            Err(err) => Err(backend_error("inspect", path, err)),
        }
    }
}

fn new_temp_file(dir: &Path) -> io::Result<(std::fs::File, TempPath)> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(UPLOAD_TEMP_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Like any file the server writes (the umask still applies), not tempfile's 0600.
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    Ok(builder.tempfile_in(dir)?.into_parts())
}

/// Removes the directories a failed upload created, deepest first, stopping at one that is
/// not empty (a concurrent upload may have put something there).
async fn remove_created_dirs(deepest: PathBuf, topmost: PathBuf) {
    let mut dir = deepest;
    loop {
        if tokio::fs::remove_dir(&dir).await.is_err() || dir == topmost {
            return;
        }
        let Some(parent) = dir.parent() else {
            return;
        };
        dir = parent.to_path_buf();
    }
}

fn stat_of(metadata: &std::fs::Metadata) -> Option<ArtifactStat> {
    if metadata.is_dir() {
        Some(ArtifactStat::Directory)
    } else if metadata.is_file() {
        Some(ArtifactStat::File {
            size: metadata.len(),
        })
    } else {
        None
    }
}

/// A name on disk that a client could send back and reach the same entry: listing anything
/// else would hand the client a path it cannot download (MLflow's client rejects it).
fn is_addressable_name(name: &str) -> bool {
    RelativeArtifactPath::parse(name).is_ok_and(|parsed| parsed.as_str() == name)
}

fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn does_not_exist(path: &RelativeArtifactPath) -> KeelError {
    KeelError::not_found(format!("artifact '{path}' does not exist"))
}

fn parent_is_a_file(path: &RelativeArtifactPath) -> KeelError {
    KeelError::invalid(format!(
        "invalid artifact path '{path}': one of its parent directories is a file"
    ))
}

fn task_failed(err: tokio::task::JoinError) -> KeelError {
    KeelError::internal(format!("artifact storage task failed: {err}"))
}

/// The one place where filesystem errors become Keel errors.
fn backend_error(operation: &str, path: &RelativeArtifactPath, err: io::Error) -> KeelError {
    match err.kind() {
        io::ErrorKind::NotFound => does_not_exist(path),
        io::ErrorKind::NotADirectory => parent_is_a_file(path),
        io::ErrorKind::IsADirectory => KeelError::invalid(format!(
            "invalid artifact path '{path}': a directory is there, not a file"
        )),
        _ => {
            tracing::error!(artifact = %path, error = %err, "could not {operation} artifact");
            KeelError::internal(format!("could not {operation} artifact '{path}': {err}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{body, broken_body, path, put, read_all};
    use keel_core::ErrorCode;

    fn new_store() -> (tempfile::TempDir, LocalArtifactStore) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = LocalArtifactStore::new(dir.path().join("artifacts")).expect("store opens");
        (dir, store)
    }

    crate::artifact_store_conformance_tests!(new_store());

    /// A store whose root contains `escape -> <outside dir>` and `escape_file -> <outside
    /// file>`, with `secret.txt` in the outside directory.
    #[cfg(unix)]
    fn store_with_escaping_symlinks() -> (tempfile::TempDir, LocalArtifactStore, PathBuf) {
        let (dir, store) = new_store();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("outside dir");
        std::fs::write(outside.join("secret.txt"), b"secret").expect("secret file");
        std::os::unix::fs::symlink(&outside, store.root().join("escape")).expect("dir symlink");
        std::os::unix::fs::symlink(outside.join("secret.txt"), store.root().join("escape_file"))
            .expect("file symlink");
        (dir, store, outside)
    }

    fn assert_escape_rejected(result: Result<impl std::fmt::Debug>) {
        let err = result.expect_err("a path through a symlink leaving the root is refused");
        assert_eq!(err.code, ErrorCode::InvalidParameterValue);
        assert!(
            err.message.contains("outside the artifact root"),
            "{}",
            err.message
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlink_out_of_the_root_is_refused_for_reading() {
        let (_dir, store, _outside) = store_with_escaping_symlinks();
        assert_escape_rejected(store.get(&path("escape/secret.txt")).await);
        assert_escape_rejected(store.get(&path("escape_file")).await);
        assert_escape_rejected(store.list(&path("escape")).await);
        assert_escape_rejected(store.stat(&path("escape/secret.txt")).await);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlink_out_of_the_root_is_refused_for_writing() {
        let (_dir, store, outside) = store_with_escaping_symlinks();
        assert_escape_rejected(store.put(&path("escape/planted.txt"), body(b"x")).await);
        assert_escape_rejected(
            store
                .put(&path("escape/new/dir/planted.txt"), body(b"x"))
                .await,
        );
        assert!(!outside.join("planted.txt").exists());
        assert!(!outside.join("new").exists());
        assert_eq!(
            std::fs::read(outside.join("secret.txt")).expect("secret still there"),
            b"secret"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlink_out_of_the_root_is_refused_for_deleting() {
        let (_dir, store, outside) = store_with_escaping_symlinks();
        assert_escape_rejected(store.delete(&path("escape/secret.txt")).await);
        assert!(outside.join("secret.txt").exists());

        // Deleting the link itself removes the link, never what it points to.
        store.delete(&path("escape")).await.expect("link removed");
        store
            .delete(&path("escape_file"))
            .await
            .expect("link removed");
        assert!(!store.root().join("escape").exists());
        assert_eq!(
            std::fs::read(outside.join("secret.txt")).expect("secret still there"),
            b"secret"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn listing_hides_symlinks_that_leave_the_root() {
        let (_dir, store, _outside) = store_with_escaping_symlinks();
        put(&store, "visible.txt", b"v").await;
        let listed = store
            .list(&RelativeArtifactPath::root())
            .await
            .expect("listing succeeds");
        let names: Vec<&str> = listed.iter().map(FileInfo::name).collect();
        assert_eq!(names, vec!["visible.txt"]);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlink_staying_inside_the_root_is_followed() {
        let (_dir, store) = new_store();
        put(&store, "real/data.csv", b"a,b").await;
        std::os::unix::fs::symlink(store.root().join("real"), store.root().join("alias"))
            .expect("dir symlink");
        assert_eq!(read_all(&store, "alias/data.csv").await, b"a,b");
        let listed = store.list(&path("alias")).await.expect("listing succeeds");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].path, "alias/data.csv");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn root_reached_through_a_symlink_still_works() {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("real_root")).expect("root");
        std::os::unix::fs::symlink(dir.path().join("real_root"), dir.path().join("link_root"))
            .expect("root symlink");
        let store = LocalArtifactStore::new(dir.path().join("link_root")).expect("store opens");
        put(&store, "a/b.txt", b"b").await;
        assert_eq!(read_all(&store, "a/b.txt").await, b"b");
        assert!(dir.path().join("real_root/a/b.txt").exists());
    }

    #[tokio::test]
    async fn new_creates_the_root() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("several/levels/deep");
        let store = LocalArtifactStore::new(&root).expect("store opens");
        assert!(root.is_dir());
        assert_eq!(store.root(), root.canonicalize().expect("canonical root"));
    }

    #[tokio::test]
    async fn failed_upload_leaves_no_temporary_file() {
        let (_dir, store) = new_store();
        put(&store, "d/existing.txt", b"1").await;
        store
            .put(&path("d/new.txt"), broken_body(b"partial"))
            .await
            .expect_err("broken body");
        let names: Vec<String> = std::fs::read_dir(store.root().join("d"))
            .expect("dir readable")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, vec!["existing.txt".to_owned()]);
    }

    #[tokio::test]
    async fn upload_in_progress_is_invisible() {
        let (_dir, store) = new_store();
        put(&store, "d/done.txt", b"1").await;
        // What an interrupted server would leave behind.
        std::fs::write(store.root().join("d/.keel-upload-abc123"), b"half").expect("temp file");
        let listed = store.list(&path("d")).await.expect("listing succeeds");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].path, "d/done.txt");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn names_a_client_could_not_address_are_not_listed() {
        let (_dir, store) = new_store();
        for name in ["back\\slash", "hash#tag", "pct%2e%2e", "ok.txt"] {
            std::fs::write(store.root().join(name), b"x").expect("file");
        }
        let listed = store
            .list(&RelativeArtifactPath::root())
            .await
            .expect("listing succeeds");
        let names: Vec<&str> = listed.iter().map(FileInfo::name).collect();
        assert_eq!(names, vec!["ok.txt"]);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn fifo_is_not_opened() {
        let (_dir, store) = new_store();
        let fifo = store.root().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
        let err = store
            .get(&path("pipe"))
            .await
            .expect_err("not a regular file");
        assert_eq!(err.code, ErrorCode::InvalidParameterValue);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn uploaded_files_are_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, store) = new_store();
        put(&store, "perm.txt", b"x").await;
        let mode = std::fs::metadata(store.root().join("perm.txt"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
    }
}
