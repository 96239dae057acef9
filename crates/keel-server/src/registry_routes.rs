//! MLflow model registry endpoints (`/registered-models/...`,
//! `/model-versions/...`), with the methods MLflow's `get_endpoints()` lists,
//! and `model-versions/get-artifact`, which streams one file of a version
//! through the artifact proxy's store.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use keel_api::mlflow::KeyValue;
use keel_api::registry as w;
use keel_artifacts::RelativeArtifactPath;
use keel_core::tracking::Tag;
use keel_core::KeelError;
use keel_tracking::registry::CreateModelVersion;
use serde_json::{json, Value};

use crate::error::{missing, required, ApiError, ApiResult};
use crate::extract::MlflowRequest;
use crate::run_artifacts::proxied_path;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registered-models/create", post(create_registered_model))
        .route("/registered-models/rename", post(rename_registered_model))
        .route("/registered-models/update", patch(update_registered_model))
        .route(
            "/registered-models/delete",
            axum::routing::delete(delete_registered_model),
        )
        .route("/registered-models/get", get(get_registered_model))
        .route("/registered-models/search", get(search_registered_models))
        .route(
            "/registered-models/get-latest-versions",
            post(get_latest_versions).get(get_latest_versions),
        )
        .route("/registered-models/set-tag", post(set_registered_model_tag))
        .route(
            "/registered-models/delete-tag",
            axum::routing::delete(delete_registered_model_tag),
        )
        .route(
            "/registered-models/alias",
            post(set_alias)
                .delete(delete_alias)
                .get(get_model_version_by_alias),
        )
        .route("/model-versions/create", post(create_model_version))
        .route("/model-versions/update", patch(update_model_version))
        .route(
            "/model-versions/delete",
            axum::routing::delete(delete_model_version),
        )
        .route("/model-versions/get", get(get_model_version))
        .route("/model-versions/search", get(search_model_versions))
        .route("/model-versions/get-download-uri", get(get_download_uri))
        .route("/model-versions/set-tag", post(set_model_version_tag))
        .route(
            "/model-versions/delete-tag",
            axum::routing::delete(delete_model_version_tag),
        )
        .route("/model-versions/transition-stage", post(transition_stage))
        .route(
            "/model-versions/get-artifact",
            get(get_model_version_artifact),
        )
}

fn empty() -> Json<Value> {
    Json(json!({}))
}

fn version_of(version: Option<w::StringOrNumber>) -> ApiResult<String> {
    required(version.map(w::StringOrNumber::into_string), "version")
}

fn tags_in(kvs: Vec<KeyValue>) -> ApiResult<Vec<Tag>> {
    kvs.into_iter()
        .enumerate()
        .map(|(idx, kv)| {
            let key = required(kv.key, &format!("tags[{idx}].key"))?;
            Ok(Tag {
                key,
                value: kv.value.unwrap_or_default(),
            })
        })
        .collect()
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.is_empty())
}

// ------------------------------------------------------------ registered models

async fn create_registered_model(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::CreateRegisteredModel>,
) -> ApiResult<Json<w::RegisteredModelResponse>> {
    let name = required(req.name, "name")?;
    let tags = tags_in(req.tags)?;
    let model = state
        .registry
        .create_registered_model(&name, &tags, non_empty(req.description).as_deref())
        .await?;
    Ok(Json(w::RegisteredModelResponse {
        registered_model: (&model).into(),
    }))
}

async fn get_registered_model(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::RegisteredModelName>,
) -> ApiResult<Json<w::RegisteredModelResponse>> {
    let name = required(req.name, "name")?;
    let model = state.registry.get_registered_model(&name).await?;
    Ok(Json(w::RegisteredModelResponse {
        registered_model: (&model).into(),
    }))
}

async fn rename_registered_model(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::RenameRegisteredModel>,
) -> ApiResult<Json<w::RegisteredModelResponse>> {
    let name = required(req.name, "name")?;
    let new_name = required(req.new_name, "new_name")?;
    let model = state
        .registry
        .rename_registered_model(&name, &new_name)
        .await?;
    Ok(Json(w::RegisteredModelResponse {
        registered_model: (&model).into(),
    }))
}

