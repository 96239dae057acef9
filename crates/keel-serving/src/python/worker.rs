//! One Python worker process: spawned with the embedded script, its hello
//! read, then one request at a time over its stdin/stdout; its stderr goes
//! to the log line by line.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::protocol::{
    read_frame, write_frame, WireFailure, WireHello, TAG_ARROW, TAG_ERROR, TAG_HELLO,
};
use crate::ServingError;

/// The worker script, carried by the binary.
const WORKER_SCRIPT: &str = include_str!("../../python/keel_worker.py");

/// How many of the last stderr lines are kept to explain a crash.
const STDERR_TAIL_LINES: usize = 20;

/// How to start a worker: the interpreter and the model directory.
#[derive(Debug, Clone)]
pub struct Launch {
    pub python: PathBuf,
    pub model_dir: PathBuf,
}

/// What a worker answered to one request.
pub enum Reply {
    /// An Arrow IPC stream of outputs.
    Outputs(Vec<u8>),
    /// Python raised; the worker is still healthy.
    Failed(WireFailure),
}

pub struct WorkerProcess {
    /// Which pool slot this process fills.
    pub slot: usize,
    pub pid: u32,
    child: Child,
    /// `None` once closed to stop the worker.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_task: Option<JoinHandle<()>>,
}

impl WorkerProcess {
    /// Spawns a worker and waits until it has loaded the model.
    pub async fn start(
        launch: &Launch,
        slot: usize,
    ) -> Result<(WorkerProcess, WireHello), ServingError> {
        let python = launch.python.display().to_string();
        let mut child = Command::new(&launch.python)
            .arg("-c")
            .arg(WORKER_SCRIPT)
            .arg(&launch.model_dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => ServingError::internal(format!(
                    "python interpreter '{python}' not found; install python3 with mlflow or pass --python"
                )),
                _ => ServingError::internal(format!("cannot start python at '{python}': {err}")),
            })?;
        let pid = child.id().unwrap_or_default();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ServingError::internal(
                "python worker started without its pipes",
            ));
        };
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = tokio::spawn(forward_stderr(stderr, pid, stderr_tail.clone()));
        let mut worker = WorkerProcess {
            slot,
            pid,
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            stderr_tail,
            stderr_task: Some(stderr_task),
        };
        let hello = match read_frame(&mut worker.stdout).await {
            Ok((TAG_HELLO, payload)) => {
                serde_json::from_slice::<WireHello>(&payload).map_err(|err| {
                    ServingError::internal(format!(
                        "python worker at '{python}' sent an unreadable hello: {err}"
                    ))
                })?
            }
            Ok((tag, _)) => {
                return Err(ServingError::internal(format!(
                    "python worker at '{python}' sent frame tag {tag} before its hello"
                )))
            }
            Err(_) => {
                let why = worker.exit_report().await;
                return Err(ServingError::internal(format!(
                    "python at '{python}' exited before loading the model ({why})"
                )));
            }
        };
        if !hello.ok {
            let error = hello
                .error
                .clone()
                .unwrap_or_else(|| "unknown error".to_string());
            return Err(match hello.stage.as_deref() {
                Some("import") => {
                    let module = hello.module.as_deref().unwrap_or("mlflow");
                    ServingError::internal(format!(
                        "python at {python} cannot import {module}: {error}; install mlflow in that environment or pass --python"
                    ))
                }
                _ => ServingError::invalid(format!(
                    "mlflow cannot load the model at {}: {error}",
                    launch.model_dir.display()
                )),
            });
        }
        tracing::info!(
            pid,
            slot,
            python = hello.python.as_deref().unwrap_or("?"),
            mlflow = hello.mlflow.as_deref().unwrap_or("?"),
            model = %launch.model_dir.display(),
            "python worker loaded the model"
        );
        Ok((worker, hello))
    }

    /// Sends one Arrow request and waits for its answer. An error means the
    /// worker is gone (crashed, killed, or broke the protocol): drop it.
    pub async fn call(&mut self, request: &[u8]) -> Result<Reply, ServingError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(ServingError::internal(format!(
                "python worker {} is stopping",
                self.pid
            )));
        };
        let sent = write_frame(stdin, TAG_ARROW, request).await;
        let answer = match sent {
            Ok(()) => read_frame(&mut self.stdout).await,
            Err(err) => Err(err),
        };
        match answer {
            Ok((TAG_ARROW, payload)) => Ok(Reply::Outputs(payload)),
            Ok((TAG_ERROR, payload)) => match serde_json::from_slice::<WireFailure>(&payload) {
                Ok(failure) => Ok(Reply::Failed(failure)),
                Err(err) => Err(ServingError::internal(format!(
                    "python worker {} sent an unreadable error: {err}",
                    self.pid
                ))),
            },
            Ok((tag, _)) => Err(ServingError::internal(format!(
                "python worker {} sent an unknown frame tag {tag}",
                self.pid
            ))),
            Err(_) => {
                let why = self.exit_report().await;
                Err(ServingError::internal(format!(
                    "python worker {} died during the request ({why})",
                    self.pid
                )))
            }
        }
    }

    /// How the process ended, or `None` while it runs.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.to_string()),
            Err(err) => Some(format!("status unknown: {err}")),
        }
    }

    /// Closes stdin so the worker exits by itself; kills it after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        drop(self.stdin.take());
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    pid = self.pid,
                    "python worker did not exit in time; killing it"
                );
                let _ = self.child.kill().await;
            }
        }
        self.drain_stderr().await;
    }

    /// Waits briefly for the stderr forwarder, which ends once the process is gone.
    async fn drain_stderr(&mut self) {
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }

    /// The exit status (killing the process if it still runs) and the last
    /// lines it wrote to stderr.
    async fn exit_report(&mut self) -> String {
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(err)) => format!("status unknown: {err}"),
            Err(_) => {
                let _ = self.child.kill().await;
                "killed after breaking the protocol".to_string()
            }
        };
        self.drain_stderr().await;
        let tail = lock(&self.stderr_tail)
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        if tail.is_empty() {
            status
        } else {
            format!("{status}; its last output:\n{tail}")
        }
    }
}

/// Logs every stderr line of the worker and keeps the last few.
async fn forward_stderr(stderr: ChildStderr, pid: u32, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        tracing::info!(target: "keel_serving::python::worker", pid, "{text}");
        let mut tail = lock(&tail);
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
