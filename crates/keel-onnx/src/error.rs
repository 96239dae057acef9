//! The one error type of the crate, with a stable code per variant.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot read onnx model {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed onnx model: {0}")]
    MalformedModel(String),
    #[error(
        "unsupported onnx operator {op_type} (domain \"{domain}\") in node \"{node}\"; \
         serve this model with the python runtime instead"
    )]
    UnsupportedOperator {
        op_type: String,
        domain: String,
        node: String,
    },
    #[error("unsupported onnx model: {0}")]
    UnsupportedModel(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("onnx inference failed: {0}")]
    Runtime(String),
}

impl OnnxError {
    /// A stable, machine-readable name for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            OnnxError::Io { .. } => "ONNX_IO",
            OnnxError::MalformedModel(_) => "ONNX_MALFORMED_MODEL",
            OnnxError::UnsupportedOperator { .. } => "ONNX_UNSUPPORTED_OPERATOR",
            OnnxError::UnsupportedModel(_) => "ONNX_UNSUPPORTED_MODEL",
            OnnxError::InvalidInput(_) => "ONNX_INVALID_INPUT",
            OnnxError::Runtime(_) => "ONNX_RUNTIME_FAILURE",
        }
    }

    /// True when the caller's request was at fault (not the model or the engine).
    pub fn is_client_error(&self) -> bool {
        matches!(self, OnnxError::InvalidInput(_))
    }
}

pub(crate) fn malformed(message: impl Into<String>) -> OnnxError {
    OnnxError::MalformedModel(message.into())
}

pub(crate) fn runtime(message: impl Into<String>) -> OnnxError {
    OnnxError::Runtime(message.into())
}

pub(crate) fn invalid_input(message: impl Into<String>) -> OnnxError {
    OnnxError::InvalidInput(message.into())
}
