//! Webhooks of the model registry (MLflow 3): an event is an entity and an
//! action (`model_version.created`), a webhook subscribes a URL to events, and
//! the `WebhookStore` trait every metadata backend implements.
//!
//! A webhook's secret is stored because deliveries are signed with it, but it
//! never leaves the server: the wire layer has no field for it.

use std::fmt;

use async_trait::async_trait;

use crate::store::Page;
use crate::{KeelError, Result};

/// What an event is about, spelled as MLflow spells it (`model_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEntity {
    RegisteredModel,
    ModelVersion,
    ModelVersionTag,
    ModelVersionAlias,
    Prompt,
    PromptVersion,
    PromptTag,
    PromptVersionTag,
    PromptAlias,
    BudgetPolicy,
}

impl WebhookEntity {
    pub const ALL: [WebhookEntity; 10] = [
        WebhookEntity::RegisteredModel,
        WebhookEntity::ModelVersion,
        WebhookEntity::ModelVersionTag,
        WebhookEntity::ModelVersionAlias,
        WebhookEntity::Prompt,
        WebhookEntity::PromptVersion,
        WebhookEntity::PromptTag,
        WebhookEntity::PromptVersionTag,
        WebhookEntity::PromptAlias,
        WebhookEntity::BudgetPolicy,
    ];

    /// The lowercase name used in payloads and stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEntity::RegisteredModel => "registered_model",
            WebhookEntity::ModelVersion => "model_version",
            WebhookEntity::ModelVersionTag => "model_version_tag",
            WebhookEntity::ModelVersionAlias => "model_version_alias",
            WebhookEntity::Prompt => "prompt",
            WebhookEntity::PromptVersion => "prompt_version",
            WebhookEntity::PromptTag => "prompt_tag",
            WebhookEntity::PromptVersionTag => "prompt_version_tag",
            WebhookEntity::PromptAlias => "prompt_alias",
            WebhookEntity::BudgetPolicy => "budget_policy",
        }
    }

    /// The protobuf enum number (`ENTITY_UNSPECIFIED` is 0).
    pub fn number(self) -> i64 {
        match self {
            WebhookEntity::RegisteredModel => 1,
            WebhookEntity::ModelVersion => 2,
            WebhookEntity::ModelVersionTag => 3,
            WebhookEntity::ModelVersionAlias => 4,
            WebhookEntity::Prompt => 5,
            WebhookEntity::PromptVersion => 6,
            WebhookEntity::PromptTag => 7,
            WebhookEntity::PromptVersionTag => 8,
            WebhookEntity::PromptAlias => 9,
            WebhookEntity::BudgetPolicy => 10,
        }
    }

    /// Parses the lowercase name or the protobuf name (`MODEL_VERSION`).
    pub fn parse(name: &str) -> Option<WebhookEntity> {
        Self::ALL
            .into_iter()
            .find(|entity| entity.as_str().eq_ignore_ascii_case(name))
    }

    pub fn from_number(number: i64) -> Option<WebhookEntity> {
        Self::ALL
            .into_iter()
            .find(|entity| entity.number() == number)
    }

    /// The actions MLflow accepts for this entity.
    pub fn valid_actions(self) -> &'static [WebhookAction] {
        match self {
            WebhookEntity::RegisteredModel
            | WebhookEntity::ModelVersion
            | WebhookEntity::Prompt
            | WebhookEntity::PromptVersion => &[WebhookAction::Created],
            WebhookEntity::ModelVersionTag
            | WebhookEntity::PromptTag
            | WebhookEntity::PromptVersionTag => &[WebhookAction::Deleted, WebhookAction::Set],
            WebhookEntity::ModelVersionAlias | WebhookEntity::PromptAlias => {
                &[WebhookAction::Created, WebhookAction::Deleted]
            }
            WebhookEntity::BudgetPolicy => &[WebhookAction::Exceeded],
        }
    }
}

/// What happened to the entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookAction {
    Created,
    Updated,
    Deleted,
    Set,
    Exceeded,
}

