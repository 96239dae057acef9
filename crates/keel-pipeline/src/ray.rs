//! The Ray executor: each command of a stage becomes a job on a Ray cluster,
//! submitted, watched, streamed and stopped through the Ray Jobs REST API
//! that the cluster's dashboard serves (`POST /api/jobs/`,
//! `GET /api/jobs/{id}`, `GET /api/jobs/{id}/logs`, `POST /api/jobs/{id}/stop`).
//!
//! Design choice: the job runs `cd <workspace>/<wdir>; <command>` on the
//! Ray node that hosts the job's driver, so the workspace must live on a
//! filesystem that node shares with the machine running `keel repro` (true
//! for a local head node, NFS, or a volume mounted on every node). Keel
//! hashes and caches the outputs where it runs, exactly as with local
//! processes. Uploading the workspace as a Ray `working_dir` package is out
//! of scope: outputs would have to come back the same way.
//!
//! The command sees the environment of the Ray node's processes plus
//! `DVC_ROOT`, `DVC_STAGE` and the tracking variables (`runtime_env.env_vars`),
//! not the environment of `keel repro`; it runs under the node's `/bin/sh`
//! (Ray's `shell=True`), and its stdout and stderr come back as one stream
//! (Ray keeps one log per job). Ray expands `$NAME` in `env_vars` values against
//! the node's environment, so a workspace path holding `$` would not survive.
//! The tracking server (`--track`) must be reachable from the Ray node at
//! the same address.
//! Ray returns a job's whole log on each request; Keel passes on only what
//! is new, line by line, as the output of the stage.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::executor::CommandEnd;
use crate::interpolate::shell_quote;
use crate::runner::LogLine;
use crate::stage::Stage;
use crate::{PipelineError, Result};

/// How often a running job's status and logs are read.
const POLL_INTERVAL: Duration = Duration::from_millis(300);
/// How long a stopped job may take to reach a terminal state (Ray itself
/// escalates to SIGKILL after a few seconds).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long reading a running job's status may keep failing before the
/// stage counts as failed.
const POLL_FAILURE_GRACE: Duration = Duration::from_secs(30);
/// How much of an error body or of Ray's message ends up in an error.
const MAX_ERROR_CHARS: usize = 500;

/// A Ray cluster reached through its dashboard's Jobs API.
#[derive(Debug, Clone)]
pub struct RayExecutor {
    /// `http://host:port`, without a trailing slash.
    address: String,
    ray_version: String,
    agent: ureq::Agent,
}

/// Why a call to the dashboard failed.
enum CallError {
    /// Nothing answered (refused, timed out, DNS).
    Unreachable(String),
    /// The dashboard answered with an error status, or with something that is not JSON.
    Answered(String),
}

impl RayExecutor {
    /// Checks that the dashboard at `address` answers the Jobs API
    /// (`GET /api/version`), so a wrong address fails before any stage runs.
    pub fn connect(address: &str) -> Result<RayExecutor> {
        let address = normalize_address(address)?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(Duration::from_secs(30))
            .build();
        let mut executor = RayExecutor {
            address,
            ray_version: String::new(),
            agent,
        };
        let version = executor.call_once("GET", "/api/version", None)?;
        let Some(ray_version) = version["ray_version"].as_str() else {
            return Err(PipelineError::Usage(format!(
                "{} does not look like a Ray dashboard: GET /api/version answered {}",
                executor.address,
                truncate(&version.to_string(), MAX_ERROR_CHARS)
            )));
        };
        executor.ray_version = ray_version.to_owned();
        Ok(executor)
    }

    /// The dashboard's address, as used for requests.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The Ray version the cluster reported.
    pub fn ray_version(&self) -> &str {
        &self.ray_version
    }

