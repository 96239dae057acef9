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

/// Middleware: a handler that panics (a bug) answers 500 `INTERNAL_ERROR` in
/// MLflow's error shape and is logged, instead of dropping the connection.
pub async fn catch_panics(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use futures_util::FutureExt;
    let path = request.uri().path().to_string();
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%path, %detail, "request handler panicked");
            ApiError::from(KeelError::internal(
                "internal error while handling the request; the server log has details",
            ))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use axum::Router;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_in_mlflow_shape() {
        let app = Router::new()
            .route("/boom", get(|| async { panic!("boom") as &'static str }))
            .route("/fine", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(catch_panics));
        let response = app
            .clone()
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error_code"], "INTERNAL_ERROR");
        let response = app
            .oneshot(Request::get("/fine").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
