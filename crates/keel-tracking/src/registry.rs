//! The model registry service (placeholder: the registry engineer fills this in).

/// Validates registry requests and calls the registry store.
#[derive(Clone, Default)]
pub struct RegistryService {}
