//! Expectation suites: each kind's verdict, counts and examples over several
//! batches, errors that stay local to one expectation, suites suggested from a
//! reference, and the YAML format.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, DictionaryArray, Float32Array, Float64Array,
    Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use keel_monitor::profile::Profile;
use keel_monitor::validation::{
    suggest, validate, ColumnType, Expectation, ExpectationResult, Suite, ValidationReport,
};
use keel_monitor::MonitorError;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).expect("test batch")
}

fn floats(values: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(values.to_vec()))
}

fn ints(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn suite(yaml: &str) -> Suite {
    Suite::from_yaml(yaml).expect("test suite parses")
}

fn run(yaml: &str, batches: &[RecordBatch]) -> ValidationReport {
    validate(&suite(yaml), batches.iter().cloned().map(Ok), None).expect("validation runs")
}

fn assert_counts(result: &ExpectationResult, success: bool, unexpected: u64, examples: &[&str]) {
    assert_eq!(result.success, success, "{result:?}");
    assert_eq!(result.unexpected_count, unexpected, "{result:?}");
    assert_eq!(result.unexpected_examples, examples, "{result:?}");
    assert_eq!(result.error, None, "{result:?}");
}

#[test]
fn not_null_counts_nulls_across_batches_against_min_share() {
    let batches = [
        batch(vec![("x", ints(&[Some(1), None, Some(3)]))]),
        batch(vec![("x", ints(&[None, Some(5)]))]),
    ];
    let report = run(
        "expectations:
          - {expect: not_null, column: x}
          - {expect: not_null, column: x, min_share: 0.6}
          - {expect: not_null, column: x, min_share: 0.61}",
        &batches,
    );
    assert_eq!(report.rows, 5);
    assert_counts(&report.results[0], false, 2, &["row 1", "row 3"]);
    assert_eq!(report.results[0].observed, 0.6);
    assert_counts(&report.results[1], true, 2, &["row 1", "row 3"]);
    assert_counts(&report.results[2], false, 2, &["row 1", "row 3"]);
    assert!(!report.success);
    assert_eq!(report.n_failed(), 2);
}

#[test]
fn not_null_treats_nan_as_a_value_and_an_empty_column_as_passing() {
    let with_nan = [batch(vec![("x", floats(&[Some(f64::NAN), Some(1.0)]))])];
    let report = run("expectations: [{expect: not_null, column: x}]", &with_nan);
    assert_counts(&report.results[0], true, 0, &[]);

    let empty = [batch(vec![("x", floats(&[]))])];
    let report = run("expectations: [{expect: not_null, column: x}]", &empty);
    assert_counts(&report.results[0], true, 0, &[]);
    assert_eq!(report.rows, 0);
}

#[test]
fn range_is_inclusive_ignores_nulls_and_counts_nan_out_of_range() {
    let batches = [
        batch(vec![(
            "x",
            floats(&[Some(1.0), None, Some(f64::NAN), Some(5.0)]),
        )]),
        batch(vec![("x", floats(&[Some(10.0), Some(-1.0), Some(0.0)]))]),
    ];
    let report = run(
        "expectations:
          - {expect: range, column: x, min: 0, max: 5}
          - {expect: range, column: x, min: 0, max: 5, min_share: 0.5}
          - {expect: range, column: x, min: 0, max: 5, min_share: 0.51}
          - {expect: range, column: x, max: 10, min_share: 0.8}",
        &batches,
    );
    // Six non-null values; NaN, 10 and -1 are out of [0, 5].
    assert_counts(&report.results[0], false, 3, &["NaN", "10", "-1"]);
    assert_eq!(
        report.results[0].observed,
        serde_json::json!({"min": -1.0, "max": 10.0, "share": 0.5})
    );
    assert_counts(&report.results[1], true, 3, &["NaN", "10", "-1"]);
    assert_counts(&report.results[2], false, 3, &["NaN", "10", "-1"]);
    assert_counts(&report.results[3], true, 1, &["NaN"]);
}

#[test]
fn range_reads_integers_and_refuses_text_columns() {
    let batches = [batch(vec![
        ("age", ints(&[Some(0), Some(120), None])),
        ("name", strings(&[Some("a"), Some("b"), None])),
    ])];
    let report = run(
        "expectations:
          - {expect: range, column: age, min: 0, max: 120}
          - {expect: range, column: age, min: 1}
          - {expect: range, column: name, min: 0}",
        &batches,
    );
    assert_counts(&report.results[0], true, 0, &[]);
    assert_counts(&report.results[1], false, 1, &["0"]);
    let error = report.results[2].error.as_deref().unwrap_or_default();
    assert!(error.contains("numeric"), "{error}");
}

#[test]
fn allowed_values_compare_strings_numbers_and_booleans_as_text() {
    let batches = [
        batch(vec![
            ("city", strings(&[Some("paris"), None, Some("lyon")])),
            ("level", ints(&[Some(1), Some(2), Some(3)])),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(true)])),
            ),
            ("ratio", floats(&[Some(1.0), Some(2.5), None])),
        ]),
        batch(vec![
            ("city", strings(&[Some("nice"), Some("nice")])),
            ("level", ints(&[Some(1), Some(2)])),
            ("flag", Arc::new(BooleanArray::from(vec![true, false]))),
            ("ratio", floats(&[Some(2.5), Some(1.0)])),
        ]),
    ];
    let report = run(
        "expectations:
          - {expect: allowed_values, column: city, values: [paris, lyon]}
          - {expect: allowed_values, column: city, values: [paris, lyon], min_share: 0.5}
          - {expect: allowed_values, column: level, values: [1, 2]}
          - {expect: allowed_values, column: flag, values: [true]}
          - {expect: allowed_values, column: ratio, values: [1, 2.5]}",
        &batches,
    );
    // Nulls are not judged: 4 city values, 2 of them `nice` (one example).
    assert_counts(&report.results[0], false, 2, &["nice"]);
    assert_eq!(report.results[0].observed, 0.5);
    assert_counts(&report.results[1], true, 2, &["nice"]);
    assert_counts(&report.results[2], false, 1, &["3"]);
    assert_counts(&report.results[3], false, 1, &["false"]);
    assert_counts(&report.results[4], true, 0, &[]);
}

