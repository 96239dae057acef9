//! `push`, `fetch` and `status --cloud` between the cache and a remote: a
//! local directory laid out as DVC's cache or an object store with the same
//! layout below its prefix (`remote.rs`). Objects move in parallel (`--jobs`,
//! by default the number of cores for a directory and 16 requests for an
//! object store), each hashed while it moves, so a corrupted object is
//! refused, never stored, and lands whole (temp file beside it + rename).
//! A directory's `.dir` manifest goes to the remote only after all its
//! files, so a remote that holds a manifest holds the whole directory, and a
//! push takes a manifest found on the remote as proof of its files, as DVC
//! does. Every object is attempted even when some fail (the first error is
//! returned at the end, so a re-run has less to do), unless failures pile up
//! (`MAX_FAILURES`): then the remote is unwell and the rest is left for the
//! re-run.
//!
//! What exists where is asked in batches: a push asks the remote itself
//! (HEADs or a listing, whichever is cheaper: `remote/cloud.rs`), a fetch
//! just downloads and takes "not found" for missing, and `status --cloud`
//! also trusts the remote index (`remote/index.rs`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::manifest::Manifest;
use crate::remote::{is_valid_oid, Remote};
use crate::repo::{Repo, TrackedOutput};
use crate::{DataError, Result};

/// Failed objects after which a transfer stops starting new ones.
const MAX_FAILURES: usize = 10;

/// How a transfer runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransferOptions {
    /// Parallel transfers; when `None`, the remote's default
    /// (`Remote::default_jobs`).
    pub n_jobs: Option<usize>,
    /// Draw a progress bar on stderr.
    pub show_progress: bool,
}

/// What a push or fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferReport {
    /// Objects copied.
    pub n_transferred: usize,
    /// Objects found neither in the cache nor on the remote, sorted.
    pub missing: Vec<String>,
}

/// Where an object is, as `dvc status --cloud` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudStatus {
    /// In the cache only.
    New,
    /// On the remote only.
    Deleted,
    /// In neither.
    Missing,
}

impl CloudStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CloudStatus::New => "new",
            CloudStatus::Deleted => "deleted",
            CloudStatus::Missing => "missing",
        }
    }
}

/// One object that is not in sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudStatusEntry {
    /// The output (or `output/relpath` for a file of a directory).
    pub name: String,
    pub status: CloudStatus,
}

/// The objects one directory output needs, once its manifest is known.
struct DirObjects {
    dir_oid: String,
    file_oids: Vec<String>,
}

fn n_jobs(remote: &Remote, options: TransferOptions) -> usize {
    options
        .n_jobs
        .unwrap_or_else(|| remote.default_jobs())
        .max(1)
}

/// The `.dvc` files' outputs, each oid checked to be an md5 (it becomes a
/// path on the remote).
fn tracked_outputs(repo: &Repo) -> Result<Vec<TrackedOutput>> {
    let outputs = repo.tracked_outputs()?;
    if let Some(bad) = outputs
        .iter()
        .find(|tracked| !is_valid_oid(&tracked.output.md5))
    {
        return Err(DataError::Usage(format!(
            "{}: {:?} is not an md5",
            bad.shown, bad.output.md5
        )));
    }
    Ok(outputs)
}

fn manifest_oids(manifest: &Manifest) -> Result<Vec<String>> {
    let oids: Vec<String> = manifest
        .entries()
        .iter()
        .map(|entry| entry.md5.clone())
        .collect();
    match oids.iter().find(|oid| !is_valid_oid(oid)) {
        Some(bad) => Err(DataError::Usage(format!(
            "a directory manifest lists {bad:?}, which is not an md5"
        ))),
        None => Ok(oids),
    }
}

