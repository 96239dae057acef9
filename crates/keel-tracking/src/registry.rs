//! `RegistryService`: the model registry's rules in front of an
//! `Arc<dyn RegistryStore>` — MLflow's name, tag, alias and version checks,
//! search limits, and source validation (see `source.rs`) against the
//! tracking store's runs and logged models. Successful writes emit MLflow's
//! webhook events through an optional `WebhookDispatcher`.

pub mod source;

use std::sync::Arc;

use keel_core::registry::{
    parse_model_version_filter, parse_model_version_order_by, parse_registered_model_filter,
    parse_registered_model_order_by, ModelVersion, ModelVersionSearch, NewModelVersion,
    RegisteredModel, RegisteredModelSearch, RegistryStore, Stage, IS_PROMPT_TAG_KEY,
    MODEL_VERSIONS_TAG_KEY,
};
use keel_core::store::{Page, TrackingStore};
use keel_core::tracking::Tag;
use keel_core::webhooks::WebhookEvent;
use keel_core::{KeelError, Result};

use self::source::{ResolvedSource, SourceRequest, PROMPT_SOURCE_PLACEHOLDERS};
use crate::validation::{self as v};
use crate::webhooks::{EventPayload, TagMap, WebhookDispatcher};

/// MLflow's defaults and limits on registry search pages.
pub const SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT: u32 = 100;
pub const SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD: u32 = 1000;
pub const SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT: u32 = 200_000;
pub const SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD: u32 = 200_000;
pub const MAX_MODEL_REGISTRY_TAG_KEY_LENGTH: usize = 250;
pub const MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
pub const MAX_REGISTERED_MODEL_ALIAS_LENGTH: usize = 255;

/// Validates registry requests and calls the registry store.
#[derive(Clone)]
pub struct RegistryService {
    registry: Arc<dyn RegistryStore>,
    tracking: Arc<dyn TrackingStore>,
    webhooks: WebhookDispatcher,
}

/// A `create-model-version` request after the wire layer.
#[derive(Debug, Clone, Default)]
pub struct CreateModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

fn missing(field: &str) -> KeelError {
    KeelError::invalid(format!("Missing value for required parameter '{field}'."))
}

