//! Monitor definitions, as a YAML file holds them:
//!
//! ```yaml
//! monitors:
//!   - name: churn-drift
//!     model: churn                 # served model name
//!     reference: data/train.parquet  # default: the training dataset logged on
//!                                  # the served registry version's run
//!     reference_rev: v1.0          # optional: that path as DVC tracked it at a git revision
//!     column_thresholds: {age: 0.2}  # instead of each test's default
//!     features: [age, plan]        # default: every reference column the log has
//!     column_map: {X.0: age}       # inference-log column -> reference column
//!     window: 1h                   # rows of the last hour
//!     every: 5m                    # schedule; absent = on demand only
//!     min_rows: 30                 # fewer rows: no verdict, no alert
//!     drift_share: 0.5
//!     stattest: psi                # every column; default: Evidently's choice
//!     column_stattests: {age: ks}
//!     performance:                 # once labels are posted by request id
//!       task: classification       # or regression
//!       prediction: output_label   # inference-log column holding the prediction
//!       score: output_probability.1  # optional, for ROC AUC (binary)
//!       positive_label: "1"        # default "1"
//!       estimate:                  # before labels arrive: NannyML's CBPE (binary)
//!         target: churned          # reference column with the ground truth
//!         chunk_size: 500          # rows per estimate
//!     multivariate: {columns: [age, plan]}  # NannyML's PCA reconstruction error
//!     alerts:                      # see `alerts`
//!       - {name: drifted, when: dataset_drift, for: 10m, webhook: {url: https://...}}
//! ```
//!
//! Relative reference paths are resolved against the YAML file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keel_monitor::drift::StatTest;
use serde::{Deserialize, Serialize};

use crate::alerts::{AlertRule, RawAlert};
use crate::LiveError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorFile {
    monitors: Vec<RawMonitor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitor {
    name: String,
    model: String,
    #[serde(default)]
    reference: Option<PathBuf>,
    #[serde(default)]
    reference_rev: Option<String>,
    #[serde(default)]
    column_thresholds: BTreeMap<String, f64>,
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    column_map: BTreeMap<String, String>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    every: Option<String>,
    #[serde(default)]
    min_rows: Option<u64>,
    #[serde(default)]
    drift_share: Option<f64>,
    #[serde(default)]
    stattest: Option<String>,
    #[serde(default)]
    column_stattests: BTreeMap<String, String>,
    #[serde(default)]
    performance: Option<PerformanceSpec>,
    #[serde(default)]
    multivariate: Option<MultivariateSpec>,
    #[serde(default)]
    alerts: Vec<RawAlert>,
}

/// Multivariate drift (NannyML's PCA reconstruction error) of a window
/// against the reference's chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultivariateSpec {
    /// Reference columns [default: the monitor's `features`].
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Rows per reference chunk [default: ten chunks].
    #[serde(default)]
    pub chunk_size: Option<usize>,
}

/// What a monitor computes once ground truth arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceSpec {
    pub task: Task,
    /// The inference-log column holding the model's prediction.
    pub prediction: String,
    /// The inference-log column holding the positive class's score (ROC AUC).
    #[serde(default)]
    pub score: Option<String>,
    #[serde(default = "default_positive_label")]
    pub positive_label: String,
    /// Estimate performance before labels arrive (NannyML's CBPE, binary
    /// classification), fitted on the reference's labelled predictions.
    #[serde(default)]
    pub estimate: Option<EstimateSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimateSpec {
    /// The reference column holding the ground truth.
    pub target: String,
    /// The reference column of the model's prediction [default: the
    /// reference name of `performance.prediction`].
    #[serde(default)]
    pub prediction: Option<String>,
    /// The reference column of the positive class's score [default: the
    /// reference name of `performance.score`].
    #[serde(default)]
    pub score: Option<String>,
    /// Rows per chunk, in the reference and in a window.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
}

fn default_chunk_size() -> usize {
    500
}

fn default_positive_label() -> String {
    "1".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classification,
    Regression,
}

