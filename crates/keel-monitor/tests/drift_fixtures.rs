//! Drift scores against scipy's, on the samples and numbers that
//! `scripts/gen_drift_fixtures.py` wrote to `tests/fixtures/drift.json`.

use keel_monitor::drift;
use serde_json::Value;
use std::collections::BTreeMap;

const TOLERANCE: f64 = 1e-6;

fn document() -> Value {
    serde_json::from_str(include_str!("fixtures/drift.json")).unwrap_or(Value::Null)
}

fn fixtures() -> Vec<Value> {
    document()["cases"].as_array().cloned().unwrap_or_default()
}

fn number(value: &Value) -> f64 {
    match value {
        Value::String(text) if text == "inf" => f64::INFINITY,
        Value::String(text) if text == "-inf" => f64::NEG_INFINITY,
        Value::String(text) if text == "nan" => f64::NAN,
        other => other
            .as_f64()
            .unwrap_or_else(|| panic!("not a number: {other}")),
    }
}

fn samples(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .map(|items| items.iter().map(number).collect())
        .unwrap_or_default()
}

fn counts(value: &Value) -> BTreeMap<String, u64> {
    value
        .as_object()
        .map(|items| {
            items
                .iter()
                .map(|(key, count)| (key.clone(), count.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// Equal within 1e-6, relative for scores above 1 and for tiny p-values so
/// that a p-value of 1e-12 is not "matched" by 0.
fn assert_close(case: &str, what: &str, actual: f64, expected: f64) {
    let matches = if expected.is_finite() {
        let scale = if expected.abs() > 1.0 || (expected != 0.0 && expected.abs() < 1e-3) {
            expected.abs()
        } else {
            1.0
        };
        (actual - expected).abs() <= TOLERANCE * scale
    } else {
        actual == expected || (actual.is_nan() && expected.is_nan())
    };
    assert!(
        matches,
        "{case}: {what} = {actual:e}, scipy says {expected:e}"
    );
}

#[test]
fn fixtures_cover_both_kinds() {
    let cases = fixtures();
    assert!(
        cases
            .iter()
            .filter(|case| case["kind"] == "numerical")
            .count()
            >= 5
    );
    assert!(
        cases
            .iter()
            .filter(|case| case["kind"] == "categorical")
            .count()
            >= 4
    );
}

#[test]
fn ks_matches_scipy_ks_2samp() {
    for case in fixtures().iter().filter(|case| case["kind"] == "numerical") {
        let name = case["name"].as_str().unwrap_or("?");
        let result = drift::ks_2samp(&samples(&case["reference"]), &samples(&case["current"]))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let (n_reference, n_current) = (
            case["reference"].as_array().map_or(0, Vec::len),
            case["current"].as_array().map_or(0, Vec::len),
        );
        let expected_method = if n_reference.max(n_current) <= 10_000 {
            drift::KsMethod::Exact
        } else {
            drift::KsMethod::Asymptotic
        };
        assert_eq!(result.method, expected_method, "{name}");
        assert_close(
            name,
            "ks statistic",
            result.statistic,
            number(&case["ks"]["statistic"]),
        );
        assert_close(
            name,
            "ks p-value",
            result.p_value,
            number(&case["ks"]["p_value"]),
        );
    }
}

#[test]
fn numeric_distances_match_evidently_formulas() {
    let with_distances =
        |case: &&Value| case["kind"] == "numerical" && !case["wasserstein_normed"].is_null();
    for case in fixtures().iter().filter(with_distances) {
        let name = case["name"].as_str().unwrap_or("?");
        let (reference, current) = (samples(&case["reference"]), samples(&case["current"]));
        let wasserstein = drift::wasserstein_normed(&reference, &current).unwrap_or(f64::NAN);
        assert_close(
            name,
            "normed wasserstein",
            wasserstein,
            number(&case["wasserstein_normed"]),
        );
        let jensen_shannon =
            drift::jensen_shannon_numeric(&reference, &current).unwrap_or(f64::NAN);
        assert_close(
            name,
            "jensen-shannon",
            jensen_shannon,
            number(&case["jensenshannon"]),
        );
        let psi = drift::psi_numeric(&reference, &current).unwrap_or(f64::NAN);
        assert_close(name, "psi", psi, number(&case["psi"]));
    }
}

#[test]
fn categorical_tests_match_evidently_formulas() {
    for case in fixtures()
        .iter()
        .filter(|case| case["kind"] == "categorical")
    {
        let name = case["name"].as_str().unwrap_or("?");
        let (reference, current) = (counts(&case["reference"]), counts(&case["current"]));
        let chi_square = drift::chi_square(&reference, &current)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_close(
            name,
            "chi-square statistic",
            chi_square.statistic,
            number(&case["chisquare"]["statistic"]),
        );
        assert_close(
            name,
            "chi-square p-value",
            chi_square.p_value,
            number(&case["chisquare"]["p_value"]),
        );
        if !case["z"].is_null() {
            let z = drift::z_test(&reference, &current)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_close(
                name,
                "z statistic",
                z.statistic,
                number(&case["z"]["statistic"]),
            );
            assert_close(name, "z p-value", z.p_value, number(&case["z"]["p_value"]));
        }
        let jensen_shannon =
            drift::jensen_shannon_categorical(&reference, &current).unwrap_or(f64::NAN);
        assert_close(
            name,
            "jensen-shannon",
            jensen_shannon,
            number(&case["jensenshannon"]),
        );
        let psi = drift::psi_categorical(&reference, &current).unwrap_or(f64::NAN);
        assert_close(name, "psi", psi, number(&case["psi"]));
    }
}

#[test]
fn kstwo_matches_scipy_on_every_branch() {
    let grid = document()["kstwo"].as_array().cloned().unwrap_or_default();
    assert!(grid.len() > 100);
    for point in &grid {
        let n = point["n"].as_u64().unwrap_or(0);
        let x = number(&point["x"]);
        let name = format!("kstwo n={n} x={x}");
        assert_close(
            &name,
            "sf",
            keel_monitor::kolmogorov::kstwo_sf(n, x),
            number(&point["sf"]),
        );
    }
}