/// Copies what the workspace's `.dvc` files reference from the cache to the
/// remote, skipping what the remote already has.
pub fn push(repo: &Repo, remote: &Remote, options: TransferOptions) -> Result<TransferReport> {
    let cache = repo.cache();
    let jobs = n_jobs(remote, options);
    let outputs = tracked_outputs(repo)?;
    let dir_oids = dedup(
        outputs
            .iter()
            .filter(|tracked| tracked.output.is_dir())
            .map(|tracked| tracked.output.md5.clone())
            .collect(),
    );
    // A manifest on the remote vouches for all its files.
    let dirs_on_remote = remote.existing(&dir_oids, false, jobs)?;
    let mut file_oids = Vec::new();
    let mut dirs = Vec::new();
    let mut missing = Vec::new();
    for tracked in outputs {
        let is_dir = tracked.output.is_dir();
        let oid = tracked.output.md5;
        if !is_dir {
            file_oids.push(oid);
            continue;
        }
        if dirs_on_remote.contains(&oid) {
            continue;
        }
        if cache.find(&oid).is_none() {
            missing.push(oid);
            continue;
        }
        let entries = manifest_oids(&cache.read_manifest(&oid)?)?;
        file_oids.extend(entries.iter().cloned());
        dirs.push(DirObjects {
            dir_oid: oid,
            file_oids: entries,
        });
    }
    let file_oids = dedup(file_oids);
    let files_on_remote = remote.existing(&file_oids, false, jobs)?;
    let mut to_copy = Vec::new();
    for oid in file_oids {
        if files_on_remote.contains(&oid) {
            continue;
        }
        if cache.find(&oid).is_some() {
            to_copy.push(oid);
        } else {
            missing.push(oid);
        }
    }
    let mut copied = run_all(&to_copy, jobs, options.show_progress, |oid| {
        remote.upload(cache, oid).map(|()| true)
    });
    remote.note_present(&copied.done);
    copied.take_error()?;
    // Manifests last: only those whose files all reached the remote.
    let complete_dirs: Vec<String> = dedup(
        dirs.into_iter()
            .filter(|dir| {
                dir.file_oids
                    .iter()
                    .all(|oid| files_on_remote.contains(oid) || copied.done_set.contains(oid))
            })
            .map(|dir| dir.dir_oid)
            .collect(),
    );
    let mut copied_dirs = run_all(&complete_dirs, jobs, options.show_progress, |oid| {
        remote.upload(cache, oid).map(|()| true)
    });
    remote.note_present(&copied_dirs.done);
    copied_dirs.take_error()?;
    let n_transferred = copied.done.len() + copied_dirs.done.len();
    Ok(TransferReport {
        n_transferred,
        missing: sorted_unique(missing),
    })
}

/// Copies what the workspace's `.dvc` files reference from the remote into
/// the cache, skipping what the cache already has. Nothing is asked before:
/// each object is downloaded, and one the remote lacks is reported missing.
pub fn fetch(repo: &Repo, remote: &Remote, options: TransferOptions) -> Result<TransferReport> {
    let cache = repo.cache();
    let jobs = n_jobs(remote, options);
    let mut missing = Vec::new();
    let mut n_transferred = 0;
    let outputs = tracked_outputs(repo)?;
    // First the objects named in `.dvc` files (files and manifests), then
    // the files the manifests list.
    let first_round: Vec<String> = outputs
        .iter()
        .map(|tracked| tracked.output.md5.clone())
        .collect();
    let mut download = |oids: Vec<String>| -> Result<()> {
        let to_copy: Vec<String> = dedup(oids)
            .into_iter()
            .filter(|oid| cache.find(oid).is_none())
            .collect();
        let mut fetched = run_all(&to_copy, jobs, options.show_progress, |oid| {
            remote.download(cache, oid)
        });
        remote.note_present(&fetched.done);
        remote.note_absent(&fetched.absent);
        n_transferred += fetched.done.len();
        missing.extend(fetched.absent.iter().cloned());
        fetched.take_error()
    };
    download(first_round)?;
    let mut second_round = Vec::new();
    for tracked in &outputs {
        if !tracked.output.is_dir() || cache.find(&tracked.output.md5).is_none() {
            continue;
        }
        second_round.extend(manifest_oids(&cache.read_manifest(&tracked.output.md5)?)?);
    }
    download(second_round)?;
    Ok(TransferReport {
        n_transferred,
        missing: sorted_unique(missing),
    })
}

