//! `dvc.yaml` read as DVC reads it: top-level `vars` (with `params.yaml`
//! loaded first when present), stages with `foreach`/`do` and `matrix`
//! expanded into `group@key` stages, `${}` interpolated per stage, then each
//! stage checked against DVC's schema. Errors name file, stage and key.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::emit::key_string;
use crate::interpolate::{is_interpolated, python_type_name, to_str, Context};
use crate::schema::{build_stage, STAGE_KEYS};
use crate::stage::{is_same_or_inside, join_normalized, Stage};
use crate::{PipelineError, Result};

pub const PROJECT_FILE: &str = "dvc.yaml";
pub const LOCK_FILE: &str = "dvc.lock";
pub const DEFAULT_PARAMS_FILE: &str = "params.yaml";

const TOP_LEVEL_KEYS: &[&str] = &[
    "stages",
    "vars",
    "params",
    "metrics",
    "plots",
    "artifacts",
    "datasets",
];
/// The pipeline of one repository: its stages in `dvc.yaml` order.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub stages: Vec<Stage>,
}

impl Project {
    /// Reads `<root>/dvc.yaml`.
    pub fn load(root: &Path) -> Result<Project> {
        let path = root.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                PipelineError::Usage(format!(
                    "no {PROJECT_FILE} in {}; define stages there first",
                    root.display()
                ))
            } else {
                PipelineError::io(&path, err)
            }
        })?;
        let stages = parse(root, &text)?;
        Ok(Project {
            root: root.to_path_buf(),
            stages,
        })
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.name == name)
    }
}

fn invalid(message: impl Into<String>) -> PipelineError {
    PipelineError::invalid(PROJECT_FILE, message)
}

/// Parses and resolves the text of `dvc.yaml` (files it names are read
/// relative to `root`).
pub fn parse(root: &Path, text: &str) -> Result<Vec<Stage>> {
    let document: Value =
        serde_yaml_ng::from_str(text).map_err(|err| invalid(format!("not valid YAML: {err}")))?;
    let document = match document {
        Value::Mapping(map) => map,
        Value::Null => Mapping::new(),
        other => {
            return Err(invalid(format!(
                "expected a mapping at the top level, got '{}'",
                python_type_name(&other)
            )))
        }
    };
    for key in document.keys() {
        let key = key_string(key);
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            return Err(invalid(format!("extra key not allowed: '{key}'")));
        }
    }
    let mut context = Context::new();
    if root.join(DEFAULT_PARAMS_FILE).is_file() {
        context
            .merge_from_file(root, "", DEFAULT_PARAMS_FILE)
            .map_err(|err| invalid(format!("failed to parse 'vars': {}", err.0)))?;
    }
    if let Some(vars) = document.get("vars") {
        load_vars(&mut context, root, "", vars, "vars", "")?;
    }
    let mut stages = Vec::new();
    match document.get("stages") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(definitions)) => {
            for (name, definition) in definitions {
                let name = key_string(name);
                expand_definition(root, &context, &name, definition, &mut stages)?;
            }
        }
        Some(other) => {
            return Err(invalid(format!(
                "'stages' must be a mapping of stage names to definitions, got '{}'",
                python_type_name(other)
            )))
        }
    }
    check_outputs(&stages)?;
    Ok(stages)
}

/// Loads a `vars` list into `context` (files relative to `wdir`).
fn load_vars(
    context: &mut Context,
    root: &Path,
    wdir: &str,
    vars: &Value,
    where_: &str,
    stage_name: &str,
) -> Result<()> {
    let Value::Sequence(items) = vars else {
        return Err(invalid(format!("'{where_}' must be a list")));
    };
    for (item_idx, item) in items.iter().enumerate() {
        check_not_interpolated(item, where_)?;
        let loaded = match item {
            Value::String(file) => context.merge_from_file(root, wdir, file),
            Value::Mapping(values) => {
                let joiner = if stage_name.is_empty() { "" } else { "." };
                context.merge(values, &format!("{stage_name}{joiner}vars[{item_idx}]"))
            }
            other => {
                return Err(invalid(format!(
                    "'{where_}' items must be file names or mappings, got '{}'",
                    python_type_name(other)
                )))
            }
        };
        loaded.map_err(|err| invalid(format!("failed to parse '{where_}': {}", err.0)))?;
    }
    Ok(())
}

