#!/usr/bin/env python3
"""Writes crates/keel-monitor/tests/fixtures/cbpe.json: binary classifier
outputs drawn with fixed seeds and what NannyML's CBPE (confidence-based
performance estimation) reports on them, per reference and analysis chunk.

Needs the real `nannyml` (it brings numpy, pandas, scikit-learn and scipy):
    python3 -m venv /tmp/cbpegen && /tmp/cbpegen/bin/pip install nannyml
    /tmp/cbpegen/bin/python scripts/gen_cbpe_fixtures.py

Scores are quantized to k / 2**24 (exact in float32 and float64, and 1 - p is
exact too) and made unique within each data set: NannyML sorts scores with
numpy's unstable quicksort in several places, so ties would make its numbers
depend on numpy's sort implementation. The fixture stores the integers k.
"""

import json
import math
import os
import pathlib
import warnings

# NannyML sends usage analytics unless told not to.
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"

import nannyml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
from nannyml.calibration import (  # noqa: E402
    IsotonicCalibrator,
    _calculate_expected_calibration_error,
    _get_bin_index_edges,
    needs_calibration,
)
from sklearn.model_selection import StratifiedShuffleSplit  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/keel-monitor/tests/fixtures/cbpe.json"
SCALE = 2**24
METRICS = ["roc_auc", "f1", "precision", "recall", "specificity", "accuracy"]
FIELDS = [
    "value",
    "sampling_error",
    "realized",
    "upper_confidence_boundary",
    "lower_confidence_boundary",
    "upper_threshold",
    "lower_threshold",
    "alert",
]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def quantize_unique(scores):
    """k / 2**24 with every k distinct (a duplicate moves up by one unit)."""
    units = np.clip(np.round(scores * SCALE).astype(np.int64), 1, SCALE - 1)
    seen = set()
    for i, unit in enumerate(units):
        while unit in seen:
            unit += 1 if unit < SCALE - 1 else -1
        seen.add(int(unit))
        units[i] = unit
    return units


def classifier_outputs(rng, x, true_logit, model_logit):
    """Labels drawn from the true probability; the model scores its own."""
    y_true = (rng.random(len(x)) < sigmoid(true_logit(x))).astype(int)
    units = quantize_unique(sigmoid(model_logit(x)))
    y_score = units / SCALE
    y_pred = (y_score >= 0.5).astype(int)
    return y_true, y_pred, units, y_score


def bits(values):
    return "".join("1" if v else "0" for v in values)


def number(value):
    if value is None:
        return None
    value = float(value)
    # 12 significant digits keep the file small and are far below the test's tolerance.
    return None if math.isnan(value) else float(f"{value:.12g}")


def chunk_rows(frame):
    rows = []
    for _, row in frame.iterrows():
        metrics = {}
        for metric in METRICS:
            # One array per metric, in the order of the fixture's "fields".
            metrics[metric] = [
                bool(row[(metric, field)]) if field == "alert" else number(row[(metric, field)]) for field in FIELDS
            ]
        rows.append(
            {
                "start_index": int(row[("chunk", "start_index")]),
                "end_index": int(row[("chunk", "end_index")]),
                "metrics": metrics,
            }
        )
    return rows


def expected_calibration_errors(y_true, y_score):
    """ECE before and after isotonic calibration, as needs_calibration computes them."""
    splitter = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=42)
    calibrator = IsotonicCalibrator()
    truths, scores, calibrated = [], [], []
    for train, test in splitter.split(y_score, y_true):
        calibrator.fit(y_score[train], y_true[train])
        truths.append(y_true[test])
        scores.append(y_score[test])
        calibrated.append(calibrator.calibrate(y_score[test]))
    truths, scores, calibrated = map(np.concatenate, (truths, scores, calibrated))
    edges = _get_bin_index_edges(len(scores), 10)
    before = _calculate_expected_calibration_error(truths, scores, edges)
    after = _calculate_expected_calibration_error(truths, calibrated, edges)
    # Calibrated scores tie within isotonic steps, and which tied rows fall on
    # each side of a bin edge moves the ECE. NannyML sorts them with numpy's
    # default argsort, whose tie order depends on the CPU's SIMD sort (AVX-512
    # here); Keel sorts stably. Record both figures; the fixtures only use data
    # where the decision does not depend on the tie order.
    stable = np.argsort(calibrated, kind="stable")
    stable_after = _calculate_expected_calibration_error(truths[stable], calibrated[stable], edges)
    return float(before), float(after), float(stable_after)


