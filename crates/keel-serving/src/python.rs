//! `PythonRuntime`: MLflow models of any flavor served by a pool of Python
//! worker processes. Each worker runs the script embedded from
//! `python/keel_worker.py`, loads the model with `mlflow.pyfunc.load_model`
//! and answers one request at a time; keel keeps HTTP, batching, metrics
//! and logging.
//!
//! # The pipe protocol
//!
//! Frames on the worker's stdin/stdout are a u32 little-endian length and a
//! payload whose first byte is a tag: `H` (hello, JSON, sent once after the
//! model loaded or failed to), `A` (an Arrow IPC stream of one record batch:
//! a request, or its outputs) and `E` (JSON: the Python exception of a
//! failed request). The worker moves file descriptor 1 onto stderr before
//! anything else, so what model code prints lands in keel's log (every
//! stderr line is logged) and never in the frames. Closing stdin stops a
//! worker.
//!
//! # Tensors to `predict` inputs (as MLServer's MLflow runtime, pandas codec)
//!
//! With a column-based signature, or none, `predict` receives a DataFrame:
//! - one input of shape `[N, F]` (`[N]` counts as `[N, 1]`) becomes F
//!   columns, named after the signature's columns when it has F of them,
//!   else `0..F-1` (integer column labels, as `pd.DataFrame(ndarray)`);
//! - several inputs of shape `[N]` or `[N, 1]` become one column each, named
//!   after the input (an input named after a signature column counts too);
//! - BYTES become utf-8 strings (an object column), or `bytes` when they are
//!   not utf-8; FP16 is widened to float32.
//!
//! With a tensor-based signature, `predict` receives numpy arrays with the
//! request's shapes: the ndarray itself when the signature has one unnamed
//! tensor, else a dict by input name.
//!
//! # `predict` outputs to tensors
//!
//! A numpy array `[N]` or `[N, K, ...]` (or a list, a Series, a scalar)
//! becomes one output `predict` of that shape; a DataFrame one output `[N]`
//! per column; a dict one output per key. Datatypes follow the dtype
//! (float64 → FP64, float32 → FP32, int64 → INT64, bool → BOOL, ...;
//! float16 is sent as FP32; object and strings → BYTES, utf-8). In Arrow an
//! output of rank 1 is a plain column; a higher rank is a `FixedSizeList`
//! of each row's elements with the full shape in the field metadata
//! `keel.shape` (the same encoding carries tensor-signature inputs).
//!
//! # What the runtime declares
//!
//! - A column-based signature of F columns of one numeric type: one input
//!   `input-0` of shape `[-1, F]` with that datatype (what a tritonclient user
//!   sends); columns of mixed types: one input `[-1]` per column, by name.
//! - A tensor-based signature: its tensors as they are (an unnamed tensor is
//!   `input-{i}`).
//! - No signature: one input `input-0` with an empty (unchecked) shape, and
//!   one output `predict` `[-1]` FP64 (the real datatype comes with the answer).
//! - Outputs: a single unnamed output spec is `predict`; named ones keep their names.
//!
//! # Errors and failures
//!
//! An exception raised while building the inputs or by `predict` is
//! `InvalidInput` with the exception's message (it is almost always bad
//! input); an output that cannot be converted is `Internal`. A worker that
//! dies fails the request it was serving with `Internal` and is restarted in
//! the background; a slot whose restart fails 3 times in a row is given up,
//! and once every slot is given up requests fail with the last error. At
//! start, a missing interpreter or a Python without mlflow is `Internal`; a
//! directory without `MLmodel` or a model that fails to load is `InvalidInput`.

mod columns;
mod protocol;
mod signature;
mod worker;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use self::signature::ModelInterface;
use self::worker::{Launch, Reply, WorkerProcess};
use crate::{NamedTensor, Runtime, ServingError, TensorSpec};

/// Restarts tried, in a row, before a worker slot is given up.
const MAX_RESTART_ATTEMPTS: u32 = 3;
/// How long a stopping worker may take to exit after its stdin closes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to run the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonOptions {
    /// The interpreter, a path or a name looked up in `PATH`.
    pub python: PathBuf,
    /// Worker processes; each answers one request at a time.
    pub workers: usize,
}

