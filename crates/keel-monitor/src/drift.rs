//! Two-sample drift tests with the numbers of scipy and Evidently's legacy
//! stattests (`src/evidently/legacy/calculations/stattests/*.py` in
//! evidentlyai/evidently), and Evidently's default choice of test per column.
//!
//! Inputs are the non-null, finite values (Evidently drops NaN and infinities
//! before testing); categorical inputs are category counts.

use crate::kolmogorov::kstwo_sf;
use crate::MonitorError;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use std::collections::BTreeMap;

/// The tests Keel runs, named as Evidently names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatTest {
    Ks,
    Chisquare,
    Z,
    Wasserstein,
    Jensenshannon,
    Psi,
    #[serde(rename = "kl_div")]
    KlDiv,
    Hellinger,
    Mannw,
    #[serde(rename = "cramer_von_mises")]
    CramerVonMises,
    Anderson,
}

/// What a column holds, for the choice of test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numerical,
    Categorical,
}

impl StatTest {
    /// Evidently's default threshold for the test.
    pub fn default_threshold(self) -> f64 {
        match self {
            StatTest::Ks | StatTest::Chisquare | StatTest::Z | StatTest::Mannw => 0.05,
            StatTest::Wasserstein
            | StatTest::Jensenshannon
            | StatTest::Psi
            | StatTest::KlDiv
            | StatTest::Hellinger
            | StatTest::CramerVonMises
            | StatTest::Anderson => 0.1,
        }
    }

    /// Whether the score is a p-value (drift below the threshold) rather than
    /// a distance (drift at or above it).
    pub fn is_p_value(self) -> bool {
        matches!(
            self,
            StatTest::Ks
                | StatTest::Chisquare
                | StatTest::Z
                | StatTest::Mannw
                | StatTest::CramerVonMises
                | StatTest::Anderson
        )
    }

    /// Evidently's verdict: `ks` and `cramer_von_mises` drift at
    /// `p <= threshold`, `chisquare`, `z`, `mannw` and `anderson` at
    /// `p < threshold`, distances at `score >= threshold`; a NaN score never
    /// drifts.
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            StatTest::Ks | StatTest::CramerVonMises => score <= threshold,
            StatTest::Chisquare | StatTest::Z | StatTest::Mannw | StatTest::Anderson => {
                score < threshold
            }
            StatTest::Wasserstein
            | StatTest::Jensenshannon
            | StatTest::Psi
            | StatTest::KlDiv
            | StatTest::Hellinger => score >= threshold,
        }
    }

    /// Evidently's name of the test, as `parse` reads it.
    pub fn name(self) -> &'static str {
        match self {
            StatTest::Ks => "ks",
            StatTest::Chisquare => "chisquare",
            StatTest::Z => "z",
            StatTest::Wasserstein => "wasserstein",
            StatTest::Jensenshannon => "jensenshannon",
            StatTest::Psi => "psi",
            StatTest::KlDiv => "kl_div",
            StatTest::Hellinger => "hellinger",
            StatTest::Mannw => "mannw",
            StatTest::CramerVonMises => "cramer_von_mises",
            StatTest::Anderson => "anderson",
        }
    }

    /// Evidently's name of the test (`ks`, `kl_div`, `cramer_von_mises`, ...).
    pub fn parse(name: &str) -> Option<StatTest> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// Evidently's default test (`_get_default_stattest` in
/// `stattests/registry.py`): `n_reference` rows of reference data and
/// `n_unique` distinct non-null values over reference and current together.
pub fn default_stat_test(kind: ColumnKind, n_reference: usize, n_unique: usize) -> StatTest {
    let few_values_test = if n_unique > 2 {
        StatTest::Chisquare
    } else {
        StatTest::Z
    };
    match (kind, n_reference <= 1000) {
        (ColumnKind::Numerical, true) if n_unique <= 5 => few_values_test,
        (ColumnKind::Numerical, true) => StatTest::Ks,
        (ColumnKind::Categorical, true) => few_values_test,
        (ColumnKind::Numerical, false) if n_unique <= 5 => StatTest::Jensenshannon,
        (ColumnKind::Numerical, false) => StatTest::Wasserstein,
        (ColumnKind::Categorical, false) => StatTest::Jensenshannon,
    }
}

