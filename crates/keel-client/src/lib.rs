//! A small typed, blocking HTTP client of a Keel (or MLflow) tracking server:
//! the MLflow model registry endpoints, the artifact proxy and Keel's lineage
//! API. The `keel` CLI uses it; responses are read into serde types, and the
//! server's `{"error_code", "message"}` errors come back as [`ClientError::Api`].

mod client;
mod download;
mod error;
mod model_ref;
pub mod types;

pub use client::{Client, DatasetInput};
pub use download::{artifact_root_path, DownloadedFile};
pub use error::{ClientError, Result};
pub use model_ref::ModelRef;
