//! Keel's feature store. Feature definitions in YAML with Feast's data model
//! (entities, file sources, feature views, feature services), a registry in
//! SQLite, point-in-time correct historical retrieval over Parquet/CSV sources,
//! materialization into an online store (embedded SQLite or Redis), and a
//! feature server that speaks Feast's HTTP API.

pub mod config;
pub mod definitions;
mod error;
pub mod expr;
pub mod offline;
pub mod online;
pub mod registry;
pub mod server;
pub mod store;
pub mod values;

pub use error::{FeatureError, Result};