/// Which of the workspace's objects are not both in the cache and on the
/// remote; empty when they are in sync. A cloud remote's index answers for
/// the objects it lists (see `remote/index.rs`).
pub fn cloud_status(repo: &Repo, remote: &Remote) -> Result<Vec<CloudStatusEntry>> {
    let cache = repo.cache();
    let jobs = n_jobs(remote, TransferOptions::default());
    let outputs = tracked_outputs(repo)?;
    // As DVC does, a manifest only on the remote is fetched to list its
    // files (and so is not reported itself).
    let uncached_dirs: Vec<String> = dedup(
        outputs
            .iter()
            .filter(|tracked| tracked.output.is_dir() && cache.find(&tracked.output.md5).is_none())
            .map(|tracked| tracked.output.md5.clone())
            .collect(),
    );
    let dirs_on_remote = remote.existing(&uncached_dirs, true, jobs)?;
    let mut gone = Vec::new();
    for oid in &dirs_on_remote {
        if !remote.download(cache, oid)? {
            gone.push(oid.clone());
        }
    }
    remote.note_absent(&gone);
    let mut named: Vec<(String, String)> = Vec::new();
    for tracked in &outputs {
        let oid = &tracked.output.md5;
        named.push((tracked.shown.clone(), oid.clone()));
        if !tracked.output.is_dir() || cache.find(oid).is_none() {
            continue;
        }
        let manifest = cache.read_manifest(oid)?;
        for entry in manifest.entries() {
            if !is_valid_oid(&entry.md5) {
                return Err(DataError::Usage(format!(
                    "{}: the manifest lists {:?}, which is not an md5",
                    tracked.shown, entry.md5
                )));
            }
            named.push((
                format!("{}/{}", tracked.shown, entry.relpath),
                entry.md5.clone(),
            ));
        }
    }
    let all_oids = dedup(named.iter().map(|(_, oid)| oid.clone()).collect());
    let on_remote = remote.existing(&all_oids, true, jobs)?;
    let mut entries = Vec::new();
    let mut seen = HashSet::new();
    for (name, oid) in named {
        let in_cache = cache.find(&oid).is_some();
        let status = match (in_cache, on_remote.contains(&oid)) {
            (true, true) => continue,
            (true, false) => CloudStatus::New,
            (false, true) => CloudStatus::Deleted,
            (false, false) => CloudStatus::Missing,
        };
        if seen.insert((name.clone(), oid)) {
            entries.push(CloudStatusEntry { name, status });
        }
    }
    Ok(entries)
}

fn dedup(oids: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    oids.into_iter()
        .filter(|oid| seen.insert(oid.clone()))
        .collect()
}

fn sorted_unique(mut oids: Vec<String>) -> Vec<String> {
    oids.sort();
    oids.dedup();
    oids
}

/// What a batch of transfers did.
#[derive(Default)]
struct Outcomes {
    /// Objects transferred (or already at their destination).
    done: Vec<String>,
    done_set: HashSet<String>,
    /// Objects the source does not have.
    absent: Vec<String>,
    first_error: Option<DataError>,
}

impl Outcomes {
    /// The first error, if any (taken: a second call is `Ok`).
    fn take_error(&mut self) -> Result<()> {
        match self.first_error.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Runs `transfer` (`Ok(false)`: the source lacks the object) over `oids`
/// on `n_jobs` threads fed by one work queue.
fn run_all(
    oids: &[String],
    n_jobs: usize,
    show_progress: bool,
    transfer: impl Fn(&str) -> Result<bool> + Sync,
) -> Outcomes {
    if oids.is_empty() {
        return Outcomes::default();
    }
    let n_workers = n_jobs.clamp(1, oids.len());
    let progress = progress_bar(oids.len(), show_progress);
    let next_idx = AtomicUsize::new(0);
    let n_failed = AtomicUsize::new(0);
    let outcomes = Mutex::new(Outcomes::default());
    std::thread::scope(|scope| {
        for _ in 0..n_workers {
            scope.spawn(|| loop {
                if n_failed.load(Ordering::Relaxed) >= MAX_FAILURES {
                    break;
                }
                let oid_idx = next_idx.fetch_add(1, Ordering::Relaxed);
                let Some(oid) = oids.get(oid_idx) else {
                    break;
                };
                let result = transfer(oid);
                if result.is_err() {
                    n_failed.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut outcomes) = outcomes.lock() {
                    match result {
                        Ok(true) => {
                            outcomes.done.push(oid.clone());
                            outcomes.done_set.insert(oid.clone());
                        }
                        Ok(false) => outcomes.absent.push(oid.clone()),
                        Err(error) => {
                            outcomes.first_error.get_or_insert(error);
                        }
                    }
                }
                progress.inc(1);
            });
        }
    });
    progress.finish_and_clear();
    outcomes
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn progress_bar(n_objects: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(n_objects as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} {elapsed}, {eta} left")
    {
        bar.set_style(style);
    }
    bar
}
