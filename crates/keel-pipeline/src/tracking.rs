//! Tracked runs of a pipeline on a Keel (or MLflow) tracking server: one
//! parent run per `repro`, one child run per stage that runs, with its
//! command, parameters, metrics read from its metrics files, dependencies as
//! dataset inputs (digest: their md5) and output hashes as tags. The stage's
//! commands see `MLFLOW_TRACKING_URI` and `MLFLOW_RUN_ID`, so code using the
//! mlflow client logs into the stage's run.
//!
//! Metrics, tags and inputs go through keel-client; creating and ending runs
//! (which keel-client does not offer) are plain MLflow REST calls here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde_json::json;
use serde_yaml_ng::Value;

use crate::emit::key_string;
use crate::interpolate::to_str;
use crate::lockfile::StageLock;
use crate::params;
use crate::runner::StageHooks;
use crate::stage::{OutputKind, Stage};

const MLFLOW_API: &str = "/api/2.0/mlflow";
/// MLflow's limits on a param value and a tag value.
const MAX_PARAM_VALUE_CHARS: usize = 6000;
const MAX_TAG_VALUE_CHARS: usize = 8000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// A repro's parent run and its stages' child runs.
#[derive(Debug)]
pub struct Tracker {
    tracking_uri: String,
    client: keel_client::Client,
    agent: ureq::Agent,
    root: std::path::PathBuf,
    experiment_id: String,
    parent_run_id: String,
    /// stage name → its run
    stage_runs: Mutex<HashMap<String, CreatedRun>>,
    /// stage name → the lines its commands wrote, uploaded as `logs/<stage>.log`
    stage_logs: Mutex<HashMap<String, String>>,
}

/// The parent run of a tracker: a new one, or one to resume.
#[derive(Debug, Clone)]
pub enum ParentRun {
    New {
        name: String,
        tags: Vec<(String, String)>,
    },
    /// An existing run (by id), set running again.
    Resume(String),
}

/// A run created on the tracking server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRun {
    pub run_id: String,
    pub artifact_uri: String,
}

impl Tracker {
    /// Finds or creates `experiment` and starts the parent run of a `repro`.
    pub fn start(tracking_uri: &str, experiment: &str, root: &Path) -> Result<Tracker, String> {
        let pipeline = root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".to_owned());
        Self::start_parent(
            tracking_uri,
            experiment,
            root,
            ParentRun::New {
                name: format!("repro {pipeline}"),
                tags: vec![
                    ("keel.pipeline".to_owned(), root.display().to_string()),
                    ("mlflow.source.name".to_owned(), "keel repro".to_owned()),
                ],
            },
        )
    }

