//! Data validation in Great Expectations' model: an expectation suite (YAML)
//! checked in one streaming pass over Arrow record batches, with a verdict,
//! the observed value and a few offending values per expectation; and suites
//! suggested from a reference dataset's profile.
//!
//! Values are compared as they are in the data, with two conventions:
//!
//! - Nulls are only counted by `not_null`; `range`, `allowed_values` and
//!   `regex` judge the non-null values, and their shares are of those. NaN is
//!   a value, not a null: `range` counts it as out of range.
//! - `allowed_values`, `regex` and `unique` compare values as text: strings as
//!   they are, booleans as `true`/`false`, integers in decimal, floats in
//!   Rust's shortest round-trip form (`1` for 1.0, `0.5`), anything else as
//!   Arrow casts it to a string. Numbers and booleans written in the YAML are
//!   formatted the same way, so `values: [1, 2.5, true]` does what it says.

use std::collections::HashSet;
use std::fmt;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float32Type, Float64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use regex::Regex;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::profile::{ColumnSummary, Profile};
use crate::MonitorError;

/// Offending values (or rows) reported per expectation, at most.
pub const MAX_EXAMPLES: usize = 5;

/// Categorical columns with at most this many distinct values in the
/// reference get an `allowed_values` expectation from [`suggest`].
pub const MAX_SUGGESTED_CATEGORIES: usize = 20;

/// An expectation suite: what a dataset must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub expectations: Vec<Expectation>,
}

/// A suite file that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SuiteError(#[from] serde_yaml_ng::Error);

impl Suite {
    /// Parses a suite; errors name the expectation and the line.
    pub fn from_yaml(text: &str) -> Result<Suite, SuiteError> {
        Ok(serde_yaml_ng::from_str(text)?)
    }

    pub fn to_yaml(&self) -> Result<String, SuiteError> {
        Ok(serde_yaml_ng::to_string(self)?)
    }
}

/// One expectation; `expect:` names the kind. Every `min_share` defaults to
/// 1 (all rows) and must lie in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expectation {
    /// The column is present and, with `dtype`, of that family of Arrow types.
    ColumnExists {
        column: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dtype: Option<ColumnType>,
    },
    /// The share of non-null rows is at least `min_share`.
    NotNull {
        column: String,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        min_share: f64,
    },
    /// At least `min_share` of the non-null values lie in [`min`, `max`]
    /// (either bound may be left out; NaN is out of range).
    Range {
        column: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        min_share: f64,
    },
    /// At least `min_share` of the non-null values are among `values`.
    AllowedValues {
        column: String,
        #[serde(deserialize_with = "scalars_as_text")]
        values: Vec<String>,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        min_share: f64,
    },
    /// At least `min_share` of the non-null values match `pattern` as a
    /// whole (the pattern is anchored at both ends; `regex` crate syntax).
    Regex {
        column: String,
        pattern: String,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        min_share: f64,
    },
    /// No non-null value appears twice. Exact: keeps every distinct value in
    /// memory (about its text size plus 50 bytes each).
    Unique { column: String },
    /// The number of rows lies in [`min`, `max`].
    RowCount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u64>,
    },
    /// At least `min_share` of the rows satisfy a SQL predicate (NULL counts
    /// as not satisfied).
    Sql {
        predicate: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        min_share: f64,
    },
}

fn one() -> f64 {
    1.0
}

fn is_one(share: &f64) -> bool {
    *share == 1.0
}

/// Families of Arrow types that `column_exists` can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Signed and unsigned integers of any width.
    Integer,
    /// Floats of any width and decimals.
    Float,
    /// UTF-8 strings (plain, large or view) and dictionaries of them.
    String,
    Boolean,
    /// Timestamps of any unit, with or without a time zone.
    Timestamp,
    Date,
}

