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
    stage_runs: Mutex<HashMap<String, String>>,
}

impl Tracker {
    /// Finds or creates `experiment` and starts the parent run.
    pub fn start(tracking_uri: &str, experiment: &str, root: &Path) -> Result<Tracker, String> {
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
        };
        tracker.experiment_id = tracker.experiment(experiment)?;
        let pipeline = root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".to_owned());
        tracker.parent_run_id = tracker.create_run(
            &format!("repro {pipeline}"),
            &[
                ("keel.pipeline", root.display().to_string()),
                ("mlflow.source.name", "keel repro".to_owned()),
            ],
        )?;
        Ok(tracker)
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

    fn create_run(&self, run_name: &str, tags: &[(&str, String)]) -> Result<String, String> {
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
        created["run"]["info"]["run_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the server created a run without an id".to_owned())
    }

    fn end_run(&self, run_id: &str, status: &str) -> Result<(), String> {
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

    fn log_params(&self, run_id: &str, params: &[(String, String)]) -> Result<(), String> {
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
fn sanitize_key(key: &str) -> String {
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
fn flatten_numbers(prefix: &str, value: &Value, out: &mut Vec<(String, f64)>) {
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
        let run_id = self.create_run(
            &stage.name,
            &[
                ("mlflow.parentRunId", self.parent_run_id.clone()),
                ("keel.stage", stage.name.clone()),
                ("keel.cmd", stage.commands.join("\n")),
            ],
        )?;
        if let Ok(mut runs) = self.stage_runs.lock() {
            runs.insert(stage.name.clone(), run_id.clone());
        }
        Ok(vec![
            ("MLFLOW_TRACKING_URI".to_owned(), self.tracking_uri.clone()),
            ("MLFLOW_RUN_ID".to_owned(), run_id),
        ])
    }

    fn after_run(&self, stage: &Stage, result: Result<&StageLock, &str>) -> Result<(), String> {
        let run_id = self
            .stage_runs
            .lock()
            .ok()
            .and_then(|runs| runs.get(&stage.name).cloned());
        let Some(run_id) = run_id else {
            return Ok(());
        };
        match result {
            Ok(entry) => {
                let recorded = self.record_success(&run_id, stage, entry);
                self.end_run(
                    &run_id,
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
                    &run_id,
                    &[],
                    &[("keel.error", truncate(reason, MAX_TAG_VALUE_CHARS))],
                );
                let status = if reason == "interrupted" {
                    "KILLED"
                } else {
                    "FAILED"
                };
                self.end_run(&run_id, status)
            }
        }
    }
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
