//! A sweep's record on disk, `.dvc/tmp/sweeps/<name>/sweep.json`: what was
//! asked and every trial so far. It is rewritten (atomically) whenever a
//! trial starts or ends, so an interrupted sweep resumes where it stopped:
//! finished trials are kept, trials that were running run again.

use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};
use serde_yaml_ng::Value;

use crate::sweep::search::Direction;
use crate::{PipelineError, Result};

/// How a trial ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialState {
    Running,
    Complete,
    Failed,
    /// Stopped early by the median rule.
    Pruned,
}

impl TrialState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Complete => "complete",
            TrialState::Failed => "failed",
            TrialState::Pruned => "pruned",
        }
    }

    fn parse(text: &str) -> Option<TrialState> {
        Some(match text {
            "running" => TrialState::Running,
            "complete" => TrialState::Complete,
            "failed" => TrialState::Failed,
            "pruned" => TrialState::Pruned,
            _ => return None,
        })
    }

    /// Whether the trial counts toward `--trials` (it will not run again).
    pub fn is_finished(self) -> bool {
        self != TrialState::Running
    }
}

/// One trial: its parameters and what came of them.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRecord {
    pub number: usize,
    /// (parameter path, value), in the search space's order.
    pub params: Vec<(String, Value)>,
    pub state: TrialState,
    pub objective: Option<f64>,
    /// The trial's run on the tracking server.
    pub run_id: Option<String>,
    /// Intermediate objective values it reported, as (step, value).
    pub intermediate: Vec<(u64, f64)>,
    pub error: Option<String>,
}

/// What a sweep was asked to do; a resumed sweep must ask the same.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSettings {
    pub stage: String,
    pub objective: String,
    pub direction: Direction,
    pub strategy: String,
    pub seed: u64,
    /// The search space's text (a resumed sweep must search the same space).
    pub space: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepState {
    pub name: String,
    pub settings: SweepSettings,
    pub parent_run_id: Option<String>,
    pub trials: Vec<TrialRecord>,
}

/// Where a sweep keeps its record and its trials' workspaces (DVC keeps
/// `.dvc/tmp` out of git).
pub fn sweep_dir(root: &Path, name: &str) -> PathBuf {
    root.join(".dvc").join("tmp").join("sweeps").join(name)
}

fn direction_str(direction: Direction) -> &'static str {
    match direction {
        Direction::Minimize => "minimize",
        Direction::Maximize => "maximize",
    }
}

impl SweepState {
    pub fn path(root: &Path, name: &str) -> PathBuf {
        sweep_dir(root, name).join("sweep.json")
    }

    /// The record of sweep `name`, if it ran before.
    pub fn load(root: &Path, name: &str) -> Result<Option<SweepState>> {
        let path = Self::path(root, name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(PipelineError::io(&path, err)),
        };
        let shown = path.display().to_string();
        let document: Json = serde_json::from_str(&text)
            .map_err(|err| PipelineError::invalid(&shown, format!("not valid JSON: {err}")))?;
        Self::from_json(&document)
            .map(Some)
            .map_err(|reason| PipelineError::invalid(&shown, reason))
    }

    fn from_json(document: &Json) -> std::result::Result<SweepState, String> {
        let text = |value: &Json, key: &str| -> std::result::Result<String, String> {
            value[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("'{key}' is missing"))
        };
        let settings = &document["settings"];
        let direction = match text(settings, "direction")?.as_str() {
            "minimize" => Direction::Minimize,
            "maximize" => Direction::Maximize,
            other => return Err(format!("unknown direction '{other}'")),
        };
        let mut trials = Vec::new();
        for trial in document["trials"].as_array().into_iter().flatten() {
            let mut params = Vec::new();
            for pair in trial["params"].as_array().into_iter().flatten() {
                let key = pair[0].as_str().ok_or("a trial parameter has no name")?;
                let value: Value = serde_json::from_value(pair[1].clone())
                    .map_err(|err| format!("parameter '{key}': {err}"))?;
                params.push((key.to_owned(), value));
            }
            let state =
                TrialState::parse(&text(trial, "state")?).ok_or("a trial has an unknown state")?;
            let intermediate = trial["intermediate"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| Some((pair[0].as_u64()?, pair[1].as_f64()?)))
                .collect();
            trials.push(TrialRecord {
                number: trial["number"].as_u64().ok_or("a trial has no number")? as usize,
                params,
                state,
                objective: trial["objective"].as_f64(),
                run_id: trial["run_id"].as_str().map(str::to_owned),
                intermediate,
                error: trial["error"].as_str().map(str::to_owned),
            });
        }
        Ok(SweepState {
            name: text(document, "name")?,
            settings: SweepSettings {
                stage: text(settings, "stage")?,
                objective: text(settings, "objective")?,
                direction,
                strategy: text(settings, "strategy")?,
                seed: settings["seed"].as_u64().ok_or("'seed' is missing")?,
                space: text(settings, "space")?,
            },
            parent_run_id: document["parent_run_id"].as_str().map(str::to_owned),
            trials,
        })
    }

