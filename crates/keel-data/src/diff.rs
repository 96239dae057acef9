//! `diff`: tracked data added, deleted, modified or renamed between two git
//! revisions, or between a revision and the workspace, as `dvc diff` reports
//! it. Directory outputs are expanded through their manifests into one entry
//! per file; a directory is reported as `dir/` beside its files.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::git::Git;
use crate::manifest::Manifest;
use crate::pyjson::PyJson;
use crate::repo::{Repo, TrackedOutput};
use crate::revision::outputs_at;
use crate::{DataError, Result};

/// A path and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffEntry {
    /// Relative to the repository root; directories end with `/`.
    pub path: String,
    pub hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifiedEntry {
    pub path: String,
    pub old_hash: Option<String>,
    pub new_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenamedEntry {
    pub old_path: String,
    pub new_path: String,
    pub hash: Option<String>,
}

/// The changes, each list sorted by path (the old path for renames).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataDiff {
    pub added: Vec<DiffEntry>,
    pub deleted: Vec<DiffEntry>,
    pub modified: Vec<ModifiedEntry>,
    pub renamed: Vec<RenamedEntry>,
    /// Entries of the old revision whose object is not in the cache; only
    /// computed against the workspace, as DVC does.
    pub not_in_cache: Vec<DiffEntry>,
}

impl DataDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.deleted.is_empty()
            && self.modified.is_empty()
            && self.renamed.is_empty()
            && self.not_in_cache.is_empty()
    }

    /// `dvc diff --json`: `{}` when nothing changed; `"not in cache"` only
    /// with `with_missing`; hashes only with `show_hash`.
    pub fn to_dvc_json(&self, show_hash: bool, with_missing: bool) -> String {
        if self.is_empty() {
            return "{}".to_owned();
        }
        let entry = |entry: &DiffEntry| {
            let mut fields = vec![("path".to_owned(), PyJson::String(entry.path.clone()))];
            if show_hash {
                fields.push((
                    "hash".to_owned(),
                    PyJson::optional_string(entry.hash.as_deref()),
                ));
            }
            PyJson::Object(fields)
        };
        let modified = |entry: &ModifiedEntry| {
            let mut fields = vec![("path".to_owned(), PyJson::String(entry.path.clone()))];
            if show_hash {
                let hash = PyJson::object([
                    ("old", PyJson::optional_string(entry.old_hash.as_deref())),
                    ("new", PyJson::optional_string(entry.new_hash.as_deref())),
                ]);
                fields.push(("hash".to_owned(), hash));
            }
            PyJson::Object(fields)
        };
        let renamed = |entry: &RenamedEntry| {
            let path = PyJson::object([
                ("old", PyJson::String(entry.old_path.clone())),
                ("new", PyJson::String(entry.new_path.clone())),
            ]);
            let mut fields = vec![("path".to_owned(), path)];
            if show_hash {
                fields.push((
                    "hash".to_owned(),
                    PyJson::optional_string(entry.hash.as_deref()),
                ));
            }
            PyJson::Object(fields)
        };
        let mut fields = vec![
            (
                "added".to_owned(),
                PyJson::List(self.added.iter().map(entry).collect()),
            ),
            (
                "deleted".to_owned(),
                PyJson::List(self.deleted.iter().map(entry).collect()),
            ),
            (
                "modified".to_owned(),
                PyJson::List(self.modified.iter().map(modified).collect()),
            ),
            (
                "renamed".to_owned(),
                PyJson::List(self.renamed.iter().map(renamed).collect()),
            ),
        ];
        if with_missing {
            fields.push((
                "not in cache".to_owned(),
                PyJson::List(self.not_in_cache.iter().map(entry).collect()),
            ));
        }
        PyJson::Object(fields).dumps()
    }
}

/// One path of a side of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexEntry {
    hash: Option<String>,
    isdir: bool,
}

/// What a revision (or the workspace) holds under its outputs.
#[derive(Debug, Default)]
struct SideIndex {
    entries: BTreeMap<String, IndexEntry>,
    /// Directory outputs whose manifest is not in the cache: what they hold
    /// is unknown, so changes below them are not reported.
    unknown_dirs: BTreeSet<String>,
}

impl SideIndex {
    fn add_file_entries(&mut self, root: &str, manifest: &Manifest) {
        for entry in manifest.entries() {
            let mut parent = root.to_owned();
            let mut parts = entry.relpath.split('/').peekable();
            while let Some(part) = parts.next() {
                parent.push('/');
                parent.push_str(part);
                if parts.peek().is_some() {
                    self.entries.entry(parent.clone()).or_insert(IndexEntry {
                        hash: None,
                        isdir: true,
                    });
                } else {
                    self.entries.insert(
                        parent.clone(),
                        IndexEntry {
                            hash: Some(entry.md5.clone()),
                            isdir: false,
                        },
                    );
                }
            }
        }
    }

