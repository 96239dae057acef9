//! `${...}` interpolation with DVC's rules: a context built from `vars` (and
//! `params.yaml` when present), dotted and indexed keys (`${a.b}`,
//! `${a[0]}`), a value that is exactly `${x}` keeps its type, otherwise
//! values become text as DVC's `to_str` makes them (booleans `true`/`false`,
//! floats as Python prints them, dictionaries in `cmd` as `--key value`
//! flags), `\${` escapes.

use std::collections::HashMap;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use crate::emit::{key_string, python_float_repr};
use crate::params;

/// Why a value could not be interpolated; the caller adds file, stage and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError(pub String);

type Interp<T> = std::result::Result<T, InterpolationError>;

fn fail<T>(message: impl Into<String>) -> Interp<T> {
    Err(InterpolationError(message.into()))
}

/// The variables visible to a stage.
#[derive(Debug, Clone, Default)]
pub struct Context {
    data: Mapping,
    /// Files loaded so far: `None` when loaded whole, else the keys taken.
    imports: HashMap<String, Option<Vec<String>>>,
}

impl Context {
    pub fn new() -> Self {
        Context::default()
    }

    /// Merges `update` into the context; an existing non-mapping key may not
    /// be redefined (DVC's `MergeError`).
    pub fn merge(&mut self, update: &Mapping, source: &str) -> Interp<()> {
        merge_into(&mut self.data, update, source, "")
    }

