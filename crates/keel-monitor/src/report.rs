//! Drift report over raw record batches: per column Evidently's default test
//! (or a chosen one), its score, threshold and verdict, and the dataset rule.

use crate::drift::{self, ColumnKind, StatTest};
use crate::drift_more::{self, Alternative};
use crate::MonitorError;
use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Options of a report; the defaults are Evidently's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftOptions {
    /// Share of drifted columns from which the dataset counts as drifted.
    pub drift_share: f64,
    /// Tests chosen per column instead of the default choice.
    pub tests: BTreeMap<String, StatTest>,
    /// Thresholds per column instead of the test's default.
    pub thresholds: BTreeMap<String, f64>,
}

impl Default for DriftOptions {
    fn default() -> Self {
        Self {
            drift_share: 0.5,
            tests: BTreeMap::new(),
            thresholds: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub column: String,
    pub kind: ColumnKind,
    pub test: StatTest,
    /// p-value for `ks`, `chisquare` and `z`; distance otherwise.
    pub score: f64,
    pub threshold: f64,
    pub drifted: bool,
    /// True when the score comes from profiles' sketches rather than every
    /// value (see `DriftReport::from_profiles`): close, not equal, to the
    /// score on the raw data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
    /// Both samples binned alike, for plots (reports never embed raw rows).
    #[serde(default)]
    pub histogram: Histogram,
}

/// Reference and current counts over shared bins: equal-width bins over
/// both samples' range for numbers (`edges`, one more than the counts),
/// the most frequent categories (then `other`) for categories.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
    /// The edges span the 0.5% to 99.5% quantiles, not the whole range: the
    /// first and last bins also hold the values beyond them (long tails
    /// would otherwise squeeze the plot into one bar).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clipped: bool,
}

/// Most categories a histogram shows before lumping the rest as `other`.
pub const MAX_HISTOGRAM_CATEGORIES: usize = 20;

impl Histogram {
    pub(crate) fn numeric(reference: &[f64], current: &[f64]) -> Histogram {
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        for value in reference.iter().chain(current) {
            low = low.min(*value);
            high = high.max(*value);
        }
        if !low.is_finite() || !high.is_finite() {
            return Histogram::default();
        }
        // Quantiles of an evenly strided sample of both sides are enough to
        // tell a long tail: clip to them when they span under half the range.
        let stride = ((reference.len() + current.len()) / 65_536).max(1);
        let mut sample: Vec<f64> = reference
            .iter()
            .chain(current)
            .step_by(stride)
            .copied()
            .collect();
        let mut clipped = false;
        if sample.len() >= 200 {
            let last = sample.len() - 1;
            let lo_at = last / 200;
            let hi_at = last - last / 200;
            let (_, lo, _) = sample.select_nth_unstable_by(lo_at, f64::total_cmp);
            let lo = *lo;
            let (_, hi, _) = sample.select_nth_unstable_by(hi_at, f64::total_cmp);
            let hi = *hi;
            if hi > lo && (hi - lo) < 0.5 * (high - low) {
                (low, high, clipped) = (lo, hi, true);
            }
        }
        if low == high {
            low -= 0.5;
            high += 0.5;
        }
        // Sturges' rule on the reference, kept readable.
        let bins = ((reference.len().max(1) as f64).log2().ceil() as usize + 1).clamp(5, 40);
        let width = (high - low) / bins as f64;
        let edges: Vec<f64> = (0..=bins)
            .map(|i| {
                if i == bins {
                    high
                } else {
                    low + width * i as f64
                }
            })
            .collect();
        let count = |values: &[f64]| {
            let mut counts = vec![0u64; bins];
            for value in values {
                // Below `low` (clipped tails) lands in the first bin, above `high` in the last.
                let bin = ((value - low) / width).max(0.0) as usize;
                counts[bin.min(bins - 1)] += 1;
            }
            counts
        };
        Histogram {
            reference: count(reference),
            current: count(current),
            edges,
            categories: Vec::new(),
            clipped,
        }
    }