    /// Runs `command` of `stage` as a Ray job and follows it to its end.
    pub(crate) fn run_command(
        &self,
        root: &Path,
        stage: &Stage,
        command: &str,
        env: &[(String, String)],
        cancel: &AtomicBool,
        log: &(dyn Fn(LogLine) + Sync),
    ) -> Result<CommandEnd> {
        if cancel.load(Ordering::Relaxed) {
            return Ok(CommandEnd::Interrupted);
        }
        let root = std::path::absolute(root).map_err(|err| PipelineError::io(root, err))?;
        let root_text = root.to_string_lossy().into_owned();
        let workdir = if stage.wdir.is_empty() {
            root.clone()
        } else {
            root.join(&stage.wdir)
        };
        let submission_id = new_submission_id(&stage.name);
        let mut env_vars = serde_json::Map::new();
        env_vars.insert("DVC_ROOT".to_owned(), root_text.clone().into());
        env_vars.insert("DVC_STAGE".to_owned(), stage.name.clone().into());
        for (key, value) in env {
            env_vars.insert(key.clone(), value.clone().into());
        }
        let entrypoint = entrypoint(&submission_id, &workdir.to_string_lossy(), command);
        let request = json!({
            "entrypoint": entrypoint,
            "submission_id": submission_id,
            "runtime_env": { "env_vars": env_vars },
            "metadata": {
                "keel.stage": stage.name,
                "keel.root": root_text,
                "keel.command": command,
            },
        });
        self.call_once("POST", "/api/jobs/", Some(request))?;
        let followed = self.follow(&submission_id, &entrypoint, &stage.name, cancel, log);
        if followed.is_err() {
            // Whatever went wrong here, the job must not outlive the repro.
            let _ = self.call(
                "POST",
                &format!("/api/jobs/{submission_id}/stop"),
                Some(json!({})),
            );
        }
        followed
    }

    /// Polls the job's status and logs until it ends, stopping it when
    /// `cancel` is set.
    fn follow(
        &self,
        submission_id: &str,
        entrypoint: &str,
        stage_name: &str,
        cancel: &AtomicBool,
        log: &(dyn Fn(LogLine) + Sync),
    ) -> Result<CommandEnd> {
        let emit = |line: &str| {
            log(LogLine::Output {
                stage: stage_name.to_owned(),
                line: line.to_owned(),
                stderr: false,
            })
        };
        let job_log = JobLog::new(submission_id, entrypoint);
        let mut cursor = LogCursor::default();
        let mut stop_requested_at: Option<Instant> = None;
        let mut failing_since: Option<Instant> = None;
        loop {
            if stop_requested_at.is_none() && cancel.load(Ordering::Relaxed) {
                self.call_once(
                    "POST",
                    &format!("/api/jobs/{submission_id}/stop"),
                    Some(json!({})),
                )?;
                stop_requested_at = Some(Instant::now());
            }
            // A busy or restarting dashboard gets some slack before the stage fails.
            let job = match self.call("GET", &format!("/api/jobs/{submission_id}"), None) {
                Ok(job) => {
                    failing_since = None;
                    JobState::from_wire(&job)
                }
                Err(err) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > POLL_FAILURE_GRACE {
                        return Err(self.user_error(err));
                    }
                    std::thread::sleep(POLL_INTERVAL);
                    continue;
                }
            };
            let finished = job.status.is_terminal();
            // Logs are read after the status, so a finished job's logs are
            // complete; a failed read is caught up on by the next one.
            if let Ok(logs) = self.call("GET", &format!("/api/jobs/{submission_id}/logs"), None) {
                if let Some(logs) = logs["logs"].as_str() {
                    let output = job_log.command_output(logs, finished);
                    cursor.advance(&output, finished).into_iter().for_each(emit);
                }
            }
            if finished {
                if stop_requested_at.is_some() {
                    return Ok(CommandEnd::Interrupted);
                }
                return Ok(match job.status {
                    JobStatus::Succeeded => CommandEnd::Success,
                    _ => CommandEnd::Failed(job.failure_reason(submission_id)),
                });
            }
            if let Some(requested_at) = stop_requested_at {
                if requested_at.elapsed() > STOP_TIMEOUT {
                    log(LogLine::Warning(format!(
                        "Ray job {submission_id} of stage '{stage_name}' was asked to stop but is still {} after {}s",
                        job.status.as_str(),
                        STOP_TIMEOUT.as_secs()
                    )));
                    return Ok(CommandEnd::Interrupted);
                }
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// One request, its failure as the user should read it.
    fn call_once(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        self.call(method, path, body)
            .map_err(|err| self.user_error(err))
    }

    fn user_error(&self, err: CallError) -> PipelineError {
        match err {
            CallError::Unreachable(reason) => PipelineError::Usage(format!(
                "cannot reach the Ray dashboard at {}: {reason} (is the Ray head node up? `ray start --head` starts one)",
                self.address
            )),
            CallError::Answered(reason) => PipelineError::Usage(reason),
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> std::result::Result<Value, CallError> {
        let url = format!("{}{path}", self.address);
        let request = self.agent.request(method, &url);
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match result {
            Ok(response) => response.into_json::<Value>().map_err(|err| {
                CallError::Answered(format!(
                    "unexpected answer from the Ray dashboard to {method} {url}: {err}"
                ))
            }),
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_default();
                Err(CallError::Answered(format!(
                    "the Ray dashboard answered {method} {url} with HTTP {status}: {}",
                    error_summary(&body)
                )))
            }
            Err(ureq::Error::Transport(transport)) => {
                Err(CallError::Unreachable(transport.to_string()))
            }
        }
    }
}

/// `host:port` or `http(s)://host:port[/]` as the base of request URLs; a
/// `ray://` (Ray Client) address is refused: the Jobs API is the dashboard's.
fn normalize_address(address: &str) -> Result<String> {
    let address = address.trim().trim_end_matches('/');
    if address.is_empty() {
        return Err(PipelineError::Usage(
            "--ray-address is empty; pass the Ray dashboard's URL, e.g. http://127.0.0.1:8265"
                .to_owned(),
        ));
    }
    if let Some((scheme, _)) = address.split_once("://") {
        if scheme != "http" && scheme != "https" {
            return Err(PipelineError::Usage(format!(
                "--ray-address {address}: Keel submits jobs to the Ray dashboard over HTTP; pass its URL, e.g. http://127.0.0.1:8265"
            )));
        }
        return Ok(address.to_owned());
    }
    Ok(format!("http://{address}"))
}

/// `keel-<stage>-<12 hex digits>`, the stage name reduced to the characters
/// that need no escaping in a URL path (the name itself goes in the metadata).
fn new_submission_id(stage_name: &str) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let readable: String = stage_name
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' {
                ch
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    // `RandomState` is seeded randomly per process and per instance.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!(
        "keel-{readable}-{:012x}",
        hasher.finish() & 0xffff_ffff_ffff
    )
}

/// The line a job's entrypoint prints first, so that its log tells Ray's
/// own lines (runtime environment setup) from the command's output.
fn start_marker(submission_id: &str) -> String {
    format!("keel-job-start:{submission_id}")
}

/// The job's shell command: the start marker, then the command in the
/// stage's working directory, with a clear message when that directory is
/// not on the Ray node.
fn entrypoint(submission_id: &str, workdir: &str, command: &str) -> String {
    let quoted = shell_quote(workdir);
    format!(
        "echo {}; cd {quoted} || {{ echo 'keel: '{quoted}' is not on this Ray node; the Ray executor needs the workspace on a filesystem the Ray workers share' >&2; exit 1; }}; {command}",
        start_marker(submission_id)
    )
}

/// An error body, short: the dashboard answers many errors with a Python
/// traceback, whose last line (the exception) is what tells. On one line,
/// as every error of the CLI.
fn error_summary(body: &str) -> String {
    let body = body.trim();
    if body.starts_with("Traceback (most recent call last)") {
        if let Some(exception) = body.lines().rev().find(|line| line.trim().len() > 1) {
            return truncate(exception.trim(), MAX_ERROR_CHARS);
        }
    }
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&one_line, MAX_ERROR_CHARS)
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// What Ray says a job is doing (`JobStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Stopped,
    /// A status this version of Keel does not know; followed as running
    /// (Ctrl-C still stops it).
    Other(String),
}

