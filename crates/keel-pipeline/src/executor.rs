//! Where a stage's commands run: as local processes (the default, as DVC
//! runs them) or as jobs on a Ray cluster. Everything around a command (the
//! run cache, hashing outputs, `dvc.lock`, tracking) is the same for both.

use std::path::Path;
use std::sync::atomic::AtomicBool;

pub use crate::ray::RayExecutor;
use crate::runner::LogLine;
use crate::stage::Stage;
use crate::Result;

/// What runs the commands of a `repro`.
#[derive(Debug, Clone, Default)]
pub enum Executor {
    /// `$SHELL -c` in a process group of its own, on this machine.
    #[default]
    Local,
    /// A job per command on a Ray cluster that shares the workspace's filesystem.
    Ray(RayExecutor),
}

/// How a command ended.
pub(crate) enum CommandEnd {
    Success,
    /// Why, as it reads after "exited with": the exit code, and for a Ray
    /// job which job and Ray's message.
    Failed(String),
    /// Stopped because `cancel` was set.
    Interrupted,
}

/// Runs one command of `stage` with the workspace at `root` (the stage's
/// `wdir` is relative to it), `DVC_ROOT`, `DVC_STAGE` and `env` set, its
/// output passed to `log` line by line; setting `cancel` stops it.
pub(crate) fn run(
    executor: &Executor,
    root: &Path,
    stage: &Stage,
    command: &str,
    env: &[(String, String)],
    cancel: &AtomicBool,
    log: &(dyn Fn(LogLine) + Sync),
) -> Result<CommandEnd> {
    match executor {
        Executor::Local => crate::process::run_command(root, stage, command, env, cancel, log),
        Executor::Ray(ray) => ray.run_command(root, stage, command, env, cancel, log),
    }
}