#[test]
fn dictionary_columns_are_judged_by_their_values() {
    let cities: DictionaryArray<Int32Type> = vec![Some("a"), Some("b"), None, Some("a")]
        .into_iter()
        .collect();
    let batches = [batch(vec![("city", Arc::new(cities) as ArrayRef)])];
    let report = run(
        "expectations:
          - {expect: column_exists, column: city, dtype: string}
          - {expect: not_null, column: city, min_share: 0.75}
          - {expect: allowed_values, column: city, values: [a]}
          - {expect: unique, column: city}",
        &batches,
    );
    assert_counts(&report.results[0], true, 0, &[]);
    assert_counts(&report.results[1], true, 1, &["row 2"]);
    assert_counts(&report.results[2], false, 1, &["b"]);
    assert_counts(&report.results[3], false, 1, &["a"]);
}

#[test]
fn regex_must_match_the_whole_value() {
    let batches = [
        batch(vec![(
            "email",
            strings(&[Some("ann@example.com"), Some("bob@example.com.evil"), None]),
        )]),
        batch(vec![("email", strings(&[Some("x ann@example.com")]))]),
    ];
    let report = run(
        r"expectations:
          - {expect: regex, column: email, pattern: '[a-z]+@[a-z]+\.com'}
          - {expect: regex, column: email, pattern: 'example'}
          - {expect: regex, column: email, pattern: '.*example.*'}",
        &batches,
    );
    assert_counts(
        &report.results[0],
        false,
        2,
        &["bob@example.com.evil", "x ann@example.com"],
    );
    assert_eq!(report.results[1].unexpected_count, 3);
    assert_counts(&report.results[2], true, 0, &[]);
}

#[test]
fn unique_finds_duplicates_across_batches_and_ignores_nulls() {
    let batches = [
        batch(vec![("id", strings(&[Some("a"), Some("b"), None]))]),
        batch(vec![(
            "id",
            strings(&[None, Some("a"), Some("c"), Some("b"), Some("a")]),
        )]),
    ];
    let report = run("expectations: [{expect: unique, column: id}]", &batches);
    assert_counts(&report.results[0], false, 3, &["a", "b"]);
    assert_eq!(report.results[0].observed, 3);

    let distinct = [batch(vec![("id", ints(&[Some(1), None, Some(2), None]))])];
    let report = run("expectations: [{expect: unique, column: id}]", &distinct);
    assert_counts(&report.results[0], true, 0, &[]);
}