    /// Loads `item` (`path` or `path:key1,key2`, relative to `wdir`) as DVC's
    /// `merge_from` does.
    pub fn merge_from_file(&mut self, root: &Path, wdir: &str, item: &str) -> Interp<()> {
        let (file, keys) = match item.split_once(':') {
            Some((file, keys)) => (file, keys),
            None => (item, ""),
        };
        let select_keys: Option<Vec<String>> = if keys.is_empty() {
            None
        } else {
            Some(
                keys.split(',')
                    .filter(|key| !key.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        };
        let path = crate::stage::join_normalized(wdir, file);
        if let Some(imported) = self.imports.get(&path) {
            match (&select_keys, imported) {
                (None, None) => return Ok(()),
                (None, Some(_)) => {
                    return fail(format!(
                        "cannot load '{item}' as it's partially loaded already"
                    ))
                }
                (Some(_), None) => {
                    return fail(format!(
                        "cannot partially load '{item}' as it's already loaded."
                    ))
                }
                (Some(keys), Some(loaded)) if keys.iter().any(|key| loaded.contains(key)) => {
                    return fail(format!(
                        "cannot load '{item}' as it's partially loaded already"
                    ))
                }
                _ => {}
            }
        }
        let full_path = root.join(&path);
        if !full_path.exists() {
            return fail(format!("'{path}' does not exist"));
        }
        if full_path.is_dir() {
            return fail(format!("'{path}' is a directory"));
        }
        let loaded = params::load_file(&full_path, &path)
            .map_err(|err| InterpolationError(err.to_string()))?;
        let Value::Mapping(mut data) = loaded else {
            return fail(format!(
                "expected a dictionary, got '{}' in file '{path}'",
                python_type_name(&loaded)
            ));
        };
        if let Some(keys) = &select_keys {
            let mut selected = Mapping::new();
            for key in keys {
                let Some(value) = data.remove(key.as_str()) else {
                    return fail(format!("could not find '{key}' in '{path}'"));
                };
                selected.insert(Value::String(key.clone()), value);
            }
            data = selected;
        }
        self.merge(&data, &path)?;
        match (self.imports.get_mut(&path), select_keys) {
            (Some(Some(loaded)), Some(keys)) => loaded.extend(keys),
            (Some(_), _) => {}
            (None, keys) => {
                self.imports.insert(path, keys);
            }
        }
        Ok(())
    }

    /// Sets a top-level key (`item`, `key`), replacing any previous value.
    pub fn set(&mut self, key: &str, value: Value) {
        self.data.insert(Value::String(key.to_owned()), value);
    }

    /// The value at `expr` (`a.b`, `a[0].b`).
    pub fn select(&self, expr: &str) -> Interp<&Value> {
        let trimmed = expr.trim();
        if trimmed.is_empty() {
            return fail("empty expression '${}'");
        }
        let normalized = trimmed.replace('[', ".").replace(']', "");
        let mut current: Option<&Value> = None;
        for segment in normalized.split('.') {
            let container = match current {
                None => {
                    current = self
                        .data
                        .iter()
                        .find_map(|(key, value)| (key_string(key) == segment).then_some(value));
                    if current.is_none() {
                        return fail(format!("Could not find '{trimmed}'"));
                    }
                    continue;
                }
                Some(container) => container,
            };
            current = params::select_dotted(container, segment);
            if current.is_none() {
                return fail(format!("Could not find '{trimmed}'"));
            }
        }
        current.ok_or_else(|| InterpolationError(format!("Could not find '{trimmed}'")))
    }

    /// Resolves every string inside `value` (mapping keys included).
    /// `key` is the stage field being resolved (`cmd`, `deps`, ...), which
    /// decides what may be interpolated; `None` for foreach/matrix data.
    pub fn resolve(&self, value: &Value, key: Option<&str>) -> Interp<Value> {
        Ok(match value {
            Value::String(text) => self.resolve_str(text, key)?,
            Value::Sequence(items) => Value::Sequence(
                items
                    .iter()
                    .map(|item| self.resolve(item, key))
                    .collect::<Interp<_>>()?,
            ),
            Value::Mapping(map) => {
                let mut resolved = Mapping::new();
                for (entry_key, entry_value) in map {
                    resolved.insert(
                        self.resolve(entry_key, key)?,
                        self.resolve(entry_value, key)?,
                    );
                }
                Value::Mapping(resolved)
            }
            other => other.clone(),
        })
    }

    /// One string: its value when it is exactly `${x}`, else the text with
    /// every `${...}` replaced.
    pub fn resolve_str(&self, template: &str, key: Option<&str>) -> Interp<Value> {
        let matches = find_matches(template);
        if matches.is_empty() {
            return Ok(Value::String(template.replace("\\${", "${")));
        }
        if matches.len() == 1 && matches[0].start == 0 && matches[0].end == template.len() {
            let value = self.select(&matches[0].inner)?;
            validate_value(value, key)?;
            return Ok(value.clone());
        }
        let mut text = String::new();
        let mut previous_end = 0;
        for found in &matches {
            let value = self.select(&found.inner)?;
            validate_value(value, key)?;
            text.push_str(&template[previous_end..found.start]);
            text.push_str(&to_str(value)?);
            previous_end = found.end;
        }
        text.push_str(&template[previous_end..]);
        Ok(Value::String(text.replace("\\${", "${")))
    }
}

fn merge_into(into: &mut Mapping, update: &Mapping, source: &str, prefix: &str) -> Interp<()> {
    for (key, value) in update {
        let key_text = key_string(key);
        let path = if prefix.is_empty() {
            key_text.clone()
        } else {
            format!("{prefix}.{key_text}")
        };
        match (into.get_mut(key), value) {
            (Some(Value::Mapping(existing)), Value::Mapping(nested)) => {
                merge_into(existing, nested, source, &path)?;
            }
            (Some(_), _) => {
                return fail(format!(
                    "cannot redefine '{path}' from '{source}' as it already exists"
                ));
            }
            (None, _) => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

/// One `${...}` in a template.
#[derive(Debug)]
struct Match {
    start: usize,
    end: usize,
    inner: String,
}

/// Every unescaped `${...}` (the first `}` closes it), as DVC's `KEYCRE`.
fn find_matches(template: &str) -> Vec<Match> {
    let bytes = template.as_bytes();
    let mut matches = Vec::new();
    let mut idx = 0;
    while idx + 1 < bytes.len() {
        if bytes[idx] == b'$' && bytes[idx + 1] == b'{' && (idx == 0 || bytes[idx - 1] != b'\\') {
            if let Some(close) = template[idx + 2..].find('}') {
                let end = idx + 2 + close + 1;
                matches.push(Match {
                    start: idx,
                    end,
                    inner: template[idx + 2..end - 1].to_owned(),
                });
                idx = end;
                continue;
            }
        }
        idx += 1;
    }
    matches
}

/// Whether `text` holds an unescaped `${...}`.
pub fn is_interpolated(text: &str) -> bool {
    !find_matches(text).is_empty()
}

/// Python's name for a value's type, as DVC's messages use it.
pub fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "dict",
        Value::Tagged(tagged) => python_type_name(&tagged.value),
    }
}

/// DVC's `validate_value`: collections may be interpolated only into
/// foreach data, and dictionaries into `cmd`.
fn validate_value(value: &Value, key: Option<&str>) -> Interp<()> {
    let is_collection = matches!(value, Value::Sequence(_) | Value::Mapping(_));
    let Some(key) = key else {
        return Ok(());
    };
    if is_collection && !key.contains("foreach") {
        if matches!(value, Value::Mapping(_)) && key == "cmd" {
            return Ok(());
        }
        return fail(format!(
            "Cannot interpolate data of type '{}'",
            python_type_name(value)
        ));
    }
    Ok(())
}

/// Python's `shlex.quote`.
pub fn shell_quote(text: &str) -> String {
    if text.is_empty() {
        return "''".to_owned();
    }
    let safe = text
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "_@%+=:,./-".contains(ch));
    if safe {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', "'\"'\"'"))
}

/// DVC's `to_str` (with the default parsing config: `bool: store_true`,
/// `list: nargs`).
pub fn to_str(value: &Value) -> Interp<String> {
    Ok(match value {
        Value::Null => "None".to_owned(),
        Value::Bool(flag) => if *flag { "true" } else { "false" }.to_owned(),
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() => python_float_repr(float),
            _ => number.to_string(),
        },
        Value::String(text) => text.clone(),
        Value::Tagged(tagged) => to_str(&tagged.value)?,
        Value::Sequence(items) => {
            let parts: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Mapping(map) => {
            let mut flattened = Vec::new();
            flatten("", map, &mut flattened);
            let mut result = String::new();
            for (flag, value) in flattened {
                match value {
                    Value::Bool(true) => result.push_str(&format!("--{flag} ")),
                    Value::Bool(false) => {}
                    Value::String(text) => {
                        result.push_str(&format!("--{flag} {} ", shell_quote(text)))
                    }
                    Value::Sequence(items) => {
                        for (item_idx, item) in items.iter().enumerate() {
                            let item_text = match item {
                                Value::String(text) => shell_quote(text),
                                Value::Sequence(_) | Value::Mapping(_) => {
                                    return fail(format!(
                                        "Cannot interpolate nested iterable in '{flag}'"
                                    ))
                                }
                                other => to_str(other)?,
                            };
                            if item_idx == 0 {
                                result.push_str(&format!("--{flag} {item_text} "));
                            } else {
                                result.push_str(&format!("{item_text} "));
                            }
                        }
                    }
                    other => result.push_str(&format!("--{flag} {} ", to_str(other)?)),
                }
            }
            result.trim_end().to_owned()
        }
    })
}

/// Python's `repr` of a scalar inside a list (strings quoted).
fn python_repr(value: &Value) -> String {
    match value {
        Value::String(text) => format!("'{text}'"),
        Value::Bool(flag) => if *flag { "True" } else { "False" }.to_owned(),
        other => to_str(other).unwrap_or_default(),
    }
}

/// DVC's `flatten`: nested mappings become dotted keys; lists stay whole.
fn flatten<'a>(prefix: &str, map: &'a Mapping, out: &mut Vec<(String, &'a Value)>) {
    for (key, value) in map {
        let name = if prefix.is_empty() {
            key_string(key)
        } else {
            format!("{prefix}.{}", key_string(key))
        };
        match value {
            Value::Mapping(nested) if !nested.is_empty() => flatten(&name, nested, out),
            other => out.push((name, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(yaml: &str) -> Context {
        let mut context = Context::new();
        let data: Mapping = serde_yaml_ng::from_str(yaml).expect("yaml");
        context.merge(&data, "vars[0]").expect("merge");
        context
    }

    #[test]
    fn exact_references_keep_their_type_and_others_become_text() {
        let context = context("lr: 0.001\nepochs: 10\nflag: true\nmodel: {layers: [8, 16]}\n");
        assert_eq!(
            context.resolve_str("${epochs}", Some("deps")),
            Ok(Value::from(10))
        );
        assert_eq!(
            context.resolve_str(
                "train --lr ${lr} --epochs ${ epochs } --flag ${flag}",
                Some("cmd")
            ),
            Ok(Value::from("train --lr 0.001 --epochs 10 --flag true"))
        );
        assert_eq!(
            context.resolve_str("layer ${model.layers[1]}", Some("cmd")),
            Ok(Value::from("layer 16"))
        );
        assert_eq!(
            context.resolve_str("cost \\${lr}", Some("cmd")),
            Ok(Value::from("cost ${lr}"))
        );
    }

    #[test]
    fn dictionaries_become_flags_in_cmd_only() {
        let context = context(
            "opts: {lr: 0.1, name: my model, verbose: true, quiet: false, sizes: [1, 2], nested: {depth: 3}}\n",
        );
        assert_eq!(
            context.resolve_str("train ${opts}", Some("cmd")),
            Ok(Value::from(
                "train --lr 0.1 --name 'my model' --verbose --sizes 1 2 --nested.depth 3"
            ))
        );
        assert_eq!(
            context.resolve_str("x ${opts}", Some("outs")),
            Err(InterpolationError(
                "Cannot interpolate data of type 'dict'".into()
            ))
        );
    }

    #[test]
    fn missing_keys_and_redefinitions_are_errors() {
        let mut context = context("a: {b: 1}\n");
        assert_eq!(
            context.resolve_str("${a.c}", Some("cmd")),
            Err(InterpolationError("Could not find 'a.c'".into()))
        );
        let redefinition: Mapping = serde_yaml_ng::from_str("a: {b: 2}").expect("yaml");
        assert!(context.merge(&redefinition, "vars[1]").is_err());
        let extension: Mapping = serde_yaml_ng::from_str("a: {c: 2}").expect("yaml");
        assert!(context.merge(&extension, "vars[1]").is_ok());
    }
}
