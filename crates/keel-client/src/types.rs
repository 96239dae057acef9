//! Responses of MLflow's registry and artifact endpoints as this client reads
//! them. Fields the server may leave out default to empty; they serialize back
//! to the same shape for `--json` output.

use serde::{Deserialize, Serialize};

pub use keel_api::keel as lineage;
pub use keel_api::keel::ModelVersionLineage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RegisteredModelAlias {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub current_stage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    pub tags: Vec<Tag>,
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub latest_versions: Vec<ModelVersion>,
    pub tags: Vec<Tag>,
    pub aliases: Vec<RegisteredModelAlias>,
}

/// One entry of an artifact-proxy listing; `path` is the entry's base name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct RegisteredModelResponse {
    pub registered_model: RegisteredModel,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SearchRegisteredModelsResponse {
    pub registered_models: Vec<RegisteredModel>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ModelVersionResponse {
    pub model_version: ModelVersion,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SearchModelVersionsResponse {
    pub model_versions: Vec<ModelVersion>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct DownloadUriResponse {
    pub artifact_uri: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ListArtifactsResponse {
    pub files: Vec<FileInfo>,
}

/// MLflow's error body; both fields are required to count as one.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error_code: String,
    pub message: String,
}
