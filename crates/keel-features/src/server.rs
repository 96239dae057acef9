//! The feature server: Feast's HTTP API over a `FeatureStore`.
//! `POST /get-online-features`, `/push`, `/write-to-online-store`,
//! `/materialize`, `/materialize-incremental`, `GET /health`, plus Keel's
//! `POST /get-historical-features` (point-in-time retrieval as JSON).
//! Errors answer `{"detail": "..."}` (FastAPI's shape, which Feast's server
//! uses) with 400 for a bad request, 404 for an unknown name, 500 otherwise.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::store::{FeatureSelection, FeatureStore, JsonColumns, PushTarget};
use crate::values::parse_timestamp;
use crate::FeatureError;

/// The routes, relative to where they are mounted (`/` standalone,
/// `/features` inside `keel server`).
pub fn routes(store: Arc<FeatureStore>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/get-online-features", post(get_online_features))
        .route("/push", post(push))
        .route("/write-to-online-store", post(write_to_online_store))
        .route("/materialize", post(materialize))
        .route("/materialize-incremental", post(materialize_incremental))
        .route("/get-historical-features", post(get_historical_features))
        .with_state(store)
}

pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl From<FeatureError> for ApiError {
    fn from(error: FeatureError) -> Self {
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(%error, "feature server request failed");
        }
        Self {
            status,
            detail: error.to_string(),
        }
    }
}

/// A JSON request body, whatever its `Content-Type` says: Feast's own
/// examples post with `curl -d` (form content type), and FastAPI accepts it.
pub struct Body<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError {
                status: rejection.status(),
                detail: rejection.body_text(),
            })?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|error| ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                detail: format!("the request body is not valid: {error}"),
            })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "detail": self.detail }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn bad(message: impl Into<String>) -> ApiError {
    FeatureError::invalid(message).into()
}

async fn health() -> StatusCode {
    StatusCode::OK
}

/// JSON object whose key order is kept (entity columns answer in request order).
#[derive(Debug, Default)]
pub struct OrderedColumns(pub Vec<(String, Vec<Value>)>);

impl<'de> Deserialize<'de> for OrderedColumns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Columns;
        impl<'de> Visitor<'de> for Columns {
            type Value = OrderedColumns;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of column name to a list of values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedColumns, A::Error> {
                let mut columns = Vec::new();
                while let Some((name, values)) = map.next_entry::<String, Vec<Value>>()? {
                    columns.push((name, values));
                }
                Ok(OrderedColumns(columns))
            }
        }
        deserializer.deserialize_map(Columns)
    }
}

#[derive(Deserialize)]
struct OnlineRequest {
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    feature_service: Option<String>,
    entities: OrderedColumns,
    #[serde(default)]
    full_feature_names: bool,
}

fn selection(
    features: Option<Vec<String>>,
    feature_service: Option<String>,
) -> ApiResult<FeatureSelection> {
    match (features, feature_service) {
        (_, Some(service)) => Ok(FeatureSelection::Service(service)),
        (Some(features), None) => Ok(FeatureSelection::Refs(features)),
        (None, None) => Err(bad("give `features` or `feature_service`")),
    }
}

async fn get_online_features(
    State(store): State<Arc<FeatureStore>>,
    Body(request): Body<OnlineRequest>,
) -> ApiResult<Response> {
    let selection = selection(request.features, request.feature_service)?;
    let response = store
        .get_online(&selection, &request.entities.0, request.full_feature_names)
        .await?;
    Ok(Json(response).into_response())
}

#[derive(Deserialize)]
struct PushRequest {
    push_source_name: String,
    df: JsonColumns,
    #[serde(default = "default_to")]
    to: String,
    #[serde(default)]
    #[allow(dead_code)]
    allow_registry_cache: Option<bool>,
}

fn default_to() -> String {
    "online".to_owned()
}

async fn push(
    State(store): State<Arc<FeatureStore>>,
    Body(request): Body<PushRequest>,
) -> ApiResult<StatusCode> {
    let to = PushTarget::parse(&request.to)?;
    store
        .push(&request.push_source_name, &request.df, to)
        .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
struct WriteRequest {
    feature_view_name: String,
    df: JsonColumns,
    #[serde(default)]
    #[allow(dead_code)]
    allow_registry_cache: Option<bool>,
}

/// Feast answers `null` to writes and materializations (and nothing to pushes).
fn json_null() -> Json<Value> {
    Json(Value::Null)
}

async fn write_to_online_store(
    State(store): State<Arc<FeatureStore>>,
    Body(request): Body<WriteRequest>,
) -> ApiResult<Json<Value>> {
    store
        .write_to_online(&request.feature_view_name, &request.df)
        .await?;
    Ok(json_null())
}

#[derive(Deserialize)]
struct MaterializeRequest {
    #[serde(default)]
    start_ts: Option<String>,
    end_ts: String,
    #[serde(default)]
    feature_views: Option<Vec<String>>,
}

fn timestamp(name: &str, text: &str) -> ApiResult<i64> {
    parse_timestamp(text).ok_or_else(|| {
        bad(format!(
            "`{name}` {text:?} is not a timestamp (e.g. 2025-01-01T00:00:00)"
        ))
    })
}

async fn materialize(
    State(store): State<Arc<FeatureStore>>,
    Body(request): Body<MaterializeRequest>,
) -> ApiResult<Json<Value>> {
    let start = request
        .start_ts
        .as_deref()
        .ok_or_else(|| bad("`start_ts` is required"))?;
    let start = timestamp("start_ts", start)?;
    let end = timestamp("end_ts", &request.end_ts)?;
    store
        .materialize(start, end, request.feature_views.as_deref(), None)
        .await?;
    Ok(json_null())
}

async fn materialize_incremental(
    State(store): State<Arc<FeatureStore>>,
    Body(request): Body<MaterializeRequest>,
) -> ApiResult<Json<Value>> {
    let end = timestamp("end_ts", &request.end_ts)?;
    store
        .materialize_incremental(end, request.feature_views.as_deref(), None)
        .await?;
    Ok(json_null())
}

#[derive(Deserialize)]
struct HistoricalRequest {
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    feature_service: Option<String>,
    /// Column-major entity rows; must hold `event_timestamp`.
    entities: OrderedColumns,
    #[serde(default)]
    full_feature_names: bool,
}

/// Keel's extension: point-in-time retrieval for a small entity table sent
/// as JSON; answers in the online response's shape (`metadata.feature_names`,
/// `results[i].values`), rows in the entity rows' order.
async fn get_historical_features(
    State(store): State<Arc<FeatureStore>>,
    Body(request): Body<HistoricalRequest>,
) -> ApiResult<Response> {
    let selection = selection(request.features, request.feature_service)?;
    let entity = crate::store::entity_batch_from_json(&store, &selection, &request.entities.0)?;
    let store2 = store.clone();
    let full = request.full_feature_names;
    let batch =
        tokio::task::spawn_blocking(move || store2.get_historical(&entity, &selection, full))
            .await
            .map_err(|e| FeatureError::Online(format!("retrieval failed: {e}")))??;
    // The online answer's shape: names in order, then one column of values each.
    let schema = batch.schema();
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    let results: Vec<Value> = batch
        .columns()
        .iter()
        .map(|column| {
            let values: Vec<Value> = (0..batch.num_rows())
                .map(|row| crate::values::arrow_json(column.as_ref(), row))
                .collect();
            json!({ "values": values })
        })
        .collect();
    Ok(Json(json!({ "metadata": { "feature_names": names }, "results": results })).into_response())
}
