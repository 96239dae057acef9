//! Dependencies and outputs on disk, through keel-data: hashes (state cache,
//! files of a directory hashed in parallel, manifests as DVC builds them),
//! committing outputs to `.dvc/cache`, `.gitignore` entries, and removing
//! outputs before a stage runs.

use std::path::{Path, PathBuf};

use keel_data::hashing::{hash_files_parallel, walk_files};
use keel_data::manifest::{Manifest, ManifestEntry};
use keel_data::repo::Repo;

use crate::lockfile::FileHash;
use crate::{PipelineError, Result};

/// The DVC repository a pipeline lives in; safe to share between threads.
#[derive(Debug)]
pub struct Workspace {
    repo: Repo,
}

impl Workspace {
    /// Opens the repository rooted at `root` (it must hold `.dvc/`).
    pub fn open(root: &Path) -> Result<Workspace> {
        if !root.join(".dvc").is_dir() {
            return Err(PipelineError::Usage(format!(
                "{} is not a DVC repository (no .dvc directory); run `keel data init` first",
                root.display()
            )));
        }
        Ok(Workspace {
            repo: Repo::find(root)?,
        })
    }

    pub fn root(&self) -> &Path {
        self.repo.root()
    }

    fn absolute(&self, repo_path: &str) -> PathBuf {
        self.repo.root().join(repo_path)
    }

    /// The hash of a file or directory, `None` when it does not exist.
    /// With `store`, its objects also go into the cache.
    pub fn hash(&self, repo_path: &str, store: bool) -> Result<Option<FileHash>> {
        let absolute = self.absolute(repo_path);
        let Ok(metadata) = std::fs::metadata(&absolute) else {
            return Ok(None);
        };
        if metadata.is_dir() {
            let files = walk_files(&absolute)?;
            let paths: Vec<PathBuf> = files.iter().map(|(_, path)| path.clone()).collect();
            let state = self.repo.state();
            let cache = self.repo.cache();
            let results = hash_files_parallel(&paths, |path| {
                let md5 = state.file_md5(path)?;
                if store {
                    cache.add_file(path, &md5)?;
                }
                Ok(md5)
            });
            let mut entries = Vec::with_capacity(files.len());
            let mut size = 0;
            for ((relpath, path), result) in files.into_iter().zip(results) {
                size += std::fs::metadata(&path)
                    .map_err(|err| PipelineError::io(&path, err))?
                    .len();
                entries.push(ManifestEntry {
                    md5: result?,
                    relpath,
                });
            }
            let manifest = Manifest::new(entries);
            let nfiles = manifest.entries().len() as u64;
            let md5 = if store {
                cache.add_manifest(&manifest)?
            } else {
                manifest.oid()
            };
            return Ok(Some(FileHash {
                md5,
                size,
                nfiles: Some(nfiles),
                isexec: false,
            }));
        }
        let md5 = self.repo.state().file_md5(&absolute)?;
        if store {
            self.repo.cache().add_file(&absolute, &md5)?;
        }
        Ok(Some(FileHash {
            md5,
            size: metadata.len(),
            nfiles: None,
            isexec: is_executable(&metadata),
        }))
    }

    /// Whether every object of a recorded output is in the cache.
    pub fn is_cached(&self, md5: &str) -> bool {
        let cache = self.repo.cache();
        if cache.find(md5).is_none() {
            return false;
        }
        if !md5.ends_with(".dir") {
            return true;
        }
        match cache.read_manifest(md5) {
            Ok(manifest) => manifest
                .entries()
                .iter()
                .all(|entry| cache.find(&entry.md5).is_some()),
            Err(_) => false,
        }
    }