impl ColumnType {
    /// The family of an Arrow type (a dictionary counts as its values).
    pub fn of(data_type: &DataType) -> Option<ColumnType> {
        match data_type {
            DataType::Dictionary(_, values) => ColumnType::of(values),
            data_type if data_type.is_integer() => Some(ColumnType::Integer),
            data_type if data_type.is_numeric() => Some(ColumnType::Float),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(ColumnType::String),
            DataType::Boolean => Some(ColumnType::Boolean),
            DataType::Timestamp(_, _) => Some(ColumnType::Timestamp),
            DataType::Date32 | DataType::Date64 => Some(ColumnType::Date),
            _ => None,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::String => "string",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Date => "date",
        };
        formatter.write_str(name)
    }
}

/// Reads a YAML list of strings, numbers and booleans as text (see the
/// module's conventions), so `values: [1, true]` needs no quotes.
fn scalars_as_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct ScalarText(String);

    impl<'de> Deserialize<'de> for ScalarText {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ScalarVisitor)
        }
    }

    struct ScalarVisitor;

    impl Visitor<'_> for ScalarVisitor {
        type Value = ScalarText;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a string, a number or a boolean")
        }

        fn visit_bool<E: de::Error>(self, value: bool) -> Result<ScalarText, E> {
            Ok(ScalarText(value.to_string()))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<ScalarText, E> {
            Ok(ScalarText(value.to_string()))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<ScalarText, E> {
            Ok(ScalarText(value.to_string()))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<ScalarText, E> {
            Ok(ScalarText(value.to_string()))
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<ScalarText, E> {
            Ok(ScalarText(value.to_owned()))
        }
    }

    let scalars = Vec::<ScalarText>::deserialize(deserializer)?;
    Ok(scalars.into_iter().map(|scalar| scalar.0).collect())
}

impl Expectation {
    /// The `expect:` tag of this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Expectation::ColumnExists { .. } => "column_exists",
            Expectation::NotNull { .. } => "not_null",
            Expectation::Range { .. } => "range",
            Expectation::AllowedValues { .. } => "allowed_values",
            Expectation::Regex { .. } => "regex",
            Expectation::Unique { .. } => "unique",
            Expectation::RowCount { .. } => "row_count",
            Expectation::Sql { .. } => "sql",
        }
    }

    /// The column it is about, if it is about one.
    pub fn column(&self) -> Option<&str> {
        match self {
            Expectation::ColumnExists { column, .. }
            | Expectation::NotNull { column, .. }
            | Expectation::Range { column, .. }
            | Expectation::AllowedValues { column, .. }
            | Expectation::Regex { column, .. }
            | Expectation::Unique { column } => Some(column),
            Expectation::RowCount { .. } | Expectation::Sql { .. } => None,
        }
    }

    fn min_share(&self) -> Option<f64> {
        match self {
            Expectation::NotNull { min_share, .. }
            | Expectation::Range { min_share, .. }
            | Expectation::AllowedValues { min_share, .. }
            | Expectation::Regex { min_share, .. }
            | Expectation::Sql { min_share, .. } => Some(*min_share),
            _ => None,
        }
    }

    /// A one-line description for reports, e.g. "at least 95% of `age` is
    /// between 0 and 120".
    pub fn describe(&self) -> String {
        let share = |column: &str| match self.min_share() {
            Some(min_share) if min_share < 1.0 => {
                format!(
                    "at least {}% of `{column}`",
                    format_number_2(min_share * 100.0)
                )
            }
            _ => format!("`{column}`"),
        };
        match self {
            Expectation::ColumnExists { column, dtype } => match dtype {
                Some(dtype) => format!("column `{column}` exists and is {dtype}"),
                None => format!("column `{column}` exists"),
            },
            Expectation::NotNull { column, .. } => format!("{} is not null", share(column)),
            Expectation::Range {
                column, min, max, ..
            } => format!("{} is {}", share(column), describe_bounds(*min, *max)),
            Expectation::AllowedValues { column, values, .. } => {
                let mut listed: Vec<&str> = values.iter().take(10).map(String::as_str).collect();
                if values.len() > 10 {
                    listed.push("...");
                }
                format!("{} is one of [{}]", share(column), listed.join(", "))
            }
            Expectation::Regex {
                column, pattern, ..
            } => format!("{} matches /{pattern}/", share(column)),
            Expectation::Unique { column } => format!("`{column}` is unique"),
            Expectation::RowCount { min, max } => format!(
                "row count is {}",
                describe_bounds(min.map(|min| min as f64), max.map(|max| max as f64))
            ),
            Expectation::Sql {
                predicate,
                name,
                min_share,
            } => {
                let rows = if *min_share < 1.0 {
                    format!(
                        "at least {}% of rows satisfy",
                        format_number_2(min_share * 100.0)
                    )
                } else {
                    "every row satisfies".to_owned()
                };
                match name {
                    Some(name) => format!("{name}: {rows} `{predicate}`"),
                    None => format!("{rows} `{predicate}`"),
                }
            }
        }
    }
}

