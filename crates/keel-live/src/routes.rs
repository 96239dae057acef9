//! The monitors' HTTP API, mounted by `keel serve` beside the Open
//! Inference Protocol (errors are `{"error": "..."}` like the OIP routes):
//!
//! - `GET  /v2/monitors`: the monitors and their settings
//! - `PUT  /v2/monitors/{name}`: create or replace a monitor (the YAML file's fields as JSON;
//!   kept across restarts), `GET` / `DELETE` it
//! - `POST /v2/monitors/{name}/run`: evaluate now; the results
//! - `GET  /v2/monitors/{name}/results?since=RFC3339|unix-ms&limit=N`: stored results, newest first
//! - `POST /v2/models/{model}/labels`: ground truth,
//!   `{"labels": [{"request_id": "r1", "row": 0, "label": 1}, {"request_id": "r2", "labels": [0, 1]}]}`

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::service::MonitorService;
use crate::store::Label;
use crate::LiveError;

/// Most labels one request may carry.
pub const MAX_LABELS_PER_REQUEST: usize = 100_000;

pub fn router(service: MonitorService) -> Router {
    Router::new()
        .route("/v2/monitors", get(list))
        .route("/v2/monitors/{name}", get(show).put(put).delete(delete))
        .route("/v2/monitors/{name}/run", post(run))
        .route("/v2/monitors/{name}/results", get(results))
        .route("/v2/models/{model}/labels", post(labels))
        .with_state(service)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

impl IntoResponse for LiveError {
    fn into_response(self) -> Response {
        let status = match &self {
            LiveError::NotFound(_) => StatusCode::NOT_FOUND,
            LiveError::BadRequest(_) | LiveError::Spec(_) => StatusCode::BAD_REQUEST,
            LiveError::Log(_) | LiveError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(status, self.to_string())
    }
}

async fn list(State(service): State<MonitorService>) -> Response {
    let monitors = service.specs();
    Json(json!({ "monitors": monitors })).into_response()
}

async fn show(State(service): State<MonitorService>, Path(name): Path<String>) -> Response {
    match service.spec(&name) {
        Ok(spec) => Json(json!({ "monitor": spec })).into_response(),
        Err(err) => err.into_response(),
    }
}

/// The JSON body, or why it is not JSON.
fn json_body(body: Result<Json<Value>, JsonRejection>) -> Result<Value, String> {
    body.map(|Json(body)| body)
        .map_err(|rejection| format!("the body must be JSON: {}", rejection.body_text()))
}

async fn put(
    State(service): State<MonitorService>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match service.put(&name, &body).await {
        Ok((spec, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(json!({ "monitor": spec }))).into_response()
        }
        Err(err) => err.into_response(),
    }
}

async fn delete(State(service): State<MonitorService>, Path(name): Path<String>) -> Response {
    match service.delete(&name).await {
        Ok(()) => Json(json!({})).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn run(State(service): State<MonitorService>, Path(name): Path<String>) -> Response {
    match service.run(&name).await {
        Ok(results) => Json(json!({ "results": results })).into_response(),
        Err(err) => err.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct ResultsQuery {
    since: Option<String>,
    limit: Option<i64>,
}

async fn results(
    State(service): State<MonitorService>,
    Path(name): Path<String>,
    query: Result<Query<ResultsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad query: use since=RFC3339-or-unix-ms&limit=N",
        );
    };
    let since_ms = match query.since.as_deref() {
        None => 0,
        Some(text) => match parse_since(text) {
            Some(ms) => ms,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("since=`{text}` is neither an RFC 3339 time nor unix milliseconds"),
                )
            }
        },
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 10000");
    }
    match service.results(&name, since_ms, limit).await {
        Ok(results) => Json(json!({ "results": results })).into_response(),
        Err(err) => err.into_response(),
    }
}

fn parse_since(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp_millis())
}

async fn labels(
    State(service): State<MonitorService>,
    Path(model): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let body = match json_body(body) {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let parsed = match parse_labels(&body) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match service.post_labels(&model, &parsed).await {
        Ok(stored) => Json(json!({ "stored": stored })).into_response(),
        Err(err) => err.into_response(),
    }
}

fn label_text(value: &Value, at: &str) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(flag) => Ok(flag.to_string()),
        _ => Err(format!("{at}: a label is a string, number or boolean")),
    }
}

/// `{"labels": [...]}` into labels, every mistake named by its position.
pub fn parse_labels(body: &Value) -> Result<Vec<Label>, String> {
    let Some(entries) = body.get("labels").and_then(Value::as_array) else {
        return Err("the body must be {\"labels\": [{\"request_id\": ..., \"row\": 0, \"label\": ...}, ...]}".to_owned());
    };
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("labels[{index}]");
        let Some(request_id) = entry
            .get("request_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        else {
            return Err(format!("{at}: request_id must be a non-empty string"));
        };
        match (entry.get("label"), entry.get("labels")) {
            (Some(label), None) => {
                let row = match entry.get("row") {
                    None => 0,
                    Some(row) => row
                        .as_i64()
                        .filter(|row| *row >= 0)
                        .ok_or_else(|| format!("{at}: row must be a non-negative integer"))?,
                };
                out.push(Label {
                    request_id: request_id.to_owned(),
                    row,
                    label: label_text(label, &at)?,
                });
            }
            (None, Some(Value::Array(values))) => {
                for (row, value) in values.iter().enumerate() {
                    out.push(Label {
                        request_id: request_id.to_owned(),
                        row: row as i64,
                        label: label_text(value, &format!("{at}.labels[{row}]"))?,
                    });
                }
            }
            _ => {
                return Err(format!(
                    "{at}: give either `label` (with an optional `row`) or `labels` (one per row)"
                ))
            }
        }
        if out.len() > MAX_LABELS_PER_REQUEST {
            return Err(format!(
                "at most {MAX_LABELS_PER_REQUEST} labels per request"
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_by_row_and_by_request() {
        let labels = parse_labels(&json!({"labels": [
            {"request_id": "a", "label": 1},
            {"request_id": "b", "row": 2, "label": "cat"},
            {"request_id": "c", "labels": [true, 0.5]},
        ]}))
        .unwrap();
        let flat: Vec<(String, i64, String)> = labels
            .into_iter()
            .map(|l| (l.request_id, l.row, l.label))
            .collect();
        assert_eq!(
            flat,
            vec![
                ("a".into(), 0, "1".into()),
                ("b".into(), 2, "cat".into()),
                ("c".into(), 0, "true".into()),
                ("c".into(), 1, "0.5".into()),
            ]
        );
    }

    #[test]
    fn label_mistakes_are_named() {
        let err = parse_labels(
            &json!({"labels": [{"request_id": "a", "label": 1}, {"request_id": "", "label": 1}]}),
        )
        .unwrap_err();
        assert!(err.starts_with("labels[1]"), "{err}");
        let err = parse_labels(&json!({"labels": [{"request_id": "a", "row": -1, "label": 1}]}))
            .unwrap_err();
        assert!(err.contains("row"), "{err}");
        let err =
            parse_labels(&json!({"labels": [{"request_id": "a", "label": [1]}]})).unwrap_err();
        assert!(err.contains("string, number or boolean"), "{err}");
        assert!(parse_labels(&json!([1, 2])).is_err());
    }

    #[test]
    fn since_takes_rfc3339_or_millis() {
        assert_eq!(parse_since("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_since("2026-01-01T00:00:00Z"), Some(1_767_225_600_000));
        assert_eq!(parse_since("yesterday"), None);
    }
}