/// Evidently's dataset rule: drift when at least `share` (default 0.5) of
/// the columns drifted.
pub fn dataset_drifted(n_drifted: usize, n_columns: usize, share: f64) -> bool {
    n_columns > 0 && n_drifted as f64 / n_columns as f64 >= share
}

/// A test's statistic and p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// How `ks_2samp` computed its p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    Exact,
    Asymptotic,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsResult {
    pub statistic: f64,
    pub p_value: f64,
    pub method: KsMethod,
}

/// scipy's `ks_2samp` with `method='auto'`: exact when both samples have at
/// most 10,000 values (and the exact computation succeeds), otherwise
/// `kstwo.sf(d, round(m n / (m + n)))` as scipy's asymptotic branch.
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Result<KsResult, MonitorError> {
    const MAX_AUTO_N: usize = 10_000;
    if reference.is_empty() || current.is_empty() {
        return Err(MonitorError::EmptySample { test: "ks" });
    }
    let mut data1 = reference.to_vec();
    let mut data2 = current.to_vec();
    data1.sort_by(f64::total_cmp);
    data2.sort_by(f64::total_cmp);
    let (n1, n2) = (data1.len(), data2.len());

    // Largest gap between the two empirical CDFs, evaluated at every value.
    let mut max_positive = f64::NEG_INFINITY;
    let mut max_negative = f64::NEG_INFINITY;
    for value in data1.iter().chain(&data2) {
        let cdf1 = data1.partition_point(|item| item <= value) as f64 / n1 as f64;
        let cdf2 = data2.partition_point(|item| item <= value) as f64 / n2 as f64;
        max_positive = max_positive.max(cdf1 - cdf2);
        max_negative = max_negative.max(cdf2 - cdf1);
    }
    let statistic = max_positive.max(max_negative.clamp(0.0, 1.0));

    if n1.max(n2) <= MAX_AUTO_N {
        if let Some((statistic, p_value)) = ks_exact(n1 as u64, n2 as u64, statistic) {
            return Ok(KsResult {
                statistic,
                p_value: p_value.clamp(0.0, 1.0),
                method: KsMethod::Exact,
            });
        }
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = m * n / (m + n);
    Ok(KsResult {
        statistic,
        p_value: kstwo_sf(en.round_ties_even() as u64, statistic),
        method: KsMethod::Asymptotic,
    })
}

fn gcd(mut left: u64, mut right: u64) -> u64 {
    while right != 0 {
        (left, right) = (right, left % right);
    }
    left
}

/// scipy's `_attempt_exact_2kssamp` for the two-sided alternative: the
/// statistic rounded to a multiple of 1/lcm, and its exact p-value.
fn ks_exact(n1: u64, n2: u64, statistic: f64) -> Option<(f64, f64)> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (statistic * lcm as f64).round_ties_even() as u64;
    let statistic = h as f64 / lcm as f64;
    if h == 0 {
        return Some((statistic, 1.0));
    }
    let p_value = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside_method(n1, n2, g, h)
    };
    (p_value.is_finite() && (0.0..=1.0).contains(&p_value)).then_some((statistic, p_value))
}

/// scipy's `_compute_prob_outside_square`: Pr(D_{n,n} >= h/n).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as f64);
    let mut probability = 0.0;
    let mut k = (n / h).floor();
    while k >= 0.0 {
        let mut term = 1.0;
        let mut j = 0.0;
        while j < h {
            term = (n - k * h - j) * term / (n + k * h + j + 1.0);
            j += 1.0;
        }
        probability = term * (1.0 - probability);
        k -= 1.0;
    }
    2.0 * probability
}

