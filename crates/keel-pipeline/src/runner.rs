//! `repro`: stages evaluated in DVC's order, independent ones in parallel up
//! to `jobs`. A stage starts once everything upstream of it has finished; it
//! runs when DVC would run it (or with `force`), its commands run by the
//! chosen executor (a process group of its own under `$SHELL -c`, or a Ray
//! job), output streamed line by line prefixed with the stage name. After a
//! stage succeeds its outputs go into the cache and its entry into
//! `dvc.lock` (rewritten atomically each time), so the lock is consistent
//! whenever Keel stops. A failure stops the run (as DVC does) or, with
//! `keep_going`, only the stages downstream of it.
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_yaml_ng::Value;

use crate::dag::Dag;
use crate::execute::evaluate_stage;
use crate::executor::Executor;
use crate::lockfile::{Lockfile, StageLock};
use crate::outputs::Workspace;
use crate::project::{Project, LOCK_FILE, PROJECT_FILE};
use crate::stage::Stage;
use crate::{PipelineError, Result};

/// Options of `repro`, as DVC names them.
#[derive(Debug, Clone, Default)]
pub struct ReproOptions {
    /// Stage names (`name`, `dvc.yaml:name`, or a foreach/matrix group name);
    /// empty for the whole pipeline.
    pub targets: Vec<String>,
    pub force: bool,
    pub dry: bool,
    /// How many stages run at once (at least 1).
    pub jobs: usize,
    pub keep_going: bool,
    pub downstream: bool,
    pub single_item: bool,
    /// How many times a failing stage's commands run again before it counts as failed.
    pub retries: usize,
    /// Where the stages' commands run.
    pub executor: Executor,
}

/// A line for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    Info(String),
    Warning(String),
    /// A line a stage's command wrote (`stderr` tells which stream).
    Output {
        stage: String,
        line: String,
        stderr: bool,
    },
}

/// What a `repro` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReproReport {
    /// Stages whose commands ran (or, with `dry`, would have run).
    pub ran: Vec<String>,
    pub up_to_date: Vec<String>,
    /// (stage, why it failed)
    pub failed: Vec<(String, String)>,
    /// Stages not evaluated because something upstream failed or the run stopped.
    pub skipped: Vec<String>,
    pub interrupted: bool,
}

/// Callbacks around the stages whose commands run (tracking, for one).
pub trait StageHooks: Sync {
    /// Before a stage's commands run; the variables returned are set for them.
    fn before_run(&self, stage: &Stage) -> std::result::Result<Vec<(String, String)>, String>;
    /// After they ran: the stage's lock entry, or why it failed.
    fn after_run(
        &self,
        stage: &Stage,
        result: std::result::Result<&StageLock, &str>,
    ) -> std::result::Result<(), String>;
}

/// Finds the stages `targets` name (a group name selects all its members).
pub fn resolve_targets(project: &Project, targets: &[String]) -> Result<Vec<usize>> {
    let mut selected = Vec::new();
    for target in targets {
        let name = target
            .strip_prefix(&format!("{PROJECT_FILE}:"))
            .or_else(|| target.strip_prefix(&format!("./{PROJECT_FILE}:")))
            .unwrap_or(target);
        if name == PROJECT_FILE || name == format!("./{PROJECT_FILE}") {
            selected.extend(0..project.stages.len());
            continue;
        }
        let matches: Vec<usize> = project
            .stages
            .iter()
            .enumerate()
            .filter(|(_, stage)| {
                stage.name == name
                    || stage
                        .name
                        .rsplit_once('@')
                        .is_some_and(|(group, _)| group == name)
            })
            .map(|(idx, _)| idx)
            .collect();
        if matches.is_empty() {
            return Err(PipelineError::Usage(format!(
                "stage '{name}' not found in '{PROJECT_FILE}'"
            )));
        }
        selected.extend(matches);
    }
    let mut seen = HashSet::new();
    selected.retain(|idx| seen.insert(*idx));
    Ok(selected)
}