    fn categorical(
        reference: &BTreeMap<String, u64>,
        current: &BTreeMap<String, u64>,
    ) -> Histogram {
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for (category, count) in reference.iter().chain(current) {
            *totals.entry(category).or_insert(0) += count;
        }
        let mut order: Vec<(&str, u64)> = totals.into_iter().collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let shown = order.len().min(MAX_HISTOGRAM_CATEGORIES);
        let mut categories: Vec<String> = order[..shown]
            .iter()
            .map(|(c, _)| (*c).to_owned())
            .collect();
        let count = |side: &BTreeMap<String, u64>| {
            let mut counts: Vec<u64> = categories
                .iter()
                .map(|c| side.get(c).copied().unwrap_or(0))
                .collect();
            if order.len() > shown {
                let total: u64 = side.values().sum();
                counts.push(total - counts.iter().sum::<u64>());
            }
            counts
        };
        let (reference, current) = (count(reference), count(current));
        if order.len() > shown {
            categories.push("other".to_owned());
        }
        Histogram {
            edges: Vec::new(),
            categories,
            reference,
            current,
            clipped: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub columns: Vec<ColumnDrift>,
    pub n_drifted: usize,
    pub drifted_share: f64,
    pub dataset_drifted: bool,
}

pub(crate) enum ColumnValues {
    Numeric(Vec<f64>),
    Categorical(BTreeMap<String, u64>),
}

impl DriftReport {
    /// Tests every column of `reference` that `current` also has. Nulls,
    /// NaN and infinities are dropped first, as Evidently does.
    pub fn compute(
        reference: &[RecordBatch],
        current: &[RecordBatch],
        options: &DriftOptions,
    ) -> Result<DriftReport, MonitorError> {
        let Some(first) = reference.first() else {
            return Err(MonitorError::EmptySample {
                test: "drift report",
            });
        };
        let schema = first.schema();
        let names: Vec<&str> = schema
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect();
        // Columns are independent: test them on every core, keep the schema's order.
        let per_column: Vec<Result<Option<ColumnDrift>, MonitorError>> =
            std::thread::scope(|scope| {
                let workers = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(names.len().max(1));
                let chunk = names.len().div_ceil(workers).max(1);
                let handles: Vec<_> = names
                    .chunks(chunk)
                    .map(|chunk_names| {
                        scope.spawn(move || {
                            chunk_names
                                .iter()
                                .map(|name| {
                                    let Some(reference_values) = column_values(reference, name)?
                                    else {
                                        return Ok(None);
                                    };
                                    let Some(current_values) = column_values(current, name)? else {
                                        return Ok(None);
                                    };
                                    column_drift(name, reference_values, current_values, options)
                                        .map(Some)
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|handle| {
                        handle
                            .join()
                            .unwrap_or_else(|_| vec![Err(MonitorError::WorkerPanicked)])
                    })
                    .collect()
            });
        let mut columns = Vec::new();
        for column in per_column {
            if let Some(column) = column? {
                columns.push(column);
            }
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

    /// A report from column verdicts computed apart (e.g. one column at a
    /// time from files too large to hold), with the dataset rule applied.
    pub fn from_columns(columns: Vec<ColumnDrift>, drift_share: f64) -> DriftReport {
        let n_drifted = columns.iter().filter(|column| column.drifted).count();
        let drifted_share = if columns.is_empty() {
            0.0
        } else {
            n_drifted as f64 / columns.len() as f64
        };
        DriftReport {
            dataset_drifted: drift::dataset_drifted(n_drifted, columns.len(), drift_share),
            columns,
            n_drifted,
            drifted_share,
        }
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

fn column_values(
    batches: &[RecordBatch],
    name: &str,
) -> Result<Option<ColumnValues>, MonitorError> {
    let arrays: Vec<_> = batches
        .iter()
        .filter_map(|batch| batch.column_by_name(name).cloned())
        .collect();
    let Some(data_type) = arrays.first().map(|array| array.data_type().clone()) else {
        return Ok(None);
    };
    if data_type.is_integer() || matches!(data_type, DataType::Float32 | DataType::Float64) {
        let mut values = Vec::new();
        for array in &arrays {
            let floats = cast(array, &DataType::Float64)?;
            let floats = floats.as_primitive::<Float64Type>();
            values.extend(floats.iter().flatten().filter(|value| value.is_finite()));
        }
        return Ok(Some(ColumnValues::Numeric(values)));
    }
    let strings: Vec<_> = arrays
        .iter()
        .map(|array| {
            cast(array, &DataType::Utf8).map_err(|_| MonitorError::UnsupportedType {
                column: name.to_owned(),
                data_type: data_type.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    // Count borrowed values first: one allocation per category, not per row.
    let mut borrowed: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for strings in &strings {
        for value in strings.as_string::<i32>().iter().flatten() {
            *borrowed.entry(value).or_insert(0) += 1;
        }
    }
    let counts: BTreeMap<String, u64> = borrowed
        .into_iter()
        .map(|(value, count)| (value.to_owned(), count))
        .collect();
    Ok(Some(ColumnValues::Categorical(counts)))
}

/// Distinct values over both samples (-0.0 and 0.0 are one value), without
/// formatting every value: sort the bit patterns and count the runs.
fn distinct_numeric(reference: &[f64], current: &[f64]) -> usize {
    let mut bits: Vec<u64> = reference
        .iter()
        .chain(current)
        .map(|value| (value + 0.0).to_bits())
        .collect();
    bits.sort_unstable();
    bits.dedup();
    bits.len()
}

/// Numeric values as categories, for the tests that count categories.
fn numeric_counts(values: &[f64]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for value in values {
        *counts.entry(format!("{:e}", value + 0.0)).or_insert(0u64) += 1;
    }
    counts
}

pub(crate) fn column_drift(
    name: &str,
    reference: ColumnValues,
    current: ColumnValues,
    options: &DriftOptions,
) -> Result<ColumnDrift, MonitorError> {
    let histogram = match (&reference, &current) {
        (ColumnValues::Numeric(reference), ColumnValues::Numeric(current)) => {
            Histogram::numeric(reference, current)
        }
        (ColumnValues::Categorical(reference), ColumnValues::Categorical(current)) => {
            Histogram::categorical(reference, current)
        }
        _ => Histogram::default(),
    };
    let (kind, test, score) = match (reference, current) {
        (ColumnValues::Numeric(reference), ColumnValues::Numeric(current)) => {
            let test = options.tests.get(name).copied().unwrap_or_else(|| {
                drift::default_stat_test(
                    ColumnKind::Numerical,
                    reference.len(),
                    distinct_numeric(&reference, &current),
                )
            });
            let score = match test {
                StatTest::Ks => drift::ks_2samp(&reference, &current)?.p_value,
                StatTest::Wasserstein => drift::wasserstein_normed(&reference, &current)?,
                StatTest::Jensenshannon => drift::jensen_shannon_numeric(&reference, &current)?,
                StatTest::Psi => drift::psi_numeric(&reference, &current)?,
                StatTest::Chisquare => {
                    drift::chi_square(&numeric_counts(&reference), &numeric_counts(&current))?
                        .p_value
                }
                StatTest::Z => {
                    drift::z_test(&numeric_counts(&reference), &numeric_counts(&current))?.p_value
                }
                StatTest::KlDiv => drift_more::kl_divergence_numeric(&reference, &current)?,
                StatTest::Hellinger => drift_more::hellinger_numeric(&reference, &current)?,
                // Evidently's `mannw` is scipy's one-sided `less` alternative.
                StatTest::Mannw => {
                    drift_more::mann_whitney_u_with(&reference, &current, Alternative::Less)?.1
                }
                StatTest::CramerVonMises => drift_more::cramer_von_mises(&reference, &current)?.1,
                StatTest::Anderson => {
                    drift_more::anderson_darling_ksamp(&[&reference, &current])?.1
                }
            };
            (ColumnKind::Numerical, test, score)
        }
        (ColumnValues::Categorical(reference), ColumnValues::Categorical(current)) => {
            let n_reference: u64 = reference.values().sum();
            let n_unique = reference
                .keys()
                .chain(current.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let test = options.tests.get(name).copied().unwrap_or_else(|| {
                drift::default_stat_test(ColumnKind::Categorical, n_reference as usize, n_unique)
            });
            let score = match test {
                StatTest::Chisquare => drift::chi_square(&reference, &current)?.p_value,
                StatTest::Z => drift::z_test(&reference, &current)?.p_value,
                StatTest::Jensenshannon => drift::jensen_shannon_categorical(&reference, &current)?,
                StatTest::Psi => drift::psi_categorical(&reference, &current)?,
                StatTest::KlDiv => drift_more::kl_divergence_categorical(&reference, &current)?,
                StatTest::Hellinger => drift_more::hellinger_categorical(&reference, &current)?,
                StatTest::Ks
                | StatTest::Wasserstein
                | StatTest::Mannw
                | StatTest::CramerVonMises
                | StatTest::Anderson => {
                    return Err(MonitorError::Unsupported {
                        test: "ks, wasserstein, mannw, cramer_von_mises and anderson",
                        requirement: "a numeric column",
                    })
                }
            };
            (ColumnKind::Categorical, test, score)
        }
        _ => {
            return Err(MonitorError::IncompatibleColumns {
                column: name.to_owned(),
                left: "one type in the reference",
                right: "another in the current data",
            })
        }
    };
    let threshold = options
        .thresholds
        .get(name)
        .copied()
        .unwrap_or_else(|| test.default_threshold());
    Ok(ColumnDrift {
        column: name.to_owned(),
        kind,
        test,
        score,
        threshold,
        drifted: !score.is_nan() && test.drifted(score, threshold),
        approximate: false,
        histogram,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tails_are_clipped_into_the_end_bins() {
        // 10,000 values in [0, 1) and ten far out at 1,000.
        let mut reference: Vec<f64> = (0..10_000).map(|i| f64::from(i) / 10_000.0).collect();
        reference.extend([1000.0; 10]);
        let current: Vec<f64> = (0..5_000).map(|i| f64::from(i) / 5_000.0).collect();
        let histogram = Histogram::numeric(&reference, &current);
        assert!(histogram.clipped);
        assert!(*histogram.edges.last().unwrap() < 2.0);
        assert_eq!(histogram.reference.iter().sum::<u64>(), 10_010);
        assert_eq!(histogram.current.iter().sum::<u64>(), 5_000);
        assert!(*histogram.reference.last().unwrap() >= 10);
        // Without a tail, the bins span the whole range.
        let plain = Histogram::numeric(&current, &current);
        assert!(!plain.clipped && plain.edges[0] == 0.0);
    }
    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn table(values: Vec<f64>, labels: Vec<&str>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("label", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(values)),
            Arc::new(StringArray::from(labels)),
        ];
        RecordBatch::try_new(schema, columns).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn shifted_data_drifts_and_identical_data_does_not() {
        let values: Vec<f64> = (0..200).map(|index| f64::from(index) / 10.0).collect();
        let labels: Vec<&str> = (0..200).map(|index| ["a", "b", "c"][index % 3]).collect();
        let reference = table(values.clone(), labels.clone());

        let same = DriftReport::compute(
            std::slice::from_ref(&reference),
            std::slice::from_ref(&reference),
            &DriftOptions::default(),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(same.columns[0].test, StatTest::Ks);
        assert_eq!(same.columns[1].test, StatTest::Chisquare);
        assert!(!same.dataset_drifted, "{same:?}");

        let shifted_values: Vec<f64> = values.iter().map(|value| value + 5.0).collect();
        let shifted_labels: Vec<&str> = (0..200)
            .map(|index| if index % 2 == 0 { "a" } else { "b" })
            .collect();
        let shifted = table(shifted_values, shifted_labels);
        let report = DriftReport::compute(&[reference], &[shifted], &DriftOptions::default())
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(report.n_drifted, 2, "{report:?}");
        assert!(report.dataset_drifted);
        assert!(report
            .to_json()
            .is_ok_and(|json| json.contains("\"chisquare\"")));
    }

    #[test]
    fn chosen_tests_score_with_evidentlys_rules() {
        let values: Vec<f64> = (0..300).map(|index| f64::from(index % 97) / 7.0).collect();
        let labels: Vec<&str> = (0..300).map(|index| ["a", "b", "c"][index % 3]).collect();
        let shifted: Vec<f64> = values.iter().map(|value| value * 1.5 + 2.0).collect();
        let shifted_labels: Vec<&str> = (0..300).map(|index| ["a", "a", "b"][index % 3]).collect();
        let reference = table(values.clone(), labels.clone());
        let current = table(shifted.clone(), shifted_labels);
        let categorical_counts = |labels: &[&str]| {
            let mut counts = std::collections::BTreeMap::new();
            for label in labels {
                *counts.entry((*label).to_owned()).or_insert(0u64) += 1;
            }
            counts
        };
        let reference_counts = categorical_counts(&labels);
        let current_counts = categorical_counts(
            &(0..300)
                .map(|index| ["a", "a", "b"][index % 3])
                .collect::<Vec<_>>(),
        );
        let expect = |test: StatTest, numeric: f64, categorical: Option<f64>| {
            let mut options = DriftOptions::default();
            options.tests.insert("x".into(), test);
            if categorical.is_some() {
                options.tests.insert("label".into(), test);
            }
            let report = DriftReport::compute(
                std::slice::from_ref(&reference),
                std::slice::from_ref(&current),
                &options,
            )
            .unwrap_or_else(|error| panic!("{test:?}: {error}"));
            assert_eq!(report.columns[0].test, test);
            assert_eq!(report.columns[0].score, numeric, "{test:?}");
            assert_eq!(report.columns[0].threshold, test.default_threshold());
            assert_eq!(
                report.columns[0].drifted,
                test.drifted(numeric, test.default_threshold())
            );
            assert!(
                report.columns[0].drifted,
                "{test:?} sees the shift: {numeric}"
            );
            if let Some(categorical) = categorical {
                assert_eq!(report.columns[1].score, categorical, "{test:?}");
            }
        };
        let (r, c) = (values.as_slice(), shifted.as_slice());
        let ok =
            |result: Result<f64, MonitorError>| result.unwrap_or_else(|error| panic!("{error}"));
        expect(
            StatTest::KlDiv,
            ok(drift_more::kl_divergence_numeric(r, c)),
            Some(ok(drift_more::kl_divergence_categorical(
                &reference_counts,
                &current_counts,
            ))),
        );
        expect(
            StatTest::Hellinger,
            ok(drift_more::hellinger_numeric(r, c)),
            Some(ok(drift_more::hellinger_categorical(
                &reference_counts,
                &current_counts,
            ))),
        );
        expect(
            StatTest::Mannw,
            ok(drift_more::mann_whitney_u_with(r, c, Alternative::Less).map(|(_, p)| p)),
            None,
        );
        expect(
            StatTest::CramerVonMises,
            ok(drift_more::cramer_von_mises(r, c).map(|(_, p)| p)),
            None,
        );
        expect(
            StatTest::Anderson,
            ok(drift_more::anderson_darling_ksamp(&[r, c]).map(|(_, p)| p)),
            None,
        );
        // Evidently's names, and the numeric-only tests refuse a categorical column.
        assert_eq!(
            StatTest::parse("cramer_von_mises"),
            Some(StatTest::CramerVonMises)
        );
        assert_eq!(StatTest::parse("kl_div"), Some(StatTest::KlDiv));
        assert_eq!(StatTest::parse("nope"), None);
        let mut options = DriftOptions::default();
        options.tests.insert("label".into(), StatTest::Mannw);
        let error = DriftReport::compute(
            std::slice::from_ref(&reference),
            std::slice::from_ref(&reference),
            &options,
        )
        .expect_err("mannw on strings");
        assert!(error.to_string().contains("numeric"), "{error}");
    }
}
