//! `SqliteStore`: the tracking store on one SQLite file in WAL mode.
//!
//! Invariants:
//! - every write goes through `write_pool`, which has exactly one connection,
//!   and every write transaction starts with `BEGIN IMMEDIATE`; writers queue
//!   in the pool instead of failing with "database is locked";
//! - reads use `read_pool` (several `query_only` connections); WAL lets them
//!   run while a write is in progress;
//! - each entity is assembled from a few set-based queries (`IN (...)` over the
//!   ids of a page), never one query per row.

mod errors;
mod experiments;
mod logged_models;
mod logging;
mod metrics;
mod migrate;
mod registry;
mod runs;
mod search;
mod sql;
mod webhooks;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use keel_core::store::{
    ExperimentSearch, LoggedModelSearch, MetricHistoryQuery, NewLoggedModel, NewRun, Page,
    RunSearch, RunUpdate, TrackingStore,
};
use keel_core::tracking::{
    DatasetInput, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelInput, ModelOutput,
    Param, Run, RunInfo, Tag,
};
use keel_core::{KeelError, Result};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use errors::DbResultExt;

/// How long a statement waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for the write connection before answering "busy".
const WRITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
const READ_POOL_SIZE: u32 = 4;

/// The tracking store on an embedded SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    write_pool: SqlitePool,
    read_pool: SqlitePool,
    default_artifact_root: String,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating it and its parent folders if needed) and migrates the
    /// database at `url_or_path`: `sqlite:///abs/path.db`, `sqlite://rel.db`,
    /// `sqlite:rel.db` or a plain path. New experiments store their artifacts
    /// under `<default_artifact_root>/<experiment id>`.
    pub async fn open(url_or_path: &str, default_artifact_root: &str) -> Result<SqliteStore> {
        let path = database_path(url_or_path)?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent).await.map_err(|err| {
                KeelError::internal(format!(
                    "cannot create the database folder {}: {err}",
                    parent.display()
                ))
            })?;
        }

        let base_options = SqliteConnectOptions::new()
            .filename(&path)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        // WAL with synchronous=NORMAL loses nothing a committed transaction wrote
        // when the process is killed; only a power cut can drop the last commits.
        let write_options = base_options
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let write_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(WRITE_ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(write_options)
            .await
            .db(&format!("open the database {}", path.display()))?;

        {
            let mut conn = write_pool.acquire().await.db("open the database")?;
            migrate::run(&mut conn, default_artifact_root).await?;
        }

        let read_options = base_options.pragma("query_only", "ON");
        let read_pool = SqlitePoolOptions::new()
            .max_connections(READ_POOL_SIZE)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(read_options)
            .await
            .db(&format!("open the database {} for reading", path.display()))?;

        Ok(SqliteStore {
            write_pool,
            read_pool,
            default_artifact_root: default_artifact_root.to_string(),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version this build migrates databases to.
    pub fn schema_version() -> i64 {
        migrate::latest_version()
    }

    /// Waits for running statements, then closes every connection (a WAL
    /// checkpoint happens as the last one closes).
    pub async fn close(&self) {
        self.read_pool.close().await;
        self.write_pool.close().await;
    }

    /// A write transaction holding SQLite's write lock from its first statement.
    async fn begin_write(&self, context: &str) -> Result<Transaction<'static, Sqlite>> {
        self.write_pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .db(context)
    }

    /// A read transaction: every query in it sees one snapshot of the database.
    async fn begin_read(&self, context: &str) -> Result<Transaction<'static, Sqlite>> {
        self.read_pool.begin().await.db(context)
    }

    async fn read_conn(&self, context: &str) -> Result<PoolConnection<Sqlite>> {
        self.read_pool.acquire().await.db(context)
    }
}

