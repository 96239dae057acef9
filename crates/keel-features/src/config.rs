//! `feature_store.yaml`: the repository's project name, where its registry
//! lives and which online store it uses. Feast's keys are accepted (`provider`,
//! `offline_store`, `entity_key_serialization_version`, `auth`) so a Feast
//! repository's file reads unchanged; Keel uses the ones it needs.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{FeatureError, Result};

/// The file name Feast and Keel look for at the root of a feature repository.
pub const CONFIG_FILE: &str = "feature_store.yaml";

#[derive(Debug, Clone, PartialEq)]
pub struct RepoConfig {
    /// The feature repository's root (the directory holding `feature_store.yaml`).
    pub root: PathBuf,
    pub project: String,
    /// The SQLite registry file, absolute.
    pub registry: PathBuf,
    pub online_store: OnlineStoreConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OnlineStoreConfig {
    /// The embedded default: one SQLite file, no server needed.
    Sqlite { path: PathBuf },
    /// A Redis server; `url` is a `redis://` URL.
    Redis { url: String },
}

#[derive(Deserialize)]
struct RawConfig {
    project: String,
    #[serde(default)]
    registry: Option<RawRegistry>,
    #[serde(default)]
    online_store: Option<RawOnlineStore>,
    #[serde(default)]
    offline_store: Option<RawOfflineStore>,
    // Accepted for Feast compatibility; Keel has one provider and one key encoding.
    #[serde(default)]
    #[allow(dead_code)]
    provider: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    entity_key_serialization_version: Option<u32>,
    #[serde(default)]
    #[allow(dead_code)]
    auth: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRegistry {
    Path(String),
    Table { path: String },
}

#[derive(Deserialize)]
struct RawOnlineStore {
    #[serde(rename = "type", default = "default_online_type")]
    kind: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    connection_string: Option<String>,
}

#[derive(Deserialize)]
struct RawOfflineStore {
    #[serde(rename = "type")]
    kind: String,
}

fn default_online_type() -> String {
    "sqlite".to_owned()
}

impl RepoConfig {
    /// Reads `feature_store.yaml` from the repository at `root`.
    pub fn load(root: &Path) -> Result<Self> {
        let file = root.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&file).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                FeatureError::invalid(format!(
                    "{} has no {CONFIG_FILE}; is it a feature repository? (`keel features init` creates one)",
                    root.display()
                ))
            } else {
                FeatureError::io(&file, error)
            }
        })?;
        Self::parse(root, &text)
    }

    pub fn parse(root: &Path, text: &str) -> Result<Self> {
        let raw: RawConfig = serde_yaml_ng::from_str(text)
            .map_err(|error| FeatureError::invalid(format!("{CONFIG_FILE}: {error}")))?;
        if raw.project.is_empty()
            || !raw
                .project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(FeatureError::invalid(format!(
                "{CONFIG_FILE}: project `{}` must be a non-empty name of letters, digits and underscores",
                raw.project
            )));
        }
        if let Some(offline) = &raw.offline_store {
            if offline.kind != "file" {
                return Err(FeatureError::invalid(format!(
                    "{CONFIG_FILE}: offline_store type `{}` is not supported; Keel reads file sources (type: file)",
                    offline.kind
                )));
            }
        }
        let registry = match raw.registry {
            Some(RawRegistry::Path(path) | RawRegistry::Table { path }) => path,
            None => "data/registry.db".to_owned(),
        };
        let online_store = match raw.online_store {
            None => OnlineStoreConfig::Sqlite {
                path: root.join("data/online_store.db"),
            },
            Some(online) => match online.kind.as_str() {
                "sqlite" => OnlineStoreConfig::Sqlite {
                    path: root.join(online.path.as_deref().unwrap_or("data/online_store.db")),
                },
                "redis" => OnlineStoreConfig::Redis {
                    url: redis_url(
                        online
                            .connection_string
                            .as_deref()
                            .unwrap_or("127.0.0.1:6379"),
                    )?,
                },
                other => {
                    return Err(FeatureError::invalid(format!(
                    "{CONFIG_FILE}: online_store type `{other}` is not supported (sqlite or redis)"
                )))
                }
            },
        };
        Ok(Self {
            root: root.to_path_buf(),
            project: raw.project,
            registry: root.join(registry),
            online_store,
        })
    }
}

/// Feast writes Redis connection strings as `host:port[,password=...][,ssl=true][,db=N]`;
/// a `redis://` or `rediss://` URL is taken as it is.
fn redis_url(connection: &str) -> Result<String> {
    if connection.starts_with("redis://") || connection.starts_with("rediss://") {
        return Ok(connection.to_owned());
    }
    let mut parts = connection.split(',');
    let host = parts.next().unwrap_or_default().trim();
    if host.is_empty() {
        return Err(FeatureError::invalid(format!(
            "{CONFIG_FILE}: online_store connection_string `{connection}` names no host"
        )));
    }
    let (mut password, mut ssl, mut db) = (None, false, None);
    for part in parts {
        match part.trim().split_once('=') {
            Some(("password", value)) => password = Some(value.to_owned()),
            Some(("ssl", value)) => ssl = value.eq_ignore_ascii_case("true"),
            Some(("db", value)) => db = Some(value.to_owned()),
            _ => {
                return Err(FeatureError::invalid(format!(
                    "{CONFIG_FILE}: unknown option `{part}` in online_store connection_string"
                )))
            }
        }
    }
    let scheme = if ssl { "rediss" } else { "redis" };
    let auth = password.map(|p| format!(":{p}@")).unwrap_or_default();
    let db = db.map(|d| format!("/{d}")).unwrap_or_default();
    Ok(format!("{scheme}://{auth}{host}{db}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_feast_config() {
        let root = Path::new("/repo");
        let config = RepoConfig::parse(
            root,
            "project: bench\nregistry: data/registry.db\nprovider: local\noffline_store:\n    type: file\nonline_store:\n    type: sqlite\n    path: data/online_store.db\nentity_key_serialization_version: 3\nauth:\n    type: no_auth\n",
        )
        .expect("config");
        assert_eq!(config.project, "bench");
        assert_eq!(config.registry, root.join("data/registry.db"));
        assert_eq!(
            config.online_store,
            OnlineStoreConfig::Sqlite {
                path: root.join("data/online_store.db")
            }
        );
    }

    #[test]
    fn reads_redis_connection_strings() {
        let config = RepoConfig::parse(
            Path::new("/r"),
            "project: p\nonline_store:\n  type: redis\n  connection_string: \"localhost:6379,password=s3cret,db=2\"\n",
        )
        .expect("config");
        assert_eq!(
            config.online_store,
            OnlineStoreConfig::Redis {
                url: "redis://:s3cret@localhost:6379/2".into()
            }
        );
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        for text in [
            "project: \"a-b\"\n",
            "project: p\noffline_store:\n  type: bigquery\n",
            "project: p\nonline_store:\n  type: dynamodb\n",
            "registry: x\n",
        ] {
            let error = RepoConfig::parse(Path::new("/r"), text).expect_err(text);
            assert!(matches!(error, FeatureError::Invalid(_)), "{text}: {error}");
        }
    }
}
