//! MLflow tracking endpoints: experiments, runs, metrics, run artifacts.
//! Mounted under both `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow`.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_api::mlflow as w;
use keel_core::store::{MetricHistoryQuery, NewRun, RunUpdate};
use keel_core::tracking::{
    Dataset, DatasetInput, Metric, ModelInput, ModelOutput, Param, Tag, ViewType,
};
use keel_core::KeelError;
use keel_tracking::validation::MAX_BATCH_LOG_REQUEST_SIZE;
use serde_json::{json, Value};

use crate::error::{missing, required, ApiResult};
use crate::extract::{parse_json_body, MlflowRequest};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/experiments/create", post(create_experiment))
        .route("/experiments/get", get(get_experiment))
        .route("/experiments/get-by-name", get(get_experiment_by_name))
        .route(
            "/experiments/search",
            get(search_experiments).post(search_experiments),
        )
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route(
            "/experiments/delete-experiment-tag",
            post(delete_experiment_tag),
        )
        .route("/runs/create", post(create_run))
        .route("/runs/get", get(get_run))
        .route("/runs/update", post(update_run))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/runs/search", post(search_runs).get(search_runs))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_param))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/runs/outputs", post(log_outputs))
        .route("/metrics/get-history", get(get_metric_history))
        .route(
            "/metrics/get-history-bulk-interval",
            get(get_metric_history_bulk_interval),
        )
        .route("/artifacts/list", get(list_artifacts))
}

fn empty() -> Json<Value> {
    Json(json!({}))
}

fn view_type(wire: Option<&w::ViewTypeWire>) -> ApiResult<ViewType> {
    match wire {
        None => Ok(ViewType::ActiveOnly),
        Some(v) => v.to_domain().map_err(|msg| KeelError::invalid(msg).into()),
    }
}

fn run_id_of(run_id: Option<String>, run_uuid: Option<String>) -> ApiResult<String> {
    match (run_id, run_uuid) {
        (Some(id), _) if !id.is_empty() => Ok(id),
        (_, Some(id)) if !id.is_empty() => Ok(id),
        _ => Err(missing("run_id")),
    }
}

fn tag_in(kv: w::KeyValue, path: &str) -> ApiResult<Tag> {
    let key = required(kv.key, &format!("{path}key"))?;
    Ok(Tag {
        key,
        value: kv.value.unwrap_or_default(),
    })
}

fn tags_in(kvs: Vec<w::KeyValue>, field: &str) -> ApiResult<Vec<Tag>> {
    kvs.into_iter()
        .enumerate()
        .map(|(idx, kv)| tag_in(kv, &format!("{field}[{idx}].")))
        .collect()
}

fn params_in(kvs: Vec<w::KeyValue>, field: &str) -> ApiResult<Vec<Param>> {
    Ok(tags_in(kvs, field)?
        .into_iter()
        .map(|t| Param {
            key: t.key,
            value: t.value,
        })
        .collect())
}

fn metric_in(m: w::Metric, path: &str) -> ApiResult<Metric> {
    let key = required(m.key, &format!("{path}key"))?;
    let value = m.value.ok_or_else(|| missing(&format!("{path}value")))?;
    let timestamp = m
        .timestamp
        .ok_or_else(|| missing(&format!("{path}timestamp")))?;
    Ok(Metric {
        key,
        value,
        timestamp,
        step: m.step.unwrap_or(0),
        model_id: m.model_id.filter(|s| !s.is_empty()),
        dataset_name: m.dataset_name.filter(|s| !s.is_empty()),
        dataset_digest: m.dataset_digest.filter(|s| !s.is_empty()),
    })
}

// ------------------------------------------------------------ experiments

async fn create_experiment(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::CreateExperiment>,
) -> ApiResult<Json<w::CreateExperimentResponse>> {
    let name = required(req.name, "name")?;
    let tags = tags_in(req.tags, "tags")?;
    let experiment_id = state
        .tracking
        .create_experiment(&name, req.artifact_location.as_deref(), &tags)
        .await?;
    Ok(Json(w::CreateExperimentResponse { experiment_id }))
}