def run_case(name, chunking, reference, analysis, expect_calibration):
    ref_true, ref_pred, ref_units, ref_score = reference
    ana_pred, ana_units, ana_score = analysis
    reference_frame = pd.DataFrame({"y_true": ref_true, "y_pred": ref_pred, "y_pred_proba": ref_score})
    analysis_frame = pd.DataFrame({"y_pred": ana_pred, "y_pred_proba": ana_score})
    estimator = nannyml.CBPE(
        problem_type="classification_binary",
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="y_true",
        metrics=METRICS,
        **chunking,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(reference_frame)
        result = estimator.estimate(analysis_frame).to_df()
    assert estimator.needs_calibration == expect_calibration, (name, estimator.needs_calibration)
    assert needs_calibration(ref_true, ref_score, IsotonicCalibrator()) == expect_calibration
    before, after, stable_after = expected_calibration_errors(ref_true, ref_score)
    assert (before > after) == expect_calibration
    assert (before > stable_after) == expect_calibration, "the decision depends on the tie order: pick another seed"
    periods = result[("chunk", "period")]
    return {
        "name": name,
        "chunking": {"size": chunking["chunk_size"]} if "chunk_size" in chunking else {"number": chunking["chunk_number"]},
        "reference": {"y_true": bits(ref_true), "y_pred": bits(ref_pred), "y_score_units": ref_units.tolist()},
        "analysis": {"y_pred": bits(ana_pred), "y_score_units": ana_units.tolist()},
        "needs_calibration": bool(estimator.needs_calibration),
        "ece_before_calibration": before,
        "ece_after_calibration_numpy_tie_order": after,
        "ece_after_calibration_stable_tie_order": stable_after,
        "reference_chunks": chunk_rows(result[periods == "reference"]),
        "analysis_chunks": chunk_rows(result[periods == "analysis"]),
    }


def main():
    cases = []

    # A well-calibrated model (the score is the true probability), no shift.
    # NannyML's cross-validated ECE test often still asks for calibration on
    # such data; this seed is one where it does not.
    rng = np.random.default_rng(2)
    calibrated_logit = lambda x: 1.6 * x - 0.4  # noqa: E731
    ref = classifier_outputs(rng, rng.normal(0.0, 1.0, 3000), calibrated_logit, calibrated_logit)
    ana = classifier_outputs(rng, rng.normal(0.0, 1.0, 3000), calibrated_logit, calibrated_logit)
    cases.append(
        run_case("well_calibrated", {"chunk_size": 300}, ref, (ana[1], ana[2], ana[3]), expect_calibration=False)
    )

    # An overconfident, biased model: the scores need isotonic calibration.
    # Seven chunks of 428 leave a kept incomplete chunk of 4 rows, as in NannyML.
    rng = np.random.default_rng(7)
    true_logit = lambda x: 1.2 * x + 0.5  # noqa: E731
    model_logit = lambda x: 3.0 * x  # noqa: E731
    ref = classifier_outputs(rng, rng.normal(0.0, 1.0, 3000), true_logit, model_logit)
    ana = classifier_outputs(rng, rng.normal(0.3, 1.1, 3000), true_logit, model_logit)
    cases.append(
        run_case("miscalibrated", {"chunk_number": 7}, ref, (ana[1], ana[2], ana[3]), expect_calibration=True)
    )

    # Covariate shift: halfway through the analysis period the inputs crowd the
    # decision boundary, so the model gets less sure and less accurate.
    rng = np.random.default_rng(42)
    true_logit = lambda x: 2.5 * x  # noqa: E731
    model_logit = lambda x: 2.0 * x + 0.2  # noqa: E731
    ref = classifier_outputs(rng, rng.normal(0.0, 1.0, 3000), true_logit, model_logit)
    features = np.concatenate([rng.normal(0.0, 1.0, 1500), rng.normal(0.1, 0.3, 1650)])
    ana = classifier_outputs(rng, features, true_logit, model_logit)
    cases.append(
        run_case("covariate_shift", {"chunk_size": 300}, ref, (ana[1], ana[2], ana[3]), expect_calibration=True)
    )

    # Rare positives in small chunks: many reference chunks hold one class
    # only, so their realized ROC AUC, F1, precision and recall are NaN and the
    # thresholds come from the others (NaN-ignoring mean and std).
    rng = np.random.default_rng(11)
    true_logit = lambda x: 2.0 * x - 3.5  # noqa: E731
    ref = classifier_outputs(rng, rng.normal(0.0, 1.0, 600), true_logit, true_logit)
    ana = classifier_outputs(rng, rng.normal(0.8, 1.0, 620), true_logit, true_logit)
    cases.append(
        run_case("rare_positives", {"chunk_size": 40}, ref, (ana[1], ana[2], ana[3]), expect_calibration=True)
    )

    fixture = {
        "generator": "scripts/gen_cbpe_fixtures.py",
        "nannyml": nannyml.__version__,
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "score_scale": SCALE,
        "fields": FIELDS,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