#[test]
fn row_count_bounds_are_inclusive() {
    let batches = [
        batch(vec![("x", ints(&[Some(1), Some(2)]))]),
        batch(vec![("x", ints(&[Some(3)]))]),
    ];
    let report = run(
        "expectations:
          - {expect: row_count, min: 3, max: 3}
          - {expect: row_count, min: 4}
          - {expect: row_count, max: 2}",
        &batches,
    );
    let verdicts: Vec<bool> = report.results.iter().map(|result| result.success).collect();
    assert_eq!(verdicts, [true, false, false]);
    assert_eq!(report.results[0].observed, 3);
}

#[test]
fn examples_are_capped_at_five_distinct_values() {
    let values: Vec<Option<i64>> = (0..100).map(Some).collect();
    let batches = [
        batch(vec![("x", ints(&values[..50]))]),
        batch(vec![("x", ints(&values[50..]))]),
    ];
    let report = run(
        "expectations: [{expect: allowed_values, column: x, values: [7]}]",
        &batches,
    );
    assert_counts(&report.results[0], false, 99, &["0", "1", "2", "3", "4"]);
}

#[test]
fn column_exists_checks_the_type_family() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("count", DataType::Int32, true),
        Field::new("score", DataType::Float32, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new(
            "at",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("day", DataType::Date32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![1])),
        Arc::new(Float32Array::from(vec![1.5])),
        Arc::new(StringArray::from(vec!["a"])),
        Arc::new(BooleanArray::from(vec![true])),
        Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC")),
        Arc::new(Date32Array::from(vec![0])),
    ];
    let batches = [RecordBatch::try_new(schema, columns).expect("test batch")];
    let report = run(
        "expectations:
          - {expect: column_exists, column: count, dtype: integer}
          - {expect: column_exists, column: score, dtype: float}
          - {expect: column_exists, column: name, dtype: string}
          - {expect: column_exists, column: ok, dtype: boolean}
          - {expect: column_exists, column: at, dtype: timestamp}
          - {expect: column_exists, column: day, dtype: date}
          - {expect: column_exists, column: count, dtype: float}
          - {expect: column_exists, column: count}
          - {expect: column_exists, column: missing}",
        &batches,
    );
    let verdicts: Vec<bool> = report.results.iter().map(|result| result.success).collect();
    assert_eq!(
        verdicts,
        [true, true, true, true, true, true, false, true, false]
    );
    assert_eq!(report.results[6].observed, "Int32");
    assert_eq!(report.results[8].observed, serde_json::Value::Null);
    assert_eq!(report.results[8].error, None);
}