async fn get_experiment(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::ExperimentIdRequest>,
) -> ApiResult<Json<w::ExperimentResponse>> {
    let experiment_id = required(req.experiment_id, "experiment_id")?;
    let experiment = state.tracking.get_experiment(&experiment_id).await?;
    Ok(Json(w::ExperimentResponse {
        experiment: (&experiment).into(),
    }))
}

async fn get_experiment_by_name(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::GetExperimentByName>,
) -> ApiResult<Json<w::ExperimentResponse>> {
    let name = required(req.experiment_name, "experiment_name")?;
    let experiment = state.tracking.get_experiment_by_name(&name).await?;
    Ok(Json(w::ExperimentResponse {
        experiment: (&experiment).into(),
    }))
}

async fn search_experiments(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SearchExperiments>,
) -> ApiResult<Json<w::SearchExperimentsResponse>> {
    let page = state
        .tracking
        .search_experiments(
            view_type(req.view_type.as_ref())?,
            req.filter.as_deref(),
            &req.order_by,
            req.max_results,
            req.page_token.filter(|t| !t.is_empty()),
        )
        .await?;
    Ok(Json(w::SearchExperimentsResponse {
        experiments: page.items.iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
    }))
}

async fn update_experiment(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::UpdateExperiment>,
) -> ApiResult<Json<Value>> {
    let experiment_id = required(req.experiment_id, "experiment_id")?;
    if let Some(new_name) = req.new_name {
        state
            .tracking
            .rename_experiment(&experiment_id, &new_name)
            .await?;
    }
    Ok(empty())
}

async fn delete_experiment(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::ExperimentIdRequest>,
) -> ApiResult<Json<Value>> {
    let experiment_id = required(req.experiment_id, "experiment_id")?;
    state.tracking.delete_experiment(&experiment_id).await?;
    Ok(empty())
}

async fn restore_experiment(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::ExperimentIdRequest>,
) -> ApiResult<Json<Value>> {
    let experiment_id = required(req.experiment_id, "experiment_id")?;
    state.tracking.restore_experiment(&experiment_id).await?;
    Ok(empty())
}

async fn set_experiment_tag(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SetExperimentTag>,
) -> ApiResult<Json<Value>> {
    let experiment_id = required(req.experiment_id, "experiment_id")?;
    let key = required(req.key, "key")?;
    let tag = Tag {
        key,
        value: req.value.unwrap_or_default(),
    };
    state
        .tracking
        .set_experiment_tag(&experiment_id, &tag)
        .await?;
    Ok(empty())
}

async fn delete_experiment_tag(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::DeleteExperimentTag>,
) -> ApiResult<Json<Value>> {
    let experiment_id = required(req.experiment_id, "experiment_id")?;
    let key = required(req.key, "key")?;
    state
        .tracking
        .delete_experiment_tag(&experiment_id, &key)
        .await?;
    Ok(empty())
}

// ------------------------------------------------------------ runs

async fn create_run(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::CreateRun>,
) -> ApiResult<Json<w::RunResponse>> {
    let new_run = NewRun {
        experiment_id: req
            .experiment_id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "0".into()),
        user_id: req.user_id.unwrap_or_default(),
        run_name: req.run_name.unwrap_or_default(),
        start_time: req.start_time,
        tags: tags_in(req.tags, "tags")?,
    };
    let run = state.tracking.create_run(new_run).await?;
    Ok(Json(w::RunResponse { run: (&run).into() }))
}

async fn get_run(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::RunIdRequest>,
) -> ApiResult<Json<w::RunResponse>> {
    let run_id = run_id_of(req.run_id, req.run_uuid)?;
    let run = state.tracking.get_run(&run_id).await?;
    Ok(Json(w::RunResponse { run: (&run).into() }))
}

