//! Keel's lineage API: one call from a registered model version to the logged
//! model, run, params, metrics and datasets that produced it.
//!
//! `GET /api/keel/v1/lineage/model-versions/{name}/{version}` where `{version}`
//! is a version number (`3`) or an alias prefixed with `@` (`@champion`;
//! `@latest` is the highest version). Model names cannot contain `/`, so the
//! two segments are unambiguous; percent-encode names with spaces or `@`.
//! Errors are MLflow's error JSON: 404 `RESOURCE_DOES_NOT_EXIST` for an unknown
//! model, version or alias, 400 `INVALID_PARAMETER_VALUE` for a malformed version.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use keel_api::keel as w;
use keel_core::ErrorCode;
use keel_tracking::lineage::{LineageService, ModelVersionLineage, VersionSelector};

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/keel/v1/lineage/model-versions/{name}/{version}",
        get(model_version_lineage),
    )
}

async fn model_version_lineage(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<w::ModelVersionLineage>> {
    let Path((name, version)) = path.map_err(|rejection| {
        ApiError::with_status(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            rejection.body_text(),
        )
    })?;
    let selector = VersionSelector::parse(&version)?;
    let lineage = LineageService::new(state.tracking.clone(), state.registry.clone())
        .model_version_lineage(&name, &selector)
        .await?;
    Ok(Json(to_wire(&lineage)))
}

fn to_wire(lineage: &ModelVersionLineage) -> w::ModelVersionLineage {
    w::ModelVersionLineage {
        model_version: (&lineage.model_version).into(),
        logged_model: lineage.logged_model.as_ref().map(Into::into),
        run: lineage
            .run
            .as_ref()
            .map(|run| w::LineageRun::new(run, lineage.experiment_name.clone())),
        notes: lineage.notes.clone(),
    }
}