fn describe_bounds(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(min), Some(max)) => format!("between {min} and {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => "unbounded".to_owned(),
    }
}

/// A number with at most two decimals and no trailing zeros.
fn format_number_2(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The verdict on one expectation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationResult {
    /// The `expect:` tag.
    pub kind: &'static str,
    pub column: Option<String>,
    /// One-line human description.
    pub expectation: String,
    pub success: bool,
    /// What was measured: a share (of non-null values, or of rows for
    /// `not_null` and `sql`), a type name, a row count, or for `range` an
    /// object with the observed `min`, `max` and `share` in range.
    pub observed: Value,
    /// Values (or rows, for `not_null` and `sql`) that broke the expectation.
    pub unexpected_count: u64,
    /// Up to [`MAX_EXAMPLES`] distinct offending values, or "row N" (0-based).
    pub unexpected_examples: Vec<String>,
    /// Why the expectation could not be checked (missing column, invalid
    /// regex or SQL, bad parameter); such an expectation fails.
    pub error: Option<String>,
}

/// The verdicts on a whole suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationReport {
    pub suite: Option<String>,
    /// Whether every expectation passed.
    pub success: bool,
    pub rows: u64,
    pub results: Vec<ExpectationResult>,
}

impl ValidationReport {
    pub fn n_failed(&self) -> usize {
        self.results.iter().filter(|result| !result.success).count()
    }
}

/// Evaluates a SQL predicate over a batch, one value per row (injected:
/// keel-monitor has no SQL engine; the binary passes keel-features' `expr`).
pub type SqlPredicate<'a> = dyn Fn(&str, &RecordBatch) -> Result<BooleanArray, String> + 'a;

/// Checks every expectation of `suite` in one pass over `batches`; memory
/// does not grow with the rows, except for `unique`'s set of values.
///
/// Column expectations are resolved against the first batch's schema, so
/// give at least one (possibly empty) batch: with none, every column counts
/// as missing. An expectation that cannot be checked fails with `error` set
/// and the others still run; only a batch that cannot be read (or that
/// disagrees with the first one's schema) is an error of the whole run.
pub fn validate(
    suite: &Suite,
    batches: impl IntoIterator<Item = Result<RecordBatch, MonitorError>>,
    sql: Option<&SqlPredicate<'_>>,
) -> Result<ValidationReport, MonitorError> {
    let mut checks: Vec<Check<'_>> = suite
        .expectations
        .iter()
        .map(|expectation| Check {
            expectation,
            state: State::Pending,
        })
        .collect();
    let mut schema: Option<SchemaRef> = None;
    let mut rows: u64 = 0;
    for batch in batches {
        let batch = batch?;
        match &schema {
            Some(first) => ensure_same_schema(first, &batch)?,
            None => {
                for check in &mut checks {
                    check.prepare(batch.schema_ref(), sql.is_some());
                }
                schema = Some(batch.schema());
            }
        }
        for check in &mut checks {
            check.observe(&batch, rows, sql);
        }
        rows += batch.num_rows() as u64;
    }
    if schema.is_none() {
        for check in &mut checks {
            check.prepare(&Schema::empty(), sql.is_some());
        }
    }
    let results: Vec<ExpectationResult> =
        checks.into_iter().map(|check| check.finish(rows)).collect();
    Ok(ValidationReport {
        suite: suite.name.clone(),
        success: results.iter().all(|result| result.success),
        rows,
        results,
    })
}