    /// A revision's outputs, directories expanded from the cache.
    fn from_revision(repo: &Repo, outputs: &[TrackedOutput]) -> Result<SideIndex> {
        let mut index = SideIndex::default();
        let mut manifests: HashMap<String, Manifest> = HashMap::new();
        for tracked in outputs {
            let isdir = tracked.output.is_dir();
            index.entries.insert(
                tracked.shown.clone(),
                IndexEntry {
                    hash: Some(tracked.output.md5.clone()),
                    isdir,
                },
            );
            if !isdir {
                continue;
            }
            let oid = &tracked.output.md5;
            if !manifests.contains_key(oid) {
                if repo.cache().find(oid).is_none() {
                    index.unknown_dirs.insert(tracked.shown.clone());
                    continue;
                }
                manifests.insert(oid.clone(), repo.cache().read_manifest(oid)?);
            }
            if let Some(manifest) = manifests.get(oid) {
                index.add_file_entries(&tracked.shown, manifest);
            }
        }
        Ok(index)
    }

    /// The workspace under the workspace's outputs, hashed (through the
    /// state cache); missing outputs have no entry.
    fn from_workspace(repo: &Repo) -> Result<SideIndex> {
        let mut index = SideIndex::default();
        for tracked in repo.tracked_outputs()? {
            let path = repo.root().join(&tracked.shown);
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                let (manifest, _) = repo.hash_dir(&path, false)?;
                index.entries.insert(
                    tracked.shown.clone(),
                    IndexEntry {
                        hash: Some(manifest.oid()),
                        isdir: true,
                    },
                );
                index.add_file_entries(&tracked.shown, &manifest);
            } else {
                index.entries.insert(
                    tracked.shown.clone(),
                    IndexEntry {
                        hash: Some(repo.state().file_md5(&path)?),
                        isdir: false,
                    },
                );
            }
        }
        repo.state().save()?;
        Ok(index)
    }

    /// Whether `key` lies below a directory whose content is unknown.
    fn is_unknown(&self, key: &str) -> bool {
        key.match_indices('/')
            .any(|(slash_idx, _)| self.unknown_dirs.contains(&key[..slash_idx]))
    }
}

fn shown_path(key: &str, entry: &IndexEntry) -> String {
    if entry.isdir {
        format!("{key}/")
    } else {
        key.to_owned()
    }
}

/// Compares revision `a_rev` (default `HEAD`) with `b_rev`, or with the
/// workspace when `b_rev` is `None`.
pub fn diff(repo: &Repo, a_rev: Option<&str>, b_rev: Option<&str>) -> Result<DataDiff> {
    if repo.no_scm() {
        return Err(DataError::Usage(
            "diff compares git revisions, and this repository has no git (core.no_scm)".to_owned(),
        ));
    }
    let git = Git::open(repo.root())?;
    if git.head()?.is_none() {
        // As DVC: nothing to compare before the first commit.
        return Ok(DataDiff::default());
    }
    let resolve = |rev: &str| -> Result<String> {
        git.resolve_commit(rev)?
            .ok_or_else(|| DataError::Usage(format!("unknown git revision '{rev}'")))
    };
    let a_commit = resolve(a_rev.unwrap_or("HEAD"))?;
    let b_commit = b_rev.map(resolve).transpose()?;
    if b_commit.as_deref() == Some(a_commit.as_str()) {
        return Ok(DataDiff::default());
    }
    let mut commits = vec![a_commit];
    commits.extend(b_commit.iter().cloned());
    let mut outputs = outputs_at(&git, &commits)?.into_iter();
    let old = SideIndex::from_revision(repo, &outputs.next().unwrap_or_default())?;
    let new = match outputs.next() {
        Some(b_outputs) => SideIndex::from_revision(repo, &b_outputs)?,
        None => SideIndex::from_workspace(repo)?,
    };
    let with_missing = b_rev.is_none();
    Ok(compare(&old, &new, with_missing, |oid| {
        repo.cache().find(oid).is_some()
    }))
}

