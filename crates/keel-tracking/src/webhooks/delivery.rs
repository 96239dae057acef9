//! Sending deliveries, off the request path. Registry writes hand events to a
//! `WebhookDispatcher` (a bounded channel: a full queue drops the event with a
//! warning rather than slow the request); one worker task looks up the
//! subscribed webhooks and delivers to each, a bounded number at a time.
//!
//! Each attempt resolves the host, checks every address against the
//! `DestinationPolicy`, and connects only to those checked addresses (the HTTP
//! client's resolver is pinned to them), so a DNS answer that changes between
//! the check and the connection cannot reach a refused address. Redirects are
//! not followed, proxies from the environment are ignored, and at most a few
//! KiB of a response are read. Failed attempts (connection errors, 429 and
//! 5xx) are retried with exponential backoff; every attempt of a delivery
//! sends the same body, delivery id, timestamp and signature.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keel_core::webhooks::{Webhook, WebhookEvent, WebhookStatus, WebhookStore};
use tokio::sync::{mpsc, Semaphore};
use url::Url;

use super::payload::{
    delivery_body, signature, EventPayload, DELIVERY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use super::policy::{DestinationPolicy, Refusal};

/// How deliveries are made; the defaults suit a server, tests shorten the waits.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Connecting, sending and reading the response of one attempt, at most.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles each time after.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Events waiting for the worker; more are dropped with a warning.
    pub queue_capacity: usize,
    /// Deliveries in flight at once.
    pub max_concurrent_deliveries: usize,
    /// Bytes of a response body read (the rest is ignored).
    pub max_response_bytes: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            queue_capacity: 1024,
            max_concurrent_deliveries: 16,
            max_response_bytes: 16 * 1024,
        }
    }
}

/// The result of one HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered (any status; redirects are not followed).
    Answered {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// The destination is not allowed (or cannot be resolved).
    Refused(Refusal),
    /// No answer: connection refused, timeout, TLS error.
    Failed(String),
}

impl AttemptOutcome {
    fn should_retry(&self) -> bool {
        match self {
            AttemptOutcome::Answered { status, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
            }
            AttemptOutcome::Refused(_) => false,
            AttemptOutcome::Failed(_) => true,
        }
    }
}

/// One signed request, ready to send (and resend, unchanged, on retries).
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub url: String,
    pub body: String,
    pub delivery_id: String,
    pub timestamp: String,
    pub signature: Option<String>,
}

impl SignedRequest {
    pub fn new(webhook: &Webhook, event: WebhookEvent, payload: &EventPayload) -> SignedRequest {
        let now = SystemTime::now();
        let body = delivery_body(event, payload, now);
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let signature = webhook
            .secret
            .as_deref()
            .filter(|secret| !secret.is_empty())
            .map(|secret| signature(secret, &delivery_id, &timestamp, &body));
        SignedRequest {
            url: webhook.url.clone(),
            body,
            delivery_id,
            timestamp,
            signature,
        }
    }
}

/// A resolver that answers with addresses checked beforehand.
struct PinnedResolver(Vec<SocketAddr>);

impl ureq::Resolver for PinnedResolver {
    fn resolve(&self, _netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        Ok(self.0.clone())
    }
}

/// Sends signed requests under a destination policy.
#[derive(Debug)]
pub struct Deliverer {
    policy: DestinationPolicy,
    settings: DeliverySettings,
}

impl Deliverer {
    pub fn new(policy: DestinationPolicy, settings: DeliverySettings) -> Deliverer {
        Deliverer { policy, settings }
    }

    pub fn policy(&self) -> &DestinationPolicy {
        &self.policy
    }

    pub fn settings(&self) -> &DeliverySettings {
        &self.settings
    }

