//! MLflow tracking API wire types (requests and responses) and their
//! conversions from and to `keel_core::tracking`.

use keel_core::tracking as domain;
use serde::{Deserialize, Serialize};

use crate::json::{
    deserialize_opt_f64, deserialize_opt_i64, deserialize_string_list, serialize_f64,
};

// ---------------------------------------------------------------- entities

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct KeyValue {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

impl From<&domain::Tag> for KeyValue {
    fn from(tag: &domain::Tag) -> Self {
        KeyValue {
            key: Some(tag.key.clone()),
            value: Some(tag.value.clone()),
        }
    }
}

impl From<&domain::Param> for KeyValue {
    fn from(param: &domain::Param) -> Self {
        KeyValue {
            key: Some(param.key.clone()),
            value: Some(param.value.clone()),
        }
    }
}

fn tags_out(tags: &[domain::Tag]) -> Vec<KeyValue> {
    tags.iter().map(KeyValue::from).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: String,
    pub last_update_time: i64,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

impl From<&domain::Experiment> for Experiment {
    fn from(e: &domain::Experiment) -> Self {
        Experiment {
            experiment_id: e.experiment_id.clone(),
            name: e.name.clone(),
            artifact_location: e.artifact_location.clone(),
            lifecycle_stage: e.lifecycle_stage.as_str().to_string(),
            last_update_time: e.last_update_time,
            creation_time: e.creation_time,
            tags: tags_out(&e.tags),
        }
    }
}

/// A metric as it travels in requests and responses.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Metric {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(
        default,
        deserialize_with = "deserialize_opt_f64",
        serialize_with = "ser_opt_f64"
    )]
    pub value: Option<f64>,
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

fn ser_opt_f64<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => serialize_f64(v, serializer),
        None => serializer.serialize_none(),
    }
}

