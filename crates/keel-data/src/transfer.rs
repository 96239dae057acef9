//! `push`, `fetch` and `status --cloud` against a local directory remote laid
//! out as DVC's cache (`files/md5/xx/rest`). Objects are copied in parallel,
//! each hashed while copied (a corrupted object is refused, never stored)
//! and landed whole (temp file beside it + rename) and read-only. A
//! directory's `.dir` manifest goes to the remote only after all its files,
//! so a remote that holds a manifest holds the whole directory.

use std::collections::HashSet;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cache::{write_verified, Cache, NOT_SYNCED};
use crate::manifest::Manifest;
use crate::remote::LocalRemote;
use crate::repo::Repo;
use crate::{DataError, Result};

/// How a transfer runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransferOptions {
    /// Parallel copies; the number of cores when `None`.
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

/// The md5 an object's bytes hash to (`.dir` manifests hash like files).
fn object_md5(oid: &str) -> &str {
    oid.strip_suffix(".dir").unwrap_or(oid)
}

fn remote_cache(remote: &LocalRemote) -> Cache {
    Cache::new(&remote.root)
}

/// Copies what the workspace's `.dvc` files reference from the cache to the
/// remote, skipping what the remote already has.
pub fn push(repo: &Repo, remote: &LocalRemote, options: TransferOptions) -> Result<TransferReport> {
    let cache = repo.cache();
    let destination = remote_cache(remote);
    let on_remote = |oid: &str| destination.object_path(oid).is_file();
    let mut file_oids = Vec::new();
    let mut dirs = Vec::new();
    let mut missing = Vec::new();
    for tracked in repo.tracked_outputs()? {
        let is_dir = tracked.output.is_dir();
        let oid = tracked.output.md5;
        if !is_dir {
            file_oids.push(oid);
            continue;
        }
        let manifest = if cache.find(&oid).is_some() {
            cache.read_manifest(&oid)?
        } else if on_remote(&oid) {
            destination.read_manifest(&oid)?
        } else {
            missing.push(oid);
            continue;
        };
        let entries: Vec<String> = manifest
            .entries()
            .iter()
            .map(|entry| entry.md5.clone())
            .collect();
        file_oids.extend(entries.iter().cloned());
        dirs.push(DirObjects {
            dir_oid: oid,
            file_oids: entries,
        });
    }
    let mut to_copy = Vec::new();
    for oid in dedup(file_oids) {
        if on_remote(&oid) {
            continue;
        }
        if cache.find(&oid).is_some() {
            to_copy.push(oid);
        } else {
            missing.push(oid);
        }
    }
    // Manifests last: only those whose files all reached the remote.
    let mut n_transferred = copy_all(cache, &destination, &to_copy, options)?;
    let complete_dirs: Vec<String> = dedup(
        dirs.into_iter()
            .filter(|dir| !on_remote(&dir.dir_oid))
            .filter(|dir| dir.file_oids.iter().all(|oid| on_remote(oid)))
            .map(|dir| dir.dir_oid)
            .collect(),
    );
    n_transferred += copy_all(cache, &destination, &complete_dirs, options)?;
    Ok(TransferReport {
        n_transferred,
        missing: sorted_unique(missing),
    })
}

/// Copies what the workspace's `.dvc` files reference from the remote into
/// the cache, skipping what the cache already has.
pub fn fetch(
    repo: &Repo,
    remote: &LocalRemote,
    options: TransferOptions,
) -> Result<TransferReport> {
    let cache = repo.cache();
    let source = remote_cache(remote);
    let mut missing = Vec::new();
    let outputs = repo.tracked_outputs()?;
    // First the objects named in `.dvc` files (files and manifests), then
    // the files the manifests list.
    let mut first_round = Vec::new();
    for tracked in &outputs {
        first_round.push(tracked.output.md5.clone());
    }
    let (to_copy, absent) = split_fetchable(cache, &source, dedup(first_round));
    missing.extend(absent);
    let mut n_transferred = copy_all(&source, cache, &to_copy, options)?;
    let mut second_round = Vec::new();
    for tracked in &outputs {
        if !tracked.output.is_dir() || cache.find(&tracked.output.md5).is_none() {
            continue;
        }
        let manifest = cache.read_manifest(&tracked.output.md5)?;
        second_round.extend(manifest.entries().iter().map(|entry| entry.md5.clone()));
    }
    let (to_copy, absent) = split_fetchable(cache, &source, dedup(second_round));
    missing.extend(absent);
    n_transferred += copy_all(&source, cache, &to_copy, options)?;
    Ok(TransferReport {
        n_transferred,
        missing: sorted_unique(missing),
    })
}

