//! `get`: a file or directory of another repository (a git URL or a local
//! git repository) at a revision, written to the workspace without tracking
//! it, as `dvc get` does. The path may be a DVC output (read from the
//! revision's `.dvc` files or its root `dvc.lock`), a path inside a tracked
//! directory, or plain git content (a file or a directory, DVC outputs below
//! it included).
//!
//! A local repository is read in place (its git objects, its cache, its
//! remotes as its config names them); a URL is cloned without a work tree
//! into a temp dir, and its default remote is read from the revision's
//! `.dvc/config`. Objects are fetched into a temp cache, never into the
//! source's, and every file is hashed while written. The result is built
//! in a temp dir beside the destination and renamed into place, so a failed
//! get leaves nothing behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::cache::Cache;
use crate::dvcfile::DvcOutput;
use crate::git::{Git, TreeBlob};
use crate::remote::{Remote, RemoteConfig};
use crate::repo::{checked_relative, TrackedOutput};
use crate::{revision, DataError, Result};

/// What to get, and where.
#[derive(Debug, Clone)]
pub struct GetRequest<'a> {
    /// A git URL, or the path of a local git repository.
    pub url: &'a str,
    /// The path in the repository, relative to its root.
    pub path: &'a str,
    /// A git revision [default: HEAD].
    pub rev: Option<&'a str>,
    /// The destination; `None` for the path's base name in `cwd`, and an
    /// existing directory receives the base name inside it, as DVC does.
    pub out: Option<&'a Path>,
    /// Replace an existing destination.
    pub force: bool,
}

/// What a get wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetReport {
    pub destination: PathBuf,
    pub n_files: usize,
}

/// The pipeline lock file at the repository's root.
const LOCK_FILE: &str = "dvc.lock";

fn usage(message: impl Into<String>) -> DataError {
    DataError::Usage(message.into())
}

/// One file to write: where below the destination, and from what.
enum Source {
    /// A DVC object (md5).
    Object { md5: String, executable: bool },
    /// A git blob, with its mode.
    Blob(TreeBlob),
}

struct PlannedFile {
    /// Path below the destination, `/`-separated; empty for the destination itself.
    relpath: String,
    source: Source,
}

/// The repository being read: its git, and where its objects may be.
struct SourceRepo {
    git: Git,
    commit: String,
    /// The source repository's own cache (a local repository only).
    own_cache: Option<Cache>,
    remotes: RemoteConfig,
    /// Where fetched objects land.
    fetched: Cache,
    remote: Mutex<Option<Remote>>,
    url: String,
}

/// Gets `request.path` of `request.url` at `request.rev` into the destination.
pub fn get(cwd: &Path, request: &GetRequest) -> Result<GetReport> {
    let path = normalize_repo_path(request.path)?;
    let destination = resolve_destination(cwd, &path, request.out, request.force)?;
    let scratch = tempfile::Builder::new()
        .prefix("keel-get-")
        .tempdir()
        .map_err(|err| DataError::io(std::env::temp_dir(), err))?;
    let source = open_source(request, scratch.path())?;
    let plan = plan(&source, &path, request)?;
    let parent = destination
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|err| DataError::io(parent, err))?;
    let staging = tempfile::Builder::new()
        .prefix(".keel-get-")
        .tempdir_in(parent)
        .map_err(|err| DataError::io(parent, err))?;
    let staged = staging.path().join("out");
    write_all(&source, &plan, &staged)?;
    if request.force {
        remove_existing(&destination)?;
    }
    std::fs::rename(&staged, &destination).map_err(|err| DataError::io(&destination, err))?;
    Ok(GetReport {
        destination,
        n_files: plan.len(),
    })
}

/// `a/./b/` → `a/b`; refuses absolute paths and `..`.
fn normalize_repo_path(path: &str) -> Result<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    let joined = parts.join("/");
    if path.starts_with('/') || checked_relative(&joined).is_none() {
        return Err(usage(format!(
            "{path:?}: give a path relative to the repository's root"
        )));
    }
    Ok(joined)
}

/// DVC's `resolve_output`: the base name in `cwd`, or inside `out` when it
/// is a directory, or `out`; refused when it exists, unless `force`.
fn resolve_destination(cwd: &Path, path: &str, out: Option<&Path>, force: bool) -> Result<PathBuf> {
    let base_name = path.rsplit('/').next().unwrap_or(path);
    let destination = match out {
        None => cwd.join(base_name),
        Some(out) if cwd.join(out).is_dir() => cwd.join(out).join(base_name),
        Some(out) => cwd.join(out),
    };
    if std::fs::symlink_metadata(&destination).is_ok() && !force {
        return Err(usage(format!(
            "{}: already exists; rerun with --force to replace it",
            destination.display()
        )));
    }
    Ok(destination)
}

