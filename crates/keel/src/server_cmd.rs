//! `keel server`: opens the stores, mounts every service and serves HTTP
//! until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::{Context, Result};
use keel_artifacts::LocalArtifactStore;
use keel_server::{AllowedHosts, AppState, HttpOptions};
use keel_store::SqliteStore;
use keel_tracking::webhooks::{DeliverySettings, DestinationPolicy};

use crate::cli::ServerFlags;
use crate::config::ServerConfig;

/// Where experiments' artifacts live by default: the server's own proxy.
const DEFAULT_ARTIFACT_ROOT: &str = "mlflow-artifacts:";

pub fn run(flags: ServerFlags) -> Result<()> {
    let config = ServerConfig::resolve(flags)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServerConfig) -> Result<()> {
    let sqlite_uri = format!("sqlite://{}", config.sqlite_path.display());
    let store = SqliteStore::open(&sqlite_uri, DEFAULT_ARTIFACT_ROOT)
        .await
        .with_context(|| {
            format!(
                "cannot open the metadata store {}",
                config.sqlite_path.display()
            )
        })?;
    let artifacts = LocalArtifactStore::new(&config.artifacts_destination).with_context(|| {
        format!(
            "cannot use the artifact directory {}",
            config.artifacts_destination.display()
        )
    })?;
    let state = AppState::new(
        Arc::new(store),
        Arc::new(artifacts),
        DestinationPolicy::new(&config.webhook_allowed_destinations),
        DeliverySettings::default(),
    );
    let options = HttpOptions {
        allowed_hosts: AllowedHosts::new(config.allowed_hosts.clone()),
        cors_allowed_origins: config.cors_allowed_origins.clone(),
        max_json_body_bytes: config.max_request_bytes,
    };
    // The feature server sits behind the same host check and CORS policy.
    let mut extra = axum::Router::new();
    if let Some(repo) = &config.feature_repo {
        let features = keel_features::store::FeatureStore::open(repo)
            .await
            .map_err(|e| anyhow::anyhow!("feature repository {}: {e}", repo.display()))?;
        let features = Arc::new(features);
        features.spawn_refresh(std::time::Duration::from_secs(10));
        extra = extra.nest("/features", keel_features::server::routes(features));
    }
    let monitors = match &config.monitors {
        Some(path) => Some(start_monitors(path, &config).await?),
        None => None,
    };
    if let Some(service) = &monitors {
        service.start_schedules();
        let gauges = service.clone();
        extra = extra
            .merge(keel_live::routes::router(service.clone()))
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let gauges = gauges.clone();
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            gauges.render_metrics(),
                        )
                    }
                }),
            );
    }
    let schedules = match &config.schedules {
        Some(path) => {
            let specs = keel_pipeline::schedule::load(path)?;
            Some(keel_pipeline::schedule::Scheduler::new(specs))
        }
        None => None,
    };
    if let Some(scheduler) = &schedules {
        extra = extra.merge(schedule_routes(scheduler.clone()));
    }
    let app = keel_server::app_with(state, &options, extra);
    let address = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| {
            format!("cannot listen on {address} (is another server using the port? try --port)")
        })?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let shown_host = if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    println!(
        "keel {} listening on http://{}:{}",
        env!("CARGO_PKG_VERSION"),
        shown_host,
        local.port()
    );
    println!("  metadata:  sqlite://{}", config.sqlite_path.display());
    println!("  artifacts: {}", config.artifacts_destination.display());
    if let Some(repo) = &config.feature_repo {
        println!(
            "  features:  {} (Feast's HTTP API under /features)",
            repo.display()
        );
    }
    if let Some(service) = &monitors {
        println!(
            "  monitors:  {} over {} (API under /v2/monitors, gauges at /metrics)",
            service.specs().len(),
            config.artifacts_destination.join("inference-log").display()
        );
    }
    if let Some(scheduler) = &schedules {
        // Runs are tracked on this server, so the timers start once it listens.
        let own_host = if local.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            shown_host.clone()
        };
        scheduler.start(&format!("http://{own_host}:{}", local.port()));
        println!(
            "  schedules: {} pipeline(s) (listed at /api/2.0/keel/schedules)",
            scheduler.specs().len()
        );
    }
    println!("  allowed hosts: {}", config.allowed_hosts.join(", "));
    if !config.webhook_allowed_destinations.is_empty() {
        println!(
            "  webhook destinations allowed besides public addresses: {}",
            config.webhook_allowed_destinations.join(", ")
        );
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    Ok(())
}

/// `GET /api/2.0/keel/schedules` (schedules, next times, recent runs) and
/// `POST /api/2.0/keel/schedules/{name}/run` (run one now), with errors in
/// MLflow's format.
fn schedule_routes(scheduler: Arc<keel_pipeline::schedule::Scheduler>) -> axum::Router {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    use keel_pipeline::schedule::TriggerError;
    let listed = scheduler.clone();
    axum::Router::new()
        .route(
            "/api/2.0/keel/schedules",
            axum::routing::get(move || {
                let listed = listed.clone();
                async move { axum::Json(listed.describe()) }
            }),
        )
        .route(
            "/api/2.0/keel/schedules/{name}/run",
            axum::routing::post(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    let scheduler = scheduler.clone();
                    async move {
                        match scheduler.trigger(&name) {
                            Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"triggered": name})))
                                .into_response(),
                            Err(err) => {
                                let (status, code) = match err {
                                    TriggerError::UnknownSchedule(_) => {
                                        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
                                    }
                                    TriggerError::AlreadyRunning(_) => {
                                        (StatusCode::CONFLICT, "RESOURCE_CONFLICT")
                                    }
                                };
                                (
                                    status,
                                    axum::Json(serde_json::json!({"error_code": code, "message": err.to_string()})),
                                )
                                    .into_response()
                            }
                        }
                    }
                },
            ),
        )
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Monitors in the tracking server: over the inference log `keel serve`
/// writes into this server's artifact directory. No model is served here, so
/// every monitor names its `reference:` and the log is read as finished files.
async fn start_monitors(
    path: &std::path::Path,
    config: &ServerConfig,
) -> Result<keel_live::MonitorService> {
    let needs_reference: keel_live::service::PrepareSpec = Arc::new(
        |spec: keel_live::MonitorSpec| {
            if spec.reference.is_none() {
                return Err(format!(
                "monitor `{}` needs `reference:` in `keel server` (only `keel serve` knows the served model's run)",
                spec.name
            ));
            }
            Ok(spec)
        },
    );
    let mut specs = Vec::new();
    for spec in keel_live::spec::load(path).map_err(|err| anyhow::anyhow!("{err}"))? {
        specs.push(
            needs_reference(spec).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?,
        );
    }
    // Results, labels and API-defined monitors live in the metadata database
    // itself (their own tables; SQLite in WAL mode takes the second writer).
    let db = config.sqlite_path.clone();
    keel_live::MonitorService::open(
        specs,
        keel_live::service::ServiceOptions {
            log_root: config.artifacts_destination.join("inference-log"),
            db,
            flush: None,
            deliverer: Some(Arc::new(keel_tracking::webhooks::Deliverer::new(
                keel_tracking::webhooks::DestinationPolicy::new(
                    &config.webhook_allowed_destinations,
                ),
                keel_tracking::webhooks::DeliverySettings::default(),
            ))),
            prepare: Some(needs_reference),
        },
    )
    .await
    .map_err(|err| anyhow::anyhow!("{err}"))
}
