//! MLflow model registry wire types (placeholder: the registry engineer fills this in).
