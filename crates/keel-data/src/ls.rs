//! `ls`: the repository's files as `dvc ls` lists them for a local
//! repository — the workspace merged with what the `.dvc` files track
//! (outputs and, through cached manifests, the files of directory outputs),
//! so tracked data shows up even where the workspace lacks it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::hashing::walk_files;
use crate::pyjson::PyJson;
use crate::repo::{display_relative, is_executable, Repo};
use crate::{DataError, Result};

/// One listed entry, with the fields of `dvc ls --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsEntry {
    /// Relative to the listed directory, `/`-separated.
    pub path: String,
    /// Tracked by a `.dvc` file (an output, or inside a directory output).
    pub isout: bool,
    pub isdir: bool,
    pub isexec: bool,
    pub size: Option<u64>,
    /// The md5 DVC records (`.dir` for directory outputs).
    pub md5: Option<String>,
}

impl LsEntry {
    fn to_json(&self) -> PyJson {
        PyJson::object([
            ("isout", PyJson::Bool(self.isout)),
            ("isdir", PyJson::Bool(self.isdir)),
            ("isexec", PyJson::Bool(self.isexec)),
            ("size", self.size.map_or(PyJson::Null, PyJson::Number)),
            ("md5", PyJson::optional_string(self.md5.as_deref())),
            ("path", PyJson::String(self.path.clone())),
        ])
    }
}

/// `dvc ls --json`'s text for `entries`.
pub fn to_dvc_json(entries: &[LsEntry]) -> String {
    PyJson::List(entries.iter().map(LsEntry::to_json).collect()).dumps()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LsOptions {
    /// Every file below the path instead of its direct children.
    pub recursive: bool,
    /// Only what `.dvc` files track (and the directories leading to it).
    pub dvc_only: bool,
}

/// What the `.dvc` files say about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TrackedNode {
    isout: bool,
    isdir: bool,
    isexec: bool,
    size: Option<u64>,
    md5: Option<String>,
}

/// What the workspace says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DiskNode {
    isdir: bool,
    isexec: bool,
    size: u64,
}

fn disk_node(path: &Path) -> Option<DiskNode> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(DiskNode {
        isdir: metadata.is_dir(),
        isexec: metadata.is_file() && is_executable(&metadata),
        size: metadata.len(),
    })
}

/// Every tracked path (relative to the root): outputs, the files and
/// directories inside directory outputs whose manifest is cached, and the
/// directories that lead to outputs.
fn tracked_tree(repo: &Repo) -> Result<BTreeMap<String, TrackedNode>> {
    let mut tree = BTreeMap::new();
    for tracked in repo.tracked_outputs()? {
        let key = tracked.shown.clone();
        let mut parent = String::new();
        for part in key
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, parents)| parents)
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            tree.entry(parent.clone()).or_insert(TrackedNode {
                isout: false,
                isdir: true,
                isexec: false,
                size: None,
                md5: None,
            });
        }
        let output = &tracked.output;
        tree.insert(
            key.clone(),
            TrackedNode {
                isout: true,
                isdir: output.is_dir(),
                isexec: output.isexec,
                size: output.size,
                md5: Some(output.md5.clone()),
            },
        );
        if !output.is_dir() || repo.cache().find(&output.md5).is_none() {
            continue;
        }
        for entry in repo.cache().read_manifest(&output.md5)?.entries() {
            let mut path = key.clone();
            let mut parts = entry.relpath.split('/').peekable();
            while let Some(part) = parts.next() {
                path.push('/');
                path.push_str(part);
                let is_file = parts.peek().is_none();
                tree.entry(path.clone()).or_insert(TrackedNode {
                    isout: true,
                    isdir: !is_file,
                    isexec: false,
                    size: None,
                    md5: is_file.then(|| entry.md5.clone()),
                });
            }
        }
    }
    Ok(tree)
}

