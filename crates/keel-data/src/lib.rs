//! Keel's data versioning, on DVC 3's on-disk formats byte for byte: directory
//! manifests (`.dir` objects), `.dvc` files, the content-addressed cache and a
//! state cache that spares re-hashing unchanged files; DVC's link types
//! (`cache.type`) and `.dvcignore`.

pub mod cache;
pub mod commit;
pub mod config;
pub mod diff;
pub mod dvcfile;
pub mod dvcignore;
pub mod gc;
pub mod get;
pub mod git;
pub mod hashing;
pub mod lineage;
pub mod link;
pub mod ls;
pub mod manifest;
pub mod pyjson;
pub mod remote;
pub mod remote_modify;
pub mod repo;
pub mod revision;
pub mod state;
pub mod transfer;
mod yaml;

/// Whether a plain YAML 1.2 scalar would read back as something other than a
/// string (`true`, `1e3`, `2001-01-01`, ...), as ruamel.yaml resolves it.
pub use yaml::resolves_to_non_string;

use std::path::PathBuf;

/// Errors of the data layer; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    // Not `#[source]`: the message already includes it, and `{:#}` would
    // print it twice.
    #[error("{path}: {io_error}")]
    Io {
        path: PathBuf,
        io_error: std::io::Error,
    },
    #[error("{path}: not a valid .dvc file: {reason}")]
    InvalidDvcFile { path: PathBuf, reason: String },
    #[error("{path}: not a valid directory manifest: {reason}")]
    InvalidManifest { path: PathBuf, reason: String },
    #[error("{path:?}: names holding U+0085, U+2028 or U+2029 cannot be tracked yet")]
    UnsupportedPath { path: String },
    #[error("{0}")]
    Usage(String),
    #[error("object {oid} is missing from the cache")]
    MissingObject { oid: String },
    #[error("{path}: cached object is corrupted (expected md5 {expected}, found {actual})")]
    CorruptObject {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            io_error: source,
        }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