fn compare(
    old: &SideIndex,
    new: &SideIndex,
    with_missing: bool,
    in_cache: impl Fn(&str) -> bool,
) -> DataDiff {
    let mut result = DataDiff::default();
    let mut added: Vec<(&str, &IndexEntry)> = Vec::new();
    let mut deleted: Vec<(&str, &IndexEntry)> = Vec::new();
    let keys: BTreeSet<&str> = old
        .entries
        .keys()
        .chain(new.entries.keys())
        .map(String::as_str)
        .collect();
    for key in keys {
        let old_entry = old.entries.get(key);
        let new_entry = new.entries.get(key);
        // Directories inside an output have no hash of their own.
        let hashless_dir = |entry: Option<&IndexEntry>| {
            entry.is_some_and(|entry| entry.isdir && entry.hash.is_none())
        };
        if hashless_dir(old_entry) || hashless_dir(new_entry) {
            continue;
        }
        let unknown = old.is_unknown(key) || new.is_unknown(key);
        if !unknown {
            match (old_entry, new_entry) {
                (None, Some(new_entry)) => added.push((key, new_entry)),
                (Some(old_entry), None) => deleted.push((key, old_entry)),
                (Some(old_entry), Some(new_entry))
                    if old_entry.isdir != new_entry.isdir || old_entry.hash != new_entry.hash =>
                {
                    result.modified.push(ModifiedEntry {
                        path: shown_path(key, old_entry),
                        old_hash: old_entry.hash.clone(),
                        new_hash: new_entry.hash.clone(),
                    });
                }
                _ => {}
            }
        }
        if let Some(old_entry) = old_entry {
            if let Some(hash) = old_entry.hash.as_deref() {
                if with_missing && !in_cache(hash) {
                    result.not_in_cache.push(DiffEntry {
                        path: shown_path(key, old_entry),
                        hash: Some(hash.to_owned()),
                    });
                }
            }
        }
    }
    // An addition with the hash of a deletion is a rename; pairs are made in
    // path order, as DVC makes them.
    let mut deletions_by_hash: HashMap<&str, VecDeque<(&str, &IndexEntry)>> = HashMap::new();
    for deletion in &deleted {
        if let Some(hash) = deletion.1.hash.as_deref() {
            deletions_by_hash
                .entry(hash)
                .or_default()
                .push_back(*deletion);
        }
    }
    let mut renamed_keys = BTreeSet::new();
    for (key, new_entry) in added {
        let pair = new_entry
            .hash
            .as_deref()
            .and_then(|hash| deletions_by_hash.get_mut(hash))
            .and_then(VecDeque::pop_front);
        match pair {
            Some((old_key, old_entry)) => {
                renamed_keys.insert(old_key);
                result.renamed.push(RenamedEntry {
                    old_path: shown_path(old_key, old_entry),
                    new_path: shown_path(key, new_entry),
                    hash: old_entry.hash.clone(),
                });
            }
            None => result.added.push(DiffEntry {
                path: shown_path(key, new_entry),
                hash: new_entry.hash.clone(),
            }),
        }
    }
    for (key, old_entry) in deleted {
        if !renamed_keys.contains(key) {
            result.deleted.push(DiffEntry {
                path: shown_path(key, old_entry),
                hash: old_entry.hash.clone(),
            });
        }
    }
    result
        .added
        .sort_by(|left, right| left.path.cmp(&right.path));
    result
        .deleted
        .sort_by(|left, right| left.path.cmp(&right.path));
    result
        .modified
        .sort_by(|left, right| left.path.cmp(&right.path));
    result
        .renamed
        .sort_by(|left, right| left.old_path.cmp(&right.old_path));
    result
        .not_in_cache
        .sort_by(|left, right| left.path.cmp(&right.path));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(hash: &str) -> IndexEntry {
        IndexEntry {
            hash: Some(hash.to_owned()),
            isdir: false,
        }
    }

    fn side(entries: &[(&str, IndexEntry)]) -> SideIndex {
        SideIndex {
            entries: entries
                .iter()
                .map(|(key, entry)| ((*key).to_owned(), entry.clone()))
                .collect(),
            unknown_dirs: BTreeSet::new(),
        }
    }

    #[test]
    fn moved_file_is_a_rename_and_a_copy_is_an_addition() {
        let old = side(&[("a", file("1")), ("keep", file("2"))]);
        let new = side(&[("b", file("1")), ("keep", file("2")), ("copy", file("2"))]);
        let result = compare(&old, &new, false, |_| true);
        assert_eq!(
            result.renamed,
            [RenamedEntry {
                old_path: "a".into(),
                new_path: "b".into(),
                hash: Some("1".into())
            }]
        );
        assert_eq!(result.added.len(), 1);
        assert_eq!(result.added[0].path, "copy");
        assert!(result.deleted.is_empty() && result.modified.is_empty());
    }

    #[test]
    fn files_below_a_directory_with_an_unknown_manifest_are_not_reported() {
        let dir = IndexEntry {
            hash: Some("d.dir".into()),
            isdir: true,
        };
        let mut old = side(&[("data", dir.clone())]);
        old.unknown_dirs.insert("data".into());
        let new = side(&[("data", dir), ("data/x", file("1"))]);
        let result = compare(&old, &new, true, |hash| hash != "d.dir");
        assert!(result.added.is_empty(), "{result:?}");
        assert_eq!(
            result.not_in_cache,
            [DiffEntry {
                path: "data/".into(),
                hash: Some("d.dir".into())
            }]
        );
    }
}