/// MLflow's `_validate_model_name`.
pub fn validate_model_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(missing("name"));
    }
    if name.contains('/') || name.contains(':') {
        return Err(KeelError::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    if name == "." || name.starts_with("..") {
        return Err(KeelError::invalid(format!(
            "Invalid value \"{name}\" for parameter 'name' supplied. Names may be treated as files \
             in certain cases, and must not resolve to other names when treated as such."
        )));
    }
    Ok(())
}

/// MLflow's `_validate_registered_model_tag` / `_validate_model_version_tag`.
pub fn validate_registry_tag(tag: &Tag) -> Result<()> {
    v::validate_key_name(&tag.key, "key")?;
    v::validate_length("key", MAX_MODEL_REGISTRY_TAG_KEY_LENGTH, &tag.key)?;
    v::validate_length("value", MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, &tag.value)
}

/// MLflow's `_validate_model_alias_name`: word characters and dashes, at most 255.
pub fn validate_alias_name(alias: &str) -> Result<()> {
    if alias.is_empty() {
        return Err(KeelError::invalid(
            "Registered model alias name cannot be empty.",
        ));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(KeelError::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    v::validate_length(
        "Registered model alias name",
        MAX_REGISTERED_MODEL_ALIAS_LENGTH,
        alias,
    )
}

/// MLflow's `_validate_model_alias_name_reserved`: `latest` and `v<digits>` name versions.
pub fn validate_alias_not_reserved(alias: &str) -> Result<()> {
    if alias.eq_ignore_ascii_case("latest") {
        return Err(KeelError::invalid(
            "'latest' alias name (case insensitive) is reserved.",
        ));
    }
    let mut chars = alias.chars();
    let version_like = matches!(chars.next(), Some('v' | 'V'))
        && alias.len() > 1
        && chars.all(|c| c.is_ascii_digit());
    if version_like {
        return Err(KeelError::invalid(format!(
            "Version alias name '{alias}' is reserved."
        )));
    }
    Ok(())
}

/// A version number given as a string (MLflow's `_validate_model_version`).
pub fn parse_version(version: &str) -> Result<i64> {
    version.trim().parse::<i64>().map_err(|_| {
        KeelError::invalid(format!(
            "Parameter 'version' must be an integer, got '{version}'."
        ))
    })
}

fn page_size(max_results: Option<i64>, default: u32, limit: u32) -> Result<u32> {
    match max_results {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 => Err(KeelError::invalid(format!(
            "Invalid value for max_results. It must be a positive integer, but got {n}"
        ))),
        Some(n) if n > i64::from(limit) => Err(KeelError::invalid(format!(
            "Invalid value for request parameter max_results. It must be at most {limit}, but got value {n}"
        ))),
        Some(n) => Ok(n as u32),
    }
}

fn is_prompt(tags: &[Tag]) -> bool {
    tags.iter()
        .rev()
        .find(|tag| tag.key == IS_PROMPT_TAG_KEY)
        .is_some_and(|tag| tag.value.eq_ignore_ascii_case("true"))
}

impl RegistryService {
    pub fn new(registry: Arc<dyn RegistryStore>, tracking: Arc<dyn TrackingStore>) -> Self {
        RegistryService {
            registry,
            tracking,
            webhooks: WebhookDispatcher::disabled(),
        }
    }

    /// Emits webhook events through `dispatcher` after successful writes.
    pub fn with_webhooks(mut self, dispatcher: WebhookDispatcher) -> Self {
        self.webhooks = dispatcher;
        self
    }

    /// Emits a tag or alias event unless the model is a prompt (MLflow sends
    /// prompt events for those, which Keel does not emit). The lookup runs in
    /// a task of its own so the request does not wait for it.
    fn emit_unless_prompt(&self, name: &str, event: WebhookEvent, payload: EventPayload) {
        if !self.webhooks.is_enabled() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let registry = Arc::clone(&self.registry);
        let dispatcher = self.webhooks.clone();
        let name = name.to_string();
        runtime.spawn(async move {
            match registry.get_registered_model(&name).await {
                Ok(model) if is_prompt(&model.tags) => {}
                _ => dispatcher.emit(event, payload),
            }
        });
    }

    pub fn store(&self) -> &Arc<dyn RegistryStore> {
        &self.registry
    }

    // ------------------------------------------------------------ registered models

    pub async fn create_registered_model(
        &self,
        name: &str,
        tags: &[Tag],
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        validate_model_name(name)?;
        for tag in tags {
            validate_registry_tag(tag)?;
        }
        let model = self
            .registry
            .create_registered_model(name, tags, description)
            .await?;
        if !is_prompt(tags) {
            // MLflow sends the request's description, an empty string when unset.
            self.webhooks.emit(
                WebhookEvent::REGISTERED_MODEL_CREATED,
                EventPayload::RegisteredModelCreated {
                    name: name.to_string(),
                    tags: TagMap::new(tags),
                    description: Some(description.unwrap_or_default().to_string()),
                },
            );
        }
        Ok(model)
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        validate_model_name(name)?;
        self.registry.get_registered_model(name).await
    }

    pub async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        validate_model_name(name)?;
        self.registry
            .update_registered_model(name, description)
            .await
    }

    pub async fn rename_registered_model(
        &self,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel> {
        validate_model_name(name)?;
        if new_name.trim().is_empty() {
            return Err(missing("new_name"));
        }
        validate_model_name(new_name)?;
        self.registry.rename_registered_model(name, new_name).await
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        validate_model_name(name)?;
        self.registry.delete_registered_model(name).await
    }

    pub async fn search_registered_models(
        &self,
        filter: Option<&str>,
        order_by: &[String],
        max_results: Option<i64>,
        page_token: Option<String>,
    ) -> Result<Page<RegisteredModel>> {
        let search = RegisteredModelSearch {
            max_results: page_size(
                max_results,
                SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
                SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
            )?,
            filter: parse_registered_model_filter(filter.unwrap_or(""))?,
            order_by: parse_registered_model_order_by(order_by)?,
            page_token,
        };
        self.registry.search_registered_models(&search).await
    }

    pub async fn get_latest_versions(
        &self,
        name: &str,
        stages: &[String],
    ) -> Result<Vec<ModelVersion>> {
        validate_model_name(name)?;
        let stages = stages
            .iter()
            .map(|stage| stage.parse())
            .collect::<Result<Vec<Stage>>>()?;
        self.registry.get_latest_versions(name, &stages).await
    }

    pub async fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()> {
        validate_model_name(name)?;
        validate_registry_tag(tag)?;
        self.registry.set_registered_model_tag(name, tag).await
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        validate_model_name(name)?;
        v::validate_key_name(key, "key")?;
        self.registry.delete_registered_model_tag(name, key).await
    }

    // ------------------------------------------------------------ model versions

    pub async fn create_model_version(&self, request: CreateModelVersion) -> Result<ModelVersion> {
        validate_model_name(&request.name)?;
        for tag in &request.tags {
            validate_registry_tag(tag)?;
        }
        if let Some(run_id) = &request.run_id {
            v::validate_run_id(run_id)?;
        }
        let prompt = is_prompt(&request.tags);
        let resolved = if prompt {
            if !PROMPT_SOURCE_PLACEHOLDERS.contains(&request.source.as_str()) {
                return Err(KeelError::invalid(format!(
                    "Invalid prompt source: '{}'. Prompt sources must use an MLflow placeholder.",
                    request.source
                )));
            }
            ResolvedSource {
                source: request.source.clone(),
                storage_location: request.source.clone(),
                run_id: request.run_id.clone(),
                model_id: request.model_id.clone(),
            }
        } else {
            self.resolve_source(&SourceRequest {
                source: &request.source,
                run_id: request.run_id.as_deref(),
                model_id: request.model_id.as_deref(),
            })
            .await?
        };
        let version = self
            .registry
            .create_model_version(&NewModelVersion {
                name: request.name.clone(),
                source: resolved.source,
                storage_location: resolved.storage_location,
                run_id: resolved.run_id,
                run_link: request.run_link.filter(|link| !link.is_empty()),
                model_id: resolved.model_id,
                description: request.description.clone(),
                tags: request.tags.clone(),
            })
            .await?;
        if let Some(model_id) = &version.model_id {
            self.record_version_on_logged_model(model_id, &version)
                .await?;
        }
        if !prompt {
            self.webhooks.emit(
                WebhookEvent::MODEL_VERSION_CREATED,
                EventPayload::ModelVersionCreated {
                    name: version.name.clone(),
                    version: version.version.to_string(),
                    source: version.source.clone(),
                    run_id: version.run_id.clone(),
                    tags: TagMap::new(&request.tags),
                    description: request.description.filter(|text| !text.is_empty()),
                },
            );
        }
        Ok(version)
    }

    /// MLflow 3 lists a logged model's registered versions in its
    /// `mlflow.modelVersions` tag (a JSON list of `{name, version}`).
    async fn record_version_on_logged_model(
        &self,
        model_id: &str,
        version: &ModelVersion,
    ) -> Result<()> {
        let model = self.tracking.get_logged_model(model_id).await?;
        let entry =
            serde_json::json!({"name": version.name, "version": version.version.to_string()});
        let mut entries: Vec<serde_json::Value> = model
            .tags
            .iter()
            .find(|tag| tag.key == MODEL_VERSIONS_TAG_KEY)
            .and_then(|tag| serde_json::from_str(&tag.value).ok())
            .unwrap_or_default();
        if !entries.contains(&entry) {
            entries.push(entry);
        }
        let value = serde_json::Value::Array(entries).to_string();
        self.tracking
            .set_logged_model_tags(model_id, &[Tag::new(MODEL_VERSIONS_TAG_KEY, value)])
            .await
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        validate_model_name(name)?;
        self.registry
            .get_model_version(name, parse_version(version)?)
            .await
    }

    pub async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: Option<&str>,
    ) -> Result<ModelVersion> {
        validate_model_name(name)?;
        self.registry
            .update_model_version(name, parse_version(version)?, description)
            .await
    }

    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion> {
        validate_model_name(name)?;
        let version = parse_version(version)?;
        let stage: Stage = stage.parse()?;
        if archive_existing_versions && !stage.is_active() {
            return Err(KeelError::invalid(format!(
                "Model version transition cannot archive existing model versions because '{stage}' \
                 is not an Active stage. Valid stages are ['Staging', 'Production']"
            )));
        }
        self.registry
            .transition_model_version_stage(name, version, stage, archive_existing_versions)
            .await
    }

    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        validate_model_name(name)?;
        self.registry
            .delete_model_version(name, parse_version(version)?)
            .await
    }

    pub async fn search_model_versions(
        &self,
        filter: Option<&str>,
        order_by: &[String],
        max_results: Option<i64>,
        page_token: Option<String>,
    ) -> Result<Page<ModelVersion>> {
        let search = ModelVersionSearch {
            max_results: page_size(
                max_results,
                SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
                SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
            )?,
            filter: parse_model_version_filter(filter.unwrap_or(""))?,
            order_by: parse_model_version_order_by(order_by)?,
            page_token,
        };
        self.registry.search_model_versions(&search).await
    }

    /// Where a client downloads the version's files from.
    pub async fn get_model_version_download_uri(
        &self,
        name: &str,
        version: &str,
    ) -> Result<String> {
        Ok(self
            .get_model_version(name, version)
            .await?
            .storage_location)
    }

    pub async fn set_model_version_tag(&self, name: &str, version: &str, tag: &Tag) -> Result<()> {
        validate_model_name(name)?;
        let version = parse_version(version)?;
        validate_registry_tag(tag)?;
        self.registry
            .set_model_version_tag(name, version, tag)
            .await?;
        self.emit_unless_prompt(
            name,
            WebhookEvent::MODEL_VERSION_TAG_SET,
            EventPayload::ModelVersionTagSet {
                name: name.to_string(),
                version: version.to_string(),
                key: tag.key.clone(),
                value: tag.value.clone(),
            },
        );
        Ok(())
    }

    pub async fn delete_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<()> {
        validate_model_name(name)?;
        let version = parse_version(version)?;
        v::validate_key_name(key, "key")?;
        self.registry
            .delete_model_version_tag(name, version, key)
            .await?;
        self.emit_unless_prompt(
            name,
            WebhookEvent::MODEL_VERSION_TAG_DELETED,
            EventPayload::ModelVersionTagDeleted {
                name: name.to_string(),
                version: version.to_string(),
                key: key.to_string(),
            },
        );
        Ok(())
    }

    // ------------------------------------------------------------ aliases

    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        validate_model_name(name)?;
        validate_alias_name(alias)?;
        validate_alias_not_reserved(alias)?;
        let version = parse_version(version)?;
        self.registry
            .set_registered_model_alias(name, alias, version)
            .await?;
        self.emit_unless_prompt(
            name,
            WebhookEvent::MODEL_VERSION_ALIAS_CREATED,
            EventPayload::ModelVersionAliasCreated {
                name: name.to_string(),
                alias: alias.to_string(),
                version: version.to_string(),
            },
        );
        Ok(())
    }

    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        validate_model_name(name)?;
        validate_alias_name(alias)?;
        self.registry
            .delete_registered_model_alias(name, alias)
            .await?;
        self.emit_unless_prompt(
            name,
            WebhookEvent::MODEL_VERSION_ALIAS_DELETED,
            EventPayload::ModelVersionAliasDeleted {
                name: name.to_string(),
                alias: alias.to_string(),
            },
        );
        Ok(())
    }

    /// The version an alias points to; `latest` is the highest version.
    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion> {
        validate_model_name(name)?;
        validate_alias_name(alias)?;
        if alias.eq_ignore_ascii_case("latest") {
            return self.latest_version(name, &[]).await;
        }
        self.registry.get_model_version_by_alias(name, alias).await
    }

    /// The highest version among the latest of `stages` (every stage when empty).
    async fn latest_version(&self, name: &str, stages: &[Stage]) -> Result<ModelVersion> {
        self.registry
            .get_latest_versions(name, stages)
            .await?
            .into_iter()
            .max_by_key(|version| version.version)
            .ok_or_else(|| {
                KeelError::not_found(format!("Latest version not found for model {name}."))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::ErrorCode;

    #[test]
    fn model_names_follow_mlflow_rules() {
        for good in ["clf", "my model", "a.b-c_d", "épreuve", "v1"] {
            assert!(validate_model_name(good).is_ok(), "{good}");
        }
        for bad in ["", "  ", "a/b", "a:b", ".", "..", "..x"] {
            let err = validate_model_name(bad).expect_err(bad);
            assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{bad}");
        }
    }

    #[test]
    fn alias_names_and_reserved_aliases() {
        for good in ["champion", "Champ_1", "blue-green", "v", "vx1", "version2"] {
            assert!(validate_alias_name(good).is_ok(), "{good}");
            assert!(validate_alias_not_reserved(good).is_ok(), "{good}");
        }
        for reserved in ["latest", "LATEST", "v1", "V22"] {
            let err = validate_alias_not_reserved(reserved).expect_err(reserved);
            assert_eq!(err.code, ErrorCode::InvalidParameterValue);
        }
        for bad in ["", "a b", "a/b", "a.b", &"x".repeat(256)] {
            assert!(validate_alias_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_and_page_sizes() {
        assert_eq!(parse_version(" 3 ").unwrap(), 3);
        let err = parse_version("three").unwrap_err();
        assert_eq!(
            err.message,
            "Parameter 'version' must be an integer, got 'three'."
        );
        assert_eq!(page_size(None, 100, 1000).unwrap(), 100);
        assert_eq!(page_size(Some(5), 100, 1000).unwrap(), 5);
        assert!(page_size(Some(1001), 100, 1000).is_err());
        assert!(page_size(Some(-1), 100, 1000).is_err());
    }

    #[test]
    fn registry_tags_allow_long_values() {
        assert!(validate_registry_tag(&Tag::new(
            "k",
            "x".repeat(MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH)
        ))
        .is_ok());
        assert!(validate_registry_tag(&Tag::new(
            "k",
            "x".repeat(MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH + 1)
        ))
        .is_err());
        assert!(validate_registry_tag(&Tag::new("../k", "v")).is_err());
    }
}
