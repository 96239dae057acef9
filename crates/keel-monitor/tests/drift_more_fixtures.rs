//! Mann-Whitney, KL, Hellinger, Cramér-von Mises and Anderson-Darling
//! against scipy and Evidently's formulas, on the samples and numbers that
//! `scripts/gen_drift_more_fixtures.py` wrote to
//! `tests/fixtures/drift_more.json`.

use keel_monitor::drift_more::{self, Alternative};
use serde_json::Value;
use std::collections::BTreeMap;

const TOLERANCE: f64 = 1e-6;

fn document() -> Value {
    serde_json::from_str(include_str!("fixtures/drift_more.json"))
        .expect("the fixture file is JSON")
}

fn cases(kind: &str) -> Vec<Value> {
    document()["cases"]
        .as_array()
        .expect("the fixture file has cases")
        .iter()
        .filter(|case| case["kind"] == kind)
        .cloned()
        .collect()
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

fn samples(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("a sample is an array")
        .iter()
        .map(number)
        .collect()
}

fn counts(value: &Value) -> BTreeMap<String, u64> {
    value
        .as_object()
        .expect("categorical counts are an object")
        .iter()
        .map(|(key, count)| (key.clone(), count.as_u64().expect("a count")))
        .collect()
}

fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap_or("?")
}

/// Equal within 1e-6: relative for values above 1 and for tiny nonzero
/// values (so that a p-value of 1e-12 is not "matched" by 0), absolute
/// otherwise.
fn assert_close(case: &str, what: &str, actual: f64, expected: f64) {
    let scale = if expected.abs() > 1.0 || (expected != 0.0 && expected.abs() < 1e-3) {
        expected.abs()
    } else {
        1.0
    };
    assert!(
        (actual - expected).abs() <= TOLERANCE * scale,
        "{case}: {what} = {actual:e}, expected {expected:e}"
    );
}

/// Equal within 1e-6 absolute: for p-values computed as 1 - CDF, where
/// scipy's own value is only accurate to about 1e-16 absolute.
fn assert_close_absolute(case: &str, what: &str, actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= TOLERANCE,
        "{case}: {what} = {actual:e}, expected {expected:e}"
    );
}

#[test]
fn fixtures_cover_the_cases_the_brief_names() {
    let numerical = cases("numerical");
    let categorical = cases("categorical");
    assert!(numerical.len() >= 10);
    assert!(categorical.len() >= 5);
    assert!(numerical
        .iter()
        .any(|case| samples(&case["reference"]).len() >= 10_000));
    assert!(numerical
        .iter()
        .any(|case| samples(&case["reference"]).len() <= 5));
    // Anderson-Darling p-values: capped, floored and interpolated ones.
    let p_values: Vec<f64> = numerical
        .iter()
        .filter(|case| !case["anderson"].is_null())
        .map(|case| number(&case["anderson"]["p_value"]))
        .collect();
    assert!(p_values.contains(&0.25));
    assert!(p_values.contains(&0.001));
    assert!(p_values.iter().any(|p| *p > 0.001 && *p < 0.25));
}

#[test]
fn mann_whitney_matches_scipy_asymptotic() {
    for case in cases("numerical") {
        let (reference, current) = (samples(&case["reference"]), samples(&case["current"]));
        let expected = &case["mann_whitney"];
        let (statistic, p_value) =
            drift_more::mann_whitney_u(&reference, &current).expect("non-empty samples");
        assert_close(name(&case), "U", statistic, number(&expected["statistic"]));
        assert_close(
            name(&case),
            "p two-sided",
            p_value,
            number(&expected["p_value"]),
        );
        let (_, p_less) = drift_more::mann_whitney_u_with(&reference, &current, Alternative::Less)
            .expect("non-empty samples");
        assert_close(
            name(&case),
            "p less",
            p_less,
            number(&expected["p_value_less"]),
        );
    }
}