fn ensure_same_schema(first: &Schema, batch: &RecordBatch) -> Result<(), MonitorError> {
    let found = batch.schema();
    let n_columns = first.fields().len().max(found.fields().len());
    for index in 0..n_columns {
        let describe = |schema: &Schema| {
            schema.fields().get(index).map_or_else(
                || "nothing".to_owned(),
                |field| format!("{}: {}", field.name(), field.data_type()),
            )
        };
        let (expected, seen) = (describe(first), describe(&found));
        if expected != seen {
            return Err(MonitorError::SchemaMismatch {
                index,
                expected,
                found: seen,
            });
        }
    }
    Ok(())
}

/// Counts of checked and offending values, and the first distinct examples.
#[derive(Debug, Default)]
struct Tally {
    checked: u64,
    unexpected: u64,
    examples: Vec<String>,
}

impl Tally {
    fn record(&mut self, expected: bool, example: impl FnOnce() -> String) {
        self.checked += 1;
        if expected {
            return;
        }
        self.unexpected += 1;
        if self.examples.len() < MAX_EXAMPLES {
            let example = example();
            if !self.examples.contains(&example) {
                self.examples.push(example);
            }
        }
    }

    /// Share of expected values; an empty column passes vacuously.
    fn share(&self) -> f64 {
        if self.checked == 0 {
            return 1.0;
        }
        (self.checked - self.unexpected) as f64 / self.checked as f64
    }
}

/// An expectation's running state, resolved against the schema once.
enum State {
    Pending,
    Failed(String),
    ColumnExists {
        found: Option<DataType>,
    },
    NotNull {
        column: usize,
        tally: Tally,
    },
    Range {
        column: usize,
        min: f64,
        max: f64,
        seen_min: Option<f64>,
        seen_max: Option<f64>,
        tally: Tally,
    },
    AllowedValues {
        column: usize,
        allowed: HashSet<String>,
        tally: Tally,
    },
    Regex {
        column: usize,
        regex: Regex,
        tally: Tally,
    },
    Unique {
        column: usize,
        seen: HashSet<String>,
        tally: Tally,
    },
    RowCount,
    Sql {
        tally: Tally,
    },
}

struct Check<'s> {
    expectation: &'s Expectation,
    state: State,
}

impl Check<'_> {
    fn prepare(&mut self, schema: &Schema, has_sql: bool) {
        self.state = prepare(self.expectation, schema, has_sql).unwrap_or_else(State::Failed);
    }

    fn observe(&mut self, batch: &RecordBatch, offset: u64, sql: Option<&SqlPredicate<'_>>) {
        if let Err(error) = observe(&mut self.state, self.expectation, batch, offset, sql) {
            self.state = State::Failed(error);
        }
    }

    fn finish(self, rows: u64) -> ExpectationResult {
        let expectation = self.expectation;
        let mut result = ExpectationResult {
            kind: expectation.kind(),
            column: expectation.column().map(str::to_owned),
            expectation: expectation.describe(),
            success: false,
            observed: Value::Null,
            unexpected_count: 0,
            unexpected_examples: Vec::new(),
            error: None,
        };
        let min_share = expectation.min_share().unwrap_or(1.0);
        let tally = match self.state {
            State::Pending => {
                result.error = Some("no data was read".to_owned());
                return result;
            }
            State::Failed(error) => {
                result.error = Some(error);
                return result;
            }
            State::ColumnExists { found } => {
                let dtype = match expectation {
                    Expectation::ColumnExists { dtype, .. } => *dtype,
                    _ => None,
                };
                result.success = match (&found, dtype) {
                    (None, _) => false,
                    (Some(found), Some(dtype)) => ColumnType::of(found) == Some(dtype),
                    (Some(_), None) => true,
                };
                result.observed = found.map_or(Value::Null, |found| json!(found.to_string()));
                return result;
            }
            State::RowCount => {
                let (min, max) = match expectation {
                    Expectation::RowCount { min, max } => (*min, *max),
                    _ => (None, None),
                };
                result.success =
                    min.is_none_or(|min| rows >= min) && max.is_none_or(|max| rows <= max);
                result.observed = json!(rows);
                return result;
            }
            State::Range {
                seen_min,
                seen_max,
                tally,
                ..
            } => {
                result.observed = json!({"min": seen_min, "max": seen_max, "share": tally.share()});
                tally
            }
            State::Unique { seen, tally, .. } => {
                result.observed = json!(seen.len());
                result.success = tally.unexpected == 0;
                result.unexpected_count = tally.unexpected;
                result.unexpected_examples = tally.examples;
                return result;
            }
            State::NotNull { tally, .. }
            | State::AllowedValues { tally, .. }
            | State::Regex { tally, .. }
            | State::Sql { tally } => {
                result.observed = json!(tally.share());
                tally
            }
        };
        result.success = tally.share() >= min_share;
        result.unexpected_count = tally.unexpected;
        result.unexpected_examples = tally.examples;
        result
    }
}