    /// Writes a cached output (file or directory) to the workspace, each
    /// file checked against its md5 on the way.
    pub fn checkout(&self, repo_path: &str, md5: &str, isexec: bool) -> Result<()> {
        self.remove(repo_path)?;
        let absolute = self.absolute(repo_path);
        let cache = self.repo.cache();
        if !md5.ends_with(".dir") {
            cache.checkout_file(md5, &absolute, isexec)?;
            self.repo.state().record(&absolute, md5)?;
            return Ok(());
        }
        let manifest = cache.read_manifest(md5)?;
        std::fs::create_dir_all(&absolute).map_err(|err| PipelineError::io(&absolute, err))?;
        for entry in manifest.entries() {
            let relative = Path::new(&entry.relpath);
            let is_safe = relative
                .components()
                .all(|component| matches!(component, std::path::Component::Normal(_)));
            if !is_safe {
                return Err(PipelineError::invalid(
                    repo_path,
                    format!(
                        "cached directory lists {:?}, which leaves it",
                        entry.relpath
                    ),
                ));
            }
            let destination = absolute.join(relative);
            cache.checkout_file(&entry.md5, &destination, false)?;
            self.repo.state().record(&destination, &entry.md5)?;
        }
        Ok(())
    }

    /// Deletes an output before its stage runs, as DVC does.
    pub fn remove(&self, repo_path: &str) -> Result<()> {
        let absolute = self.absolute(repo_path);
        let Ok(metadata) = std::fs::symlink_metadata(&absolute) else {
            return Ok(());
        };
        let removed = if metadata.is_dir() {
            std::fs::remove_dir_all(&absolute)
        } else {
            std::fs::remove_file(&absolute)
        };
        removed.map_err(|err| PipelineError::io(&absolute, err))
    }

    /// Adds `/name` to the `.gitignore` beside a cached output, as DVC does
    /// (nothing without git). Entries added during this run (`added`, with
    /// the plan index of their stage) are kept in plan order, so stages
    /// finishing out of order leave the file as DVC's one-by-one run does.
    pub fn ignore(
        &self,
        repo_path: &str,
        plan_idx: usize,
        added: &mut Vec<(PathBuf, String, usize)>,
    ) -> Result<()> {
        if self.repo.no_scm() {
            return Ok(());
        }
        let absolute = self.absolute(repo_path);
        let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
            return Ok(());
        };
        let entry = format!("/{}", name.to_string_lossy());
        let gitignore = parent.join(".gitignore");
        let existing = match std::fs::read_to_string(&gitignore) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(PipelineError::io(&gitignore, err)),
        };
        if existing.lines().any(|line| line.trim_end() == entry) {
            return Ok(());
        }
        added.push((gitignore.clone(), entry, plan_idx));
        let mine: Vec<&(PathBuf, String, usize)> = {
            let mut mine: Vec<_> = added
                .iter()
                .filter(|(file, _, _)| *file == gitignore)
                .collect();
            mine.sort_by_key(|(_, _, idx)| *idx);
            mine
        };
        let kept: Vec<&str> = existing
            .lines()
            .filter(|line| !mine.iter().any(|(_, entry, _)| line.trim_end() == entry))
            .collect();
        let mut updated = kept.join("\n");
        if !updated.is_empty() {
            updated.push('\n');
        }
        for (_, entry, _) in mine {
            updated.push_str(entry);
            updated.push('\n');
        }
        crate::lockfile::write_atomic(&gitignore, updated.as_bytes())
    }

    /// The data part of `dvc status`: changed outputs of the `.dvc` files.
    pub fn data_status(&self) -> Result<Vec<keel_data::repo::StatusEntry>> {
        Ok(self.repo.status()?)
    }

    /// Writes the state cache back (hashes learnt during this run).
    pub fn save_state(&self) -> Result<()> {
        Ok(self.repo.state().save()?)
    }
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o100 != 0
}

#[cfg(not(unix))]
fn is_executable(_metadata: &std::fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_hash_to_dvcs_manifest_and_commit_into_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".dvc")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
        std::fs::write(dir.path().join("data/foo"), "foo").expect("write");
        std::fs::write(dir.path().join("data/bar"), "bar").expect("write");
        let workspace = Workspace::open(dir.path()).expect("open");
        let hash = workspace
            .hash("data", false)
            .expect("hash")
            .expect("exists");
        assert_eq!(hash.md5, "5ea40360f5b4ec688df672a4db9c17d1.dir");
        assert_eq!((hash.size, hash.nfiles), (6, Some(2)));
        assert!(!workspace.is_cached(&hash.md5));
        workspace.hash("data", true).expect("commit");
        assert!(workspace.is_cached(&hash.md5));
        assert_eq!(workspace.hash("missing", false).expect("hash"), None);
    }
}
