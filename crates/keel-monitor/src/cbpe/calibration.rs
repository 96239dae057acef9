//! Score calibration for CBPE: scikit-learn's isotonic regression and
//! NannyML's rule for whether the reference scores need it.
//!
//! Sources: NannyML 0.13 `nannyml/calibration.py` (`IsotonicCalibrator`,
//! `needs_calibration`, `_get_bin_index_edges`,
//! `_calculate_expected_calibration_error`); scikit-learn 1.9
//! `isotonic.py` and `_isotonic.pyx` (`_make_unique`); scipy 1.17
//! `optimize.isotonic_regression` (pool adjacent violators) and
//! `interpolate.interp1d`, which delegates to `numpy.interp`.

use super::legacy_random::stratified_shuffle_split;
use super::metrics::roc_auc_score;

/// NannyML's `needs_calibration` defaults.
const ECE_BINS: usize = 10;
const CHECK_SPLITS: usize = 10;
const CHECK_TEST_SIZE: f64 = 0.1;
const CHECK_SEED: u32 = 42;
/// Above this reference ROC AUC NannyML skips the check: no calibration.
const SEPARABLE_AUC: f64 = 0.999;
/// `np.finfo(np.float64).resolution`: scikit-learn merges scores closer than
/// this to the first score of their group.
const SAME_SCORE: f64 = 1e-15;

/// scikit-learn's `IsotonicRegression(increasing=True, out_of_bounds="clip")`
/// fitted on scores and 0/1 labels.
#[derive(Debug, Clone)]
pub(crate) struct IsotonicCalibrator {
    /// Breakpoints, ascending (scikit-learn's `X_thresholds_`).
    scores: Vec<f64>,
    /// Fitted non-decreasing values at the breakpoints (`y_thresholds_`).
    values: Vec<f64>,
}

impl IsotonicCalibrator {
    /// Follows scikit-learn's `_build_y`: sort by score then label, average
    /// the labels of equal scores (weights = counts), pool adjacent violators,
    /// then drop interior breakpoints whose value equals both neighbours'.
    /// `scores` must be non-empty and NaN-free.
    pub(crate) fn fit(scores: &[f64], labels: &[bool]) -> Self {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| {
            scores[a]
                .total_cmp(&scores[b])
                .then(labels[a].cmp(&labels[b]))
        });

        // `_make_unique`: one point per distinct score, its mean label and weight.
        let mut unique_scores: Vec<f64> = Vec::new();
        let mut means: Vec<f64> = Vec::new();
        let mut weights: Vec<f64> = Vec::new();
        let mut group_score = scores[order[0]];
        let mut group_sum = 0.0;
        let mut group_weight = 0.0;
        for &row in &order {
            let score = scores[row];
            let label = if labels[row] { 1.0 } else { 0.0 };
            if score - group_score >= SAME_SCORE {
                unique_scores.push(group_score);
                means.push(group_sum / group_weight);
                weights.push(group_weight);
                group_score = score;
                group_sum = label;
                group_weight = 1.0;
            } else {
                group_sum += label;
                group_weight += 1.0;
            }
        }
        unique_scores.push(group_score);
        means.push(group_sum / group_weight);
        weights.push(group_weight);

        let fitted = pool_adjacent_violators(&means, &weights);

        let last = fitted.len() - 1;
        let keep = |i: usize| {
            i == 0 || i == last || fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1]
        };
        let kept: Vec<usize> = (0..fitted.len()).filter(|&i| keep(i)).collect();
        IsotonicCalibrator {
            scores: kept.iter().map(|&i| unique_scores[i]).collect(),
            values: kept.iter().map(|&i| fitted[i]).collect(),
        }
    }

    /// The calibrated probability of one score: clipped to the fitted range,
    /// then linearly interpolated as `numpy.interp` does.
    pub(crate) fn calibrate(&self, score: f64) -> f64 {
        let last = self.scores.len() - 1;
        if last == 0 {
            return self.values[0];
        }
        let score = score.clamp(self.scores[0], self.scores[last]);
        // The last breakpoint at or below the score.
        let j = self.scores.partition_point(|&x| x <= score) - 1;
        if j == last || self.scores[j] == score {
            return self.values[j];
        }
        let slope = (self.values[j + 1] - self.values[j]) / (self.scores[j + 1] - self.scores[j]);
        slope * (score - self.scores[j]) + self.values[j]
    }
}

/// Weighted isotonic (non-decreasing) least squares by pooling adjacent
/// violators, the algorithm of scipy's `optimize.isotonic_regression`.
fn pool_adjacent_violators(values: &[f64], weights: &[f64]) -> Vec<f64> {
    // Blocks of (weighted mean, total weight, length).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(values.len());
    for (&value, &weight) in values.iter().zip(weights) {
        blocks.push((value, weight, 1));
        while blocks.len() > 1 {
            let (mean, weight, len) = blocks[blocks.len() - 1];
            let (prev_mean, prev_weight, prev_len) = blocks[blocks.len() - 2];
            if prev_mean < mean {
                break;
            }
            let total = prev_weight + weight;
            blocks.pop();
            let merged = blocks.len() - 1;
            blocks[merged] = (
                (prev_mean * prev_weight + mean * weight) / total,
                total,
                prev_len + len,
            );
        }
    }
    blocks
        .iter()
        .flat_map(|&(mean, _, len)| std::iter::repeat_n(mean, len))
        .collect()
}

