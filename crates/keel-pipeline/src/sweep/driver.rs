//! `keel sweep`: runs one stage of the pipeline many times with parameters
//! a search strategy picks, `parallel` trials at a time, each in its own
//! copy of the repository and on the chosen executor. Each trial is a child
//! run of the sweep's run on the tracking server (its parameters, metrics
//! and log); trials reporting intermediate values are stopped early by the
//! median rule; the best trial is tagged. The record in
//! `.dvc/tmp/sweeps/<name>/sweep.json` makes a sweep resumable.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::executor::{self, CommandEnd, Executor};
use crate::project::Project;
use crate::runner::LogLine;
use crate::stage::{OutputKind, Stage};
use crate::sweep::prune::MedianPruner;
use crate::sweep::search::{Direction, FinishedTrial, Sampler};
use crate::sweep::space::SearchSpace;
use crate::sweep::state::{sweep_dir, SweepSettings, SweepState, TrialRecord, TrialState};
use crate::sweep::workspace;
use crate::tracking::{self, ParentRun, Tracker};
use crate::{params, PipelineError, Result};

/// How often a running trial's intermediate values are read.
const PRUNE_POLL: Duration = Duration::from_millis(500);

/// What `keel sweep` was asked.
pub struct SweepOptions {
    pub name: String,
    pub stage: String,
    pub space: SearchSpace,
    /// The search space's text, kept in the record.
    pub space_text: String,
    /// Trials in all, counting those of earlier, interrupted invocations.
    pub trials: usize,
    pub parallel: usize,
    /// `file:key`, or a dotted key into the stage's metrics files (its first
    /// part may name the file: `metrics.val_loss` reads `val_loss` from `metrics.json`).
    pub objective: String,
    /// The metric trials log at each step (to the tracking server, or with
    /// DVCLive) for early stopping.
    pub intermediate_key: String,
    pub direction: Direction,
    pub strategy: String,
    pub seed: u64,
    pub prune: bool,
    pub executor: Executor,
    /// Ran out of the record: any earlier record of this name is replaced.
    pub restart: bool,
}

/// What a sweep did.
#[derive(Debug, Clone)]
pub struct SweepReport {
    pub state: SweepState,
    pub interrupted: bool,
    /// The grid ran out before `trials`.
    pub exhausted: bool,
}

/// A finished trial as the samplers see it.
fn finished(trial: &TrialRecord) -> FinishedTrial {
    FinishedTrial {
        params: trial.params.clone(),
        objective: match trial.state {
            TrialState::Complete => trial.objective,
            // A pruned trial counts with the last value it reported.
            TrialState::Pruned => trial.intermediate.last().map(|(_, value)| *value),
            _ => None,
        },
        pruned: trial.state == TrialState::Pruned,
    }
}

