//! Server-level endpoints: `/health`, `/version`, `/api/3.0/mlflow/server-info`.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::AppState;

/// The MLflow release whose REST API Keel speaks; `/version` reports it so
/// clients that compare versions behave as with that server.
pub const MLFLOW_COMPATIBLE_VERSION: &str = "3.17.2";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/version", get(|| async { MLFLOW_COMPATIBLE_VERSION }))
        .route("/keel/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .route("/api/3.0/mlflow/server-info", get(server_info))
        .route("/ajax-api/3.0/mlflow/server-info", get(server_info))
}

async fn server_info() -> Json<Value> {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": { "gateway": false },
    }))
}
