//! The metrics of CBPE, as NannyML computes them: estimates from the
//! expected confusion matrix, realized values from labels, sampling-error
//! components and alert thresholds.
//!
//! Sources, NannyML 0.13: `performance_estimation/confidence_based/metrics.py`
//! (`estimate_*`, `_realized_performance`), `sampling_error/binary_classification.py`
//! and `thresholds.py`.

use super::{defined, Metric, Thresholds};

/// `StandardDeviationThreshold()` default: thresholds are the mean of the
/// reference chunks' realized values ± this many (population) standard
/// deviations.
const THRESHOLD_STD_MULTIPLIER: f64 = 3.0;

/// The confusion matrix expected from calibrated probabilities: a row
/// predicted positive with probability `p` adds `p` true positives and
/// `1 - p` false positives, and so on.
pub(super) struct ExpectedConfusion {
    true_positives: f64,
    false_positives: f64,
    false_negatives: f64,
    true_negatives: f64,
    rows: usize,
}

impl ExpectedConfusion {
    pub(super) fn new(y_pred: &[bool], calibrated: &[f64]) -> Self {
        let mut confusion = ExpectedConfusion {
            true_positives: 0.0,
            false_positives: 0.0,
            false_negatives: 0.0,
            true_negatives: 0.0,
            rows: y_pred.len(),
        };
        for (&predicted, &probability) in y_pred.iter().zip(calibrated) {
            if predicted {
                confusion.true_positives += probability;
                confusion.false_positives += 1.0 - probability;
            } else {
                confusion.false_negatives += probability;
                confusion.true_negatives += 1.0 - probability;
            }
        }
        confusion
    }

    /// NannyML's `estimate_f1`, `estimate_precision`, ...: 0 on a zero
    /// denominator.
    pub(super) fn metric(&self, metric: Metric) -> f64 {
        let (tp, fp, fn_, tn) = (
            self.true_positives,
            self.false_positives,
            self.false_negatives,
            self.true_negatives,
        );
        let ratio = |numerator: f64, denominator: f64| {
            if denominator != 0.0 {
                numerator / denominator
            } else {
                0.0
            }
        };
        match metric {
            Metric::F1 => ratio(tp, tp + 0.5 * (fp + fn_)),
            Metric::Precision => ratio(tp, tp + fp),
            Metric::Recall => ratio(tp, tp + fn_),
            Metric::Specificity => ratio(tn, tn + fp),
            Metric::Accuracy => (tp + tn) / self.rows as f64,
            Metric::RocAuc => f64::NAN,
        }
    }
}

/// NannyML's `estimate_roc_auc`: rows sorted by raw score, descending; the
/// cumulative calibrated probabilities are the expected true positives, the
/// rest the expected false positives, both rounded to 5 decimals (as NannyML
/// does) before the trapezoidal area under the curve.
pub(super) fn estimated_roc_auc(calibrated: &[f64], uncalibrated: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..calibrated.len()).collect();
    order.sort_by(|&a, &b| uncalibrated[a].total_cmp(&uncalibrated[b]));
    order.reverse();
    let mut true_positives = vec![0.0];
    let mut false_positives = vec![0.0];
    let mut cumulative = 0.0;
    for (position, &row) in order.iter().enumerate() {
        cumulative += calibrated[row];
        true_positives.push(round_5_decimals(cumulative));
        false_positives.push(round_5_decimals((position + 1) as f64 - cumulative));
    }
    let tp_total = true_positives[true_positives.len() - 1];
    let fp_total = false_positives[false_positives.len() - 1];
    let tpr: Vec<f64> = true_positives.iter().map(|tp| tp / tp_total).collect();
    let fpr: Vec<f64> = false_positives.iter().map(|fp| fp / fp_total).collect();
    trapezoid_auc(&fpr, &tpr)
}

/// `numpy.round(value, 5)`: scale, round half to even, unscale.
fn round_5_decimals(value: f64) -> f64 {
    (value * 1e5).round_ties_even() / 1e5
}

/// scikit-learn's `auc(x, y)`: the trapezoidal rule, along x whether it
/// increases or decreases; NaN (NannyML's result when scikit-learn raises)
/// when x goes both ways.
fn trapezoid_auc(x: &[f64], y: &[f64]) -> f64 {
    let steps: Vec<f64> = x.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let direction = if steps.iter().any(|&step| step < 0.0) {
        if steps.iter().all(|&step| step <= 0.0) {
            -1.0
        } else {
            return f64::NAN;
        }
    } else {
        1.0
    };
    let area: f64 = steps
        .iter()
        .zip(y.windows(2))
        .map(|(step, pair)| step * (pair[1] + pair[0]) / 2.0)
        .sum();
    direction * area
}