/// A validated monitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorSpec {
    pub name: String,
    pub model: String,
    /// `None` until resolved from the model's lineage (see `keel serve`).
    pub reference: Option<PathBuf>,
    /// A data version: the reference as DVC tracked it at this git revision
    /// (read from the DVC cache), instead of the file in the workspace.
    pub reference_rev: Option<String>,
    /// Thresholds per column instead of each test's default.
    pub column_thresholds: BTreeMap<String, f64>,
    pub features: Option<Vec<String>>,
    pub column_map: BTreeMap<String, String>,
    #[serde(with = "seconds")]
    pub window: Duration,
    #[serde(with = "optional_seconds")]
    pub every: Option<Duration>,
    pub min_rows: u64,
    pub drift_share: f64,
    pub stattest: Option<StatTest>,
    pub column_stattests: BTreeMap<String, StatTest>,
    pub performance: Option<PerformanceSpec>,
    pub multivariate: Option<MultivariateSpec>,
    pub alerts: Vec<AlertRule>,
}

mod seconds {
    pub fn serialize<S: serde::Serializer>(
        value: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(value.as_secs_f64())
    }
}

mod optional_seconds {
    pub fn serialize<S: serde::Serializer>(
        value: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.serialize_some(&value.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// Default window of rows a monitor looks at.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);
/// Default minimum of rows in a window for a verdict.
pub const DEFAULT_MIN_ROWS: u64 = 30;

/// Reads and validates a monitor file.
pub fn load(path: &Path) -> Result<Vec<MonitorSpec>, LiveError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| LiveError::Spec(format!("cannot read {}: {err}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|err| LiveError::Spec(format!("{}: {err}", path.display())))
}

/// Parses monitor YAML; relative references are taken from `base`.
pub fn parse(text: &str, base: &Path) -> Result<Vec<MonitorSpec>, String> {
    let file: MonitorFile = serde_yaml_ng::from_str(text).map_err(|err| err.to_string())?;
    let mut seen = std::collections::BTreeSet::new();
    let mut specs = Vec::new();
    for raw in file.monitors {
        let name = raw.name.clone();
        let spec = validate(raw, base).map_err(|err| format!("monitor `{name}`: {err}"))?;
        if !seen.insert(spec.name.clone()) {
            return Err(format!("monitor `{}` is defined twice", spec.name));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// A monitor defined through the API: the YAML file's fields as JSON, its
/// name from the URL (a `name` in the body must agree); a reference path
/// must be absolute.
pub fn parse_api(name: &str, body: &serde_json::Value) -> Result<MonitorSpec, String> {
    let mut body = body.clone();
    let Some(fields) = body.as_object_mut() else {
        return Err("a monitor is a JSON object with the fields of the --monitors file".to_owned());
    };
    match fields.get("name") {
        Some(serde_json::Value::String(given)) if given != name => {
            return Err(format!(
                "the body names monitor `{given}`, the URL `{name}`"
            ));
        }
        _ => {
            fields.insert(
                "name".to_owned(),
                serde_json::Value::String(name.to_owned()),
            );
        }
    }
    let raw: RawMonitor = serde_json::from_value(body).map_err(|err| err.to_string())?;
    if raw
        .reference
        .as_ref()
        .is_some_and(|path| !path.is_absolute())
    {
        return Err("reference must be an absolute path".to_owned());
    }
    validate(raw, Path::new("/")).map_err(|err| format!("monitor `{name}`: {err}"))
}

fn validate(raw: RawMonitor, base: &Path) -> Result<MonitorSpec, String> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !valid_name(&raw.name) {
        return Err("names use letters, digits, '-', '_' and '.'".to_owned());
    }
    if raw.model.is_empty() || raw.model.contains('/') || raw.model.starts_with('.') {
        return Err(format!("`{}` is not a served model name", raw.model));
    }
    let window = match &raw.window {
        Some(text) => parse_duration(text)?,
        None => DEFAULT_WINDOW,
    };
    if window.is_zero() {
        return Err("window must be above 0".to_owned());
    }
    let every = raw.every.as_deref().map(parse_duration).transpose()?;
    if every.is_some_and(|every| every < Duration::from_secs(1)) {
        return Err("every must be at least 1s".to_owned());
    }
    let drift_share = raw.drift_share.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&drift_share) {
        return Err("drift_share must be between 0 and 1".to_owned());
    }
    let test = |name: &str| {
        StatTest::parse(name).ok_or_else(|| {
            format!("unknown test `{name}` (ks, chisquare, z, wasserstein, jensenshannon, psi, kl_div, hellinger, mannw, cramer_von_mises, anderson)")
        })
    };
    let stattest = raw.stattest.as_deref().map(test).transpose()?;
    let column_stattests = raw
        .column_stattests
        .iter()
        .map(|(column, name)| Ok((column.clone(), test(name)?)))
        .collect::<Result<_, String>>()?;
    if let Some(features) = &raw.features {
        if features.is_empty() {
            return Err("features, when given, must name at least one column".to_owned());
        }
    }
    if let Some(perf) = &raw.performance {
        if let Some(estimate) = &perf.estimate {
            if perf.task != Task::Classification || perf.score.is_none() {
                return Err(
                    "performance.estimate (CBPE) needs task: classification and a score column"
                        .to_owned(),
                );
            }
            if estimate.chunk_size == 0 {
                return Err("performance.estimate.chunk_size must be at least 1".to_owned());
            }
        }
    }
    if let Some(multivariate) = &raw.multivariate {
        if multivariate.columns.is_none() && raw.features.is_none() {
            return Err("multivariate needs `columns` (or the monitor's `features`)".to_owned());
        }
        if multivariate.chunk_size == Some(0) {
            return Err("multivariate.chunk_size must be at least 1".to_owned());
        }
    }
    let alerts: Vec<AlertRule> = raw
        .alerts
        .into_iter()
        .map(RawAlert::validate)
        .collect::<Result<_, _>>()?;
    let mut alert_names = std::collections::BTreeSet::new();
    for alert in &alerts {
        if !alert_names.insert(alert.name.as_str()) {
            return Err(format!("alert `{}` is defined twice", alert.name));
        }
    }
    if raw.reference_rev.is_some() && raw.reference.is_none() {
        return Err("reference_rev needs `reference:` (the DVC-tracked path)".to_owned());
    }
    if let Some((column, value)) = raw
        .column_thresholds
        .iter()
        .find(|(_, v)| !v.is_finite() || **v < 0.0)
    {
        return Err(format!(
            "column_thresholds: `{column}` has {value}; thresholds are non-negative numbers"
        ));
    }
    let reference = raw.reference.map(|reference| {
        if reference.is_absolute() {
            reference
        } else {
            base.join(reference)
        }
    });
    Ok(MonitorSpec {
        name: raw.name,
        model: raw.model,
        reference,
        reference_rev: raw.reference_rev,
        column_thresholds: raw.column_thresholds,
        features: raw.features,
        column_map: raw.column_map,
        window,
        every,
        min_rows: raw.min_rows.unwrap_or(DEFAULT_MIN_ROWS),
        drift_share,
        stattest,
        column_stattests,
        performance: raw.performance,
        multivariate: raw.multivariate,
        alerts,
    })
}

/// `90s`, `15m`, `1h`, `2d`, `1w`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 15m, 1h or 2d"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => {
            return Err(format!(
                "`{text}` is not a duration like 90s, 15m, 1h or 2d"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("`{text}` is not a duration like 90s, 15m, 1h or 2d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn parses_and_resolves_relative_references() {
        let specs = parse(
            "monitors:\n  - name: m1\n    model: lr\n    reference: ref.parquet\n    window: 30m\n    every: 1m\n    column_stattests: {a: psi}\n    performance: {task: classification, prediction: output_label}\n",
            Path::new("/repo"),
        )
        .unwrap();
        assert_eq!(specs[0].reference, Some(PathBuf::from("/repo/ref.parquet")));
        assert_eq!(specs[0].window, Duration::from_secs(1800));
        assert_eq!(specs[0].every, Some(Duration::from_secs(60)));
        assert_eq!(specs[0].column_stattests["a"], StatTest::Psi);
        assert_eq!(specs[0].performance.as_ref().unwrap().positive_label, "1");
    }

    #[test]
    fn rejects_mistakes_with_the_monitor_named() {
        let err = parse(
            "monitors:\n  - name: m1\n    model: lr\n    reference: r.parquet\n    stattest: nope\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            err.contains("monitor `m1`") && err.contains("unknown test `nope`"),
            "{err}"
        );
        let err = parse(
            "monitors:\n  - {name: a, model: lr, reference: r.parquet}\n  - {name: a, model: lr, reference: r.parquet}\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.contains("defined twice"), "{err}");
        let err = parse(
            "monitors:\n  - {name: a, model: lr, reference: r.parquet, windw: 1h}\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.contains("windw"), "{err}");
    }
}
