//! `keel data profile`, `suggest` and `validate`: column profiles, expectation
//! suites inferred from a reference, and validation of a dataset against a
//! suite with an exit code that CI can use. Inputs are Parquet or CSV files
//! (told apart by extension), read in batches.
//!
//! `validate` exits 0 when every expectation passed, 1 when at least one
//! failed, and 2 when it could not validate at all (missing or unreadable
//! file, invalid suite), so a pipeline can tell bad data from a broken step.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{AsArray, BooleanArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use keel_features::expr::Expr;
use keel_monitor::profile::{self, ColumnSummary, Profile, ProfileBuilder};
use keel_monitor::validation::{self, ExpectationResult, Suite, ValidationReport};
use keel_monitor::MonitorError;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

const BATCH_ROWS: usize = 65_536;

/// Exit code of `validate` when at least one expectation failed.
const EXIT_FAILED: i32 = 1;
/// Exit code of `validate` when the data could not be validated.
const EXIT_COULD_NOT_VALIDATE: i32 = 2;

/// `keel data profile`: the profile as JSON (stdout or `output`), a summary
/// on stderr.
pub fn profile(data: &Path, output: Option<&Path>) -> Result<()> {
    let profiled = profile_file(data)?;
    // The profile, plus a derived 20-bin histogram per numeric column (read
    // back, profiles ignore it: it comes from the sketch they keep).
    let mut value = serde_json::to_value(&profiled.profile)?;
    if let Some(columns) = value.get_mut("columns").and_then(|c| c.as_array_mut()) {
        for (column, profile) in columns.iter_mut().zip(&profiled.profile.columns) {
            if let keel_monitor::profile::ColumnSummary::Numeric(numeric) = &profile.summary {
                if let (Some((edges, counts)), Some(summary)) = (
                    numeric.histogram(20),
                    column.get_mut("summary").and_then(|s| s.as_object_mut()),
                ) {
                    summary.insert(
                        "histogram".to_owned(),
                        serde_json::json!({"edges": edges, "counts": counts}),
                    );
                }
            }
        }
    }
    let json = serde_json::to_string_pretty(&value)?;
    write_output(output, &format!("{json}\n"))?;
    eprint!("{}", summarize(&profiled));
    Ok(())
}

/// `keel data suggest`: a suite the reference passes, as YAML.
pub fn suggest(data: &Path, output: Option<&Path>) -> Result<()> {
    let profiled = profile_file(data)?;
    let mut suite = validation::suggest(&profiled.profile, &profiled.schema, profiled.rows);
    let file_name = data.file_name().unwrap_or(data.as_os_str());
    suite.name = Some(format!("suggested from {}", file_name.to_string_lossy()));
    let yaml = suite.to_yaml().context("cannot encode the suite")?;
    let header = format!(
        "# Suggested by `keel data suggest` from {} ({} rows).\n\
         # Review the bounds before relying on them in CI.\n",
        data.display(),
        profiled.rows
    );
    write_output(output, &format!("{header}{yaml}"))?;
    let destination = output.map_or_else(String::new, |path| format!(" in {}", path.display()));
    eprintln!(
        "{} expectations suggested from {} rows{destination}",
        suite.expectations.len(),
        profiled.rows
    );
    Ok(())
}

/// `keel data validate`: prints the report and ends the process with the
/// verdict's exit code; returns only when every expectation passed.
/// `run`: (tracking URI, run id) to log the outcome to.
pub fn validate(data: &Path, suite: &Path, json: bool, run: Option<(String, String)>) {
    let code = match validate_and_print(data, suite, json, run.as_ref()) {
        Ok(true) => return,
        Ok(false) => EXIT_FAILED,
        Err(err) => {
            eprintln!("error: {err:#}");
            EXIT_COULD_NOT_VALIDATE
        }
    };
    // `exit` skips destructors, so flush what was printed first.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code);
}