fn prepare(expectation: &Expectation, schema: &Schema, has_sql: bool) -> Result<State, String> {
    if let Some(min_share) = expectation.min_share() {
        if !(0.0..=1.0).contains(&min_share) {
            return Err(format!(
                "min_share must be between 0 and 1, not {min_share}"
            ));
        }
    }
    let find = |column: &str| {
        schema.index_of(column).map_err(|_| {
            let mut names: Vec<&str> = schema
                .fields()
                .iter()
                .take(20)
                .map(|field| field.name().as_str())
                .collect();
            if schema.fields().len() > names.len() {
                names.push("...");
            }
            format!(
                "column `{column}` is not in the data (columns: {})",
                names.join(", ")
            )
        })
    };
    Ok(match expectation {
        Expectation::ColumnExists { column, .. } => State::ColumnExists {
            found: schema
                .field_with_name(column)
                .ok()
                .map(|field| field.data_type().clone()),
        },
        Expectation::NotNull { column, .. } => State::NotNull {
            column: find(column)?,
            tally: Tally::default(),
        },
        Expectation::Range {
            column, min, max, ..
        } => {
            check_bounds(*min, *max, |bound| bound.is_nan())?;
            let index = find(column)?;
            let data_type = schema.field(index).data_type();
            if !is_numeric(data_type) {
                return Err(format!(
                    "column `{column}` is {data_type}; range needs a numeric column"
                ));
            }
            State::Range {
                column: index,
                min: min.unwrap_or(f64::NEG_INFINITY),
                max: max.unwrap_or(f64::INFINITY),
                seen_min: None,
                seen_max: None,
                tally: Tally::default(),
            }
        }
        Expectation::AllowedValues { column, values, .. } => State::AllowedValues {
            column: find(column)?,
            allowed: values.iter().cloned().collect(),
            tally: Tally::default(),
        },
        Expectation::Regex {
            column, pattern, ..
        } => {
            // Compiled alone first, so an error points into the user's
            // pattern rather than into the anchors around it.
            Regex::new(pattern).map_err(|error| {
                let reason = error.to_string();
                let reason = reason.lines().last().unwrap_or_default();
                let reason = reason.strip_prefix("error: ").unwrap_or(reason);
                format!("invalid regex /{pattern}/: {reason}")
            })?;
            let anchored = Regex::new(&format!(r"\A(?:{pattern})\z"))
                .map_err(|error| format!("invalid regex /{pattern}/: {error}"))?;
            State::Regex {
                column: find(column)?,
                regex: anchored,
                tally: Tally::default(),
            }
        }
        Expectation::Unique { column } => State::Unique {
            column: find(column)?,
            seen: HashSet::new(),
            tally: Tally::default(),
        },
        Expectation::RowCount { min, max } => {
            check_bounds(*min, *max, |_| false)?;
            State::RowCount
        }
        Expectation::Sql { .. } => {
            if !has_sql {
                return Err("SQL predicates need the keel binary".to_owned());
            }
            State::Sql {
                tally: Tally::default(),
            }
        }
    })
}

