//! The inference log: every served request (or a sample of them) with its
//! inputs, outputs, model version, request id and timestamp, written off the
//! request path to Parquet files that the monitoring subsystem reads back.
//!
//! `InferenceLogger::record` only hands the record to a bounded channel; one
//! dedicated writer thread turns records into rows (one row per row of the
//! batch, flat typed feature columns, see [`schema`]) and appends them to
//! `{root}/{model}/{version}/date=YYYY-MM-DD/hour=HH/part-{uuid}.parquet`
//! (see [`partition`]). Losing the log never fails a request: a full queue or
//! a dead writer drops the record and counts it, a disk error is logged,
//! counted and forgotten.
//!
//! Memory is bounded by the channel (`max_queued_records` records) plus, per
//! open partition, one row group of buffered rows (`row_group_rows`), with at
//! most [`MAX_OPEN_PARTITIONS`] partitions open at once.

mod partition;
mod schema;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::inference::NamedTensor;

/// Beyond this many partitions with an open file, the least recently
/// written one is finished before another is opened.
pub const MAX_OPEN_PARTITIONS: usize = 64;

/// Tensors with more elements per row than this are left out of the log
/// (and counted in [`InferenceLogger::skipped`]): a column per pixel of an
/// image helps no monitoring and makes unreadable files.
pub const MAX_COLUMNS_PER_TENSOR: usize = 1024;

/// Where and how much to log.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceLogSettings {
    /// Directory that holds one subdirectory per model, e.g.
    /// `<artifacts>/inference-log`.
    pub root: PathBuf,
    /// Fraction of records kept, `0.0..=1.0`. Sampling is deterministic: of
    /// every run of records the logger sees, exactly this fraction is kept
    /// (0.5 keeps every other record).
    pub sample_rate: f64,
    /// Bound of the queue between `record` and the writer; beyond it
    /// records are dropped and counted.
    pub max_queued_records: usize,
    /// A partition's file is finished and a new part file started after
    /// this many rows.
    pub max_rows_per_file: usize,
    /// A partition's file is finished (footer written, renamed to its final
    /// name) when no row has been written to it for this long, so readers
    /// see complete files soon after traffic pauses.
    pub flush_interval: Duration,
    /// Rows buffered per partition before they are written as a row group.
    pub row_group_rows: usize,
}

impl InferenceLogSettings {
    /// The defaults: every record, 10,000 queued records, 100,000 rows per
    /// file, files finished after 10 s idle, row groups of 8,192 rows.
    pub fn new(root: impl Into<PathBuf>) -> InferenceLogSettings {
        InferenceLogSettings {
            root: root.into(),
            sample_rate: 1.0,
            max_queued_records: 10_000,
            max_rows_per_file: 100_000,
            flush_interval: Duration::from_secs(10),
            row_group_rows: 8_192,
        }
    }
}

/// One served request as the log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceRecord {
    pub model_name: String,
    pub model_version: String,
    pub request_id: String,
    pub timestamp: SystemTime,
    pub inputs: Vec<NamedTensor>,
    pub outputs: Vec<NamedTensor>,
}

/// Counters shared by the logger handles and the writer thread.
#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicU64,
    written_rows: AtomicU64,
    write_errors: AtomicU64,
    skipped: AtomicU64,
}

enum Command {
    Record(Box<InferenceRecord>),
    /// Finish every open file, then answer on the channel.
    Flush(SyncSender<()>),
    Shutdown,
}

struct Shared {
    sender: SyncSender<Command>,
    sample_rate: f64,
    seen: AtomicU64,
    closed: AtomicBool,
    counters: Arc<Counters>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
}

/// A cheap, cloneable handle on the inference log. The writer thread stops
/// after [`InferenceLogger::close`] / [`InferenceLogger::shutdown`], or once
/// every handle is dropped (finishing its files either way).
#[derive(Clone)]
pub struct InferenceLogger {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InferenceLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceLogger")
            .field("sample_rate", &self.shared.sample_rate)
            .field("written_rows", &self.written_rows())
            .field("dropped", &self.dropped())
            .field("write_errors", &self.write_errors())
            .field("skipped", &self.skipped())
            .finish()
    }
}