/// Which of the workspace's objects are not both in the cache and on the
/// remote; empty when they are in sync.
pub fn cloud_status(repo: &Repo, remote: &LocalRemote) -> Result<Vec<CloudStatusEntry>> {
    let cache = repo.cache();
    let remote_objects = remote_cache(remote);
    let mut entries = Vec::new();
    let mut seen = HashSet::new();
    let mut classify = |name: String, oid: &str| {
        let in_cache = cache.find(oid).is_some();
        let on_remote = remote_objects.object_path(oid).is_file();
        let status = match (in_cache, on_remote) {
            (true, true) => return,
            (true, false) => CloudStatus::New,
            (false, true) => CloudStatus::Deleted,
            (false, false) => CloudStatus::Missing,
        };
        if seen.insert((name.clone(), oid.to_owned())) {
            entries.push(CloudStatusEntry { name, status });
        }
    };
    for tracked in repo.tracked_outputs()? {
        let oid = &tracked.output.md5;
        // As DVC does, a manifest only on the remote is fetched to list
        // its files (and so is not reported itself).
        if tracked.output.is_dir()
            && cache.find(oid).is_none()
            && remote_objects.object_path(oid).is_file()
        {
            copy_object(&remote_objects, cache, oid)?;
        }
        classify(tracked.shown.clone(), oid);
        if !tracked.output.is_dir() {
            continue;
        }
        let manifest: Option<Manifest> = if cache.find(oid).is_some() {
            Some(cache.read_manifest(oid)?)
        } else {
            None
        };
        for entry in manifest.iter().flat_map(|manifest| manifest.entries()) {
            classify(format!("{}/{}", tracked.shown, entry.relpath), &entry.md5);
        }
    }
    Ok(entries)
}

/// Splits `oids` lacking from the cache into those the remote has and those
/// it lacks too.
fn split_fetchable(cache: &Cache, source: &Cache, oids: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut to_copy = Vec::new();
    let mut absent = Vec::new();
    for oid in oids {
        if cache.find(&oid).is_some() {
            continue;
        }
        if source.find(&oid).is_some() {
            to_copy.push(oid);
        } else {
            absent.push(oid);
        }
    }
    (to_copy, absent)
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

/// Copies object `oid` from `source` to `destination`, hashing on the way.
fn copy_object(source: &Cache, destination: &Cache, oid: &str) -> Result<()> {
    let target = destination.object_path(oid);
    if target.is_file() {
        return Ok(());
    }
    let from = source.find(oid).ok_or_else(|| DataError::MissingObject {
        oid: oid.to_owned(),
    })?;
    let mut reader = File::open(&from).map_err(|err| DataError::io(&from, err))?;
    write_verified(
        &mut reader,
        &from,
        &target,
        object_md5(oid),
        Some(0o444),
        NOT_SYNCED,
    )
}

/// Copies `oids` in parallel (a work queue over `n_jobs` threads); every
/// copy is attempted, and the first error is returned after all finished,
/// so a re-run has less to do.
fn copy_all(
    source: &Cache,
    destination: &Cache,
    oids: &[String],
    options: TransferOptions,
) -> Result<usize> {
    if oids.is_empty() {
        return Ok(0);
    }
    let n_workers = options
        .n_jobs
        .or_else(|| std::thread::available_parallelism().map(|n| n.get()).ok())
        .unwrap_or(1)
        .clamp(1, oids.len());
    let progress = progress_bar(oids.len(), options.show_progress);
    let next_idx = AtomicUsize::new(0);
    let first_error: Mutex<Option<DataError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..n_workers {
            scope.spawn(|| loop {
                let oid_idx = next_idx.fetch_add(1, Ordering::Relaxed);
                let Some(oid) = oids.get(oid_idx) else {
                    break;
                };
                if let Err(error) = copy_object(source, destination, oid) {
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(error);
                    }
                }
                progress.inc(1);
            });
        }
    });
    progress.finish_and_clear();
    match first_error.into_inner().ok().flatten() {
        Some(error) => Err(error),
        None => Ok(oids.len()),
    }
}

fn progress_bar(n_objects: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(n_objects as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed}") {
        bar.set_style(style);
    }
    bar
}
