//! CBPE against NannyML: per-chunk estimates, sampling errors, confidence
//! bands, thresholds and alerts on the data and numbers that
//! `scripts/gen_cbpe_fixtures.py` wrote to `tests/fixtures/cbpe.json`; and
//! the errors bad input gets.

use keel_monitor::cbpe::{Cbpe, CbpeError, ChunkEstimate, Chunking, Metric, Period};
use serde_json::Value;

/// Absolute; Keel and NannyML differ only in the order of floating-point
/// sums (about 1e-15 on the fixtures), so this is tighter than 1e-6.
const TOLERANCE: f64 = 1e-9;

fn document() -> Value {
    serde_json::from_str(include_str!("fixtures/cbpe.json")).expect("the fixture file is JSON")
}

fn cases() -> Vec<Value> {
    document()["cases"]
        .as_array()
        .expect("the fixture file has cases")
        .clone()
}

fn bits(value: &Value) -> Vec<bool> {
    value
        .as_str()
        .expect("labels are a string of 0 and 1")
        .bytes()
        .map(|bit| bit == b'1')
        .collect()
}

/// Scores are stored as integers k of k / score_scale.
fn scores(value: &Value) -> Vec<f64> {
    let scale = document()["score_scale"].as_f64().expect("a score scale");
    value
        .as_array()
        .expect("scores are an array")
        .iter()
        .map(|unit| unit.as_f64().expect("a score unit") / scale)
        .collect()
}

fn chunking(case: &Value) -> Chunking {
    let chunking = &case["chunking"];
    match (chunking["size"].as_u64(), chunking["number"].as_u64()) {
        (Some(size), None) => Chunking::Size(size as usize),
        (None, Some(number)) => Chunking::Number(number as usize),
        _ => panic!("unknown chunking {chunking}"),
    }
}

fn fit(case: &Value) -> Cbpe {
    let reference = &case["reference"];
    Cbpe::fit(
        &bits(&reference["y_true"]),
        &bits(&reference["y_pred"]),
        &scores(&reference["y_score_units"]),
        chunking(case),
    )
    .unwrap_or_else(|error| panic!("{}: fit failed: {error}", case["name"]))
}

/// Compares an optional number with NannyML's (null = NaN).
fn compare(context: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (None, None) => {}
        (Some(got), Some(want)) => {
            let difference = (got - want).abs();
            assert!(
                difference <= TOLERANCE,
                "{context}: Keel {got}, NannyML {want} (difference {difference:e})"
            );
        }
        (got, _) => panic!("{context}: Keel {got:?}, NannyML {want}"),
    }
}

/// NannyML's columns, in the order of the fixture's per-metric arrays.
fn fields() -> Vec<String> {
    document()["fields"]
        .as_array()
        .expect("the fixture lists its fields")
        .iter()
        .map(|field| field.as_str().expect("a field name").to_string())
        .collect()
}

/// Checks chunks against NannyML's rows.
fn compare_chunks(name: &str, period: &str, got: &[ChunkEstimate], want: &Value) {
    let fields = fields();
    let position = |field: &str| {
        fields
            .iter()
            .position(|name| name == field)
            .unwrap_or_else(|| panic!("the fixture has no field {field}"))
    };
    let want = want.as_array().expect("chunks are an array");
    assert_eq!(got.len(), want.len(), "{name}: number of {period} chunks");
    for (chunk, expected) in got.iter().zip(want) {
        let context = format!("{name} {period} chunk {}", chunk.chunk_index);
        assert_eq!(
            chunk.start_index as u64,
            expected["start_index"].as_u64().expect("a start index"),
            "{context}: start"
        );
        assert_eq!(
            chunk.end_index as u64,
            expected["end_index"].as_u64().expect("an end index"),
            "{context}: end"
        );
        for (metric, estimate) in chunk.metrics.iter() {
            let want = |field: &str| &expected["metrics"][metric.name()][position(field)];
            let context = format!("{context} {}", metric.name());
            let fields = [
                ("value", estimate.value),
                ("sampling_error", estimate.sampling_error),
                ("realized", estimate.realized),
                ("upper_confidence_boundary", estimate.upper_confidence),
                ("lower_confidence_boundary", estimate.lower_confidence),
                ("upper_threshold", estimate.upper_threshold),
                ("lower_threshold", estimate.lower_threshold),
            ];
            for (field, got) in fields {
                compare(&format!("{context} {field}"), got, want(field));
            }
            assert_eq!(
                Some(estimate.alert),
                want("alert").as_bool(),
                "{context}: alert"
            );
        }
    }
}

