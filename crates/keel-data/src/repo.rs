//! A DVC repository on disk: `init`, `add`, `status` and `checkout` over
//! `.dvc` files, the cache and the state cache, as DVC 3 does them, with the
//! repository's link types (`cache.type`) and `.dvcignore` files.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::cache::{write_atomic, Cache};
use crate::dvcfile::{DvcFile, DvcOutput};
use crate::dvcignore::{DvcIgnore, DVCIGNORE_FILE};
use crate::hashing::{run_parallel, walk_files_except, walk_files_named};
use crate::link::{configured_link_types, is_plain_copy, LinkType, Linker};
use crate::manifest::{Manifest, ManifestEntry};
use crate::state::StateCache;
use crate::{DataError, Result};

/// What `dvc status` prints when nothing changed.
pub const UP_TO_DATE_MESSAGE: &str = "Data and pipelines are up to date.";

const DVC_GITIGNORE: &str = "/config.local\n/tmp\n/cache\n";
const DVCIGNORE: &str = "# Add patterns of files dvc should ignore, which could improve\n# the performance. Learn more at\n# https://dvc.org/doc/user-guide/dvcignore\n";
const NO_SCM_CONFIG: &str = "[core]\n    no_scm = True\n";

/// How a tracked output differs from its `.dvc` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStatus {
    Modified,
    Deleted,
    NotInCache,
}

impl OutputStatus {
    /// DVC's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStatus::Modified => "modified",
            OutputStatus::Deleted => "deleted",
            OutputStatus::NotInCache => "not in cache",
        }
    }
}

/// One changed output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The `.dvc` file, relative to the repository root, `/`-separated.
    pub dvc_file: String,
    /// The output's path as the `.dvc` file spells it.
    pub output: String,
    pub status: OutputStatus,
}

/// What `checkout` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckoutReport {
    /// Outputs written from the cache (relative to the root).
    pub restored: Vec<String>,
    /// Modified outputs left alone because `force` was not given.
    pub refused: Vec<String>,
    /// Unchanged outputs re-created with the configured link type
    /// (`relink`); DVC does not list them either.
    pub relinked: Vec<String>,
}

/// What `checkout` may do beyond restoring deleted outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckoutOptions {
    /// Also restore modified outputs, discarding the workspace's changes.
    pub force: bool,
    /// Also re-create unchanged outputs with the configured link type
    /// (DVC's `--relink`), e.g. after `cache.type` changed.
    pub relink: bool,
}

/// One output of a `.dvc` file, as transfers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedOutput {
    /// The output's workspace path relative to the root, `/`-separated.
    pub shown: String,
    pub output: DvcOutput,
}

/// An opened repository.
#[derive(Debug)]
pub struct Repo {
    root: PathBuf,
    cache: Cache,
    state: StateCache,
    no_scm: bool,
    linker: Linker,
    ignore: DvcIgnore,
}

fn usage(message: impl Into<String>) -> DataError {
    DataError::Usage(message.into())
}

pub(crate) fn display_relative(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A path from a `.dvc` file or a manifest must stay below its base.
pub(crate) fn checked_relative(path: &str) -> Option<PathBuf> {
    let relative = Path::new(path);
    let is_safe = !path.is_empty()
        && !path.contains('\\')
        && relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)));
    is_safe.then(|| relative.to_path_buf())
}

impl Repo {
    /// Creates `.dvc/` in `root` as `dvc init` does (`--no-scm` when `root`
    /// is not a git repository).
    pub fn init(root: &Path) -> Result<()> {
        let dvc_dir = root.join(".dvc");
        if dvc_dir.exists() {
            return Err(usage(format!(
                "{} already exists; this is already a DVC repository",
                dvc_dir.display()
            )));
        }
        std::fs::create_dir_all(&dvc_dir).map_err(|err| DataError::io(&dvc_dir, err))?;
        let config = if root.join(".git").exists() {
            ""
        } else {
            NO_SCM_CONFIG
        };
        write_atomic(&dvc_dir.join("config"), config.as_bytes(), None)?;
        write_atomic(&dvc_dir.join(".gitignore"), DVC_GITIGNORE.as_bytes(), None)?;
        write_atomic(&root.join(".dvcignore"), DVCIGNORE.as_bytes(), None)?;
        Ok(())
    }