fn check_not_interpolated(value: &Value, where_: &str) -> Result<()> {
    let interpolated = match value {
        Value::String(text) => is_interpolated(text),
        Value::Sequence(items) => {
            return items
                .iter()
                .try_for_each(|item| check_not_interpolated(item, where_))
        }
        Value::Mapping(map) => {
            return map.iter().try_for_each(|(key, value)| {
                check_not_interpolated(key, where_)?;
                check_not_interpolated(value, where_)
            })
        }
        _ => false,
    };
    if interpolated {
        return Err(invalid(format!(
            "failed to parse '{where_}': interpolating is not allowed"
        )));
    }
    Ok(())
}

fn is_map_or_seq(value: &Value) -> bool {
    matches!(value, Value::Mapping(_) | Value::Sequence(_))
}

pub(crate) fn stage_error(name: &str, key: &str, message: impl std::fmt::Display) -> PipelineError {
    invalid(format!("stage '{name}': '{key}': {message}"))
}

/// Turns one definition into stages: itself, or one per foreach item /
/// matrix combination.
fn expand_definition(
    root: &Path,
    context: &Context,
    name: &str,
    definition: &Value,
    stages: &mut Vec<Stage>,
) -> Result<()> {
    if name.is_empty() || name.contains(['@', ':', '/', '\\']) {
        return Err(invalid(format!(
            "stage name '{name}' is not valid: it may not be empty nor contain '@', ':', '/' or '\\'"
        )));
    }
    let Value::Mapping(definition) = definition else {
        return Err(invalid(format!(
            "stage '{name}': the definition must be a mapping"
        )));
    };
    if let Some(matrix) = definition.get("matrix") {
        if definition.contains_key("foreach") || definition.contains_key("do") {
            return Err(invalid(format!(
                "stage '{name}': 'matrix' cannot be combined with 'foreach'/'do'"
            )));
        }
        let resolved = context
            .resolve(matrix, None)
            .map_err(|err| stage_error(name, "matrix", err.0))?;
        let Value::Mapping(axes) = resolved else {
            return Err(stage_error(
                name,
                "matrix",
                "expected a mapping of names to lists",
            ));
        };
        let mut template = definition.clone();
        template.remove("matrix");
        let mut combinations: Vec<(Vec<String>, Mapping)> = vec![(Vec::new(), Mapping::new())];
        for (axis, values) in &axes {
            let axis_name = key_string(axis);
            let values = match values {
                Value::Sequence(values) => values,
                other => {
                    return Err(stage_error(
                        name,
                        "matrix",
                        format!(
                            "'{axis_name}' must be a list, got '{}'",
                            python_type_name(other)
                        ),
                    ))
                }
            };
            let mut extended = Vec::new();
            for (fragments, item) in &combinations {
                for (value_idx, value) in values.iter().enumerate() {
                    let fragment = if is_map_or_seq(value) {
                        format!("{axis_name}{value_idx}")
                    } else {
                        to_str(value).map_err(|err| stage_error(name, "matrix", err.0))?
                    };
                    let mut fragments = fragments.clone();
                    fragments.push(fragment);
                    let mut item = item.clone();
                    item.insert(axis.clone(), value.clone());
                    extended.push((fragments, item));
                }
            }
            combinations = extended;
        }
        for (fragments, item) in combinations {
            let key = fragments.join("-");
            let generated = format!("{name}@{key}");
            let mut iteration = context.clone();
            iteration.set("key", Value::String(key));
            iteration.set("item", Value::Mapping(item));
            stages.push(resolve_entry(root, &iteration, &generated, &template)?);
        }
        return Ok(());
    }
    if let Some(foreach) = definition.get("foreach") {
        let Some(Value::Mapping(template)) = definition.get("do") else {
            return Err(invalid(format!(
                "stage '{name}': 'foreach' needs a 'do' mapping with the stage template"
            )));
        };
        if let Some(extra) = definition
            .keys()
            .map(key_string)
            .find(|key| key != "foreach" && key != "do")
        {
            return Err(stage_error(
                name,
                &extra,
                "extra key not allowed beside 'foreach'/'do'",
            ));
        }
        let resolved = context
            .resolve(foreach, None)
            .map_err(|err| stage_error(name, "foreach", err.0))?;
        let iterations: Vec<(String, Value, bool)> = match &resolved {
            Value::Mapping(map) => map
                .iter()
                .map(|(key, value)| Ok((to_str(key)?, value.clone(), true)))
                .collect::<std::result::Result<_, crate::interpolate::InterpolationError>>()
                .map_err(|err| stage_error(name, "foreach", err.0))?,
            Value::Sequence(items) if items.iter().any(is_map_or_seq) => items
                .iter()
                .enumerate()
                .map(|(item_idx, item)| (item_idx.to_string(), item.clone(), false))
                .collect(),
            Value::Sequence(items) => items
                .iter()
                .map(|item| Ok((to_str(item)?, item.clone(), false)))
                .collect::<std::result::Result<_, crate::interpolate::InterpolationError>>()
                .map_err(|err| stage_error(name, "foreach", err.0))?,
            other => {
                return Err(stage_error(
                    name,
                    "foreach",
                    format!("expected list/dictionary, got {}", python_type_name(other)),
                ))
            }
        };
        for (key, item, with_key) in iterations {
            let generated = format!("{name}@{key}");
            let mut iteration = context.clone();
            iteration.set("item", item);
            if with_key {
                iteration.set("key", Value::String(key));
            }
            stages.push(resolve_entry(root, &iteration, &generated, template)?);
        }
        return Ok(());
    }
    if definition.contains_key("do") {
        return Err(invalid(format!("stage '{name}': 'do' needs 'foreach'")));
    }
    stages.push(resolve_entry(root, context, name, definition)?);
    Ok(())
}