/// What NannyML's `needs_calibration` found on the reference data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationCheck {
    /// Whether the scores are calibrated (isotonic, fitted on the whole
    /// reference) before estimating.
    pub needs_calibration: bool,
    /// Expected calibration error of the raw scores over the pooled test
    /// folds; `None` when the check was skipped (reference ROC AUC > 0.999).
    pub ece_before: Option<f64>,
    /// The same after isotonic calibration fitted on each training fold.
    pub ece_after: Option<f64>,
}

/// NannyML's `needs_calibration(y_true, y_pred_proba, IsotonicCalibrator())`:
/// over ten stratified 90/10 splits (seed 42), fit an isotonic calibrator on
/// the training part and calibrate the test part; pool the test parts and
/// compare the expected calibration error (ten equal-count bins of sorted
/// scores) before and after. Calibration is needed when it lowers the error.
///
/// Calibrated scores tie within isotonic steps. Which tied rows fall on each
/// side of a bin edge moves `ece_after`; NannyML sorts them with numpy's
/// default (unstable, CPU-dependent SIMD) argsort, Keel sorts stably. The
/// decision only differs when the two errors are about equal.
pub(crate) fn check_calibration(
    labels: &[bool],
    scores: &[f64],
) -> Result<CalibrationCheck, String> {
    if roc_auc_score(labels, scores) > SEPARABLE_AUC {
        return Ok(CalibrationCheck {
            needs_calibration: false,
            ece_before: None,
            ece_after: None,
        });
    }
    let splits = stratified_shuffle_split(labels, CHECK_SPLITS, CHECK_TEST_SIZE, CHECK_SEED)?;
    let mut test_labels = Vec::new();
    let mut test_scores = Vec::new();
    let mut calibrated_scores = Vec::new();
    for split in &splits {
        let train_scores: Vec<f64> = split.train.iter().map(|&i| scores[i]).collect();
        let train_labels: Vec<bool> = split.train.iter().map(|&i| labels[i]).collect();
        let calibrator = IsotonicCalibrator::fit(&train_scores, &train_labels);
        for &row in &split.test {
            test_labels.push(labels[row]);
            test_scores.push(scores[row]);
            calibrated_scores.push(calibrator.calibrate(scores[row]));
        }
    }
    let edges = bin_index_edges(test_scores.len(), ECE_BINS)?;
    let ece_before = expected_calibration_error(&test_labels, &test_scores, &edges);
    let ece_after = expected_calibration_error(&test_labels, &calibrated_scores, &edges);
    Ok(CalibrationCheck {
        needs_calibration: ece_before > ece_after,
        ece_before: Some(ece_before),
        ece_after: Some(ece_after),
    })
}

/// NannyML's `_get_bin_index_edges`: bins of `len / bin_count` rows, the last
/// one taking the remainder (so there can be more than `bin_count` bins).
fn bin_index_edges(len: usize, mut bin_count: usize) -> Result<Vec<(usize, usize)>, String> {
    if len <= 2 * bin_count {
        bin_count = len / 2;
        if bin_count < 2 {
            return Err(format!(
                "at least 2 calibration bins; {len} pooled test rows give fewer"
            ));
        }
    }
    let width = len / bin_count;
    let mut edges: Vec<usize> = (0..=len).step_by(width).collect();
    if let Some(last) = edges.last_mut() {
        *last = len;
    }
    Ok(edges.windows(2).map(|pair| (pair[0], pair[1])).collect())
}

/// NannyML's `_calculate_expected_calibration_error`: rows sorted by score,
/// each bin weighted by its share of rows.
fn expected_calibration_error(labels: &[bool], scores: &[f64], edges: &[(usize, usize)]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let n = scores.len() as f64;
    edges
        .iter()
        .map(|&(left, right)| {
            let rows = &order[left..right];
            let len = rows.len() as f64;
            let mean_score = rows.iter().map(|&i| scores[i]).sum::<f64>() / len;
            let mean_label = rows.iter().filter(|&&i| labels[i]).count() as f64 / len;
            len / n * (mean_score - mean_label).abs()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_matches_scikit_learn() {
        // IsotonicRegression(out_of_bounds="clip").fit(scores, labels) in
        // scikit-learn 1.9: X_thresholds_ [.1 .2 .3 .4 .5 .6 .7],
        // y_thresholds_ [0 1/3 1/3 .5 .5 1 1].
        let scores = [0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
        let labels = [false, true, false, false, true, false, true, true];
        let calibrator = IsotonicCalibrator::fit(&scores, &labels);
        let queries = [0.0, 0.15, 0.2, 0.35, 0.45, 0.55, 0.65, 0.9];
        let expected = [0.0, 1.0 / 6.0, 1.0 / 3.0, 5.0 / 12.0, 0.5, 0.75, 1.0, 1.0];
        for (query, want) in queries.iter().zip(expected) {
            let got = calibrator.calibrate(*query);
            assert!(
                (got - want).abs() < 1e-12,
                "calibrate({query}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn bin_edges_give_the_remainder_to_the_last_bin() {
        assert_eq!(
            bin_index_edges(20, 4),
            Ok(vec![(0, 5), (5, 10), (10, 15), (15, 20)])
        );
        // 25 rows, 10 bins wanted: bins of 2 rows and a last one of 3.
        let edges = bin_index_edges(25, 10).unwrap_or_default();
        assert_eq!(edges.len(), 12);
        assert_eq!(edges.last(), Some(&(22, 25)));
        assert!(bin_index_edges(3, 10).is_err());
    }
}