    /// Opens the repository that holds `start` (a `.dvc` directory in it or
    /// an ancestor).
    pub fn find(start: &Path) -> Result<Repo> {
        let start = std::fs::canonicalize(start).map_err(|err| DataError::io(start, err))?;
        let root = start
            .ancestors()
            .find(|dir| dir.join(".dvc").is_dir())
            .ok_or_else(|| {
                usage("not inside a DVC repository (no .dvc directory here or above); run `keel data init` first")
            })?;
        Repo::open(root)
    }

    fn open(root: &Path) -> Result<Repo> {
        let dvc_dir = root.join(".dvc");
        let no_scm = std::fs::read_to_string(dvc_dir.join("config"))
            .map(|config| {
                config.lines().any(|line| {
                    line.split_whitespace().collect::<String>().to_lowercase() == "no_scm=true"
                })
            })
            .unwrap_or(false);
        Ok(Repo {
            root: root.to_path_buf(),
            cache: Cache::new(dvc_dir.join("cache")),
            state: StateCache::open(dvc_dir.join("tmp").join("keel-state")),
            no_scm,
            linker: Linker::new(configured_link_types(root)?),
            ignore: DvcIgnore::new(root),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn state(&self) -> &StateCache {
        &self.state
    }

    /// The repository's link types (`cache.type`), with what this
    /// operation learnt about which ones work.
    pub fn linker(&self) -> &Linker {
        &self.linker
    }

    /// The files below `dir` that `.dvcignore` does not exclude, as
    /// [`crate::hashing::walk_files`] lists them.
    pub fn walk_files(&self, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
        walk_files_except(dir, |path, is_dir| self.ignore.is_ignored(path, is_dir))
    }

    /// Whether the repository runs without git (`core.no_scm`), in which
    /// case `add` leaves `.gitignore` alone, as DVC does.
    pub fn no_scm(&self) -> bool {
        self.no_scm
    }

    /// Tracks a file or directory: hashes it, puts it into the cache (then
    /// links the workspace to it, per `cache.type`), writes `<target>.dvc`
    /// beside it and ignores it in `.gitignore`. Returns the `.dvc` file's
    /// path.
    pub fn add(&self, target: &Path) -> Result<PathBuf> {
        let absolute = std::fs::canonicalize(target)
            .map_err(|_| usage(format!("{}: no such file or directory", target.display())))?;
        let relative = absolute.strip_prefix(&self.root).map_err(|_| {
            usage(format!(
                "{}: outside the repository {}",
                target.display(),
                self.root.display()
            ))
        })?;
        let first_component = relative.components().next();
        if first_component.is_none() {
            return Err(usage("cannot track the repository root itself"));
        }
        if relative
            .components()
            .any(|component| component.as_os_str() == ".dvc" || component.as_os_str() == ".git")
        {
            return Err(usage(format!(
                "{}: inside .dvc or .git, which cannot be tracked",
                target.display()
            )));
        }
        let name = absolute
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| usage(format!("{}: file name is not UTF-8", target.display())))?
            .to_owned();
        if name.ends_with(".dvc") {
            return Err(usage(format!("{}: is a .dvc file", target.display())));
        }
        let parent = absolute.parent().unwrap_or(&self.root).to_path_buf();
        let output = self.hash_output(&absolute, name.clone(), true)?;
        let dvc_file_path = parent.join(format!("{name}.dvc"));
        DvcFile { outs: vec![output] }.write(&dvc_file_path)?;
        if !self.no_scm {
            add_gitignore_entry(&parent, &format!("/{name}"))?;
        }
        self.state.save()?;
        Ok(dvc_file_path)
    }

    /// The output a file or directory makes, under the name `path`; with
    /// `store`, its objects also go into the cache and its files are
    /// replaced by links to them (unless `copy` is the link type that works).
    pub(crate) fn hash_output(
        &self,
        absolute: &Path,
        path: String,
        store: bool,
    ) -> Result<DvcOutput> {
        let metadata = std::fs::metadata(absolute).map_err(|err| DataError::io(absolute, err))?;
        if metadata.is_dir() {
            let (manifest, size) = self.hash_dir(absolute, store)?;
            let nfiles = manifest.entries().len() as u64;
            let md5 = if store {
                self.cache.add_manifest(&manifest)?
            } else {
                manifest.oid()
            };
            return Ok(DvcOutput {
                md5,
                size: Some(size),
                nfiles: Some(nfiles),
                isexec: false,
                hash: Some("md5".to_owned()),
                path,
            });
        }
        let isexec = is_executable(&metadata);
        let md5 = self.hash_file(absolute, &metadata, store, isexec)?;
        Ok(DvcOutput {
            md5,
            size: Some(metadata.len()),
            nfiles: None,
            isexec,
            hash: Some("md5".to_owned()),
            path,
        })
    }

    /// The md5 of one workspace file (`metadata` is its, followed through
    /// symlinks); with `store`, the file also goes into the cache and is
    /// relinked. A file the state cache does not know is read once: hashed
    /// while it is put into the cache.
    fn hash_file(
        &self,
        path: &Path,
        metadata: &std::fs::Metadata,
        store: bool,
        executable: bool,
    ) -> Result<String> {
        if !store {
            return self.state.file_md5_with(path, metadata);
        }
        if let Some(md5) = self.state.known_md5(path, metadata) {
            self.store_and_relink(path, &md5, executable)?;
            return Ok(md5);
        }
        let md5 = self.cache.add_new_file_linked(path, &self.linker)?;
        self.state.record_hashed(path, metadata, &md5);
        self.relink(path, &md5, executable)?;
        Ok(md5)
    }

    /// Caches one workspace file as object `md5`, then makes the file a
    /// link to it with the configured type.
    fn store_and_relink(&self, path: &Path, md5: &str, executable: bool) -> Result<()> {
        self.cache.add_file_linked(path, md5, &self.linker)?;
        self.relink(path, md5, executable)
    }

    /// Makes a file just cached as object `md5` a link to it.
    fn relink(&self, path: &Path, md5: &str, executable: bool) -> Result<()> {
        let used = self
            .cache
            .relink_cached(md5, path, executable, &self.linker)?;
        if used != LinkType::Copy {
            self.state.record(path, md5)?;
        }
        Ok(())
    }

    /// The manifest and total size of a directory (files `.dvcignore`
    /// excludes left out); with `store`, each file also goes into the cache
    /// and is relinked. Files are hashed in parallel.
    pub(crate) fn hash_dir(&self, dir: &Path, store: bool) -> Result<(Manifest, u64)> {
        let files = self.walk_files(dir)?;
        // DVC refuses these: patterns inside a tracked directory would make
        // its content depend on files it contains.
        if let Some((_, path)) = files
            .iter()
            .find(|(_, path)| path.file_name().is_some_and(|name| name == DVCIGNORE_FILE))
        {
            let holder = path.parent().unwrap_or(dir);
            return Err(usage(format!(
                "{DVCIGNORE_FILE} file should not be in collected dir path: '{}'; move its patterns to a {DVCIGNORE_FILE} above the tracked directory",
                holder.display()
            )));
        }
        let paths: Vec<PathBuf> = files.iter().map(|(_, path)| path.clone()).collect();
        let results = run_parallel(&paths, |path| {
            // Followed through a symlink: the object's size, the file's.
            let metadata = std::fs::metadata(path).map_err(|err| DataError::io(path, err))?;
            let md5 = self.hash_file(path, &metadata, store, false)?;
            Ok((md5, metadata.len()))
        });
        let mut entries = Vec::with_capacity(files.len());
        let mut total_size = 0;
        for ((relpath, _), result) in files.into_iter().zip(results) {
            let (md5, size) = result?;
            total_size += size;
            entries.push(ManifestEntry { md5, relpath });
        }
        Ok((Manifest::new(entries), total_size))
    }

    /// Every `.dvc` file in the repository that `.dvcignore` leaves in,
    /// sorted.
    pub(crate) fn dvc_files(&self) -> Result<Vec<PathBuf>> {
        let found = walk_files_named(
            &self.root,
            |name| name.ends_with(".dvc"),
            |path, is_dir| self.ignore.is_ignored(path, is_dir),
        )?;
        Ok(found.into_iter().map(|(_, path)| path).collect())
    }

    pub(crate) fn workspace_path(dvc_file: &Path, output: &DvcOutput) -> Result<PathBuf> {
        let relative = checked_relative(&output.path).ok_or_else(|| DataError::InvalidDvcFile {
            path: dvc_file.to_path_buf(),
            reason: format!(
                "output path {:?} leaves the .dvc file's directory",
                output.path
            ),
        })?;
        Ok(dvc_file.parent().unwrap_or(Path::new(".")).join(relative))
    }

    fn output_status(&self, dvc_file: &Path, output: &DvcOutput) -> Result<Option<OutputStatus>> {
        let workspace = Self::workspace_path(dvc_file, output)?;
        let Ok(metadata) = std::fs::metadata(&workspace) else {
            return Ok(Some(OutputStatus::Deleted));
        };
        if output.is_dir() {
            if !metadata.is_dir() {
                return Ok(Some(OutputStatus::Modified));
            }
            let (manifest, _) = self.hash_dir(&workspace, false)?;
            if manifest.oid() != output.md5 {
                return Ok(Some(OutputStatus::Modified));
            }
            let all_cached = self.cache.find(&output.md5).is_some() && self.all_in_cache(&manifest);
            return Ok((!all_cached).then_some(OutputStatus::NotInCache));
        }
        if metadata.is_dir() || self.state.file_md5(&workspace)? != output.md5 {
            return Ok(Some(OutputStatus::Modified));
        }
        Ok(self
            .cache
            .find(&output.md5)
            .is_none()
            .then_some(OutputStatus::NotInCache))
    }

    /// Whether every file of `manifest` is in the cache (looked up in
    /// parallel: one stat per file).
    fn all_in_cache(&self, manifest: &Manifest) -> bool {
        let object_paths: Vec<PathBuf> = manifest
            .entries()
            .iter()
            .map(|entry| self.cache.object_path(&entry.md5))
            .collect();
        let found = run_parallel(&object_paths, |object| Ok(object.is_file()));
        // A miss may still be in the 2.x layout (rare: looked up one by one).
        found
            .into_iter()
            .zip(manifest.entries())
            .all(|(present, entry)| {
                present.is_ok_and(|present| present) || self.cache.find(&entry.md5).is_some()
            })
    }

    /// Every output of every `.dvc` file, in file order.
    pub fn tracked_outputs(&self) -> Result<Vec<TrackedOutput>> {
        let mut outputs = Vec::new();
        for dvc_file in self.dvc_files()? {
            for output in DvcFile::read(&dvc_file)?.outs {
                let workspace = Self::workspace_path(&dvc_file, &output)?;
                outputs.push(TrackedOutput {
                    shown: display_relative(&self.root, &workspace),
                    output,
                });
            }
        }
        Ok(outputs)
    }

    /// Compares the workspace with every `.dvc` file; empty when up to date.
    pub fn status(&self) -> Result<Vec<StatusEntry>> {
        let mut changes = Vec::new();
        for dvc_file in self.dvc_files()? {
            let parsed = DvcFile::read(&dvc_file)?;
            for output in &parsed.outs {
                if let Some(status) = self.output_status(&dvc_file, output)? {
                    changes.push(StatusEntry {
                        dvc_file: display_relative(&self.root, &dvc_file),
                        output: output.path.clone(),
                        status,
                    });
                }
            }
        }
        self.state.save()?;
        Ok(changes)
    }

    /// Restores every deleted output from the cache, and every modified one
    /// when `force` is set, with the configured link types (a copy is
    /// checked against its md5 while written).
    pub fn checkout(&self, force: bool) -> Result<CheckoutReport> {
        self.checkout_with(CheckoutOptions {
            force,
            relink: false,
        })
    }

    /// [`Repo::checkout`], and with `relink` every unchanged output
    /// re-created with the configured link type too.
    pub fn checkout_with(&self, options: CheckoutOptions) -> Result<CheckoutReport> {
        let force = options.force;
        let mut report = CheckoutReport::default();
        for dvc_file in self.dvc_files()? {
            let parsed = DvcFile::read(&dvc_file)?;
            for output in &parsed.outs {
                let workspace = Self::workspace_path(&dvc_file, output)?;
                let shown = display_relative(&self.root, &workspace);
                match self.output_status(&dvc_file, output)? {
                    Some(OutputStatus::NotInCache) => continue,
                    None if !options.relink => continue,
                    None => {
                        self.relink_output(output, &workspace)?;
                        report.relinked.push(shown);
                        continue;
                    }
                    Some(OutputStatus::Modified) if !force => {
                        report.refused.push(shown);
                        continue;
                    }
                    Some(OutputStatus::Modified | OutputStatus::Deleted) => {}
                }
                if output.is_dir() {
                    self.restore_dir(&output.md5, &workspace, false)?;
                } else {
                    // Unlinked first: never written through a link.
                    remove_any(&workspace)?;
                    self.cache
                        .link_file(&output.md5, &workspace, output.isexec, &self.linker)?;
                    self.state.record(&workspace, &output.md5)?;
                }
                report.restored.push(shown);
            }
        }
        self.state.save()?;
        Ok(report)
    }

    /// Re-creates an unchanged output's files with the configured link
    /// type. As DVC does, a plain copy stays when `copy` comes first.
    fn relink_output(&self, output: &DvcOutput, workspace: &Path) -> Result<()> {
        if output.is_dir() {
            return self.restore_dir(&output.md5, workspace, true);
        }
        self.relink_file(&output.md5, workspace, output.isexec)
    }

    fn relink_file(&self, md5: &str, workspace: &Path, executable: bool) -> Result<()> {
        if self.linker.types().first() == Some(&LinkType::Copy) && is_plain_copy(workspace) {
            return Ok(());
        }
        // Made beside and renamed over the old entry, which is never
        // written: a hardlink's object stays as it is.
        self.cache
            .link_file(md5, workspace, executable, &self.linker)?;
        self.state.record(workspace, md5)
    }

    fn restore_dir(&self, oid: &str, workspace: &Path, relink: bool) -> Result<()> {
        let manifest = self.cache.read_manifest(oid)?;
        if !workspace.is_dir() {
            remove_any(workspace)?;
        }
        let mut expected = HashSet::new();
        for entry in manifest.entries() {
            let relative =
                checked_relative(&entry.relpath).ok_or_else(|| DataError::InvalidManifest {
                    path: self.cache.object_path(oid),
                    reason: format!("entry {:?} leaves its directory", entry.relpath),
                })?;
            let destination = workspace.join(relative);
            expected.insert(entry.relpath.clone());
            let unchanged =
                destination.is_file() && self.state.file_md5(&destination)? == entry.md5;
            if unchanged && relink {
                self.relink_file(&entry.md5, &destination, false)?;
                continue;
            }
            if unchanged {
                continue;
            }
            remove_any(&destination)?;
            self.cache
                .link_file(&entry.md5, &destination, false, &self.linker)?;
            self.state.record(&destination, &entry.md5)?;
        }
        // Files the manifest does not list would make the directory differ
        // (files `.dvcignore` excludes are not part of it, and stay).
        for (relpath, path) in self.walk_files(workspace)? {
            if !expected.contains(&relpath) {
                std::fs::remove_file(&path).map_err(|err| DataError::io(&path, err))?;
            }
        }
        Ok(())
    }
}

pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let removed = if metadata.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.map_err(|err| DataError::io(path, err))
}

#[cfg(unix)]
pub(crate) fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
pub(crate) fn is_executable(_metadata: &std::fs::Metadata) -> bool {
    false
}

/// Appends `entry` to `dir/.gitignore` unless a line already says it, as
/// DVC does (adding the missing final newline first).
fn add_gitignore_entry(dir: &Path, entry: &str) -> Result<()> {
    let path = dir.join(".gitignore");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(DataError::io(&path, err)),
    };
    if existing.lines().any(|line| line.trim_end() == entry) {
        return Ok(());
    }
    let mut updated = existing;
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(entry);
    updated.push('\n');
    write_atomic(&path, updated.as_bytes(), None)
}
