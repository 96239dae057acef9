//! A resolved stage definition checked against DVC's `dvc.yaml` schema and
//! turned into a [`Stage`]: `cmd` (string or list), `deps`, `params` merged
//! per file as DVC merges them, `outs`/`metrics`/`plots` with their flags,
//! `frozen` and `always_changed`. Errors name stage and key.

use serde_yaml_ng::{Mapping, Value};

use crate::emit::key_string;
use crate::interpolate::{python_type_name, to_str};
use crate::project::{stage_error, DEFAULT_PARAMS_FILE};
use crate::stage::{Output, OutputKind, ParamsDep, Stage};
use crate::Result;

pub(crate) const STAGE_KEYS: &[&str] = &[
    "cmd",
    "wdir",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "frozen",
    "always_changed",
    "meta",
    "desc",
    "vars",
];
const OUTPUT_FLAGS: &[&str] = &[
    "cache", "persist", "remote", "push", "desc", "type", "labels", "meta",
];
const PLOT_FLAGS: &[&str] = &[
    "x", "y", "template", "title", "x_label", "y_label", "header",
];

pub(crate) fn build_stage(name: &str, wdir: String, resolved: &Mapping) -> Result<Stage> {
    let (cmd, commands) = match resolved.get("cmd") {
        Some(Value::String(text)) if !text.trim().is_empty() => (
            Value::String(text.clone()),
            text.lines().map(str::to_owned).collect(),
        ),
        Some(Value::Sequence(items)) if !items.is_empty() => {
            let mut commands = Vec::new();
            for item in items {
                match item {
                    Value::String(text) => commands.push(text.clone()),
                    other => {
                        return Err(stage_error(
                            name,
                            "cmd",
                            format!(
                                "list items must be strings, got '{}'",
                                python_type_name(other)
                            ),
                        ))
                    }
                }
            }
            (Value::Sequence(items.clone()), commands)
        }
        Some(Value::Number(_) | Value::Bool(_)) => {
            let text = to_str(&resolved["cmd"]).map_err(|err| stage_error(name, "cmd", err.0))?;
            (Value::String(text.clone()), vec![text])
        }
        None => return Err(stage_error(name, "cmd", "required key is missing")),
        Some(_) => {
            return Err(stage_error(
                name,
                "cmd",
                "must be a non-empty string or list of strings",
            ))
        }
    };
    let deps = string_list(name, "deps", resolved.get("deps"))?;
    let params = parse_params(name, resolved.get("params"))?;
    let mut outs = Vec::new();
    for (section, kind) in [
        ("outs", OutputKind::Out),
        ("metrics", OutputKind::Metric),
        ("plots", OutputKind::Plot),
    ] {
        outs.extend(parse_outputs(name, section, kind, resolved.get(section))?);
    }
    let flag = |key: &str| -> Result<bool> {
        match resolved.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(stage_error(
                name,
                key,
                format!("expected a boolean, got '{}'", python_type_name(other)),
            )),
        }
    };
    Ok(Stage {
        name: name.to_owned(),
        cmd,
        commands,
        wdir,
        deps,
        params,
        outs,
        frozen: flag("frozen")?,
        always_changed: flag("always_changed")?,
    })
}

fn string_list(name: &str, key: &str, value: Option<&Value>) -> Result<Vec<String>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) if !text.is_empty() => Ok(text.clone()),
                other => Err(stage_error(
                    name,
                    key,
                    format!("expected a path, got '{}'", python_type_name(other)),
                )),
            })
            .collect(),
        Some(other) => Err(stage_error(
            name,
            key,
            format!("expected a list, got '{}'", python_type_name(other)),
        )),
    }
}