impl WebhookAction {
    pub const ALL: [WebhookAction; 5] = [
        WebhookAction::Created,
        WebhookAction::Updated,
        WebhookAction::Deleted,
        WebhookAction::Set,
        WebhookAction::Exceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookAction::Created => "created",
            WebhookAction::Updated => "updated",
            WebhookAction::Deleted => "deleted",
            WebhookAction::Set => "set",
            WebhookAction::Exceeded => "exceeded",
        }
    }

    /// The protobuf enum number (`ACTION_UNSPECIFIED` is 0).
    pub fn number(self) -> i64 {
        match self {
            WebhookAction::Created => 1,
            WebhookAction::Updated => 2,
            WebhookAction::Deleted => 3,
            WebhookAction::Set => 4,
            WebhookAction::Exceeded => 5,
        }
    }

    pub fn parse(name: &str) -> Option<WebhookAction> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str().eq_ignore_ascii_case(name))
    }

    pub fn from_number(number: i64) -> Option<WebhookAction> {
        Self::ALL
            .into_iter()
            .find(|action| action.number() == number)
    }
}

/// A valid entity/action pair; the constructor refuses the pairs MLflow refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookEvent {
    entity: WebhookEntity,
    action: WebhookAction,
}

impl WebhookEvent {
    pub fn new(entity: WebhookEntity, action: WebhookAction) -> Result<WebhookEvent> {
        if !entity.valid_actions().contains(&action) {
            let valid: Vec<String> = entity
                .valid_actions()
                .iter()
                .map(|valid| format!("'{}'", valid.as_str()))
                .collect();
            return Err(KeelError::invalid(format!(
                "Invalid action '{}' for entity '{}'. Valid actions are: [{}]",
                action.as_str(),
                entity.as_str(),
                valid.join(", ")
            )));
        }
        Ok(WebhookEvent { entity, action })
    }

    pub const REGISTERED_MODEL_CREATED: WebhookEvent = WebhookEvent {
        entity: WebhookEntity::RegisteredModel,
        action: WebhookAction::Created,
    };
    pub const MODEL_VERSION_CREATED: WebhookEvent = WebhookEvent {
        entity: WebhookEntity::ModelVersion,
        action: WebhookAction::Created,
    };
    pub const MODEL_VERSION_TAG_SET: WebhookEvent = WebhookEvent {
        entity: WebhookEntity::ModelVersionTag,
        action: WebhookAction::Set,
    };
    pub const MODEL_VERSION_TAG_DELETED: WebhookEvent = WebhookEvent {
        entity: WebhookEntity::ModelVersionTag,
        action: WebhookAction::Deleted,
    };
    pub const MODEL_VERSION_ALIAS_CREATED: WebhookEvent = WebhookEvent {
        entity: WebhookEntity::ModelVersionAlias,
        action: WebhookAction::Created,
    };
    pub const MODEL_VERSION_ALIAS_DELETED: WebhookEvent = WebhookEvent {
        entity: WebhookEntity::ModelVersionAlias,
        action: WebhookAction::Deleted,
    };

    pub fn entity(self) -> WebhookEntity {
        self.entity
    }

    pub fn action(self) -> WebhookAction {
        self.action
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.entity.as_str(), self.action.as_str())
    }
}

/// Whether a webhook receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WebhookStatus {
    #[default]
    Active,
    Disabled,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Active => "ACTIVE",
            WebhookStatus::Disabled => "DISABLED",
        }
    }

    pub fn number(self) -> i64 {
        match self {
            WebhookStatus::Active => 1,
            WebhookStatus::Disabled => 2,
        }
    }

    pub fn parse(name: &str) -> Option<WebhookStatus> {
        [WebhookStatus::Active, WebhookStatus::Disabled]
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(name))
    }

    pub fn from_number(number: i64) -> Option<WebhookStatus> {
        [WebhookStatus::Active, WebhookStatus::Disabled]
            .into_iter()
            .find(|status| status.number() == number)
    }
}

