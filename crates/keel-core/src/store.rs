//! The metadata-store traits. Services hold `Arc<dyn TrackingStore>`; SQLite
//! (and later PostgreSQL) implement them and pass one conformance suite.
//!
//! Stores enforce what needs the database to be atomic: uniqueness, param
//! immutability, no writes to deleted runs, existence. Services validate
//! shapes and limits before calling the store.

use async_trait::async_trait;

use crate::search::{Filter, OrderBy};
use crate::tracking::{
    DatasetInput, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelInput, ModelOutput,
    Param, Run, RunInfo, RunStatus, Tag, ViewType,
};
use crate::Result;

/// One page of results and the token of the next page, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ExperimentSearch {
    pub view_type: ViewType,
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub max_results: u32,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub view_type: ViewType,
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    pub max_results: u32,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub experiment_id: String,
    pub user_id: String,
    pub run_name: String,
    pub start_time: Option<i64>,
    pub tags: Vec<Tag>,
}

/// Changes to a run's info; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct MetricHistoryQuery {
    pub run_id: String,
    pub metric_key: String,
    pub max_results: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewLoggedModel {
    pub experiment_id: String,
    pub name: String,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default)]
pub struct LoggedModelSearch {
    pub experiment_ids: Vec<String>,
    pub filter: Filter,
    pub order_by: Vec<OrderBy>,
    /// `(name, digest)` pairs; metrics-based filters consider only these datasets when given.
    pub datasets: Vec<(String, Option<String>)>,
    pub max_results: u32,
    pub page_token: Option<String>,
}

#[async_trait]
pub trait TrackingStore: Send + Sync + 'static {
    // --- experiments ---
    /// Creates an experiment; `artifact_location` defaults to `<default root>/<id>`.
    async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<String>;
    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment>;
    /// Any lifecycle stage; `ResourceDoesNotExist` when no experiment has the name.
    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment>;
    async fn search_experiments(&self, search: &ExperimentSearch) -> Result<Page<Experiment>>;
    async fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()>;
    async fn delete_experiment(&self, experiment_id: &str) -> Result<()>;
    async fn restore_experiment(&self, experiment_id: &str) -> Result<()>;
    async fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<()>;
    async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()>;

    // --- runs ---
    async fn create_run(&self, new_run: &NewRun) -> Result<Run>;
    async fn get_run(&self, run_id: &str) -> Result<Run>;
    async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<RunInfo>;
    async fn delete_run(&self, run_id: &str) -> Result<()>;
    async fn restore_run(&self, run_id: &str) -> Result<()>;
    /// Atomically logs metrics, params and tags to an active run. A param that
    /// already has a different value fails the whole batch.
    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()>;
    async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()>;
    async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> Result<()>;
    async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()>;
    async fn search_runs(&self, search: &RunSearch) -> Result<Page<Run>>;
    /// Every observation of one metric of one run, ordered by step, timestamp, value.
    async fn get_metric_history(&self, query: &MetricHistoryQuery) -> Result<Page<Metric>>;
    /// The observations of one metric across runs with `start_step <= step <= end_step`,
    /// at most `max_results` per run, sampled evenly over the steps present.
    async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        metric_key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: u32,
    ) -> Result<Vec<(String, Metric)>>;

    // --- logged models (MLflow 3) ---
    async fn create_logged_model(&self, new_model: &NewLoggedModel) -> Result<LoggedModel>;
    async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel>;
    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel>;
    async fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()>;
    /// Adds params to a logged model; like run params, a logged value never changes.
    async fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<()>;
    async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()>;
    async fn delete_logged_model(&self, model_id: &str) -> Result<()>;
    async fn search_logged_models(&self, search: &LoggedModelSearch) -> Result<Page<LoggedModel>>;
}
