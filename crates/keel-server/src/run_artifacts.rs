//! Artifacts of runs and logged models, read through the artifact proxy's
//! store. Only `mlflow-artifacts:` locations are served: an experiment created
//! with a foreign artifact location is written to by the client directly, and
//! the server never reads paths outside its own artifact root.

use keel_api::mlflow::FileInfo;
use keel_artifacts::RelativeArtifactPath;
use keel_core::Result;

use crate::AppState;

/// The scheme of locations served by the artifact proxy.
pub const PROXY_SCHEME: &str = "mlflow-artifacts:";

/// The store path of a proxied artifact URI, or `None` for a foreign location.
pub fn proxied_path(artifact_uri: &str) -> Option<&str> {
    let rest = artifact_uri.strip_prefix(PROXY_SCHEME)?;
    Some(rest.trim_start_matches('/'))
}

/// Lists `relative` under an artifact root URI; paths come back relative to the root.
pub async fn list_run_artifacts(
    state: &AppState,
    root_uri: &str,
    relative: &str,
) -> Result<Vec<FileInfo>> {
    let Some(root) = proxied_path(root_uri) else {
        return Ok(Vec::new());
    };
    let relative = relative.trim_matches('/');
    let joined = if relative.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{relative}")
    };
    let dir = RelativeArtifactPath::parse(&joined)?;
    let entries = state.artifacts.list(&dir).await?;
    Ok(entries
        .iter()
        .map(|entry| FileInfo {
            path: if relative.is_empty() {
                entry.name().to_string()
            } else {
                format!("{relative}/{}", entry.name())
            },
            is_dir: entry.is_dir,
            file_size: entry
                .file_size
                .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        })
        .collect())
}
