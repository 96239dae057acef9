//! Drift from two profiles instead of raw rows, so per-minute profiles (or
//! profiles of data that is gone) can be compared.
//!
//! A profile holds every value while it is small: a numeric column's KLL
//! sketch keeps its whole input until its first compaction (about 200
//! values), a categorical column's frequent items are exact up to 1,000
//! distinct values. Then the report is the same as on the raw rows. Beyond
//! that, the distance tests run on the sketches (`approximate: true`):
//! normed Wasserstein on a stand-in sample drawn at the sketch's quantiles
//! with the reference's exact standard deviation; Jensen-Shannon, PSI and
//! Kullback-Leibler on Evidently's Sturges bins (their edges are exact: the
//! profiles know both minimums, maximums and counts), bin shares from the
//! sketch's ranks at the edges; category shares from the frequent items with the untracked
//! remainder as one `other` category. The tests that need every value (KS,
//! Mann-Whitney, Cramer-von Mises, Anderson-Darling, Hellinger on numbers,
//! chi-squared and Z on summarised numbers) say so with an error naming the
//! column.

use std::collections::BTreeMap;

use crate::drift::{self, fill_zero_shares, sturges_edges_for, ColumnKind, StatTest};
use crate::drift_more;
use crate::profile::{CategoricalProfile, ColumnSummary, NumericProfile, Profile};
use crate::report::{
    column_drift, ColumnDrift, ColumnValues, DriftOptions, DriftReport, Histogram,
};
use crate::MonitorError;

/// Values drawn from a sketch to stand in for its column.
const STAND_IN_SAMPLE: usize = 4096;

/// The category standing for every value a summarised profile did not track.
pub const OTHER_CATEGORY: &str = "(other)";

impl DriftReport {
    /// Tests every column of `reference` that `current` also has, from the
    /// profiles alone (see the module documentation for what is exact).
    pub fn from_profiles(
        reference: &Profile,
        current: &Profile,
        options: &DriftOptions,
    ) -> Result<DriftReport, MonitorError> {
        let mut columns = Vec::new();
        for column in &reference.columns {
            let Some(other) = current.column(&column.name) else {
                continue;
            };
            columns.push(column_from_profiles(
                &column.name,
                &column.summary,
                other,
                options,
            )?);
        }
        let n_drifted = columns.iter().filter(|column| column.drifted).count();
        let drifted_share = if columns.is_empty() {
            0.0
        } else {
            n_drifted as f64 / columns.len() as f64
        };
        Ok(DriftReport {
            dataset_drifted: drift::dataset_drifted(n_drifted, columns.len(), options.drift_share),
            columns,
            n_drifted,
            drifted_share,
        })
    }
}

fn column_from_profiles(
    name: &str,
    reference: &ColumnSummary,
    current: &ColumnSummary,
    options: &DriftOptions,
) -> Result<ColumnDrift, MonitorError> {
    match (reference, current) {
        (ColumnSummary::Numeric(reference), ColumnSummary::Numeric(current)) => {
            if let (Some(r), Some(c)) = (
                reference.sketch.exact_values(),
                current.sketch.exact_values(),
            ) {
                return column_drift(
                    name,
                    ColumnValues::Numeric(r),
                    ColumnValues::Numeric(c),
                    options,
                );
            }
            approximate_numeric(name, reference, current, options)
        }
        (ColumnSummary::Categorical(reference), ColumnSummary::Categorical(current)) => {
            let exact = reference.frequent.is_exact() && current.frequent.is_exact();
            let mut drift = column_drift(
                name,
                ColumnValues::Categorical(category_counts(reference)),
                ColumnValues::Categorical(category_counts(current)),
                options,
            )?;
            drift.approximate = !exact;
            Ok(drift)
        }
        _ => Err(MonitorError::IncompatibleColumns {
            column: name.to_owned(),
            left: "one kind in the reference profile",
            right: "another in the current one",
        }),
    }
}

