//! `dvc.lock` as DVC writes it: `schema: '2.0'`, then `stages`, one entry
//! per stage that ran, in the order DVC's sequential `repro` would have
//! added them; an entry holds `cmd`, `deps`, `params`, `outs` in that order,
//! deps and outs sorted by path, each `{path, hash: md5, md5, size[, nfiles][, isexec]}`,
//! params per file (`params.yaml` first, then the others by name), keys sorted.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::emit::key_string;
use crate::project::{DEFAULT_PARAMS_FILE, LOCK_FILE};
use crate::{PipelineError, Result};

/// What `dvc.lock` records of one dependency or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    /// md5 of the file, or `<md5 of the manifest>.dir` for a directory.
    pub md5: String,
    pub size: u64,
    pub nfiles: Option<u64>,
    pub isexec: bool,
}

impl FileHash {
    fn to_lock_value(&self, def_path: &str) -> Value {
        let mut entry = Mapping::new();
        entry.insert("path".into(), def_path.into());
        entry.insert("hash".into(), "md5".into());
        entry.insert("md5".into(), self.md5.clone().into());
        entry.insert("size".into(), self.size.into());
        if let Some(nfiles) = self.nfiles {
            entry.insert("nfiles".into(), nfiles.into());
        }
        if self.isexec {
            entry.insert("isexec".into(), true.into());
        }
        Value::Mapping(entry)
    }
}

/// One stage's lock entry, as computed after it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct StageLock {
    pub cmd: Value,
    /// (path as written in dvc.yaml, hash)
    pub deps: Vec<(String, FileHash)>,
    /// (params file as written, key → value); keys as DVC stores them.
    pub params: Vec<(String, Mapping)>,
    pub outs: Vec<(String, FileHash)>,
}

impl StageLock {
    /// The entry as DVC's `to_single_stage_lockfile` builds it.
    pub fn to_value(&self) -> Value {
        let mut entry = Mapping::new();
        entry.insert("cmd".into(), self.cmd.clone());
        let sorted_files = |files: &[(String, FileHash)]| -> Value {
            let mut files: Vec<&(String, FileHash)> = files.iter().collect();
            files.sort_by(|left, right| left.0.cmp(&right.0));
            Value::Sequence(
                files
                    .into_iter()
                    .map(|(path, hash)| hash.to_lock_value(path))
                    .collect(),
            )
        };
        if !self.deps.is_empty() {
            entry.insert("deps".into(), sorted_files(&self.deps));
        }
        if !self.params.is_empty() {
            let mut files: Vec<&(String, Mapping)> = self.params.iter().collect();
            files.sort_by(|left, right| {
                let left_default = left.0 == DEFAULT_PARAMS_FILE;
                let right_default = right.0 == DEFAULT_PARAMS_FILE;
                right_default.cmp(&left_default).then(left.0.cmp(&right.0))
            });
            let mut params = Mapping::new();
            for (file, values) in files {
                let mut keys: Vec<(&Value, &Value)> = values.iter().collect();
                keys.sort_by_key(|(key, _)| key_string(key));
                let sorted: Mapping = keys
                    .into_iter()
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                params.insert(file.clone().into(), Value::Mapping(sorted));
            }
            entry.insert("params".into(), Value::Mapping(params));
        }
        if !self.outs.is_empty() {
            entry.insert("outs".into(), sorted_files(&self.outs));
        }
        Value::Mapping(entry)
    }
}

/// A recorded dependency or output, read back from `dvc.lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedFile {
    pub path: String,
    pub md5: Option<String>,
    pub isexec: bool,
}

/// A stage's entry as read from `dvc.lock`.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedStage {
    pub cmd: Option<Value>,
    pub deps: Vec<LockedFile>,
    /// params file → recorded key → value
    pub params: Vec<(String, Mapping)>,
    pub outs: Vec<LockedFile>,
}

impl LockedStage {
    pub fn dep(&self, def_path: &str) -> Option<&LockedFile> {
        self.deps.iter().find(|file| file.path == def_path)
    }
    pub fn out(&self, def_path: &str) -> Option<&LockedFile> {
        self.outs.iter().find(|file| file.path == def_path)
    }
    pub fn params_of(&self, def_path: &str) -> Option<&Mapping> {
        self.params
            .iter()
            .find_map(|(file, values)| (file == def_path).then_some(values))
    }
}

/// The lock file of a project, kept as a YAML document so entries Keel
/// does not touch are written back as they were read.
#[derive(Debug, Clone)]
pub struct Lockfile {
    path: PathBuf,
    document: Mapping,
    /// Stages added since loading, with their plan index, to place them in
    /// DVC's sequential order whatever order they finish in.
    added: Vec<(String, usize)>,
}