/// Whether every expectation passed; an error when the data could not be
/// validated at all.
fn validate_and_print(
    data: &Path,
    suite: &Path,
    json: bool,
    run: Option<&(String, String)>,
) -> Result<bool> {
    let report = validate_file(data, suite)?;
    if let Some((tracking_uri, run_id)) = run {
        log_to_run(tracking_uri, run_id, data, &report)?;
    }
    let text = if json {
        let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        format!("{json}\n")
    } else {
        render(&report, data)
    };
    print!("{text}");
    Ok(report.success)
}

/// Records the outcome on a tracking run: counts as metrics, the verdict and
/// the failed expectations as tags, so a run shows the data it was trained
/// on passed (or not).
fn log_to_run(
    tracking_uri: &str,
    run_id: &str,
    data: &Path,
    report: &ValidationReport,
) -> Result<()> {
    let failed: Vec<&ExpectationResult> = report.results.iter().filter(|r| !r.success).collect();
    let metrics = [
        ("validation.expectations", report.results.len() as f64),
        ("validation.failed", failed.len() as f64),
        ("validation.success", if report.success { 1.0 } else { 0.0 }),
        ("validation.rows", report.rows as f64),
    ];
    let mut failed_text = failed
        .iter()
        .map(|r| r.expectation.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    // MLflow caps tag values at 8,000 characters.
    if failed_text.len() > 7_900 {
        let mut end = 7_900;
        while !failed_text.is_char_boundary(end) {
            end -= 1;
        }
        failed_text.truncate(end);
        failed_text.push_str(" ...");
    }
    let tags = [
        ("keel.validation.data", data.display().to_string()),
        (
            "keel.validation.suite",
            report.suite.clone().unwrap_or_default(),
        ),
        ("keel.validation.failed", failed_text),
    ];
    let client = keel_client::Client::new(tracking_uri)?;
    client
        .log_batch(run_id, &metrics, &tags)
        .with_context(|| format!("cannot log the validation to run {run_id}"))
}

fn validate_file(data: &Path, suite_path: &Path) -> Result<ValidationReport> {
    // The suite first: a typo in it should not wait for a large file's scan.
    let text = std::fs::read_to_string(suite_path)
        .with_context(|| format!("cannot read the suite {}", suite_path.display()))?;
    let suite = Suite::from_yaml(&text)
        .with_context(|| format!("{} is not a valid expectation suite", suite_path.display()))?;
    let dataset = open(data)?;
    // An empty batch first, so the schema is known even without rows.
    let batches = std::iter::once(Ok(RecordBatch::new_empty(dataset.schema.clone())))
        .chain(dataset.batches)
        .map(|batch| batch.map_err(MonitorError::Arrow));
    let predicates = SqlPredicates::default();
    let evaluate = |predicate: &str, batch: &RecordBatch| predicates.evaluate(predicate, batch);
    validation::validate(&suite, batches, Some(&evaluate))
        .with_context(|| format!("cannot validate {}", data.display()))
}

/// SQL predicates compiled with keel-features' expression engine, once each
/// (against the first batch's schema).
#[derive(Default)]
struct SqlPredicates {
    compiled: RefCell<HashMap<String, Result<Expr, String>>>,
}

impl SqlPredicates {
    fn evaluate(&self, predicate: &str, batch: &RecordBatch) -> Result<BooleanArray, String> {
        let mut compiled = self.compiled.borrow_mut();
        let expr = compiled.entry(predicate.to_owned()).or_insert_with(|| {
            Expr::parse(predicate, batch.schema_ref(), &DataType::Boolean)
                .map_err(|err| err.to_string())
        });
        let expr = expr.as_ref().map_err(Clone::clone)?;
        let values = expr.evaluate(batch).map_err(|err| err.to_string())?;
        values
            .as_boolean_opt()
            .cloned()
            .ok_or_else(|| format!("expression `{predicate}` is not a boolean"))
    }
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>;

/// A data file opened for reading in batches.
struct Dataset {
    schema: SchemaRef,
    batches: Batches,
}

fn open(path: &Path) -> Result<Dataset> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("parquet" | "pq") => open_parquet(path, file),
        Some("csv") => open_csv(path, file),
        _ => bail!(
            "cannot tell the format of {}: name the file .parquet or .csv",
            path.display()
        ),
    }
}

