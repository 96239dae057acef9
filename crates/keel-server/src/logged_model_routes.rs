//! MLflow 3 logged-model endpoints (`/logged-models...`), which
//! `mlflow.<flavor>.log_model` calls before and after uploading a model.

use axum::extract::{Path, State};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use keel_api::mlflow as w;
use keel_core::search::{self, OrderBy};
use keel_core::store::{LoggedModelSearch, NewLoggedModel};
use keel_core::tracking::{Param, Tag};
use keel_core::KeelError;
use serde_json::{json, Value};

use crate::error::{required, ApiResult};
use crate::extract::MlflowRequest;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/logged-models", post(create_logged_model))
        .route("/logged-models/search", post(search_logged_models))
        .route(
            "/logged-models/{model_id}",
            get(get_logged_model)
                .patch(finalize_logged_model)
                .delete(delete_logged_model),
        )
        .route(
            "/logged-models/{model_id}/tags",
            patch(set_logged_model_tags),
        )
        .route(
            "/logged-models/{model_id}/tags/{tag_key}",
            delete(delete_logged_model_tag),
        )
        .route(
            "/logged-models/{model_id}/params",
            post(log_logged_model_params),
        )
        .route(
            "/logged-models/{model_id}/artifacts/directories",
            get(list_logged_model_artifacts),
        )
}

fn key_values(kvs: Vec<w::KeyValue>, field: &str) -> ApiResult<Vec<Tag>> {
    kvs.into_iter()
        .enumerate()
        .map(|(idx, kv)| {
            Ok(Tag {
                key: required(kv.key, &format!("{field}[{idx}].key"))?,
                value: kv.value.unwrap_or_default(),
            })
        })
        .collect()
}

fn to_params(tags: Vec<Tag>) -> Vec<Param> {
    tags.into_iter()
        .map(|t| Param {
            key: t.key,
            value: t.value,
        })
        .collect()
}

async fn create_logged_model(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::CreateLoggedModel>,
) -> ApiResult<Json<w::LoggedModelResponse>> {
    let experiment_id = required(req.experiment_id, "experiment_id")?;
    let name = req
        .name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "model".to_string());
    let model = state
        .tracking
        .create_logged_model(NewLoggedModel {
            experiment_id,
            name,
            model_type: req.model_type.filter(|t| !t.is_empty()),
            source_run_id: req.source_run_id.filter(|r| !r.is_empty()),
            params: to_params(key_values(req.params, "params")?),
            tags: key_values(req.tags, "tags")?,
        })
        .await?;
    Ok(Json(w::LoggedModelResponse {
        model: (&model).into(),
    }))
}

async fn get_logged_model(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
) -> ApiResult<Json<w::LoggedModelResponse>> {
    let model = state.tracking.get_logged_model(&model_id).await?;
    Ok(Json(w::LoggedModelResponse {
        model: (&model).into(),
    }))
}

async fn finalize_logged_model(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    MlflowRequest(req): MlflowRequest<w::FinalizeLoggedModel>,
) -> ApiResult<Json<w::LoggedModelResponse>> {
    let status = req
        .status
        .ok_or_else(|| crate::error::missing("status"))?
        .to_domain()
        .map_err(KeelError::invalid)?;
    let model = state
        .tracking
        .finalize_logged_model(&model_id, status)
        .await?;
    Ok(Json(w::LoggedModelResponse {
        model: (&model).into(),
    }))
}

async fn delete_logged_model(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
) -> ApiResult<Json<Value>> {
    state.tracking.delete_logged_model(&model_id).await?;
    Ok(Json(json!({})))
}

async fn set_logged_model_tags(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    MlflowRequest(req): MlflowRequest<w::SetLoggedModelTags>,
) -> ApiResult<Json<w::LoggedModelResponse>> {
    let tags = key_values(req.tags, "tags")?;
    let model = state
        .tracking
        .set_logged_model_tags(&model_id, &tags)
        .await?;
    Ok(Json(w::LoggedModelResponse {
        model: (&model).into(),
    }))
}

async fn delete_logged_model_tag(
    State(state): State<AppState>,
    Path((model_id, tag_key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    state
        .tracking
        .delete_logged_model_tag(&model_id, &tag_key)
        .await?;
    Ok(Json(json!({})))
}

async fn log_logged_model_params(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    MlflowRequest(req): MlflowRequest<w::LogLoggedModelParams>,
) -> ApiResult<Json<Value>> {
    let params = to_params(key_values(req.params, "params")?);
    state
        .tracking
        .log_logged_model_params(&model_id, &params)
        .await?;
    Ok(Json(json!({})))
}

async fn search_logged_models(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SearchLoggedModels>,
) -> ApiResult<Json<w::SearchLoggedModelsResponse>> {
    let mut order_by: Vec<OrderBy> = Vec::with_capacity(req.order_by.len());
    for clause in req.order_by {
        let field = required(clause.field_name, "order_by.field_name")?;
        let direction = if clause.ascending.unwrap_or(true) {
            "ASC"
        } else {
            "DESC"
        };
        let mut parsed = search::parse_logged_model_order_by(&[format!("{field} {direction}")])?;
        for item in &mut parsed {
            item.dataset_name = clause.dataset_name.clone().filter(|s| !s.is_empty());
            item.dataset_digest = clause.dataset_digest.clone().filter(|s| !s.is_empty());
        }
        order_by.extend(parsed);
    }
    let datasets = req
        .datasets
        .into_iter()
        .filter_map(|d| {
            d.dataset_name
                .filter(|n| !n.is_empty())
                .map(|n| (n, d.dataset_digest.filter(|s| !s.is_empty())))
        })
        .collect();
    let search = LoggedModelSearch {
        experiment_ids: req.experiment_ids,
        order_by,
        datasets,
        page_token: req.page_token.filter(|t| !t.is_empty()),
        ..Default::default()
    };
    let page = state
        .tracking
        .search_logged_models(search, req.filter.as_deref(), req.max_results)
        .await?;
    Ok(Json(w::SearchLoggedModelsResponse {
        models: page.items.iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
    }))
}

async fn list_logged_model_artifacts(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    MlflowRequest(req): MlflowRequest<w::ListArtifacts>,
) -> ApiResult<Json<w::ListArtifactsResponse>> {
    let model = state.tracking.get_logged_model(&model_id).await?;
    let root_uri = model.artifact_location.clone();
    let relative = req.path.unwrap_or_default();
    let files = crate::run_artifacts::list_run_artifacts(&state, &root_uri, &relative).await?;
    Ok(Json(w::ListArtifactsResponse {
        root_uri,
        files,
        next_page_token: None,
    }))
}