/// Runs (or resumes) a sweep.
pub fn sweep(
    root: &Path,
    options: SweepOptions,
    mut sampler: Box<dyn Sampler>,
    tracker: Option<&TrackerFactory>,
    cancel: &AtomicBool,
    log: &(dyn Fn(LogLine) + Sync),
) -> Result<SweepReport> {
    let project = Project::load(root)?;
    let stage = project
        .stage(&options.stage)
        .ok_or_else(|| {
            PipelineError::Usage(format!(
                "'{}' is not a stage of dvc.yaml (the stages are: {})",
                options.stage,
                project
                    .stages
                    .iter()
                    .map(|stage| stage.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?
        .clone();
    for dep in stage.deps.iter().map(|dep| stage.repo_path(dep)) {
        if !root.join(&dep).exists() {
            return Err(PipelineError::Usage(format!(
                "dependency '{dep}' of stage '{}' does not exist; run `keel repro` for the stages that make it first",
                stage.name
            )));
        }
    }
    let settings = SweepSettings {
        stage: options.stage.clone(),
        objective: options.objective.clone(),
        direction: options.direction,
        strategy: options.strategy.clone(),
        seed: options.seed,
        space: options.space_text.clone(),
    };
    let mut state = match SweepState::load(root, &options.name)? {
        Some(existing) if !options.restart => {
            if existing.settings != settings {
                return Err(PipelineError::Usage(format!(
                    "sweep '{}' ran before with other settings (stage, objective, direction, strategy, seed or space); \
                     resume it with the same ones, give another --name, or start over with --restart",
                    options.name
                )));
            }
            existing
        }
        _ => SweepState {
            name: options.name.clone(),
            settings,
            parent_run_id: None,
            trials: Vec::new(),
        },
    };
    let tracker = match tracker {
        Some(factory) => {
            let parent = match &state.parent_run_id {
                Some(run_id) => ParentRun::Resume(run_id.clone()),
                None => ParentRun::New {
                    name: format!("sweep {}", options.name),
                    tags: vec![
                        ("keel.sweep".to_owned(), options.name.clone()),
                        ("keel.stage".to_owned(), options.stage.clone()),
                        ("keel.sweep.strategy".to_owned(), options.strategy.clone()),
                        ("keel.sweep.objective".to_owned(), options.objective.clone()),
                        ("mlflow.source.name".to_owned(), "keel sweep".to_owned()),
                    ],
                },
            };
            let tracker = factory(parent).map_err(|reason| {
                PipelineError::Usage(format!("cannot start tracking: {reason}"))
            })?;
            state.parent_run_id = Some(tracker.parent_run_id().to_owned());
            Some(tracker)
        }
        None => None,
    };
    let resumed = state
        .trials
        .iter()
        .filter(|trial| trial.state.is_finished())
        .count();
    if resumed > 0 {
        log(LogLine::Info(format!(
            "Resuming sweep '{}': {resumed} trial(s) already finished",
            options.name
        )));
    }
    // Trials that were running when the sweep stopped run again, with their parameters.
    let mut requeued: Vec<TrialRecord> = state
        .trials
        .iter()
        .filter(|trial| trial.state == TrialState::Running)
        .cloned()
        .collect();
    requeued.reverse();
    state.save(root)?;

    let shared = Mutex::new(state);
    let pruner = MedianPruner::default();
    let context = TrialContext {
        root,
        stage: &stage,
        options: &options,
        tracker: tracker.as_ref(),
        cancel,
        log,
        pruner: &pruner,
        shared: &shared,
    };
    let mut exhausted = false;
    std::thread::scope(|scope| -> Result<()> {
        let (sender, receiver) = mpsc::channel::<(usize, TrialRecord)>();
        let mut running = 0usize;
        loop {
            while running < options.parallel.max(1) && !cancel.load(Ordering::Relaxed) {
                let (started, finished_count) = {
                    let state = lock(&shared);
                    (
                        state.trials.len(),
                        state
                            .trials
                            .iter()
                            .filter(|trial| trial.state.is_finished())
                            .count(),
                    )
                };
                if finished_count + running >= options.trials {
                    break;
                }
                let trial = match requeued.pop() {
                    Some(trial) => trial,
                    None => {
                        let history: Vec<FinishedTrial> = {
                            let state = lock(&shared);
                            state
                                .trials
                                .iter()
                                .filter(|trial| trial.state.is_finished())
                                .map(finished)
                                .collect()
                        };
                        let Some(params) = sampler.suggest(&options.space, &history) else {
                            exhausted = true;
                            break;
                        };
                        TrialRecord {
                            number: started,
                            params,
                            state: TrialState::Running,
                            objective: None,
                            run_id: None,
                            intermediate: Vec::new(),
                            error: None,
                        }
                    }
                };
                {
                    let mut state = lock(&shared);
                    match state
                        .trials
                        .iter_mut()
                        .find(|existing| existing.number == trial.number)
                    {
                        Some(existing) => *existing = trial.clone(),
                        None => state.trials.push(trial.clone()),
                    }
                    state.save(root)?;
                }
                log(LogLine::Info(format!(
                    "Trial {} starting: {}",
                    trial.number,
                    describe_params(&trial.params)
                )));
                let sender = sender.clone();
                let context = &context;
                running += 1;
                scope.spawn(move || {
                    let number = trial.number;
                    let record = context.run(trial);
                    let _ = sender.send((number, record));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((number, record)) = receiver.recv() else {
                break;
            };
            running -= 1;
            log(LogLine::Info(describe_outcome(&record, &options.objective)));
            let mut state = lock(&shared);
            if let Some(existing) = state.trials.iter_mut().find(|trial| trial.number == number) {
                *existing = record;
            }
            state.save(root)?;
        }
        Ok(())
    })?;
    let state = shared
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let interrupted = cancel.load(Ordering::Relaxed);
    if let Some(tracker) = &tracker {
        record_best(tracker, &state, &options, log);
        let status = if interrupted { "KILLED" } else { "FINISHED" };
        if let Err(reason) = tracker.finish(status) {
            log(LogLine::Warning(format!("tracking: {reason}")));
        }
    }
    if !interrupted {
        remove_spent_workspaces(root, &state);
    }
    state.save(root)?;
    Ok(SweepReport {
        state,
        interrupted,
        exhausted,
    })
}

/// Opens the tracker of a sweep: a new parent run, or the one to resume.
pub type TrackerFactory = dyn Fn(ParentRun) -> std::result::Result<Tracker, String>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn describe_params(params: &[(String, Value)]) -> String {
    params
        .iter()
        .map(|(key, value)| format!("{key}={}", value_text(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A parameter value as text (as MLflow records a param).
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null => "null".to_owned(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn describe_outcome(trial: &TrialRecord, objective: &str) -> String {
    match (trial.state, trial.objective) {
        (TrialState::Complete, Some(value)) => {
            format!("Trial {} complete: {objective} = {value}", trial.number)
        }
        (TrialState::Pruned, _) => format!(
            "Trial {} pruned at step {} (median rule)",
            trial.number,
            trial.intermediate.last().map_or(0, |(step, _)| *step)
        ),
        (TrialState::Running, _) => format!(
            "Trial {} interrupted; it runs again on resume",
            trial.number
        ),
        _ => format!(
            "Trial {} failed: {}",
            trial.number,
            trial.error.as_deref().unwrap_or("unknown error")
        ),
    }
}

/// Tags the best trial's run (and untags a previous best), and records it on the sweep's run.
fn record_best(
    tracker: &Tracker,
    state: &SweepState,
    options: &SweepOptions,
    log: &(dyn Fn(LogLine) + Sync),
) {
    let Some(best) = state.best() else {
        return;
    };
    let result = (|| -> std::result::Result<(), String> {
        for trial in &state.trials {
            if trial.number != best.number {
                if let Some(run_id) = &trial.run_id {
                    // Only the best trial keeps the tag; a missing tag is fine.
                    let _ = tracker.delete_tag(run_id, "keel.sweep.best");
                }
            }
        }
        if let Some(run_id) = &best.run_id {
            tracker.log_metrics_and_tags(
                run_id,
                &[],
                &[("keel.sweep.best".to_owned(), "true".to_owned())],
            )?;
        }
        let mut tags = vec![
            ("keel.sweep.best_trial".to_owned(), best.number.to_string()),
            (
                "keel.sweep.best_run_id".to_owned(),
                best.run_id.clone().unwrap_or_default(),
            ),
        ];
        for (key, value) in &best.params {
            tags.push((
                format!("keel.sweep.best.{}", tracking::sanitize_key(key)),
                value_text(value),
            ));
        }
        let metrics: Vec<(String, f64)> = best
            .objective
            .map(|value| {
                (
                    format!("best_{}", tracking::sanitize_key(&options.intermediate_key)),
                    value,
                )
            })
            .into_iter()
            .collect();
        tracker.log_metrics_and_tags(tracker.parent_run_id(), &metrics, &tags)
    })();
    if let Err(reason) = result {
        log(LogLine::Warning(format!(
            "tracking the best trial: {reason}"
        )));
    }
}

/// Removes the workspaces of finished trials other than the best (failed
/// trials keep theirs, for a look at what went wrong).
fn remove_spent_workspaces(root: &Path, state: &SweepState) {
    let best = state.best().map(|trial| trial.number);
    for trial in &state.trials {
        if Some(trial.number) != best
            && matches!(trial.state, TrialState::Complete | TrialState::Pruned)
        {
            let _ = std::fs::remove_dir_all(trial_dir(root, &state.name, trial.number));
        }
    }
}

/// Where trial `number` of sweep `name` runs.
pub fn trial_dir(root: &Path, name: &str, number: usize) -> PathBuf {
    sweep_dir(root, name)
        .join("trials")
        .join(number.to_string())
}

struct TrialContext<'a> {
    root: &'a Path,
    stage: &'a Stage,
    options: &'a SweepOptions,
    tracker: Option<&'a Tracker>,
    cancel: &'a AtomicBool,
    log: &'a (dyn Fn(LogLine) + Sync),
    pruner: &'a MedianPruner,
    shared: &'a Mutex<SweepState>,
}

enum TrialEnd {
    Complete(f64),
    Pruned,
    Interrupted,
}

impl TrialContext<'_> {
    /// Runs one trial to its end; the record says how it ended.
    fn run(&self, mut trial: TrialRecord) -> TrialRecord {
        let output = Mutex::new(String::new());
        let mut artifact_uri = None;
        let result = self.try_run(&mut trial, &output, &mut artifact_uri);
        match result {
            Ok(TrialEnd::Complete(value)) => {
                trial.state = TrialState::Complete;
                trial.objective = Some(value);
                trial.error = None;
            }
            Ok(TrialEnd::Pruned) => trial.state = TrialState::Pruned,
            Ok(TrialEnd::Interrupted) => trial.state = TrialState::Running,
            Err(reason) => {
                trial.state = TrialState::Failed;
                trial.error = Some(reason);
            }
        }
        if let (Some(tracker), Some(run_id)) = (self.tracker, trial.run_id.clone()) {
            let output = output
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            self.finish_run(tracker, &run_id, artifact_uri.as_deref(), &trial, &output);
        }
        trial
    }

    fn try_run(
        &self,
        trial: &mut TrialRecord,
        output: &Mutex<String>,
        artifact_uri: &mut Option<String>,
    ) -> std::result::Result<TrialEnd, String> {
        let name = &self.options.name;
        let dir = trial_dir(self.root, name, trial.number);
        let fresh_outputs: Vec<String> = self
            .stage
            .outs
            .iter()
            .filter(|output| !output.persist)
            .map(|output| self.stage.repo_path(&output.def_path))
            .collect();
        workspace::populate(self.root, &dir, &fresh_outputs).map_err(|err| err.to_string())?;
        workspace::write_params(&dir, self.stage, &trial.params).map_err(|err| err.to_string())?;
        // Read again in the trial's copy: the parameters may be interpolated into the command.
        let project = Project::load(&dir).map_err(|err| err.to_string())?;
        let stage = project.stage(&self.stage.name).cloned().ok_or_else(|| {
            format!(
                "stage '{}' is gone from the trial's dvc.yaml",
                self.stage.name
            )
        })?;
        let mut env = vec![
            ("KEEL_SWEEP".to_owned(), name.clone()),
            ("KEEL_TRIAL".to_owned(), trial.number.to_string()),
        ];
        if let Some(tracker) = self.tracker {
            let run = tracker.create_child(
                &format!("{name}-trial-{}", trial.number),
                &[
                    ("keel.sweep", name.clone()),
                    ("keel.sweep.trial", trial.number.to_string()),
                    ("keel.stage", stage.name.clone()),
                    ("keel.cmd", stage.commands.join("\n")),
                ],
            )?;
            let logged: Vec<(String, String)> = trial
                .params
                .iter()
                .map(|(key, value)| (tracking::sanitize_key(key), value_text(value)))
                .collect();
            tracker.log_params(&run.run_id, &logged)?;
            trial.run_id = Some(run.run_id.clone());
            *artifact_uri = Some(run.artifact_uri);
            env.extend([
                (
                    "MLFLOW_TRACKING_URI".to_owned(),
                    tracker.tracking_uri().to_owned(),
                ),
                ("MLFLOW_RUN_ID".to_owned(), run.run_id),
                (
                    "MLFLOW_EXPERIMENT_ID".to_owned(),
                    tracker.experiment_id().to_owned(),
                ),
            ]);
        }
        let label = format!("trial {}", trial.number);
        let log = |line: LogLine| match line {
            LogLine::Output { line, stderr, .. } => {
                let mut kept = lock(output);
                kept.push_str(&line);
                kept.push('\n');
                drop(kept);
                (self.log)(LogLine::Output {
                    stage: label.clone(),
                    line,
                    stderr,
                });
            }
            other => (self.log)(other),
        };
        let stop = AtomicBool::new(false);
        let pruned = AtomicBool::new(false);
        let done = AtomicBool::new(false);
        let intermediate = Mutex::new(Vec::new());
        let run_id = trial.run_id.clone();
        let ended = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    if self.cancel.load(Ordering::Relaxed) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if self.options.prune && !stop.load(Ordering::Relaxed) {
                        let history = self.intermediate_values(&dir, &stage, run_id.as_deref());
                        if !history.is_empty() {
                            let others = self.others_intermediate();
                            if self
                                .pruner
                                .should_prune(self.options.direction, &history, &others)
                            {
                                pruned.store(true, Ordering::Relaxed);
                                stop.store(true, Ordering::Relaxed);
                            }
                            *lock(&intermediate) = history;
                        }
                    }
                    std::thread::sleep(PRUNE_POLL);
                }
            });
            let ended = (|| -> std::result::Result<Option<CommandEnd>, String> {
                for command in &stage.commands {
                    log(LogLine::Info(format!("[{label}] > {command}")));
                    match executor::run(
                        &self.options.executor,
                        &dir,
                        &stage,
                        command,
                        &env,
                        &stop,
                        &log,
                    )
                    .map_err(|err| err.to_string())?
                    {
                        CommandEnd::Success => {}
                        other => return Ok(Some(other)),
                    }
                }
                Ok(None)
            })();
            done.store(true, Ordering::Relaxed);
            ended
        })?;
        let mut history = self.intermediate_values(&dir, &stage, run_id.as_deref());
        if history.is_empty() {
            history = intermediate
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        trial.intermediate = history;
        match ended {
            None => self
                .read_objective(&dir, &stage, run_id.as_deref())
                .map(TrialEnd::Complete),
            Some(CommandEnd::Interrupted) if pruned.load(Ordering::Relaxed) => Ok(TrialEnd::Pruned),
            Some(CommandEnd::Interrupted) => Ok(TrialEnd::Interrupted),
            Some(CommandEnd::Failed(code)) => {
                Err(format!("the command failed (exit status {code})"))
            }
            Some(CommandEnd::Success) => Err("unreachable".to_owned()),
        }
    }

    /// The intermediate values complete trials reported, for the median rule.
    fn others_intermediate(&self) -> Vec<Vec<(u64, f64)>> {
        lock(self.shared)
            .trials
            .iter()
            .filter(|trial| trial.state == TrialState::Complete && !trial.intermediate.is_empty())
            .map(|trial| trial.intermediate.clone())
            .collect()
    }

    /// What a running trial reported so far: its run's metric history on the
    /// tracking server, else DVCLive's `dvclive/plots/metrics/<key>.tsv`.
    fn intermediate_values(
        &self,
        dir: &Path,
        stage: &Stage,
        run_id: Option<&str>,
    ) -> Vec<(u64, f64)> {
        let key = &self.options.intermediate_key;
        if let (Some(tracker), Some(run_id)) = (self.tracker, run_id) {
            if let Ok(history) = tracker.metric_history(run_id, key) {
                if !history.is_empty() {
                    return history;
                }
            }
        }
        let tsv = dir
            .join(&stage.wdir)
            .join("dvclive/plots/metrics")
            .join(format!("{key}.tsv"));
        std::fs::read_to_string(tsv)
            .map(|text| parse_dvclive_tsv(&text))
            .unwrap_or_default()
    }

    /// The objective of a finished trial (see `SweepOptions::objective`),
    /// else the last value of the run's metric of that name.
    fn read_objective(
        &self,
        dir: &Path,
        stage: &Stage,
        run_id: Option<&str>,
    ) -> std::result::Result<f64, String> {
        let objective = &self.options.objective;
        let number = |value: Option<&Value>| value.and_then(Value::as_f64);
        let files = metrics_files(stage);
        if let Some((file, key)) = objective.split_once(':') {
            let path = stage.repo_path(file);
            let value =
                params::load_file(&dir.join(&path), &path).map_err(|err| err.to_string())?;
            return number(params::select_dotted(&value, key))
                .ok_or_else(|| format!("'{path}' has no number at '{key}'"));
        }
        for file in &files {
            if let Ok(value) = params::load_file(&dir.join(file), file) {
                if let Some(found) = number(params::select_dotted(&value, objective)) {
                    return Ok(found);
                }
                if let Some((head, rest)) = objective.split_once('.') {
                    let stem = Path::new(file).file_stem().and_then(|stem| stem.to_str());
                    if stem == Some(head) {
                        if let Some(found) = number(params::select_dotted(&value, rest)) {
                            return Ok(found);
                        }
                    }
                }
            }
        }
        if let (Some(tracker), Some(run_id)) = (self.tracker, run_id) {
            if let Ok(history) = tracker.metric_history(run_id, objective) {
                if let Some((_, value)) = history.last() {
                    return Ok(*value);
                }
            }
        }
        Err(format!(
            "the objective '{objective}' was not found in the stage's metrics files ({}){}",
            if files.is_empty() {
                "none declared".to_owned()
            } else {
                files.join(", ")
            },
            if self.tracker.is_some() {
                " nor logged as a metric of the trial's run"
            } else {
                ""
            }
        ))
    }

    fn finish_run(
        &self,
        tracker: &Tracker,
        run_id: &str,
        artifact_uri: Option<&str>,
        trial: &TrialRecord,
        output: &str,
    ) {
        let dir = trial_dir(self.root, &self.options.name, trial.number);
        let mut metrics = Vec::new();
        for file in metrics_files(self.stage) {
            if let Ok(value) = params::load_file(&dir.join(&file), &file) {
                tracking::flatten_numbers("", &value, &mut metrics);
            }
        }
        let mut tags = vec![(
            "keel.sweep.state".to_owned(),
            trial.state.as_str().to_owned(),
        )];
        if let Some(error) = &trial.error {
            tags.push(("keel.error".to_owned(), error.clone()));
        }
        let mut outcome = tracker.log_metrics_and_tags(run_id, &metrics, &tags);
        if let Some(uri) = artifact_uri {
            outcome = outcome.and(tracker.upload_text_artifact(
                uri,
                &format!("logs/trial-{}.log", trial.number),
                output,
            ));
        }
        let status = match trial.state {
            TrialState::Complete => "FINISHED",
            TrialState::Failed => "FAILED",
            TrialState::Pruned | TrialState::Running => "KILLED",
        };
        outcome = outcome.and(tracker.end_run(run_id, status));
        if let Err(reason) = outcome {
            (self.log)(LogLine::Warning(format!(
                "tracking trial {}: {reason}",
                trial.number
            )));
        }
    }
}

/// The repository-relative paths of a stage's metrics files.
fn metrics_files(stage: &Stage) -> Vec<String> {
    stage
        .outs
        .iter()
        .filter(|output| output.kind == OutputKind::Metric)
        .map(|output| stage.repo_path(&output.def_path))
        .collect()
}

/// DVCLive's per-metric history: a header, then `step<TAB>value` rows
/// (a timestamp column may come first).
fn parse_dvclive_tsv(text: &str) -> Vec<(u64, f64)> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split('\t').collect();
    let Some(step_column) = columns.iter().position(|column| *column == "step") else {
        return Vec::new();
    };
    let value_column = columns.len() - 1;
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let step = fields.get(step_column)?.trim().parse().ok()?;
            let value = fields.get(value_column)?.trim().parse().ok()?;
            Some((step, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dvclive_histories_are_read_by_their_header() {
        assert_eq!(
            parse_dvclive_tsv("timestamp\tstep\tval_loss\n1700\t0\t0.9\n1701\t1\t0.5\nbroken\n"),
            [(0, 0.9), (1, 0.5)]
        );
        assert_eq!(parse_dvclive_tsv("step\tloss\n3\t0.25\n"), [(3, 0.25)]);
        assert!(parse_dvclive_tsv("no header\n").is_empty());
    }

    #[test]
    fn parameter_values_read_as_mlflow_records_them() {
        assert_eq!(value_text(&Value::from(0.001)), "0.001");
        assert_eq!(value_text(&Value::from(3)), "3");
        assert_eq!(value_text(&Value::from("adam")), "adam");
        assert_eq!(
            describe_params(&[
                ("a.b".to_owned(), Value::from(1)),
                ("c".to_owned(), Value::from(true))
            ]),
            "a.b=1 c=true"
        );
    }
}