fn check_bounds<T: PartialOrd + fmt::Display + Copy>(
    min: Option<T>,
    max: Option<T>,
    is_nan: impl Fn(T) -> bool,
) -> Result<(), String> {
    if min.is_none() && max.is_none() {
        return Err("give `min`, `max` or both".to_owned());
    }
    if min.into_iter().chain(max).any(is_nan) {
        return Err("bounds must be numbers, not NaN".to_owned());
    }
    match (min, max) {
        (Some(min), Some(max)) if min > max => Err(format!("min {min} is above max {max}")),
        _ => Ok(()),
    }
}

fn is_numeric(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, values) => is_numeric(values),
        data_type => data_type.is_numeric(),
    }
}

fn observe(
    state: &mut State,
    expectation: &Expectation,
    batch: &RecordBatch,
    offset: u64,
    sql: Option<&SqlPredicate<'_>>,
) -> Result<(), String> {
    let row_name = |row: usize| format!("row {}", offset + row as u64);
    match state {
        State::Pending | State::Failed(_) | State::ColumnExists { .. } | State::RowCount => {}
        State::NotNull { column, tally } => {
            let array = batch.column(*column);
            match array.logical_nulls() {
                None => tally.checked += array.len() as u64,
                Some(nulls) => {
                    for row in 0..array.len() {
                        tally.record(nulls.is_valid(row), || row_name(row));
                    }
                }
            }
        }
        State::Range {
            column,
            min,
            max,
            seen_min,
            seen_max,
            tally,
        } => {
            let values = cast(batch.column(*column), &DataType::Float64)
                .map_err(|error| format!("cannot read the column as numbers: {error}"))?;
            for value in values.as_primitive::<Float64Type>().iter().flatten() {
                if !value.is_nan() {
                    *seen_min = Some(seen_min.map_or(value, |seen: f64| seen.min(value)));
                    *seen_max = Some(seen_max.map_or(value, |seen: f64| seen.max(value)));
                }
                // NaN compares false both ways, so it is out of range.
                tally.record(value >= *min && value <= *max, || value.to_string());
            }
        }
        State::AllowedValues {
            column,
            allowed,
            tally,
        } => {
            let values = values_as_text(batch.column(*column))?;
            for value in values.iter().flatten() {
                tally.record(allowed.contains(value), || value.to_owned());
            }
        }
        State::Regex {
            column,
            regex,
            tally,
        } => {
            let values = values_as_text(batch.column(*column))?;
            for value in values.iter().flatten() {
                tally.record(regex.is_match(value), || value.to_owned());
            }
        }
        State::Unique {
            column,
            seen,
            tally,
        } => {
            let values = values_as_text(batch.column(*column))?;
            for value in values.iter().flatten() {
                let first_time = !seen.contains(value);
                if first_time {
                    seen.insert(value.to_owned());
                }
                tally.record(first_time, || value.to_owned());
            }
        }
        State::Sql { tally } => {
            let (Some(sql), Expectation::Sql { predicate, .. }) = (sql, expectation) else {
                return Err("SQL predicates need the keel binary".to_owned());
            };
            let verdicts = sql(predicate, batch)?;
            if verdicts.len() != batch.num_rows() {
                return Err(format!(
                    "the predicate gave {} values for {} rows",
                    verdicts.len(),
                    batch.num_rows()
                ));
            }
            for row in 0..verdicts.len() {
                let satisfied = verdicts.is_valid(row) && verdicts.value(row);
                tally.record(satisfied, || row_name(row));
            }
        }
    }
    Ok(())
}