/// What a worker sends back when a stage is done.
pub(crate) enum Outcome {
    UpToDate,
    /// The lock entry (none with `dry`) and the cached outputs to ignore in git.
    Ran(Option<Value>, Vec<String>),
    Failed(String),
    Interrupted,
}

/// Runs the pipeline rooted at `root`. `cancel` stops it: running commands
/// are terminated (their process groups), nothing new starts, and the lock
/// keeps the entries of the stages that finished.
pub fn repro(
    root: &Path,
    options: &ReproOptions,
    hooks: Option<&dyn StageHooks>,
    cancel: &AtomicBool,
    log: &(dyn Fn(LogLine) + Sync),
) -> Result<ReproReport> {
    let project = Project::load(root)?;
    let workspace = Workspace::open(root)?;
    let mut lock = Lockfile::load(root)?;
    let lock_existed = root.join(LOCK_FILE).is_file();
    let dag = Dag::build(&project.stages)?;
    let targets = resolve_targets(&project, &options.targets)?;
    let plan: Vec<usize> = if options.single_item {
        if targets.is_empty() {
            (0..project.stages.len()).collect()
        } else {
            targets.clone()
        }
    } else {
        dag.active(&project.stages)
            .plan(&targets, options.downstream)
    };
    let in_plan: HashSet<usize> = plan.iter().copied().collect();
    // A stage waits for the planned stages upstream of it (all of them, even
    // across a frozen stage's cut edges: it reads what they write).
    let waits_for: Vec<Vec<usize>> = (0..project.stages.len())
        .map(|idx| {
            if options.single_item {
                return Vec::new();
            }
            dag.upstream[idx]
                .iter()
                .copied()
                .filter(|upstream| in_plan.contains(upstream))
                .collect()
        })
        .collect();
    let plan_position =
        |stage_idx: usize| plan.iter().position(|idx| *idx == stage_idx).unwrap_or(0);

    let jobs = options.jobs.max(1);
    let mut report = ReproReport::default();
    let mut finished: HashSet<usize> = HashSet::new();
    let mut blocked: HashSet<usize> = HashSet::new();
    let mut running: HashSet<usize> = HashSet::new();
    let mut pending: Vec<usize> = plan.clone();
    let mut stop = false;
    let mut lock_announced = false;
    let mut gitignore_added = Vec::new();
    let (sender, receiver) = mpsc::channel::<(usize, Outcome)>();

    std::thread::scope(|scope| -> Result<()> {
        let scheduled = (|| -> Result<()> {
            loop {
                if cancel.load(Ordering::Relaxed) {
                    stop = true;
                    report.interrupted = true;
                }
                // Start every ready stage, in plan order, while slots are free.
                if !stop {
                    let mut idx_in_pending = 0;
                    while idx_in_pending < pending.len() && running.len() < jobs {
                        let stage_idx = pending[idx_in_pending];
                        if waits_for[stage_idx]
                            .iter()
                            .any(|upstream| blocked.contains(upstream))
                        {
                            blocked.insert(stage_idx);
                            report.skipped.push(project.stages[stage_idx].name.clone());
                            pending.remove(idx_in_pending);
                            continue;
                        }
                        if !waits_for[stage_idx]
                            .iter()
                            .all(|upstream| finished.contains(upstream))
                        {
                            idx_in_pending += 1;
                            continue;
                        }
                        pending.remove(idx_in_pending);
                        running.insert(stage_idx);
                        let stage = &project.stages[stage_idx];
                        let locked = lock.stage(&stage.name)?;
                        let sender = sender.clone();
                        let workspace = &workspace;
                        scope.spawn(move || {
                            let outcome = evaluate_stage(
                                workspace,
                                stage,
                                locked.as_ref(),
                                options,
                                hooks,
                                cancel,
                                log,
                            );
                            let _ = sender.send((stage_idx, outcome));
                        });
                    }
                }
                if running.is_empty() && (stop || pending.is_empty()) {
                    break;
                }
                let Ok((stage_idx, outcome)) = receiver.recv_timeout(Duration::from_millis(100))
                else {
                    continue;
                };
                running.remove(&stage_idx);
                let name = project.stages[stage_idx].name.clone();
                match outcome {
                    Outcome::UpToDate => {
                        finished.insert(stage_idx);
                        report.up_to_date.push(name);
                    }
                    Outcome::Ran(entry, ignored) => {
                        finished.insert(stage_idx);
                        for repo_path in ignored {
                            workspace.ignore(
                                &repo_path,
                                plan_position(stage_idx),
                                &mut gitignore_added,
                            )?;
                        }
                        if let Some(entry) = entry {
                            if !lock_announced {
                                let verb = if lock_existed {
                                    "Updating"
                                } else {
                                    "Generating"
                                };
                                log(LogLine::Info(format!("{verb} lock file '{LOCK_FILE}'")));
                                lock_announced = true;
                            }
                            lock.set_stage(&name, entry, plan_position(stage_idx));
                            lock.save()?;
                        }
                        report.ran.push(name);
                    }
                    Outcome::Interrupted => {
                        blocked.insert(stage_idx);
                        report.interrupted = true;
                        report.skipped.push(name);
                        stop = true;
                    }
                    Outcome::Failed(reason) => {
                        blocked.insert(stage_idx);
                        log(LogLine::Warning(format!(
                            "failed to reproduce '{name}': {reason}"
                        )));
                        report.failed.push((name, reason));
                        if !options.keep_going {
                            stop = true;
                        } else {
                            let dependents = dependents_of(&dag, stage_idx, &pending);
                            if !dependents.is_empty() {
                                let names: Vec<String> = dependents
                                    .iter()
                                    .map(|&idx| format!("'{}'", project.stages[idx].name))
                                    .collect();
                                let noun = if names.len() > 1 { "Stages" } else { "Stage" };
                                log(LogLine::Warning(format!(
                                    "{noun} {} will be skipped due to this failure",
                                    names.join(", ")
                                )));
                            }
                        }
                    }
                }
            }
            Ok(())
        })();
        if scheduled.is_err() {
            // Stop the commands still running before the error is reported.
            cancel.store(true, Ordering::Relaxed);
        }
        scheduled
    })?;
    for stage_idx in pending {
        report.skipped.push(project.stages[stage_idx].name.clone());
    }
    workspace.save_state()?;
    Ok(report)
}