/// Tracked counts, plus the untracked remainder as [`OTHER_CATEGORY`].
fn category_counts(profile: &CategoricalProfile) -> BTreeMap<String, u64> {
    let mut counts = profile.frequent.counts().clone();
    let tracked: u64 = counts.values().sum();
    let non_null = profile.count.saturating_sub(profile.nulls);
    if non_null > tracked {
        *counts.entry(OTHER_CATEGORY.to_owned()).or_insert(0) += non_null - tracked;
    }
    counts
}

fn approximate_numeric(
    name: &str,
    reference: &NumericProfile,
    current: &NumericProfile,
    options: &DriftOptions,
) -> Result<ColumnDrift, MonitorError> {
    if reference.finite == 0 || current.finite == 0 {
        return Err(MonitorError::EmptySample {
            test: "drift from profiles",
        });
    }
    let reference_sample = reference.sketch.quantile_sample(STAND_IN_SAMPLE);
    let current_sample = current.sketch.quantile_sample(STAND_IN_SAMPLE);
    // The sketch keeps a sample of the values: few distinct ones there means
    // few in the column (a rare value may be missed, hence "approximate").
    let mut distinct: Vec<u64> = reference_sample
        .iter()
        .chain(&current_sample)
        .map(|value| (value + 0.0).to_bits())
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let test = options.tests.get(name).copied().unwrap_or_else(|| {
        drift::default_stat_test(
            ColumnKind::Numerical,
            reference.finite as usize,
            distinct.len(),
        )
    });
    let needs_raw = || MonitorError::Unsupported {
        test: test.name(),
        requirement:
            "every value of a numeric column; its profile only summarises them (test the raw data)",
    };
    let score = match test {
        StatTest::Wasserstein => {
            let distance = drift::wasserstein_distance(&reference_sample, &current_sample)?;
            let std = (reference.m2 / reference.finite as f64).max(0.0).sqrt();
            distance / std.max(0.001)
        }
        StatTest::Jensenshannon | StatTest::Psi | StatTest::KlDiv => {
            let (Some(r_min), Some(r_max), Some(c_min), Some(c_max)) =
                (reference.min, reference.max, current.min, current.max)
            else {
                return Err(MonitorError::EmptySample {
                    test: "drift from profiles",
                });
            };
            let edges = sturges_edges_for(
                r_min.min(c_min),
                r_max.max(c_max),
                (reference.finite + current.finite) as usize,
            );
            // Bin shares from the sketch's ranks at the edges (the whole
            // sketch, not the stand-in sample, so thin tails keep their mass).
            let shares = |profile: &NumericProfile, fill: bool| {
                let last = edges.len() - 1;
                let cumulative: Vec<f64> = edges
                    .iter()
                    .enumerate()
                    .map(|(index, edge)| match index {
                        0 => 0.0,
                        i if i == last => 1.0,
                        _ => profile.sketch.rank(*edge),
                    })
                    .collect();
                let mut shares: Vec<f64> = cumulative
                    .windows(2)
                    .map(|w| (w[1] - w[0]).max(0.0))
                    .collect();
                if fill {
                    fill_zero_shares(&mut shares);
                }
                shares
            };
            match test {
                StatTest::Jensenshannon => drift::jensen_shannon_distance(
                    &shares(reference, false),
                    &shares(current, false),
                ),
                StatTest::Psi => {
                    drift::psi_from_shares(&shares(reference, true), &shares(current, true))
                }
                _ => drift_more::relative_entropy(&shares(reference, true), &shares(current, true)),
            }
        }
        _ => return Err(needs_raw()),
    };
    let threshold = options
        .thresholds
        .get(name)
        .copied()
        .unwrap_or_else(|| test.default_threshold());
    let mut histogram = Histogram::numeric(&reference_sample, &current_sample);
    let rescale = |counts: &mut Vec<u64>, n: u64, m: usize| {
        for count in counts.iter_mut() {
            *count = (*count as f64 * n as f64 / m.max(1) as f64).round() as u64;
        }
    };
    rescale(
        &mut histogram.reference,
        reference.finite,
        reference_sample.len(),
    );
    rescale(&mut histogram.current, current.finite, current_sample.len());
    Ok(ColumnDrift {
        column: name.to_owned(),
        kind: ColumnKind::Numerical,
        test,
        score,
        threshold,
        drifted: !score.is_nan() && test.drifted(score, threshold),
        approximate: true,
        histogram,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use std::sync::Arc;

    /// A deterministic pseudo-normal sample (sum of uniforms from an LCG).
    fn normal(n: usize, mean: f64, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut uniform = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| mean + (0..12).map(|_| uniform()).sum::<f64>() - 6.0)
            .collect()
    }

    fn batch(x: Vec<f64>, city: Vec<&str>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("city", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(x)),
                Arc::new(StringArray::from(city)),
            ],
        )
        .unwrap()
    }

    fn cities(n: usize, shift: bool) -> Vec<&'static str> {
        (0..n)
            .map(|i| match (i % 10, shift) {
                (0..=5, false) | (0..=2, true) => "a",
                (6..=8, false) | (3..=7, true) => "b",
                _ => "c",
            })
            .collect()
    }

    #[test]
    fn small_profiles_are_exact() {
        let reference = vec![batch(normal(150, 0.0, 1), cities(150, false))];
        let current = vec![batch(normal(120, 0.4, 2), cities(120, true))];
        let options = DriftOptions::default();
        let raw = DriftReport::compute(&reference, &current, &options).unwrap();
        let from_profiles = DriftReport::from_profiles(
            &Profile::from_batches(reference.clone()).unwrap(),
            &Profile::from_batches(current.clone()).unwrap(),
            &options,
        )
        .unwrap();
        assert_eq!(raw, from_profiles);
    }

    #[test]
    fn large_profiles_approximate_the_distance_tests() {
        let n = 200_000;
        let reference = vec![batch(normal(n, 0.0, 3), cities(n, false))];
        let current = vec![batch(normal(n, 0.5, 4), cities(n, true))];
        let reference_profile = Profile::from_batches(reference.clone()).unwrap();
        let current_profile = Profile::from_batches(current.clone()).unwrap();
        for test in [
            StatTest::Wasserstein,
            StatTest::Jensenshannon,
            StatTest::Psi,
            StatTest::KlDiv,
        ] {
            let options = DriftOptions {
                tests: [("x".to_owned(), test)].into(),
                ..DriftOptions::default()
            };
            let raw = DriftReport::compute(&reference, &current, &options).unwrap();
            let approx =
                DriftReport::from_profiles(&reference_profile, &current_profile, &options).unwrap();
            let (raw_x, approx_x) = (&raw.columns[0], &approx.columns[0]);
            assert!(approx_x.approximate && !raw_x.approximate);
            assert_eq!(raw_x.drifted, approx_x.drifted, "{test:?}");
            let relative = (raw_x.score - approx_x.score).abs() / raw_x.score;
            // KLL at k = 200 places each bin edge within about 1% of rank, so a
            // 5% bin share may be off by a fifth; the scores stay within that.
            assert!(
                relative < 0.2,
                "{test:?}: raw {} vs profiles {}",
                raw_x.score,
                approx_x.score
            );
            // Categories are few: the frequent items are exact, so is the test.
            assert_eq!(raw.columns[1], approx.columns[1]);
        }
        let options = DriftOptions {
            tests: [("x".to_owned(), StatTest::Ks)].into(),
            ..DriftOptions::default()
        };
        let err =
            DriftReport::from_profiles(&reference_profile, &current_profile, &options).unwrap_err();
        assert!(err.to_string().contains("ks needs every value"), "{err}");
    }
}
