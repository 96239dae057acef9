//! Model registry entities (registered models, versions, stages, aliases) and
//! the `RegistryStore` trait every metadata backend implements.
//!
//! Stores enforce what needs the database to be atomic: name uniqueness, version
//! numbering (never reused, even after a delete), alias uniqueness per model,
//! cascades. The registry service validates names, tags, aliases and sources
//! before calling the store.

pub mod search;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::store::Page;
use crate::tracking::Tag;
use crate::{KeelError, Result};

pub use search::{
    parse_model_version_filter, parse_model_version_order_by, parse_registered_model_filter,
    parse_registered_model_order_by, RegistryComparison, RegistryFilter, RegistryKey,
    RegistryOrderBy, RegistryOrderKey, RegistryValue,
};

/// The tag that marks a registered model (or version) as a prompt; searches
/// leave prompts out unless the filter asks for them, as MLflow's do.
pub const IS_PROMPT_TAG_KEY: &str = "mlflow.prompt.is_prompt";

/// The logged-model tag listing the registered versions made from it (MLflow 3).
pub const MODEL_VERSIONS_TAG_KEY: &str = "mlflow.modelVersions";

/// A model version's deployment stage (MLflow's legacy stages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    /// Every stage, in MLflow's order.
    pub const ALL: [Stage; 4] = [
        Stage::None,
        Stage::Staging,
        Stage::Production,
        Stage::Archived,
    ];

    /// The canonical spelling stored and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Whether existing versions in this stage may be archived by a transition
    /// (MLflow's `DEFAULT_STAGES_FOR_GET_LATEST_VERSIONS`).
    pub fn is_active(self) -> bool {
        matches!(self, Stage::Staging | Stage::Production)
    }
}

impl FromStr for Stage {
    type Err = KeelError;
    /// Case-insensitive, as MLflow's `get_canonical_stage`.
    fn from_str(s: &str) -> Result<Self> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                KeelError::invalid(format!(
                    "Invalid Model Version stage: {s}. Value must be one of None, Staging, Production, Archived."
                ))
            })
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alias of a registered model and the version it points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredModelAlias {
    pub alias: String,
    pub version: i64,
}

/// One version of a registered model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub description: Option<String>,
    pub current_stage: Stage,
    /// The source the version was registered from, as the client gave it.
    pub source: String,
    /// Where the version's files are: what `get-download-uri` answers.
    pub storage_location: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    /// MLflow 3: the logged model this version was made from.
    pub model_id: Option<String>,
    pub tags: Vec<Tag>,
    /// The aliases pointing to this version, sorted.
    pub aliases: Vec<String>,
}

/// A registered model with its tags, aliases and latest version per stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    pub description: Option<String>,
    /// The highest version in each stage, in version order.
    pub latest_versions: Vec<ModelVersion>,
    pub tags: Vec<Tag>,
    /// Sorted by alias.
    pub aliases: Vec<RegisteredModelAlias>,
}

/// A version to create; the store picks the number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub storage_location: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub model_id: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegisteredModelSearch {
    pub filter: RegistryFilter,
    pub order_by: Vec<RegistryOrderBy>,
    pub max_results: u32,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelVersionSearch {
    pub filter: RegistryFilter,
    pub order_by: Vec<RegistryOrderBy>,
    pub max_results: u32,
    pub page_token: Option<String>,
}

/// MLflow's message for a registered model that does not exist.
pub fn registered_model_not_found(name: &str) -> KeelError {
    KeelError::not_found(format!("Registered Model with name={name} not found"))
}

/// MLflow's message for a model version that does not exist.
pub fn model_version_not_found(name: &str, version: i64) -> KeelError {
    KeelError::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}

/// MLflow's message for a registered model name already in use.
pub fn registered_model_exists(name: &str) -> KeelError {
    KeelError::already_exists(format!("Registered Model (name={name}) already exists."))
}

/// The model registry's metadata store. Names and versions given to it are
/// validated; it answers `RESOURCE_DOES_NOT_EXIST` for missing models and
/// versions with MLflow's messages.
#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    // --- registered models ---
    async fn create_registered_model(
        &self,
        name: &str,
        tags: &[Tag],
        description: Option<&str>,
    ) -> Result<RegisteredModel>;
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel>;
    /// Sets (or, with `None`, clears) the description.
    async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel>;
    /// Renames a model; its versions, tags and aliases follow it.
    async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel>;
    /// Deletes a model with its versions, tags and aliases.
    async fn delete_registered_model(&self, name: &str) -> Result<()>;
    async fn search_registered_models(
        &self,
        search: &RegisteredModelSearch,
    ) -> Result<Page<RegisteredModel>>;
    /// The highest version in each of `stages` (every stage when empty), in version order.
    async fn get_latest_versions(&self, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>>;
    async fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()>;
    /// Deleting a tag the model does not have succeeds, as in MLflow.
    async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()>;

    // --- model versions ---
    /// Creates the next version of a model: one more than the highest version
    /// the model ever had.
    async fn create_model_version(&self, new_version: &NewModelVersion) -> Result<ModelVersion>;
    async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion>;
    /// Sets (or, with `None`, clears) the description.
    async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<ModelVersion>;
    /// Moves a version to `stage`; with `archive_existing_versions`, the other
    /// versions in that stage move to `Archived`.
    async fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion>;
    /// Deletes a version, its tags and the aliases pointing to it. Its number is not reused.
    async fn delete_model_version(&self, name: &str, version: i64) -> Result<()>;
    async fn search_model_versions(
        &self,
        search: &ModelVersionSearch,
    ) -> Result<Page<ModelVersion>>;
    async fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<()>;
    /// Deleting a tag the version does not have succeeds, as in MLflow.
    async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()>;

    // --- aliases ---
    /// Points `alias` at `version`, moving it if it pointed elsewhere.
    async fn set_registered_model_alias(&self, name: &str, alias: &str, version: i64)
        -> Result<()>;
    /// Deleting an alias the model does not have succeeds, as in MLflow.
    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()>;
    /// The version `alias` points to; `INVALID_PARAMETER_VALUE` when the alias
    /// does not exist (MLflow's code).
    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_case_insensitively() {
        assert_eq!("production".parse::<Stage>().unwrap(), Stage::Production);
        assert_eq!("NONE".parse::<Stage>().unwrap(), Stage::None);
        assert_eq!("Archived".parse::<Stage>().unwrap(), Stage::Archived);
        let err = "prod".parse::<Stage>().unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::InvalidParameterValue);
        assert!(
            err.message.contains("None, Staging, Production, Archived"),
            "{}",
            err.message
        );
    }

    #[test]
    fn only_staging_and_production_are_active() {
        let active: Vec<Stage> = Stage::ALL.into_iter().filter(|s| s.is_active()).collect();
        assert_eq!(active, vec![Stage::Staging, Stage::Production]);
    }
}