/// scikit-learn's `roc_auc_score` for binary labels: the trapezoidal area
/// under the ROC curve over distinct score thresholds (ties count half).
/// NaN with one class only.
pub(super) fn roc_auc_score(labels: &[bool], scores: &[f64]) -> f64 {
    let positives = labels.iter().filter(|&&label| label).count() as f64;
    let negatives = labels.len() as f64 - positives;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut area) = (0.0, 0.0, 0.0);
    let mut position = 0;
    while position < order.len() {
        let threshold = scores[order[position]];
        let (previous_tp, previous_fp) = (tp, fp);
        while position < order.len() && scores[order[position]] == threshold {
            if labels[order[position]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            position += 1;
        }
        area += (fp / negatives - previous_fp / negatives)
            * (tp / positives + previous_tp / positives)
            / 2.0;
    }
    area
}

/// The metric computed from labels on one chunk, NaN where NannyML's
/// `_realized_performance` gives NaN.
pub(super) fn realized(metric: Metric, y_true: &[bool], y_pred: &[bool], scores: &[f64]) -> f64 {
    let counts = Counts::new(y_true, y_pred);
    let both_classes = |values: &[bool]| values.iter().any(|&v| v) && values.iter().any(|&v| !v);
    let ratio = |numerator: usize, denominator: usize| {
        if denominator == 0 {
            0.0
        } else {
            numerator as f64 / denominator as f64
        }
    };
    match metric {
        Metric::RocAuc if !both_classes(y_true) => f64::NAN,
        Metric::RocAuc => roc_auc_score(y_true, scores),
        Metric::F1 | Metric::Precision | Metric::Recall
            if !both_classes(y_true) || !both_classes(y_pred) =>
        {
            f64::NAN
        }
        Metric::F1 => ratio(
            2 * counts.true_positives,
            2 * counts.true_positives + counts.false_positives + counts.false_negatives,
        ),
        Metric::Precision => ratio(
            counts.true_positives,
            counts.true_positives + counts.false_positives,
        ),
        Metric::Recall => ratio(
            counts.true_positives,
            counts.true_positives + counts.false_negatives,
        ),
        Metric::Specificity => match counts.true_negatives + counts.false_positives {
            0 => f64::NAN,
            negatives => counts.true_negatives as f64 / negatives as f64,
        },
        Metric::Accuracy => {
            (counts.true_positives + counts.true_negatives) as f64 / y_true.len() as f64
        }
    }
}

/// The confusion matrix of labels and predictions.
struct Counts {
    true_positives: usize,
    false_positives: usize,
    false_negatives: usize,
    true_negatives: usize,
}

impl Counts {
    fn new(y_true: &[bool], y_pred: &[bool]) -> Self {
        let mut counts = Counts {
            true_positives: 0,
            false_positives: 0,
            false_negatives: 0,
            true_negatives: 0,
        };
        for (&label, &predicted) in y_true.iter().zip(y_pred) {
            match (label, predicted) {
                (true, true) => counts.true_positives += 1,
                (false, true) => counts.false_positives += 1,
                (true, false) => counts.false_negatives += 1,
                (false, false) => counts.true_negatives += 1,
            }
        }
        counts
    }
}

/// NannyML's sampling-error components of a metric, from the whole
/// reference: the sampling error of a chunk of `n` rows is
/// `std / sqrt(n * fraction)`.
#[derive(Debug, Clone, Copy)]
pub(super) struct SamplingErrorComponents {
    std: f64,
    fraction: f64,
}

impl SamplingErrorComponents {
    /// `sampling_error/binary_classification.py`, `*_sampling_error_components`.
    /// Standard deviations are numpy's (population, ddof 0).
    pub(super) fn fit(metric: Metric, y_true: &[bool], y_pred: &[bool], scores: &[f64]) -> Self {
        let counts = Counts::new(y_true, y_pred);
        let rows = y_true.len() as f64;
        let (tp, fp, fn_, tn) = (
            counts.true_positives,
            counts.false_positives,
            counts.false_negatives,
            counts.true_negatives,
        );
        match metric {
            Metric::RocAuc => auroc_components(y_true, scores),
            Metric::F1 => {
                // Observation-level F1: each true positive worth a corrected 1,
                // each false positive or negative 0.
                let relevant = tp + fp + fn_;
                if relevant == 0 {
                    return SamplingErrorComponents {
                        std: f64::NAN,
                        fraction: 0.0,
                    };
                }
                let correcting_factor = relevant as f64 / ((fn_ + fp) as f64 * 0.5 + tp as f64);
                SamplingErrorComponents {
                    std: two_point_std(correcting_factor, tp, fp + fn_),
                    fraction: relevant as f64 / rows,
                }
            }
            Metric::Precision => SamplingErrorComponents {
                std: two_point_std(1.0, tp, fp),
                fraction: (tp + fp) as f64 / rows,
            },
            Metric::Recall => SamplingErrorComponents {
                std: two_point_std(1.0, tp, fn_),
                fraction: (tp + fn_) as f64 / rows,
            },
            Metric::Specificity => SamplingErrorComponents {
                std: two_point_std(1.0, tn, fp),
                fraction: (tn + fp) as f64 / rows,
            },
            Metric::Accuracy => SamplingErrorComponents {
                std: two_point_std(1.0, tp + tn, fp + fn_),
                fraction: 1.0,
            },
        }
    }

