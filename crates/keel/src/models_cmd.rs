//! `keel models`: the model registry of a running server from the terminal —
//! aligned tables for people, `--json` for scripts. Talks HTTP through
//! `keel-client`, so it works against any Keel (and, but for `lineage`, any
//! MLflow) server.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use keel_client::types::lineage::{LineageDataset, LineageMetric};
use keel_client::types::{ModelVersion, ModelVersionLineage, RegisteredModel, Tag};
use keel_client::{Client, ModelRef};
use serde::Serialize;
use serde_json::json;

use crate::cli::{AliasCommand, ModelsArgs, ModelsCommand};

const DEFAULT_TRACKING_URI: &str = "http://127.0.0.1:5000";

pub fn run(args: ModelsArgs) -> Result<()> {
    let tracking_uri = tracking_uri_from_env(args.tracking_uri);
    let client = Client::new(&tracking_uri)?;
    let output = execute(&client, args.command, args.json)?;
    print!("{output}");
    Ok(())
}

/// `--tracking-uri`, then `KEEL_TRACKING_URI`, then `MLFLOW_TRACKING_URI`; empty values don't count.
/// The tracking server: `flag`, else `$KEEL_TRACKING_URI`, else
/// `$MLFLOW_TRACKING_URI`, else the local default.
pub(crate) fn tracking_uri_from_env(flag: Option<String>) -> String {
    resolve_tracking_uri(
        flag,
        std::env::var("KEEL_TRACKING_URI").ok(),
        std::env::var("MLFLOW_TRACKING_URI").ok(),
    )
}

pub(crate) fn resolve_tracking_uri(
    flag: Option<String>,
    keel_env: Option<String>,
    mlflow_env: Option<String>,
) -> String {
    [flag, keel_env, mlflow_env]
        .into_iter()
        .flatten()
        .find(|uri| !uri.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TRACKING_URI.to_string())
}

/// Runs one command and answers what to print.
fn execute(client: &Client, command: ModelsCommand, as_json: bool) -> Result<String> {
    match command {
        ModelsCommand::List { filter } => {
            let models = client.search_registered_models(filter.as_deref())?;
            if as_json {
                return to_json(&json!({ "registered_models": models }));
            }
            Ok(models_table(&models))
        }
        ModelsCommand::Show { name } => {
            let model = client.get_registered_model(&name)?;
            if as_json {
                return to_json(&json!({ "registered_model": model }));
            }
            Ok(model_details(&model))
        }
        ModelsCommand::Versions { name } => {
            let versions = client.list_model_versions(&name)?;
            if as_json {
                return to_json(&json!({ "model_versions": versions }));
            }
            Ok(versions_table(&versions))
        }
        ModelsCommand::Alias(AliasCommand::Set {
            name,
            alias,
            version,
        }) => {
            client.set_alias(&name, &alias, &version)?;
            if as_json {
                return to_json(&json!({"name": name, "alias": alias, "version": version}));
            }
            Ok(format!(
                "alias '{alias}' of model '{name}' now points to version {version}\n"
            ))
        }
        ModelsCommand::Alias(AliasCommand::Delete { name, alias }) => {
            client.delete_alias(&name, &alias)?;
            if as_json {
                return to_json(&json!({"name": name, "alias": alias, "deleted": true}));
            }
            Ok(format!("alias '{alias}' of model '{name}' removed\n"))
        }
        ModelsCommand::Download { model, dir } => download(client, &model, &dir, as_json),
        ModelsCommand::Lineage { model } => {
            let model: ModelRef = model.parse()?;
            let lineage = client.lineage(&model)?;
            if as_json {
                return to_json(&lineage);
            }
            Ok(lineage_tree(&lineage))
        }
    }
}

fn download(client: &Client, model: &str, dir: &Path, as_json: bool) -> Result<String> {
    let model: ModelRef = model.parse()?;
    let (version, uri, files) = client.download_version(&model, dir)?;
    let total_bytes: u64 = files.iter().map(|file| file.bytes).sum();
    if as_json {
        let files: Vec<_> = files
            .iter()
            .map(|file| json!({"path": file.path, "bytes": file.bytes}))
            .collect();
        return to_json(&json!({
            "name": version.name,
            "version": version.version,
            "artifact_uri": uri,
            "directory": dir.display().to_string(),
            "files": files,
        }));
    }
    let mut out = String::new();
    for file in &files {
        let _ = writeln!(out, "{:>10}  {}", human_bytes(file.bytes), file.path);
    }
    let _ = writeln!(
        out,
        "downloaded {} files ({}) of {}/{} to {}",
        files.len(),
        human_bytes(total_bytes),
        version.name,
        version.version,
        dir.display()
    );
    Ok(out)
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("cannot write JSON output")?;
    text.push('\n');
    Ok(text)
}

