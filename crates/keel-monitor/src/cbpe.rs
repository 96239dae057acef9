//! Performance estimation without labels: NannyML's CBPE
//! (confidence-based performance estimation) for binary classifiers, with
//! NannyML's numbers.
//!
//! Fitted on labelled reference data (true label, predicted label, score =
//! predicted probability of the positive class), [`Cbpe`] estimates ROC AUC,
//! F1, precision, recall, specificity and accuracy of each chunk of
//! unlabelled analysis data from the expected confusion matrix of its
//! (calibrated) scores, with NannyML's sampling error, confidence band and
//! alert thresholds.
//!
//! Sources, NannyML 0.13: `performance_estimation/confidence_based/cbpe.py`
//! (`_fit_binary`, `_estimate`), `.../metrics.py` (the `BinaryClassification*`
//! metrics, `estimate_*`, `Metric.fit`, `get_chunk_record`),
//! `sampling_error/binary_classification.py`, `thresholds.py`
//! (`StandardDeviationThreshold`, `calculate_threshold_values`), `chunk.py`
//! (`SizeBasedChunker`, `CountBasedChunker`, `incomplete='keep'`) and
//! `calibration.py`.

mod calibration;
mod legacy_random;
mod metrics;

pub use calibration::CalibrationCheck;

use calibration::{check_calibration, IsotonicCalibrator};
use metrics::{
    estimated_roc_auc, realized, thresholds, ExpectedConfusion, SamplingErrorComponents,
};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// NannyML's `SAMPLING_ERROR_RANGE`: the confidence band is the estimate ±
/// this many sampling errors.
const SAMPLING_ERROR_RANGE: f64 = 3.0;

/// Errors of CBPE: bad input, said so the caller can fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CbpeError {
    #[error("the {period} data is empty; give at least one row")]
    Empty { period: Period },
    #[error("the {period} data has {expected} scores but {found} {what}; give one value per row")]
    LengthMismatch {
        period: Period,
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("the {period} score at row {row} is NaN; scores must be probabilities in [0, 1]")]
    NanScore { period: Period, row: usize },
    #[error(
        "the {period} score at row {row} is {value}, outside [0, 1]; give the predicted probability of the positive class"
    )]
    ScoreOutOfRange {
        period: Period,
        row: usize,
        value: f64,
    },
    #[error("every reference label is {label}; CBPE needs both classes in the reference data")]
    SingleClassReference { label: bool },
    #[error("{0}; chunk size and chunk number must be at least 1")]
    ZeroChunking(&'static str),
    #[error(
        "chunks of {chunk_size} rows do not fit in the {rows} rows of the {period} data; use a smaller chunk size"
    )]
    ChunkLargerThanData {
        period: Period,
        chunk_size: usize,
        rows: usize,
    },
    #[error(
        "the {rows} rows of the {period} data cannot make {chunk_number} chunks; use fewer chunks"
    )]
    TooManyChunks {
        period: Period,
        chunk_number: usize,
        rows: usize,
    },
    #[error("the calibration check on the reference data needs {0}; give more reference rows")]
    CalibrationCheck(String),
}

/// Which data a row or chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Reference,
    Analysis,
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Period::Reference => "reference",
            Period::Analysis => "analysis",
        })
    }
}

/// How rows are split into chunks, in order. As NannyML's chunkers (with
/// `incomplete='keep'`): leftover rows form a last, smaller chunk. Unlike
/// NannyML, which then makes a single short chunk, a chunk size larger than
/// the data is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chunking {
    /// Chunks of this many rows (NannyML's `chunk_size`).
    Size(usize),
    /// This many chunks of `rows / number` rows (NannyML's `chunk_number`),
    /// plus a last chunk of the remainder if any.
    Number(usize),
}

impl Chunking {
    /// Row ranges of the chunks of `rows` rows.
    pub fn ranges(self, rows: usize, period: Period) -> Result<Vec<Range<usize>>, CbpeError> {
        let chunk_size = match self {
            Chunking::Size(0) => return Err(CbpeError::ZeroChunking("the chunk size is 0")),
            Chunking::Number(0) => return Err(CbpeError::ZeroChunking("the chunk number is 0")),
            Chunking::Size(size) if size > rows => {
                return Err(CbpeError::ChunkLargerThanData {
                    period,
                    chunk_size: size,
                    rows,
                })
            }
            Chunking::Size(size) => size,
            Chunking::Number(number) if number > rows => {
                return Err(CbpeError::TooManyChunks {
                    period,
                    chunk_number: number,
                    rows,
                })
            }
            Chunking::Number(number) => rows / number,
        };
        Ok((0..rows)
            .step_by(chunk_size)
            .map(|start| start..(start + chunk_size).min(rows))
            .collect())
    }
}

/// The metrics CBPE estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    RocAuc,
    F1,
    Precision,
    Recall,
    Specificity,
    Accuracy,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::RocAuc,
        Metric::F1,
        Metric::Precision,
        Metric::Recall,
        Metric::Specificity,
        Metric::Accuracy,
    ];

    /// NannyML's name of the metric (`roc_auc`, `f1`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Metric::RocAuc => "roc_auc",
            Metric::F1 => "f1",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Specificity => "specificity",
            Metric::Accuracy => "accuracy",
        }
    }
}