/// Lists `target` (a path in the repository): its direct children, every
/// file below it with `recursive`, or the entry itself when it is a file.
pub fn ls(repo: &Repo, target: &Path, options: LsOptions) -> Result<Vec<LsEntry>> {
    let absolute = if target.is_absolute() {
        target.to_path_buf()
    } else {
        repo.root().join(target)
    };
    // Canonical like the root, so a symlinked path to the repository works.
    let absolute = std::fs::canonicalize(&absolute).unwrap_or_else(|_| normalize(&absolute));
    if !absolute.starts_with(repo.root()) {
        return Err(DataError::Usage(format!(
            "{}: outside the repository {}",
            target.display(),
            repo.root().display()
        )));
    }
    let base = display_relative(repo.root(), &absolute);
    let tracked = tracked_tree(repo)?;
    let on_disk = if options.dvc_only {
        None
    } else {
        disk_node(&absolute)
    };
    let tracked_base = tracked.get(&base);
    if on_disk.is_none() && tracked_base.is_none() && !base.is_empty() {
        return Err(DataError::Usage(format!(
            "{}: no such file or directory",
            absolute.display()
        )));
    }
    let is_dir = match (on_disk, tracked_base) {
        (Some(disk), _) => disk.isdir,
        (None, Some(node)) => node.isdir,
        (None, None) => true,
    };
    if !is_dir {
        let name = base.rsplit('/').next().unwrap_or(&base).to_owned();
        return Ok(vec![merge(name, on_disk, tracked_base)]);
    }
    let prefix = if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    };
    let mut disk_children: BTreeMap<String, DiskNode> = BTreeMap::new();
    if !options.dvc_only && absolute.is_dir() {
        if options.recursive {
            for (relpath, path) in walk_files(&absolute)? {
                if let Some(node) = disk_node(&path) {
                    disk_children.insert(relpath, node);
                }
            }
        } else {
            let read_dir =
                std::fs::read_dir(&absolute).map_err(|err| DataError::io(&absolute, err))?;
            for dir_entry in read_dir {
                let dir_entry = dir_entry.map_err(|err| DataError::io(&absolute, err))?;
                let Ok(name) = dir_entry.file_name().into_string() else {
                    continue;
                };
                if name == ".git" || name == ".dvc" {
                    continue;
                }
                if let Some(node) = disk_node(&dir_entry.path()) {
                    disk_children.insert(name, node);
                }
            }
        }
    }
    let mut tracked_children: BTreeMap<String, &TrackedNode> = BTreeMap::new();
    for (key, node) in tracked.range(prefix.clone()..) {
        let Some(relative) = key.strip_prefix(&prefix) else {
            break;
        };
        if relative.is_empty() {
            continue;
        }
        let is_child = !relative.contains('/');
        if (options.recursive && !node.isdir) || (!options.recursive && is_child) {
            tracked_children.insert(relative.to_owned(), node);
        }
    }
    let mut names: Vec<&String> = disk_children
        .keys()
        .chain(tracked_children.keys())
        .collect();
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|name| {
            merge(
                name.clone(),
                disk_children.get(name).copied(),
                tracked_children.get(name).copied(),
            )
        })
        .collect())
}

/// The workspace decides what it can see (type, size, executable bit); the
/// `.dvc` files decide whether it is tracked and its md5.
fn merge(path: String, disk: Option<DiskNode>, tracked: Option<&TrackedNode>) -> LsEntry {
    let (isout, md5) = tracked.map_or((false, None), |node| (node.isout, node.md5.clone()));
    match (disk, tracked) {
        (Some(disk), _) => LsEntry {
            path,
            isout,
            isdir: disk.isdir,
            isexec: disk.isexec,
            size: Some(disk.size),
            md5,
        },
        (None, Some(node)) => LsEntry {
            path,
            isout,
            isdir: node.isdir,
            isexec: node.isexec,
            size: node.size,
            md5,
        },
        (None, None) => LsEntry {
            path,
            isout,
            isdir: false,
            isexec: false,
            size: None,
            md5,
        },
    }
}

/// `path` with `.` dropped and `..` folded.
fn normalize(path: &Path) -> std::path::PathBuf {
    let mut normalized = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normalized.pop();
            }
            other => normalized.push(other.as_os_str()),
        }
    }
    normalized
}
