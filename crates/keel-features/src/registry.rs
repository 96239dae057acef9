//! The registry: what `keel features apply` stored, in a SQLite file
//! (`registry:` in feature_store.yaml). The feature server and retrieval read
//! definitions from here, not from the YAML files, so what serves is what was
//! applied. Each object keeps a version that `apply` bumps when its
//! definition changes (lineage records these), and each view keeps the
//! windows it was materialized over.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use serde::{de::DeserializeOwned, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use crate::definitions::Definitions;
use crate::{FeatureError, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS feature_objects (
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project, kind, name)
);
CREATE TABLE IF NOT EXISTS feature_object_history (
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    spec TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    PRIMARY KEY (project, kind, name, version)
);
CREATE TABLE IF NOT EXISTS materializations (
    project TEXT NOT NULL,
    view TEXT NOT NULL,
    start_ts INTEGER NOT NULL,
    end_ts INTEGER NOT NULL,
    rows_written INTEGER NOT NULL,
    materialized_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS materializations_view ON materializations (project, view, end_ts);
";

/// The kinds of registry objects, as stored and shown.
pub const KINDS: [&str; 7] = [
    "entity",
    "source",
    "push_source",
    "feature_view",
    "feature_service",
    "request_source",
    "on_demand_feature_view",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Unchanged => "unchanged",
        }
    }
}

/// One line of a plan: what `apply` does (or did) to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: &'static str,
    pub name: String,
    pub action: Action,
    /// The version after the change (the current one for `Unchanged`, the last for `Delete`).
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.changes.iter().all(|c| c.action == Action::Unchanged)
    }

    pub fn of(&self, action: Action) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.action == action)
    }
}

/// A materialization window of one view, in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
    pub rows_written: i64,
}

#[derive(Clone)]
pub struct Registry {
    pool: SqlitePool,
    project: String,
}

