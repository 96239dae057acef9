//! Keel's artifact storage: the [`ArtifactStore`] trait every backend implements, the
//! local-disk backend, and [`RelativeArtifactPath`], the validated path type that is the only
//! way a client-supplied path reaches a backend.
//!
//! Invariants: nothing here knows HTTP; the trait names no filesystem type, so object
//! storage can implement it; no artifact is ever held whole in memory.

mod local;
mod safe_path;
mod store;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use local::LocalArtifactStore;
pub use safe_path::{RelativeArtifactPath, MAX_COMPONENT_BYTES, MAX_DECODE_ROUNDS, MAX_PATH_BYTES};
pub use store::{ArtifactDownload, ArtifactStat, ArtifactStore, ByteStream, FileInfo};
