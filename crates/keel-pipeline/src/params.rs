//! Parameter and vars files as DVC loads them: YAML, JSON or TOML by
//! extension (YAML for anything else), and dotted key paths into them.

use std::path::Path;

use serde_yaml_ng::Value;

use crate::{PipelineError, Result};

/// Reads a params or vars file; `shown` names it in errors.
pub fn load_file(path: &Path, shown: &str) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|err| PipelineError::io(path, err))?;
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let parsed = match extension.as_str() {
        "json" => serde_json::from_str::<Value>(&text).map_err(|err| err.to_string()),
        "toml" => toml::from_str::<Value>(&text).map_err(|err| err.to_string()),
        "py" => Err(
            "Python parameter files are not supported by Keel; use YAML, JSON or TOML".to_owned(),
        ),
        _ => {
            if text.trim().is_empty() {
                Ok(Value::Mapping(Default::default()))
            } else {
                serde_yaml_ng::from_str::<Value>(&text).map_err(|err| err.to_string())
            }
        }
    };
    let value = parsed
        .map_err(|reason| PipelineError::invalid(shown, format!("cannot parse: {reason}")))?;
    // An empty YAML document is an empty mapping, as DVC's `load_yaml(...) or {}`.
    Ok(match value {
        Value::Null => Value::Mapping(Default::default()),
        other => other,
    })
}

/// One step into a mapping (by key) or a sequence (by index).
fn child<'a>(value: &'a Value, segment: &str) -> Option<&'a Value> {
    match value {
        Value::Mapping(map) => map
            .iter()
            .find_map(|(key, child)| (crate::emit::key_string(key) == segment).then_some(child)),
        Value::Sequence(items) => segment.parse::<usize>().ok().and_then(|idx| items.get(idx)),
        Value::Tagged(tagged) => child(&tagged.value, segment),
        _ => None,
    }
}

/// The value at a `.`-separated key path (`train.lr`, `layers.0`).
pub fn select_dotted<'a>(config: &'a Value, key_path: &str) -> Option<&'a Value> {
    key_path
        .split('.')
        .try_fold(config, |value, segment| child(value, segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_reach_nested_values_and_list_items() {
        let config: Value =
            serde_yaml_ng::from_str("train:\n  lr: 0.1\n  layers: [8, 16]\n").expect("yaml");
        assert_eq!(select_dotted(&config, "train.lr"), Some(&Value::from(0.1)));
        assert_eq!(
            select_dotted(&config, "train.layers.1"),
            Some(&Value::from(16))
        );
        assert_eq!(select_dotted(&config, "train.missing"), None);
    }

    #[test]
    fn json_and_toml_load_like_yaml() {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = dir.path().join("p.json");
        std::fs::write(&json, r#"{"a": {"b": 1}}"#).expect("write");
        let toml = dir.path().join("p.toml");
        std::fs::write(&toml, "[a]\nb = 1\n").expect("write");
        let from_json = load_file(&json, "p.json").expect("json");
        let from_toml = load_file(&toml, "p.toml").expect("toml");
        assert_eq!(select_dotted(&from_json, "a.b"), Some(&Value::from(1)));
        assert_eq!(select_dotted(&from_toml, "a.b"), Some(&Value::from(1)));
    }
}
