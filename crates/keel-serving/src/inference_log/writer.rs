//! The writer thread: takes records off the queue, appends their rows to
//! the open file of their partition, finishes files that are full, idle,
//! superseded by a new signature or still open at shutdown.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::partition::{PartitionFile, PartitionKey, WriteError};
use super::schema::{self, RecordPlan};
use super::{Command, Counters, InferenceLogSettings, InferenceRecord, MAX_OPEN_PARTITIONS};

/// Only the first of every this many write errors (and skips) is logged.
const LOG_EVERY: u64 = 100;

/// How long the writer waits for a record when no file is open.
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// The settings, corrected so that none can stop the writer.
pub(super) struct WriterSettings {
    pub root: PathBuf,
    pub sample_rate: f64,
    pub max_queued_records: usize,
    pub max_rows_per_file: usize,
    pub flush_interval: Duration,
    pub row_group_rows: usize,
}

impl WriterSettings {
    pub(super) fn from_settings(settings: InferenceLogSettings) -> WriterSettings {
        let sample_rate = if settings.sample_rate.is_nan() {
            1.0
        } else {
            settings.sample_rate.clamp(0.0, 1.0)
        };
        WriterSettings {
            root: settings.root,
            sample_rate,
            max_queued_records: settings.max_queued_records.max(1),
            max_rows_per_file: settings.max_rows_per_file.max(1),
            flush_interval: settings.flush_interval,
            row_group_rows: settings.row_group_rows.max(1),
        }
    }
}

