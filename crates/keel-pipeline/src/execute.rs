//! One stage of a `repro`: whether it runs (staleness, `force`), its
//! outputs checked out from the run cache instead when DVC would, its
//! commands run (with retries), then its dependencies, parameters and
//! outputs hashed and cached outputs committed, which makes its lock entry.

use std::sync::atomic::AtomicBool;

use serde_yaml_ng::{Mapping, Value};

use crate::executor::{self, CommandEnd};
use crate::lockfile::{FileHash, LockedStage, StageLock};
use crate::outputs::Workspace;
use crate::runcache;
use crate::runner::{LogLine, Outcome, ReproOptions, StageHooks};
use crate::stage::Stage;
use crate::status::{read_params, stage_status, StageStatus};
use crate::{PipelineError, Result};

/// Decides whether a stage runs, runs it, and builds its lock entry.
pub(crate) fn evaluate_stage(
    workspace: &Workspace,
    stage: &Stage,
    locked: Option<&LockedStage>,
    options: &ReproOptions,
    hooks: Option<&dyn StageHooks>,
    cancel: &AtomicBool,
    log: &(dyn Fn(LogLine) + Sync),
) -> Outcome {
    let hooked = std::cell::Cell::new(false);
    let result = (|| -> Result<Outcome> {
        if stage.frozen {
            log(LogLine::Warning(format!(
                "stage: '{}' is frozen. Its dependencies are not going to be reproduced.",
                stage.name
            )));
        }
        let mut status = None;
        if !options.force {
            let current = stage_status(workspace, stage, locked)?;
            let needs_run = current.needs_run;
            status = Some(current);
            if !needs_run {
                if !options.dry {
                    log(LogLine::Info(format!(
                        "Stage '{}' didn't change, skipping",
                        stage.name
                    )));
                }
                return Ok(Outcome::UpToDate);
            }
        }
        if options.dry {
            log(LogLine::Info(format!("Running stage '{}':", stage.name)));
            for command in &stage.commands {
                log(LogLine::Info(format!("> {command}")));
            }
            return Ok(Outcome::Ran(None, Vec::new()));
        }
        if stage.frozen {
            log(LogLine::Info(format!(
                "Verifying outputs in frozen stage: '{}'",
                stage.name
            )));
            for output in &stage.outs {
                let repo_path = stage.repo_path(&output.def_path);
                if !workspace.root().join(&repo_path).exists() {
                    return Err(PipelineError::Usage(format!(
                        "output '{repo_path}' does not exist"
                    )));
                }
            }
        } else {
            for dep in stage.all_dep_paths() {
                if !workspace.root().join(&dep).exists() {
                    return Err(PipelineError::Usage(format!(
                        "dependency '{dep}' does not exist"
                    )));
                }
            }
            for output in &stage.outs {
                if !output.persist {
                    workspace.remove(&stage.repo_path(&output.def_path))?;
                }
            }
            let restored = match &status {
                Some(status) if runcache::can_use(stage) => {
                    restore_from_run_cache(workspace, stage, locked, status, log)?
                }
                _ => false,
            };
            let mut env = Vec::new();
            if !restored {
                log(LogLine::Info(format!("Running stage '{}':", stage.name)));
                if let Some(hooks) = hooks {
                    hooked.set(true);
                    match hooks.before_run(stage) {
                        Ok(variables) => env = variables,
                        Err(reason) => log(LogLine::Warning(format!(
                            "tracking stage '{}': {reason}",
                            stage.name
                        ))),
                    }
                }
            }
            let mut n_retries = 0;
            'attempts: loop {
                for command in stage.commands.iter().filter(|_| !restored) {
                    log(LogLine::Info(format!("> {command}")));
                    match executor::run(
                        &options.executor,
                        workspace.root(),
                        stage,
                        command,
                        &env,
                        cancel,
                        log,
                    )? {
                        CommandEnd::Success => {}
                        CommandEnd::Interrupted => {
                            if let Some(hooks) = hooks {
                                hooked.set(false);
                                let _ = hooks.after_run(stage, Err("interrupted"));
                            }
                            return Ok(Outcome::Interrupted);
                        }
                        CommandEnd::Failed(code) if n_retries < options.retries => {
                            n_retries += 1;
                            log(LogLine::Warning(format!(
                                "stage '{}': '{command}' exited with {code}; retrying ({n_retries} of {})",
                                stage.name, options.retries
                            )));
                            for output in stage.outs.iter().filter(|output| !output.persist) {
                                workspace.remove(&stage.repo_path(&output.def_path))?;
                            }
                            continue 'attempts;
                        }
                        CommandEnd::Failed(code) => {
                            return Err(PipelineError::Usage(format!(
                                "failed to run: {command}, exited with {code}"
                            )))
                        }
                    }
                }
                break;
            }
        }
        let saved = save_stage(workspace, stage)?;
        if let Some(hooks) = hooks.filter(|_| hooked.get()) {
            hooked.set(false);
            if let Err(reason) = hooks.after_run(stage, Ok(&saved)) {
                log(LogLine::Warning(format!(
                    "tracking stage '{}': {reason}",
                    stage.name
                )));
            }
        }
        let entry = saved.to_value();
        if runcache::should_save(stage) {
            // Outputs outside the cache (metrics, plots) go in too, so the
            // run cache can restore them.
            for output in stage.outs.iter().filter(|output| !output.cache) {
                workspace.hash(&stage.repo_path(&output.def_path), true)?;
            }
            if let Value::Mapping(entry) = &entry {
                runcache::save(workspace.root(), entry)?;
            }
        }
        let ignored = stage
            .outs
            .iter()
            .filter(|output| output.cache)
            .map(|output| stage.repo_path(&output.def_path))
            .collect();
        Ok(Outcome::Ran(Some(entry), ignored))
    })();
    result.unwrap_or_else(|err| {
        let reason = err.to_string();
        if let Some(hooks) = hooks.filter(|_| hooked.get()) {
            if let Err(tracking) = hooks.after_run(stage, Err(&reason)) {
                log(LogLine::Warning(format!(
                    "tracking stage '{}': {tracking}",
                    stage.name
                )));
            }
        }
        Outcome::Failed(reason)
    })
}

