//! Running one command of a stage as DVC does (`$SHELL -c`, in the stage's
//! `wdir`, with `DVC_ROOT` and `DVC_STAGE`), in a process group of its own
//! so that stopping it stops everything it started; its output is streamed
//! line by line.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::executor::CommandEnd;
use crate::runner::LogLine;
use crate::stage::Stage;
use crate::{PipelineError, Result};

/// The shell DVC runs commands with: `$SHELL` (without its rc files) or `/bin/sh`.
fn shell_command(command: &str) -> Command {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|shell| !shell.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_owned());
    let name = Path::new(&shell)
        .file_name()
        .map(|name| name.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut process = Command::new(&shell);
    match name.as_str() {
        "bash" => {
            process.args(["--noprofile", "--norc"]);
        }
        "zsh" => {
            process.arg("--no-rcs");
        }
        _ => {}
    }
    process.arg("-c").arg(command);
    process
}

/// Sends `signal` to the process group led by `pid` (the `kill` utility,
/// so no unsafe code is needed).
fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn stream_lines(reader: impl Read, stage: &str, stderr: bool, log: &(dyn Fn(LogLine) + Sync)) {
    let mut reader = BufReader::new(reader);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                log(LogLine::Output {
                    stage: stage.to_owned(),
                    line: line.trim_end_matches(['\n', '\r']).to_owned(),
                    stderr,
                });
            }
        }
    }
}

pub(crate) fn run_command(
    root: &Path,
    stage: &Stage,
    command: &str,
    env: &[(String, String)],
    cancel: &AtomicBool,
    log: &(dyn Fn(LogLine) + Sync),
) -> Result<CommandEnd> {
    let cwd = root.join(&stage.wdir);
    let mut process = shell_command(command);
    process
        .current_dir(&cwd)
        .env("DVC_ROOT", root)
        .env("DVC_STAGE", &stage.name)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        process.process_group(0);
    }
    let mut child: Child = process.spawn().map_err(|err| {
        PipelineError::Usage(format!(
            "failed to start '{command}' in {}: {err}",
            cwd.display()
        ))
    })?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::scope(|scope| {
        if let Some(stdout) = stdout {
            scope.spawn(|| stream_lines(stdout, &stage.name, false, log));
        }
        if let Some(stderr) = stderr {
            scope.spawn(|| stream_lines(stderr, &stage.name, true, log));
        }
        let mut terminated_at: Option<Instant> = None;
        loop {
            match child.try_wait() {
                Ok(Some(exit)) => {
                    if terminated_at.is_some() {
                        // The shell is gone; make sure nothing it started lingers.
                        signal_group(pid, "-KILL");
                        return Ok(CommandEnd::Interrupted);
                    }
                    if exit.success() {
                        return Ok(CommandEnd::Success);
                    }
                    let code = exit
                        .code()
                        .map(|code| code.to_string())
                        .unwrap_or_else(|| "a signal".to_owned());
                    return Ok(CommandEnd::Failed(code));
                }
                Ok(None) => {}
                Err(err) => {
                    return Err(PipelineError::Usage(format!(
                        "waiting for '{command}': {err}"
                    )))
                }
            }
            if cancel.load(Ordering::Relaxed) {
                match terminated_at {
                    None => {
                        signal_group(pid, "-TERM");
                        terminated_at = Some(Instant::now());
                    }
                    Some(at) if at.elapsed() > Duration::from_secs(5) => {
                        signal_group(pid, "-KILL");
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}
