//! Tracking entities: experiments, runs, metrics, params, tags, datasets, logged models.

use std::fmt;
use std::str::FromStr;

use crate::{KeelError, Result};

/// A key/value tag on an experiment, run, dataset input or logged model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Whether an entity is live or in the trash (restorable until garbage collected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStage {
    Active,
    Deleted,
}

impl LifecycleStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Active => "active",
            LifecycleStage::Deleted => "deleted",
        }
    }
}

impl FromStr for LifecycleStage {
    type Err = KeelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(LifecycleStage::Active),
            "deleted" => Ok(LifecycleStage::Deleted),
            other => Err(KeelError::invalid(format!(
                "unknown lifecycle stage '{other}'"
            ))),
        }
    }
}

/// Which lifecycle stages a search returns (MLflow's `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    /// The lifecycle stages this view includes.
    pub fn stages(self) -> &'static [&'static str] {
        match self {
            ViewType::ActiveOnly => &["active"],
            ViewType::DeletedOnly => &["deleted"],
            ViewType::All => &["active", "deleted"],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: LifecycleStage,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<Tag>,
}

/// Run status, as MLflow names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

impl FromStr for RunStatus {
    type Err = KeelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "RUNNING" => Ok(RunStatus::Running),
            "SCHEDULED" => Ok(RunStatus::Scheduled),
            "FINISHED" => Ok(RunStatus::Finished),
            "FAILED" => Ok(RunStatus::Failed),
            "KILLED" => Ok(RunStatus::Killed),
            other => Err(KeelError::invalid(format!(
                "invalid run status '{other}': expected one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"
            ))),
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    pub run_name: String,
    pub user_id: String,
    pub status: RunStatus,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: LifecycleStage,
}

/// One metric observation. `value` may be NaN or infinite.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    /// MLflow 3: the logged model and dataset this metric was computed for, if any.
    pub model_id: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

impl Metric {
    pub fn new(key: impl Into<String>, value: f64, timestamp: i64, step: i64) -> Self {
        Metric {
            key: key.into(),
            value,
            timestamp,
            step,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub key: String,
    pub value: String,
}

impl Param {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Param {
            key: key.into(),
            value: value.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInput {
    pub tags: Vec<Tag>,
    pub dataset: Dataset,
}

/// A logged model consumed by a run (MLflow 3 `ModelInput`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInput {
    pub model_id: String,
}

/// A logged model produced by a run at a step (MLflow 3 `ModelOutput`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunData {
    /// The latest value of each metric (highest step, then timestamp, then value).
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunInputs {
    pub dataset_inputs: Vec<DatasetInput>,
    pub model_inputs: Vec<ModelInput>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOutputs {
    pub model_outputs: Vec<ModelOutput>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    pub outputs: RunOutputs,
}

/// Status of a logged model's artifacts (MLflow 3 `LoggedModelStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedModelStatus {
    Pending,
    Ready,
    Failed,
}

impl LoggedModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
            LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
            LoggedModelStatus::Failed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }
}

impl FromStr for LoggedModelStatus {
    type Err = KeelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "LOGGED_MODEL_PENDING" => Ok(LoggedModelStatus::Pending),
            "LOGGED_MODEL_READY" => Ok(LoggedModelStatus::Ready),
            "LOGGED_MODEL_UPLOAD_FAILED" => Ok(LoggedModelStatus::Failed),
            other => Err(KeelError::invalid(format!(
                "invalid logged model status '{other}'"
            ))),
        }
    }
}

/// A model logged by `mlflow.<flavor>.log_model` (MLflow 3 `LoggedModel`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModel {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub status: LoggedModelStatus,
    pub status_message: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub tags: Vec<Tag>,
    pub params: Vec<Param>,
    pub metrics: Vec<Metric>,
}
