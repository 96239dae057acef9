//! Wire types of Keel's own API (`/api/keel/v1/...`), which answers questions
//! MLflow's API needs several calls for. Unlike the MLflow types these are
//! shaped for people and `jq`: tags and params are JSON objects, versions are
//! integers, absent things are `null`. They derive `Deserialize` too, so
//! `keel-client` reads exactly what the server writes.

use std::collections::BTreeMap;

use keel_core::registry as registry_domain;
use keel_core::tracking as domain;
use serde::{Deserialize, Serialize};

use crate::json::{deserialize_f64, serialize_f64};

/// `GET /api/keel/v1/lineage/model-versions/{name}/{version}`: a registered
/// version and everything that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersionLineage {
    pub model_version: LineageModelVersion,
    /// The MLflow 3 logged model the version was registered from, if any.
    pub logged_model: Option<LineageLoggedModel>,
    /// The run that produced the version (its own `run_id`, else the logged model's source run).
    pub run: Option<LineageRun>,
    /// Links the version names but the server could not follow (e.g. a run purged since).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageModelVersion {
    pub name: String,
    pub version: i64,
    pub aliases: Vec<String>,
    pub current_stage: String,
    pub description: Option<String>,
    pub source: String,
    /// Where the version's files are (what `get-download-uri` answers).
    pub storage_location: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageLoggedModel {
    pub model_id: String,
    pub name: String,
    pub experiment_id: String,
    pub artifact_location: String,
    pub status: String,
    pub status_message: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub lifecycle_stage: String,
    pub params: BTreeMap<String, String>,
    /// Every metric logged for the model (one per key and dataset), sorted by key.
    pub metrics: Vec<LineageMetric>,
    pub tags: BTreeMap<String, String>,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageRun {
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: String,
    /// `null` when the experiment could not be read.
    pub experiment_name: Option<String>,
    pub user_id: String,
    pub status: String,
    pub lifecycle_stage: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub params: BTreeMap<String, String>,
    /// The latest value of each metric, sorted by key.
    pub metrics: Vec<LineageMetric>,
    pub tags: BTreeMap<String, String>,
    /// Datasets the run logged with `log-inputs`.
    pub datasets: Vec<LineageDataset>,
    /// Logged models the run consumed.
    pub model_inputs: Vec<String>,
    /// Logged models the run produced.
    pub model_outputs: Vec<LineageModelOutput>,
}

/// One metric value; non-finite values travel as `"NaN"` / `"Infinity"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageMetric {
    pub key: String,
    #[serde(serialize_with = "serialize_f64", deserialize_with = "deserialize_f64")]
    pub value: f64,
    pub step: i64,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageDataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    /// The `mlflow.data.context` input tag (`training`, `eval`, ...), if set.
    pub context: Option<String>,
    pub schema: Option<String>,
    pub profile: Option<String>,
    /// Every tag of the input, `mlflow.data.context` included.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageModelOutput {
    pub model_id: String,
    pub step: i64,
}

/// The dataset-input tag MLflow uses for the role of a dataset in a run.
pub const DATASET_CONTEXT_TAG: &str = "mlflow.data.context";

fn tag_map(tags: &[domain::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|tag| (tag.key.clone(), tag.value.clone()))
        .collect()
}

fn param_map(params: &[domain::Param]) -> BTreeMap<String, String> {
    params
        .iter()
        .map(|param| (param.key.clone(), param.value.clone()))
        .collect()
}

fn sorted_metrics(metrics: &[domain::Metric]) -> Vec<LineageMetric> {
    let mut out: Vec<LineageMetric> = metrics.iter().map(LineageMetric::from).collect();
    out.sort_by(|a, b| {
        (&a.key, &a.dataset_name, &a.dataset_digest).cmp(&(
            &b.key,
            &b.dataset_name,
            &b.dataset_digest,
        ))
    });
    out
}

impl From<&domain::Metric> for LineageMetric {
    fn from(metric: &domain::Metric) -> Self {
        LineageMetric {
            key: metric.key.clone(),
            value: metric.value,
            step: metric.step,
            timestamp: metric.timestamp,
            dataset_name: metric.dataset_name.clone(),
            dataset_digest: metric.dataset_digest.clone(),
        }
    }
}

impl From<&registry_domain::ModelVersion> for LineageModelVersion {
    fn from(version: &registry_domain::ModelVersion) -> Self {
        LineageModelVersion {
            name: version.name.clone(),
            version: version.version,
            aliases: version.aliases.clone(),
            current_stage: version.current_stage.as_str().to_string(),
            description: version.description.clone(),
            source: version.source.clone(),
            storage_location: version.storage_location.clone(),
            run_id: version.run_id.clone(),
            model_id: version.model_id.clone(),
            tags: tag_map(&version.tags),
            creation_timestamp: version.creation_timestamp,
            last_updated_timestamp: version.last_updated_timestamp,
        }
    }
}

