//! MLflow model registry endpoints (placeholder: the registry engineer fills this in).

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
