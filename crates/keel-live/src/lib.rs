//! Keel's live model monitors (issue 5): monitors defined in YAML per served
//! model ([`spec`]) are evaluated over the inference log ([`logread`]) on
//! schedule and on demand by the [`service::MonitorService`]: data drift per
//! feature with Evidently's rules (keel-monitor), missing-value shares, and
//! performance once ground-truth labels are posted ([`performance`]).
//! Results go to a SQLite store ([`store`]) and the latest to Prometheus
//! gauges ([`gauges`]); alert rules ([`alerts`]) notify webhooks; [`routes`]
//! is the HTTP API `keel serve` mounts.

pub mod alerts;
pub mod gauges;
pub mod logread;
pub mod performance;
pub mod routes;
pub mod service;
pub mod spec;
pub mod store;

pub use service::{MonitorResult, MonitorService, Status};
pub use spec::MonitorSpec;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{0}")]
    Spec(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("inference log: {0}")]
    Log(String),
    #[error("monitor store: {0}")]
    Store(String),
}