/// One value per metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerMetric<T> {
    pub roc_auc: T,
    pub f1: T,
    pub precision: T,
    pub recall: T,
    pub specificity: T,
    pub accuracy: T,
}

impl<T> PerMetric<T> {
    fn from_fn(mut value: impl FnMut(Metric) -> T) -> Self {
        PerMetric {
            roc_auc: value(Metric::RocAuc),
            f1: value(Metric::F1),
            precision: value(Metric::Precision),
            recall: value(Metric::Recall),
            specificity: value(Metric::Specificity),
            accuracy: value(Metric::Accuracy),
        }
    }

    pub fn get(&self, metric: Metric) -> &T {
        match metric {
            Metric::RocAuc => &self.roc_auc,
            Metric::F1 => &self.f1,
            Metric::Precision => &self.precision,
            Metric::Recall => &self.recall,
            Metric::Specificity => &self.specificity,
            Metric::Accuracy => &self.accuracy,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Metric, &T)> {
        Metric::ALL
            .into_iter()
            .map(move |metric| (metric, self.get(metric)))
    }
}

/// Lower and upper alert thresholds of a metric, from the reference chunks.
/// `None` where NannyML's is NaN (no reference chunk had a defined value).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// One metric of one chunk. Every `None` is a NaN in NannyML's output: a
/// value that is undefined on this data (one class only, a zero
/// denominator).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricEstimate {
    /// The estimate from the expected confusion matrix.
    pub value: Option<f64>,
    /// NannyML's sampling error of the metric for a chunk of this size.
    pub sampling_error: Option<f64>,
    /// The metric computed from the labels: reference chunks only.
    pub realized: Option<f64>,
    /// `min(1, value + 3 * sampling_error)`.
    pub upper_confidence: Option<f64>,
    /// `max(0, value - 3 * sampling_error)`.
    pub lower_confidence: Option<f64>,
    pub upper_threshold: Option<f64>,
    pub lower_threshold: Option<f64>,
    /// Whether the estimate is outside the thresholds.
    pub alert: bool,
}

/// The estimates of one chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkEstimate {
    pub chunk_index: usize,
    /// First row of the chunk.
    pub start_index: usize,
    /// Last row of the chunk, inclusive (NannyML's convention).
    pub end_index: usize,
    pub metrics: PerMetric<MetricEstimate>,
}

/// A CBPE estimator fitted on reference data.
#[derive(Debug, Clone)]
pub struct Cbpe {
    chunking: Chunking,
    calibration: CalibrationCheck,
    calibrator: Option<IsotonicCalibrator>,
    sampling_error: PerMetric<SamplingErrorComponents>,
    thresholds: PerMetric<Thresholds>,
    reference_chunks: Vec<ChunkEstimate>,
}

impl Cbpe {
    /// Fits on reference data: sampling-error components and alert
    /// thresholds from the labels, then NannyML's calibration check and, if
    /// the scores need it, an isotonic calibrator.
    pub fn fit(
        y_true: &[bool],
        y_pred: &[bool],
        y_score: &[f64],
        chunking: Chunking,
    ) -> Result<Cbpe, CbpeError> {
        let period = Period::Reference;
        check_rows(
            period,
            y_score,
            &[
                ("predicted labels", y_pred.len()),
                ("true labels", y_true.len()),
            ],
        )?;
        let positives = y_true.iter().filter(|&&label| label).count();
        if positives == 0 || positives == y_true.len() {
            return Err(CbpeError::SingleClassReference {
                label: positives > 0,
            });
        }
        let ranges = chunking.ranges(y_score.len(), period)?;

        let sampling_error = PerMetric::from_fn(|metric| {
            SamplingErrorComponents::fit(metric, y_true, y_pred, y_score)
        });
        let realized: Vec<PerMetric<f64>> = ranges
            .iter()
            .map(|rows| {
                PerMetric::from_fn(|metric| {
                    realized(
                        metric,
                        &y_true[rows.clone()],
                        &y_pred[rows.clone()],
                        &y_score[rows.clone()],
                    )
                })
            })
            .collect();
        let thresholds = PerMetric::from_fn(|metric| {
            let values: Vec<f64> = realized.iter().map(|chunk| *chunk.get(metric)).collect();
            thresholds(&values)
        });

        let calibration =
            check_calibration(y_true, y_score).map_err(CbpeError::CalibrationCheck)?;
        let calibrator = calibration
            .needs_calibration
            .then(|| IsotonicCalibrator::fit(y_score, y_true));

        let mut cbpe = Cbpe {
            chunking,
            calibration,
            calibrator,
            sampling_error,
            thresholds,
            reference_chunks: Vec::new(),
        };
        let calibrated = cbpe.calibrate(y_score);
        cbpe.reference_chunks = ranges
            .into_iter()
            .zip(&realized)
            .enumerate()
            .map(|(chunk_index, (rows, realized))| {
                cbpe.chunk_estimate(
                    chunk_index,
                    rows,
                    y_pred,
                    &calibrated,
                    y_score,
                    Some(realized),
                )
            })
            .collect();
        Ok(cbpe)
    }