/// scipy's `_compute_outer_prob_inside_method` (Hodges' inside method in
/// Viehmann's 1 - p form), from `scipy/stats/_stats_pythran.py`.
fn outer_prob_inside_method(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for slot in a.iter_mut().take(maxj as usize).skip(minj as usize) {
        *slot = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((ng * i - h).div_euclid(mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = (jj + minj) as f64;
            let previous = a[(jj + minj - lastminj) as usize];
            val = (previous * i as f64 + val * j) / (i as f64 + j);
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = ((maxj - minj + (lastlen - curlen)) as usize).min(a.len());
            for slot in &mut a[start..end] {
                *slot = 1.0;
            }
        }
    }
    a[(maxj - minj - 1) as usize]
}

fn ceil_div(numerator: i64, denominator: i64) -> i64 {
    -((-numerator).div_euclid(denominator))
}

/// Union of the categories of both sides, each with its two counts.
fn aligned_counts(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
) -> Vec<(f64, f64)> {
    let mut keys: Vec<&String> = reference.keys().chain(current.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let count =
                |counts: &BTreeMap<String, u64>| counts.get(key).copied().unwrap_or(0) as f64;
            (count(reference), count(current))
        })
        .collect()
}

/// Evidently's `chisquare` test (`stattests/chisquare_stattest.py`): the
/// reference counts scaled to the current total are the expected
/// frequencies of `scipy.stats.chisquare`.
pub fn chi_square(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
) -> Result<TestResult, MonitorError> {
    let n_reference: u64 = reference.values().sum();
    let n_current: u64 = current.values().sum();
    if n_reference == 0 || n_current == 0 {
        return Err(MonitorError::EmptySample { test: "chisquare" });
    }
    let scale = n_current as f64 / n_reference as f64;
    let counts = aligned_counts(reference, current);
    let statistic: f64 = counts
        .iter()
        .map(|(reference, observed)| {
            let expected = reference * scale;
            (observed - expected).powi(2) / expected
        })
        .sum();
    let degrees_of_freedom = counts.len() as f64 - 1.0;
    Ok(TestResult {
        statistic,
        p_value: chi_squared_sf(statistic, degrees_of_freedom),
    })
}

fn chi_squared_sf(statistic: f64, degrees_of_freedom: f64) -> f64 {
    if statistic.is_nan() {
        return f64::NAN;
    }
    if statistic == f64::INFINITY {
        return 0.0;
    }
    match ChiSquared::new(degrees_of_freedom) {
        Ok(distribution) => distribution.sf(statistic),
        // scipy's chi2 with 0 degrees of freedom (one category) gives NaN.
        Err(_) => f64::NAN,
    }
}

/// Evidently's two-proportion `z` test (`stattests/z_stattest.py`): the
/// smallest category (in sorted order) against all others, two-sided.
pub fn z_test(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
) -> Result<TestResult, MonitorError> {
    let n_reference: u64 = reference.values().sum();
    let n_current: u64 = current.values().sum();
    if n_reference == 0 || n_current == 0 {
        return Err(MonitorError::EmptySample { test: "z" });
    }
    let present = |counts: &BTreeMap<String, u64>| {
        counts
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(key, _)| key.clone())
            .collect::<Vec<_>>()
    };
    let (reference_keys, current_keys) = (present(reference), present(current));
    if reference_keys.len() == 1 && reference_keys == current_keys {
        return Ok(TestResult {
            statistic: 0.0,
            p_value: 1.0,
        });
    }
    let first_key = reference_keys
        .iter()
        .chain(&current_keys)
        .min()
        .cloned()
        .unwrap_or_default();
    let others = |counts: &BTreeMap<String, u64>, total: u64| {
        total - counts.get(&first_key).copied().unwrap_or(0)
    };
    let (n1, n2) = (n_reference as f64, n_current as f64);
    let p1 = others(reference, n_reference) as f64 / n1;
    let p2 = others(current, n_current) as f64 / n2;
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let statistic = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let p_value = 2.0 * (1.0 - standard_normal_cdf(statistic.abs()));
    Ok(TestResult { statistic, p_value })
}

