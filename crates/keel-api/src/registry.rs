//! MLflow model registry wire types (requests and responses) and their
//! conversions from `keel_core::registry`.

use keel_core::registry as domain;
use serde::{Deserialize, Serialize};

use crate::json::{deserialize_opt_i64, deserialize_string_list};
use crate::mlflow::KeyValue;

// ---------------------------------------------------------------- entities

#[derive(Debug, Clone, Serialize)]
pub struct RegisteredModelAlias {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

/// Every version Keel registers is immediately usable: the files stay where
/// the source put them.
const STATUS_READY: &str = "READY";

impl From<&domain::ModelVersion> for ModelVersion {
    fn from(v: &domain::ModelVersion) -> Self {
        ModelVersion {
            name: v.name.clone(),
            version: v.version.to_string(),
            creation_timestamp: v.creation_timestamp,
            last_updated_timestamp: v.last_updated_timestamp,
            current_stage: v.current_stage.as_str().to_string(),
            description: v.description.clone(),
            source: v.source.clone(),
            run_id: v.run_id.clone(),
            status: STATUS_READY.to_string(),
            run_link: v.run_link.clone(),
            tags: v.tags.iter().map(KeyValue::from).collect(),
            aliases: v.aliases.clone(),
            model_id: v.model_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<RegisteredModelAlias>,
}

impl From<&domain::RegisteredModel> for RegisteredModel {
    fn from(m: &domain::RegisteredModel) -> Self {
        RegisteredModel {
            name: m.name.clone(),
            creation_timestamp: m.creation_timestamp,
            last_updated_timestamp: m.last_updated_timestamp,
            description: m.description.clone(),
            latest_versions: m.latest_versions.iter().map(ModelVersion::from).collect(),
            tags: m.tags.iter().map(KeyValue::from).collect(),
            aliases: m
                .aliases
                .iter()
                .map(|a| RegisteredModelAlias {
                    alias: a.alias.clone(),
                    version: a.version.to_string(),
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------- requests

/// A string field that clients may also send as a number (`"version": 1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StringOrNumber {
    String(String),
    Integer(i64),
    Float(f64),
}

impl StringOrNumber {
    pub fn into_string(self) -> String {
        match self {
            StringOrNumber::String(text) => text,
            StringOrNumber::Integer(number) => number.to_string(),
            StringOrNumber::Float(number) => number.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CreateRegisteredModel {
    pub name: Option<String>,
    pub tags: Vec<KeyValue>,
    pub description: Option<String>,
}

/// Requests that name a registered model only (get, delete).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RegisteredModelName {
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RenameRegisteredModel {
    pub name: Option<String>,
    pub new_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UpdateRegisteredModel {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SearchRegistry {
    pub filter: Option<String>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub max_results: Option<i64>,
    #[serde(deserialize_with = "deserialize_string_list")]
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct GetLatestVersions {
    pub name: Option<String>,
    #[serde(deserialize_with = "deserialize_string_list")]
    pub stages: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SetRegisteredModelTag {
    pub name: Option<String>,
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DeleteRegisteredModelTag {
    pub name: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CreateModelVersion {
    pub name: Option<String>,
    pub source: Option<String>,
    pub run_id: Option<String>,
    pub tags: Vec<KeyValue>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub model_id: Option<String>,
}

/// Requests that name one version (get, delete, get-download-uri).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ModelVersionRef {
    pub name: Option<String>,
    pub version: Option<StringOrNumber>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UpdateModelVersion {
    pub name: Option<String>,
    pub version: Option<StringOrNumber>,
    pub description: Option<String>,
}

/// `archive_existing_versions` as a JSON bool, or as `"true"`/`"false"` from a query string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BoolWire {
    Bool(bool),
    Text(String),
}

impl BoolWire {
    pub fn to_bool(&self) -> Result<bool, String> {
        match self {
            BoolWire::Bool(value) => Ok(*value),
            BoolWire::Text(text) => match text.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("invalid boolean value '{text}'")),
            },
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TransitionModelVersionStage {
    pub name: Option<String>,
    pub version: Option<StringOrNumber>,
    pub stage: Option<String>,
    pub archive_existing_versions: Option<BoolWire>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SetModelVersionTag {
    pub name: Option<String>,
    pub version: Option<StringOrNumber>,
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DeleteModelVersionTag {
    pub name: Option<String>,
    pub version: Option<StringOrNumber>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SetRegisteredModelAlias {
    pub name: Option<String>,
    pub alias: Option<String>,
    pub version: Option<StringOrNumber>,
}

/// Requests that name an alias of a model (delete, get-by-alias).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RegisteredModelAliasRef {
    pub name: Option<String>,
    pub alias: Option<String>,
}

/// The `get-artifact` query: a file of one version's artifacts.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct GetModelVersionArtifact {
    pub name: Option<String>,
    pub version: Option<StringOrNumber>,
    pub path: Option<String>,
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Serialize)]
pub struct RegisteredModelResponse {
    pub registered_model: RegisteredModel,
}

#[derive(Debug, Serialize)]
pub struct SearchRegisteredModelsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registered_models: Vec<RegisteredModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ModelVersionResponse {
    pub model_version: ModelVersion,
}

#[derive(Debug, Serialize)]
pub struct ModelVersionsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_versions: Vec<ModelVersion>,
}

#[derive(Debug, Serialize)]
pub struct SearchModelVersionsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DownloadUriResponse {
    pub artifact_uri: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::registry::Stage;
    use keel_core::tracking::Tag;

    fn version() -> domain::ModelVersion {
        domain::ModelVersion {
            name: "m".into(),
            version: 3,
            creation_timestamp: 10,
            last_updated_timestamp: 20,
            description: None,
            current_stage: Stage::Staging,
            source: "models:/m-1".into(),
            storage_location: "mlflow-artifacts:/1/models/m-1/artifacts".into(),
            run_id: Some("r".into()),
            run_link: None,
            model_id: Some("m-1".into()),
            tags: vec![Tag::new("k", "v")],
            aliases: vec!["champion".into()],
        }
    }

    #[test]
    fn model_version_json_has_string_version_and_omits_unset_fields() {
        let json = serde_json::to_value(ModelVersion::from(&version())).unwrap();
        assert_eq!(json["version"], "3");
        assert_eq!(json["current_stage"], "Staging");
        assert_eq!(json["status"], "READY");
        assert_eq!(json["aliases"][0], "champion");
        assert_eq!(json["model_id"], "m-1");
        assert!(json.get("description").is_none());
        assert!(json.get("run_link").is_none());
        assert!(json.get("storage_location").is_none());
    }

    #[test]
    fn registered_model_aliases_carry_string_versions() {
        let model = domain::RegisteredModel {
            name: "m".into(),
            creation_timestamp: 1,
            last_updated_timestamp: 2,
            description: Some("d".into()),
            latest_versions: vec![version()],
            tags: vec![],
            aliases: vec![domain::RegisteredModelAlias {
                alias: "champion".into(),
                version: 3,
            }],
        };
        let json = serde_json::to_value(RegisteredModel::from(&model)).unwrap();
        assert_eq!(json["aliases"][0]["version"], "3");
        assert_eq!(json["latest_versions"][0]["version"], "3");
        assert!(json.get("tags").is_none());
    }

    #[test]
    fn versions_and_bools_accept_both_spellings() {
        let req: TransitionModelVersionStage = serde_json::from_value(serde_json::json!({
            "name": "m", "version": 2, "stage": "production", "archive_existing_versions": "true"
        }))
        .unwrap();
        assert_eq!(req.version.unwrap().into_string(), "2");
        assert_eq!(req.archive_existing_versions.unwrap().to_bool(), Ok(true));
    }
}