/// The file named by a `sqlite:` URL or a plain path.
fn database_path(url_or_path: &str) -> Result<PathBuf> {
    let path = match url_or_path.strip_prefix("sqlite:") {
        Some(rest) => {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            rest.split('?').next().unwrap_or(rest)
        }
        None => url_or_path,
    };
    if path.is_empty() || path == ":memory:" || path == "/:memory:" {
        return Err(KeelError::invalid(format!(
            "'{url_or_path}' does not name a database file; give a path such as sqlite:///var/lib/keel/keel.db"
        )));
    }
    PathBuf::from_str(path)
        .map_err(|err| KeelError::invalid(format!("invalid database path '{url_or_path}': {err}")))
}

#[async_trait]
impl TrackingStore for SqliteStore {
    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<String> {
        experiments::create(self, name, artifact_location, tags).await
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        experiments::get(self, experiment_id).await
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        experiments::get_by_name(self, name).await
    }

    async fn search_experiments(&self, search: &ExperimentSearch) -> Result<Page<Experiment>> {
        experiments::search(self, search).await
    }

    async fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()> {
        experiments::rename(self, experiment_id, new_name).await
    }

    async fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        experiments::delete(self, experiment_id).await
    }

    async fn restore_experiment(&self, experiment_id: &str) -> Result<()> {
        experiments::restore(self, experiment_id).await
    }

    async fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<()> {
        experiments::set_tag(self, experiment_id, tag).await
    }

    async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()> {
        experiments::delete_tag(self, experiment_id, key).await
    }

    async fn create_run(&self, new_run: &NewRun) -> Result<Run> {
        runs::create(self, new_run).await
    }

    async fn get_run(&self, run_id: &str) -> Result<Run> {
        runs::get(self, run_id).await
    }

    async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<RunInfo> {
        runs::update(self, run_id, update).await
    }

    async fn delete_run(&self, run_id: &str) -> Result<()> {
        runs::delete(self, run_id).await
    }

    async fn restore_run(&self, run_id: &str) -> Result<()> {
        runs::restore(self, run_id).await
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()> {
        logging::log_batch(self, run_id, metrics, params, tags).await
    }

    async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        runs::delete_tag(self, run_id, key).await
    }

    async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> Result<()> {
        logging::log_inputs(self, run_id, datasets, models).await
    }

    async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        logging::log_outputs(self, run_id, models).await
    }

    async fn search_runs(&self, search: &RunSearch) -> Result<Page<Run>> {
        runs::search(self, search).await
    }

    async fn get_metric_history(&self, query: &MetricHistoryQuery) -> Result<Page<Metric>> {
        metrics::history(self, query).await
    }

    async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        metric_key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: u32,
    ) -> Result<Vec<(String, Metric)>> {
        metrics::bulk_interval(self, run_ids, metric_key, start_step, end_step, max_results).await
    }

    async fn create_logged_model(&self, new_model: &NewLoggedModel) -> Result<LoggedModel> {
        logged_models::create(self, new_model).await
    }

    async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        logged_models::get(self, model_id).await
    }

    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel> {
        logged_models::finalize(self, model_id, status).await
    }

    async fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()> {
        logged_models::set_tags(self, model_id, tags).await
    }

    async fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<()> {
        logged_models::log_params(self, model_id, params).await
    }

    async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        logged_models::delete_tag(self, model_id, key).await
    }

    async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        logged_models::delete(self, model_id).await
    }

    async fn search_logged_models(&self, search: &LoggedModelSearch) -> Result<Page<LoggedModel>> {
        logged_models::search(self, search).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_and_paths() {
        let cases = [
            ("sqlite:///var/lib/keel.db", "/var/lib/keel.db"),
            ("sqlite://rel/keel.db", "rel/keel.db"),
            ("sqlite:keel.db", "keel.db"),
            ("/tmp/keel.db", "/tmp/keel.db"),
            ("sqlite:////tmp/keel.db?mode=rwc", "//tmp/keel.db"),
        ];
        for (input, expected) in cases {
            let path = database_path(input).expect("a valid database location");
            assert_eq!(path, PathBuf::from(expected), "{input}");
        }
        assert!(database_path("sqlite://").is_err());
        assert!(database_path("sqlite:///:memory:").is_err());
    }
}