    fn to_json(&self) -> Json {
        let trials: Vec<Json> = self
            .trials
            .iter()
            .map(|trial| {
                let params: Vec<Json> = trial
                    .params
                    .iter()
                    .map(|(key, value)| {
                        json!([key, serde_json::to_value(value).unwrap_or(Json::Null)])
                    })
                    .collect();
                let intermediate: Vec<Json> = trial
                    .intermediate
                    .iter()
                    .map(|(step, value)| json!([step, value]))
                    .collect();
                json!({
                    "number": trial.number,
                    "params": params,
                    "state": trial.state.as_str(),
                    "objective": trial.objective,
                    "run_id": trial.run_id,
                    "intermediate": intermediate,
                    "error": trial.error,
                })
            })
            .collect();
        json!({
            "name": self.name,
            "settings": {
                "stage": self.settings.stage,
                "objective": self.settings.objective,
                "direction": direction_str(self.settings.direction),
                "strategy": self.settings.strategy,
                "seed": self.settings.seed,
                "space": self.settings.space,
            },
            "parent_run_id": self.parent_run_id,
            "trials": trials,
        })
    }

    /// Writes the record (temporary file, then rename).
    pub fn save(&self, root: &Path) -> Result<()> {
        let path = Self::path(root, &self.name);
        let dir = sweep_dir(root, &self.name);
        std::fs::create_dir_all(&dir).map_err(|err| PipelineError::io(&dir, err))?;
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(|err| {
            PipelineError::Usage(format!("cannot encode the sweep record: {err}"))
        })?;
        let temporary = dir.join(".sweep.json.tmp");
        std::fs::write(&temporary, text + "\n")
            .map_err(|err| PipelineError::io(&temporary, err))?;
        std::fs::rename(&temporary, &path).map_err(|err| PipelineError::io(&path, err))
    }

    /// The best complete trial for the sweep's direction.
    pub fn best(&self) -> Option<&TrialRecord> {
        self.trials
            .iter()
            .filter(|trial| trial.state == TrialState::Complete)
            .filter_map(|trial| {
                trial
                    .objective
                    .filter(|value| value.is_finite())
                    .map(|value| (trial, value))
            })
            .min_by(|(_, a), (_, b)| {
                let ordering = a.total_cmp(b);
                match self.settings.direction {
                    Direction::Minimize => ordering,
                    Direction::Maximize => ordering.reverse(),
                }
            })
            .map(|(trial, _)| trial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SweepState {
        SweepState {
            name: "s".to_owned(),
            settings: SweepSettings {
                stage: "train".to_owned(),
                objective: "metrics.json:loss".to_owned(),
                direction: Direction::Minimize,
                strategy: "tpe".to_owned(),
                seed: 7,
                space: "train.lr: {type: uniform, low: 0, high: 1}\n".to_owned(),
            },
            parent_run_id: Some("p".to_owned()),
            trials: vec![
                TrialRecord {
                    number: 0,
                    params: vec![
                        ("train.lr".to_owned(), Value::from(0.25)),
                        ("train.opt".to_owned(), Value::from("adam")),
                        ("train.layers".to_owned(), Value::from(3)),
                    ],
                    state: TrialState::Complete,
                    objective: Some(0.5),
                    run_id: Some("r0".to_owned()),
                    intermediate: vec![(0, 0.9), (1, 0.5)],
                    error: None,
                },
                TrialRecord {
                    number: 1,
                    params: vec![("train.lr".to_owned(), Value::from(0.75))],
                    state: TrialState::Failed,
                    objective: None,
                    run_id: None,
                    intermediate: Vec::new(),
                    error: Some("exit 1".to_owned()),
                },
                TrialRecord {
                    number: 2,
                    params: vec![("train.lr".to_owned(), Value::from(0.1))],
                    state: TrialState::Complete,
                    objective: Some(0.2),
                    run_id: None,
                    intermediate: Vec::new(),
                    error: None,
                },
            ],
        }
    }

    #[test]
    fn the_record_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = sample();
        state.save(dir.path()).expect("save");
        let loaded = SweepState::load(dir.path(), "s")
            .expect("load")
            .expect("exists");
        assert_eq!(loaded, state);
        // Integers stay integers, so they are written back into params.yaml as such.
        assert_eq!(loaded.trials[0].params[2].1, Value::from(3));
        assert!(SweepState::load(dir.path(), "other")
            .expect("load")
            .is_none());
    }

    #[test]
    fn the_best_trial_follows_the_direction() {
        let mut state = sample();
        assert_eq!(state.best().map(|trial| trial.number), Some(2));
        state.settings.direction = Direction::Maximize;
        assert_eq!(state.best().map(|trial| trial.number), Some(0));
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = SweepState::path(dir.path(), "s");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "{not json").expect("write");
        let err = SweepState::load(dir.path(), "s").expect_err("damaged");
        assert!(err.to_string().contains("sweep.json"), "{err}");
    }
}
