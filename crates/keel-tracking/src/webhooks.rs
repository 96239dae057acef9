//! `WebhookService`: MLflow 3's webhook rules in front of an
//! `Arc<dyn WebhookStore>` — name, URL and event checks, the destination
//! policy (`policy.rs`) at save time, the test endpoint — and the handle
//! (`delivery.rs`) through which registry writes emit signed deliveries
//! (`payload.rs`).

pub mod delivery;
pub mod payload;
pub mod policy;

use std::sync::Arc;
use std::time::Duration;

use keel_core::store::Page;
use keel_core::webhooks::{
    NewWebhook, Webhook, WebhookEvent, WebhookStatus, WebhookStore, WebhookUpdate,
};
use keel_core::{KeelError, Result};
use url::Url;

pub use self::delivery::{
    AttemptOutcome, Deliverer, DeliverySettings, SignedRequest, WebhookDispatcher,
};
pub use self::payload::{EventPayload, TagMap};
pub use self::policy::DestinationPolicy;
use crate::validation as v;

/// MLflow's page sizes for `list_webhooks`.
pub const LIST_WEBHOOKS_MAX_RESULTS_DEFAULT: u32 = 100;
pub const LIST_WEBHOOKS_MAX_RESULTS_THRESHOLD: u32 = 1000;
/// Column sizes of MLflow's webhook table.
pub const MAX_WEBHOOK_URL_LENGTH: usize = 500;
pub const MAX_WEBHOOK_DESCRIPTION_LENGTH: usize = 1000;
const MAX_WEBHOOK_NAME_LENGTH: usize = 63;
/// How long a save waits for the destination's DNS answer.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A `create-webhook` request after the wire layer.
#[derive(Debug, Clone, Default)]
pub struct CreateWebhook {
    pub name: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub description: Option<String>,
    pub secret: Option<String>,
    pub status: Option<WebhookStatus>,
}

/// What the test endpoint answers (MLflow's `WebhookTestResult`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookTestResult {
    pub success: bool,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error_message: Option<String>,
}

/// Validates webhook requests, stores webhooks, and owns the delivery worker.
#[derive(Clone)]
pub struct WebhookService {
    store: Arc<dyn WebhookStore>,
    deliverer: Arc<Deliverer>,
    dispatcher: WebhookDispatcher,
}

/// MLflow's `_validate_webhook_name`: 1 to 63 letters, digits, `.`, `_`, `-`,
/// starting and ending with a letter or digit.
pub fn validate_webhook_name(name: &str) -> Result<()> {
    let valid_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let valid = !name.is_empty()
        && name.len() <= MAX_WEBHOOK_NAME_LENGTH
        && name.chars().all(valid_inner)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        return Ok(());
    }
    Err(KeelError::invalid(format!(
        "Webhook name '{name}' is invalid. It must start and end with a letter or digit, be less \
         than 63 characters long, and contain only letters, digits, dots (.), underscores (_), \
         and hyphens (-)."
    )))
}

/// A webhook URL's shape: http(s), a host, at most 500 characters. Where it
/// points is the destination policy's business.
pub fn parse_webhook_url(url: &str) -> Result<Url> {
    if url.trim().is_empty() {
        return Err(KeelError::invalid(format!(
            "Webhook URL cannot be empty or just whitespace: '{url}'"
        )));
    }
    v::validate_length("url", MAX_WEBHOOK_URL_LENGTH, url)?;
    let parsed = Url::parse(url)
        .map_err(|err| KeelError::invalid(format!("Invalid webhook URL '{url}': {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(KeelError::invalid(format!(
            "Invalid webhook URL scheme: '{}'. Allowed schemes are: http, https.",
            parsed.scheme()
        )));
    }
    if parsed.host().is_none() {
        return Err(KeelError::invalid(format!(
            "Webhook URL must include a hostname: '{url}'"
        )));
    }
    Ok(parsed)
}

fn validate_events(events: &[WebhookEvent]) -> Result<Vec<WebhookEvent>> {
    if events.is_empty() {
        return Err(KeelError::invalid(
            "Webhook events must be a non-empty list of events.",
        ));
    }
    let mut unique: Vec<WebhookEvent> = Vec::with_capacity(events.len());
    for event in events {
        if !unique.contains(event) {
            unique.push(*event);
        }
    }
    Ok(unique)
}

fn validate_description(description: Option<&str>) -> Result<()> {
    match description {
        Some(text) => v::validate_length("description", MAX_WEBHOOK_DESCRIPTION_LENGTH, text),
        None => Ok(()),
    }
}

fn page_size(max_results: Option<i64>) -> Result<u32> {
    match max_results {
        None | Some(0) => Ok(LIST_WEBHOOKS_MAX_RESULTS_DEFAULT),
        Some(n) if n < 1 || n > i64::from(LIST_WEBHOOKS_MAX_RESULTS_THRESHOLD) => Err(
            KeelError::invalid("max_results must be between 1 and 1000."),
        ),
        Some(n) => Ok(u32::try_from(n).unwrap_or(LIST_WEBHOOKS_MAX_RESULTS_DEFAULT)),
    }
}

impl WebhookService {
    /// The service and its delivery worker, on the current tokio runtime.
    pub fn start(
        store: Arc<dyn WebhookStore>,
        policy: DestinationPolicy,
        settings: DeliverySettings,
    ) -> WebhookService {
        let deliverer = Arc::new(Deliverer::new(policy, settings));
        let dispatcher = WebhookDispatcher::start(Arc::clone(&store), Arc::clone(&deliverer));
        WebhookService {
            store,
            deliverer,
            dispatcher,
        }
    }

    /// The handle the registry emits events through.
    pub fn dispatcher(&self) -> WebhookDispatcher {
        self.dispatcher.clone()
    }

