//! Keel's domain: entities of the ML lifecycle, error codes, and the store
//! traits every backend implements. Nothing here knows HTTP or SQL.

pub mod error;
pub mod page;
pub mod registry;
pub mod search;
pub mod store;
pub mod tensor;
pub mod tracking;
pub mod webhooks;

pub use error::{ErrorCode, KeelError, Result};
