//! Pipelines on a cron schedule, run by `keel server --schedules FILE`:
//! each schedule reproduces a repository's `dvc.yaml` (all of it or some
//! targets) at the times its cron expression names, as a tracked run on the
//! server itself, so the run history is the experiment's runs (tagged
//! `keel.schedule`), and the last runs are also kept in memory for
//! `GET /api/2.0/keel/schedules`. A run still going when the next time
//! comes is not doubled: that time is recorded as skipped.
//!
//! ```yaml
//! schedules:
//!   - name: nightly
//!     repo: ../ml-repo          # relative to this file
//!     cron: "0 3 * * *"         # 5 fields, or 6 with seconds first
//!     targets: [train]          # default: every stage
//!     jobs: 2
//!     force: false
//!     experiment: nightly       # default: the schedule's name
//! ```

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde_json::json;
use serde_yaml_ng::Value;

use crate::runner::{self, LogLine, ReproOptions, StageHooks};
use crate::tracking::{ParentRun, Tracker};
use crate::{PipelineError, Result};

/// Runs kept in memory per schedule.
const HISTORY: usize = 50;

/// One schedule of the file.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub name: String,
    pub repo: PathBuf,
    pub cron_text: String,
    pub cron: Cron,
    pub targets: Vec<String>,
    pub jobs: usize,
    pub force: bool,
    pub experiment: String,
}

impl ScheduleSpec {
    /// The first time after `after` the schedule fires.
    pub fn next_after(&self, after: &DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

/// Parses a cron expression: five fields, or six with seconds first;
/// `@daily` and the other nicknames too.
pub fn parse_cron(text: &str) -> std::result::Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(text)
        .map_err(|err| format!("'{text}' is not a cron expression: {err}"))
}

/// Reads a schedules file; relative `repo` paths are relative to the file.
pub fn load(path: &Path) -> Result<Vec<ScheduleSpec>> {
    let text = std::fs::read_to_string(path).map_err(|err| PipelineError::io(path, err))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|reason| PipelineError::invalid(path.display().to_string(), reason))
}

pub fn parse(text: &str, base: &Path) -> std::result::Result<Vec<ScheduleSpec>, String> {
    let document: Value =
        serde_yaml_ng::from_str(text).map_err(|err| format!("not valid YAML: {err}"))?;
    let items = match document.get("schedules") {
        Some(Value::Sequence(items)) => items,
        _ => return Err("expected a 'schedules:' list".to_owned()),
    };
    let mut specs: Vec<ScheduleSpec> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let text_field = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
        let name =
            text_field("name").ok_or_else(|| format!("schedule #{} has no 'name'", index + 1))?;
        let at = |message: String| format!("schedule '{name}': {message}");
        if specs.iter().any(|spec| spec.name == name) {
            return Err(at("the name is used twice".to_owned()));
        }
        if let Value::Mapping(map) = item {
            for key in map.keys() {
                let key = key.as_str().unwrap_or_default();
                if ![
                    "name",
                    "repo",
                    "cron",
                    "targets",
                    "jobs",
                    "force",
                    "experiment",
                ]
                .contains(&key)
                {
                    return Err(at(format!("unknown key '{key}'")));
                }
            }
        }
        let repo = text_field("repo").ok_or_else(|| at("'repo' is missing".to_owned()))?;
        let repo = base.join(repo);
        if !repo.join("dvc.yaml").is_file() {
            return Err(at(format!("{} has no dvc.yaml", repo.display())));
        }
        let cron_text = text_field("cron").ok_or_else(|| at("'cron' is missing".to_owned()))?;
        let cron = parse_cron(&cron_text).map_err(at)?;
        let targets = match item.get("targets") {
            None => Vec::new(),
            Some(Value::Sequence(targets)) => targets
                .iter()
                .map(|target| {
                    target
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| at("'targets' must be stage names".to_owned()))
                })
                .collect::<std::result::Result<_, _>>()?,
            Some(Value::String(target)) => vec![target.clone()],
            Some(_) => return Err(at("'targets' must be a list of stage names".to_owned())),
        };
        let jobs = match item.get("jobs") {
            None => 1,
            Some(jobs) => jobs
                .as_u64()
                .filter(|jobs| *jobs >= 1)
                .ok_or_else(|| at("'jobs' must be a whole number of at least 1".to_owned()))?
                as usize,
        };
        let force = match item.get("force") {
            None => false,
            Some(force) => force
                .as_bool()
                .ok_or_else(|| at("'force' must be true or false".to_owned()))?,
        };
        let experiment = text_field("experiment").unwrap_or_else(|| name.clone());
        specs.push(ScheduleSpec {
            name,
            repo,
            cron_text,
            cron,
            targets,
            jobs,
            force,
            experiment,
        });
    }
    Ok(specs)
}

