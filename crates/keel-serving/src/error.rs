//! `ServingError`: what can go wrong serving a request, with the kind that
//! decides the status code on every wire protocol.

/// Which class of failure; REST maps it to an HTTP status, gRPC to a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong (shape, datatype, missing input, bad parameter): 400 / INVALID_ARGUMENT.
    InvalidInput,
    /// No such model or version: 404 / NOT_FOUND.
    NotFound,
    /// The model exists but cannot answer yet (loading, unloaded): 503 / UNAVAILABLE.
    Unavailable,
    /// The runtime failed on a valid request: 500 / INTERNAL.
    Internal,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ServingError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ServingError {
    pub fn invalid(message: impl Into<String>) -> ServingError {
        ServingError {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ServingError {
        ServingError {
            kind: ErrorKind::NotFound,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> ServingError {
        ServingError {
            kind: ErrorKind::Unavailable,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> ServingError {
        ServingError {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }
}
