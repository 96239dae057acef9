//! The Open Inference Protocol v2 over REST (what `keel serve` answers):
//! health, server and model metadata, readiness, `infer` with JSON or the
//! binary tensor extension, the model-repository extension and Prometheus
//! `/metrics`. Errors are `{"error": "..."}` with a 4xx/5xx status.

pub mod wire;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_serving::error::ErrorKind;
use keel_serving::repository::ModelRepository;
use keel_serving::{ModelManager, ModelMetadata, ServingError, TensorSpec};
use serde_json::{json, Value};

pub use wire::HEADER_LENGTH;

/// State of the serving routes.
#[derive(Clone)]
pub struct ServingState {
    pub manager: ModelManager,
    /// Loads and unloads models by name for the repository extension.
    pub repository: Option<Arc<dyn ModelRepository>>,
    /// More Prometheus text appended to `/metrics` (the monitors' gauges).
    pub extra_metrics: Option<ExtraMetrics>,
}

/// Renders Prometheus text to append to the serving metrics.
pub type ExtraMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Largest inference request body accepted, by default.
pub const DEFAULT_MAX_INFER_BYTES: usize = 64 * 1024 * 1024;

/// The OIP REST router.
pub fn serving_app(state: ServingState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_version_metadata),
        )
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_version_ready),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(infer_version),
        )
        .route("/v2/repository/index", post(repository_index))
        .route("/v2/repository/models/{name}/load", post(repository_load))
        .route(
            "/v2/repository/models/{name}/unload",
            post(repository_unload),
        )
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
        .layer(axum::middleware::from_fn(crate::error::catch_panics))
}

/// A serving failure as the protocol's `{"error": ...}`.
pub struct OipError {
    status: StatusCode,
    message: String,
}

impl From<ServingError> for OipError {
    fn from(err: ServingError) -> Self {
        let status = match err.kind {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        OipError {
            status,
            message: err.message,
        }
    }
}

impl IntoResponse for OipError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(message = %self.message, "inference request failed");
        }
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type OipResult<T> = Result<T, OipError>;

async fn not_found(uri: Uri) -> OipError {
    OipError {
        status: StatusCode::NOT_FOUND,
        message: format!("no endpoint at {}", uri.path()),
    }
}

async fn live(State(state): State<ServingState>) -> Response {
    let live = state.manager.is_live();
    let status = if live {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "live": live }))).into_response()
}

async fn ready(State(state): State<ServingState>) -> Response {
    let ready = state.manager.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready }))).into_response()
}

async fn server_metadata(State(state): State<ServingState>) -> Json<Value> {
    let metadata = state.manager.server_metadata();
    Json(json!({
        "name": metadata.name,
        "version": metadata.version,
        "extensions": metadata.extensions,
    }))
}

fn specs_json(specs: &[TensorSpec]) -> Vec<Value> {
    specs
        .iter()
        .map(|spec| json!({ "name": spec.name, "datatype": spec.datatype.as_str(), "shape": spec.shape }))
        .collect()
}

fn metadata_json(metadata: ModelMetadata) -> Json<Value> {
    Json(json!({
        "name": metadata.name,
        "versions": metadata.versions,
        "platform": metadata.platform,
        "inputs": specs_json(&metadata.inputs),
        "outputs": specs_json(&metadata.outputs),
    }))
}

async fn model_metadata(
    State(state): State<ServingState>,
    Path(name): Path<String>,
) -> OipResult<Json<Value>> {
    Ok(metadata_json(state.manager.model_metadata(&name, None)?))
}

async fn model_version_metadata(
    State(state): State<ServingState>,
    Path((name, version)): Path<(String, String)>,
) -> OipResult<Json<Value>> {
    Ok(metadata_json(
        state.manager.model_metadata(&name, Some(&version))?,
    ))
}

fn readiness(state: &ServingState, name: &str, version: Option<&str>) -> Response {
    let ready = state.manager.model_ready(name, version);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "name": name, "ready": ready }))).into_response()
}

async fn model_ready(State(state): State<ServingState>, Path(name): Path<String>) -> Response {
    readiness(&state, &name, None)
}

async fn model_version_ready(
    State(state): State<ServingState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    readiness(&state, &name, Some(&version))
}

async fn infer(
    State(state): State<ServingState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> OipResult<Response> {
    run_infer(state, name, None, headers, body).await
}

async fn infer_version(
    State(state): State<ServingState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> OipResult<Response> {
    run_infer(state, name, Some(version), headers, body).await
}

async fn run_infer(
    state: ServingState,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> OipResult<Response> {
    let body = body.map_err(|rejection| OipError {
        status: rejection.status(),
        message: format!("cannot read the request body: {}", rejection.body_text()),
    })?;
    let json_length = match headers.get(HEADER_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ServingError::invalid("Inference-Header-Content-Length must be a byte count")
                })?,
        ),
    };
    let request = wire::decode_request(&body, json_length)?;
    let request_outputs = request.outputs.clone();
    let request_parameters = request.parameters.clone();
    let response = state
        .manager
        .infer(&name, version.as_deref(), request)
        .await?;
    let encoded = wire::encode_response(&response, &request_outputs, &request_parameters)?;
    let mut http = Response::new(axum::body::Body::from(encoded.body));
    let content_type = match encoded.json_length {
        Some(length) => {
            http.headers_mut()
                .insert(HEADER_LENGTH, HeaderValue::from(length));
            "application/octet-stream"
        }
        None => "application/json",
    };
    http.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(http)
}

fn repository(state: &ServingState) -> OipResult<&Arc<dyn ModelRepository>> {
    state.repository.as_ref().ok_or_else(|| OipError {
        status: StatusCode::BAD_REQUEST,
        message: "this server has no model repository to load from".into(),
    })
}

async fn repository_index(State(state): State<ServingState>) -> Json<Value> {
    let mut entries: Vec<Value> = state
        .manager
        .index()
        .into_iter()
        .map(|entry| {
            json!({ "name": entry.name, "version": entry.version, "state": entry.state, "reason": entry.reason })
        })
        .collect();
    if let Some(repository) = &state.repository {
        let loaded = state.manager.index();
        for entry in repository.available() {
            if !loaded.iter().any(|held| held.name == entry.name) {
                entries.push(
                    json!({ "name": entry.name, "state": entry.state, "reason": entry.reason }),
                );
            }
        }
    }
    Json(Value::Array(entries))
}

/// The optional body of load/unload: `{"parameters": {...}}`.
fn load_parameters(body: &Bytes) -> OipResult<keel_serving::Parameters> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Default::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ServingError::invalid(format!("malformed repository request: {err}")))?;
    Ok(value
        .get("parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

async fn repository_load(
    State(state): State<ServingState>,
    Path(name): Path<String>,
    body: Bytes,
) -> OipResult<Json<Value>> {
    let parameters = load_parameters(&body)?;
    repository(&state)?.load(&name, &parameters).await?;
    Ok(Json(json!({})))
}

async fn repository_unload(
    State(state): State<ServingState>,
    Path(name): Path<String>,
    body: Bytes,
) -> OipResult<Json<Value>> {
    load_parameters(&body)?;
    repository(&state)?.unload(&name).await?;
    Ok(Json(json!({})))
}

async fn metrics(State(state): State<ServingState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        match &state.extra_metrics {
            Some(extra) => state.manager.render_metrics() + &extra(),
            None => state.manager.render_metrics(),
        },
    )
        .into_response()
}