/// One run of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledRun {
    pub trigger: &'static str,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    /// RUNNING, FINISHED, FAILED or SKIPPED.
    pub status: &'static str,
    pub run_id: Option<String>,
    pub ran: Vec<String>,
    pub failed: Vec<String>,
    pub message: Option<String>,
}

/// Why a manual trigger did not start a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerError {
    UnknownSchedule(String),
    AlreadyRunning(String),
}

impl std::fmt::Display for TriggerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TriggerError::UnknownSchedule(name) => write!(f, "no schedule named '{name}'"),
            TriggerError::AlreadyRunning(name) => write!(f, "schedule '{name}' is running already"),
        }
    }
}

/// Runs the schedules, each on a thread of its own.
pub struct Scheduler {
    specs: Vec<ScheduleSpec>,
    /// The server the runs are recorded on, known once it listens.
    tracking_uri: std::sync::OnceLock<String>,
    history: Mutex<HashMap<String, VecDeque<ScheduledRun>>>,
    stop: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Scheduler {
    pub fn new(specs: Vec<ScheduleSpec>) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            specs,
            tracking_uri: std::sync::OnceLock::new(),
            history: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        })
    }

    pub fn specs(&self) -> &[ScheduleSpec] {
        &self.specs
    }

    /// Starts one timer thread per schedule; runs are tracked on `tracking_uri`
    /// (the server running the schedules).
    pub fn start(self: &Arc<Self>, tracking_uri: &str) {
        let _ = self.tracking_uri.set(tracking_uri.to_owned());
        for index in 0..self.specs.len() {
            let scheduler = Arc::clone(self);
            std::thread::spawn(move || scheduler.timer(index));
        }
    }

    /// Stops the timers; runs under way finish.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn timer(self: Arc<Self>, index: usize) {
        let Some(spec) = self.specs.get(index) else {
            return;
        };
        let mut after = Utc::now();
        while !self.stop.load(Ordering::Relaxed) {
            let Some(next) = spec.next_after(&after) else {
                tracing::warn!(schedule = %spec.name, "the cron expression names no future time; the schedule stops");
                return;
            };
            while Utc::now() < next {
                if self.stop.load(Ordering::Relaxed) {
                    return;
                }
                let left = (next - Utc::now()).to_std().unwrap_or_default();
                std::thread::sleep(left.min(Duration::from_millis(200)));
            }
            after = next;
            if let Err(TriggerError::AlreadyRunning(_)) = self.trigger_spec(spec, "cron") {
                self.push(
                    spec,
                    ScheduledRun {
                        trigger: "cron",
                        started: Utc::now(),
                        ended: Some(Utc::now()),
                        status: "SKIPPED",
                        run_id: None,
                        ran: Vec::new(),
                        failed: Vec::new(),
                        message: Some("the previous run was still going".to_owned()),
                    },
                );
            }
        }
    }

    /// Runs schedule `name` now.
    pub fn trigger(self: &Arc<Self>, name: &str) -> std::result::Result<(), TriggerError> {
        let spec = self
            .specs
            .iter()
            .find(|spec| spec.name == name)
            .ok_or_else(|| TriggerError::UnknownSchedule(name.to_owned()))?;
        self.trigger_spec(spec, "manual")
    }

    fn trigger_spec(
        self: &Arc<Self>,
        spec: &ScheduleSpec,
        trigger: &'static str,
    ) -> std::result::Result<(), TriggerError> {
        let started = Utc::now();
        {
            let mut history = lock(&self.history);
            let runs = history.entry(spec.name.clone()).or_default();
            if runs.iter().any(|run| run.status == "RUNNING") {
                return Err(TriggerError::AlreadyRunning(spec.name.clone()));
            }
        }
        self.push(
            spec,
            ScheduledRun {
                trigger,
                started,
                ended: None,
                status: "RUNNING",
                run_id: None,
                ran: Vec::new(),
                failed: Vec::new(),
                message: None,
            },
        );
        let scheduler = Arc::clone(self);
        let spec = spec.clone();
        std::thread::spawn(move || {
            let tracking_uri = scheduler
                .tracking_uri
                .get()
                .cloned()
                .unwrap_or_else(|| "http://127.0.0.1:5000".to_owned());
            let mut run = run_once(&spec, &tracking_uri);
            run.trigger = trigger;
            run.started = started;
            let mut history = lock(&scheduler.history);
            if let Some(slot) = history.get_mut(&spec.name).and_then(|runs| {
                runs.iter_mut()
                    .find(|run| run.status == "RUNNING" && run.started == started)
            }) {
                *slot = run;
            }
        });
        Ok(())
    }

    /// The schedules, their next times and their recent runs (newest first), as JSON.
    pub fn describe(&self) -> serde_json::Value {
        let history = lock(&self.history);
        let now = Utc::now();
        let schedules: Vec<serde_json::Value> = self
            .specs
            .iter()
            .map(|spec| {
                let runs: Vec<serde_json::Value> = history
                    .get(&spec.name)
                    .map(|runs| runs.iter().rev().map(run_json).collect())
                    .unwrap_or_default();
                json!({
                    "name": spec.name,
                    "repo": spec.repo.display().to_string(),
                    "cron": spec.cron_text,
                    "description": spec.cron.describe(),
                    "targets": spec.targets,
                    "experiment": spec.experiment,
                    "next_run_time": spec.next_after(&now).map(|next| next.to_rfc3339()),
                    "runs": runs,
                })
            })
            .collect();
        json!({ "schedules": schedules })
    }

    fn push(&self, spec: &ScheduleSpec, run: ScheduledRun) {
        let mut history = lock(&self.history);
        let runs = history.entry(spec.name.clone()).or_default();
        runs.push_back(run);
        while runs.len() > HISTORY {
            runs.pop_front();
        }
    }
}