#[test]
fn a_missing_column_or_a_bad_regex_fails_only_its_own_expectation() {
    let batches = [batch(vec![("x", ints(&[Some(1), Some(2)]))])];
    let report = run(
        "expectations:
          - {expect: not_null, column: nope}
          - {expect: regex, column: x, pattern: '[unclosed'}
          - {expect: range, column: x, min: 0}
          - {expect: range, column: x}
          - {expect: not_null, column: x, min_share: 1.5}
          - {expect: row_count, min: 3, max: 1}",
        &batches,
    );
    let errors: Vec<String> = report
        .results
        .iter()
        .map(|result| result.error.clone().unwrap_or_default())
        .collect();
    assert!(
        errors[0].contains("column `nope` is not in the data (columns: x)"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("invalid regex /[unclosed/:") && !errors[1].contains('\n'),
        "{errors:?}"
    );
    assert_eq!(errors[2], "");
    assert!(report.results[2].success);
    assert!(errors[3].contains("min"), "{errors:?}");
    assert!(errors[4].contains("min_share"), "{errors:?}");
    assert!(errors[5].contains("above"), "{errors:?}");
    assert_eq!(report.n_failed(), 5);
}

#[test]
fn sql_expectations_use_the_injected_evaluator() {
    let batches = [
        batch(vec![("x", ints(&[Some(1), Some(2), None]))]),
        batch(vec![("x", ints(&[Some(3), Some(0)]))]),
    ];
    let evaluator = |predicate: &str, batch: &RecordBatch| -> Result<BooleanArray, String> {
        if predicate != "x > 1" {
            return Err(format!("cannot parse `{predicate}`"));
        }
        let column = batch.column_by_name("x").ok_or("no column x")?;
        Ok(column
            .as_primitive::<Int64Type>()
            .iter()
            .map(|value| value.map(|value| value > 1))
            .collect())
    };
    let yaml = "expectations:
      - {expect: sql, predicate: x > 1, name: positive}
      - {expect: sql, predicate: x > 1, min_share: 0.4}
      - {expect: sql, predicate: x >> 1}";
    let report = validate(
        &suite(yaml),
        batches.iter().cloned().map(Ok),
        Some(&evaluator),
    )
    .expect("validation runs");
    // NULL is not a pass: rows 0, 2 and 4 fail.
    assert_counts(&report.results[0], false, 3, &["row 0", "row 2", "row 4"]);
    assert!(report.results[0].expectation.starts_with("positive:"));
    assert_counts(&report.results[1], true, 3, &["row 0", "row 2", "row 4"]);
    assert_eq!(
        report.results[2].error.as_deref(),
        Some("cannot parse `x >> 1`")
    );

    let report = run(yaml, &batches);
    for result in &report.results {
        assert_eq!(
            result.error.as_deref(),
            Some("SQL predicates need the keel binary")
        );
    }
}

#[test]
fn without_batches_every_column_is_missing_and_row_count_is_zero() {
    let report = validate(
        &suite(
            "expectations:
              - {expect: column_exists, column: x}
              - {expect: row_count, max: 0}",
        ),
        std::iter::empty(),
        None,
    )
    .expect("validation runs");
    assert!(!report.results[0].success);
    assert!(report.results[1].success);
}

#[test]
fn batches_that_change_schema_are_an_error_of_the_run() {
    let batches = vec![
        Ok(batch(vec![("x", ints(&[Some(1)]))])),
        Ok(batch(vec![("x", floats(&[Some(1.0)]))])),
    ];
    let result = validate(
        &suite("expectations: [{expect: not_null, column: x}]"),
        batches,
        None,
    );
    assert!(
        matches!(result, Err(MonitorError::SchemaMismatch { .. })),
        "{result:?}"
    );
}

fn reference_batches() -> Vec<RecordBatch> {
    (0..4)
        .map(|part| {
            let rows = part * 25..(part + 1) * 25;
            let ids: Vec<Option<i64>> = rows.clone().map(|row| Some(row as i64)).collect();
            let prices: Vec<Option<f64>> = rows
                .clone()
                .map(|row| match row {
                    7 => None,
                    13 => Some(f64::NAN),
                    row => Some(row as f64 * 1.5 - 10.0),
                })
                .collect();
            let cities: Vec<Option<&str>> = rows
                .clone()
                .map(|row| match row % 10 {
                    0 => None,
                    1..=4 => Some("paris"),
                    5..=7 => Some("lyon"),
                    _ => Some("true"),
                })
                .collect();
            let notes: Vec<Option<String>> = rows
                .clone()
                .map(|row| (row % 3 != 0).then(|| format!("note {row}")))
                .collect();
            batch(vec![
                ("id", ints(&ids)),
                ("price", floats(&prices)),
                ("city", strings(&cities)),
                ("note", Arc::new(StringArray::from(notes)) as ArrayRef),
                (
                    "at",
                    Arc::new(TimestampMicrosecondArray::from(
                        rows.map(|row| row as i64).collect::<Vec<_>>(),
                    )),
                ),
            ])
        })
        .collect()
}

/// The profile as `keel data suggest` takes it: timestamps are not profiled.
fn profile_without_timestamps(batches: &[RecordBatch]) -> Profile {
    let projected = batches
        .iter()
        .map(|batch| batch.project(&[0, 1, 2, 3]).expect("projection"));
    Profile::from_batches(projected).expect("profile")
}

#[test]
fn suggest_derives_bounds_shares_and_categories_from_the_reference() {
    let batches = reference_batches();
    let schema = batches[0].schema();
    let suite = suggest(&profile_without_timestamps(&batches), &schema, 100);
    let column_exists = |column: &str, dtype| Expectation::ColumnExists {
        column: column.to_owned(),
        dtype: Some(dtype),
    };
    let not_null = |column: &str, min_share| Expectation::NotNull {
        column: column.to_owned(),
        min_share,
    };
    let expected = vec![
        Expectation::RowCount {
            min: Some(50),
            max: Some(200),
        },
        column_exists("id", ColumnType::Integer),
        not_null("id", 1.0),
        Expectation::Range {
            column: "id".to_owned(),
            min: Some(0.0),
            max: Some(99.0),
            min_share: 1.0,
        },
        column_exists("price", ColumnType::Float),
        not_null("price", 0.99),
        // 98 of the 99 non-null prices are finite (one NaN): 0.9898.. -> 0.98.
        Expectation::Range {
            column: "price".to_owned(),
            min: Some(-10.0),
            max: Some(99.0 * 1.5 - 10.0),
            min_share: 0.98,
        },
        column_exists("city", ColumnType::String),
        not_null("city", 0.9),
        Expectation::AllowedValues {
            column: "city".to_owned(),
            values: vec!["lyon".to_owned(), "paris".to_owned(), "true".to_owned()],
            min_share: 1.0,
        },
        column_exists("note", ColumnType::String),
        // 66 of 100 rows have a note; 66 distinct values, so no allowed_values.
        not_null("note", 0.66),
        column_exists("at", ColumnType::Timestamp),
    ];
    assert_eq!(suite.expectations, expected);
}

#[test]
fn a_suite_suggested_from_a_reference_passes_on_it_after_a_yaml_round_trip() {
    let batches = reference_batches();
    let suggested = suggest(
        &profile_without_timestamps(&batches),
        &batches[0].schema(),
        100,
    );
    let yaml = suggested.to_yaml().expect("suite encodes");
    let reread = Suite::from_yaml(&yaml).expect("suite decodes");
    assert_eq!(reread, suggested);
    let report = validate(&reread, batches.iter().cloned().map(Ok), None).expect("validation runs");
    let failures: Vec<&ExpectationResult> = report
        .results
        .iter()
        .filter(|result| !result.success)
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn suites_round_trip_through_yaml() {
    let original = Suite {
        name: Some("orders".to_owned()),
        expectations: vec![
            Expectation::ColumnExists {
                column: "a: b".to_owned(),
                dtype: Some(ColumnType::Date),
            },
            Expectation::NotNull {
                column: "x".to_owned(),
                min_share: 0.95,
            },
            Expectation::Range {
                column: "x".to_owned(),
                min: Some(-1.5),
                max: None,
                min_share: 1.0,
            },
            Expectation::AllowedValues {
                column: "y".to_owned(),
                values: ["true", "1", "null", "", "~", "- x", "1.50"]
                    .map(str::to_owned)
                    .to_vec(),
                min_share: 0.5,
            },
            Expectation::Regex {
                column: "z".to_owned(),
                pattern: r"^\d+'s$".to_owned(),
                min_share: 1.0,
            },
            Expectation::Unique {
                column: "id".to_owned(),
            },
            Expectation::RowCount {
                min: Some(1),
                max: Some(u64::MAX),
            },
            Expectation::Sql {
                predicate: "price >= 0 AND qty < 100".to_owned(),
                name: Some("sane order".to_owned()),
                min_share: 0.99,
            },
        ],
    };
    let yaml = original.to_yaml().expect("suite encodes");
    assert_eq!(Suite::from_yaml(&yaml).expect("suite decodes"), original);
}

#[test]
fn a_hand_written_suite_reads_with_defaults() {
    let parsed = suite(
        "name: orders
expectations:
  - expect: not_null
    column: price
  - expect: sql
    predicate: price >= 0 AND qty < 100
",
    );
    assert_eq!(parsed.name.as_deref(), Some("orders"));
    assert_eq!(
        parsed.expectations,
        [
            Expectation::NotNull {
                column: "price".to_owned(),
                min_share: 1.0
            },
            Expectation::Sql {
                predicate: "price >= 0 AND qty < 100".to_owned(),
                name: None,
                min_share: 1.0
            },
        ]
    );
}

#[test]
fn suite_errors_name_the_line() {
    for yaml in [
        "expectations:\n  - expect: not_null\n    colum: price\n",
        "expectations:\n  - expect: not_nul\n    column: price\n",
        "expectations:\n  - expect: column_exists\n    column: price\n    dtype: decimal\n",
        "expectations:\n  - expect: allowed_values\n    column: price\n    values: [[1]]\n",
    ] {
        let error = Suite::from_yaml(yaml)
            .expect_err("invalid suite")
            .to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}
