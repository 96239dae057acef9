//! Reconstruction-error drift against NannyML's DataReconstructionDriftCalculator,
//! on the datasets and numbers `scripts/gen_multivariate_fixtures.py` wrote to
//! `tests/fixtures/multivariate.json`.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use keel_monitor::drift;
use keel_monitor::multivariate::{
    reconstruction_drift_parquet, ChunkResult, Chunking, ReconstructionDrift, ReconstructionOptions,
};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

const TOLERANCE: f64 = 1e-6;

fn cases() -> Vec<Value> {
    let document: Value =
        serde_json::from_str(include_str!("fixtures/multivariate.json")).unwrap_or(Value::Null);
    document["cases"].as_array().cloned().unwrap_or_default()
}

fn case(name: &str) -> Value {
    cases()
        .into_iter()
        .find(|case| case["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in the fixture"))
}

fn columns(case: &Value) -> Vec<String> {
    case["columns"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn chunking(case: &Value) -> Chunking {
    match (case["chunk_size"].as_u64(), case["chunk_number"].as_u64()) {
        (Some(size), _) => Chunking::Size(size as usize),
        (None, Some(number)) => Chunking::Number(number as usize),
        (None, None) => Chunking::default(),
    }
}

/// One side of a case as a record batch, typed as pandas typed it.
fn batch(case: &Value, side: &str) -> RecordBatch {
    let arrays = columns(case).into_iter().map(|column| {
        let values = case[side][&column].as_array().cloned().unwrap_or_default();
        let array: ArrayRef = match case["types"][&column].as_str() {
            Some("float") => Arc::new(values.iter().map(Value::as_f64).collect::<Float64Array>()),
            Some("int") => Arc::new(values.iter().map(Value::as_i64).collect::<Int64Array>()),
            Some("bool") => Arc::new(values.iter().map(Value::as_bool).collect::<BooleanArray>()),
            _ => Arc::new(values.iter().map(Value::as_str).collect::<StringArray>()),
        };
        (column, array)
    });
    RecordBatch::try_from_iter(arrays).expect("fixture columns make a batch")
}

/// The batch cut into uneven pieces, so that chunks straddle batches.
fn pieces(batch: &RecordBatch) -> Vec<RecordBatch> {
    let rows = batch.num_rows();
    let cuts = [0, 1, rows / 3, rows / 3 + 77, rows];
    cuts.windows(2)
        .map(|cut| batch.slice(cut[0], cut[1] - cut[0]))
        .collect()
}

fn expected_chunks(case: &Value, period: &str) -> Vec<Value> {
    case["chunks"]
        .as_array()
        .map(|chunks| {
            chunks
                .iter()
                .filter(|chunk| chunk["period"] == period)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn assert_close(what: &str, actual: Option<f64>, expected: Option<f64>) {
    match (actual, expected) {
        (Some(actual), Some(expected)) => assert!(
            (actual - expected).abs() <= TOLERANCE * expected.abs().max(1e-12),
            "{what}: keel {actual}, nannyml {expected}"
        ),
        (None, None) => {}
        _ => panic!("{what}: keel {actual:?}, nannyml {expected:?}"),
    }
}

fn assert_matches_nannyml(name: &str, period: &str, actual: &[ChunkResult], expected: &[Value]) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{name} {period}: number of chunks"
    );
    for (chunk, want) in actual.iter().zip(expected) {
        let what = |field: &str| format!("{name} {period} chunk {} {field}", chunk.chunk_index);
        assert_eq!(
            chunk.start_index as u64,
            want["start_index"].as_u64().unwrap_or(u64::MAX),
            "{}",
            what("start")
        );
        assert_eq!(
            chunk.end_index as u64,
            want["end_index"].as_u64().unwrap_or(u64::MAX),
            "{}",
            what("end")
        );
        assert_close(
            &what("error"),
            Some(chunk.reconstruction_error),
            want["error"].as_f64(),
        );
        assert_close(
            &what("sampling error"),
            chunk.sampling_error,
            want["sampling_error"].as_f64(),
        );
        assert_close(
            &what("lower confidence bound"),
            chunk.lower_confidence_bound,
            want["lower_confidence_boundary"].as_f64(),
        );
        assert_close(
            &what("upper confidence bound"),
            chunk.upper_confidence_bound,
            want["upper_confidence_boundary"].as_f64(),
        );
        assert_close(
            &what("lower threshold"),
            chunk.lower_threshold,
            want["lower_threshold"].as_f64(),
        );
        assert_close(
            &what("upper threshold"),
            chunk.upper_threshold,
            want["upper_threshold"].as_f64(),
        );
        assert_eq!(
            Some(chunk.alert),
            want["alert"].as_bool(),
            "{}",
            what("alert")
        );
    }
}

fn check_case(name: &str) {
    let case = case(name);
    let options = ReconstructionOptions {
        chunking: chunking(&case),
        ..ReconstructionOptions::new(columns(&case))
    };
    let model = ReconstructionDrift::fit(&pieces(&batch(&case, "reference")), &options)
        .unwrap_or_else(|err| panic!("{name}: fit failed: {err}"));
    assert_eq!(
        Some(model.n_components() as u64),
        case["n_components"].as_u64(),
        "{name}: components"
    );
    let current = model
        .evaluate(&pieces(&batch(&case, "analysis")))
        .unwrap_or_else(|err| panic!("{name}: evaluate failed: {err}"));
    assert_matches_nannyml(
        name,
        "reference",
        model.reference_chunks(),
        &expected_chunks(&case, "reference"),
    );
    assert_matches_nannyml(
        name,
        "analysis",
        &current,
        &expected_chunks(&case, "analysis"),
    );
}

#[test]
fn numeric_columns_match_nannyml() {
    check_case("numeric");
}

#[test]
fn numeric_string_boolean_and_integer_columns_match_nannyml() {
    check_case("mixed");
}

#[test]
fn missing_values_and_unseen_categories_match_nannyml() {
    check_case("missing");
}

#[test]
fn a_change_of_correlation_alone_alerts_and_unchanged_chunks_do_not() {
    check_case("correlation_drift");
    let case = case("correlation_drift");
    let drifted_from = case["drifted_from_row"].as_u64().unwrap_or(u64::MAX) as usize;
    let options = ReconstructionOptions {
        chunking: chunking(&case),
        ..ReconstructionOptions::new(columns(&case))
    };
    let model = ReconstructionDrift::fit(&[batch(&case, "reference")], &options).expect("fits");
    let current = model
        .evaluate(&[batch(&case, "analysis")])
        .expect("evaluates");
    assert!(model.reference_chunks().iter().all(|chunk| !chunk.alert));
    // No column drifts on its own: a univariate test does not see this drift.
    for column in columns(&case) {
        let values = |side: &str| -> Vec<f64> {
            case[side][&column]
                .as_array()
                .map(|values| values.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let drifted_half = values("analysis").split_off(drifted_from);
        let ks = drift::ks_2samp(&values("reference"), &drifted_half).expect("ks");
        assert!(
            ks.p_value > 0.05,
            "{column} drifts alone: p = {}",
            ks.p_value
        );
    }
    for chunk in &current {
        let drifted = chunk.start_index >= drifted_from;
        assert_eq!(
            chunk.alert, drifted,
            "chunk at row {} (drift from row {drifted_from})",
            chunk.start_index
        );
    }
}

#[test]
fn parquet_files_give_the_same_report() {
    let case = case("mixed");
    let dir = std::env::temp_dir().join(format!("keel-multivariate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |side: &str| {
        let path = dir.join(format!("{side}.parquet"));
        let data = batch(&case, side);
        let file = std::fs::File::create(&path).expect("create parquet");
        let mut writer = ArrowWriter::try_new(file, data.schema(), None).expect("writer");
        for piece in pieces(&data) {
            writer.write(&piece).expect("write");
        }
        writer.close().expect("close");
        path
    };
    let (reference, analysis) = (write("reference"), write("analysis"));
    let report = reconstruction_drift_parquet(&reference, &analysis, None, chunking(&case));
    let named = columns(&case);
    let missing = reconstruction_drift_parquet(
        &reference,
        &analysis,
        Some(&["x".to_owned(), "nope".to_owned()]),
        chunking(&case),
    );
    let absent = reconstruction_drift_parquet(
        &dir.join("absent.parquet"),
        &analysis,
        Some(&named),
        chunking(&case),
    );
    std::fs::remove_dir_all(&dir).ok();

    let report = report.expect("report from parquet");
    assert_eq!(report.continuous_columns, ["count", "x", "y"]);
    assert_eq!(report.categorical_columns, ["colour", "flag", "size"]);
    assert_eq!(report.n_alerts, 4);
    assert_matches_nannyml(
        "mixed parquet",
        "reference",
        &report.reference,
        &expected_chunks(&case, "reference"),
    );
    assert_matches_nannyml(
        "mixed parquet",
        "analysis",
        &report.current,
        &expected_chunks(&case, "analysis"),
    );
    let json = serde_json::to_value(&report).expect("report serializes");
    assert_eq!(json["current"][7]["alert"], true);

    let message = missing.expect_err("unknown column").to_string();
    assert!(message.contains("`nope`"), "{message}");
    let message = absent.expect_err("absent file").to_string();
    assert!(message.contains("absent.parquet"), "{message}");
}