async fn update_registered_model(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::UpdateRegisteredModel>,
) -> ApiResult<Json<w::RegisteredModelResponse>> {
    let name = required(req.name, "name")?;
    let model = state
        .registry
        .update_registered_model(&name, non_empty(req.description).as_deref())
        .await?;
    Ok(Json(w::RegisteredModelResponse {
        registered_model: (&model).into(),
    }))
}

async fn delete_registered_model(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::RegisteredModelName>,
) -> ApiResult<Json<Value>> {
    let name = required(req.name, "name")?;
    state.registry.delete_registered_model(&name).await?;
    Ok(empty())
}

async fn search_registered_models(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SearchRegistry>,
) -> ApiResult<Json<w::SearchRegisteredModelsResponse>> {
    let page = state
        .registry
        .search_registered_models(
            req.filter.as_deref(),
            &req.order_by,
            req.max_results,
            non_empty(req.page_token),
        )
        .await?;
    Ok(Json(w::SearchRegisteredModelsResponse {
        registered_models: page.items.iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
    }))
}

async fn get_latest_versions(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::GetLatestVersions>,
) -> ApiResult<Json<w::ModelVersionsResponse>> {
    let name = required(req.name, "name")?;
    let versions = state
        .registry
        .get_latest_versions(&name, &req.stages)
        .await?;
    Ok(Json(w::ModelVersionsResponse {
        model_versions: versions.iter().map(Into::into).collect(),
    }))
}

async fn set_registered_model_tag(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SetRegisteredModelTag>,
) -> ApiResult<Json<Value>> {
    let name = required(req.name, "name")?;
    let key = required(req.key, "key")?;
    let tag = Tag {
        key,
        value: req.value.unwrap_or_default(),
    };
    state.registry.set_registered_model_tag(&name, &tag).await?;
    Ok(empty())
}

async fn delete_registered_model_tag(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::DeleteRegisteredModelTag>,
) -> ApiResult<Json<Value>> {
    let name = required(req.name, "name")?;
    let key = required(req.key, "key")?;
    state
        .registry
        .delete_registered_model_tag(&name, &key)
        .await?;
    Ok(empty())
}

// ------------------------------------------------------------ aliases

async fn set_alias(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SetRegisteredModelAlias>,
) -> ApiResult<Json<Value>> {
    let name = required(req.name, "name")?;
    let alias = required(req.alias, "alias")?;
    let version = version_of(req.version)?;
    state
        .registry
        .set_registered_model_alias(&name, &alias, &version)
        .await?;
    Ok(empty())
}

async fn delete_alias(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::RegisteredModelAliasRef>,
) -> ApiResult<Json<Value>> {
    let name = required(req.name, "name")?;
    let alias = required(req.alias, "alias")?;
    state
        .registry
        .delete_registered_model_alias(&name, &alias)
        .await?;
    Ok(empty())
}

async fn get_model_version_by_alias(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::RegisteredModelAliasRef>,
) -> ApiResult<Json<w::ModelVersionResponse>> {
    let name = required(req.name, "name")?;
    let alias = required(req.alias, "alias")?;
    let version = state
        .registry
        .get_model_version_by_alias(&name, &alias)
        .await?;
    Ok(Json(w::ModelVersionResponse {
        model_version: (&version).into(),
    }))
}

// ------------------------------------------------------------ model versions

async fn create_model_version(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::CreateModelVersion>,
) -> ApiResult<Json<w::ModelVersionResponse>> {
    let name = required(req.name, "name")?;
    let source = required(req.source, "source")?;
    let version = state
        .registry
        .create_model_version(CreateModelVersion {
            name,
            source,
            run_id: non_empty(req.run_id),
            model_id: non_empty(req.model_id),
            run_link: non_empty(req.run_link),
            description: non_empty(req.description),
            tags: tags_in(req.tags)?,
        })
        .await?;
    Ok(Json(w::ModelVersionResponse {
        model_version: (&version).into(),
    }))
}

async fn get_model_version(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::ModelVersionRef>,
) -> ApiResult<Json<w::ModelVersionResponse>> {
    let name = required(req.name, "name")?;
    let version = version_of(req.version)?;
    let version = state.registry.get_model_version(&name, &version).await?;
    Ok(Json(w::ModelVersionResponse {
        model_version: (&version).into(),
    }))
}