impl From<&domain::LoggedModel> for LineageLoggedModel {
    fn from(model: &domain::LoggedModel) -> Self {
        LineageLoggedModel {
            model_id: model.model_id.clone(),
            name: model.name.clone(),
            experiment_id: model.experiment_id.clone(),
            artifact_location: model.artifact_location.clone(),
            status: model.status.as_str().to_string(),
            status_message: model.status_message.clone(),
            model_type: model.model_type.clone(),
            source_run_id: model.source_run_id.clone(),
            lifecycle_stage: model.lifecycle_stage.as_str().to_string(),
            params: param_map(&model.params),
            metrics: sorted_metrics(&model.metrics),
            tags: tag_map(&model.tags),
            creation_timestamp_ms: model.creation_timestamp_ms,
            last_updated_timestamp_ms: model.last_updated_timestamp_ms,
        }
    }
}

impl From<&domain::DatasetInput> for LineageDataset {
    fn from(input: &domain::DatasetInput) -> Self {
        let dataset = &input.dataset;
        LineageDataset {
            name: dataset.name.clone(),
            digest: dataset.digest.clone(),
            source_type: dataset.source_type.clone(),
            source: dataset.source.clone(),
            context: input
                .tags
                .iter()
                .rev()
                .find(|tag| tag.key == DATASET_CONTEXT_TAG)
                .map(|tag| tag.value.clone()),
            schema: dataset.schema.clone(),
            profile: dataset.profile.clone(),
            tags: tag_map(&input.tags),
        }
    }
}

impl LineageRun {
    /// A run with the name of its experiment, when known.
    pub fn new(run: &domain::Run, experiment_name: Option<String>) -> Self {
        LineageRun {
            run_id: run.info.run_id.clone(),
            run_name: run.info.run_name.clone(),
            experiment_id: run.info.experiment_id.clone(),
            experiment_name,
            user_id: run.info.user_id.clone(),
            status: run.info.status.as_str().to_string(),
            lifecycle_stage: run.info.lifecycle_stage.as_str().to_string(),
            start_time: run.info.start_time,
            end_time: run.info.end_time,
            artifact_uri: run.info.artifact_uri.clone(),
            params: param_map(&run.data.params),
            metrics: sorted_metrics(&run.data.metrics),
            tags: tag_map(&run.data.tags),
            datasets: run
                .inputs
                .dataset_inputs
                .iter()
                .map(LineageDataset::from)
                .collect(),
            model_inputs: run
                .inputs
                .model_inputs
                .iter()
                .map(|input| input.model_id.clone())
                .collect(),
            model_outputs: run
                .outputs
                .model_outputs
                .iter()
                .map(|output| LineageModelOutput {
                    model_id: output.model_id.clone(),
                    step: output.step,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::tracking::{
        Dataset, DatasetInput, LifecycleStage, Metric, Param, Run, RunData, RunInfo, RunInputs,
        RunOutputs, RunStatus, Tag,
    };

    fn run() -> Run {
        Run {
            info: RunInfo {
                run_id: "r1".into(),
                experiment_id: "0".into(),
                run_name: "brave-fox".into(),
                user_id: "ada".into(),
                status: RunStatus::Finished,
                start_time: Some(1),
                end_time: None,
                artifact_uri: "mlflow-artifacts:/0/r1/artifacts".into(),
                lifecycle_stage: LifecycleStage::Active,
            },
            data: RunData {
                metrics: vec![
                    Metric::new("rmse", f64::NAN, 5, 2),
                    Metric::new("acc", 0.9, 5, 2),
                ],
                params: vec![Param::new("alpha", "0.5")],
                tags: vec![Tag::new("team", "search")],
            },
            inputs: RunInputs {
                dataset_inputs: vec![DatasetInput {
                    tags: vec![Tag::new(DATASET_CONTEXT_TAG, "training")],
                    dataset: Dataset {
                        name: "iris".into(),
                        digest: "abc".into(),
                        source_type: "code".into(),
                        source: "{}".into(),
                        schema: None,
                        profile: None,
                    },
                }],
                model_inputs: vec![],
            },
            outputs: RunOutputs::default(),
        }
    }

    #[test]
    fn runs_become_maps_sorted_metrics_and_dataset_contexts() {
        let wire = LineageRun::new(&run(), Some("Default".into()));
        let json = serde_json::to_value(&wire).unwrap();
        assert_eq!(json["params"]["alpha"], "0.5");
        assert_eq!(json["tags"]["team"], "search");
        assert_eq!(json["metrics"][0]["key"], "acc");
        assert_eq!(json["metrics"][1]["value"], "NaN");
        assert_eq!(json["datasets"][0]["context"], "training");
        assert_eq!(json["experiment_name"], "Default");
        assert!(json["end_time"].is_null());
    }

    #[test]
    fn lineage_round_trips_through_json() {
        let lineage = ModelVersionLineage {
            model_version: LineageModelVersion {
                name: "clf".into(),
                version: 2,
                aliases: vec!["champion".into()],
                current_stage: "None".into(),
                description: None,
                source: "models:/m-1".into(),
                storage_location: "mlflow-artifacts:/0/models/m-1/artifacts".into(),
                run_id: Some("r1".into()),
                model_id: None,
                tags: BTreeMap::new(),
                creation_timestamp: 1,
                last_updated_timestamp: 2,
            },
            logged_model: None,
            run: Some(LineageRun::new(&run(), None)),
            notes: vec![],
        };
        let text = serde_json::to_string(&lineage).unwrap();
        let back: ModelVersionLineage = serde_json::from_str(&text).unwrap();
        let metrics = &back.run.as_ref().unwrap().metrics;
        assert!(metrics[1].value.is_nan());
        assert_eq!(back.model_version, lineage.model_version);
    }
}