/// Planned stages downstream of `failed`.
fn dependents_of(dag: &Dag, failed: usize, pending: &[usize]) -> Vec<usize> {
    let downstream = dag.downstream();
    let mut found: Vec<usize> = Vec::new();
    let mut stack = vec![failed];
    while let Some(node) = stack.pop() {
        for &next in &downstream[node] {
            if !found.contains(&next) && pending.contains(&next) {
                found.push(next);
                stack.push(next);
            }
        }
    }
    found.sort_by_key(|idx| pending.iter().position(|pending_idx| pending_idx == idx));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::stage_status;
    use std::sync::Mutex;

    fn init_repo(dvc_yaml: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".dvc")).expect("mkdir");
        std::fs::write(
            dir.path().join(".dvc/config"),
            "[core]\n    no_scm = True\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("dvc.yaml"), dvc_yaml).expect("write");
        dir
    }

    fn run(dir: &Path, options: &ReproOptions) -> (ReproReport, Vec<LogLine>) {
        let lines = Mutex::new(Vec::new());
        let cancel = AtomicBool::new(false);
        let report = repro(dir, options, None, &cancel, &|line| {
            if let Ok(mut lines) = lines.lock() {
                lines.push(line);
            }
        })
        .expect("repro");
        (report, lines.into_inner().unwrap_or_default())
    }

    fn status_of(dir: &Path, name: &str) -> crate::status::StageStatus {
        let project = Project::load(dir).expect("project");
        let workspace = Workspace::open(dir).expect("workspace");
        let lock = Lockfile::load(dir).expect("lock");
        let stage = project.stage(name).expect("stage");
        stage_status(&workspace, stage, lock.stage(name).expect("entry").as_ref()).expect("status")
    }

    const PIPELINE: &str = "stages:\n  prep:\n    cmd: cp data.txt prepared.txt\n    deps: [data.txt]\n    params: [seed]\n    outs: [prepared.txt]\n  train:\n    cmd: cat prepared.txt prepared.txt > model.txt\n    deps: [prepared.txt]\n    outs: [model.txt]\n";

    #[test]
    fn staleness_follows_dvc_for_each_kind_of_change() {
        let dir = init_repo(PIPELINE);
        std::fs::write(dir.path().join("data.txt"), "data\n").expect("write");
        std::fs::write(dir.path().join("params.yaml"), "seed: 1\n").expect("write");
        let options = ReproOptions {
            jobs: 2,
            ..Default::default()
        };
        let (report, _) = run(dir.path(), &options);
        assert_eq!(report.ran, ["prep", "train"]);
        assert!(status_of(dir.path(), "prep").is_clean());
        assert_eq!(run(dir.path(), &options).0.up_to_date, ["prep", "train"]);

        // A changed dependency.
        std::fs::write(dir.path().join("data.txt"), "more data\n").expect("write");
        let status = status_of(dir.path(), "prep");
        assert_eq!(
            status.to_py_json().dumps(),
            r#"[{"changed deps": {"data.txt": "modified"}}]"#
        );
        assert_eq!(run(dir.path(), &options).0.ran, ["prep", "train"]);

        // A changed parameter: only prep's output is rewritten with the same
        // bytes, so train stays up to date.
        std::fs::write(dir.path().join("params.yaml"), "seed: 2\n").expect("write");
        assert_eq!(
            status_of(dir.path(), "prep").to_py_json().dumps(),
            r#"[{"changed deps": {"params.yaml": {"seed": "modified"}}}]"#
        );
        let (report, _) = run(dir.path(), &options);
        assert_eq!(
            (report.ran, report.up_to_date),
            (vec!["prep".to_owned()], vec!["train".to_owned()])
        );

        // A deleted output.
        std::fs::remove_file(dir.path().join("model.txt")).expect("remove");
        assert_eq!(
            status_of(dir.path(), "train").to_py_json().dumps(),
            r#"[{"changed outs": {"model.txt": "deleted"}}]"#
        );
        assert_eq!(run(dir.path(), &options).0.ran, ["train"]);

        // A changed command.
        std::fs::write(
            dir.path().join("dvc.yaml"),
            PIPELINE.replace("prepared.txt prepared.txt", "prepared.txt"),
        )
        .expect("write");
        assert_eq!(
            status_of(dir.path(), "train").to_py_json().dumps(),
            r#"["changed command"]"#
        );
        assert_eq!(run(dir.path(), &options).0.ran, ["train"]);
    }

    #[test]
    fn frozen_stages_ignore_dependencies_and_always_changed_always_runs() {
        let dir = init_repo("stages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n  tick:\n    cmd: date > tick.txt\n    always_changed: true\n    outs: [{tick.txt: {cache: false}}]\n");
        std::fs::write(dir.path().join("in.txt"), "1").expect("write");
        let options = ReproOptions {
            jobs: 1,
            ..Default::default()
        };
        run(dir.path(), &options);
        assert_eq!(run(dir.path(), &options).0.ran, ["tick"]);
        let frozen = std::fs::read_to_string(dir.path().join("dvc.yaml"))
            .expect("read")
            .replace(
                "    deps: [in.txt]\n",
                "    deps: [in.txt]\n    frozen: true\n",
            );
        std::fs::write(dir.path().join("dvc.yaml"), frozen).expect("write");
        std::fs::write(dir.path().join("in.txt"), "2").expect("write");
        let (report, _) = run(dir.path(), &options);
        assert_eq!(report.up_to_date, ["copy"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.txt")).expect("read"),
            "1"
        );
    }

    #[test]
    fn a_failure_skips_its_dependents_and_keep_going_runs_siblings() {
        let dir = init_repo("stages:\n  bad:\n    cmd: exit 3\n    outs: [bad.txt]\n  after:\n    cmd: cp bad.txt after.txt\n    deps: [bad.txt]\n    outs: [after.txt]\n  sibling:\n    cmd: echo ok > sibling.txt\n    outs: [sibling.txt]\n");
        let options = ReproOptions {
            jobs: 1,
            keep_going: true,
            ..Default::default()
        };
        let (report, _) = run(dir.path(), &options);
        assert_eq!(
            report.failed,
            [(
                "bad".to_owned(),
                "failed to run: exit 3, exited with 3".to_owned()
            )]
        );
        assert_eq!(report.skipped, ["after"]);
        assert_eq!(report.ran, ["sibling"]);
        std::fs::remove_file(dir.path().join("dvc.lock")).expect("remove");
        let (report, _) = run(
            dir.path(),
            &ReproOptions {
                jobs: 1,
                ..Default::default()
            },
        );
        assert_eq!(report.ran, Vec::<String>::new());
        assert_eq!(report.skipped, ["after", "sibling"]);
    }

    #[test]
    fn the_run_cache_restores_outputs_of_inputs_seen_before() {
        let dir = init_repo("stages:\n  copy:\n    cmd: echo ran >> runs.log && cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n");
        let options = ReproOptions {
            jobs: 1,
            ..Default::default()
        };
        for content in ["one", "two", "one"] {
            std::fs::write(dir.path().join("in.txt"), content).expect("write");
            run(dir.path(), &options);
            assert_eq!(
                std::fs::read_to_string(dir.path().join("out.txt")).expect("read"),
                content
            );
        }
        // "one" came back from the run cache: the command ran twice.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("runs.log")).expect("read"),
            "ran\nran\n"
        );
        // A deleted output is checked out from the lock's own entry.
        std::fs::remove_file(dir.path().join("out.txt")).expect("remove");
        let (report, lines) = run(dir.path(), &options);
        assert_eq!(report.ran, ["copy"]);
        assert!(lines.contains(&LogLine::Info(
            "Stage 'copy' is cached - skipping run, checking out outputs".into()
        )));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("runs.log")).expect("read"),
            "ran\nran\n"
        );
        assert!(status_of(dir.path(), "copy").is_clean());
    }

    #[test]
    fn retries_run_a_failing_stage_again() {
        let dir = init_repo("stages:\n  flaky:\n    cmd: test -f tried || { touch tried; exit 1; }; echo ok > out.txt\n    outs: [out.txt]\n");
        let (report, lines) = run(
            dir.path(),
            &ReproOptions {
                jobs: 1,
                retries: 1,
                ..Default::default()
            },
        );
        assert_eq!(report.ran, ["flaky"]);
        assert!(lines.iter().any(
            |line| matches!(line, LogLine::Warning(text) if text.contains("retrying (1 of 1)"))
        ));
    }

    #[test]
    fn stage_output_is_streamed_with_its_name() {
        let dir = init_repo("stages:\n  hello:\n    cmd: echo hi; echo oops >&2\n");
        let (_, lines) = run(
            dir.path(),
            &ReproOptions {
                jobs: 1,
                ..Default::default()
            },
        );
        assert!(lines.contains(&LogLine::Output {
            stage: "hello".into(),
            line: "hi".into(),
            stderr: false
        }));
        assert!(lines.contains(&LogLine::Output {
            stage: "hello".into(),
            line: "oops".into(),
            stderr: true
        }));
    }
}
