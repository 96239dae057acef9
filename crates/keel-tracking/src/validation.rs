//! MLflow's input rules: key names, value lengths, batch limits.

use keel_core::tracking::{Metric, Param, Tag};
use keel_core::{KeelError, Result};

pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// log-batch request bodies larger than this are refused, as MLflow does.
pub const MAX_BATCH_LOG_REQUEST_SIZE: usize = 1_000_000;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
pub const MAX_EXPERIMENT_TAG_KEY_LENGTH: usize = 250;
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20000;
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const MAX_DATASET_NAME_SIZE: usize = 500;
pub const MAX_DATASET_DIGEST_SIZE: usize = 36;
pub const MAX_DATASET_SOURCE_SIZE: usize = 65535;
pub const MAX_DATASET_SCHEMA_SIZE: usize = 1_048_575;
pub const MAX_DATASET_PROFILE_SIZE: usize = 16_777_215;
pub const MAX_INPUT_TAG_KEY_SIZE: usize = 255;
pub const MAX_INPUT_TAG_VALUE_SIZE: usize = 500;

fn invalid_value(path: &str, value: &str, suffix: &str) -> KeelError {
    let suffix = if suffix.is_empty() {
        String::new()
    } else {
        format!(" {suffix}")
    };
    KeelError::invalid(format!(
        "Invalid value \"{value}\" for parameter '{path}' supplied.{suffix}"
    ))
}

/// Key names may hold alphanumerics, `_ - . / :` and spaces, and must not
/// resolve to another name when treated as a path.
pub fn validate_key_name(name: &str, path: &str) -> Result<()> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/' | ':'));
    if !valid_chars {
        return Err(invalid_value(
            path,
            name,
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).",
        ));
    }
    if !is_normalized_path(name) {
        return Err(invalid_value(
            path,
            name,
            "Names may be treated as files in certain cases, and must not resolve to other names when treated as such.",
        ));
    }
    Ok(())
}

/// True when `name` equals its posix-normalized form and stays relative (as MLflow's `path_not_unique`).
fn is_normalized_path(name: &str) -> bool {
    if name.is_empty() || name.starts_with('/') || name.ends_with('/') {
        return false;
    }
    name.split('/')
        .all(|part| !part.is_empty() && part != "." && part != "..")
}

pub fn validate_length(entity: &str, limit: usize, value: &str) -> Result<()> {
    if value.chars().count() > limit {
        return Err(KeelError::invalid(format!(
            "'{entity}' exceeds the maximum length of {limit} characters"
        )));
    }
    Ok(())
}

fn check_batch_limit(entity: &str, limit: usize, length: usize) -> Result<()> {
    if length > limit {
        return Err(KeelError::invalid(format!(
            "A batch logging request can contain at most {limit} {entity}. Got {length} {entity}. \
             Please split up {entity} across multiple requests and try again."
        )));
    }
    Ok(())
}

pub fn validate_batch_limits(n_metrics: usize, n_params: usize, n_tags: usize) -> Result<()> {
    check_batch_limit("metrics", MAX_METRICS_PER_BATCH, n_metrics)?;
    check_batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, n_params)?;
    check_batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, n_tags)?;
    check_batch_limit(
        "metrics, params, and tags",
        MAX_ENTITIES_PER_BATCH,
        n_metrics + n_params + n_tags,
    )
}

pub fn validate_metric(metric: &Metric, path: &str) -> Result<()> {
    validate_key_name(&metric.key, &format!("{path}name"))?;
    if metric.timestamp < 0 {
        return Err(invalid_value(
            &format!("{path}timestamp"),
            &metric.timestamp.to_string(),
            &format!(
                "metric '{}' (value={}). Timestamp must be a nonnegative long (64-bit integer) ",
                metric.key, metric.value
            ),
        ));
    }
    validate_length("Metric name", MAX_ENTITY_KEY_LENGTH, &metric.key)
}

pub fn validate_param(param: &Param, path: &str) -> Result<()> {
    validate_key_name(&param.key, &format!("{path}key"))?;
    validate_length("Param key", MAX_ENTITY_KEY_LENGTH, &param.key)?;
    validate_length("Param value", MAX_PARAM_VAL_LENGTH, &param.value)
}