fn invalid(message: impl Into<String>) -> PipelineError {
    PipelineError::invalid(LOCK_FILE, message)
}

impl Lockfile {
    /// Reads `<root>/dvc.lock` (an absent file is an empty lock).
    pub fn load(root: &Path) -> Result<Lockfile> {
        let path = root.join(LOCK_FILE);
        let document = match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Mapping::new(),
            Ok(text) => match serde_yaml_ng::from_str::<Value>(&text)
                .map_err(|err| invalid(format!("not valid YAML: {err}")))?
            {
                Value::Mapping(document) => document,
                Value::Null => Mapping::new(),
                _ => return Err(invalid("expected a mapping at the top level")),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Mapping::new(),
            Err(err) => return Err(PipelineError::io(&path, err)),
        };
        if let Some(schema) = document.get("schema") {
            if schema.as_str() != Some("2.0") {
                return Err(invalid(format!(
                    "unsupported schema {}; Keel reads schema '2.0' lock files (DVC 2 and 3)",
                    serde_yaml_ng::to_string(schema).unwrap_or_default().trim()
                )));
            }
        } else if !document.is_empty() {
            return Err(invalid(
                "no 'schema' key: a DVC 1 lock file; run `dvc repro` with DVC 2+ once to upgrade it",
            ));
        }
        Ok(Lockfile {
            path,
            document,
            added: Vec::new(),
        })
    }

    fn stages(&self) -> Option<&Mapping> {
        self.document.get("stages").and_then(Value::as_mapping)
    }

    /// The recorded entry of a stage.
    pub fn stage(&self, name: &str) -> Result<Option<LockedStage>> {
        let Some(entry) = self.stages().and_then(|stages| stages.get(name)) else {
            return Ok(None);
        };
        let Value::Mapping(entry) = entry else {
            return Err(invalid(format!(
                "stage '{name}': the entry must be a mapping"
            )));
        };
        let files = |key: &str| -> Result<Vec<LockedFile>> {
            let Some(items) = entry.get(key) else {
                return Ok(Vec::new());
            };
            let Value::Sequence(items) = items else {
                return Err(invalid(format!("stage '{name}': '{key}' must be a list")));
            };
            items
                .iter()
                .map(|item| {
                    let path = item.get("path").and_then(Value::as_str).ok_or_else(|| {
                        invalid(format!("stage '{name}': an entry of '{key}' has no 'path'"))
                    })?;
                    Ok(LockedFile {
                        path: path.to_owned(),
                        md5: item.get("md5").and_then(Value::as_str).map(str::to_owned),
                        isexec: item.get("isexec").and_then(Value::as_bool).unwrap_or(false),
                    })
                })
                .collect()
        };
        let mut params = Vec::new();
        if let Some(Value::Mapping(files)) = entry.get("params") {
            for (file, values) in files {
                let values = values.as_mapping().cloned().unwrap_or_default();
                params.push((key_string(file), values));
            }
        }
        Ok(Some(LockedStage {
            cmd: entry.get("cmd").cloned(),
            deps: files("deps")?,
            params,
            outs: files("outs")?,
        }))
    }

    /// Records a stage's entry. A stage already in the file keeps its place;
    /// a new one goes after the existing ones, among the stages added since
    /// loading in plan order (`plan_idx`), as DVC's one-by-one `repro` adds them.
    pub fn set_stage(&mut self, name: &str, entry: Value, plan_idx: usize) {
        if !self.document.contains_key("schema") {
            let mut document = Mapping::new();
            document.insert("schema".into(), "2.0".into());
            for (key, value) in std::mem::take(&mut self.document) {
                document.insert(key, value);
            }
            self.document = document;
        }
        if !matches!(self.document.get("stages"), Some(Value::Mapping(_))) {
            self.document
                .insert("stages".into(), Value::Mapping(Mapping::new()));
        }
        let Some(Value::Mapping(stages)) = self.document.get_mut("stages") else {
            return;
        };
        if let Some(existing) = stages.get_mut(name) {
            *existing = entry;
            return;
        }
        // Stages added since loading sit at the end; find where this one goes.
        let later_added: Vec<String> = self
            .added
            .iter()
            .filter(|(_, added_idx)| *added_idx > plan_idx)
            .map(|(added_name, _)| added_name.clone())
            .collect();
        self.added.push((name.to_owned(), plan_idx));
        let mut entries: Vec<(Value, Value)> = std::mem::take(stages).into_iter().collect();
        let position = entries
            .iter()
            .position(|(key, _)| later_added.contains(&key_string(key)))
            .unwrap_or(entries.len());
        entries.insert(position, (name.into(), entry));
        *stages = entries.into_iter().collect();
    }

