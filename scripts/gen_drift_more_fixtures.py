#!/usr/bin/env python3
"""Writes crates/keel-monitor/tests/fixtures/drift_more.json: samples drawn
with fixed seeds and what scipy (and Evidently's legacy stattests, restated
here with numpy and scipy only) give on them for the tests of
crates/keel-monitor/src/drift_more.rs:

- Mann-Whitney U: scipy.stats.mannwhitneyu(reference, current,
  method="asymptotic", use_continuity=True), two-sided and "less" (the
  alternative Evidently's `mannw` uses);
- Kullback-Leibler: Evidently's `kl_div` (stattests/kl_div.py), i.e.
  scipy.stats.entropy on utils.get_binned_data with zero filling;
- Hellinger: Evidently's `hellinger` (stattests/hellinger_distance.py);
- Cramér-von Mises: scipy.stats.cramervonmises_2samp(method="asymptotic");
- Anderson-Darling: scipy.stats.anderson_ksamp(variant="midrank"), the
  statistic and the interpolated, capped p-value.

Evidently's sources: evidentlyai/evidently,
src/evidently/legacy/calculations/stattests/*.py.

Run with an environment that has numpy and scipy:
    .venv/bin/python scripts/gen_drift_more_fixtures.py
"""

import json
import math
import pathlib
import re
import warnings

import numpy as np
import scipy
from scipy import stats

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/keel-monitor/tests/fixtures/drift_more.json"


def numeric(seed, n, loc=0.0, scale=1.0, decimals=4):
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(loc, scale, n), decimals)


def categorical(seed, n, categories, probabilities):
    rng = np.random.default_rng(seed)
    return rng.choice(categories, size=n, p=probabilities)


def counts(values):
    keys, numbers = np.unique(values, return_counts=True)
    return {str(key): int(number) for key, number in zip(keys, numbers)}


# --- Evidently's formulas, restated with numpy and scipy only ---------------

def binned(reference, current, numerical, fill_zeroes):
    """utils.get_binned_data"""
    if numerical and len(np.unique(reference)) > 20:
        bins = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        ref = np.histogram(reference, bins)[0] / len(reference)
        cur = np.histogram(current, bins)[0] / len(current)
    else:
        keys = sorted(set(np.unique(reference)) | set(np.unique(current)))
        ref = np.array([np.sum(reference == key) / len(reference) for key in keys])
        cur = np.array([np.sum(current == key) / len(current) for key in keys])
    if fill_zeroes:
        for shares in (ref, cur):
            smallest = min(shares[shares != 0])
            np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return ref, cur


def kl_div(reference, current, numerical):
    """kl_div._kl_div"""
    ref, cur = binned(reference, current, numerical, True)
    return float(stats.entropy(ref, cur))


def hellinger(reference, current, numerical):
    """hellinger_distance._hellinger_distance"""
    keys = list(set(np.unique(reference)) | set(np.unique(current)))
    if not numerical:
        ref = {key: np.sum(reference == key) / len(reference) for key in keys}
        cur = {key: np.sum(current == key) / len(current) for key in keys}
        total = 0.0
        for key in keys:
            total += math.sqrt(ref[key] * cur[key])
    else:
        bins = np.histogram_bin_edges(keys, bins="sturges")
        h1 = np.histogram(reference, bins=bins, density=True)[0]
        h2 = np.histogram(current, bins=bins, density=True)[0]
        bin_width = (max(bins) - min(bins)) / (len(bins) - 1)
        total = 0.0
        for p1, p2 in zip(h1, h2):
            total += math.sqrt(p1 * p2) * bin_width
    return float(math.sqrt(1 - np.clip(total, 0, 1)))


def mann_whitney(reference, current):
    two_sided = stats.mannwhitneyu(reference, current, alternative="two-sided", method="asymptotic", use_continuity=True)
    less = stats.mannwhitneyu(reference, current, alternative="less", method="asymptotic", use_continuity=True)
    return {"statistic": float(two_sided.statistic), "p_value": float(two_sided.pvalue), "p_value_less": float(less.pvalue)}


def cramer_von_mises(reference, current):
    if len(reference) < 2 or len(current) < 2:
        return None
    result = stats.cramervonmises_2samp(reference, current, method="asymptotic")
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue)}


def anderson(samples):
    """None where scipy fails: fewer than two distinct values, or fewer than
    four values in all (its variance has N - 3 in the denominator)."""
    pooled = np.concatenate(samples)
    if len(np.unique(pooled)) < 2 or len(pooled) < 4:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.anderson_ksamp(samples, variant="midrank")
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue)}