    /// One attempt (blocking: call it from `spawn_blocking`).
    pub fn attempt_blocking(&self, request: &SignedRequest) -> AttemptOutcome {
        let url = match Url::parse(&request.url) {
            Ok(url) => url,
            Err(err) => return AttemptOutcome::Failed(format!("invalid webhook URL: {err}")),
        };
        let Some(host) = url.host() else {
            return AttemptOutcome::Failed("the webhook URL has no host".to_string());
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let addresses = match self.policy.resolve(&host, port) {
            Ok(addresses) => addresses,
            Err(refusal) => return AttemptOutcome::Refused(refusal),
        };
        let agent = ureq::AgentBuilder::new()
            .resolver(PinnedResolver(addresses))
            .redirects(0)
            .try_proxy_from_env(false)
            .timeout_connect(self.settings.connect_timeout)
            .timeout(self.settings.timeout)
            .user_agent(concat!("keel-webhooks/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut http_request = agent
            .request_url("POST", &url)
            .set("Content-Type", "application/json")
            .set(DELIVERY_ID_HEADER, &request.delivery_id)
            .set(TIMESTAMP_HEADER, &request.timestamp);
        if let Some(signature) = &request.signature {
            http_request = http_request.set(SIGNATURE_HEADER, signature);
        }
        let response = match http_request.send_string(&request.body) {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(transport)) => {
                return AttemptOutcome::Failed(transport.to_string())
            }
        };
        let status = response.status();
        let retry_after = response
            .header("Retry-After")
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut bytes = Vec::new();
        // A body that fails half-way is still an answer; keep what was read.
        let _ = response
            .into_reader()
            .take(self.settings.max_response_bytes)
            .read_to_end(&mut bytes);
        AttemptOutcome::Answered {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            retry_after,
        }
    }

    /// One attempt, on the blocking pool.
    pub async fn attempt(self: &Arc<Self>, request: Arc<SignedRequest>) -> AttemptOutcome {
        let deliverer = Arc::clone(self);
        tokio::task::spawn_blocking(move || deliverer.attempt_blocking(&request))
            .await
            .unwrap_or_else(|err| AttemptOutcome::Failed(format!("delivery task failed: {err}")))
    }

    /// Attempts until an answer that needs no retry or the attempts run out;
    /// returns the last outcome and the number of attempts made.
    pub async fn deliver(self: &Arc<Self>, request: SignedRequest) -> (AttemptOutcome, u32) {
        let request = Arc::new(request);
        let max_attempts = self.settings.max_attempts.max(1);
        let mut backoff = self.settings.initial_backoff;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(Arc::clone(&request)).await;
            if !outcome.should_retry() || attempt >= max_attempts {
                return (outcome, attempt);
            }
            let wait = match &outcome {
                AttemptOutcome::Answered {
                    retry_after: Some(retry_after),
                    ..
                } => *retry_after,
                _ => backoff,
            }
            .min(self.settings.max_backoff);
            tracing::debug!(url = %request.url, attempt, ?wait, "webhook delivery will be retried");
            tokio::time::sleep(wait).await;
            backoff = backoff.saturating_mul(2).min(self.settings.max_backoff);
            attempt += 1;
        }
    }
}

struct Job {
    event: WebhookEvent,
    payload: EventPayload,
}

/// The handle registry writes emit events through. Cloning is cheap; a
/// dispatcher without a worker (`WebhookDispatcher::disabled`) drops events.
#[derive(Clone, Debug)]
pub struct WebhookDispatcher {
    sender: Option<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({})", self.event)
    }
}

impl WebhookDispatcher {
    /// A dispatcher that delivers nothing.
    pub fn disabled() -> WebhookDispatcher {
        WebhookDispatcher { sender: None }
    }

    /// Whether events go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Queues an event without waiting; a full queue drops it with a warning.
    pub fn emit(&self, event: WebhookEvent, payload: EventPayload) {
        let Some(sender) = &self.sender else {
            return;
        };
        match sender.try_send(Job { event, payload }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => {
                tracing::warn!(event = %job.event, "webhook queue is full; event dropped");
            }
            Err(mpsc::error::TrySendError::Closed(job)) => {
                tracing::debug!(event = %job.event, "webhook worker stopped; event dropped");
            }
        }
    }

    /// Starts the worker on the current tokio runtime; without a runtime the
    /// dispatcher is disabled (and says so in the log).
    pub fn start(store: Arc<dyn WebhookStore>, deliverer: Arc<Deliverer>) -> WebhookDispatcher {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no async runtime; webhook deliveries are disabled");
            return WebhookDispatcher::disabled();
        };
        let settings = deliverer.settings();
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let in_flight = Arc::new(Semaphore::new(settings.max_concurrent_deliveries.max(1)));
        runtime.spawn(run_worker(receiver, store, deliverer, in_flight));
        WebhookDispatcher {
            sender: Some(sender),
        }
    }
}

async fn run_worker(
    mut receiver: mpsc::Receiver<Job>,
    store: Arc<dyn WebhookStore>,
    deliverer: Arc<Deliverer>,
    in_flight: Arc<Semaphore>,
) {
    while let Some(job) = receiver.recv().await {
        let webhooks = match store.list_webhooks_by_event(job.event).await {
            Ok(webhooks) => webhooks,
            Err(err) => {
                tracing::error!(event = %job.event, error = %err, "cannot list webhooks; event dropped");
                continue;
            }
        };
        for webhook in webhooks
            .into_iter()
            .filter(|webhook| webhook.status == WebhookStatus::Active)
        {
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                return;
            };
            let request = SignedRequest::new(&webhook, job.event, &job.payload);
            let deliverer = Arc::clone(&deliverer);
            let event = job.event;
            tokio::spawn(async move {
                let (outcome, attempts) = deliverer.deliver(request).await;
                log_outcome(&webhook, event, &outcome, attempts);
                drop(permit);
            });
        }
    }
}

fn log_outcome(webhook: &Webhook, event: WebhookEvent, outcome: &AttemptOutcome, attempts: u32) {
    let webhook_id = webhook.webhook_id.as_str();
    match outcome {
        AttemptOutcome::Answered { status, .. } if *status < 400 => {
            tracing::debug!(webhook_id, %event, status, attempts, "webhook delivered");
        }
        AttemptOutcome::Answered { status, .. } => {
            tracing::warn!(webhook_id, %event, status, attempts, "webhook receiver answered with an error");
        }
        AttemptOutcome::Refused(refusal) => {
            tracing::warn!(webhook_id, %event, reason = %refusal.message(), "webhook delivery refused");
        }
        AttemptOutcome::Failed(reason) => {
            tracing::warn!(webhook_id, %event, %reason, attempts, "webhook delivery failed");
        }
    }
}