impl JobStatus {
    fn parse(text: &str) -> JobStatus {
        match text {
            "PENDING" => JobStatus::Pending,
            "RUNNING" => JobStatus::Running,
            "SUCCEEDED" => JobStatus::Succeeded,
            "FAILED" => JobStatus::Failed,
            "STOPPED" => JobStatus::Stopped,
            other => JobStatus::Other(other.to_owned()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
            JobStatus::Stopped => "STOPPED",
            JobStatus::Other(other) => other,
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Stopped
        )
    }
}

/// The parts of Ray's `JobDetails` that Keel reads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobState {
    status: JobStatus,
    message: String,
    /// The entrypoint's exit code, when Ray reports it (`driver_exit_code`).
    exit_code: Option<i64>,
}

impl JobState {
    fn from_wire(job: &Value) -> JobState {
        JobState {
            status: JobStatus::parse(job["status"].as_str().unwrap_or_default()),
            message: job["message"].as_str().unwrap_or_default().to_owned(),
            exit_code: job["driver_exit_code"].as_i64(),
        }
    }

    /// Why the job did not succeed, as it reads after "exited with": the
    /// exit code (or Ray's status) and the first line of Ray's message,
    /// without the copy of the logs Ray appends (they were streamed).
    fn failure_reason(&self, submission_id: &str) -> String {
        let summary = self
            .message
            .split(", last available logs")
            .next()
            .and_then(|message| message.lines().next())
            .unwrap_or_default()
            .trim();
        let code = match self.exit_code {
            Some(code) => code.to_string(),
            None => self.status.as_str().to_owned(),
        };
        let stopped = if self.status == JobStatus::Stopped {
            " was stopped outside Keel"
        } else {
            ""
        };
        if summary.is_empty() {
            return format!("{code} (Ray job {submission_id}{stopped})");
        }
        format!(
            "{code} (Ray job {submission_id}{stopped}: {})",
            truncate(summary, MAX_ERROR_CHARS)
        )
    }
}