    /// Finds or creates `experiment`, then creates the parent run or, to
    /// resume, marks an existing one as running again.
    pub fn start_parent(
        tracking_uri: &str,
        experiment: &str,
        root: &Path,
        parent: ParentRun,
    ) -> Result<Tracker, String> {
        let client = keel_client::Client::new(tracking_uri).map_err(|err| err.to_string())?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(std::time::Duration::from_secs(10))
            .timeout_read(std::time::Duration::from_secs(60))
            .build();
        let mut tracker = Tracker {
            tracking_uri: client.base_uri().to_owned(),
            client,
            agent,
            root: root.to_path_buf(),
            experiment_id: String::new(),
            parent_run_id: String::new(),
            stage_runs: Mutex::new(HashMap::new()),
            stage_logs: Mutex::new(HashMap::new()),
        };
        tracker.experiment_id = tracker.experiment(experiment)?;
        tracker.parent_run_id = match parent {
            ParentRun::New { name, tags } => {
                let tags: Vec<(&str, String)> = tags
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.clone()))
                    .collect();
                tracker.create_run(&name, &tags)?.run_id
            }
            ParentRun::Resume(run_id) => {
                tracker.call(
                    "POST",
                    "/runs/update",
                    Some(json!({"run_id": run_id, "status": "RUNNING"})),
                )?;
                run_id
            }
        };
        Ok(tracker)
    }

    pub fn experiment_id(&self) -> &str {
        &self.experiment_id
    }

    pub fn tracking_uri(&self) -> &str {
        &self.tracking_uri
    }

    /// Creates a child run of the parent run.
    pub fn create_child(&self, name: &str, tags: &[(&str, String)]) -> Result<CreatedRun, String> {
        let mut all = vec![("mlflow.parentRunId", self.parent_run_id.clone())];
        all.extend(tags.iter().cloned());
        self.create_run(name, &all)
    }

    /// Logs metrics (step 0) and tags on a run.
    pub fn log_metrics_and_tags(
        &self,
        run_id: &str,
        metrics: &[(String, f64)],
        tags: &[(String, String)],
    ) -> Result<(), String> {
        let metrics: Vec<(&str, f64)> = metrics
            .iter()
            .map(|(key, value)| (key.as_str(), *value))
            .collect();
        let tags: Vec<(&str, String)> = tags
            .iter()
            .map(|(key, value)| (key.as_str(), truncate(value, MAX_TAG_VALUE_CHARS)))
            .collect();
        for start in (0..metrics.len().max(tags.len()).max(1)).step_by(100) {
            let metric_chunk: Vec<(&str, f64)> =
                metrics.iter().skip(start).take(100).copied().collect();
            let tag_chunk: Vec<(&str, String)> =
                tags.iter().skip(start).take(100).cloned().collect();
            self.client
                .log_batch(run_id, &metric_chunk, &tag_chunk)
                .map_err(|err| err.to_string())?;
        }
        Ok(())
    }

    /// Removes a tag from a run.
    pub fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), String> {
        self.call(
            "POST",
            "/runs/delete-tag",
            Some(json!({"run_id": run_id, "key": key})),
        )
        .map(|_| ())
    }

    /// Every value logged for `key` on a run, as (step, value), in step order.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<(u64, f64)>, String> {
        let found = self.call(
            "GET",
            &format!(
                "/metrics/get-history?run_id={}&metric_key={}",
                url_encode(run_id),
                url_encode(key)
            ),
            None,
        )?;
        let mut history: Vec<(u64, f64)> = found["metrics"]
            .as_array()
            .map(|metrics| {
                metrics
                    .iter()
                    .filter_map(|metric| {
                        let value = metric["value"].as_f64()?;
                        let step = metric["step"]
                            .as_u64()
                            .or_else(|| metric["step"].as_str()?.parse().ok())
                            .unwrap_or(0);
                        Some((step, value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        history.sort_by_key(|(step, _)| *step);
        Ok(history)
    }

    /// Uploads `text` as the artifact `path` of a run, through the tracking
    /// server's artifact proxy (runs whose artifacts live elsewhere are
    /// skipped: the server cannot take the upload).
    pub fn upload_text_artifact(
        &self,
        artifact_uri: &str,
        path: &str,
        text: &str,
    ) -> Result<(), String> {
        let Ok(root) = keel_client::artifact_root_path(artifact_uri) else {
            return Ok(());
        };
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}",
            self.tracking_uri
        );
        match self.agent.put(&url).send_bytes(text.as_bytes()) {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(status, response)) => Err(format!(
                "HTTP {status} uploading {path}: {}",
                truncate(&response.into_string().unwrap_or_default(), 300)
            )),
            Err(ureq::Error::Transport(transport)) => Err(format!(
                "cannot reach the tracking server at {}: {transport}",
                self.tracking_uri
            )),
        }
    }

    /// Keeps a line a stage's command wrote, for its run's `logs/<stage>.log`.
    pub fn capture_output(&self, stage: &str, line: &str) {
        if let Ok(mut logs) = self.stage_logs.lock() {
            let log = logs.entry(stage.to_owned()).or_default();
            log.push_str(line);
            log.push('\n');
        }
    }

    pub fn parent_run_id(&self) -> &str {
        &self.parent_run_id
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let url = format!("{}{MLFLOW_API}{path}", self.tracking_uri);
        let request = self.agent.request(method, &url);
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match result {
            Ok(response) => response
                .into_json::<serde_json::Value>()
                .map_err(|err| format!("unexpected response from {url}: {err}")),
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_default();
                Err(format!(
                    "HTTP {status} from {url}: {}",
                    truncate(&body, 300)
                ))
            }
            Err(ureq::Error::Transport(transport)) => Err(format!(
                "cannot reach the tracking server at {}: {transport}",
                self.tracking_uri
            )),
        }
    }

    fn experiment(&self, name: &str) -> Result<String, String> {
        let encoded: String = url_encode(name);
        let found = self.call(
            "GET",
            &format!("/experiments/get-by-name?experiment_name={encoded}"),
            None,
        );
        if let Ok(found) = found {
            if let Some(id) = found["experiment"]["experiment_id"].as_str() {
                return Ok(id.to_owned());
            }
        }
        let created = self.call("POST", "/experiments/create", Some(json!({ "name": name })))?;
        created["experiment_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the server created experiment '{name}' without an id"))
    }

    fn create_run(&self, run_name: &str, tags: &[(&str, String)]) -> Result<CreatedRun, String> {
        let tags: Vec<serde_json::Value> = tags
            .iter()
            .map(|(key, value)| json!({"key": key, "value": truncate(value, MAX_TAG_VALUE_CHARS)}))
            .collect();
        let created = self.call(
            "POST",
            "/runs/create",
            Some(json!({
                "experiment_id": self.experiment_id,
                "run_name": run_name,
                "start_time": now_ms(),
                "tags": tags,
            })),
        )?;
        let info = &created["run"]["info"];
        let run_id = info["run_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the server created a run without an id".to_owned())?;
        Ok(CreatedRun {
            run_id,
            artifact_uri: info["artifact_uri"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Ends a run: `FINISHED`, `FAILED` or `KILLED`.
    pub fn end_run(&self, run_id: &str, status: &str) -> Result<(), String> {
        self.call(
            "POST",
            "/runs/update",
            Some(json!({"run_id": run_id, "status": status, "end_time": now_ms()})),
        )
        .map(|_| ())
    }

    /// Ends the parent run: `FINISHED`, `FAILED` or `KILLED`.
    pub fn finish(&self, status: &str) -> Result<(), String> {
        self.end_run(&self.parent_run_id, status)
    }

    /// Logs parameters (values cut to MLflow's limit).
    pub fn log_params(&self, run_id: &str, params: &[(String, String)]) -> Result<(), String> {
        // MLflow takes at most 100 params per batch.
        for chunk in params.chunks(100) {
            let params: Vec<serde_json::Value> = chunk
                .iter()
                .map(|(key, value)| json!({"key": key, "value": truncate(value, MAX_PARAM_VALUE_CHARS)}))
                .collect();
            self.call(
                "POST",
                "/runs/log-batch",
                Some(json!({"run_id": run_id, "params": params})),
            )?;
        }
        Ok(())
    }

    fn record_success(&self, run_id: &str, stage: &Stage, entry: &StageLock) -> Result<(), String> {
        let mut params = Vec::new();
        for (file, values) in &entry.params {
            for (key, value) in values {
                let key = key_string(key);
                let name = if file == crate::project::DEFAULT_PARAMS_FILE {
                    key
                } else {
                    format!("{file}/{key}")
                };
                let text = match value {
                    Value::Mapping(_) | Value::Sequence(_) => {
                        serde_json::to_string(value).unwrap_or_default()
                    }
                    other => to_str(other).unwrap_or_default(),
                };
                params.push((sanitize_key(&name), text));
            }
        }
        self.log_params(run_id, &params)?;
        let mut metrics: Vec<(String, f64)> = Vec::new();
        for output in stage
            .outs
            .iter()
            .filter(|output| output.kind == OutputKind::Metric)
        {
            let repo_path = stage.repo_path(&output.def_path);
            if let Ok(value) = params::load_file(&self.root.join(&repo_path), &repo_path) {
                flatten_numbers("", &value, &mut metrics);
            }
        }
        let mut tags: Vec<(String, String)> = Vec::new();
        for (path, hash) in &entry.outs {
            tags.push((sanitize_key(&format!("keel.out.{path}")), hash.md5.clone()));
        }
        for chunk_start in (0..metrics.len().max(tags.len()).max(1)).step_by(100) {
            let metric_chunk: Vec<(&str, f64)> = metrics
                .iter()
                .skip(chunk_start)
                .take(100)
                .map(|(key, value)| (key.as_str(), *value))
                .collect();
            let tag_chunk: Vec<(&str, String)> = tags
                .iter()
                .skip(chunk_start)
                .take(100)
                .map(|(key, value)| (key.as_str(), value.clone()))
                .collect();
            self.client
                .log_batch(run_id, &metric_chunk, &tag_chunk)
                .map_err(|err| err.to_string())?;
        }
        for (path, hash) in &entry.deps {
            let dataset = json!({
                "name": path,
                "digest": hash.md5,
                "source_type": "local",
                "source": json!({"uri": stage.repo_path(path)}).to_string(),
            });
            self.client
                .log_dataset_input(run_id, dataset)
                .map_err(|err| err.to_string())?;
        }
        Ok(())
    }
}

/// Percent-encodes a query value.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// MLflow accepts letters, digits, `_ - . / ` and spaces in keys.
pub(crate) fn sanitize_key(key: &str) -> String {
    key.chars()
        .map(|ch| {
            if ch.is_alphanumeric() || "_-./ ".contains(ch) {
                ch
            } else {
                '_'
            }
        })
        .collect()
}

/// Numeric leaves of a metrics file, with dotted keys.
pub(crate) fn flatten_numbers(prefix: &str, value: &Value, out: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(number) => {
            if let Some(number) = number.as_f64() {
                if !prefix.is_empty() {
                    out.push((sanitize_key(prefix), number));
                }
            }
        }
        Value::Bool(flag) if !prefix.is_empty() => {
            out.push((sanitize_key(prefix), if *flag { 1.0 } else { 0.0 }));
        }
        Value::Mapping(map) => {
            for (key, nested) in map {
                let key = key_string(key);
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_numbers(&name, nested, out);
            }
        }
        _ => {}
    }
}

impl StageHooks for Tracker {
    fn before_run(&self, stage: &Stage) -> Result<Vec<(String, String)>, String> {
        let run = self.create_child(
            &stage.name,
            &[
                ("keel.stage", stage.name.clone()),
                ("keel.cmd", stage.commands.join("\n")),
            ],
        )?;
        let run_id = run.run_id.clone();
        if let Ok(mut runs) = self.stage_runs.lock() {
            runs.insert(stage.name.clone(), run);
        }
        if let Ok(mut logs) = self.stage_logs.lock() {
            logs.remove(&stage.name);
        }
        Ok(vec![
            ("MLFLOW_TRACKING_URI".to_owned(), self.tracking_uri.clone()),
            ("MLFLOW_RUN_ID".to_owned(), run_id),
        ])
    }

    fn after_run(&self, stage: &Stage, result: Result<&StageLock, &str>) -> Result<(), String> {
        let run = self
            .stage_runs
            .lock()
            .ok()
            .and_then(|runs| runs.get(&stage.name).cloned());
        let Some(run) = run else {
            return Ok(());
        };
        let run_id = run.run_id.as_str();
        let log = self
            .stage_logs
            .lock()
            .ok()
            .and_then(|mut logs| logs.remove(&stage.name))
            .unwrap_or_default();
        let uploaded = self.upload_text_artifact(
            &run.artifact_uri,
            &format!("logs/{}.log", log_file_name(&stage.name)),
            &log,
        );
        match result {
            Ok(entry) => {
                let recorded = self.record_success(run_id, stage, entry).and(uploaded);
                self.end_run(
                    run_id,
                    if recorded.is_ok() {
                        "FINISHED"
                    } else {
                        "FAILED"
                    },
                )?;
                recorded
            }
            Err(reason) => {
                let _ = self.client.log_batch(
                    run_id,
                    &[],
                    &[("keel.error", truncate(reason, MAX_TAG_VALUE_CHARS))],
                );
                let status = if reason == "interrupted" {
                    "KILLED"
                } else {
                    "FAILED"
                };
                self.end_run(run_id, status)
            }
        }
    }
}

/// A stage name as a file name (`group@key` keeps its `@`; separators go).
pub fn log_file_name(stage: &str) -> String {
    stage
        .chars()
        .map(|ch| {
            if ch == '/' || ch == '\\' || ch.is_control() {
                '_'
            } else {
                ch
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_files_flatten_to_dotted_numeric_keys() {
        let value: Value =
            serde_yaml_ng::from_str("acc: 0.9\nval: {loss: 0.2, name: x, ok: true}\nlist: [1]\n")
                .expect("yaml");
        let mut metrics = Vec::new();
        flatten_numbers("", &value, &mut metrics);
        assert_eq!(
            metrics,
            [
                ("acc".to_owned(), 0.9),
                ("val.loss".to_owned(), 0.2),
                ("val.ok".to_owned(), 1.0)
            ]
        );
        assert_eq!(sanitize_key("keel.out.a:b@c"), "keel.out.a_b_c");
    }
}