fn standard_normal_cdf(x: f64) -> f64 {
    match Normal::new(0.0, 1.0) {
        Ok(normal) => normal.cdf(x),
        Err(_) => f64::NAN,
    }
}

/// scipy's `wasserstein_distance` between the empirical distributions.
pub fn wasserstein_distance(reference: &[f64], current: &[f64]) -> Result<f64, MonitorError> {
    if reference.is_empty() || current.is_empty() {
        return Err(MonitorError::EmptySample {
            test: "wasserstein",
        });
    }
    let mut u_values = reference.to_vec();
    let mut v_values = current.to_vec();
    u_values.sort_by(f64::total_cmp);
    v_values.sort_by(f64::total_cmp);
    // Both samples merged in order (linear, as they are sorted), then one
    // walk: at each merged value, the share of each sample at or below it.
    let mut all_values = Vec::with_capacity(u_values.len() + v_values.len());
    let (mut i, mut j) = (0, 0);
    while i < u_values.len() || j < v_values.len() {
        if j == v_values.len() || (i < u_values.len() && u_values[i] <= v_values[j]) {
            all_values.push(u_values[i]);
            i += 1;
        } else {
            all_values.push(v_values[j]);
            j += 1;
        }
    }
    let (n_u, n_v) = (u_values.len() as f64, v_values.len() as f64);
    let (mut u_at, mut v_at) = (0usize, 0usize);
    let mut distance = 0.0;
    for window in all_values.windows(2) {
        let (value, delta) = (window[0], window[1] - window[0]);
        while u_at < u_values.len() && u_values[u_at] <= value {
            u_at += 1;
        }
        while v_at < v_values.len() && v_values[v_at] <= value {
            v_at += 1;
        }
        let (u_cdf, v_cdf) = (u_at as f64 / n_u, v_at as f64 / n_v);
        distance += (u_cdf - v_cdf).abs() * delta;
    }
    Ok(distance)
}

/// Evidently's `wasserstein` test (`stattests/wasserstein_distance_norm.py`):
/// the distance divided by the reference's population std, at least 0.001.
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> Result<f64, MonitorError> {
    let distance = wasserstein_distance(reference, current)?;
    let n = reference.len() as f64;
    let mean = reference.iter().sum::<f64>() / n;
    let variance = reference
        .iter()
        .map(|value| (value - mean).powi(2))
        .sum::<f64>()
        / n;
    Ok(distance / variance.sqrt().max(0.001))
}

/// Shares per bin or category of both samples: Evidently's `get_binned_data`
/// (`stattests/utils.py`). Numeric data whose reference has more than 20
/// distinct values is cut on numpy's Sturges edges over both samples;
/// otherwise every distinct value is a category.
pub fn binned_numeric(
    reference: &[f64],
    current: &[f64],
    fill_zeroes: bool,
) -> Result<(Vec<f64>, Vec<f64>), MonitorError> {
    if reference.is_empty() || current.is_empty() {
        return Err(MonitorError::EmptySample { test: "binning" });
    }
    let mut reference_distinct = reference.to_vec();
    reference_distinct.sort_by(f64::total_cmp);
    reference_distinct.dedup();
    let (reference_shares, current_shares) = if reference_distinct.len() > 20 {
        let mut combined: Vec<f64> = reference.iter().chain(current).copied().collect();
        combined.sort_by(f64::total_cmp);
        let edges = sturges_edges(&combined);
        (
            histogram_shares(reference, &edges),
            histogram_shares(current, &edges),
        )
    } else {
        let to_counts = |values: &[f64]| {
            let mut counts = BTreeMap::new();
            for value in values {
                // Only equality matters for these keys; `+ 0.0` folds -0.0
                // into 0.0 as numpy's and pandas' equality does.
                *counts.entry(format!("{:e}", value + 0.0)).or_insert(0u64) += 1;
            }
            counts
        };
        return binned_categorical(&to_counts(reference), &to_counts(current), fill_zeroes);
    };
    Ok(finish_binning(
        reference_shares,
        current_shares,
        fill_zeroes,
    ))
}