impl InferenceLogger {
    /// Spawns the writer thread. Invalid settings are corrected, not
    /// refused, so that the log can never stop a server from starting: a
    /// sample rate outside `0..=1` is clamped (NaN means 1) and zero sizes
    /// become 1.
    pub fn start(settings: InferenceLogSettings) -> InferenceLogger {
        let settings = writer::WriterSettings::from_settings(settings);
        let sample_rate = settings.sample_rate;
        let (sender, receiver) = mpsc::sync_channel(settings.max_queued_records);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let spawned = std::thread::Builder::new()
            .name("keel-inference-log".to_owned())
            .spawn(move || writer::run(settings, receiver, &thread_counters));
        let writer_thread = match spawned {
            Ok(handle) => Some(handle),
            Err(error) => {
                // Without a writer the receiver is gone: every record is
                // dropped and counted, requests still succeed.
                tracing::error!(%error, "cannot start the inference log writer; records will be dropped");
                None
            }
        };
        InferenceLogger {
            shared: Arc::new(Shared {
                sender,
                sample_rate,
                seen: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                counters,
                writer_thread: Mutex::new(writer_thread),
            }),
        }
    }

    /// Queues `record` for the writer if the sample keeps it. Never blocks
    /// and never fails: when the queue is full, the writer is gone or the
    /// logger is closed, the record is dropped and counted.
    pub fn record(&self, record: InferenceRecord) {
        let shared = &*self.shared;
        let seen = shared.seen.fetch_add(1, Ordering::Relaxed);
        if !sample_keeps(shared.sample_rate, seen) {
            return;
        }
        if shared.closed.load(Ordering::Acquire) {
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match shared.sender.try_send(Command::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records dropped because the queue was full, the writer was gone or
    /// the logger was closed.
    pub fn dropped(&self) -> u64 {
        self.shared.counters.dropped.load(Ordering::Relaxed)
    }

    /// Rows (samples of a batch) in finished Parquet files, counted when a
    /// file is renamed to its final name, so readers can see all of them.
    pub fn written_rows(&self) -> u64 {
        self.shared.counters.written_rows.load(Ordering::Relaxed)
    }

    /// Failed file-system or encoding operations (creating a directory or
    /// file, writing a row group, finishing or renaming a file). The rows
    /// they concerned are lost; the writer carries on with later records.
    pub fn write_errors(&self) -> u64 {
        self.shared.counters.write_errors.load(Ordering::Relaxed)
    }

    /// Records, or tensors of a record, left out because of their own shape:
    /// a tensor whose first dimension is neither the batch size nor 1, one
    /// with more than [`MAX_COLUMNS_PER_TENSOR`] elements per row, a column
    /// name used twice, or a record without any tensor.
    pub fn skipped(&self) -> u64 {
        self.shared.counters.skipped.load(Ordering::Relaxed)
    }

    /// Finishes every open file and waits for the writer thread, blocking
    /// the caller; records queued before the call are written first. Later
    /// records are dropped and counted. Calling it again does nothing.
    pub fn close(&self) {
        let mut writer_thread = match self.shared.writer_thread.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.shared.closed.store(true, Ordering::Release);
        let Some(handle) = writer_thread.take() else {
            return;
        };
        // Blocks while the queue is full, which the writer is draining; an
        // error means the writer is already gone.
        let _ = self.shared.sender.send(Command::Shutdown);
        if handle.join().is_err() {
            tracing::error!("the inference log writer panicked; some records were lost");
        }
    }

    /// Finishes every open file, so that readers see every record queued
    /// before the call; blocks the caller until the writer has done so.
    /// Returns false when the writer is gone or the logger is closed.
    pub fn flush(&self) -> bool {
        if self.shared.closed.load(Ordering::Acquire) {
            return false;
        }
        let (done, finished) = mpsc::sync_channel(1);
        if self.shared.sender.send(Command::Flush(done)).is_err() {
            return false;
        }
        finished.recv().is_ok()
    }

    /// [`InferenceLogger::flush`] without blocking the async runtime.
    pub async fn flush_async(&self) -> bool {
        let logger = self.clone();
        tokio::task::spawn_blocking(move || logger.flush())
            .await
            .unwrap_or(false)
    }

    /// [`InferenceLogger::close`] without blocking the async runtime.
    pub async fn shutdown(&self) {
        let logger = self.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || logger.close()).await {
            tracing::error!(%error, "closing the inference log failed");
        }
    }
}

/// Whether the `seen`-th record (from 0) is kept at `rate`: exactly
/// `floor(n * rate)` of the first `n` records are kept, evenly spread.
fn sample_keeps(rate: f64, seen: u64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let kept_before = (seen as f64 * rate).floor();
    let kept_after = ((seen + 1) as f64 * rate).floor();
    kept_after > kept_before
}

#[cfg(test)]
mod tests {
    use super::sample_keeps;

    #[test]
    fn sampling_keeps_the_requested_fraction() {
        for (rate, expected) in [(0.0, 0), (0.5, 500), (0.1, 100), (0.25, 250), (1.0, 1000)] {
            let kept = (0..1000).filter(|&seen| sample_keeps(rate, seen)).count();
            assert_eq!(kept, expected, "rate {rate}");
        }
    }
}