/// DVC's `_merge_params`: strings are keys of `params.yaml`, mappings name
/// other files with their keys (none: the whole file).
fn parse_params(name: &str, value: Option<&Value>) -> Result<Vec<ParamsDep>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            return Err(stage_error(
                name,
                "params",
                format!("expected a list, got '{}'", python_type_name(other)),
            ))
        }
    };
    let mut wholly_tracked = Vec::new();
    for item in items {
        if let Value::Mapping(files) = item {
            for (file, keys) in files {
                let empty = match keys {
                    Value::Null => true,
                    Value::Sequence(keys) => keys.is_empty(),
                    _ => false,
                };
                if empty {
                    wholly_tracked.push(key_string(file));
                }
            }
        }
    }
    let mut params: Vec<ParamsDep> = Vec::new();
    let mut add = |file: &str, key: Option<String>| {
        let idx = match params.iter().position(|params| params.def_path == file) {
            Some(idx) => idx,
            None => {
                params.push(ParamsDep {
                    def_path: file.to_owned(),
                    keys: Vec::new(),
                });
                params.len() - 1
            }
        };
        if let Some(key) = key {
            if !wholly_tracked.iter().any(|tracked| tracked == file) {
                params[idx].keys.push(key);
            }
        }
    };
    for item in items {
        match item {
            Value::String(key) => add(DEFAULT_PARAMS_FILE, Some(key.clone())),
            Value::Mapping(files) => {
                for (file, keys) in files {
                    let file = key_string(file);
                    match keys {
                        Value::Null => add(&file, None),
                        Value::Sequence(keys) => {
                            if keys.is_empty() {
                                add(&file, None);
                            }
                            for key in keys {
                                match key {
                                    Value::String(key) => add(&file, Some(key.clone())),
                                    other => {
                                        return Err(stage_error(
                                            name,
                                            "params",
                                            format!(
                                                "keys of '{file}' must be strings, got '{}'",
                                                python_type_name(other)
                                            ),
                                        ))
                                    }
                                }
                            }
                        }
                        other => {
                            return Err(stage_error(
                                name,
                                "params",
                                format!(
                                "expected list of params for custom params file '{file}', got '{}'",
                                python_type_name(other)
                            ),
                            ))
                        }
                    }
                }
            }
            other => {
                return Err(stage_error(
                    name,
                    "params",
                    format!(
                        "only list of str/dict is supported, got '{}'",
                        python_type_name(other)
                    ),
                ))
            }
        }
    }
    Ok(params)
}

fn parse_outputs(
    name: &str,
    section: &str,
    kind: OutputKind,
    value: Option<&Value>,
) -> Result<Vec<Output>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            return Err(stage_error(
                name,
                section,
                format!("expected a list, got '{}'", python_type_name(other)),
            ))
        }
    };
    let mut outputs = Vec::new();
    for item in items {
        match item {
            Value::String(path) if !path.is_empty() => outputs.push(Output {
                def_path: path.clone(),
                cache: true,
                persist: false,
                kind,
            }),
            Value::Mapping(entries) => {
                for (path, flags) in entries {
                    let path = key_string(path);
                    let mut output = Output {
                        def_path: path.clone(),
                        cache: true,
                        persist: false,
                        kind,
                    };
                    match flags {
                        Value::Null => {}
                        Value::Mapping(flags) => {
                            for (flag, flag_value) in flags {
                                let flag = key_string(flag);
                                let allowed = OUTPUT_FLAGS.contains(&flag.as_str())
                                    || (kind == OutputKind::Plot
                                        && PLOT_FLAGS.contains(&flag.as_str()));
                                if !allowed {
                                    return Err(stage_error(
                                        name,
                                        section,
                                        format!("'{path}': extra key not allowed: '{flag}'"),
                                    ));
                                }
                                let as_bool = || match flag_value {
                                    Value::Bool(flag) => Ok(*flag),
                                    other => Err(stage_error(
                                        name,
                                        section,
                                        format!(
                                            "'{path}': '{flag}' must be a boolean, got '{}'",
                                            python_type_name(other)
                                        ),
                                    )),
                                };
                                match flag.as_str() {
                                    "cache" => output.cache = as_bool()?,
                                    "persist" => output.persist = as_bool()?,
                                    _ => {}
                                }
                            }
                        }
                        other => {
                            return Err(stage_error(
                                name,
                                section,
                                format!(
                                    "'{path}': expected a mapping of flags, got '{}'",
                                    python_type_name(other)
                                ),
                            ))
                        }
                    }
                    outputs.push(output);
                }
            }
            other => {
                return Err(stage_error(
                    name,
                    section,
                    format!(
                        "expected a path or a mapping, got '{}'",
                        python_type_name(other)
                    ),
                ))
            }
        }
    }
    Ok(outputs)
}