fn open_source(request: &GetRequest, scratch: &Path) -> Result<SourceRepo> {
    let local = Path::new(request.url);
    let is_clone = !local.is_dir();
    let (git, root, own_cache) = if is_clone {
        let root = scratch.join("repo");
        (Git::clone_bare_tree(request.url, &root)?, root, None)
    } else {
        let root = std::fs::canonicalize(local).map_err(|err| DataError::io(local, err))?;
        let git = Git::open(&root)?;
        let cache = root.join(".dvc").join("cache");
        (git, root, cache.is_dir().then(|| Cache::new(cache)))
    };
    let rev = request.rev.unwrap_or("HEAD");
    let commit = match git.resolve_commit(rev)? {
        Some(commit) => Some(commit),
        // A branch of a clone other than its default one.
        None => git.resolve_commit(&format!("origin/{rev}"))?,
    };
    let commit =
        commit.ok_or_else(|| usage(format!("unknown revision '{rev}' in {}", request.url)))?;
    if is_clone {
        // A clone has no work tree: its DVC config is the revision's.
        let config = git.files_at(&commit, ".dvc/config")?;
        if let Some(blob) = config.into_iter().find(|file| file.path == ".dvc/config") {
            let mut contents = git.read_blobs(std::slice::from_ref(&blob.blob))?;
            let bytes = contents.remove(&blob.blob).unwrap_or_default();
            let config_path = root.join(".dvc").join("config");
            crate::cache::write_atomic(&config_path, &bytes, None)?;
        }
    }
    Ok(SourceRepo {
        git,
        commit,
        own_cache,
        remotes: RemoteConfig::new(&root),
        fetched: Cache::new(scratch.join("cache")),
        remote: Mutex::new(None),
        url: request.url.to_owned(),
    })
}

/// The files to write for `path`: a DVC output (or part of one), else what
/// git holds there with the DVC outputs below it.
fn plan(source: &SourceRepo, path: &str, request: &GetRequest) -> Result<Vec<PlannedFile>> {
    let mut outputs = revision::outputs_at(&source.git, std::slice::from_ref(&source.commit))?
        .into_iter()
        .next()
        .unwrap_or_default();
    outputs.extend(lock_outputs(&source.git, &source.commit)?);
    for tracked in &outputs {
        if tracked.shown == path {
            return output_files(source, &tracked.output, None);
        }
        if let Some(inner) = path.strip_prefix(&format!("{}/", tracked.shown)) {
            if tracked.output.is_dir() {
                let files = output_files(source, &tracked.output, Some(inner))?;
                if !files.is_empty() {
                    return Ok(files);
                }
            }
        }
    }
    let blobs = source.git.files_at(&source.commit, path)?;
    let mut files = Vec::new();
    for blob in blobs {
        let relpath = if blob.path == path {
            String::new()
        } else if let Some(inner) = blob.path.strip_prefix(&format!("{path}/")) {
            inner.to_owned()
        } else {
            continue;
        };
        files.push(PlannedFile {
            relpath,
            source: Source::Blob(blob),
        });
    }
    let is_git_file = files.len() == 1 && files[0].relpath.is_empty();
    if !is_git_file {
        let directory = format!("{path}/");
        for tracked in &outputs {
            let Some(prefix) = tracked.shown.strip_prefix(&directory) else {
                continue;
            };
            for mut file in output_files(source, &tracked.output, None)? {
                file.relpath = join_relpath(prefix, &file.relpath);
                files.push(file);
            }
        }
    }
    if files.is_empty() {
        return Err(usage(format!(
            "{path}: not found in {} at {} (neither tracked by DVC nor in git)",
            request.url,
            request.rev.unwrap_or("HEAD")
        )));
    }
    Ok(files)
}