// ------------------------------------------------------------ tables

/// Columns padded to their widest cell; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (idx, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(idx) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|cell| cell.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (idx, cell) in row.iter().enumerate() {
            if idx + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[idx].saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(value: Option<&str>) -> String {
    match value {
        Some(text) if !text.is_empty() => text.to_string(),
        _ => "-".to_string(),
    }
}

fn aliases_of(model: &RegisteredModel) -> String {
    let aliases: Vec<String> = model
        .aliases
        .iter()
        .map(|alias| format!("{}={}", alias.alias, alias.version))
        .collect();
    or_dash(Some(&aliases.join(",")))
}

fn latest_version(model: &RegisteredModel) -> String {
    model
        .latest_versions
        .iter()
        .filter_map(|version| version.version.parse::<i64>().ok())
        .max()
        .map_or_else(|| "-".to_string(), |version| version.to_string())
}

fn models_table(models: &[RegisteredModel]) -> String {
    if models.is_empty() {
        return "no registered models\n".to_string();
    }
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|model| {
            vec![
                model.name.clone(),
                latest_version(model),
                aliases_of(model),
                format_timestamp_ms(model.last_updated_timestamp),
                or_dash(model.description.as_deref().map(first_line)),
            ]
        })
        .collect();
    table(
        &["NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"],
        &rows,
    )
}

fn versions_table(versions: &[ModelVersion]) -> String {
    if versions.is_empty() {
        return "no versions\n".to_string();
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|version| {
            vec![
                version.version.clone(),
                version.current_stage.clone(),
                or_dash(Some(&version.aliases.join(","))),
                or_dash(version.run_id.as_deref()),
                format_timestamp_ms(version.creation_timestamp),
                version.source.clone(),
            ]
        })
        .collect();
    table(
        &["VERSION", "STAGE", "ALIASES", "RUN ID", "CREATED", "SOURCE"],
        &rows,
    )
}

fn tags_line(tags: &[Tag]) -> String {
    let tags: Vec<String> = tags
        .iter()
        .map(|tag| format!("{}={}", tag.key, tag.value))
        .collect();
    or_dash(Some(&tags.join(", ")))
}

fn model_details(model: &RegisteredModel) -> String {
    let mut out = String::new();
    let rows = [
        ("name", model.name.clone()),
        ("description", or_dash(model.description.as_deref())),
        ("created", format_timestamp_ms(model.creation_timestamp)),
        ("updated", format_timestamp_ms(model.last_updated_timestamp)),
        ("aliases", aliases_of(model)),
        ("tags", tags_line(&model.tags)),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "{:<12} {value}", format!("{label}:"));
    }
    if !model.latest_versions.is_empty() {
        let _ = writeln!(out, "\nlatest versions per stage:");
        out.push_str(&versions_table(&model.latest_versions));
    }
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

// ------------------------------------------------------------ lineage tree

fn metric_text(metric: &LineageMetric) -> String {
    let mut text = format!("{} = {} (step {})", metric.key, metric.value, metric.step);
    if let Some(dataset) = &metric.dataset_name {
        let _ = write!(text, " on {dataset}");
    }
    text
}

fn dataset_text(dataset: &LineageDataset) -> String {
    let context = dataset
        .context
        .as_deref()
        .map_or(String::new(), |context| format!(" [{context}]"));
    format!(
        "{}{context}  digest {}  source type {}",
        dataset.name, dataset.digest, dataset.source_type
    )
}

/// Writes `title` and one line per item under `indent`, or nothing when there are none.
fn section(out: &mut String, indent: &str, title: &str, items: Vec<String>) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{title}:");
    for item in items {
        let _ = writeln!(out, "{indent}  {item}");
    }
}

