//! The error type of the pipeline layer; each error names what the user can
//! fix (file, stage and key for definitions).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A definition (dvc.yaml, dvc.lock, a params or vars file) that cannot be used.
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{0}")]
    Usage(String),
    // Not `#[source]`: the message already includes it.
    #[error("{path}: {io_error}")]
    Io {
        path: PathBuf,
        io_error: std::io::Error,
    },
    #[error("{0}")]
    Data(#[from] keel_data::DataError),
}

impl PipelineError {
    pub(crate) fn invalid(file: impl Into<String>, message: impl Into<String>) -> Self {
        PipelineError::Invalid {
            file: file.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, io_error: std::io::Error) -> Self {
        PipelineError::Io {
            path: path.into(),
            io_error,
        }
    }
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
