//! The contract every artifact backend implements, and the values it speaks in.
//!
//! Nothing here names a filesystem type: bytes travel as [`ByteStream`]s and paths as
//! [`RelativeArtifactPath`]s, so an object-storage backend can implement the same trait.

use std::fmt;
use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use keel_core::Result;

use crate::safe_path::RelativeArtifactPath;

/// Artifact bytes in flight: chunks in order, ending at the first error.
///
/// `io::Error` is the error type because it is what both `tokio_util::io::StreamReader` and
/// HTTP bodies convert from; backends translate their own errors into it.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Path relative to the store root (not to the listed directory), `/`-separated, as
    /// MLflow's `ArtifactRepository.list_artifacts` returns it.
    pub path: String,
    pub is_dir: bool,
    /// Size in bytes; `None` for directories.
    pub file_size: Option<u64>,
}

impl FileInfo {
    /// The last component of [`path`](Self::path): what MLflow's artifact proxy sends back.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// What a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactStat {
    File { size: u64 },
    Directory,
}

/// A file being read: its size, known up front so HTTP can send `Content-Length`, and its bytes.
pub struct ArtifactDownload {
    pub size: u64,
    pub stream: ByteStream,
}

impl fmt::Debug for ArtifactDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactDownload")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Storage for artifact files under one root, addressed by validated relative paths.
///
/// Errors carry `keel_core` codes: `INVALID_PARAMETER_VALUE` for a path that cannot be used
/// (escapes the root through a symlink, names a directory where a file is needed, ...),
/// `RESOURCE_DOES_NOT_EXIST` for a missing file, `BAD_REQUEST` for an upload body that broke
/// off, `INTERNAL_ERROR` for the backend failing.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// The direct children of `dir`, sorted by path. Empty when `dir` does not exist or is a
    /// file, as MLflow answers.
    async fn list(&self, dir: &RelativeArtifactPath) -> Result<Vec<FileInfo>>;

    /// Opens a file for streaming; `RESOURCE_DOES_NOT_EXIST` when there is none.
    async fn get(&self, path: &RelativeArtifactPath) -> Result<ArtifactDownload>;

    /// Writes `body` to `path`, creating parent directories and replacing any existing file.
    /// The new content appears whole or not at all: a failed upload leaves nothing behind.
    /// Returns the number of bytes written.
    async fn put(&self, path: &RelativeArtifactPath, body: ByteStream) -> Result<u64>;

    /// Removes a file or a whole directory tree. Deleting what does not exist succeeds, as
    /// MLflow's does; deleting the root is refused.
    async fn delete(&self, path: &RelativeArtifactPath) -> Result<()>;

    /// What `path` holds, or `None` when nothing is there.
    async fn stat(&self, path: &RelativeArtifactPath) -> Result<Option<ArtifactStat>>;

    /// Whether anything is at `path`.
    async fn exists(&self, path: &RelativeArtifactPath) -> Result<bool> {
        Ok(self.stat(path).await?.is_some())
    }
}