fn open_parquet(path: &Path, file: File) -> Result<Dataset> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a Parquet file", path.display()))?
        .with_batch_size(BATCH_ROWS);
    let schema = builder.schema().clone();
    let reader = builder
        .build()
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Dataset {
        schema,
        batches: Box::new(reader),
    })
}

/// Reads a CSV file with a header; the column types are inferred from the
/// whole file (one extra pass) so that a late value never breaks the read.
/// Columns without any value are text.
fn open_csv(path: &Path, file: File) -> Result<Dataset> {
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (inferred, _) = format
        .infer_schema(BufReader::new(file), None)
        .with_context(|| format!("cannot read {} as CSV", path.display()))?;
    let fields: Vec<Field> = inferred
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Null => field.as_ref().clone().with_data_type(DataType::Utf8),
            _ => field.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(BATCH_ROWS)
        .build(BufReader::new(file))
        .with_context(|| format!("cannot read {} as CSV", path.display()))?;
    Ok(Dataset {
        schema,
        batches: Box::new(reader),
    })
}

/// A file's profile, with what `suggest` also needs.
struct Profiled {
    profile: Profile,
    schema: SchemaRef,
    rows: u64,
    /// Columns of types that profiles do not support.
    skipped: Vec<(String, DataType)>,
}

/// Profiles the columns that profiles support; the others are listed in
/// `skipped`. Streams: memory is bounded by one chunk of rows.
fn profile_file(data: &Path) -> Result<Profiled> {
    let dataset = open(data)?;
    let schema = dataset.schema;
    let mut profiled_columns = Vec::new();
    let mut skipped = Vec::new();
    for (index, field) in schema.fields().iter().enumerate() {
        if profile::is_supported(field.data_type()) {
            profiled_columns.push(index);
        } else {
            skipped.push((field.name().clone(), field.data_type().clone()));
        }
    }
    let mut builder = ProfileBuilder::new(PROFILE_CHUNK_ROWS);
    let mut rows: u64 = 0;
    for batch in dataset.batches {
        let batch = batch.with_context(|| format!("cannot read {}", data.display()))?;
        rows += batch.num_rows() as u64;
        builder
            .push(batch.project(&profiled_columns)?)
            .map_err(|err| anyhow::anyhow!("cannot profile {}: {err}", data.display()))?;
    }
    let profile = builder
        .finish()
        .map_err(|err| anyhow::anyhow!("cannot profile {}: {err}", data.display()))?;
    Ok(Profiled {
        profile,
        schema,
        rows,
        skipped,
    })
}

/// Rows profiled at once before merging into the running profile.
const PROFILE_CHUNK_ROWS: usize = 1 << 20;

fn write_output(output: Option<&Path>, text: &str) -> Result<()> {
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// A few lines per dataset for a human: one per column.
fn summarize(profiled: &Profiled) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} rows, {} columns",
        profiled.rows,
        profiled.schema.fields().len()
    );
    let width = profiled
        .schema
        .fields()
        .iter()
        .map(|field| field.name().chars().count())
        .max()
        .unwrap_or(0);
    for column in &profiled.profile.columns {
        let line = match &column.summary {
            ColumnSummary::Numeric(numeric) => {
                let bounds = match (numeric.min, numeric.max) {
                    (Some(min), Some(max)) => {
                        format!(
                            ", min {min}, max {max}, mean {}",
                            six_decimals(numeric.mean)
                        )
                    }
                    _ => String::new(),
                };
                let special = numeric.nan + numeric.positive_infinity + numeric.negative_infinity;
                let special = if special > 0 {
                    format!(", {special} NaN or infinite")
                } else {
                    String::new()
                };
                format!("numeric      {} nulls{special}{bounds}", numeric.nulls)
            }
            ColumnSummary::Categorical(categorical) => {
                let mut top: Vec<(&String, &u64)> = categorical.frequent.counts().iter().collect();
                top.sort_by(|left, right| right.1.cmp(left.1).then(left.0.cmp(right.0)));
                let top: Vec<String> = top
                    .iter()
                    .take(3)
                    .map(|(value, count)| format!("{value:?} ({count})"))
                    .collect();
                format!(
                    "categorical  {} nulls, {:.0} distinct, top {}",
                    categorical.nulls,
                    categorical.distinct_count(),
                    top.join(", ")
                )
            }
        };
        let _ = writeln!(out, "  {:<width$}  {line}", column.name);
    }
    for (name, data_type) in &profiled.skipped {
        let _ = writeln!(
            out,
            "  {name:<width$}  not profiled: {data_type} is not supported yet"
        );
    }
    out
}

