//! Where monitor results and ground-truth labels live: one SQLite file
//! (`monitors.db` beside the inference log by default). Results are kept as
//! JSON with their time and verdict in columns, so they can be queried over
//! time; labels are keyed by model, request id and row, a later post for the
//! same key replacing the earlier one.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use crate::service::MonitorResult;
use crate::LiveError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS monitor_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    evaluated_at_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    dataset_drifted INTEGER,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_results_by_time ON monitor_results (monitor, evaluated_at_ms);
CREATE TABLE IF NOT EXISTS monitor_specs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    model TEXT NOT NULL,
    request_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    label TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (model, request_id, row)
);
";

/// A ground-truth label for one row of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub request_id: String,
    pub row: i64,
    pub label: String,
}

#[derive(Clone)]
pub struct ResultStore {
    pool: SqlitePool,
}

fn db_error(err: sqlx::Error) -> LiveError {
    LiveError::Store(err.to_string())
}

impl ResultStore {
    /// Opens (creating if needed) the store at `path`.
    pub async fn open(path: &Path) -> Result<ResultStore, LiveError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| {
                LiveError::Store(format!("cannot create {}: {err}", parent.display()))
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db_error)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|err| LiveError::Store(format!("cannot open {}: {err}", path.display())))?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(db_error)?;
        Ok(ResultStore { pool })
    }

    pub async fn save_result(&self, result: &MonitorResult) -> Result<(), LiveError> {
        let json =
            serde_json::to_string(result).map_err(|err| LiveError::Store(err.to_string()))?;
        sqlx::query(
            "INSERT INTO monitor_results (monitor, model, version, evaluated_at_ms, status, dataset_drifted, result)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&result.monitor)
        .bind(&result.model)
        .bind(&result.version)
        .bind(result.evaluated_at.timestamp_millis())
        .bind(result.status.as_str())
        .bind(result.drift.as_ref().map(|drift| drift.dataset_drifted))
        .bind(json)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Results of `monitor` evaluated at or after `since_ms`, newest first.
    pub async fn results(
        &self,
        monitor: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<MonitorResult>, LiveError> {
        let rows = sqlx::query(
            "SELECT result FROM monitor_results WHERE monitor = ? AND evaluated_at_ms >= ?
             ORDER BY evaluated_at_ms DESC, id DESC LIMIT ?",
        )
        .bind(monitor)
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let text: String = row.get(0);
                serde_json::from_str(&text).map_err(|err| {
                    LiveError::Store(format!("a stored result is unreadable: {err}"))
                })
            })
            .collect()
    }

    /// Stores labels (replacing earlier ones for the same rows), in one transaction.
    pub async fn save_labels(
        &self,
        model: &str,
        labels: &[Label],
        now_ms: i64,
    ) -> Result<(), LiveError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for label in labels {
            sqlx::query(
                "INSERT INTO labels (model, request_id, row, label, received_at_ms) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (model, request_id, row) DO UPDATE SET label = excluded.label, received_at_ms = excluded.received_at_ms",
            )
            .bind(model)
            .bind(&label.request_id)
            .bind(label.row)
            .bind(&label.label)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Labels of `model` received at or after `since_ms`, by (request id, row).
    pub async fn labels_since(
        &self,
        model: &str,
        since_ms: i64,
    ) -> Result<HashMap<(String, i64), String>, LiveError> {
        let rows = sqlx::query(
            "SELECT request_id, row, label FROM labels WHERE model = ? AND received_at_ms >= ?",
        )
        .bind(model)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    (row.get::<String, _>(0), row.get::<i64, _>(1)),
                    row.get::<String, _>(2),
                )
            })
            .collect())
    }

    /// Monitors defined through the API: (name, JSON definition as posted).
    pub async fn monitor_specs(&self) -> Result<Vec<(String, serde_json::Value)>, LiveError> {
        let rows = sqlx::query("SELECT name, spec FROM monitor_specs ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let name: String = row.get(0);
                let text: String = row.get(1);
                let body = serde_json::from_str(&text).map_err(|err| {
                    LiveError::Store(format!("the stored monitor `{name}` is unreadable: {err}"))
                })?;
                Ok((name, body))
            })
            .collect()
    }

    pub async fn save_monitor_spec(
        &self,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<(), LiveError> {
        sqlx::query(
            "INSERT INTO monitor_specs (name, spec, updated_at_ms) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(name)
        .bind(body.to_string())
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn delete_monitor_spec(&self, name: &str) -> Result<(), LiveError> {
        sqlx::query("DELETE FROM monitor_specs WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
