//! Keel's HTTP layer: the only crate that knows axum. `app()` builds the
//! router of every service so tests can call it in process; `serve()` binds it.

mod artifacts_routes;
pub mod error;
pub mod extract;
mod lineage_routes;
mod logged_model_routes;
mod meta_routes;
pub mod oip;
mod registry_routes;
mod run_artifacts;
pub mod security;
mod tracking_routes;
mod webhook_routes;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use keel_artifacts::ArtifactStore;
use keel_core::registry::RegistryStore;
use keel_core::store::TrackingStore;
use keel_core::webhooks::WebhookStore;
use keel_core::ErrorCode;
use keel_tracking::webhooks::{DeliverySettings, DestinationPolicy};
use keel_tracking::{RegistryService, TrackingService, WebhookService};

use crate::error::ApiError;
pub use crate::security::AllowedHosts;

/// Shared state of every handler: services over `Arc<dyn ...>` stores.
#[derive(Clone)]
pub struct AppState {
    pub tracking: TrackingService,
    pub registry: RegistryService,
    pub webhooks: WebhookService,
    pub artifacts: Arc<dyn ArtifactStore>,
}

impl AppState {
    /// Every service over one metadata store (which implements every store
    /// trait) and one artifact store; registry writes notify the webhooks.
    /// Must be called inside a tokio runtime (the webhook worker starts here).
    pub fn new<S>(
        store: Arc<S>,
        artifacts: Arc<dyn ArtifactStore>,
        webhook_destinations: DestinationPolicy,
        webhook_delivery: DeliverySettings,
    ) -> AppState
    where
        S: TrackingStore + RegistryStore + WebhookStore,
    {
        let webhooks = WebhookService::start(store.clone(), webhook_destinations, webhook_delivery);
        AppState {
            tracking: TrackingService::new(store.clone()),
            registry: RegistryService::new(store.clone(), store)
                .with_webhooks(webhooks.dispatcher()),
            webhooks,
            artifacts,
        }
    }
}

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub allowed_hosts: AllowedHosts,
    /// Browser origins allowed to send state-changing requests (besides loopback and same origin).
    pub cors_allowed_origins: Vec<String>,
    /// Largest JSON request body accepted (artifact uploads stream and are exempt).
    pub max_json_body_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            allowed_hosts: AllowedHosts::loopback(),
            cors_allowed_origins: Vec::new(),
            max_json_body_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The whole HTTP API of `keel server`.
pub fn app(state: AppState, options: &HttpOptions) -> Router {
    app_with(state, options, Router::new())
}

/// `app` with more routes (e.g. the feature server under `/features`)
/// behind the same host check, CORS policy and panic guard.
pub fn app_with(state: AppState, options: &HttpOptions, extra: Router) -> Router {
    let mlflow = tracking_routes::routes()
        .merge(logged_model_routes::routes())
        .merge(registry_routes::routes())
        .merge(webhook_routes::routes());
    let api = Router::new()
        .nest("/api/2.0/mlflow", mlflow.clone())
        .nest("/ajax-api/2.0/mlflow", mlflow)
        .merge(meta_routes::routes())
        .merge(lineage_routes::routes())
        // MLflow's UI fetches version files at the root, without an API prefix.
        .route(
            "/model-versions/get-artifact",
            axum::routing::get(registry_routes::get_model_version_artifact),
        )
        .layer(DefaultBodyLimit::max(options.max_json_body_bytes))
        .with_state(state.clone());
    Router::new()
        .merge(api)
        .merge(artifacts_routes::artifact_routes(state.artifacts.clone()))
        .merge(extra)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(security::OriginPolicy {
                allowed_hosts: options.allowed_hosts.clone(),
                cors_allowed_origins: options.cors_allowed_origins.clone(),
            }),
            security::check_origin,
        ))
        .layer(axum::middleware::from_fn(error::catch_panics))
}

async fn not_found(uri: Uri) -> impl IntoResponse {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        ErrorCode::EndpointNotFound,
        format!("no endpoint at {}", uri.path()),
    )
}