async fn update_model_version(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::UpdateModelVersion>,
) -> ApiResult<Json<w::ModelVersionResponse>> {
    let name = required(req.name, "name")?;
    let version = version_of(req.version)?;
    let version = state
        .registry
        .update_model_version(&name, &version, non_empty(req.description).as_deref())
        .await?;
    Ok(Json(w::ModelVersionResponse {
        model_version: (&version).into(),
    }))
}

async fn transition_stage(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::TransitionModelVersionStage>,
) -> ApiResult<Json<w::ModelVersionResponse>> {
    let name = required(req.name, "name")?;
    let version = version_of(req.version)?;
    let stage = required(req.stage, "stage")?;
    let archive = match req.archive_existing_versions {
        None => false,
        Some(wire) => wire.to_bool().map_err(KeelError::invalid)?,
    };
    let version = state
        .registry
        .transition_model_version_stage(&name, &version, &stage, archive)
        .await?;
    Ok(Json(w::ModelVersionResponse {
        model_version: (&version).into(),
    }))
}

async fn delete_model_version(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::ModelVersionRef>,
) -> ApiResult<Json<Value>> {
    let name = required(req.name, "name")?;
    let version = version_of(req.version)?;
    state.registry.delete_model_version(&name, &version).await?;
    Ok(empty())
}

async fn search_model_versions(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SearchRegistry>,
) -> ApiResult<Json<w::SearchModelVersionsResponse>> {
    let page = state
        .registry
        .search_model_versions(
            req.filter.as_deref(),
            &req.order_by,
            req.max_results,
            non_empty(req.page_token),
        )
        .await?;
    Ok(Json(w::SearchModelVersionsResponse {
        model_versions: page.items.iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
    }))
}

async fn get_download_uri(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::ModelVersionRef>,
) -> ApiResult<Json<w::DownloadUriResponse>> {
    let name = required(req.name, "name")?;
    let version = version_of(req.version)?;
    let artifact_uri = state
        .registry
        .get_model_version_download_uri(&name, &version)
        .await?;
    Ok(Json(w::DownloadUriResponse { artifact_uri }))
}

async fn set_model_version_tag(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SetModelVersionTag>,
) -> ApiResult<Json<Value>> {
    let name = required(req.name, "name")?;
    let version = version_of(req.version)?;
    let key = required(req.key, "key")?;
    let tag = Tag {
        key,
        value: req.value.unwrap_or_default(),
    };
    state
        .registry
        .set_model_version_tag(&name, &version, &tag)
        .await?;
    Ok(empty())
}

async fn delete_model_version_tag(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::DeleteModelVersionTag>,
) -> ApiResult<Json<Value>> {
    let name = required(req.name, "name")?;
    let version = version_of(req.version)?;
    let key = required(req.key, "key")?;
    state
        .registry
        .delete_model_version_tag(&name, &version, &key)
        .await?;
    Ok(empty())
}

/// Streams `path` of a version's files. Only versions stored behind the
/// artifact proxy (`mlflow-artifacts:`) are served; the server never reads
/// foreign locations on a client's behalf.
pub(crate) async fn get_model_version_artifact(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::GetModelVersionArtifact>,
) -> ApiResult<Response> {
    let name = required(req.name, "name")?;
    let version = version_of(req.version)?;
    let path = req.path.ok_or_else(|| missing("path"))?;
    // Validate the client's part on its own first: a `..` must not cancel a root component.
    let relative = RelativeArtifactPath::parse(&path)?;
    let location = state
        .registry
        .get_model_version_download_uri(&name, &version)
        .await?;
    let root = proxied_path(&location).ok_or_else(|| {
        KeelError::invalid(format!(
            "the files of model version {version} of '{name}' are at {location}, which this \
             server does not serve; download them from there"
        ))
    })?;
    let full = RelativeArtifactPath::parse(root)?.join(relative.as_str())?;
    let download = state.artifacts.get(&full).await?;
    let file_name: String = full
        .file_name()
        .unwrap_or("artifact")
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, download.size)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(Body::from_stream(download.stream))
        .map_err(|err| {
            ApiError::from(KeelError::internal(format!(
                "could not build the download response: {err}"
            )))
        })
}