/// A column's values as the text that `allowed_values`, `regex` and `unique`
/// compare (see the module's conventions).
fn values_as_text(array: &ArrayRef) -> Result<StringArray, String> {
    let unreadable =
        |error: arrow::error::ArrowError| format!("cannot read the values as text: {error}");
    let array = match array.data_type() {
        DataType::Dictionary(_, values) => cast(array, values).map_err(unreadable)?,
        _ => array.clone(),
    };
    match array.data_type() {
        DataType::Float64 => Ok(array
            .as_primitive::<Float64Type>()
            .iter()
            .map(|value| value.map(|value| value.to_string()))
            .collect()),
        DataType::Float16 | DataType::Float32 => {
            let floats = cast(&array, &DataType::Float32).map_err(unreadable)?;
            Ok(floats
                .as_primitive::<Float32Type>()
                .iter()
                .map(|value| value.map(|value| value.to_string()))
                .collect())
        }
        _ => {
            let text = cast(&array, &DataType::Utf8).map_err(unreadable)?;
            Ok(text.as_string::<i32>().clone())
        }
    }
}

/// A suite that the reference itself passes, from its profile:
///
/// - `row_count` between half and twice the reference's rows;
/// - per column, `column_exists` with its type family;
/// - `not_null` with the reference's non-null share rounded down to two
///   decimals (left out when that is 0);
/// - `range` over the reference's exact min and max for numeric columns,
///   with `min_share` lowered to the share of finite values when the
///   reference holds NaN or infinities;
/// - `allowed_values` for categorical columns whose distinct values are
///   known exactly and number at most [`MAX_SUGGESTED_CATEGORIES`].
///
/// Columns missing from `profile` (types profiles do not support) get only
/// `column_exists`.
pub fn suggest(profile: &Profile, schema: &Schema, rows: u64) -> Suite {
    let mut expectations = vec![Expectation::RowCount {
        min: Some(rows / 2),
        max: Some(rows.saturating_mul(2)),
    }];
    for field in schema.fields() {
        let column = field.name().clone();
        expectations.push(Expectation::ColumnExists {
            column: column.clone(),
            dtype: ColumnType::of(field.data_type()),
        });
        let (count, nulls) = match profile.column(&column) {
            Some(ColumnSummary::Numeric(numeric)) => (numeric.count, numeric.nulls),
            Some(ColumnSummary::Categorical(categorical)) => (categorical.count, categorical.nulls),
            None => continue,
        };
        let non_null = count.saturating_sub(nulls);
        let not_null_share = share_rounded_down(non_null, count);
        if not_null_share > 0.0 {
            expectations.push(Expectation::NotNull {
                column: column.clone(),
                min_share: not_null_share,
            });
        }
        match profile.column(&column) {
            Some(ColumnSummary::Numeric(numeric)) => {
                let (Some(min), Some(max)) = (numeric.min, numeric.max) else {
                    continue;
                };
                let min_share = share_rounded_down(numeric.finite, non_null);
                if min_share > 0.0 {
                    expectations.push(Expectation::Range {
                        column,
                        min: Some(min),
                        max: Some(max),
                        min_share,
                    });
                }
            }
            Some(ColumnSummary::Categorical(categorical)) => {
                let counts = categorical.frequent.counts();
                // Floats inside dictionaries are profiled in Arrow's text
                // form, which is not the form `allowed_values` compares.
                let float_dictionary = matches!(field.data_type(),
                    DataType::Dictionary(_, values) if values.is_floating());
                if categorical.frequent.is_exact()
                    && (1..=MAX_SUGGESTED_CATEGORIES).contains(&counts.len())
                    && !float_dictionary
                {
                    expectations.push(Expectation::AllowedValues {
                        column,
                        values: counts.keys().cloned().collect(),
                        min_share: 1.0,
                    });
                }
            }
            None => {}
        }
    }
    Suite {
        name: None,
        expectations,
    }
}

/// `part / whole` rounded down to two decimals, in integers so that the
/// result never exceeds the share that `validate` computes (1 for an empty
/// whole).
fn share_rounded_down(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 1.0;
    }
    let hundredths = (u128::from(part) * 100 / u128::from(whole)) as u64;
    hundredths as f64 / 100.0
}
