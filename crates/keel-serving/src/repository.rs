//! The model-repository extension's contract: load and unload models by
//! name. `keel serve` implements it over the model URIs it was given.

use async_trait::async_trait;

use crate::{Parameters, RepositoryEntry, ServingError};

#[async_trait]
pub trait ModelRepository: Send + Sync + 'static {
    /// Loads (or reloads) the model `name`; `parameters` may carry a `uri`.
    async fn load(&self, name: &str, parameters: &Parameters) -> Result<(), ServingError>;

    /// Stops serving `name` and frees its runtimes.
    async fn unload(&self, name: &str) -> Result<(), ServingError>;

    /// Models this repository knows how to load, loaded or not.
    fn available(&self) -> Vec<RepositoryEntry>;
}