/// A webhook as stored. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub webhook_id: String,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    /// In the order they were given.
    pub events: Vec<WebhookEvent>,
    pub status: WebhookStatus,
    /// The HMAC key deliveries are signed with; never sent back to clients.
    pub secret: Option<String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("webhook_id", &self.webhook_id)
            .field("name", &self.name)
            .field("description", &self.description)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("status", &self.status)
            .field("has_secret", &self.secret.is_some())
            .field("creation_timestamp", &self.creation_timestamp)
            .field("last_updated_timestamp", &self.last_updated_timestamp)
            .finish()
    }
}

/// A validated webhook to create; the store picks the id and timestamps.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub description: Option<String>,
    pub secret: Option<String>,
    pub status: WebhookStatus,
}

/// A validated update: `None` leaves a field as it is; an empty description or
/// secret clears it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WebhookUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    pub secret: Option<String>,
    pub status: Option<WebhookStatus>,
}

/// MLflow's message for a webhook that does not exist.
pub fn webhook_not_found(webhook_id: &str) -> KeelError {
    KeelError::not_found(format!("Webhook with ID {webhook_id} not found."))
}

/// The webhooks' metadata store. Input is validated by the webhook service.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn create_webhook(&self, new_webhook: &NewWebhook) -> Result<Webhook>;
    /// `RESOURCE_DOES_NOT_EXIST` when there is no such webhook.
    async fn get_webhook(&self, webhook_id: &str) -> Result<Webhook>;
    /// Newest first; `max_results` is at least 1.
    async fn list_webhooks(
        &self,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<Page<Webhook>>;
    /// Every webhook subscribed to `event`, whatever its status.
    async fn list_webhooks_by_event(&self, event: WebhookEvent) -> Result<Vec<Webhook>>;
    async fn update_webhook(&self, webhook_id: &str, update: &WebhookUpdate) -> Result<Webhook>;
    /// Deletes the webhook and its secret.
    async fn delete_webhook(&self, webhook_id: &str) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_action_pairs_follow_mlflow() {
        assert!(WebhookEvent::new(WebhookEntity::ModelVersion, WebhookAction::Created).is_ok());
        assert!(WebhookEvent::new(WebhookEntity::ModelVersionTag, WebhookAction::Set).is_ok());
        let err = WebhookEvent::new(WebhookEntity::ModelVersion, WebhookAction::Set).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::InvalidParameterValue);
        assert_eq!(
            err.message,
            "Invalid action 'set' for entity 'model_version'. Valid actions are: ['created']"
        );
    }

    #[test]
    fn names_and_numbers_round_trip() {
        for entity in WebhookEntity::ALL {
            assert_eq!(WebhookEntity::parse(entity.as_str()), Some(entity));
            assert_eq!(
                WebhookEntity::parse(&entity.as_str().to_uppercase()),
                Some(entity)
            );
            assert_eq!(WebhookEntity::from_number(entity.number()), Some(entity));
        }
        for action in WebhookAction::ALL {
            assert_eq!(WebhookAction::parse(action.as_str()), Some(action));
            assert_eq!(WebhookAction::from_number(action.number()), Some(action));
        }
        assert_eq!(WebhookEntity::parse("ENTITY_UNSPECIFIED"), None);
        assert_eq!(
            WebhookStatus::parse("disabled"),
            Some(WebhookStatus::Disabled)
        );
        assert_eq!(
            WebhookEvent::MODEL_VERSION_ALIAS_CREATED.to_string(),
            "model_version_alias.created"
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let webhook = Webhook {
            webhook_id: "id".into(),
            name: "n".into(),
            description: None,
            url: "https://example.com".into(),
            events: vec![WebhookEvent::MODEL_VERSION_CREATED],
            status: WebhookStatus::Active,
            secret: Some("hunter2".into()),
            creation_timestamp: 0,
            last_updated_timestamp: 0,
        };
        assert!(!format!("{webhook:?}").contains("hunter2"));
    }
}