impl Default for PythonOptions {
    fn default() -> PythonOptions {
        PythonOptions {
            python: PathBuf::from("python3"),
            workers: 1,
        }
    }
}

/// An MLflow model served by a pool of Python workers.
pub struct PythonRuntime {
    interface: ModelInterface,
    pool: Arc<Pool>,
}

impl PythonRuntime {
    /// Starts `options.workers` processes that each load the MLflow model
    /// directory `model_dir` (holding an `MLmodel` file); returns once all
    /// have loaded it, or with the first reason one could not.
    pub async fn start(
        model_dir: &Path,
        options: &PythonOptions,
    ) -> Result<PythonRuntime, ServingError> {
        let model_dir = std::path::absolute(model_dir).unwrap_or_else(|_| model_dir.to_path_buf());
        if !model_dir.join("MLmodel").is_file() {
            return Err(ServingError::invalid(format!(
                "{} is not an MLflow model directory: it has no MLmodel file",
                model_dir.display()
            )));
        }
        let launch = Launch {
            python: options.python.clone(),
            model_dir,
        };
        let n_workers = options.workers.max(1);
        let mut starting = JoinSet::new();
        for slot in 0..n_workers {
            let launch = launch.clone();
            starting.spawn(async move { WorkerProcess::start(&launch, slot).await });
        }
        let mut workers = Vec::with_capacity(n_workers);
        let mut signature = None;
        while let Some(started) = starting.join_next().await {
            let (worker, hello) = started.map_err(|err| {
                ServingError::internal(format!("starting a python worker panicked: {err}"))
            })??;
            if worker.slot == 0 {
                signature = hello.signature;
            }
            workers.push(worker);
        }
        // `pids` is indexed by slot.
        workers.sort_by_key(|worker| worker.slot);
        let interface = ModelInterface::from_signature(signature.as_ref());
        tracing::info!(
            model = %launch.model_dir.display(),
            workers = n_workers,
            inputs = ?interface.inputs,
            "python runtime ready"
        );
        let pool = Pool {
            launch,
            pids: Mutex::new(workers.iter().map(|worker| Some(worker.pid)).collect()),
            available: Semaphore::new(workers.len()),
            idle: Mutex::new(workers.into()),
            live_slots: AtomicUsize::new(n_workers),
            last_failure: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
        };
        Ok(PythonRuntime {
            interface,
            pool: Arc::new(pool),
        })
    }

    /// The process ids of the current workers (for tests and diagnostics).
    pub fn worker_pids(&self) -> Vec<u32> {
        lock(&self.pool.pids).iter().flatten().copied().collect()
    }
}

#[async_trait]
impl Runtime for PythonRuntime {
    fn platform(&self) -> &str {
        "mlflow_pyfunc"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.interface.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.interface.outputs
    }

    async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError> {
        let request = columns::encode_request(&self.interface.layout, &inputs)?;
        drop(inputs);
        // The exchange runs in its own task: a caller that goes away mid-request
        // must not leave a worker with an answer nobody reads.
        let pool = self.pool.clone();
        let answer = tokio::spawn(pool.call(request)).await.map_err(|err| {
            ServingError::internal(format!("python request task failed: {err}"))
        })??;
        columns::decode_response(&answer)
    }

    async fn shutdown(&self) {
        self.pool.shutting_down.store(true, Ordering::SeqCst);
        self.pool.available.close();
        let idle = std::mem::take(&mut *lock(&self.pool.idle));
        let mut stopping = JoinSet::new();
        for worker in idle {
            lock(&self.pool.pids)[worker.slot] = None;
            stopping.spawn(worker.stop(SHUTDOWN_GRACE));
        }
        while stopping.join_next().await.is_some() {}
    }
}