pub fn validate_tag(tag: &Tag, path: &str) -> Result<()> {
    validate_key_name(&tag.key, &format!("{path}key"))?;
    validate_length(&format!("{path}key"), MAX_ENTITY_KEY_LENGTH, &tag.key)?;
    validate_length(&format!("{path}value"), MAX_TAG_VAL_LENGTH, &tag.value)
}

pub fn validate_experiment_tag(tag: &Tag) -> Result<()> {
    validate_key_name(&tag.key, "key")?;
    validate_length("key", MAX_EXPERIMENT_TAG_KEY_LENGTH, &tag.key)?;
    validate_length("value", MAX_EXPERIMENT_TAG_VAL_LENGTH, &tag.value)
}

/// Params in one batch must have distinct keys.
pub fn validate_param_keys_unique(params: &[Param]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let duplicates: Vec<&str> = params
        .iter()
        .filter(|p| !seen.insert(p.key.as_str()))
        .map(|p| p.key.as_str())
        .collect();
    if !duplicates.is_empty() {
        return Err(KeelError::invalid(format!(
            "Duplicate parameter keys have been submitted: {duplicates:?}. Please ensure the \
             request contains only one param value per param key."
        )));
    }
    Ok(())
}

pub fn validate_experiment_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(KeelError::invalid(format!(
            "Invalid experiment name: '{name}'"
        )));
    }
    validate_length("name", MAX_EXPERIMENT_NAME_LENGTH, name)
}

/// Run ids: an alphanumeric first character, then word characters and dashes, at most 256.
pub fn validate_run_id(run_id: &str) -> Result<()> {
    let mut chars = run_id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !first_ok || !rest_ok || run_id.len() > 256 {
        return Err(invalid_value("run_id", run_id, ""));
    }
    Ok(())
}

/// Experiment ids are integers in Keel's stores.
pub fn validate_experiment_id(experiment_id: &str) -> Result<()> {
    if experiment_id.parse::<i64>().is_err() {
        return Err(KeelError::invalid(format!(
            "Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_follow_mlflow_rules() {
        for good in ["loss", "val/loss", "f1 score", "a.b-c_d:e", "épreuve"] {
            assert!(validate_key_name(good, "key").is_ok(), "{good}");
        }
        for bad in [
            "",
            "a\\b",
            "../x",
            "a/../b",
            "/abs",
            "a/",
            "a//b",
            "./a",
            "tab\tkey",
            "semi;colon",
        ] {
            assert!(validate_key_name(bad, "key").is_err(), "{bad}");
        }
    }

    #[test]
    fn batch_limits_are_mlflow_limits() {
        assert!(validate_batch_limits(1000, 0, 0).is_ok());
        assert!(validate_batch_limits(1001, 0, 0).is_err());
        assert!(validate_batch_limits(0, 101, 0).is_err());
        assert!(validate_batch_limits(0, 0, 101).is_err());
        let err = validate_batch_limits(900, 100, 1).unwrap_err();
        assert!(
            err.message.contains("metrics, params, and tags"),
            "{}",
            err.message
        );
    }

    #[test]
    fn long_values_are_refused() {
        let param = Param::new("p", "x".repeat(MAX_PARAM_VAL_LENGTH + 1));
        assert!(validate_param(&param, "").is_err());
        assert!(validate_param(&Param::new("p", "x".repeat(MAX_PARAM_VAL_LENGTH)), "").is_ok());
    }

    #[test]
    fn duplicate_param_keys_are_refused() {
        let params = vec![Param::new("a", "1"), Param::new("a", "2")];
        assert!(validate_param_keys_unique(&params).is_err());
    }

    #[test]
    fn run_ids_and_experiment_ids() {
        assert!(validate_run_id("0123abcd").is_ok());
        assert!(validate_run_id("../etc").is_err());
        assert!(validate_run_id("").is_err());
        assert!(validate_experiment_id("12").is_ok());
        assert!(validate_experiment_id("abc").is_err());
    }
}