/// Categorical branch of Evidently's `get_binned_data`: the share of each
/// category over the union of categories.
pub fn binned_categorical(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
    fill_zeroes: bool,
) -> Result<(Vec<f64>, Vec<f64>), MonitorError> {
    let n_reference: u64 = reference.values().sum();
    let n_current: u64 = current.values().sum();
    if n_reference == 0 || n_current == 0 {
        return Err(MonitorError::EmptySample { test: "binning" });
    }
    let (reference_shares, current_shares) = aligned_counts(reference, current)
        .into_iter()
        .map(|(reference, current)| (reference / n_reference as f64, current / n_current as f64))
        .unzip();
    Ok(finish_binning(
        reference_shares,
        current_shares,
        fill_zeroes,
    ))
}

fn finish_binning(
    mut reference: Vec<f64>,
    mut current: Vec<f64>,
    fill_zeroes: bool,
) -> (Vec<f64>, Vec<f64>) {
    if fill_zeroes {
        fill_zero_shares(&mut reference);
        fill_zero_shares(&mut current);
    }
    (reference, current)
}

/// Evidently replaces empty bins by the smallest non-empty share / 10^6 when
/// that share is at most 0.0001, by 0.0001 otherwise.
pub(crate) fn fill_zero_shares(shares: &mut [f64]) {
    let smallest = shares
        .iter()
        .copied()
        .filter(|share| *share != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return;
    }
    let fill = if smallest <= 0.0001 {
        smallest / 1e6
    } else {
        0.0001
    };
    for share in shares.iter_mut().filter(|share| **share == 0.0) {
        *share = fill;
    }
}

/// numpy's `histogram_bin_edges(values, bins="sturges")` for sorted values.
pub(crate) fn sturges_edges(sorted: &[f64]) -> Vec<f64> {
    sturges_edges_for(sorted[0], sorted[sorted.len() - 1], sorted.len())
}

/// [`sturges_edges`] from the smallest and largest of `n` values.
pub(crate) fn sturges_edges_for(min: f64, max: f64, n: usize) -> Vec<f64> {
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let range = max - min;
    let width = range / ((n as f64).log2() + 1.0);
    let n_bins = if width > 0.0 {
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    linspace(first, last, n_bins + 1)
}

/// numpy's `linspace(start, stop, num)` with its rounding: `i * step + start`,
/// and the last edge set to `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let divisions = (num - 1) as f64;
    let step = (stop - start) / divisions;
    let mut edges: Vec<f64> = (0..num).map(|index| index as f64 * step + start).collect();
    if let Some(last) = edges.last_mut() {
        *last = stop;
    }
    edges
}

/// `np.histogram(values, edges)[0]`: counts over half-open bins, the last
/// one closed; values outside the edges are not counted.
pub(crate) fn histogram_counts(values: &[f64], edges: &[f64]) -> Vec<u64> {
    let n_bins = edges.len() - 1;
    let mut counts = vec![0u64; n_bins];
    let last = edges[n_bins];
    for value in values {
        if *value < edges[0] || *value > last {
            continue;
        }
        let bin = if *value == last {
            n_bins - 1
        } else {
            edges.partition_point(|edge| edge <= value) - 1
        };
        counts[bin] += 1;
    }
    counts
}

/// `np.histogram(values, edges)[0] / len(values)`.
fn histogram_shares(values: &[f64], edges: &[f64]) -> Vec<f64> {
    histogram_counts(values, edges)
        .into_iter()
        .map(|count| count as f64 / values.len() as f64)
        .collect()
}