async fn update_run(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::UpdateRun>,
) -> ApiResult<Json<w::UpdateRunResponse>> {
    let run_id = run_id_of(req.run_id, req.run_uuid)?;
    let status = req.status.map(|s| s.parse()).transpose()?;
    let update = RunUpdate {
        status,
        end_time: req.end_time,
        run_name: req.run_name.filter(|n| !n.is_empty()),
    };
    let info = state.tracking.update_run(&run_id, &update).await?;
    Ok(Json(w::UpdateRunResponse {
        run_info: (&info).into(),
    }))
}

async fn delete_run(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::RunIdRequest>,
) -> ApiResult<Json<Value>> {
    let run_id = run_id_of(req.run_id, req.run_uuid)?;
    state.tracking.delete_run(&run_id).await?;
    Ok(empty())
}

async fn restore_run(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::RunIdRequest>,
) -> ApiResult<Json<Value>> {
    let run_id = run_id_of(req.run_id, req.run_uuid)?;
    state.tracking.restore_run(&run_id).await?;
    Ok(empty())
}

async fn search_runs(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::SearchRuns>,
) -> ApiResult<Json<w::SearchRunsResponse>> {
    let page = state
        .tracking
        .search_runs(
            req.experiment_ids,
            view_type(req.run_view_type.as_ref())?,
            req.filter.as_deref(),
            &req.order_by,
            req.max_results,
            req.page_token.filter(|t| !t.is_empty()),
        )
        .await?;
    Ok(Json(w::SearchRunsResponse {
        runs: page.items.iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
    }))
}

async fn log_metric(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::LogMetric>,
) -> ApiResult<Json<Value>> {
    let run_id = run_id_of(req.run_id, req.run_uuid)?;
    let metric = metric_in(
        w::Metric {
            key: req.key,
            value: req.value,
            timestamp: req.timestamp,
            step: req.step,
            dataset_name: req.dataset_name,
            dataset_digest: req.dataset_digest,
            model_id: req.model_id,
            run_id: None,
        },
        "",
    )?;
    state
        .tracking
        .log_batch(&run_id, &[metric], &[], &[])
        .await?;
    Ok(empty())
}

async fn log_param(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::LogParamOrSetTag>,
) -> ApiResult<Json<Value>> {
    let run_id = run_id_of(req.run_id, req.run_uuid)?;
    let key = required(req.key, "key")?;
    let param = Param {
        key,
        value: req.value.unwrap_or_default(),
    };
    state
        .tracking
        .log_batch(&run_id, &[], &[param], &[])
        .await?;
    Ok(empty())
}

async fn set_tag(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::LogParamOrSetTag>,
) -> ApiResult<Json<Value>> {
    let run_id = run_id_of(req.run_id, req.run_uuid)?;
    let key = required(req.key, "key")?;
    let tag = Tag {
        key,
        value: req.value.unwrap_or_default(),
    };
    state.tracking.log_batch(&run_id, &[], &[], &[tag]).await?;
    Ok(empty())
}

async fn delete_tag(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::DeleteTag>,
) -> ApiResult<Json<Value>> {
    let run_id = required(req.run_id, "run_id")?;
    let key = required(req.key, "key")?;
    state.tracking.delete_tag(&run_id, &key).await?;
    Ok(empty())
}

async fn log_batch(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    if body.len() > MAX_BATCH_LOG_REQUEST_SIZE {
        return Err(KeelError::invalid(format!(
            "Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes, got a request of size {}.",
            body.len()
        ))
        .into());
    }
    let req: w::LogBatch = parse_json_body(&body)?;
    let run_id = required(req.run_id, "run_id")?;
    let metrics = req
        .metrics
        .into_iter()
        .enumerate()
        .map(|(idx, m)| metric_in(m, &format!("metrics[{idx}].")))
        .collect::<ApiResult<Vec<_>>>()?;
    let params = params_in(req.params, "params")?;
    let tags = tags_in(req.tags, "tags")?;
    state
        .tracking
        .log_batch(&run_id, &metrics, &params, &tags)
        .await?;
    Ok(empty())
}