/// Interpolates one stage definition and checks it against DVC's schema.
fn resolve_entry(
    root: &Path,
    context: &Context,
    name: &str,
    definition: &Mapping,
) -> Result<Stage> {
    for key in definition.keys() {
        let key = key_string(key);
        if !STAGE_KEYS.contains(&key.as_str()) {
            return Err(stage_error(name, &key, "extra key not allowed"));
        }
    }
    let wdir = match definition.get("wdir") {
        None | Some(Value::Null) => String::new(),
        Some(wdir) => {
            let resolved = context
                .resolve(wdir, Some("wdir"))
                .and_then(|value| to_str(&value))
                .map_err(|err| stage_error(name, "wdir", err.0))?;
            let joined = join_normalized("", &resolved);
            if joined == "." {
                String::new()
            } else {
                joined
            }
        }
    };
    let mut stage_context;
    let context = if let Some(vars) = definition.get("vars") {
        stage_context = context.clone();
        load_vars(
            &mut stage_context,
            root,
            &wdir,
            vars,
            &format!("stages.{name}.vars"),
            name,
        )?;
        &stage_context
    } else {
        context
    };
    let mut resolved = Mapping::new();
    for (key, value) in definition {
        let key_text = key_string(key);
        if key_text == "vars" {
            continue;
        }
        let value = context
            .resolve(value, Some(&key_text))
            .map_err(|err| stage_error(name, &key_text, err.0))?;
        resolved.insert(Value::String(key_text), value);
    }
    build_stage(name, wdir, &resolved)
}
/// DVC's graph checks on outputs: none twice, none inside another.
fn check_outputs(stages: &[Stage]) -> Result<()> {
    let mut all: Vec<(String, &str)> = Vec::new();
    for stage in stages {
        for output in &stage.outs {
            let path = stage.repo_path(&output.def_path);
            if path.starts_with("../") || path == ".." || path.starts_with('/') || path == "." {
                return Err(stage_error(
                    &stage.name,
                    "outs",
                    format!("output '{}' is outside the repository", output.def_path),
                ));
            }
            all.push((path, &stage.name));
        }
    }
    for (idx, (path, stage)) in all.iter().enumerate() {
        for (other_path, other_stage) in &all[idx + 1..] {
            if path == other_path {
                return Err(invalid(format!(
                    "output '{path}' is specified in stages '{stage}' and '{other_stage}'; an output may belong to one stage only"
                )));
            }
            if is_same_or_inside(path, other_path) || is_same_or_inside(other_path, path) {
                return Err(invalid(format!(
                    "the output paths '{path}' ('{stage}') and '{other_path}' ('{other_stage}') overlap"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::OutputKind;

    fn parse_text(root: &Path, text: &str) -> Result<Vec<Stage>> {
        parse(root, text)
    }

    #[test]
    fn a_plain_stage_reads_every_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stages = parse_text(
            dir.path(),
            "stages:\n  train:\n    cmd: python train.py\n    wdir: src\n    deps: [train.py, ../data]\n    params: [lr, {cfg.json: [a.b]}, {all.toml: null}]\n    outs:\n    - model.pkl\n    - logs: {cache: false, persist: true}\n    metrics: [{m.json: {cache: false}}]\n    plots: [{p.csv: {x: step}}]\n    frozen: true\n",
        )
        .expect("parse");
        let stage = &stages[0];
        assert_eq!(stage.wdir, "src");
        assert_eq!(stage.commands, ["python train.py"]);
        assert_eq!(
            stage.all_dep_paths(),
            [
                "src/train.py",
                "data",
                "src/params.yaml",
                "src/cfg.json",
                "src/all.toml"
            ]
        );
        assert_eq!(stage.params[0].keys, ["lr"]);
        assert_eq!(stage.params[1].keys, ["a.b"]);
        assert!(stage.params[2].keys.is_empty());
        assert_eq!(stage.outs.len(), 4);
        assert!(!stage.outs[1].cache && stage.outs[1].persist);
        assert_eq!(stage.outs[2].kind, OutputKind::Metric);
        assert_eq!(stage.outs[3].kind, OutputKind::Plot);
        assert!(stage.frozen && !stage.always_changed);
    }

    #[test]
    fn foreach_and_matrix_names_are_dvcs() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("params.yaml"), "models: [a, b]\n").expect("write");
        let stages = parse_text(
            dir.path(),
            "vars:\n  - sizes: {small: 1, large: 9}\nstages:\n  list:\n    foreach: ${models}\n    do:\n      cmd: echo ${item}\n      outs: ['out-${item}.txt']\n  dict:\n    foreach: ${sizes}\n    do:\n      cmd: echo ${key}=${item}\n  records:\n    foreach: [{n: 1}, {n: 2}]\n    do:\n      cmd: echo ${item.n}\n  grid:\n    matrix:\n      model: [cnn, rnn]\n      lr: [0.1, 1.0e-05]\n      cfg: [{d: 1}]\n    cmd: train ${item.model} ${item.lr} ${key}\n",
        )
        .expect("parse");
        let names: Vec<&str> = stages.iter().map(|stage| stage.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "list@a",
                "list@b",
                "dict@small",
                "dict@large",
                "records@0",
                "records@1",
                "grid@cnn-0.1-cfg0",
                "grid@cnn-1e-05-cfg0",
                "grid@rnn-0.1-cfg0",
                "grid@rnn-1e-05-cfg0",
            ]
        );
        assert_eq!(stages[1].outs[0].def_path, "out-b.txt");
        assert_eq!(stages[3].commands, ["echo large=9"]);
        assert_eq!(stages[5].commands, ["echo 2"]);
        assert_eq!(stages[7].commands, ["train cnn 1e-05 cnn-1e-05-cfg0"]);
    }

    #[test]
    fn errors_name_the_stage_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            ("stages:\n  s:\n    deps: [a]\n", "stage 's': 'cmd'"),
            ("stages:\n  s:\n    cmd: echo ${nope}\n", "stage 's': 'cmd': Could not find 'nope'"),
            ("stages:\n  s:\n    cmd: x\n    outz: [a]\n", "stage 's': 'outz': extra key"),
            ("stages:\n  s:\n    cmd: x\n    frozen: maybe\n", "stage 's': 'frozen'"),
            ("vars: [{a: 1}]\nstages:\n  s:\n    cmd: x\n    outs: ['o${a}', {'${a}x': {cache: maybe}}]\n", "'cache' must be a boolean"),
            ("vars: ['${x}']\nstages: {}\n", "interpolating is not allowed"),
            ("stages:\n  a:\n    cmd: x\n    outs: [o]\n  b:\n    cmd: y\n    outs: [o]\n", "output 'o' is specified in stages 'a' and 'b'"),
            ("stages:\n  a:\n    cmd: x\n    outs: [d]\n  b:\n    cmd: y\n    outs: [d/f]\n", "overlap"),
        ];
        for (text, expected) in cases {
            let error = parse_text(dir.path(), text).expect_err(text).to_string();
            assert!(error.starts_with("dvc.yaml: "), "{error}");
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn stage_vars_and_files_with_selected_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("cfg.yaml"), "a: 1\nb: {c: two}\nz: 0\n").expect("write");
        let stages = parse_text(
            dir.path(),
            "vars: ['cfg.yaml:a,b']\nstages:\n  s:\n    vars: [{local: 3}]\n    cmd: run ${a} ${b.c} ${local}\n",
        )
        .expect("parse");
        assert_eq!(stages[0].commands, ["run 1 two 3"]);
        let error =
            parse_text(dir.path(), "stages:\n  s:\n    cmd: ${z}\n").expect_err("z not loaded");
        assert!(error.to_string().contains("Could not find 'z'"), "{error}");
    }
}
