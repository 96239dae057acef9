//! `keel data log-input` (and `add --log-to-run`): tracked data versions
//! logged as MLflow dataset inputs of a run, so lineage can say which data
//! version trained which model.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use keel_client::{Client, DatasetInput};
use keel_data::lineage::{dataset_version, DatasetVersion};
use keel_data::repo::Repo;
use serde_json::json;

/// MLflow's `source_type` for data versioned by DVC.
const SOURCE_TYPE: &str = "dvc";

/// Where and how the inputs are logged.
pub(super) struct LogTarget {
    pub run_id: String,
    pub tracking_uri: String,
    pub context: Option<String>,
    /// Dataset name for a single path; the path otherwise.
    pub name: Option<String>,
}

impl LogTarget {
    /// `--run-id`, else `$MLFLOW_RUN_ID` (set inside `mlflow.start_run()`
    /// children and tracked pipeline stages).
    pub fn resolve(
        run_id: Option<String>,
        tracking_uri: Option<String>,
        context: Option<String>,
        name: Option<String>,
    ) -> Result<LogTarget> {
        let run_id = run_id
            .or_else(|| std::env::var("MLFLOW_RUN_ID").ok())
            .filter(|run_id| !run_id.trim().is_empty())
            .context("no run to log to: pass --run-id RUN_ID or set MLFLOW_RUN_ID")?;
        Ok(LogTarget {
            run_id,
            tracking_uri: crate::models_cmd::tracking_uri_from_env(tracking_uri),
            context,
            name,
        })
    }
}

/// Logs the versions of `paths` (relative to `cwd`) to the run in one
/// request; answers the line to print.
pub(super) fn log_inputs(cwd: &Path, paths: &[PathBuf], target: &LogTarget) -> Result<String> {
    if target.name.is_some() && paths.len() != 1 {
        bail!("--name names one dataset; pass a single PATH with it");
    }
    let repo = Repo::find(cwd)?;
    let mut inputs = Vec::with_capacity(paths.len());
    for path in paths {
        let version = dataset_version(&repo, &cwd.join(path))?;
        let name = target.name.clone().unwrap_or_else(|| version.path.clone());
        inputs.push(DatasetInput {
            dataset: dataset_json(&name, &version),
            context: target.context.clone(),
        });
    }
    let client = Client::new(&target.tracking_uri)?;
    client
        .log_dataset_inputs(&target.run_id, &inputs)
        .with_context(|| format!("cannot log the inputs of run {}", target.run_id))?;
    let n_inputs = inputs.len();
    let noun = if n_inputs == 1 { "dataset" } else { "datasets" };
    Ok(format!(
        "Logged {n_inputs} {noun} as inputs of run {}\n",
        target.run_id
    ))
}

/// MLflow's `Dataset` message for one version.
fn dataset_json(name: &str, version: &DatasetVersion) -> serde_json::Value {
    json!({
        "name": name,
        "digest": version.md5,
        "source_type": SOURCE_TYPE,
        "source": version.source_json(),
        "profile": version.profile_json(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dataset_carries_the_md5_as_digest_and_dvc_as_source_type() {
        let version = DatasetVersion {
            path: "data".into(),
            md5: "5ea40360f5b4ec688df672a4db9c17d1.dir".into(),
            size: Some(3),
            nfiles: Some(1),
            rev: None,
            remote: Some("/remote".into()),
            repo: None,
        };
        let dataset = dataset_json("train", &version);
        assert_eq!(dataset["name"], "train");
        assert_eq!(dataset["digest"], "5ea40360f5b4ec688df672a4db9c17d1.dir");
        assert_eq!(dataset["source_type"], "dvc");
        assert_eq!(
            dataset["source"],
            r#"{"path":"data","md5":"5ea40360f5b4ec688df672a4db9c17d1.dir","remote":"/remote"}"#
        );
    }

    #[test]
    fn a_missing_run_id_says_how_to_give_one() {
        if std::env::var_os("MLFLOW_RUN_ID").is_some() {
            return;
        }
        let error = LogTarget::resolve(None, None, None, None)
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            error.as_deref(),
            Some("no run to log to: pass --run-id RUN_ID or set MLFLOW_RUN_ID")
        );
    }
}
