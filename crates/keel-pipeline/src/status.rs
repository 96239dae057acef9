//! Staleness as DVC decides it: a stage runs again when its command differs
//! from the one in `dvc.lock`, a dependency or parameter changed (unless the
//! stage is frozen), an output is missing, modified or not in the cache, or
//! it is `always_changed` (or has neither dependencies nor outputs). The
//! report has the shape and wording of `dvc status`.

use serde_yaml_ng::{Mapping, Value};

use crate::emit::key_string;
use crate::lockfile::LockedStage;
use crate::outputs::Workspace;
use crate::params;
use crate::stage::Stage;
use crate::Result;
pub use keel_data::pyjson::PyJson;

/// What changed in one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepChange {
    /// `modified`, `deleted` or `new`.
    File(&'static str),
    /// Per parameter key: `modified`, `deleted` or `new`.
    Params(Vec<(String, &'static str)>),
}

/// One stage's changes, in `dvc status` order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageStatus {
    /// (path relative to the repository root, change)
    pub changed_deps: Vec<(String, DepChange)>,
    /// (path, `modified`/`deleted`/`not in cache`)
    pub changed_outs: Vec<(String, &'static str)>,
    pub always_changed: bool,
    pub changed_command: bool,
    /// Whether `repro` runs the stage (what DVC's `Stage.changed()` says;
    /// a frozen stage ignores its dependencies and `always_changed`).
    pub needs_run: bool,
}

impl StageStatus {
    pub fn is_clean(&self) -> bool {
        self.changed_deps.is_empty()
            && self.changed_outs.is_empty()
            && !self.always_changed
            && !self.changed_command
    }

    /// The value `dvc status --json` gives for the stage, keys in DVC's order.
    pub fn to_py_json(&self) -> PyJson {
        let text = |status: &str| PyJson::String(status.to_owned());
        let mut items = Vec::new();
        if !self.changed_deps.is_empty() {
            let deps = self
                .changed_deps
                .iter()
                .map(|(path, change)| {
                    let value = match change {
                        DepChange::File(status) => text(status),
                        DepChange::Params(keys) => PyJson::Object(
                            keys.iter()
                                .map(|(key, status)| (key.clone(), text(status)))
                                .collect(),
                        ),
                    };
                    (path.clone(), value)
                })
                .collect();
            items.push(PyJson::Object(vec![(
                "changed deps".to_owned(),
                PyJson::Object(deps),
            )]));
        }
        if !self.changed_outs.is_empty() {
            let outs = self
                .changed_outs
                .iter()
                .map(|(path, status)| (path.clone(), text(status)))
                .collect();
            items.push(PyJson::Object(vec![(
                "changed outs".to_owned(),
                PyJson::Object(outs),
            )]));
        }
        if self.always_changed {
            items.push(text("always changed"));
        }
        if self.changed_command {
            items.push(text("changed command"));
        }
        PyJson::List(items)
    }

    /// The lines `dvc status` prints under the stage name.
    pub fn to_text(&self) -> Vec<String> {
        let normalize = |status: &str| format!("{:<20}", format!("{status}:"));
        let mut lines = Vec::new();
        if !self.changed_deps.is_empty() {
            lines.push("\tchanged deps:".to_owned());
            for (path, change) in &self.changed_deps {
                match change {
                    DepChange::File(status) => {
                        lines.push(format!("\t\t{}{path}", normalize(status)))
                    }
                    DepChange::Params(keys) => {
                        lines.push(format!("\t\t{path}:"));
                        for (key, status) in keys {
                            lines.push(format!("\t\t\t{}{key}", normalize(status)));
                        }
                    }
                }
            }
        }
        if !self.changed_outs.is_empty() {
            lines.push("\tchanged outs:".to_owned());
            for (path, status) in &self.changed_outs {
                lines.push(format!("\t\t{}{path}", normalize(status)));
            }
        }
        if self.always_changed {
            lines.push("\talways changed".to_owned());
        }
        if self.changed_command {
            lines.push("\tchanged command".to_owned());
        }
        lines
    }
}

/// Python's `==` on parsed values: `1 == 1.0`.
pub fn values_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => match (left.as_i64(), right.as_i64()) {
            (Some(left), Some(right)) => left == right,
            _ => left.as_f64() == right.as_f64(),
        },
        (Value::Sequence(left), Value::Sequence(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .zip(right)
                    .all(|(left, right)| values_equal(left, right))
        }
        (Value::Mapping(left), Value::Mapping(right)) => {
            left.len() == right.len()
                && left.iter().all(|(key, value)| {
                    right
                        .get(key)
                        .is_some_and(|other| values_equal(value, other))
                })
        }
        (Value::Tagged(left), right) => values_equal(&left.value, right),
        (left, Value::Tagged(right)) => values_equal(left, &right.value),
        (left, right) => left == right,
    }
}

/// The current values of a params dependency (`read_params(flatten=True)`):
/// the selected keys that exist, or the whole file. `None` when the file is
/// missing.
pub fn read_params(
    workspace: &Workspace,
    stage: &Stage,
    params_dep: &crate::stage::ParamsDep,
) -> Result<Option<Mapping>> {
    let repo_path = stage.repo_path(&params_dep.def_path);
    let absolute = workspace.root().join(&repo_path);
    if !absolute.is_file() {
        return Ok(None);
    }
    let config = params::load_file(&absolute, &repo_path)?;
    if params_dep.keys.is_empty() {
        return Ok(Some(config.as_mapping().cloned().unwrap_or_default()));
    }
    let mut values = Mapping::new();
    for key in &params_dep.keys {
        if let Some(value) = params::select_dotted(&config, key) {
            values.insert(Value::String(key.clone()), value.clone());
        }
    }
    Ok(Some(values))
}

/// Compares a stage with its `dvc.lock` entry and the workspace.
pub fn stage_status(
    workspace: &Workspace,
    stage: &Stage,
    locked: Option<&LockedStage>,
) -> Result<StageStatus> {
    let mut status = StageStatus::default();
    if !stage.frozen {
        for def_path in &stage.deps {
            let repo_path = stage.repo_path(def_path);
            let recorded = locked
                .and_then(|locked| locked.dep(def_path))
                .and_then(|file| file.md5.as_deref());
            let change = match workspace.hash(&repo_path, false)? {
                None => Some("deleted"),
                Some(actual) if Some(actual.md5.as_str()) != recorded => Some("modified"),
                Some(_) => None,
            };
            if let Some(change) = change {
                status
                    .changed_deps
                    .push((repo_path, DepChange::File(change)));
            }
        }
        for params_dep in &stage.params {
            let repo_path = stage.repo_path(&params_dep.def_path);
            let Some(actual) = read_params(workspace, stage, params_dep)? else {
                status
                    .changed_deps
                    .push((repo_path, DepChange::File("deleted")));
                continue;
            };
            let Some(recorded) = locked.and_then(|locked| locked.params_of(&params_dep.def_path))
            else {
                status
                    .changed_deps
                    .push((repo_path, DepChange::File("new")));
                continue;
            };
            let keys: Vec<String> = if params_dep.keys.is_empty() {
                let mut keys: Vec<String> = Vec::new();
                for key in actual.keys().chain(recorded.keys()).map(key_string) {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                keys
            } else {
                let mut keys: Vec<String> = Vec::new();
                for key in &params_dep.keys {
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
                keys
            };
            let mut changes = Vec::new();
            for key in keys {
                let change = match (actual.get(key.as_str()), recorded.get(key.as_str())) {
                    (None, _) => Some("deleted"),
                    (Some(_), None) => Some("new"),
                    (Some(actual), Some(recorded)) if !values_equal(actual, recorded) => {
                        Some("modified")
                    }
                    _ => None,
                };
                if let Some(change) = change {
                    changes.push((key, change));
                }
            }
            if !changes.is_empty() {
                status
                    .changed_deps
                    .push((repo_path, DepChange::Params(changes)));
            }
        }
    }
    for output in &stage.outs {
        let repo_path = stage.repo_path(&output.def_path);
        let recorded = locked
            .and_then(|locked| locked.out(&output.def_path))
            .and_then(|file| file.md5.clone());
        if let Some(recorded) = &recorded {
            if output.cache && !workspace.is_cached(recorded) {
                status.changed_outs.push((repo_path, "not in cache"));
                continue;
            }
        }
        let change = match workspace.hash(&repo_path, false)? {
            None => Some("deleted"),
            Some(actual) if Some(&actual.md5) != recorded.as_ref() => Some("modified"),
            Some(_) => None,
        };
        if let Some(change) = change {
            status.changed_outs.push((repo_path, change));
        }
    }
    status.always_changed = stage.always_changed || stage.is_callback();
    status.changed_command = locked.is_some_and(|locked| locked.cmd.as_ref() != Some(&stage.cmd));
    status.needs_run = status.changed_command
        || (!stage.frozen && (status.always_changed || !status.changed_deps.is_empty()))
        || !status.changed_outs.is_empty();
    Ok(status)
}
