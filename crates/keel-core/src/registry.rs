//! Model registry entities and the `RegistryStore` trait (placeholder: the registry engineer fills this in).