/// The readable report: one line per expectation, then the verdict.
fn render(report: &ValidationReport, data: &Path) -> String {
    let mut out = String::new();
    let width = report
        .results
        .iter()
        .map(|result| result.expectation.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for result in &report.results {
        let status = if result.success { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "{status}  {:<width$}  {}",
            result.expectation,
            render_details(result)
        );
    }
    let n_failed = report.n_failed();
    let n_expectations = report.results.len();
    if report.success {
        let _ = writeln!(
            out,
            "PASSED: all {n_expectations} expectations hold on {} rows of {}",
            report.rows,
            data.display()
        );
    } else {
        let _ = writeln!(
            out,
            "FAILED: {n_failed} of {n_expectations} expectations failed on {} rows of {}",
            report.rows,
            data.display()
        );
    }
    out
}

fn render_details(result: &ExpectationResult) -> String {
    if let Some(error) = &result.error {
        return format!("error: {error}");
    }
    let share = || result.observed.as_f64().map_or_else(String::new, percent);
    let observed = match result.kind {
        "column_exists" => match result.observed.as_str() {
            Some(data_type) => format!("observed {data_type}"),
            None => "observed no such column".to_owned(),
        },
        "not_null" => format!("observed {} non-null", share()),
        "allowed_values" => format!("observed {} allowed", share()),
        "regex" => format!("observed {} matching", share()),
        "sql" => format!("observed {} of rows", share()),
        "unique" => format!("observed {} distinct", result.observed),
        "row_count" => format!("observed {} rows", result.observed),
        "range" => {
            let number = |key: &str| {
                result
                    .observed
                    .get(key)
                    .and_then(Value::as_f64)
                    .map_or_else(|| "none".to_owned(), |value| value.to_string())
            };
            let in_range = result
                .observed
                .get("share")
                .and_then(Value::as_f64)
                .map_or_else(String::new, percent);
            format!(
                "observed min {}, max {}, {in_range} in range",
                number("min"),
                number("max")
            )
        }
        _ => format!("observed {}", result.observed),
    };
    if result.unexpected_count == 0 {
        return observed;
    }
    // Rows are named as such; values are quoted, so "" and " " show.
    let rows_named = matches!(result.kind, "not_null" | "sql");
    let examples: Vec<String> = result
        .unexpected_examples
        .iter()
        .map(|example| {
            if rows_named {
                example.clone()
            } else {
                format!("{example:?}")
            }
        })
        .collect();
    format!(
        "{observed}; {} unexpected, e.g. {}",
        result.unexpected_count,
        examples.join(", ")
    )
}

/// A share as a percentage with two decimals, never rounded to 0% or 100%
/// when it is not exactly that.
fn percent(share: f64) -> String {
    let text = format!("{:.2}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "100" if share < 1.0 => ">99.99%".to_owned(),
        "0" if share > 0.0 => "<0.01%".to_owned(),
        text => format!("{text}%"),
    }
}

/// A number with at most six decimals and no trailing zeros.
fn six_decimals(value: f64) -> String {
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