#[test]
fn estimates_match_nannyml_on_reference_and_analysis_chunks() {
    let cases = cases();
    assert_eq!(cases.len(), 4);
    for case in &cases {
        let name = case["name"].as_str().expect("a case name");
        let cbpe = fit(case);
        compare_chunks(
            name,
            "reference",
            cbpe.reference_chunks(),
            &case["reference_chunks"],
        );
        let analysis = &case["analysis"];
        let estimates = cbpe
            .estimate(
                &bits(&analysis["y_pred"]),
                &scores(&analysis["y_score_units"]),
            )
            .unwrap_or_else(|error| panic!("{name}: estimate failed: {error}"));
        compare_chunks(name, "analysis", &estimates, &case["analysis_chunks"]);
    }
}

#[test]
fn calibration_decision_matches_nannyml() {
    for case in cases() {
        let name = case["name"].as_str().expect("a case name");
        let check = fit(&case).calibration().to_owned();
        assert_eq!(
            Some(check.needs_calibration),
            case["needs_calibration"].as_bool(),
            "{name}: needs calibration"
        );
        // The same stratified splits (numpy's MT19937, scikit-learn's
        // StratifiedShuffleSplit) and isotonic fits give the same errors; the
        // error after calibration depends on how tied calibrated scores are
        // ordered, and Keel orders them stably (see `CalibrationCheck`).
        compare(
            &format!("{name} ece before"),
            check.ece_before,
            &case["ece_before_calibration"],
        );
        compare(
            &format!("{name} ece after"),
            check.ece_after,
            &case["ece_after_calibration_stable_tie_order"],
        );
    }
}

#[test]
fn covariate_shift_raises_alerts_only_after_the_shift() {
    let case = cases()
        .into_iter()
        .find(|case| case["name"] == "covariate_shift")
        .expect("the covariate shift case");
    let cbpe = fit(&case);
    let analysis = &case["analysis"];
    let estimates = cbpe
        .estimate(
            &bits(&analysis["y_pred"]),
            &scores(&analysis["y_score_units"]),
        )
        .expect("estimates");
    for chunk in &estimates {
        let accuracy = &chunk.metrics.accuracy;
        let shifted = chunk.start_index >= 1500;
        assert_eq!(
            accuracy.alert, shifted,
            "chunk {}: {accuracy:?}",
            chunk.chunk_index
        );
        assert_eq!(
            chunk.metrics.roc_auc.alert, shifted,
            "chunk {}",
            chunk.chunk_index
        );
    }
}

#[test]
fn chunk_estimates_serialize_with_nannyml_names() {
    let case = &cases()[0];
    let cbpe = fit(case);
    let chunk = &cbpe.reference_chunks()[0];
    let json = serde_json::to_value(chunk).expect("serializable");
    for metric in Metric::ALL {
        let entry = &json["metrics"][metric.name()];
        for field in [
            "value",
            "sampling_error",
            "realized",
            "upper_confidence",
            "lower_confidence",
            "upper_threshold",
            "lower_threshold",
            "alert",
        ] {
            assert!(
                entry.get(field).is_some(),
                "{} has no {field}",
                metric.name()
            );
        }
    }
    let back: ChunkEstimate = serde_json::from_value(json).expect("deserializable");
    assert_eq!(&back, chunk);
}

fn reference() -> (Vec<bool>, Vec<bool>, Vec<f64>) {
    let scores: Vec<f64> = (0..200)
        .map(|i| ((i * 37) % 200) as f64 / 200.0 + 0.001)
        .collect();
    let y_true: Vec<bool> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| (*s > 0.5) != (i % 7 == 0))
        .collect();
    let y_pred: Vec<bool> = scores.iter().map(|s| *s >= 0.5).collect();
    (y_true, y_pred, scores)
}

