//! Errors with a stable code; the code decides the HTTP status at the edge.

use std::fmt;

/// Stable error codes, spelled as MLflow spells them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    BadRequest,
    InvalidState,
    InternalError,
    EndpointNotFound,
    PermissionDenied,
    RequestLimitExceeded,
    TemporarilyUnavailable,
    Unauthenticated,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
            ErrorCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The HTTP status MLflow answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidParameterValue
            | ErrorCode::ResourceAlreadyExists
            | ErrorCode::BadRequest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::ResourceDoesNotExist | ErrorCode::EndpointNotFound => 404,
            ErrorCode::RequestLimitExceeded => 429,
            ErrorCode::InvalidState | ErrorCode::InternalError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error type of Keel's libraries: a stable code and a message for the user.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct KeelError {
    pub code: ErrorCode,
    pub message: String,
}

pub type Result<T, E = KeelError> = std::result::Result<T, E>;

impl KeelError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        KeelError {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExists, message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
}