    /// The file's text as DVC would write it.
    pub fn to_yaml(&self) -> Result<String> {
        crate::emit::to_yaml(&self.document).map_err(|unsupported| {
            invalid(format!(
                "{:?} holds U+0085, U+2028 or U+2029, which Keel cannot write as DVC does",
                unsupported.0
            ))
        })
    }

    /// Writes the file whole or not at all (temp file beside it, then rename).
    pub fn save(&self) -> Result<()> {
        let text = self.to_yaml()?;
        write_atomic(&self.path, text.as_bytes())
    }
}

/// Writes `bytes` to `destination` through a synced temp file and a rename.
pub(crate) fn write_atomic(destination: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = destination.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".keel-tmp-")
        .tempfile_in(dir)
        .map_err(|err| PipelineError::io(dir, err))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|err| PipelineError::io(temp.path(), err))?;
    temp.persist(destination)
        .map_err(|err| PipelineError::io(destination, err.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(md5: &str, size: u64) -> FileHash {
        FileHash {
            md5: md5.to_owned(),
            size,
            nfiles: None,
            isexec: false,
        }
    }

    #[test]
    fn entries_are_written_in_dvcs_order_and_style() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lock = Lockfile::load(dir.path()).expect("load");
        let mut params_values = Mapping::new();
        params_values.insert("train.lr".into(), 0.01.into());
        params_values.insert("seed".into(), 7.into());
        let mut other = Mapping::new();
        other.insert("a".into(), "yes".into());
        let entry = StageLock {
            cmd: "python train.py".into(),
            deps: vec![
                (
                    "train.py".into(),
                    file("acbd18db4cc2f85cedef654fccc4a4d8", 3),
                ),
                (
                    "data".into(),
                    FileHash {
                        md5: "5ea40360f5b4ec688df672a4db9c17d1.dir".into(),
                        size: 6,
                        nfiles: Some(2),
                        isexec: false,
                    },
                ),
            ],
            params: vec![
                ("b.json".into(), other),
                ("params.yaml".into(), params_values),
            ],
            outs: vec![(
                "model.pkl".into(),
                file("37b51d194a7513e45b56f6524f2d51f2", 3),
            )],
        };
        lock.set_stage("train", entry.to_value(), 0);
        let expected = "schema: '2.0'\nstages:\n  train:\n    cmd: python train.py\n    deps:\n    - path: data\n      hash: md5\n      md5: 5ea40360f5b4ec688df672a4db9c17d1.dir\n      size: 6\n      nfiles: 2\n    - path: train.py\n      hash: md5\n      md5: acbd18db4cc2f85cedef654fccc4a4d8\n      size: 3\n    params:\n      params.yaml:\n        seed: 7\n        train.lr: 0.01\n      b.json:\n        a: yes\n    outs:\n    - path: model.pkl\n      hash: md5\n      md5: 37b51d194a7513e45b56f6524f2d51f2\n      size: 3\n";
        assert_eq!(lock.to_yaml().expect("yaml"), expected);
        lock.save().expect("save");
        let reloaded = Lockfile::load(dir.path()).expect("reload");
        assert_eq!(reloaded.to_yaml().expect("yaml"), expected);
        let locked = reloaded.stage("train").expect("read").expect("present");
        assert_eq!(
            locked.dep("data").and_then(|dep| dep.md5.as_deref()),
            Some("5ea40360f5b4ec688df672a4db9c17d1.dir")
        );
        assert_eq!(locked.params_of("params.yaml").map(Mapping::len), Some(2));
    }

    #[test]
    fn new_stages_land_in_plan_order_whatever_order_they_finish() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("dvc.lock"),
            "schema: '2.0'\nstages:\n  old:\n    cmd: x\n",
        )
        .expect("write");
        let mut lock = Lockfile::load(dir.path()).expect("load");
        let entry = |cmd: &str| {
            StageLock {
                cmd: cmd.into(),
                deps: vec![],
                params: vec![],
                outs: vec![],
            }
            .to_value()
        };
        lock.set_stage("c", entry("c"), 5);
        lock.set_stage("a", entry("a"), 1);
        lock.set_stage("b", entry("b"), 3);
        lock.set_stage("old", entry("y"), 0);
        let names: Vec<String> = lock
            .stages()
            .expect("stages")
            .keys()
            .map(key_string)
            .collect();
        assert_eq!(names, ["old", "a", "b", "c"]);
    }
}