fn run_json(run: &ScheduledRun) -> serde_json::Value {
    json!({
        "trigger": run.trigger,
        "start_time": run.started.to_rfc3339(),
        "end_time": run.ended.map(|ended| ended.to_rfc3339()),
        "status": run.status,
        "run_id": run.run_id,
        "stages_ran": run.ran,
        "stages_failed": run.failed,
        "message": run.message,
    })
}

/// One tracked `repro` of a schedule's repository.
fn run_once(spec: &ScheduleSpec, tracking_uri: &str) -> ScheduledRun {
    let mut record = ScheduledRun {
        trigger: "cron",
        started: Utc::now(),
        ended: None,
        status: "FAILED",
        run_id: None,
        ran: Vec::new(),
        failed: Vec::new(),
        message: None,
    };
    let tracker = Tracker::start_parent(
        tracking_uri,
        &spec.experiment,
        &spec.repo,
        ParentRun::New {
            name: format!("schedule {}", spec.name),
            tags: vec![
                ("keel.schedule".to_owned(), spec.name.clone()),
                ("keel.pipeline".to_owned(), spec.repo.display().to_string()),
                ("mlflow.source.name".to_owned(), "keel schedule".to_owned()),
            ],
        },
    );
    let tracker = match tracker {
        Ok(tracker) => Some(tracker),
        Err(reason) => {
            tracing::warn!(schedule = %spec.name, "running without tracking: {reason}");
            record.message = Some(format!("not tracked: {reason}"));
            None
        }
    };
    record.run_id = tracker
        .as_ref()
        .map(|tracker| tracker.parent_run_id().to_owned());
    let options = ReproOptions {
        targets: spec.targets.clone(),
        force: spec.force,
        jobs: spec.jobs,
        ..ReproOptions::default()
    };
    let cancel = AtomicBool::new(false);
    let name = spec.name.clone();
    let log = |line: LogLine| match line {
        LogLine::Output { stage, line, .. } => {
            if let Some(tracker) = &tracker {
                tracker.capture_output(&stage, &line);
            }
            tracing::debug!(schedule = %name, stage = %stage, "{line}");
        }
        LogLine::Info(text) => tracing::debug!(schedule = %name, "{text}"),
        LogLine::Warning(text) => tracing::warn!(schedule = %name, "{text}"),
    };
    let hooks = tracker.as_ref().map(|tracker| tracker as &dyn StageHooks);
    let result = runner::repro(&spec.repo, &options, hooks, &cancel, &log);
    let status = match &result {
        Ok(report) if report.failed.is_empty() && !report.interrupted => "FINISHED",
        _ => "FAILED",
    };
    match result {
        Ok(report) => {
            record.ran = report.ran;
            record.failed = report
                .failed
                .iter()
                .map(|(stage, _)| stage.clone())
                .collect();
            if let Some((stage, reason)) = report.failed.first() {
                record.message = Some(format!("stage '{stage}' failed: {reason}"));
            }
        }
        Err(err) => record.message = Some(err.to_string()),
    }
    if let Some(tracker) = &tracker {
        if let Err(reason) = tracker.finish(status) {
            tracing::warn!(schedule = %spec.name, "tracking: {reason}");
        }
    }
    tracing::info!(schedule = %spec.name, status, ran = record.ran.len(), "scheduled run ended");
    record.status = status;
    record.ended = Some(Utc::now());
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("dvc.yaml"),
            "stages:\n  a:\n    cmd: echo a\n",
        )
        .expect("write");
        dir
    }

    #[test]
    fn schedules_parse_with_defaults_and_relative_repos() {
        let dir = repo();
        let base = dir.path().parent().expect("parent");
        let name = dir.path().file_name().expect("name").to_string_lossy();
        let text = format!(
            "schedules:\n  - name: nightly\n    repo: {name}\n    cron: '0 3 * * *'\n  - name: fast\n    repo: {name}\n    cron: '*/2 * * * * *'\n    targets: [a]\n    jobs: 2\n    experiment: e\n"
        );
        let specs = parse(&text, base).expect("parse");
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].experiment, "nightly");
        assert_eq!((specs[0].jobs, specs[0].force), (1, false));
        assert_eq!(specs[1].targets, ["a"]);
        assert_eq!(specs[1].repo, dir.path());
        let at = DateTime::parse_from_rfc3339("2026-11-29T10:00:01Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            specs[0].next_after(&at).map(|next| next.to_rfc3339()),
            Some("2026-11-30T03:00:00+00:00".to_owned())
        );
        assert_eq!(
            specs[1].next_after(&at).map(|next| next.to_rfc3339()),
            Some("2026-11-29T10:00:02+00:00".to_owned())
        );
    }

    #[test]
    fn mistakes_name_the_schedule_and_the_key() {
        let dir = repo();
        let base = dir.path().parent().expect("parent");
        let name = dir.path().file_name().expect("name").to_string_lossy();
        for (body, message) in [
            (format!("  - name: x\n    repo: {name}\n    cron: 'every day'\n"), "schedule 'x': 'every day' is not a cron expression"),
            (format!("  - name: x\n    repo: {name}\n    cron: '* * * * *'\n    jobz: 2\n"), "unknown key 'jobz'"),
            ("  - name: x\n    repo: nowhere\n    cron: '* * * * *'\n".to_owned(), "has no dvc.yaml"),
            (format!("  - name: x\n    repo: {name}\n    cron: '* * * * *'\n  - name: x\n    repo: {name}\n    cron: '* * * * *'\n"), "used twice"),
            (format!("  - repo: {name}\n"), "has no 'name'"),
        ] {
            let err = parse(&format!("schedules:\n{body}"), base).expect_err(message);
            assert!(err.contains(message), "{err} does not contain {message}");
        }
        assert!(parse("nope: 1", base)
            .expect_err("no list")
            .contains("'schedules:'"));
    }
}