/// scipy's `spatial.distance.jensenshannon(p, q)` (natural log): both
/// vectors normalised to sum 1.
pub fn jensen_shannon_distance(p: &[f64], q: &[f64]) -> f64 {
    let (p_sum, q_sum): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let relative_entropy = |x: f64, y: f64| {
        if x > 0.0 && y > 0.0 {
            x * (x / y).ln()
        } else if x == 0.0 && y >= 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    };
    let mut left = 0.0;
    let mut right = 0.0;
    for (p_share, q_share) in p.iter().zip(q) {
        let (p_share, q_share) = (p_share / p_sum, q_share / q_sum);
        let middle = (p_share + q_share) / 2.0;
        left += relative_entropy(p_share, middle);
        right += relative_entropy(q_share, middle);
    }
    ((left + right) / 2.0).sqrt()
}

/// Evidently's `jensenshannon` test (`stattests/jensenshannon.py`): binned
/// without zero filling, natural log.
pub fn jensen_shannon_numeric(reference: &[f64], current: &[f64]) -> Result<f64, MonitorError> {
    let (reference, current) = binned_numeric(reference, current, false)?;
    Ok(jensen_shannon_distance(&reference, &current))
}

pub fn jensen_shannon_categorical(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
) -> Result<f64, MonitorError> {
    let (reference, current) = binned_categorical(reference, current, false)?;
    Ok(jensen_shannon_distance(&reference, &current))
}

/// Population stability index over binned shares (`stattests/psi.py`):
/// sum (ref - cur) * ln(ref / cur), with empty bins filled.
pub fn psi_from_shares(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(reference, current)| (reference - current) * (reference / current).ln())
        .sum()
}

pub fn psi_numeric(reference: &[f64], current: &[f64]) -> Result<f64, MonitorError> {
    let (reference, current) = binned_numeric(reference, current, true)?;
    Ok(psi_from_shares(&reference, &current))
}

pub fn psi_categorical(
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
) -> Result<f64, MonitorError> {
    let (reference, current) = binned_categorical(reference, current, true)?;
    Ok(psi_from_shares(&reference, &current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_choice_follows_evidently_registry() {
        use ColumnKind::{Categorical, Numerical};
        assert_eq!(default_stat_test(Numerical, 1000, 6), StatTest::Ks);
        assert_eq!(default_stat_test(Numerical, 1000, 5), StatTest::Chisquare);
        assert_eq!(default_stat_test(Numerical, 1000, 2), StatTest::Z);
        assert_eq!(default_stat_test(Numerical, 1001, 6), StatTest::Wasserstein);
        assert_eq!(
            default_stat_test(Numerical, 1001, 5),
            StatTest::Jensenshannon
        );
        assert_eq!(default_stat_test(Categorical, 1000, 3), StatTest::Chisquare);
        assert_eq!(default_stat_test(Categorical, 1000, 2), StatTest::Z);
        assert_eq!(
            default_stat_test(Categorical, 1001, 2),
            StatTest::Jensenshannon
        );
    }

    #[test]
    fn verdicts_use_evidently_comparisons() {
        assert!(StatTest::Ks.drifted(0.05, 0.05));
        assert!(!StatTest::Chisquare.drifted(0.05, 0.05));
        assert!(StatTest::Wasserstein.drifted(0.1, 0.1));
        assert!(dataset_drifted(1, 2, 0.5));
        assert!(!dataset_drifted(0, 0, 0.5));
    }

    #[test]
    fn large_samples_switch_to_the_asymptotic_p_value() {
        let reference: Vec<f64> = (0..10_001).map(f64::from).collect();
        let current: Vec<f64> = (0..100).map(|index| f64::from(index) * 100.0).collect();
        let result = ks_2samp(&reference, &current).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(result.method, KsMethod::Asymptotic);
        assert!(result.p_value > 0.5, "{result:?}");
    }
}