/// Reads the command's output out of a job's log, which also holds Ray's
/// lines: its runtime environment's setup before the command starts, and
/// the "Running entrypoint" line its job supervisor writes through a
/// buffered file, so that it lands anywhere in the command's first output.
struct JobLog {
    /// Ray's line, removed wherever it is (it is unique: it names the job).
    preamble: String,
    /// The entrypoint's first line; the command's output follows it.
    marker: String,
}

impl JobLog {
    fn new(submission_id: &str, entrypoint: &str) -> JobLog {
        JobLog {
            preamble: format!("Running entrypoint for job {submission_id}: {entrypoint}\n"),
            marker: format!("{}\n", start_marker(submission_id)),
        }
    }

    /// The command's output so far. Until the marker shows up there is none;
    /// a job that ended without it (its runtime environment could not be set
    /// up) gets its whole log passed on, since that is all there is to tell.
    /// The log only grows at its end, so the output only grows at its end too.
    fn command_output(&self, logs: &str, finished: bool) -> String {
        let logs = logs.replacen(&self.preamble, "", 1);
        let started = logs
            .find(&self.marker)
            .filter(|at| *at == 0 || logs[..*at].ends_with('\n'));
        match started {
            Some(at) => logs[at + self.marker.len()..].to_owned(),
            None if finished => logs,
            None => String::new(),
        }
    }
}

/// How much of a job's log (which Ray returns whole on every request) was
/// already passed on.
#[derive(Debug, Default)]
struct LogCursor {
    consumed: usize,
}