/// Runs until shutdown is asked or every sender is gone, then finishes
/// every open file.
pub(super) fn run(settings: WriterSettings, receiver: Receiver<Command>, counters: &Counters) {
    let mut writer = Writer {
        settings,
        counters,
        open: HashMap::new(),
    };
    loop {
        match receiver.recv_timeout(writer.time_to_next_idle_check()) {
            Ok(Command::Record(record)) => writer.write_guarded(&record),
            Ok(Command::Flush(done)) => {
                writer.finish_all();
                // The asker may have given up waiting; nothing to do then.
                let _ = done.send(());
            }
            Ok(Command::Shutdown) => {
                // Records queued before `close` flagged the logger as closed
                // are still written.
                while let Ok(command) = receiver.try_recv() {
                    match command {
                        Command::Record(record) => writer.write_guarded(&record),
                        Command::Flush(done) => {
                            writer.finish_all();
                            let _ = done.send(());
                        }
                        Command::Shutdown => {}
                    }
                }
                break;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        writer.finish_idle();
    }
    writer.finish_all();
}

struct Writer<'a> {
    settings: WriterSettings,
    counters: &'a Counters,
    open: HashMap<PartitionKey, PartitionFile>,
}

impl Writer<'_> {
    fn time_to_next_idle_check(&self) -> Duration {
        let now = Instant::now();
        self.open
            .values()
            .map(|file| {
                (file.last_write + self.settings.flush_interval).saturating_duration_since(now)
            })
            .min()
            .unwrap_or(IDLE_WAIT)
    }

    /// Writes `record`; a panic (a bug) costs the record's partition, never
    /// the writer.
    fn write_guarded(&mut self, record: &InferenceRecord) {
        let result = panic::catch_unwind(AssertUnwindSafe(|| self.write(record)));
        if result.is_err() {
            let key = PartitionKey::for_record(record);
            if let Some(file) = self.open.remove(&key) {
                file.abandon();
            }
            self.count_skipped(
                &record.model_name,
                "the inference log writer failed on this record",
            );
        }
    }

    fn write(&mut self, record: &InferenceRecord) {
        let plan = match schema::plan(record) {
            Ok(plan) => plan,
            Err(reason) => {
                self.count_skipped(&record.model_name, &reason);
                return;
            }
        };
        for reason in &plan.skipped_tensors {
            self.count_skipped(&record.model_name, reason);
        }
        if plan.rows == 0 {
            return;
        }
        let key = PartitionKey::for_record(record);
        if self
            .open
            .get(&key)
            .is_some_and(|file| !schema::fits(&plan.signature, &file.signature))
        {
            self.finish(&key);
        }
        let mut start = 0;
        while start < plan.rows {
            match self.write_rows(&key, record, &plan, start) {
                Some(end) => start = end,
                None => return,
            }
        }
    }

    /// Appends rows from `start` up to the end of the row group or file;
    /// returns where it stopped, `None` when the rest of the record is lost.
    fn write_rows(
        &mut self,
        key: &PartitionKey,
        record: &InferenceRecord,
        plan: &RecordPlan,
        start: usize,
    ) -> Option<usize> {
        if !self.open.contains_key(key) {
            self.make_room();
            let created = PartitionFile::create(
                &self.settings.root,
                key,
                plan.signature.clone(),
                self.settings.row_group_rows,
            );
            match created {
                Ok(file) => {
                    self.open.insert(key.clone(), file);
                }
                Err(error) => {
                    self.count_write_error(&error);
                    return None;
                }
            }
        }
        let file = self.open.get_mut(key)?;
        let room_in_group = self
            .settings
            .row_group_rows
            .saturating_sub(file.buffered_rows());
        let room_in_file = self
            .settings
            .max_rows_per_file
            .saturating_sub(file.total_rows());
        let end = plan
            .rows
            .min(start + room_in_group.min(room_in_file).max(1));
        if let Err(reason) = file.append(record, plan, start..end) {
            self.abandon(key, &reason);
            return None;
        }
        let group_full = file.buffered_rows() >= self.settings.row_group_rows;
        let file_full = file.total_rows() >= self.settings.max_rows_per_file;
        if file_full {
            self.finish(key);
        } else if group_full {
            if let Err(error) = file.write_row_group() {
                self.count_write_error(&error);
                if let Some(file) = self.open.remove(key) {
                    file.abandon();
                }
                return None;
            }
        }
        Some(end)
    }

    /// Finishes the least recently written file when too many are open.
    fn make_room(&mut self) {
        if self.open.len() < MAX_OPEN_PARTITIONS {
            return;
        }
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, file)| file.last_write)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.finish(&key);
        }
    }

    fn finish_idle(&mut self) {
        let now = Instant::now();
        let idle: Vec<PartitionKey> = self
            .open
            .iter()
            .filter(|(_, file)| {
                now.saturating_duration_since(file.last_write) >= self.settings.flush_interval
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in idle {
            self.finish(&key);
        }
    }

    fn finish_all(&mut self) {
        let keys: Vec<PartitionKey> = self.open.keys().cloned().collect();
        for key in keys {
            self.finish(&key);
        }
    }

    fn finish(&mut self, key: &PartitionKey) {
        let Some(file) = self.open.remove(key) else {
            return;
        };
        match file.finish() {
            Ok(rows) => {
                self.counters
                    .written_rows
                    .fetch_add(rows as u64, Ordering::Relaxed);
            }
            Err(error) => self.count_write_error(&error),
        }
    }

    fn abandon(&mut self, key: &PartitionKey, reason: &str) {
        if let Some(file) = self.open.remove(key) {
            file.abandon();
        }
        self.count_skipped(&key.model_name, reason);
    }

    fn count_write_error(&self, error: &WriteError) {
        let total = self.counters.write_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if total % LOG_EVERY == 1 {
            tracing::warn!(
                action = error.action,
                path = %error.path.display(),
                error = %error.message,
                total_write_errors = total,
                "inference log: cannot write; rows are lost (logged once per {LOG_EVERY} errors)"
            );
        }
    }

    fn count_skipped(&self, model_name: &str, reason: &str) {
        let total = self.counters.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        if total % LOG_EVERY == 1 {
            tracing::warn!(
                model = model_name,
                reason,
                total_skipped = total,
                "inference log: left part of a record out (logged once per {LOG_EVERY})"
            );
        }
    }
}
