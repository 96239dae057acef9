//! The validated server configuration: flags and `KEEL_*` variables override
//! the config file, which overrides the defaults.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::cli::ServerFlags;

/// Keys of the optional TOML config file (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<String>,
    port: Option<u16>,
    backend_store_uri: Option<String>,
    artifacts_destination: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    cors_allowed_origins: Option<Vec<String>>,
    webhook_allowed_destinations: Option<Vec<String>>,
    max_request_bytes: Option<usize>,
    feature_repo: Option<String>,
    monitors: Option<String>,
    schedules: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Absolute path of the SQLite database file.
    pub sqlite_path: PathBuf,
    pub artifacts_destination: PathBuf,
    pub allowed_hosts: Vec<String>,
    pub cors_allowed_origins: Vec<String>,
    pub webhook_allowed_destinations: Vec<String>,
    pub max_request_bytes: usize,
    /// A feature repository whose feature server is mounted under `/features`.
    pub feature_repo: Option<PathBuf>,
    /// Monitors evaluated over `<artifacts>/inference-log`; results in `monitors.db`
    /// beside the metadata database.
    pub monitors: Option<PathBuf>,
    /// Pipelines reproduced on cron schedules.
    pub schedules: Option<PathBuf>,
}

impl ServerConfig {
    pub fn resolve(flags: ServerFlags) -> Result<ServerConfig> {
        let file = match &flags.config {
            None => FileConfig::default(),
            Some(path) => read_config_file(path)?,
        };
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let host = flags
            .host
            .or(file.host)
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let port = flags.port.or(file.port).unwrap_or(5000);
        let backend_store_uri = flags.backend_store_uri.or(file.backend_store_uri);
        let sqlite_path = match backend_store_uri {
            None => cwd.join("keel-data").join("keel.db"),
            Some(uri) => sqlite_path_of(&uri, &cwd)?,
        };
        let artifacts_destination = match flags.artifacts_destination.or(file.artifacts_destination)
        {
            None => cwd.join("keel-data").join("artifacts"),
            Some(dir) => {
                if dir.contains("://") {
                    bail!("--artifacts-destination '{dir}': only local directories are supported in this version");
                }
                absolute(Path::new(dir.strip_prefix("file:").unwrap_or(&dir)), &cwd)
            }
        };
        let mut allowed_hosts = flags
            .allowed_hosts
            .or(file.allowed_hosts)
            .unwrap_or_else(|| {
                ["localhost", "127.0.0.1", "::1", "[::1]"]
                    .iter()
                    .map(|h| h.to_string())
                    .collect()
            });
        if !matches!(host.as_str(), "0.0.0.0" | "::" | "[::]") && !allowed_hosts.contains(&host) {
            allowed_hosts.push(host.clone());
        }
        let cors_allowed_origins = flags
            .cors_allowed_origins
            .or(file.cors_allowed_origins)
            .unwrap_or_default();
        let webhook_allowed_destinations = flags
            .webhook_allowed_destinations
            .or(file.webhook_allowed_destinations)
            .unwrap_or_default();
        let max_request_bytes = flags
            .max_request_bytes
            .or(file.max_request_bytes)
            .unwrap_or(32 * 1024 * 1024);
        let feature_repo = flags
            .feature_repo
            .or(file.feature_repo.map(PathBuf::from))
            .map(|p| absolute(&p, &cwd));
        let monitors = flags
            .monitors
            .or(file.monitors.map(PathBuf::from))
            .map(|p| absolute(&p, &cwd));
        let schedules = flags
            .schedules
            .or(file.schedules.map(PathBuf::from))
            .map(|p| absolute(&p, &cwd));
        Ok(ServerConfig {
            feature_repo,
            monitors,
            schedules,
            host,
            port,
            sqlite_path,
            artifacts_destination,
            allowed_hosts,
            cors_allowed_origins,
            webhook_allowed_destinations,
            max_request_bytes,
        })
    }
}

fn read_config_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// `sqlite:///abs/path.db` (MLflow's form), `sqlite://rel.db`, or a plain path.
fn sqlite_path_of(uri: &str, cwd: &Path) -> Result<PathBuf> {
    if let Some(rest) = uri.strip_prefix("sqlite://") {
        if rest.is_empty() || rest == "/" {
            bail!("--backend-store-uri '{uri}' names no database file; use sqlite:///ABSOLUTE/PATH.db");
        }
        // sqlite:///abs → "/abs"; sqlite://rel → "rel" relative to the working directory.
        return Ok(absolute(Path::new(rest), cwd));
    }
    if uri.contains("://") {
        let scheme = uri.split("://").next().unwrap_or_default();
        bail!("--backend-store-uri scheme '{scheme}' is not supported yet; use sqlite:///PATH (PostgreSQL support is planned)");
    }
    Ok(absolute(Path::new(uri), cwd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_uris_resolve_like_mlflow() {
        let cwd = Path::new("/work");
        assert_eq!(
            sqlite_path_of("sqlite:///tmp/x.db", cwd).unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(
            sqlite_path_of("sqlite://x.db", cwd).unwrap(),
            PathBuf::from("/work/x.db")
        );
        assert_eq!(
            sqlite_path_of("data/x.db", cwd).unwrap(),
            PathBuf::from("/work/data/x.db")
        );
        assert!(sqlite_path_of("postgresql://u@h/db", cwd).is_err());
        assert!(sqlite_path_of("sqlite://", cwd).is_err());
    }
}