/// The outputs (def path, md5, isexec) the run cache offers for the stage:
/// its own lock entry when only outputs changed, else the newest entry
/// recorded for its command, dependencies and parameters.
fn run_cache_outputs(
    workspace: &Workspace,
    stage: &Stage,
    locked: Option<&LockedStage>,
    status: &StageStatus,
) -> Result<Option<Vec<(String, String, bool)>>> {
    if let Some(locked) = locked {
        if !status.changed_command && status.changed_deps.is_empty() {
            let recorded: Option<Vec<(String, String, bool)>> = stage
                .outs
                .iter()
                .map(|output| {
                    let file = locked.out(&output.def_path)?;
                    Some((output.def_path.clone(), file.md5.clone()?, file.isexec))
                })
                .collect();
            if recorded.is_some() {
                return Ok(recorded);
            }
        }
    }
    let Ok(inputs) = hash_inputs(workspace, stage) else {
        return Ok(None);
    };
    let mut entry = match inputs.to_value() {
        Value::Mapping(entry) => entry,
        _ => return Ok(None),
    };
    let paths: Vec<Value> = stage
        .outs
        .iter()
        .map(|output| {
            let mut out = Mapping::new();
            out.insert("path".into(), output.def_path.clone().into());
            Value::Mapping(out)
        })
        .collect();
    entry.insert("outs".into(), Value::Sequence(paths));
    let Some(cached) = runcache::lookup(workspace.root(), &runcache::key(&entry))? else {
        return Ok(None);
    };
    let Some(Value::Sequence(outs)) = cached.get("outs") else {
        return Ok(None);
    };
    Ok(outs
        .iter()
        .map(|out| {
            Some((
                out.get("path")?.as_str()?.to_owned(),
                out.get("md5")?.as_str()?.to_owned(),
                out.get("isexec").and_then(Value::as_bool).unwrap_or(false),
            ))
        })
        .collect())
}

/// Checks out a stage's outputs from the run cache instead of running it,
/// as DVC does; false when there is nothing (complete) to restore.
fn restore_from_run_cache(
    workspace: &Workspace,
    stage: &Stage,
    locked: Option<&LockedStage>,
    status: &StageStatus,
    log: &(dyn Fn(LogLine) + Sync),
) -> Result<bool> {
    let Some(outputs) = run_cache_outputs(workspace, stage, locked, status)? else {
        return Ok(false);
    };
    if !outputs.iter().all(|(_, md5, _)| workspace.is_cached(md5)) {
        return Ok(false);
    }
    log(LogLine::Info(format!(
        "Stage '{}' is cached - skipping run, checking out outputs",
        stage.name
    )));
    for (def_path, md5, isexec) in outputs {
        workspace.checkout(&stage.repo_path(&def_path), &md5, isexec)?;
    }
    Ok(true)
}

/// Hashes a stage's dependencies and reads its parameters (the lock entry
/// without outputs).
fn hash_inputs(workspace: &Workspace, stage: &Stage) -> Result<StageLock> {
    let mut deps = Vec::new();
    for def_path in &stage.deps {
        let repo_path = stage.repo_path(def_path);
        let hash = workspace.hash(&repo_path, false)?.ok_or_else(|| {
            PipelineError::Usage(format!("dependency '{repo_path}' does not exist"))
        })?;
        deps.push((def_path.clone(), hash));
    }
    let mut params: Vec<(String, Mapping)> = Vec::new();
    for params_dep in &stage.params {
        let repo_path = stage.repo_path(&params_dep.def_path);
        let values = read_params(workspace, stage, params_dep)?.ok_or_else(|| {
            PipelineError::Usage(format!("Parameters file '{repo_path}' does not exist"))
        })?;
        let missing: Vec<&str> = params_dep
            .keys
            .iter()
            .filter(|key| !values.contains_key(key.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(PipelineError::Usage(format!(
                "Parameters '{}' are missing from '{repo_path}'.",
                missing.join(", ")
            )));
        }
        params.push((params_dep.def_path.clone(), values));
    }
    Ok(StageLock {
        cmd: stage.cmd.clone(),
        deps,
        params,
        outs: Vec::new(),
    })
}

/// Hashes a stage's dependencies, parameters and outputs after it ran,
/// committing cached outputs, as DVC's `Stage.save` + `commit`.
fn save_stage(workspace: &Workspace, stage: &Stage) -> Result<StageLock> {
    let StageLock {
        cmd, deps, params, ..
    } = hash_inputs(workspace, stage)?;
    let mut outs: Vec<(String, FileHash)> = Vec::new();
    for output in &stage.outs {
        let repo_path = stage.repo_path(&output.def_path);
        let hash = workspace
            .hash(&repo_path, output.cache)?
            .ok_or_else(|| PipelineError::Usage(format!("output '{repo_path}' does not exist")))?;
        outs.push((output.def_path.clone(), hash));
    }
    Ok(StageLock {
        cmd,
        deps,
        params,
        outs,
    })
}