async fn log_inputs(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::LogInputs>,
) -> ApiResult<Json<Value>> {
    let run_id = required(req.run_id, "run_id")?;
    let mut datasets = Vec::with_capacity(req.datasets.len());
    for (idx, input) in req.datasets.into_iter().enumerate() {
        let path = format!("datasets[{idx}].");
        let dataset = input
            .dataset
            .ok_or_else(|| missing(&format!("{path}dataset")))?;
        datasets.push(DatasetInput {
            tags: tags_in(input.tags, &format!("{path}tags"))?,
            dataset: Dataset {
                name: required(dataset.name, &format!("{path}dataset.name"))?,
                digest: required(dataset.digest, &format!("{path}dataset.digest"))?,
                source_type: required(dataset.source_type, &format!("{path}dataset.source_type"))?,
                source: required(dataset.source, &format!("{path}dataset.source"))?,
                schema: dataset.schema,
                profile: dataset.profile,
            },
        });
    }
    let models = req
        .models
        .into_iter()
        .enumerate()
        .map(|(idx, m)| {
            Ok(ModelInput {
                model_id: required(m.model_id, &format!("models[{idx}].model_id"))?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    state
        .tracking
        .log_inputs(&run_id, &datasets, &models)
        .await?;
    Ok(empty())
}

async fn log_outputs(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::LogOutputs>,
) -> ApiResult<Json<Value>> {
    let run_id = required(req.run_id, "run_id")?;
    let models = req
        .models
        .into_iter()
        .enumerate()
        .map(|(idx, m)| {
            Ok(ModelOutput {
                model_id: required(m.model_id, &format!("models[{idx}].model_id"))?,
                step: m.step.unwrap_or(0),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    state.tracking.log_outputs(&run_id, &models).await?;
    Ok(empty())
}

// ------------------------------------------------------------ metrics

async fn get_metric_history(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::GetMetricHistory>,
) -> ApiResult<Json<w::MetricHistoryResponse>> {
    let query = MetricHistoryQuery {
        run_id: run_id_of(req.run_id, req.run_uuid)?,
        metric_key: required(req.metric_key, "metric_key")?,
        max_results: match req.max_results {
            None | Some(0) => None,
            Some(n) if n < 0 => {
                return Err(KeelError::invalid(format!(
                    "Invalid value {n} for parameter 'max_results'"
                ))
                .into())
            }
            Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        },
        page_token: req.page_token.filter(|t| !t.is_empty()),
    };
    let page = state.tracking.get_metric_history(&query).await?;
    Ok(Json(w::MetricHistoryResponse {
        metrics: page.items.iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
    }))
}

async fn get_metric_history_bulk_interval(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::GetMetricHistoryBulkInterval>,
) -> ApiResult<Json<w::MetricHistoryBulkIntervalResponse>> {
    let metric_key = required(req.metric_key, "metric_key")?;
    let rows = state
        .tracking
        .get_metric_history_bulk_interval(
            &req.run_ids,
            &metric_key,
            req.start_step,
            req.end_step,
            req.max_results,
        )
        .await?;
    Ok(Json(w::MetricHistoryBulkIntervalResponse {
        metrics: rows
            .into_iter()
            .map(|(run_id, m)| w::MetricWithRunId {
                key: m.key,
                value: m.value,
                timestamp: m.timestamp,
                step: m.step,
                run_id,
            })
            .collect(),
    }))
}

// ------------------------------------------------------------ run artifacts

async fn list_artifacts(
    State(state): State<AppState>,
    MlflowRequest(req): MlflowRequest<w::ListArtifacts>,
) -> ApiResult<Json<w::ListArtifactsResponse>> {
    let run_id = run_id_of(req.run_id, req.run_uuid)?;
    let run = state.tracking.get_run(&run_id).await?;
    let root_uri = run.info.artifact_uri.clone();
    let relative = req.path.unwrap_or_default();
    let files = crate::run_artifacts::list_run_artifacts(&state, &root_uri, &relative).await?;
    Ok(Json(w::ListArtifactsResponse {
        root_uri,
        files,
        next_page_token: None,
    }))
}
