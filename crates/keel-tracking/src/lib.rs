//! The tracking service: MLflow's validation rules, limits and defaults in
//! front of an `Arc<dyn TrackingStore>`. Handlers convert wire types to domain
//! types and call this service; the store never sees unvalidated input.

pub mod lineage;
pub mod registry;
pub mod service;
pub mod validation;
pub mod webhooks;

pub use registry::RegistryService;
pub use service::TrackingService;
pub use webhooks::WebhookService;