    pub(super) fn for_rows(&self, rows: usize) -> f64 {
        self.std / (rows as f64 * self.fraction).sqrt()
    }
}

/// NannyML's `auroc_sampling_error_components`: AUROC as a Mann-Whitney
/// statistic. With positives the majority, labels and scores are flipped.
/// Over the rows sorted by score, the i-th positive (counting from 0, and
/// skipping a positive at rank 0, as NannyML's `np.unique(...)[1:]` does)
/// contributes `(rank - i) / negatives`, the share of negatives below it.
fn auroc_components(y_true: &[bool], scores: &[f64]) -> SamplingErrorComponents {
    let rows = y_true.len();
    let positives = y_true.iter().filter(|&&label| label).count();
    let flip = positives as f64 / rows as f64 > 0.5;
    let label = |row: usize| y_true[row] != flip;
    let score = |row: usize| if flip { 1.0 - scores[row] } else { scores[row] };
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by(|&a, &b| score(a).total_cmp(&score(b)));
    let positives = if flip { rows - positives } else { positives };
    let negatives = (rows - positives) as f64;
    let shares: Vec<f64> = order
        .iter()
        .enumerate()
        .filter(|&(rank, &row)| rank > 0 && label(row))
        .enumerate()
        .map(|(i, (rank, _))| (rank - i) as f64 / negatives)
        .collect();
    SamplingErrorComponents {
        std: population_std(&shares),
        fraction: positives as f64 / rows as f64,
    }
}

/// numpy's `std` (ddof 0) of `high` repeated `n_high` times and 0 repeated
/// `n_low` times; NaN when empty.
fn two_point_std(high: f64, n_high: usize, n_low: usize) -> f64 {
    let n = (n_high + n_low) as f64;
    let mean = high * n_high as f64 / n;
    let variance = (n_high as f64 * (high - mean).powi(2) + n_low as f64 * mean.powi(2)) / n;
    variance.sqrt()
}

/// numpy's `std` (ddof 0); NaN when empty.
fn population_std(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values
        .iter()
        .map(|value| (value - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

/// `StandardDeviationThreshold()` through `calculate_threshold_values` with
/// the metric's limits 0 and 1: NaN-ignoring mean ± 3 population standard
/// deviations, a threshold beyond a limit replaced by the limit.
pub(super) fn thresholds(realized: &[f64]) -> Thresholds {
    let values: Vec<f64> = realized
        .iter()
        .copied()
        .filter(|value| !value.is_nan())
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std = population_std(&values);
    let lower = mean - THRESHOLD_STD_MULTIPLIER * std;
    let upper = mean + THRESHOLD_STD_MULTIPLIER * std;
    Thresholds {
        lower: defined(lower).map(|lower| if lower <= 0.0 { 0.0 } else { lower }),
        upper: defined(upper).map(|upper| if upper >= 1.0 { 1.0 } else { upper }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nannyml_rounds_expected_counts_to_five_decimals() {
        assert_eq!(round_5_decimals(0.123_456_7), 0.12346);
        assert_eq!(round_5_decimals(2.000_004_9), 2.0);
    }

    #[test]
    fn auroc_components_skip_a_positive_at_rank_zero_as_nannyml_does() {
        // nannyml.sampling_error.binary_classification
        //     .auroc_sampling_error_components(y_true, scores) in NannyML 0.13.
        let scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
        let bits = |values: [u8; 8]| values.map(|value| value == 1);
        let components = auroc_components(&bits([1, 0, 0, 1, 0, 1, 0, 0]), &scores);
        assert!((components.std - 0.1).abs() < 1e-15, "{components:?}");
        assert_eq!(components.fraction, 0.375);
        // Positives in the majority: labels and scores flipped first.
        let components = auroc_components(&bits([0, 1, 1, 0, 1, 1, 1, 0]), &scores);
        assert!((components.std - 0.2).abs() < 1e-15, "{components:?}");
        assert_eq!(components.fraction, 0.375);
    }

    #[test]
    fn roc_auc_counts_ties_half() {
        let labels = [false, true, false, true];
        let scores = [0.1, 0.4, 0.4, 0.8];
        // Pairs (pos, neg): (0.4, 0.1) 1, (0.4, 0.4) 0.5, (0.8, *) 2 → 3.5 / 4.
        assert!((roc_auc_score(&labels, &scores) - 0.875).abs() < 1e-15);
    }
}
