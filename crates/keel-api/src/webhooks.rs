//! MLflow 3 webhook wire types (`mlflow/protos/webhooks.proto`) and their
//! conversions from `keel_core::webhooks`. Enums travel as their protobuf
//! names (`"MODEL_VERSION"`, `"CREATED"`, `"ACTIVE"`); requests may also give
//! their numbers. There is no field for the secret in any response.

use keel_core::webhooks as domain;
use keel_core::{KeelError, Result};
use serde::{Deserialize, Serialize};

use crate::json::deserialize_opt_i64;

/// A protobuf enum: read as its name or its number, written as its name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnumValue {
    Name(String),
    Number(i64),
}

impl std::fmt::Display for EnumValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnumValue::Name(name) => f.write_str(name),
            EnumValue::Number(number) => write!(f, "{number}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct WebhookEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<EnumValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<EnumValue>,
}

impl From<domain::WebhookEvent> for WebhookEvent {
    fn from(event: domain::WebhookEvent) -> Self {
        WebhookEvent {
            entity: Some(EnumValue::Name(
                event.entity().as_str().to_ascii_uppercase(),
            )),
            action: Some(EnumValue::Name(
                event.action().as_str().to_ascii_uppercase(),
            )),
        }
    }
}

impl WebhookEvent {
    /// The domain event; unknown names and invalid pairs are `INVALID_PARAMETER_VALUE`.
    pub fn to_domain(&self) -> Result<domain::WebhookEvent> {
        let entity = match &self.entity {
            Some(EnumValue::Name(name)) => domain::WebhookEntity::parse(name),
            Some(EnumValue::Number(number)) => domain::WebhookEntity::from_number(*number),
            None => return Err(KeelError::invalid("Webhook event is missing 'entity'.")),
        }
        .ok_or_else(|| {
            KeelError::invalid(format!(
                "Invalid webhook event entity: '{}'.",
                self.entity
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ))
        })?;
        let action = match &self.action {
            Some(EnumValue::Name(name)) => domain::WebhookAction::parse(name),
            Some(EnumValue::Number(number)) => domain::WebhookAction::from_number(*number),
            None => return Err(KeelError::invalid("Webhook event is missing 'action'.")),
        }
        .ok_or_else(|| {
            KeelError::invalid(format!(
                "Invalid webhook event action: '{}'.",
                self.action
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ))
        })?;
        domain::WebhookEvent::new(entity, action)
    }
}

/// A status given in a request.
pub fn status_to_domain(status: &EnumValue) -> Result<domain::WebhookStatus> {
    match status {
        EnumValue::Name(name) => domain::WebhookStatus::parse(name),
        EnumValue::Number(number) => domain::WebhookStatus::from_number(*number),
    }
    .ok_or_else(|| {
        KeelError::invalid(format!(
            "Invalid webhook status: '{status}'. Valid statuses are ACTIVE, DISABLED."
        ))
    })
}

/// The events of a request, each converted.
pub fn events_to_domain(events: &[WebhookEvent]) -> Result<Vec<domain::WebhookEvent>> {
    events.iter().map(WebhookEvent::to_domain).collect()
}

// ---------------------------------------------------------------- entities

#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub webhook_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub status: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
}

impl From<&domain::Webhook> for Webhook {
    fn from(webhook: &domain::Webhook) -> Self {
        Webhook {
            webhook_id: webhook.webhook_id.clone(),
            name: webhook.name.clone(),
            description: webhook.description.clone().filter(|text| !text.is_empty()),
            url: webhook.url.clone(),
            events: webhook
                .events
                .iter()
                .copied()
                .map(WebhookEvent::from)
                .collect(),
            status: webhook.status.as_str().to_string(),
            creation_timestamp: webhook.creation_timestamp,
            last_updated_timestamp: webhook.last_updated_timestamp,
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct WebhookTestResult {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

// ---------------------------------------------------------------- requests

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CreateWebhook {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Vec<WebhookEvent>,
    pub description: Option<String>,
    pub secret: Option<String>,
    pub status: Option<EnumValue>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ListWebhooks {
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub max_results: Option<i64>,
    pub page_token: Option<String>,
}

/// Fields absent from the request are left unchanged.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UpdateWebhook {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Vec<WebhookEvent>,
    pub secret: Option<String>,
    pub status: Option<EnumValue>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TestWebhook {
    pub event: Option<WebhookEvent>,
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Serialize)]
pub struct WebhookResponse {
    pub webhook: Webhook,
}

#[derive(Debug, Serialize)]
pub struct ListWebhooksResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TestWebhookResponse {
    pub result: WebhookTestResult,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_names_and_numbers() {
        let event: WebhookEvent =
            serde_json::from_str(r#"{"entity": "MODEL_VERSION", "action": "CREATED"}"#)
                .expect("json");
        assert_eq!(
            event.to_domain().expect("valid"),
            domain::WebhookEvent::MODEL_VERSION_CREATED
        );
        let event: WebhookEvent =
            serde_json::from_str(r#"{"entity": 4, "action": 3}"#).expect("json");
        assert_eq!(
            event.to_domain().expect("valid"),
            domain::WebhookEvent::MODEL_VERSION_ALIAS_DELETED
        );
        let event: WebhookEvent =
            serde_json::from_str(r#"{"entity": "MODEL_VERSION", "action": "SET"}"#).expect("json");
        assert!(event.to_domain().is_err());
        let event: WebhookEvent = serde_json::from_str(r#"{"entity": "RUN"}"#).expect("json");
        assert!(event.to_domain().is_err());
    }

    #[test]
    fn webhooks_serialize_without_their_secret() {
        let webhook = domain::Webhook {
            webhook_id: "w-1".into(),
            name: "hook".into(),
            description: None,
            url: "https://example.com/hook".into(),
            events: vec![domain::WebhookEvent::MODEL_VERSION_TAG_SET],
            status: domain::WebhookStatus::Disabled,
            secret: Some("hunter2".into()),
            creation_timestamp: 1,
            last_updated_timestamp: 2,
        };
        let json = serde_json::to_value(Webhook::from(&webhook)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "webhook_id": "w-1", "name": "hook", "url": "https://example.com/hook",
                "events": [{"entity": "MODEL_VERSION_TAG", "action": "SET"}],
                "status": "DISABLED", "creation_timestamp": 1, "last_updated_timestamp": 2,
            })
        );
    }
}