impl Registry {
    /// Opens (creating if needed) the registry file for `project`.
    pub async fn open(path: &Path, project: &str) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FeatureError::io(parent, e))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self {
            pool,
            project: project.to_owned(),
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    async fn stored(&self) -> Result<BTreeMap<(String, String), (String, i64)>> {
        let rows =
            sqlx::query("SELECT kind, name, spec, version FROM feature_objects WHERE project = ?")
                .bind(&self.project)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                (
                    (row.get::<String, _>(0), row.get::<String, _>(1)),
                    (row.get::<String, _>(2), row.get::<i64, _>(3)),
                )
            })
            .collect())
    }

    /// What `apply` would change, without changing anything.
    pub async fn plan(&self, definitions: &Definitions) -> Result<Plan> {
        let stored = self.stored().await?;
        let wanted = specs(definitions)?;
        let mut changes = Vec::new();
        for ((kind, name), spec) in &wanted {
            let change = match stored.get(&(kind.to_string(), name.clone())) {
                None => (Action::Create, 1),
                Some((old, version)) if old == spec => (Action::Unchanged, *version),
                Some((_, version)) => (Action::Update, version + 1),
            };
            changes.push(Change {
                kind,
                name: name.clone(),
                action: change.0,
                version: change.1,
            });
        }
        for ((kind, name), (_, version)) in &stored {
            let Some(kind) = KINDS.iter().find(|k| **k == kind) else {
                continue;
            };
            if !wanted.contains_key(&(*kind, name.clone())) {
                changes.push(Change {
                    kind,
                    name: name.clone(),
                    action: Action::Delete,
                    version: *version,
                });
            }
        }
        Ok(Plan { changes })
    }

    /// Stores `definitions` as the registry's whole content (objects no longer
    /// defined are deleted), in one transaction, and returns what changed.
    pub async fn apply(&self, definitions: &Definitions) -> Result<Plan> {
        definitions.validate()?;
        let plan = self.plan(definitions).await?;
        let wanted = specs(definitions)?;
        let now = chrono::Utc::now().timestamp_micros();
        let mut tx = self.pool.begin().await?;
        for change in &plan.changes {
            match change.action {
                Action::Unchanged => {}
                Action::Delete => {
                    sqlx::query(
                        "DELETE FROM feature_objects WHERE project = ? AND kind = ? AND name = ?",
                    )
                    .bind(&self.project)
                    .bind(change.kind)
                    .bind(&change.name)
                    .execute(&mut *tx)
                    .await?;
                }
                Action::Create | Action::Update => {
                    let spec = &wanted[&(change.kind, change.name.clone())];
                    sqlx::query(
                        "INSERT INTO feature_objects (project, kind, name, spec, version, created_at, updated_at)
                         VALUES (?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT (project, kind, name) DO UPDATE SET
                           spec = excluded.spec, version = excluded.version, updated_at = excluded.updated_at",
                    )
                    .bind(&self.project)
                    .bind(change.kind)
                    .bind(&change.name)
                    .bind(spec)
                    .bind(change.version)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT OR REPLACE INTO feature_object_history (project, kind, name, version, spec, applied_at)
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&self.project)
                    .bind(change.kind)
                    .bind(&change.name)
                    .bind(change.version)
                    .bind(spec)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(plan)
    }

    /// The applied definitions. An empty registry gives empty definitions.
    pub async fn definitions(&self) -> Result<Definitions> {
        let mut definitions = Definitions::default();
        for ((kind, name), (spec, _)) in self.stored().await? {
            let shown = name.clone();
            let corrupt = |e: serde_json::Error| {
                FeatureError::invalid(format!(
                    "registry entry {kind} `{shown}` cannot be read ({e}); run `keel features apply` again"
                ))
            };
            match kind.as_str() {
                "entity" => insert(&mut definitions.entities, name, &spec).map_err(corrupt)?,
                "source" => insert(&mut definitions.sources, name, &spec).map_err(corrupt)?,
                "push_source" => {
                    insert(&mut definitions.push_sources, name, &spec).map_err(corrupt)?
                }
                "feature_view" => {
                    insert(&mut definitions.feature_views, name, &spec).map_err(corrupt)?
                }
                "feature_service" => {
                    insert(&mut definitions.feature_services, name, &spec).map_err(corrupt)?
                }
                "request_source" => {
                    insert(&mut definitions.request_sources, name, &spec).map_err(corrupt)?
                }
                "on_demand_feature_view" => {
                    insert(&mut definitions.on_demand_feature_views, name, &spec)
                        .map_err(corrupt)?
                }
                _ => {}
            }
        }
        Ok(definitions)
    }

    /// The current version of every object, keyed by (kind, name).
    pub async fn versions(&self) -> Result<BTreeMap<(String, String), i64>> {
        Ok(self
            .stored()
            .await?
            .into_iter()
            .map(|(key, (_, version))| (key, version))
            .collect())
    }

    pub async fn record_materialization(&self, view: &str, interval: Interval) -> Result<()> {
        sqlx::query(
            "INSERT INTO materializations (project, view, start_ts, end_ts, rows_written, materialized_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&self.project)
        .bind(view)
        .bind(interval.start)
        .bind(interval.end)
        .bind(interval.rows_written)
        .bind(chrono::Utc::now().timestamp_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The windows `view` was materialized over, oldest first.
    pub async fn materializations(&self, view: &str) -> Result<Vec<Interval>> {
        let rows = sqlx::query(
            "SELECT start_ts, end_ts, rows_written FROM materializations
             WHERE project = ? AND view = ? ORDER BY materialized_at, rowid",
        )
        .bind(&self.project)
        .bind(view)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| Interval {
                start: row.get(0),
                end: row.get(1),
                rows_written: row.get(2),
            })
            .collect())
    }

    /// The latest end of `view`'s materializations: where `materialize-incremental` starts.
    pub async fn most_recent_end(&self, view: &str) -> Result<Option<i64>> {
        let end: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(end_ts) FROM materializations WHERE project = ? AND view = ?",
        )
        .bind(&self.project)
        .bind(view)
        .fetch_one(&self.pool)
        .await?;
        Ok(end)
    }

    /// Removes the project's objects and materialization records.
    pub async fn teardown(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "feature_objects",
            "feature_object_history",
            "materializations",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE project = ?"))
                .bind(&self.project)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn insert<T: DeserializeOwned>(
    map: &mut BTreeMap<String, T>,
    name: String,
    spec: &str,
) -> std::result::Result<(), serde_json::Error> {
    map.insert(name, serde_json::from_str(spec)?);
    Ok(())
}

/// Every object of `definitions` as (kind, name) -> canonical JSON spec.
fn specs(definitions: &Definitions) -> Result<BTreeMap<(&'static str, String), String>> {
    fn add<T: Serialize>(
        out: &mut BTreeMap<(&'static str, String), String>,
        kind: &'static str,
        items: &BTreeMap<String, T>,
    ) -> Result<()> {
        for (name, item) in items {
            let spec = serde_json::to_string(item)
                .map_err(|e| FeatureError::invalid(format!("{kind} `{name}`: {e}")))?;
            out.insert((kind, name.clone()), spec);
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    add(&mut out, "entity", &definitions.entities)?;
    add(&mut out, "source", &definitions.sources)?;
    add(&mut out, "push_source", &definitions.push_sources)?;
    add(&mut out, "feature_view", &definitions.feature_views)?;
    add(&mut out, "feature_service", &definitions.feature_services)?;
    add(&mut out, "request_source", &definitions.request_sources)?;
    add(
        &mut out,
        "on_demand_feature_view",
        &definitions.on_demand_feature_views,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &str = "
entities:
  - {name: driver, join_keys: [driver_id]}
sources:
  - {name: s, path: data/s.parquet, timestamp_field: ts}
feature_views:
  - name: v
    entities: [driver]
    source: s
    schema: [{name: f, dtype: Float64}]
";

    fn defs(text: &str) -> Definitions {
        let mut d = Definitions::default();
        d.add_text("f.yaml", text).expect("parse");
        d
    }

    #[tokio::test]
    async fn apply_creates_updates_and_deletes_with_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::open(&dir.path().join("data/registry.db"), "p")
            .await
            .expect("open");
        let first = registry.apply(&defs(DEFS)).await.expect("apply");
        assert_eq!(first.of(Action::Create).count(), 3);
        assert!(registry.plan(&defs(DEFS)).await.expect("plan").is_noop());
        assert_eq!(registry.definitions().await.expect("read"), defs(DEFS));

        let changed = DEFS.replace("Float64", "Float32");
        let plan = registry.plan(&defs(&changed)).await.expect("plan");
        let update: Vec<_> = plan.of(Action::Update).collect();
        assert_eq!(update.len(), 1);
        assert_eq!(
            (update[0].kind, update[0].name.as_str(), update[0].version),
            ("feature_view", "v", 2)
        );
        // plan changes nothing
        assert_eq!(registry.definitions().await.expect("read"), defs(DEFS));
        registry.apply(&defs(&changed)).await.expect("apply");
        let versions = registry.versions().await.expect("versions");
        assert_eq!(versions[&("feature_view".into(), "v".into())], 2);

        let without_view = "entities:\n  - {name: driver, join_keys: [driver_id]}\nsources:\n  - {name: s, path: data/s.parquet, timestamp_field: ts}\n";
        let plan = registry.apply(&defs(without_view)).await.expect("apply");
        assert_eq!(
            plan.of(Action::Delete)
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["v"]
        );
        assert!(registry
            .definitions()
            .await
            .expect("read")
            .feature_views
            .is_empty());
    }

    #[tokio::test]
    async fn materializations_are_recorded_per_view_and_project() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("registry.db");
        let registry = Registry::open(&path, "p").await.expect("open");
        let other = Registry::open(&path, "q").await.expect("open");
        assert_eq!(registry.most_recent_end("v").await.expect("end"), None);
        for (start, end) in [(0, 10), (10, 30), (5, 20)] {
            registry
                .record_materialization(
                    "v",
                    Interval {
                        start,
                        end,
                        rows_written: 1,
                    },
                )
                .await
                .expect("record");
        }
        assert_eq!(registry.most_recent_end("v").await.expect("end"), Some(30));
        assert_eq!(registry.materializations("v").await.expect("list").len(), 3);
        assert_eq!(other.most_recent_end("v").await.expect("end"), None);
        registry.teardown().await.expect("teardown");
        assert_eq!(registry.most_recent_end("v").await.expect("end"), None);
    }
}