fn lineage_tree(lineage: &ModelVersionLineage) -> String {
    let mut out = String::new();
    let version = &lineage.model_version;
    let aliases = if version.aliases.is_empty() {
        String::new()
    } else {
        format!("  @{}", version.aliases.join(" @"))
    };
    let _ = writeln!(
        out,
        "model version {}/{}{aliases}  (stage {})",
        version.name, version.version, version.current_stage
    );
    let _ = writeln!(out, "│ source:  {}", version.source);
    let _ = writeln!(out, "│ files:   {}", version.storage_location);
    let _ = writeln!(
        out,
        "│ created: {}",
        format_timestamp_ms(version.creation_timestamp)
    );

    if let Some(model) = &lineage.logged_model {
        let _ = writeln!(
            out,
            "├─ logged model {} \"{}\"  ({})",
            model.model_id, model.name, model.status
        );
        let _ = writeln!(out, "│    files: {}", model.artifact_location);
        let params = model
            .params
            .iter()
            .map(|(key, value)| format!("{key} = {value}"))
            .collect();
        section(&mut out, "│    ", "params", params);
        section(
            &mut out,
            "│    ",
            "metrics",
            model.metrics.iter().map(metric_text).collect(),
        );
    }

    match &lineage.run {
        None => {
            let _ = writeln!(out, "└─ no run recorded");
        }
        Some(run) => {
            let experiment = run
                .experiment_name
                .as_deref()
                .map_or_else(|| run.experiment_id.clone(), |name| format!("\"{name}\""));
            let _ = writeln!(
                out,
                "└─ run {} \"{}\" in experiment {experiment}  ({})",
                run.run_id, run.run_name, run.status
            );
            let params = run
                .params
                .iter()
                .map(|(key, value)| format!("{key} = {value}"))
                .collect();
            section(&mut out, "     ", "params", params);
            section(
                &mut out,
                "     ",
                "metrics",
                run.metrics.iter().map(metric_text).collect(),
            );
            section(
                &mut out,
                "     ",
                "datasets",
                run.datasets.iter().map(dataset_text).collect(),
            );
            section(&mut out, "     ", "model inputs", run.model_inputs.clone());
        }
    }
    for note in &lineage.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

// ------------------------------------------------------------ formatting

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` UTC; `-` for 0.
fn format_timestamp_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".to_string();
    }
    let secs = ms.div_euclid(1000);
    let (days, secs_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_client::types::RegisteredModelAlias;

    #[test]
    fn tracking_uri_prefers_flag_then_keel_then_mlflow() {
        let some = |text: &str| Some(text.to_string());
        assert_eq!(
            resolve_tracking_uri(some("http://a"), some("http://b"), some("http://c")),
            "http://a"
        );
        assert_eq!(
            resolve_tracking_uri(None, some("http://b"), some("http://c")),
            "http://b"
        );
        assert_eq!(
            resolve_tracking_uri(None, some(""), some("http://c")),
            "http://c"
        );
        assert_eq!(resolve_tracking_uri(None, None, None), DEFAULT_TRACKING_URI);
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["NAME", "V"],
            &[
                vec!["a".into(), "1".into()],
                vec!["longer".into(), "22".into()],
            ],
        );
        assert_eq!(text, "NAME    V\na       1\nlonger  22\n");
    }

    #[test]
    fn models_table_shows_latest_version_and_aliases() {
        let model = RegisteredModel {
            name: "clf".into(),
            last_updated_timestamp: 86_400_000 + 3_661_000,
            latest_versions: vec![
                ModelVersion {
                    version: "2".into(),
                    ..ModelVersion::default()
                },
                ModelVersion {
                    version: "10".into(),
                    ..ModelVersion::default()
                },
            ],
            aliases: vec![RegisteredModelAlias {
                alias: "champion".into(),
                version: "2".into(),
            }],
            ..RegisteredModel::default()
        };
        let text = models_table(&[model]);
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("clf"), "{text}");
        assert!(row.contains(" 10 "), "{text}");
        assert!(row.contains("champion=2"), "{text}");
        assert!(row.contains("1970-01-02 01:01:01"), "{text}");
    }

    #[test]
    fn timestamps_and_sizes_read_well() {
        assert_eq!(format_timestamp_ms(0), "-");
        assert_eq!(format_timestamp_ms(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(
            format_timestamp_ms(1_700_000_000_123),
            "2023-11-14 22:13:20"
        );
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