    pub fn store(&self) -> &Arc<dyn WebhookStore> {
        &self.store
    }

    /// Resolves the URL's host off the async threads and applies the policy.
    async fn check_destination(&self, url: Url) -> Result<()> {
        let deliverer = Arc::clone(&self.deliverer);
        let host = url.host_str().unwrap_or_default().to_string();
        let check =
            tokio::task::spawn_blocking(move || deliverer.policy().check_url(&url).map(|_| ()));
        match tokio::time::timeout(RESOLVE_TIMEOUT, check).await {
            Ok(Ok(result)) => result.map_err(KeelError::from),
            Ok(Err(err)) => Err(KeelError::internal(format!(
                "checking the webhook destination failed: {err}"
            ))),
            Err(_) => Err(KeelError::invalid(format!(
                "cannot resolve webhook destination '{host}': timed out"
            ))),
        }
    }

    pub async fn create_webhook(&self, request: CreateWebhook) -> Result<Webhook> {
        validate_webhook_name(&request.name)?;
        let url = parse_webhook_url(&request.url)?;
        let events = validate_events(&request.events)?;
        validate_description(request.description.as_deref())?;
        self.check_destination(url).await?;
        self.store
            .create_webhook(&NewWebhook {
                name: request.name,
                url: request.url,
                events,
                description: request.description.filter(|text| !text.is_empty()),
                secret: request.secret.filter(|secret| !secret.is_empty()),
                status: request.status.unwrap_or_default(),
            })
            .await
    }

    pub async fn get_webhook(&self, webhook_id: &str) -> Result<Webhook> {
        self.store.get_webhook(webhook_id).await
    }

    pub async fn list_webhooks(
        &self,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<Webhook>> {
        let max_results = page_size(max_results)?;
        self.store.list_webhooks(max_results, page_token).await
    }

    /// Changes the fields given; a new URL passes the destination policy first.
    pub async fn update_webhook(&self, webhook_id: &str, update: WebhookUpdate) -> Result<Webhook> {
        if let Some(name) = &update.name {
            validate_webhook_name(name)?;
        }
        let events = match &update.events {
            Some(events) => Some(validate_events(events)?),
            None => None,
        };
        validate_description(update.description.as_deref())?;
        // Fail on a missing webhook before resolving anything.
        self.store.get_webhook(webhook_id).await?;
        if let Some(url) = &update.url {
            let parsed = parse_webhook_url(url)?;
            self.check_destination(parsed).await?;
        }
        self.store
            .update_webhook(webhook_id, &WebhookUpdate { events, ..update })
            .await
    }

    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<()> {
        self.store.delete_webhook(webhook_id).await
    }

    /// Sends an example payload for `event` (the webhook's first event by
    /// default) now, once, and reports what the receiver answered.
    pub async fn test_webhook(
        &self,
        webhook_id: &str,
        event: Option<WebhookEvent>,
    ) -> Result<WebhookTestResult> {
        let webhook = self.store.get_webhook(webhook_id).await?;
        let Some(event) = event.or_else(|| webhook.events.first().copied()) else {
            return Err(KeelError::invalid("the webhook has no events to test"));
        };
        let payload = payload::example_payload(event);
        let request = Arc::new(SignedRequest::new(&webhook, event, &payload));
        Ok(match self.deliverer.attempt(request).await {
            AttemptOutcome::Answered { status, body, .. } => WebhookTestResult {
                success: status < 400,
                response_status: Some(status),
                response_body: Some(body),
                error_message: None,
            },
            AttemptOutcome::Refused(refusal) => WebhookTestResult {
                success: false,
                error_message: Some(format!("Failed to test webhook: {}", refusal.message())),
                ..WebhookTestResult::default()
            },
            AttemptOutcome::Failed(reason) => WebhookTestResult {
                success: false,
                error_message: Some(format!("Failed to test webhook: {reason}")),
                ..WebhookTestResult::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::ErrorCode;

    #[test]
    fn webhook_names_follow_mlflow_rules() {
        for good in ["a", "hook-1", "My.Hook_2", &"x".repeat(63)] {
            assert!(validate_webhook_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", ".a", "a b", "a/b", "é", &"x".repeat(64)] {
            let err = validate_webhook_name(bad).expect_err(bad);
            assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{bad}");
        }
    }

    #[test]
    fn webhook_urls_must_be_http_with_a_host() {
        assert!(parse_webhook_url("https://hooks.example.com/x?y=1").is_ok());
        assert!(parse_webhook_url("http://10.0.0.1:8080/").is_ok());
        for bad in [
            "",
            "  ",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "not a url",
            "http://",
            &format!("https://example.com/{}", "a".repeat(500)),
        ] {
            let err = parse_webhook_url(bad).expect_err(bad);
            assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{bad}");
        }
    }

    #[test]
    fn events_must_be_given_and_are_deduplicated() {
        assert!(validate_events(&[]).is_err());
        let events = validate_events(&[
            WebhookEvent::MODEL_VERSION_CREATED,
            WebhookEvent::REGISTERED_MODEL_CREATED,
            WebhookEvent::MODEL_VERSION_CREATED,
        ])
        .expect("valid events");
        assert_eq!(
            events,
            vec![
                WebhookEvent::MODEL_VERSION_CREATED,
                WebhookEvent::REGISTERED_MODEL_CREATED
            ]
        );
    }

    #[test]
    fn list_page_sizes_follow_mlflow() {
        assert_eq!(page_size(None).expect("default"), 100);
        assert_eq!(page_size(Some(1000)).expect("max"), 1000);
        assert!(page_size(Some(1001)).is_err());
        assert!(page_size(Some(-1)).is_err());
    }
}
