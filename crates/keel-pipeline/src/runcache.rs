//! DVC's run cache: `.dvc/cache/runs/<key[:2]>/<key>/<value>`, where `key`
//! is the sha256 of a stage's command, dependencies and parameters (outputs
//! by path only) and `value` the sha256 of the whole lock entry, both as
//! Python's `json.dumps(sort_keys=True)` writes them without `size` and
//! `nfiles`; the file holds the lock entry in `dvc.lock`'s YAML. A stage
//! whose inputs match an entry whose outputs are all in the cache gets its
//! outputs checked out instead of running, as `dvc repro` does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};
use sha2::{Digest, Sha256};

use crate::emit::{key_string, python_float_repr};
use crate::stage::Stage;
use crate::{PipelineError, Result};

/// Keys DVC leaves out of run-cache hashes, at any depth.
const EXCLUDED_KEYS: &[&str] = &["size", "nfiles"];

/// Whether DVC keeps a run cache for the stage (`_can_hash`): a command,
/// dependencies and outputs, no `always_changed`, no persisted outputs.
pub fn can_use(stage: &Stage) -> bool {
    let has_deps = !stage.deps.is_empty() || !stage.params.is_empty();
    let persists = stage.outs.iter().any(|output| output.persist);
    let excluded = stage.always_changed || stage.is_callback() || stage.outs.is_empty();
    has_deps && !persists && !excluded
}

/// Whether a successful run is recorded (DVC skips it when an output that
/// is neither a metric nor a plot opts out of the cache).
pub fn should_save(stage: &Stage) -> bool {
    can_use(stage)
        && stage
            .outs
            .iter()
            .all(|output| output.cache || output.kind != crate::stage::OutputKind::Out)
}

/// `json.dumps(value, sort_keys=True)` with Python's defaults.
fn python_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                let _ = write!(out, "{integer}");
            } else if let Some(integer) = number.as_u64() {
                let _ = write!(out, "{integer}");
            } else {
                let float = number.as_f64().unwrap_or(f64::NAN);
                if float.is_nan() {
                    out.push_str("NaN");
                } else if float.is_infinite() {
                    out.push_str(if float > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    out.push_str(&python_float_repr(float));
                }
            }
        }
        Value::String(text) => keel_data::pyjson::push_string(out, text),
        Value::Sequence(items) => {
            out.push('[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    out.push_str(", ");
                }
                python_json(item, out);
            }
            out.push(']');
        }
        Value::Mapping(map) => {
            let mut entries: Vec<(String, &Value)> = map
                .iter()
                .map(|(key, value)| (key_string(key), value))
                .collect();
            entries.sort_by(|left, right| left.0.cmp(&right.0));
            out.push('{');
            for (entry_idx, (key, value)) in entries.into_iter().enumerate() {
                if entry_idx > 0 {
                    out.push_str(", ");
                }
                keel_data::pyjson::push_string(out, &key);
                out.push_str(": ");
                python_json(value, out);
            }
            out.push('}');
        }
        Value::Tagged(tagged) => python_json(&tagged.value, out),
    }
}

/// DVC's `dict_filter`: drops the excluded keys from every mapping.
fn filtered(value: &Value) -> Value {
    match value {
        Value::Mapping(map) => Value::Mapping(
            map.iter()
                .filter(|(key, _)| !EXCLUDED_KEYS.contains(&key_string(key).as_str()))
                .map(|(key, value)| (key.clone(), filtered(value)))
                .collect(),
        ),
        Value::Sequence(items) => Value::Sequence(items.iter().map(filtered).collect()),
        other => other.clone(),
    }
}

fn sha256_of(value: &Value) -> String {
    let mut text = String::new();
    python_json(&filtered(value), &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The run-cache key of a lock entry: its outputs reduced to their paths.
pub fn key(entry: &Mapping) -> String {
    let mut keyed = entry.clone();
    if let Some(Value::Sequence(outs)) = entry.get("outs") {
        let paths: Vec<Value> = outs
            .iter()
            .filter_map(|out| out.get("path").cloned())
            .collect();
        keyed.insert("outs".into(), Value::Sequence(paths));
    }
    sha256_of(&Value::Mapping(keyed))
}

/// The run-cache value of a lock entry.
pub fn value(entry: &Mapping) -> String {
    sha256_of(&Value::Mapping(entry.clone()))
}

fn key_dir(root: &Path, key: &str) -> PathBuf {
    root.join(".dvc")
        .join("cache")
        .join("runs")
        .join(&key[..2])
        .join(key)
}

/// The newest recorded entry for `key`, if any.
pub fn lookup(root: &Path, key: &str) -> Result<Option<Mapping>> {
    let dir = key_dir(root, key);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(None);
    };
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(modified) = entry.metadata().and_then(|metadata| metadata.modified()) else {
            continue;
        };
        if newest.as_ref().is_none_or(|(time, _)| modified > *time) {
            newest = Some((modified, path));
        }
    }
    let Some((_, path)) = newest else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|err| PipelineError::io(&path, err))?;
    // A corrupted entry is no entry, as DVC treats it.
    Ok(serde_yaml_ng::from_str::<Value>(&text)
        .ok()
        .and_then(|value| value.as_mapping().cloned()))
}

/// Records a lock entry (nothing when the same entry is already there).
pub fn save(root: &Path, entry: &Mapping) -> Result<()> {
    let path = key_dir(root, &key(entry)).join(value(entry));
    if path.is_file() {
        return Ok(());
    }
    let text = crate::emit::to_yaml(entry).map_err(|unsupported| {
        PipelineError::invalid(
            "run cache",
            format!("{:?} cannot be written as DVC writes it", unsupported.0),
        )
    })?;
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|err| PipelineError::io(dir, err))?;
    crate::lockfile::write_atomic(&path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_pythons_with_sorted_keys() {
        let value: Value =
            serde_yaml_ng::from_str("z: [1, 2.5, 1.0e-05, true, null]\na: {b: 'é\"'}\n")
                .expect("yaml");
        let mut text = String::new();
        python_json(&value, &mut text);
        assert_eq!(
            text,
            r#"{"a": {"b": "\u00e9\""}, "z": [1, 2.5, 1e-05, true, null]}"#
        );
    }

    /// Key and value of a run-cache entry DVC 3.67 wrote for
    /// `dvc stage add -n copy -d in.txt -o out.txt "cp in.txt out.txt"`
    /// with in.txt holding "foo".
    #[test]
    fn keys_and_values_are_dvcs() {
        let entry: Mapping = serde_yaml_ng::from_str(
            "cmd: cp in.txt out.txt\ndeps:\n- path: in.txt\n  hash: md5\n  md5: acbd18db4cc2f85cedef654fccc4a4d8\n  size: 3\nouts:\n- path: out.txt\n  hash: md5\n  md5: acbd18db4cc2f85cedef654fccc4a4d8\n  size: 3\n",
        )
        .expect("yaml");
        assert_eq!(key(&entry), DVC_KEY);
        assert_eq!(value(&entry), DVC_VALUE);
    }

    const DVC_KEY: &str = "7eb5f75a60e448093ccc1a84a51ac092c9a668a613e0792716fcb35567b1e606";
    const DVC_VALUE: &str = "c10a70f2601294843718c18ffb503e695cf221ac349d809638e8ebec4ac7bd97";
}