#[test]
fn bad_reference_input_is_an_error() {
    let (y_true, y_pred, scores) = reference();
    let size = Chunking::Size(50);
    assert!(Cbpe::fit(&y_true, &y_pred, &scores, size).is_ok());

    assert_eq!(
        Cbpe::fit(&[], &[], &[], size).err(),
        Some(CbpeError::Empty {
            period: Period::Reference
        })
    );
    assert_eq!(
        Cbpe::fit(&y_true[1..], &y_pred, &scores, size).err(),
        Some(CbpeError::LengthMismatch {
            period: Period::Reference,
            what: "true labels",
            expected: 200,
            found: 199,
        })
    );
    assert!(matches!(
        Cbpe::fit(&y_true, &y_pred[..10], &scores, size),
        Err(CbpeError::LengthMismatch {
            what: "predicted labels",
            ..
        })
    ));
    let all_positive = vec![true; 200];
    assert_eq!(
        Cbpe::fit(&all_positive, &y_pred, &scores, size).err(),
        Some(CbpeError::SingleClassReference { label: true })
    );
    let mut with_nan = scores.clone();
    with_nan[17] = f64::NAN;
    assert_eq!(
        Cbpe::fit(&y_true, &y_pred, &with_nan, size).err(),
        Some(CbpeError::NanScore {
            period: Period::Reference,
            row: 17
        })
    );
    let mut outside = scores.clone();
    outside[3] = 1.5;
    assert!(matches!(
        Cbpe::fit(&y_true, &y_pred, &outside, size),
        Err(CbpeError::ScoreOutOfRange { row: 3, .. })
    ));
    outside[3] = -0.1;
    assert!(Cbpe::fit(&y_true, &y_pred, &outside, size).is_err());
    assert_eq!(
        Cbpe::fit(&y_true, &y_pred, &scores, Chunking::Size(201)).err(),
        Some(CbpeError::ChunkLargerThanData {
            period: Period::Reference,
            chunk_size: 201,
            rows: 200,
        })
    );
    assert!(matches!(
        Cbpe::fit(&y_true, &y_pred, &scores, Chunking::Number(201)),
        Err(CbpeError::TooManyChunks { .. })
    ));
    assert!(matches!(
        Cbpe::fit(&y_true, &y_pred, &scores, Chunking::Size(0)),
        Err(CbpeError::ZeroChunking(_))
    ));
    // scikit-learn's stratified split needs two rows of each class.
    let mut lone_negative = vec![true; 200];
    lone_negative[5] = false;
    let error = Cbpe::fit(&lone_negative, &y_pred, &scores, size).err();
    assert!(
        matches!(error, Some(CbpeError::CalibrationCheck(_))),
        "{error:?}"
    );
    assert!(error
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("2 rows of each class"));
}

#[test]
fn bad_analysis_input_is_an_error() {
    let (y_true, y_pred, scores) = reference();
    let cbpe = Cbpe::fit(&y_true, &y_pred, &scores, Chunking::Size(50)).expect("fits");
    assert_eq!(
        cbpe.estimate(&y_pred, &scores).map(|chunks| chunks.len()),
        Ok(4)
    );
    assert_eq!(
        cbpe.estimate(&[], &[]).err(),
        Some(CbpeError::Empty {
            period: Period::Analysis
        })
    );
    assert!(matches!(
        cbpe.estimate(&y_pred[..20], &scores),
        Err(CbpeError::LengthMismatch {
            period: Period::Analysis,
            ..
        })
    ));
    assert!(matches!(
        cbpe.estimate(&y_pred[..20], &scores[..20]),
        Err(CbpeError::ChunkLargerThanData {
            period: Period::Analysis,
            ..
        })
    ));
    let mut with_nan = scores.clone();
    with_nan[0] = f64::NAN;
    assert_eq!(
        cbpe.estimate(&y_pred, &with_nan).err(),
        Some(CbpeError::NanScore {
            period: Period::Analysis,
            row: 0
        })
    );
    assert!(cbpe.estimate(&y_pred, &vec![f64::INFINITY; 200]).is_err());
    // The messages say what to do.
    let message = CbpeError::ChunkLargerThanData {
        period: Period::Analysis,
        chunk_size: 50,
        rows: 20,
    }
    .to_string();
    assert_eq!(
        message,
        "chunks of 50 rows do not fit in the 20 rows of the analysis data; use a smaller chunk size"
    );
}