def main():
    cases = []

    def numeric_case(name, reference, current):
        cases.append({
            "name": name,
            "kind": "numerical",
            "reference": reference.tolist(),
            "current": current.tolist(),
            "mann_whitney": mann_whitney(reference, current),
            "kl_div": kl_div(reference, current, True),
            "hellinger": hellinger(reference, current, True),
            "cramer_von_mises": cramer_von_mises(reference, current),
            "anderson": anderson([reference, current]),
        })

    numeric_case("tiny", numeric(1, 5), numeric(2, 7, loc=1.0))
    numeric_case("tiny_ties", np.round(numeric(3, 8, scale=2.0)), np.round(numeric(4, 10, loc=1.0, scale=2.0)))
    numeric_case("small_same", numeric(5, 80), numeric(6, 80))
    numeric_case("small_shifted", numeric(7, 120), numeric(8, 90, loc=0.5))
    numeric_case("ties", numeric(9, 300, decimals=1), numeric(10, 250, loc=0.2, decimals=1))
    numeric_case("few_values", np.round(numeric(11, 200, scale=2.0)), np.round(numeric(12, 150, loc=0.5, scale=2.0)))
    numeric_case("far_apart", numeric(13, 60), numeric(14, 50, loc=8.0))
    numeric_case("wider_current", numeric(15, 400), numeric(16, 300, scale=1.6))
    numeric_case("constant_reference", np.full(50, 1.5), numeric(17, 40))
    numeric_case("constant_both", np.full(30, 2.0), np.full(40, 2.0))
    numeric_case("identical", numeric(18, 60), numeric(18, 60))
    numeric_case("large", numeric(19, 10000, decimals=2), numeric(20, 10000, loc=0.05, decimals=2))
    numeric_case("mild_shift", numeric(21, 150), numeric(22, 130, loc=0.15))
    numeric_case("one_each", np.array([0.5]), np.array([1.5]))

    def categorical_case(name, reference, current):
        cases.append({
            "name": name,
            "kind": "categorical",
            "reference": counts(reference),
            "current": counts(current),
            "kl_div": kl_div(reference, current, False),
            "hellinger": hellinger(reference, current, False),
        })

    five = ["a", "b", "c", "d", "e"]
    categorical_case("binary_same", categorical(30, 500, ["no", "yes"], [0.7, 0.3]), categorical(31, 400, ["no", "yes"], [0.7, 0.3]))
    categorical_case("five_shifted", categorical(32, 2000, five, [0.4, 0.3, 0.15, 0.1, 0.05]), categorical(33, 1500, five, [0.3, 0.3, 0.2, 0.1, 0.1]))
    categorical_case("single_category", np.array(["a"] * 40), np.array(["a"] * 25))
    categorical_case("disjoint_categories", np.array(["a"] * 40), np.array(["b"] * 25))
    categorical_case("missing_in_current", categorical(34, 300, five, [0.35, 0.3, 0.2, 0.1, 0.05]), categorical(35, 300, five[:4], [0.4, 0.3, 0.2, 0.1]))
    categorical_case("missing_in_reference", categorical(36, 300, five[:4], [0.4, 0.3, 0.2, 0.1]), categorical(37, 300, five, [0.35, 0.3, 0.2, 0.1, 0.05]))

    # anderson_ksamp with more than two samples.
    ksamp = []
    for name, samples in [
        ("three_same", [numeric(40, 50), numeric(41, 30), numeric(42, 20)]),
        ("three_shifted", [numeric(43, 70), numeric(44, 60, loc=0.4), numeric(45, 40, loc=-0.3)]),
        ("four_ties", [np.round(numeric(46 + index, 25 + 5 * index, loc=0.2 * index)) for index in range(4)]),
    ]:
        ksamp.append({"name": name, "samples": [sample.tolist() for sample in samples], "anderson": anderson(samples)})

    document = {
        "generator": "scripts/gen_drift_more_fixtures.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cases": cases,
        "anderson_ksamp": ksamp,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One line per case keeps the file small (the large case has 20,000 values).
    text = json.dumps(document, indent=1, allow_nan=False)
    text = re.sub(r"\[[^\[\]{}]*\]", lambda match: re.sub(r"\s+", "", match.group(0)), text)
    OUT.write_text(text + "\n")
    print(f"wrote {len(cases)} cases and {len(ksamp)} k-sample cases to {OUT}")


if __name__ == "__main__":
    main()