impl From<&domain::Metric> for Metric {
    fn from(m: &domain::Metric) -> Self {
        Metric {
            key: Some(m.key.clone()),
            value: Some(m.value),
            timestamp: Some(m.timestamp),
            step: Some(m.step),
            dataset_name: m.dataset_name.clone(),
            dataset_digest: m.dataset_digest.clone(),
            model_id: m.model_id.clone(),
            run_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricWithRunId {
    pub key: String,
    #[serde(serialize_with = "serialize_f64")]
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    pub run_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_uuid: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: String,
}

impl From<&domain::RunInfo> for RunInfo {
    fn from(info: &domain::RunInfo) -> Self {
        RunInfo {
            run_id: info.run_id.clone(),
            run_uuid: info.run_id.clone(),
            run_name: info.run_name.clone(),
            experiment_id: info.experiment_id.clone(),
            user_id: info.user_id.clone(),
            status: info.status.as_str().to_string(),
            start_time: info.start_time,
            end_time: info.end_time,
            artifact_uri: info.artifact_uri.clone(),
            lifecycle_stage: info.lifecycle_stage.as_str().to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RunData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

/// A dataset as it travels in `log-inputs` requests and run responses.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Dataset {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub source_type: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct DatasetInput {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(default)]
    pub dataset: Option<Dataset>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ModelInput {
    #[serde(default)]
    pub model_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ModelOutput {
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default, deserialize_with = "deserialize_opt_i64")]
    pub step: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RunInputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_inputs: Vec<ModelInput>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RunOutputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_outputs: Vec<ModelOutput>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    pub outputs: RunOutputs,
}

impl From<&domain::Dataset> for Dataset {
    fn from(d: &domain::Dataset) -> Self {
        Dataset {
            name: Some(d.name.clone()),
            digest: Some(d.digest.clone()),
            source_type: Some(d.source_type.clone()),
            source: Some(d.source.clone()),
            schema: d.schema.clone(),
            profile: d.profile.clone(),
        }
    }
}

impl From<&domain::Run> for Run {
    fn from(run: &domain::Run) -> Self {
        Run {
            info: RunInfo::from(&run.info),
            data: RunData {
                metrics: run.data.metrics.iter().map(Metric::from).collect(),
                params: run.data.params.iter().map(KeyValue::from).collect(),
                tags: tags_out(&run.data.tags),
            },
            inputs: RunInputs {
                dataset_inputs: run
                    .inputs
                    .dataset_inputs
                    .iter()
                    .map(|input| DatasetInput {
                        tags: tags_out(&input.tags),
                        dataset: Some(Dataset::from(&input.dataset)),
                    })
                    .collect(),
                model_inputs: run
                    .inputs
                    .model_inputs
                    .iter()
                    .map(|m| ModelInput {
                        model_id: Some(m.model_id.clone()),
                    })
                    .collect(),
            },
            outputs: RunOutputs {
                model_outputs: run
                    .outputs
                    .model_outputs
                    .iter()
                    .map(|m| ModelOutput {
                        model_id: Some(m.model_id.clone()),
                        step: Some(m.step),
                    })
                    .collect(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub artifact_uri: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct LoggedModelData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

impl From<&domain::LoggedModel> for LoggedModel {
    fn from(m: &domain::LoggedModel) -> Self {
        LoggedModel {
            info: LoggedModelInfo {
                model_id: m.model_id.clone(),
                experiment_id: m.experiment_id.clone(),
                name: m.name.clone(),
                creation_timestamp_ms: m.creation_timestamp_ms,
                last_updated_timestamp_ms: m.last_updated_timestamp_ms,
                artifact_uri: m.artifact_location.clone(),
                status: m.status.as_str().to_string(),
                model_type: m.model_type.clone(),
                source_run_id: m.source_run_id.clone(),
                status_message: m.status_message.clone(),
                tags: tags_out(&m.tags),
            },
            data: LoggedModelData {
                params: m.params.iter().map(KeyValue::from).collect(),
                metrics: m.metrics.iter().map(Metric::from).collect(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

// ---------------------------------------------------------------- requests

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CreateExperiment {
    pub name: Option<String>,
    pub artifact_location: Option<String>,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ExperimentIdRequest {
    pub experiment_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct GetExperimentByName {
    pub experiment_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SearchExperiments {
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub max_results: Option<i64>,
    pub page_token: Option<String>,
    pub filter: Option<String>,
    #[serde(deserialize_with = "deserialize_string_list")]
    pub order_by: Vec<String>,
    pub view_type: Option<ViewTypeWire>,
}

/// `ViewType` as a name or its protobuf number.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum ViewTypeWire {
    Name(String),
    Number(i64),
}

impl ViewTypeWire {
    pub fn to_domain(&self) -> Result<domain::ViewType, String> {
        match self {
            ViewTypeWire::Name(name) => match name.as_str() {
                "ACTIVE_ONLY" | "1" => Ok(domain::ViewType::ActiveOnly),
                "DELETED_ONLY" | "2" => Ok(domain::ViewType::DeletedOnly),
                "ALL" | "3" => Ok(domain::ViewType::All),
                other => Err(format!(
                    "invalid view type '{other}': expected ACTIVE_ONLY, DELETED_ONLY or ALL"
                )),
            },
            ViewTypeWire::Number(1) => Ok(domain::ViewType::ActiveOnly),
            ViewTypeWire::Number(2) => Ok(domain::ViewType::DeletedOnly),
            ViewTypeWire::Number(3) => Ok(domain::ViewType::All),
            ViewTypeWire::Number(other) => Err(format!("invalid view type {other}")),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UpdateExperiment {
    pub experiment_id: Option<String>,
    pub new_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SetExperimentTag {
    pub experiment_id: Option<String>,
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DeleteExperimentTag {
    pub experiment_id: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CreateRun {
    pub experiment_id: Option<String>,
    pub user_id: Option<String>,
    pub run_name: Option<String>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub start_time: Option<i64>,
    pub tags: Vec<KeyValue>,
}

/// Requests naming a run by `run_id` (or the legacy `run_uuid`).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RunIdRequest {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UpdateRun {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
    pub status: Option<String>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LogMetric {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
    pub key: Option<String>,
    #[serde(deserialize_with = "deserialize_opt_f64")]
    pub value: Option<f64>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub timestamp: Option<i64>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub step: Option<i64>,
    pub model_id: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LogParamOrSetTag {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DeleteTag {
    pub run_id: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LogBatch {
    pub run_id: Option<String>,
    pub metrics: Vec<Metric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LogInputs {
    pub run_id: Option<String>,
    pub datasets: Vec<DatasetInput>,
    pub models: Vec<ModelInput>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LogOutputs {
    pub run_id: Option<String>,
    pub models: Vec<ModelOutput>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SearchRuns {
    #[serde(deserialize_with = "deserialize_string_list")]
    pub experiment_ids: Vec<String>,
    pub filter: Option<String>,
    pub run_view_type: Option<ViewTypeWire>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub max_results: Option<i64>,
    #[serde(deserialize_with = "deserialize_string_list")]
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct GetMetricHistory {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
    pub metric_key: Option<String>,
    pub page_token: Option<String>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub max_results: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct GetMetricHistoryBulkInterval {
    #[serde(deserialize_with = "deserialize_string_list")]
    pub run_ids: Vec<String>,
    pub metric_key: Option<String>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub start_step: Option<i64>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub end_step: Option<i64>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub max_results: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ListArtifacts {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
    pub path: Option<String>,
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CreateLoggedModel {
    pub experiment_id: Option<String>,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FinalizeLoggedModel {
    pub model_id: Option<String>,
    pub status: Option<LoggedModelStatusWire>,
}

/// `LoggedModelStatus` as a name or its protobuf number.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum LoggedModelStatusWire {
    Name(String),
    Number(i64),
}

impl LoggedModelStatusWire {
    pub fn to_domain(&self) -> Result<domain::LoggedModelStatus, String> {
        let name = match self {
            LoggedModelStatusWire::Name(name) => name.clone(),
            LoggedModelStatusWire::Number(1) => "LOGGED_MODEL_PENDING".into(),
            LoggedModelStatusWire::Number(2) => "LOGGED_MODEL_READY".into(),
            LoggedModelStatusWire::Number(3) => "LOGGED_MODEL_UPLOAD_FAILED".into(),
            LoggedModelStatusWire::Number(other) => other.to_string(),
        };
        name.parse().map_err(|e: keel_core::KeelError| e.message)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SetLoggedModelTags {
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LogLoggedModelParams {
    pub params: Vec<KeyValue>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LoggedModelDatasetFilter {
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LoggedModelOrderBy {
    pub field_name: Option<String>,
    pub ascending: Option<bool>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SearchLoggedModels {
    #[serde(deserialize_with = "deserialize_string_list")]
    pub experiment_ids: Vec<String>,
    pub filter: Option<String>,
    pub datasets: Vec<LoggedModelDatasetFilter>,
    #[serde(deserialize_with = "deserialize_opt_i64")]
    pub max_results: Option<i64>,
    pub order_by: Vec<LoggedModelOrderBy>,
    pub page_token: Option<String>,
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Serialize)]
pub struct CreateExperimentResponse {
    pub experiment_id: String,
}

#[derive(Debug, Serialize)]
pub struct ExperimentResponse {
    pub experiment: Experiment,
}

#[derive(Debug, Serialize)]
pub struct SearchExperimentsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<Experiment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RunResponse {
    pub run: Run,
}

#[derive(Debug, Serialize)]
pub struct UpdateRunResponse {
    pub run_info: RunInfo,
}

#[derive(Debug, Serialize)]
pub struct SearchRunsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MetricHistoryResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MetricHistoryBulkIntervalResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricWithRunId>,
}

#[derive(Debug, Serialize)]
pub struct ListArtifactsResponse {
    pub root_uri: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LoggedModelResponse {
    pub model: LoggedModel,
}

#[derive(Debug, Serialize)]
pub struct SearchLoggedModelsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<LoggedModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// MLflow's error body.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error_code: String,
    pub message: String,
}