/// The outputs the root `dvc.lock` records at `commit` (DVC 2 and 3's
/// `schema: '2.0'`), as if a `.dvc` file listed them.
fn lock_outputs(git: &Git, commit: &str) -> Result<Vec<TrackedOutput>> {
    let Some(lock) = git
        .files_at(commit, LOCK_FILE)?
        .into_iter()
        .find(|file| file.path == LOCK_FILE)
    else {
        return Ok(Vec::new());
    };
    let mut contents = git.read_blobs(std::slice::from_ref(&lock.blob))?;
    let bytes = contents.remove(&lock.blob).unwrap_or_default();
    let invalid = |reason: String| DataError::InvalidDvcFile {
        path: PathBuf::from(format!("{commit}:{LOCK_FILE}")),
        reason,
    };
    let document: serde_yaml_ng::Value =
        serde_yaml_ng::from_slice(&bytes).map_err(|err| invalid(err.to_string()))?;
    let mut outputs = Vec::new();
    let Some(stages) = document
        .get("stages")
        .and_then(|stages| stages.as_mapping())
    else {
        return Ok(outputs);
    };
    for stage in stages.values() {
        let Some(outs) = stage.get("outs").and_then(|outs| outs.as_sequence()) else {
            continue;
        };
        for out in outs {
            let text = |key: &str| out.get(key).and_then(|value| value.as_str());
            let number = |key: &str| out.get(key).and_then(|value| value.as_u64());
            let (Some(path), Some(md5)) = (text("path"), text("md5")) else {
                continue;
            };
            let path = path.trim_end_matches('/');
            if checked_relative(path).is_none() {
                return Err(invalid(format!(
                    "output path {path:?} leaves the repository"
                )));
            }
            outputs.push(TrackedOutput {
                shown: path.to_owned(),
                output: DvcOutput {
                    md5: md5.to_owned(),
                    size: number("size"),
                    nfiles: number("nfiles"),
                    isexec: out
                        .get("isexec")
                        .and_then(|value| value.as_bool())
                        .unwrap_or(false),
                    hash: text("hash").map(str::to_owned),
                    path: path.to_owned(),
                },
            });
        }
    }
    Ok(outputs)
}

fn join_relpath(prefix: &str, relpath: &str) -> String {
    match (prefix.is_empty(), relpath.is_empty()) {
        (_, true) => prefix.to_owned(),
        (true, false) => relpath.to_owned(),
        (false, false) => format!("{prefix}/{relpath}"),
    }
}

/// The files of a DVC output; with `inner`, only that file or directory of it.
fn output_files(
    source: &SourceRepo,
    output: &DvcOutput,
    inner: Option<&str>,
) -> Result<Vec<PlannedFile>> {
    if !output.is_dir() {
        return Ok(vec![PlannedFile {
            relpath: String::new(),
            source: Source::Object {
                md5: output.md5.clone(),
                executable: output.isexec,
            },
        }]);
    }
    let cache = source.object(&output.md5)?;
    let manifest = cache.read_manifest(&output.md5)?;
    let mut files = Vec::new();
    for entry in manifest.entries() {
        if checked_relative(&entry.relpath).is_none() {
            return Err(DataError::InvalidManifest {
                path: PathBuf::from(&output.path),
                reason: format!("entry {:?} leaves its directory", entry.relpath),
            });
        }
        let relpath = match inner {
            None => entry.relpath.clone(),
            Some(inner) if entry.relpath == inner => String::new(),
            Some(inner) => match entry.relpath.strip_prefix(&format!("{inner}/")) {
                Some(rest) => rest.to_owned(),
                None => continue,
            },
        };
        files.push(PlannedFile {
            relpath,
            source: Source::Object {
                md5: entry.md5.clone(),
                executable: false,
            },
        });
    }
    Ok(files)
}

impl SourceRepo {
    /// The cache holding object `oid`: the source's own, or the temp cache
    /// after a download from the default remote.
    fn object(&self, oid: &str) -> Result<&Cache> {
        if let Some(cache) = &self.own_cache {
            if cache.find(oid).is_some() {
                return Ok(cache);
            }
        }
        if self.fetched.find(oid).is_some() {
            return Ok(&self.fetched);
        }
        let remote = self.remote()?;
        if !remote.download(&self.fetched, oid)? {
            return Err(usage(format!(
                "object {oid} is missing from {}'s remote '{}' ({}); was it pushed?",
                self.url, remote.name, remote.url
            )));
        }
        Ok(&self.fetched)
    }

    /// The default remote, resolved once.
    fn remote(&self) -> Result<Remote> {
        let mut slot = self
            .remote
            .lock()
            .map_err(|_| usage("a download thread failed"))?;
        if let Some(remote) = slot.as_ref() {
            return Ok(remote.clone());
        }
        let name = self.remotes.default_name()?.ok_or_else(|| {
            usage(format!(
                "{} has no default remote in its .dvc/config, and the data is not in its cache; \
                 cannot download it",
                self.url
            ))
        })?;
        let remote = self.remotes.resolve(Some(&name))?;
        *slot = Some(remote.clone());
        Ok(remote)
    }
}