/// Idle workers behind a semaphore whose permits count them: a request takes
/// a permit and a worker, and gives both back when answered.
struct Pool {
    launch: Launch,
    idle: Mutex<VecDeque<WorkerProcess>>,
    available: Semaphore,
    /// The pid of each slot's process; `None` while it restarts or is given up.
    pids: Mutex<Vec<Option<u32>>>,
    /// Slots not given up.
    live_slots: AtomicUsize,
    last_failure: Mutex<Option<String>>,
    shutting_down: AtomicBool,
}

impl Pool {
    /// Sends one request to an idle worker and returns its Arrow answer.
    async fn call(self: Arc<Self>, request: Vec<u8>) -> Result<Vec<u8>, ServingError> {
        let mut worker = self.checkout().await?;
        match worker.call(&request).await {
            Ok(reply) => {
                self.checkin(worker);
                match reply {
                    Reply::Outputs(answer) => Ok(answer),
                    Reply::Failed(failure) => {
                        let message =
                            format!("model raised {}: {}", failure.type_name, failure.message);
                        Err(match failure.stage.as_str() {
                            "decode" | "predict" => ServingError::invalid(message),
                            _ => ServingError::internal(message),
                        })
                    }
                }
            }
            Err(died) => {
                tracing::warn!(pid = worker.pid, slot = worker.slot, "{}", died.message);
                self.replace(worker);
                Err(died)
            }
        }
    }

    /// Takes the idle worker that waited longest; one found dead (killed
    /// while idle) is replaced in the background instead of failing a request.
    async fn checkout(self: &Arc<Self>) -> Result<WorkerProcess, ServingError> {
        loop {
            let permit = self
                .available
                .acquire()
                .await
                .map_err(|_| self.closed_error())?;
            permit.forget();
            let Some(mut worker) = lock(&self.idle).pop_front() else {
                return Err(ServingError::internal(
                    "python worker pool lost track of its idle workers",
                ));
            };
            match worker.exit_status() {
                None => return Ok(worker),
                Some(status) => {
                    tracing::warn!(
                        pid = worker.pid,
                        slot = worker.slot,
                        "idle python worker exited ({status})"
                    );
                    self.replace(worker);
                }
            }
        }
    }

    /// Drops a dead worker and restarts its slot in the background.
    fn replace(self: &Arc<Self>, worker: WorkerProcess) {
        let slot = worker.slot;
        lock(&self.pids)[slot] = None;
        drop(worker);
        tokio::spawn(self.clone().restart(slot));
    }

    fn checkin(&self, worker: WorkerProcess) {
        if self.shutting_down.load(Ordering::SeqCst) {
            lock(&self.pids)[worker.slot] = None;
            tokio::spawn(worker.stop(SHUTDOWN_GRACE));
            return;
        }
        lock(&self.idle).push_back(worker);
        self.available.add_permits(1);
    }

    /// Starts a new process for `slot`, trying up to `MAX_RESTART_ATTEMPTS`
    /// times with a growing pause; gives the slot up after that.
    async fn restart(self: Arc<Self>, slot: usize) {
        for attempt in 1..=MAX_RESTART_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            match WorkerProcess::start(&self.launch, slot).await {
                Ok((worker, _hello)) => {
                    tracing::info!(slot, pid = worker.pid, attempt, "python worker restarted");
                    lock(&self.pids)[slot] = Some(worker.pid);
                    self.checkin(worker);
                    return;
                }
                Err(err) => {
                    tracing::warn!(
                        slot,
                        attempt,
                        "restarting a python worker failed: {}",
                        err.message
                    );
                    *lock(&self.last_failure) = Some(err.message);
                }
            }
        }
        tracing::error!(
            slot,
            "python worker slot given up after {MAX_RESTART_ATTEMPTS} failed restarts"
        );
        if self.live_slots.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.available.close();
        }
    }

    fn closed_error(&self) -> ServingError {
        if self.shutting_down.load(Ordering::SeqCst) {
            return ServingError::unavailable("the model is shutting down");
        }
        let last_failure = lock(&self.last_failure)
            .clone()
            .unwrap_or_else(|| "unknown error".to_string());
        ServingError::internal(format!(
            "every python worker of {} died and could not be restarted: {last_failure}",
            self.launch.model_dir.display()
        ))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