    /// Estimates the metrics of each chunk of analysis data (no labels).
    pub fn estimate(
        &self,
        y_pred: &[bool],
        y_score: &[f64],
    ) -> Result<Vec<ChunkEstimate>, CbpeError> {
        let period = Period::Analysis;
        check_rows(period, y_score, &[("predicted labels", y_pred.len())])?;
        let ranges = self.chunking.ranges(y_score.len(), period)?;
        let calibrated = self.calibrate(y_score);
        Ok(ranges
            .into_iter()
            .enumerate()
            .map(|(chunk_index, rows)| {
                self.chunk_estimate(chunk_index, rows, y_pred, &calibrated, y_score, None)
            })
            .collect())
    }

    /// The reference chunks: estimates (from calibrated scores) next to the
    /// realized values, as NannyML reports the reference period.
    pub fn reference_chunks(&self) -> &[ChunkEstimate] {
        &self.reference_chunks
    }

    /// What the calibration check found on the reference data.
    pub fn calibration(&self) -> &CalibrationCheck {
        &self.calibration
    }

    /// Alert thresholds per metric.
    pub fn thresholds(&self) -> &PerMetric<Thresholds> {
        &self.thresholds
    }

    pub fn chunking(&self) -> Chunking {
        self.chunking
    }

    fn calibrate(&self, scores: &[f64]) -> Vec<f64> {
        match &self.calibrator {
            Some(calibrator) => scores
                .iter()
                .map(|&score| calibrator.calibrate(score))
                .collect(),
            None => scores.to_vec(),
        }
    }

    /// NannyML's `Metric.get_chunk_record` for each metric.
    fn chunk_estimate(
        &self,
        chunk_index: usize,
        rows: Range<usize>,
        y_pred: &[bool],
        calibrated: &[f64],
        uncalibrated: &[f64],
        realized: Option<&PerMetric<f64>>,
    ) -> ChunkEstimate {
        let y_pred = &y_pred[rows.clone()];
        let calibrated = &calibrated[rows.clone()];
        let uncalibrated = &uncalibrated[rows.clone()];
        let expected = ExpectedConfusion::new(y_pred, calibrated);
        let metrics = PerMetric::from_fn(|metric| {
            let value = match metric {
                Metric::RocAuc => estimated_roc_auc(calibrated, uncalibrated),
                _ => expected.metric(metric),
            };
            let sampling_error = self.sampling_error.get(metric).for_rows(rows.len());
            let thresholds = self.thresholds.get(metric);
            // NaN propagates as in numpy's minimum/maximum.
            let upper_confidence = value + SAMPLING_ERROR_RANGE * sampling_error;
            let lower_confidence = value - SAMPLING_ERROR_RANGE * sampling_error;
            MetricEstimate {
                value: defined(value),
                sampling_error: defined(sampling_error),
                realized: realized.and_then(|values| defined(*values.get(metric))),
                upper_confidence: defined(upper_confidence).map(|bound| bound.min(1.0)),
                lower_confidence: defined(lower_confidence).map(|bound| bound.max(0.0)),
                upper_threshold: thresholds.upper,
                lower_threshold: thresholds.lower,
                alert: thresholds.lower.is_some_and(|lower| value < lower)
                    || thresholds.upper.is_some_and(|upper| value > upper),
            }
        });
        ChunkEstimate {
            chunk_index,
            start_index: rows.start,
            end_index: rows.end - 1,
            metrics,
        }
    }
}

/// Rejects what NannyML would choke on or silently mis-handle: no rows,
/// columns of different lengths, scores that are not probabilities.
fn check_rows(
    period: Period,
    scores: &[f64],
    others: &[(&'static str, usize)],
) -> Result<(), CbpeError> {
    if scores.is_empty() {
        return Err(CbpeError::Empty { period });
    }
    for &(what, found) in others {
        if found != scores.len() {
            return Err(CbpeError::LengthMismatch {
                period,
                what,
                expected: scores.len(),
                found,
            });
        }
    }
    for (row, &value) in scores.iter().enumerate() {
        if value.is_nan() {
            return Err(CbpeError::NanScore { period, row });
        }
        if !(0.0..=1.0).contains(&value) {
            return Err(CbpeError::ScoreOutOfRange { period, row, value });
        }
    }
    Ok(())
}

fn defined(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_chunking_keeps_the_incomplete_last_chunk() {
        let ranges = Chunking::Size(4).ranges(10, Period::Analysis);
        assert_eq!(ranges, Ok(vec![0..4, 4..8, 8..10]));
        // 10 rows in 3 chunks: chunks of 3 and a last chunk of 1, as NannyML.
        let ranges = Chunking::Number(3).ranges(10, Period::Analysis);
        assert_eq!(ranges, Ok(vec![0..3, 3..6, 6..9, 9..10]));
    }
}
