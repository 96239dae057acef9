//! A trial's own copy of the repository, so trials run side by side without
//! touching each other or the user's workspace: small files are copied,
//! large ones (data) hard-linked when the filesystem allows. `.git`, the DVC
//! cache and `.dvc/tmp` (where the trials live) are left out, and so are the
//! swept stage's outputs, which the trial makes anew.
//!
//! A stage must not write into its dependencies in place: a hard-linked
//! dependency is the user's file. Stages that replace files (write a new
//! file, then rename, or delete and recreate, as DVC expects of outputs) are
//! safe.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::stage::Stage;
use crate::{params, PipelineError, Result};

/// Files larger than this are hard-linked rather than copied.
const LINK_ABOVE_BYTES: u64 = 4 << 20;

/// Repository paths never copied into a trial.
const SKIPPED: [&str; 3] = [".git", ".dvc/cache", ".dvc/tmp"];

/// Makes `destination` a fresh copy of the repository at `root`, without the
/// repository-relative paths in `skip_outputs`.
pub fn populate(root: &Path, destination: &Path, skip_outputs: &[String]) -> Result<()> {
    if destination.exists() {
        std::fs::remove_dir_all(destination).map_err(|err| PipelineError::io(destination, err))?;
    }
    std::fs::create_dir_all(destination).map_err(|err| PipelineError::io(destination, err))?;
    let skipped: HashSet<String> = SKIPPED
        .iter()
        .map(|path| (*path).to_owned())
        .chain(skip_outputs.iter().cloned())
        .collect();
    copy_tree(root, destination, "", &skipped)
}

fn copy_tree(
    source: &Path,
    destination: &Path,
    relative: &str,
    skipped: &HashSet<String>,
) -> Result<()> {
    let entries = std::fs::read_dir(source).map_err(|err| PipelineError::io(source, err))?;
    for entry in entries {
        let entry = entry.map_err(|err| PipelineError::io(source, err))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let child_relative = if relative.is_empty() {
            name.to_string()
        } else {
            format!("{relative}/{name}")
        };
        if skipped.contains(&child_relative) {
            continue;
        }
        let from = entry.path();
        let to = destination.join(&*name);
        let file_type = entry
            .file_type()
            .map_err(|err| PipelineError::io(&from, err))?;
        if file_type.is_symlink() {
            let target = std::fs::read_link(&from).map_err(|err| PipelineError::io(&from, err))?;
            symlink(&target, &to)?;
        } else if file_type.is_dir() {
            std::fs::create_dir_all(&to).map_err(|err| PipelineError::io(&to, err))?;
            copy_tree(&from, &to, &child_relative, skipped)?;
        } else if file_type.is_file() {
            let size = entry
                .metadata()
                .map_err(|err| PipelineError::io(&from, err))?
                .len();
            if size <= LINK_ABOVE_BYTES || std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).map_err(|err| PipelineError::io(&from, err))?;
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(|err| PipelineError::io(link, err))
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::fs::copy(target, link)
        .map(|_| ())
        .map_err(|err| PipelineError::io(link, err))
}

/// Which file of `stage` holds parameter `key` (`file:dotted.key`, or the
/// params file the stage declares the key from, else `params.yaml`), as a
/// repository-relative path, and the dotted key inside it.
pub fn param_location(stage: &Stage, key: &str) -> (String, String) {
    if let Some((file, dotted)) = key.split_once(':') {
        return (stage.repo_path(file), dotted.to_owned());
    }
    let declared = stage.params.iter().find(|dep| {
        dep.keys
            .iter()
            .any(|declared| declared == key || key.starts_with(&format!("{declared}.")))
    });
    let file = declared.map_or(crate::project::DEFAULT_PARAMS_FILE, |dep| {
        dep.def_path.as_str()
    });
    (stage.repo_path(file), key.to_owned())
}

/// Sets the parameters of a trial in its copy of the repository, as
/// `dvc exp run --set-param` does: each file is read, the dotted keys are
/// set (creating the mappings on the way), and the file is written back.
pub fn write_params(trial_root: &Path, stage: &Stage, values: &[(String, Value)]) -> Result<()> {
    let mut files: Vec<(String, Vec<(String, Value)>)> = Vec::new();
    for (key, value) in values {
        let (file, dotted) = param_location(stage, key);
        match files.iter_mut().find(|(existing, _)| *existing == file) {
            Some((_, keys)) => keys.push((dotted, value.clone())),
            None => files.push((file, vec![(dotted, value.clone())])),
        }
    }
    for (file, keys) in files {
        let path: PathBuf = trial_root.join(&file);
        let mut document = if path.is_file() {
            params::load_file(&path, &file)?
        } else {
            Value::Mapping(Mapping::new())
        };
        for (dotted, value) in keys {
            set_dotted(&mut document, &dotted, value)
                .map_err(|reason| PipelineError::invalid(&file, reason))?;
        }
        let text = match path.extension().and_then(|extension| extension.to_str()) {
            Some("json") => serde_json::to_string_pretty(&document)
                .map(|text| text + "\n")
                .map_err(|err| err.to_string()),
            Some("toml") => Err(
                "sweeping parameters of a TOML file is not supported; use YAML or JSON".to_owned(),
            ),
            _ => serde_yaml_ng::to_string(&document).map_err(|err| err.to_string()),
        }
        .map_err(|reason| PipelineError::invalid(&file, reason))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| PipelineError::io(parent, err))?;
        }
        // A new file, not a write through a hard link into the user's copy.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, text).map_err(|err| PipelineError::io(&path, err))?;
    }
    Ok(())
}

