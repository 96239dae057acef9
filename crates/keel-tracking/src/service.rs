//! `TrackingService`: validates requests as MLflow does, applies defaults, and
//! calls the store.

use std::sync::Arc;

use keel_core::search;
use keel_core::store::{
    ExperimentSearch, LoggedModelSearch, MetricHistoryQuery, NewLoggedModel, NewRun, Page,
    RunSearch, RunUpdate, TrackingStore,
};
use keel_core::tracking::{
    DatasetInput, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelInput, ModelOutput,
    Param, Run, RunInfo, Tag, ViewType,
};
use keel_core::{KeelError, Result};

use crate::validation::{self as v};

/// MLflow's default page size for run and experiment searches.
pub const SEARCH_MAX_RESULTS_DEFAULT: u32 = 1000;
/// The largest page a search may ask for.
pub const SEARCH_MAX_RESULTS_THRESHOLD: u32 = 50000;
/// At most this many runs per bulk metric-history request.
pub const MAX_RUNS_GET_METRIC_HISTORY_BULK: usize = 100;
/// At most this many samples per run in a bulk metric-history response.
pub const MAX_RESULTS_PER_RUN: u32 = 2500;

/// Tag that mirrors a run's name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

#[derive(Clone)]
pub struct TrackingService {
    store: Arc<dyn TrackingStore>,
}

fn page_size(max_results: Option<i64>, default: u32, limit: u32) -> Result<u32> {
    match max_results {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 || n > i64::from(limit) => Err(KeelError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be at most {limit}."
        ))),
        Some(n) => Ok(n as u32),
    }
}

impl TrackingService {
    pub fn new(store: Arc<dyn TrackingStore>) -> Self {
        TrackingService { store }
    }

    pub fn store(&self) -> &Arc<dyn TrackingStore> {
        &self.store
    }

    // ------------------------------------------------------------ experiments

    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<String> {
        v::validate_experiment_name(name)?;
        for tag in tags {
            v::validate_experiment_tag(tag)?;
        }
        let artifact_location = artifact_location.filter(|loc| !loc.is_empty());
        self.store
            .create_experiment(name, artifact_location, tags)
            .await
    }

