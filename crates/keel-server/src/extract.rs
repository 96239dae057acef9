//! `MlflowRequest<T>`: reads a request message the way MLflow's server does —
//! from the query string for GET, from a JSON body otherwise — and turns every
//! rejection into MLflow's error JSON instead of axum's plain-text errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, StatusCode};
use keel_core::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct MlflowRequest<T>(pub T);

impl<S, T> FromRequest<S> for MlflowRequest<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::GET {
            let pairs: Vec<(String, String)> = match req.uri().query() {
                None => Vec::new(),
                Some(query) => serde_urlencoded::from_str(query).map_err(|err| {
                    ApiError::with_status(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::BadRequest,
                        format!("malformed query string: {err}"),
                    )
                })?,
            };
            let json = keel_api::json::query_pairs_to_json(pairs);
            return serde_json::from_value(json)
                .map(MlflowRequest)
                .map_err(invalid_field);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::with_status(
                    status,
                    ErrorCode::BadRequest,
                    "request body is too large; split it into smaller requests",
                )
            } else {
                ApiError::with_status(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    rejection.body_text(),
                )
            }
        })?;
        parse_json_body(&bytes).map(MlflowRequest)
    }
}

/// Parses a JSON request body; an empty body is an empty message.
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Parsed straight into the message type (no intermediate `Value`): log-batch
    // bodies hold a thousand objects. Syntax errors are malformed JSON (BAD_REQUEST),
    // type errors a wrong field (INVALID_PARAMETER_VALUE), as MLflow answers.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return serde_json::from_slice(b"{}").map_err(invalid_field),
        Some(b'{') => {}
        Some(_) => {
            return Err(ApiError::with_status(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "request body must be a JSON object",
            ))
        }
    }
    serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => invalid_field(err),
        _ => ApiError::with_status(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("malformed JSON in request body: {err}"),
        ),
    })
}

fn invalid_field(err: serde_json::Error) -> ApiError {
    keel_core::KeelError::invalid(format!("Invalid value in request: {err}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_an_empty_message() {
        let parsed: serde_json::Map<String, serde_json::Value> = parse_json_body(b"  ").unwrap();
        assert!(parsed.is_empty());
    }

    #[test]
    fn non_object_bodies_are_bad_requests() {
        let err = parse_json_body::<serde_json::Value>(b"[1, 2]").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        let err = parse_json_body::<serde_json::Value>(b"{not json").unwrap_err();
        assert_eq!(err.error.code, ErrorCode::BadRequest);
    }
}