/// Sets `document[a][b][c] = value` for `a.b.c`.
fn set_dotted(document: &mut Value, dotted: &str, value: Value) -> std::result::Result<(), String> {
    let mut current = document;
    let segments: Vec<&str> = dotted.split('.').collect();
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        current = match current {
            Value::Mapping(map) => {
                let key = Value::String((*segment).to_owned());
                if last {
                    map.insert(key, value);
                    return Ok(());
                }
                map.entry(key)
                    .or_insert_with(|| Value::Mapping(Mapping::new()))
            }
            Value::Sequence(items) => {
                let position: usize = segment
                    .parse()
                    .map_err(|_| format!("'{dotted}': '{segment}' is not an index of a list"))?;
                let length = items.len();
                let item = items.get_mut(position).ok_or_else(|| {
                    format!("'{dotted}': index {position} is past the list's {length} items")
                })?;
                if last {
                    *item = value;
                    return Ok(());
                }
                item
            }
            _ => {
                return Err(format!(
                    "'{dotted}': '{segment}' is inside a value that is not a mapping"
                ))
            }
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::ParamsDep;

    fn stage(params: Vec<ParamsDep>) -> Stage {
        Stage {
            name: "train".to_owned(),
            cmd: Value::from("python train.py"),
            commands: vec!["python train.py".to_owned()],
            wdir: String::new(),
            deps: vec!["train.py".to_owned()],
            params,
            outs: Vec::new(),
            frozen: false,
            always_changed: false,
        }
    }

    #[test]
    fn parameters_are_set_in_the_file_the_stage_reads_them_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("params.yaml"),
            "train:\n  lr: 0.1\n  epochs: 3\nother: x\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("cfg.json"), "{\"model\": {\"depth\": 2}}").expect("write");
        let stage = stage(vec![
            ParamsDep {
                def_path: "params.yaml".to_owned(),
                keys: vec!["train".to_owned()],
            },
            ParamsDep {
                def_path: "cfg.json".to_owned(),
                keys: vec!["model.depth".to_owned()],
            },
        ]);
        write_params(
            dir.path(),
            &stage,
            &[
                ("train.lr".to_owned(), Value::from(0.5)),
                ("model.depth".to_owned(), Value::from(7)),
                ("new.key".to_owned(), Value::from("adam")),
            ],
        )
        .expect("write params");
        let yaml = params::load_file(&dir.path().join("params.yaml"), "params.yaml").expect("yaml");
        assert_eq!(
            params::select_dotted(&yaml, "train.lr"),
            Some(&Value::from(0.5))
        );
        assert_eq!(
            params::select_dotted(&yaml, "train.epochs"),
            Some(&Value::from(3))
        );
        assert_eq!(
            params::select_dotted(&yaml, "new.key"),
            Some(&Value::from("adam"))
        );
        assert_eq!(
            params::select_dotted(&yaml, "other"),
            Some(&Value::from("x"))
        );
        let json = params::load_file(&dir.path().join("cfg.json"), "cfg.json").expect("json");
        assert_eq!(
            params::select_dotted(&json, "model.depth"),
            Some(&Value::from(7))
        );
    }

    #[test]
    fn a_key_through_a_scalar_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("params.yaml"), "train: 3\n").expect("write");
        let err = write_params(
            dir.path(),
            &stage(Vec::new()),
            &[("train.lr".to_owned(), Value::from(1))],
        )
        .expect_err("scalar");
        assert!(err.to_string().contains("train.lr"), "{err}");
    }

    #[test]
    fn the_copy_leaves_out_git_the_cache_the_trials_and_the_outputs() {
        let root = tempfile::tempdir().expect("tempdir");
        for dir in [".git", ".dvc/cache", ".dvc/tmp/sweeps", "data", "model"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        std::fs::write(root.path().join(".dvc/config"), "").expect("write");
        std::fs::write(root.path().join(".git/HEAD"), "ref").expect("write");
        std::fs::write(
            root.path().join("data/big.bin"),
            vec![7u8; (LINK_ABOVE_BYTES + 1) as usize],
        )
        .expect("write");
        std::fs::write(root.path().join("model/m.pkl"), "old").expect("write");
        std::fs::write(root.path().join("train.py"), "print(1)").expect("write");
        let trial = tempfile::tempdir().expect("tempdir");
        populate(root.path(), trial.path(), &["model".to_owned()]).expect("populate");
        assert!(trial.path().join(".dvc/config").is_file());
        assert!(trial.path().join("train.py").is_file());
        assert!(!trial.path().join(".git").exists());
        assert!(!trial.path().join(".dvc/cache").exists());
        assert!(!trial.path().join(".dvc/tmp").exists());
        assert!(!trial.path().join("model").exists());
        let copied = std::fs::read(trial.path().join("data/big.bin")).expect("read");
        assert_eq!(copied.len() as u64, LINK_ABOVE_BYTES + 1);
    }
}