    pub async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        v::validate_experiment_id(experiment_id)?;
        self.store.get_experiment(experiment_id).await
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        self.store.get_experiment_by_name(name).await
    }

    pub async fn search_experiments(
        &self,
        view_type: ViewType,
        filter: Option<&str>,
        order_by: &[String],
        max_results: Option<i64>,
        page_token: Option<String>,
    ) -> Result<Page<Experiment>> {
        let search = ExperimentSearch {
            view_type,
            filter: search::parse_experiment_filter(filter.unwrap_or(""))?,
            order_by: search::parse_experiment_order_by(order_by)?,
            max_results: page_size(
                max_results,
                SEARCH_MAX_RESULTS_DEFAULT,
                SEARCH_MAX_RESULTS_THRESHOLD,
            )?,
            page_token,
        };
        self.store.search_experiments(&search).await
    }

    pub async fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()> {
        v::validate_experiment_id(experiment_id)?;
        v::validate_experiment_name(new_name)?;
        self.store.rename_experiment(experiment_id, new_name).await
    }

    pub async fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        v::validate_experiment_id(experiment_id)?;
        self.store.delete_experiment(experiment_id).await
    }

    pub async fn restore_experiment(&self, experiment_id: &str) -> Result<()> {
        v::validate_experiment_id(experiment_id)?;
        self.store.restore_experiment(experiment_id).await
    }

    pub async fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<()> {
        v::validate_experiment_id(experiment_id)?;
        v::validate_experiment_tag(tag)?;
        self.store.set_experiment_tag(experiment_id, tag).await
    }

    pub async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()> {
        v::validate_experiment_id(experiment_id)?;
        self.store.delete_experiment_tag(experiment_id, key).await
    }

    // ------------------------------------------------------------ runs

    pub async fn create_run(&self, mut new_run: NewRun) -> Result<Run> {
        v::validate_experiment_id(&new_run.experiment_id)?;
        for (idx, tag) in new_run.tags.iter().enumerate() {
            v::validate_tag(tag, &format!("tags[{idx}]."))?;
        }
        // MLflow keeps the run name and the `mlflow.runName` tag equal.
        let tag_name = new_run
            .tags
            .iter()
            .find(|t| t.key == RUN_NAME_TAG)
            .map(|t| t.value.clone());
        match (new_run.run_name.is_empty(), tag_name) {
            (true, Some(name)) => new_run.run_name = name,
            (false, Some(name)) if name != new_run.run_name => {
                return Err(KeelError::invalid(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with \
                     different values (run_name='{}', mlflow.runName='{name}').",
                    new_run.run_name
                )));
            }
            _ => {}
        }
        if new_run.run_name.is_empty() {
            new_run.run_name = generate_run_name();
        }
        self.store.create_run(&new_run).await
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        v::validate_run_id(run_id)?;
        self.store.get_run(run_id).await
    }

    pub async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<RunInfo> {
        v::validate_run_id(run_id)?;
        self.store.update_run(run_id, update).await
    }

    pub async fn delete_run(&self, run_id: &str) -> Result<()> {
        v::validate_run_id(run_id)?;
        self.store.delete_run(run_id).await
    }

    pub async fn restore_run(&self, run_id: &str) -> Result<()> {
        v::validate_run_id(run_id)?;
        self.store.restore_run(run_id).await
    }

    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()> {
        v::validate_run_id(run_id)?;
        v::validate_batch_limits(metrics.len(), params.len(), tags.len())?;
        for (idx, metric) in metrics.iter().enumerate() {
            v::validate_metric(metric, &format!("metrics[{idx}]."))?;
        }
        for (idx, param) in params.iter().enumerate() {
            v::validate_param(param, &format!("params[{idx}]."))?;
        }
        for (idx, tag) in tags.iter().enumerate() {
            v::validate_tag(tag, &format!("tags[{idx}]."))?;
        }
        v::validate_param_keys_unique(params)?;
        self.store.log_batch(run_id, metrics, params, tags).await
    }

    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        v::validate_run_id(run_id)?;
        self.store.delete_tag(run_id, key).await
    }

    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> Result<()> {
        v::validate_run_id(run_id)?;
        for input in datasets {
            let dataset = &input.dataset;
            v::validate_length("Dataset name", v::MAX_DATASET_NAME_SIZE, &dataset.name)?;
            v::validate_length(
                "Dataset digest",
                v::MAX_DATASET_DIGEST_SIZE,
                &dataset.digest,
            )?;
            v::validate_length(
                "Dataset source",
                v::MAX_DATASET_SOURCE_SIZE,
                &dataset.source,
            )?;
            if let Some(schema) = &dataset.schema {
                v::validate_length("Dataset schema", v::MAX_DATASET_SCHEMA_SIZE, schema)?;
            }
            if let Some(profile) = &dataset.profile {
                v::validate_length("Dataset profile", v::MAX_DATASET_PROFILE_SIZE, profile)?;
            }
            for tag in &input.tags {
                v::validate_length("Input tag key", v::MAX_INPUT_TAG_KEY_SIZE, &tag.key)?;
                v::validate_length("Input tag value", v::MAX_INPUT_TAG_VALUE_SIZE, &tag.value)?;
            }
        }
        self.store.log_inputs(run_id, datasets, models).await
    }

    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        v::validate_run_id(run_id)?;
        self.store.log_outputs(run_id, models).await
    }

    pub async fn search_runs(
        &self,
        experiment_ids: Vec<String>,
        view_type: ViewType,
        filter: Option<&str>,
        order_by: &[String],
        max_results: Option<i64>,
        page_token: Option<String>,
    ) -> Result<Page<Run>> {
        for experiment_id in &experiment_ids {
            v::validate_experiment_id(experiment_id)?;
        }
        let search = RunSearch {
            experiment_ids,
            view_type,
            filter: search::parse_run_filter(filter.unwrap_or(""))?,
            order_by: search::parse_run_order_by(order_by)?,
            max_results: page_size(
                max_results,
                SEARCH_MAX_RESULTS_DEFAULT,
                SEARCH_MAX_RESULTS_THRESHOLD,
            )?,
            page_token,
        };
        if search.experiment_ids.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_page_token: None,
            });
        }
        self.store.search_runs(&search).await
    }

    pub async fn get_metric_history(&self, query: &MetricHistoryQuery) -> Result<Page<Metric>> {
        v::validate_run_id(&query.run_id)?;
        self.store.get_metric_history(query).await
    }

    pub async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        metric_key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: Option<i64>,
    ) -> Result<Vec<(String, Metric)>> {
        if run_ids.is_empty() {
            return Err(KeelError::invalid(
                "GetMetricHistoryBulkInterval request must specify at least one run_id.",
            ));
        }
        if run_ids.len() > MAX_RUNS_GET_METRIC_HISTORY_BULK {
            return Err(KeelError::invalid(format!(
                "GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_GET_METRIC_HISTORY_BULK} run_ids. Received {} run_ids.",
                run_ids.len()
            )));
        }
        for run_id in run_ids {
            v::validate_run_id(run_id)?;
        }
        let max_results = match max_results {
            None => MAX_RESULTS_PER_RUN,
            Some(n) if (1..=i64::from(MAX_RESULTS_PER_RUN)).contains(&n) => n as u32,
            Some(_) => {
                return Err(KeelError::invalid(format!(
                    "max_results must be between 1 and {MAX_RESULTS_PER_RUN}."
                )))
            }
        };
        match (start_step, end_step) {
            (Some(start), Some(end)) if start > end => {
                return Err(KeelError::invalid(format!(
                    "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
                )))
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(KeelError::invalid(
                    "If either start step or end step are specified, both must be specified.",
                ))
            }
            _ => {}
        }
        self.store
            .get_metric_history_bulk_interval(
                run_ids,
                metric_key,
                start_step,
                end_step,
                max_results,
            )
            .await
    }

    // ------------------------------------------------------------ logged models

    pub async fn create_logged_model(&self, new_model: NewLoggedModel) -> Result<LoggedModel> {
        v::validate_experiment_id(&new_model.experiment_id)?;
        for param in &new_model.params {
            v::validate_param(param, "params.")?;
        }
        for tag in &new_model.tags {
            v::validate_tag(tag, "tags.")?;
        }
        self.store.create_logged_model(&new_model).await
    }

    pub async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        self.store.get_logged_model(model_id).await
    }

    pub async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel> {
        self.store.finalize_logged_model(model_id, status).await
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<LoggedModel> {
        for tag in tags {
            v::validate_tag(tag, "tags.")?;
        }
        self.store.set_logged_model_tags(model_id, tags).await?;
        self.store.get_logged_model(model_id).await
    }

    pub async fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<()> {
        for (idx, param) in params.iter().enumerate() {
            v::validate_param(param, &format!("params[{idx}]."))?;
        }
        v::validate_param_keys_unique(params)?;
        self.store.log_logged_model_params(model_id, params).await
    }

    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        self.store.delete_logged_model_tag(model_id, key).await
    }

    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        self.store.delete_logged_model(model_id).await
    }

    pub async fn search_logged_models(
        &self,
        mut search: LoggedModelSearch,
        filter: Option<&str>,
        max_results: Option<i64>,
    ) -> Result<Page<LoggedModel>> {
        for experiment_id in &search.experiment_ids {
            v::validate_experiment_id(experiment_id)?;
        }
        search.filter = search::parse_logged_model_filter(filter.unwrap_or(""))?;
        search.max_results = page_size(
            max_results,
            SEARCH_MAX_RESULTS_DEFAULT,
            SEARCH_MAX_RESULTS_THRESHOLD,
        )?;
        self.store.search_logged_models(&search).await
    }
}

/// A readable default run name, as MLflow gives runs without one (`adjective-noun-NNN`).
fn generate_run_name() -> String {
    const ADJECTIVES: &[&str] = &[
        "brave", "calm", "clever", "bold", "bright", "swift", "quiet", "gentle", "keen", "lucky",
        "merry", "noble", "proud", "rare", "sharp", "steady", "sunny", "tidy", "vivid", "wise",
    ];
    const NOUNS: &[&str] = &[
        "ant", "bass", "crab", "deer", "eel", "fox", "goat", "hawk", "ibis", "jay", "koi", "lark",
        "mole", "newt", "owl", "pike", "quail", "ray", "seal", "toad",
    ];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize ^ (d.as_secs() as usize))
        .unwrap_or(0);
    let adjective = ADJECTIVES[nanos % ADJECTIVES.len()];
    let noun = NOUNS[(nanos / ADJECTIVES.len()) % NOUNS.len()];
    format!("{adjective}-{noun}-{}", nanos % 1000)
}