/// Writes every planned file below `staged` (or `staged` itself for a
/// single file), objects hashed on the way, on a few threads.
fn write_all(source: &SourceRepo, plan: &[PlannedFile], staged: &Path) -> Result<()> {
    let blobs: Vec<String> = plan
        .iter()
        .filter_map(|file| match &file.source {
            Source::Blob(blob) => Some(blob.blob.clone()),
            Source::Object { .. } => None,
        })
        .collect();
    let blob_contents = source.git.read_blobs(&blobs)?;
    if plan.iter().all(|file| !file.relpath.is_empty()) {
        // A directory, even an empty one, is a directory.
        std::fs::create_dir_all(staged).map_err(|err| DataError::io(staged, err))?;
    }
    let n_workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, plan.len().max(1));
    let next_idx = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<DataError>> = Mutex::new(None);
    let next_file = || {
        if failed.load(Ordering::Relaxed) {
            return None;
        }
        plan.get(next_idx.fetch_add(1, Ordering::Relaxed))
    };
    std::thread::scope(|scope| {
        for _ in 0..n_workers {
            scope.spawn(|| {
                while let Some(file) = next_file() {
                    let destination = if file.relpath.is_empty() {
                        staged.to_path_buf()
                    } else {
                        staged.join(&file.relpath)
                    };
                    let result = match &file.source {
                        Source::Object { md5, executable } => source
                            .object(md5)
                            .and_then(|cache| cache.checkout_file(md5, &destination, *executable)),
                        Source::Blob(blob) => write_blob(blob, &blob_contents, &destination),
                    };
                    if let Err(error) = result {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(error);
                        }
                    }
                }
            });
        }
    });
    let first_error = first_error
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    first_error.map_or(Ok(()), Err)
}

fn write_blob(
    blob: &TreeBlob,
    contents: &std::collections::HashMap<String, Vec<u8>>,
    destination: &Path,
) -> Result<()> {
    let bytes = contents
        .get(&blob.blob)
        .ok_or_else(|| usage(format!("{}: cannot read it from git", blob.path)))?;
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).map_err(|err| DataError::io(parent, err))?;
    }
    #[cfg(unix)]
    if blob.mode == "120000" {
        let target = String::from_utf8_lossy(bytes).into_owned();
        return std::os::unix::fs::symlink(target, destination)
            .map_err(|err| DataError::io(destination, err));
    }
    std::fs::write(destination, bytes).map_err(|err| DataError::io(destination, err))?;
    #[cfg(unix)]
    if blob.mode == "100755" {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(destination, std::fs::Permissions::from_mode(0o755))
            .map_err(|err| DataError::io(destination, err))?;
    }
    Ok(())
}

fn remove_existing(destination: &Path) -> Result<()> {
    let Ok(metadata) = std::fs::symlink_metadata(destination) else {
        return Ok(());
    };
    let removed = if metadata.is_dir() {
        std::fs::remove_dir_all(destination)
    } else {
        std::fs::remove_file(destination)
    };
    removed.map_err(|err| DataError::io(destination, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths_are_normalized_and_kept_inside() {
        assert_eq!(normalize_repo_path("./data/").expect("ok"), "data");
        assert_eq!(normalize_repo_path("a//b/./c").expect("ok"), "a/b/c");
        for bad in ["/etc/passwd", "../x", "a/../../b", ""] {
            assert!(normalize_repo_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_destination_is_the_base_name_or_inside_an_existing_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cwd = dir.path();
        assert_eq!(
            resolve_destination(cwd, "a/data", None, false).expect("default"),
            cwd.join("data")
        );
        std::fs::create_dir(cwd.join("into")).expect("mkdir");
        assert_eq!(
            resolve_destination(cwd, "a/data", Some(Path::new("into")), false).expect("dir"),
            cwd.join("into/data")
        );
        std::fs::write(cwd.join("taken"), "x").expect("write");
        let error =
            resolve_destination(cwd, "data", Some(Path::new("taken")), false).expect_err("exists");
        assert!(error.to_string().contains("--force"), "{error}");
        assert!(resolve_destination(cwd, "data", Some(Path::new("taken")), true).is_ok());
    }
}
