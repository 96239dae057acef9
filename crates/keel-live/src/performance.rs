//! Model performance from predictions joined with posted ground truth:
//! accuracy, precision, recall, F1 (binary for the positive label when at
//! most two classes occur, else macro-averaged as scikit-learn does, a class
//! never predicted scoring 0) and ROC AUC (binary, from a score column) for
//! classification; RMSE and MAE for regression.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Metrics over the labelled rows of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    pub labelled_rows: usize,
    pub metrics: BTreeMap<String, f64>,
}

/// A class label as text, with integral numbers written as integers so that
/// `1`, `1.0` and `"1"` are one class.
pub fn normalize_label(text: &str) -> String {
    let trimmed = text.trim();
    match trimmed.parse::<f64>() {
        Ok(number) if number.is_finite() && number.fract() == 0.0 && number.abs() < 9.0e15 => {
            format!("{}", number as i64)
        }
        _ => trimmed.to_owned(),
    }
}

/// Classification metrics of `(truth, prediction)` pairs; `scores` (same
/// length, the positive class's score) adds ROC AUC when both classes occur.
pub fn classification(
    pairs: &[(String, String)],
    scores: Option<&[f64]>,
    positive_label: &str,
) -> Performance {
    let mut metrics = BTreeMap::new();
    if pairs.is_empty() {
        return Performance {
            labelled_rows: 0,
            metrics,
        };
    }
    let positive = normalize_label(positive_label);
    let correct = pairs
        .iter()
        .filter(|(truth, predicted)| truth == predicted)
        .count();
    metrics.insert("accuracy".to_owned(), correct as f64 / pairs.len() as f64);
    let classes: BTreeSet<&str> = pairs
        .iter()
        .flat_map(|(truth, predicted)| [truth.as_str(), predicted.as_str()])
        .collect();
    let (precision, recall, f1) = if classes.len() <= 2 {
        class_scores(pairs, &positive)
    } else {
        let per_class: Vec<(f64, f64, f64)> = classes
            .iter()
            .map(|class| class_scores(pairs, class))
            .collect();
        let n = per_class.len() as f64;
        (
            per_class.iter().map(|s| s.0).sum::<f64>() / n,
            per_class.iter().map(|s| s.1).sum::<f64>() / n,
            per_class.iter().map(|s| s.2).sum::<f64>() / n,
        )
    };
    metrics.insert("precision".to_owned(), precision);
    metrics.insert("recall".to_owned(), recall);
    metrics.insert("f1".to_owned(), f1);
    if let Some(scores) = scores {
        let truths: Vec<bool> = pairs.iter().map(|(truth, _)| *truth == positive).collect();
        if let Some(auc) = roc_auc(&truths, scores) {
            metrics.insert("roc_auc".to_owned(), auc);
        }
    }
    Performance {
        labelled_rows: pairs.len(),
        metrics,
    }
}

/// Precision, recall and F1 of one class; 0 where a denominator is 0.
fn class_scores(pairs: &[(String, String)], class: &str) -> (f64, f64, f64) {
    let mut tp = 0usize;
    let mut fp = 0usize;
    let mut fn_ = 0usize;
    for (truth, predicted) in pairs {
        match (truth == class, predicted == class) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let f1 = ratio(2 * tp, 2 * tp + fp + fn_);
    (precision, recall, f1)
}

/// Area under the ROC curve: the Mann-Whitney U of the positives' scores
/// over the negatives', ties counting one half. `None` unless both classes
/// occur (scikit-learn refuses then too) or a score is not finite.
pub fn roc_auc(truths: &[bool], scores: &[f64]) -> Option<f64> {
    if truths.len() != scores.len() || scores.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let n_pos = truths.iter().filter(|t| **t).count();
    let n_neg = truths.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks (1-based) over runs of equal scores.
    let mut rank_sum_pos = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum_pos +=
            average_rank * order[start..end].iter().filter(|&&i| truths[i]).count() as f64;
        start = end;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// RMSE and MAE of `(truth, prediction)` pairs.
pub fn regression(pairs: &[(f64, f64)]) -> Performance {
    let mut metrics = BTreeMap::new();
    if !pairs.is_empty() {
        let n = pairs.len() as f64;
        let squared: f64 = pairs.iter().map(|(t, p)| (t - p) * (t - p)).sum();
        let absolute: f64 = pairs.iter().map(|(t, p)| (t - p).abs()).sum();
        metrics.insert("rmse".to_owned(), (squared / n).sqrt());
        metrics.insert("mae".to_owned(), absolute / n);
    }
    Performance {
        labelled_rows: pairs.len(),
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (normalize_label(a), normalize_label(b)))
            .collect()
    }

    #[test]
    fn binary_metrics_match_hand_counts() {
        // tp=2, fp=1, fn=1, tn=1
        let p = pairs(&[("1", "1"), ("1.0", "1"), ("0", "1"), ("1", "0"), ("0", "0")]);
        let perf = classification(&p, None, "1");
        assert_eq!(perf.labelled_rows, 5);
        assert!((perf.metrics["accuracy"] - 0.6).abs() < 1e-12);
        assert!((perf.metrics["precision"] - 2.0 / 3.0).abs() < 1e-12);
        assert!((perf.metrics["recall"] - 2.0 / 3.0).abs() < 1e-12);
        assert!((perf.metrics["f1"] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn multiclass_is_macro_averaged() {
        // sklearn: precision_score(["a","b","c","a"], ["a","b","b","c"], average="macro") = (1 + 0.5 + 0)/3
        let p = pairs(&[("a", "a"), ("b", "b"), ("c", "b"), ("a", "c")]);
        let perf = classification(&p, None, "1");
        assert!((perf.metrics["precision"] - 0.5).abs() < 1e-12);
        // recall: a 1/2, b 1, c 0
        assert!((perf.metrics["recall"] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn roc_auc_counts_ties_as_half() {
        assert_eq!(
            roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]),
            Some(0.75)
        );
        assert_eq!(roc_auc(&[false, true], &[0.5, 0.5]), Some(0.5));
        assert_eq!(roc_auc(&[true, true], &[0.5, 0.6]), None);
    }

    #[test]
    fn regression_errors() {
        let perf = regression(&[(1.0, 2.0), (3.0, 3.0), (0.0, -2.0)]);
        assert!((perf.metrics["mae"] - 1.0).abs() < 1e-12);
        assert!((perf.metrics["rmse"] - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