#[test]
fn kl_divergence_matches_evidently() {
    for case in cases("numerical") {
        let actual = drift_more::kl_divergence_numeric(
            &samples(&case["reference"]),
            &samples(&case["current"]),
        )
        .expect("non-empty samples");
        assert_close(name(&case), "kl_div", actual, number(&case["kl_div"]));
    }
    for case in cases("categorical") {
        let actual = drift_more::kl_divergence_categorical(
            &counts(&case["reference"]),
            &counts(&case["current"]),
        )
        .expect("non-empty samples");
        assert_close(name(&case), "kl_div", actual, number(&case["kl_div"]));
    }
}

#[test]
fn hellinger_matches_evidently() {
    for case in cases("numerical") {
        let actual =
            drift_more::hellinger_numeric(&samples(&case["reference"]), &samples(&case["current"]))
                .expect("non-empty samples");
        assert_close(name(&case), "hellinger", actual, number(&case["hellinger"]));
    }
    for case in cases("categorical") {
        let actual = drift_more::hellinger_categorical(
            &counts(&case["reference"]),
            &counts(&case["current"]),
        )
        .expect("non-empty samples");
        assert_close(name(&case), "hellinger", actual, number(&case["hellinger"]));
    }
}

#[test]
fn cramer_von_mises_matches_scipy_asymptotic() {
    for case in cases("numerical") {
        let result =
            drift_more::cramer_von_mises(&samples(&case["reference"]), &samples(&case["current"]));
        let expected = &case["cramer_von_mises"];
        if expected.is_null() {
            assert!(result.is_err(), "{}: scipy has no value", name(&case));
            continue;
        }
        let (statistic, p_value) = result.expect("samples of two values or more");
        assert_close(name(&case), "T", statistic, number(&expected["statistic"]));
        assert_close_absolute(name(&case), "p", p_value, number(&expected["p_value"]));
    }
}

fn check_anderson(case: &Value, samples_of_case: &[Vec<f64>]) {
    let borrowed: Vec<&[f64]> = samples_of_case.iter().map(Vec::as_slice).collect();
    let result = drift_more::anderson_darling_ksamp(&borrowed);
    let expected = &case["anderson"];
    if expected.is_null() {
        assert!(result.is_err(), "{}: scipy has no value", name(case));
        return;
    }
    let (statistic, p_value) = result.expect("scipy computed this case");
    assert_close(name(case), "A2", statistic, number(&expected["statistic"]));
    assert_close(name(case), "p", p_value, number(&expected["p_value"]));
}

#[test]
fn anderson_darling_matches_scipy_on_two_samples() {
    for case in cases("numerical") {
        let both = [samples(&case["reference"]), samples(&case["current"])];
        check_anderson(&case, &both);
    }
}

#[test]
fn anderson_darling_matches_scipy_on_k_samples() {
    let k_sample_cases = document()["anderson_ksamp"]
        .as_array()
        .expect("the fixture file has k-sample cases")
        .clone();
    assert!(!k_sample_cases.is_empty());
    for case in k_sample_cases {
        let all: Vec<Vec<f64>> = case["samples"]
            .as_array()
            .expect("samples are arrays")
            .iter()
            .map(samples)
            .collect();
        check_anderson(&case, &all);
    }
}

#[test]
fn empty_samples_are_errors_not_panics() {
    let some = [1.0, 2.0, 3.0];
    assert!(drift_more::mann_whitney_u(&[], &some).is_err());
    assert!(drift_more::kl_divergence_numeric(&some, &[]).is_err());
    assert!(drift_more::hellinger_numeric(&[], &some).is_err());
    assert!(drift_more::hellinger_categorical(&BTreeMap::new(), &BTreeMap::new()).is_err());
    assert!(drift_more::cramer_von_mises(&some, &[1.0]).is_err());
    assert!(drift_more::anderson_darling_ksamp(&[&some, &[]]).is_err());
    assert!(drift_more::anderson_darling_ksamp(&[&some]).is_err());
}