impl LogCursor {
    /// The lines of `logs` not passed on yet: only complete ones while the
    /// job runs, the unterminated rest too once it `finished`.
    fn advance<'logs>(&mut self, logs: &'logs str, finished: bool) -> Vec<&'logs str> {
        let Some(new) = logs.get(self.consumed..) else {
            return Vec::new();
        };
        let complete = match new.rfind('\n') {
            Some(last_newline) => &new[..=last_newline],
            None => "",
        };
        let taken = if finished { new } else { complete };
        self.consumed += taken.len();
        taken
            .split_inclusive('\n')
            .map(|line| line.trim_end_matches(['\n', '\r']))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_deltas_are_whole_lines_until_the_job_ends() {
        let mut cursor = LogCursor::default();
        assert_eq!(cursor.advance("", false), Vec::<&str>::new());
        assert_eq!(cursor.advance("one\ntw", false), ["one"]);
        assert_eq!(cursor.advance("one\ntwo\r\nthr", false), ["two"]);
        assert_eq!(cursor.advance("one\ntwo\r\nthr", false), Vec::<&str>::new());
        assert_eq!(
            cursor.advance("one\ntwo\r\nthree\n\nfou", true),
            ["three", "", "fou"]
        );
        assert_eq!(
            cursor.advance("one\ntwo\r\nthree\n\nfou", true),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_log_shorter_than_what_was_read_yields_nothing() {
        let mut cursor = LogCursor::default();
        assert_eq!(cursor.advance("héllo\nworld\n", false), ["héllo", "world"]);
        assert_eq!(cursor.advance("hé", true), Vec::<&str>::new());
    }

    #[test]
    fn the_command_output_is_what_follows_the_marker_without_rays_line() {
        let entrypoint = entrypoint("keel-a-1", "/w", "echo hi");
        let job_log = JobLog::new("keel-a-1", &entrypoint);
        let setup =
            "2026-01-01 00:00:00,000\tINFO job_manager.py:581 -- Runtime env is setting up.\n";
        let preamble = format!("Running entrypoint for job keel-a-1: {entrypoint}\n");
        assert_eq!(job_log.command_output(setup, false), "");
        // Ray's line before the marker, or in the middle of a line of output.
        let before = format!("{setup}{preamble}keel-job-start:keel-a-1\nhi\n");
        assert_eq!(job_log.command_output(&before, false), "hi\n");
        let inside = format!("{setup}keel-job-start:keel-a-1\nh{preamble}i\n");
        assert_eq!(job_log.command_output(&inside, false), "hi\n");
        // A job that never started: Ray's lines are all there is.
        assert_eq!(job_log.command_output(setup, true), setup);
    }

    #[test]
    fn the_entrypoint_quotes_the_working_directory() {
        assert_eq!(
            entrypoint("keel-t-1", "/work/my repo/it's", "python3 train.py > out.txt"),
            "echo keel-job-start:keel-t-1; cd '/work/my repo/it'\"'\"'s' || { echo 'keel: ''/work/my repo/it'\"'\"'s'' is not on this Ray node; the Ray executor needs the workspace on a filesystem the Ray workers share' >&2; exit 1; }; python3 train.py > out.txt"
        );
        assert!(entrypoint("keel-t-1", "/plain/dir", "true")
            .starts_with("echo keel-job-start:keel-t-1; cd /plain/dir || {"));
    }

    #[test]
    fn statuses_parse_and_only_ended_jobs_are_terminal() {
        let terminal: Vec<bool> = [
            "PENDING",
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
            "STOPPED",
            "NEW",
        ]
        .iter()
        .map(|text| JobStatus::parse(text).is_terminal())
        .collect();
        assert_eq!(terminal, [false, false, true, true, true, false]);
        assert_eq!(JobStatus::parse("NEW"), JobStatus::Other("NEW".to_owned()));
    }

    #[test]
    fn failures_name_the_exit_code_and_drop_the_logs_ray_appends() {
        let failed = JobState::from_wire(&json!({
            "status": "FAILED",
            "message": "Job entrypoint command failed with exit code 3, last available logs (truncated to 20,000 chars):\nboom\n",
            "driver_exit_code": 3,
        }));
        assert_eq!(
            failed.failure_reason("keel-bad-1"),
            "3 (Ray job keel-bad-1: Job entrypoint command failed with exit code 3)"
        );
        let stopped = JobState::from_wire(&json!({
            "status": "STOPPED",
            "message": "Job was intentionally stopped.",
        }));
        assert_eq!(
            stopped.failure_reason("keel-slow-2"),
            "STOPPED (Ray job keel-slow-2 was stopped outside Keel: Job was intentionally stopped.)"
        );
    }

    #[test]
    fn error_bodies_are_cut_to_what_tells() {
        let traceback = "Traceback (most recent call last):\n  File \"job_manager.py\", line 553, in submit_job\n    raise ValueError(\nValueError: Job with submission_id keel-a-1 already exists.\n.\n";
        assert_eq!(
            error_summary(traceback),
            "ValueError: Job with submission_id keel-a-1 already exists."
        );
        assert_eq!(
            error_summary(" Job keel-x\n  does not exist\n"),
            "Job keel-x does not exist"
        );
        assert_eq!(error_summary(&"x".repeat(600)).len(), MAX_ERROR_CHARS + 3);
    }

    #[test]
    fn addresses_become_http_urls_and_ray_client_addresses_are_refused() {
        assert_eq!(
            normalize_address("127.0.0.1:8265/").ok().as_deref(),
            Some("http://127.0.0.1:8265")
        );
        assert_eq!(
            normalize_address("https://ray.example:443").ok().as_deref(),
            Some("https://ray.example:443")
        );
        assert!(normalize_address("ray://127.0.0.1:10001").is_err());
        assert!(normalize_address(" ").is_err());
    }

    #[test]
    fn submission_ids_are_url_safe_and_unique() {
        let first = new_submission_id("train@lr=0.1/x");
        let second = new_submission_id("train@lr=0.1/x");
        assert!(first.starts_with("keel-train-lr-0-1-x-"), "{first}");
        assert_ne!(first, second);
        assert!(first
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
    }

    #[test]
    fn an_unreachable_dashboard_is_named_in_the_error() {
        // Port 9 (discard) is closed on test machines.
        let Err(err) = RayExecutor::connect("http://127.0.0.1:9") else {
            panic!("connected to a closed port");
        };
        assert!(
            err.to_string()
                .starts_with("cannot reach the Ray dashboard at http://127.0.0.1:9: "),
            "{err}"
        );
    }
}
