//! `ApiError`: every failure leaves the server as MLflow's error JSON,
//! `{"error_code": ..., "message": ...}`, with the status its code implies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keel_api::mlflow::ErrorResponse;
use keel_core::{ErrorCode, KeelError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: KeelError,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error whose HTTP status is not the one its code implies (e.g. 413).
    pub fn with_status(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error: KeelError::new(code, message),
        }
    }
}

impl From<KeelError> for ApiError {
    fn from(error: KeelError) -> Self {
        let status = StatusCode::from_u16(error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { status, error }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.error.code, message = %self.error.message, "request failed");
        }
        let body = ErrorResponse {
            error_code: self.error.code.as_str().to_string(),
            message: self.error.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// MLflow's message for a missing required request field.
pub fn missing(field: &str) -> ApiError {
    KeelError::invalid(format!(
        "Missing value for required parameter '{field}'. See the API docs for more information about request parameters."
    ))
    .into()
}

/// Unwraps a required request field; an absent or empty string is missing.
pub fn required(value: Option<String>, field: &str) -> ApiResult<String> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(missing(field)),
    }
}
