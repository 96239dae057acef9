#!/usr/bin/env python3
"""Writes crates/keel-monitor/tests/fixtures/drift.json: samples drawn with
fixed seeds and the drift scores scipy gives on them, computed the way
Evidently's legacy stattests compute them
(evidentlyai/evidently, src/evidently/legacy/calculations/stattests/*.py).

Needs numpy and scipy only:
    python3 -m venv /tmp/driftgen && /tmp/driftgen/bin/pip install numpy scipy
    /tmp/driftgen/bin/python scripts/gen_drift_fixtures.py
"""

import json
import pathlib

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/keel-monitor/tests/fixtures/drift.json"


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


def chisquare(reference, current):
    """chisquare_stattest._chi_stat_test"""
    keys = sorted(set(np.unique(reference)) | set(np.unique(current)))
    k_norm = len(current) / len(reference)
    f_exp = [np.sum(reference == key) * k_norm for key in keys]
    f_obs = [np.sum(current == key) for key in keys]
    result = stats.chisquare(f_obs, f_exp)
    return float(result.statistic), float(result.pvalue)


def z_test(reference, current):
    """z_stattest._z_stat_test"""
    if len(np.unique(reference)) == 1 and len(np.unique(current)) == 1 and reference[0] == current[0]:
        return 0.0, 1.0
    first = sorted(set(np.unique(reference)) | set(np.unique(current)))[0]
    ref = (reference != first).astype(float)
    cur = (current != first).astype(float)
    n1, n2 = len(ref), len(cur)
    p1, p2 = ref.sum() / n1, cur.sum() / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(z), float(2 * (1 - stats.norm.cdf(np.abs(z))))


def wasserstein_normed(reference, current):
    """wasserstein_distance_norm._wasserstein_distance_norm"""
    return float(stats.wasserstein_distance(reference, current) / max(np.std(reference), 0.001))


def jensenshannon(reference, current, numerical):
    ref, cur = binned(reference, current, numerical, False)
    return float(distance.jensenshannon(ref, cur))


def psi(reference, current, numerical):
    ref, cur = binned(reference, current, numerical, True)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def finite_or_text(value):
    """JSON has no infinity: non-finite scores are written as "inf", "-inf" or "nan"."""
    if isinstance(value, dict):
        return {key: finite_or_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_or_text(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def main():
    cases = []

    def numeric_case(name, reference, current):
        ks = stats.ks_2samp(reference, current)
        cases.append({
            "name": name,
            "kind": "numerical",
            "reference": reference.tolist(),
            "current": current.tolist(),
            "ks": {"statistic": float(ks.statistic), "p_value": float(ks.pvalue)},
            "wasserstein_normed": wasserstein_normed(reference, current),
            "jensenshannon": jensenshannon(reference, current, True),
            "psi": psi(reference, current, True),
        })

    numeric_case("tiny", numeric(1, 5), numeric(2, 7, loc=1.0))
    numeric_case("small_same", numeric(3, 80), numeric(4, 80))
    numeric_case("small_shifted", numeric(5, 120), numeric(6, 90, loc=0.5))
    numeric_case("ties", numeric(7, 300, decimals=1), numeric(8, 250, loc=0.2, decimals=1))
    numeric_case("few_values", np.round(numeric(9, 200, scale=2.0)), np.round(numeric(10, 150, loc=0.5, scale=2.0)))
    numeric_case("large_same", numeric(11, 3000), numeric(12, 2000))
    numeric_case("large_shifted", numeric(13, 3000), numeric(14, 2500, loc=0.3, scale=1.2))
    numeric_case("constant_reference", np.full(50, 1.5), numeric(15, 40))
    numeric_case("constant_both", np.full(30, 2.0), np.full(40, 2.0))
    numeric_case("identical", numeric(16, 60), numeric(16, 60))
    numeric_case("one_value_each", np.array([0.5]), np.array([1.5]))

    def categorical_case(name, reference, current):
        case = {
            "name": name,
            "kind": "categorical",
            "reference": counts(reference),
            "current": counts(current),
            "chisquare": dict(zip(["statistic", "p_value"], chisquare(reference, current))),
            "jensenshannon": jensenshannon(reference, current, False),
            "psi": psi(reference, current, False),
        }
        if len(set(np.unique(reference)) | set(np.unique(current))) <= 2:
            case["z"] = dict(zip(["statistic", "p_value"], z_test(reference, current)))
        cases.append(case)

    five = ["a", "b", "c", "d", "e"]
    categorical_case("binary_same", categorical(20, 500, ["no", "yes"], [0.7, 0.3]), categorical(21, 400, ["no", "yes"], [0.7, 0.3]))
    categorical_case("binary_shifted", categorical(22, 800, ["no", "yes"], [0.7, 0.3]), categorical(23, 600, ["no", "yes"], [0.6, 0.4]))
    categorical_case("five_same", categorical(24, 900, five, [0.4, 0.3, 0.15, 0.1, 0.05]), categorical(25, 700, five, [0.4, 0.3, 0.15, 0.1, 0.05]))
    categorical_case("five_shifted", categorical(26, 2000, five, [0.4, 0.3, 0.15, 0.1, 0.05]), categorical(27, 1500, five, [0.3, 0.3, 0.2, 0.1, 0.1]))
    categorical_case("single_category", np.array(["a"] * 40), np.array(["a"] * 25))
    categorical_case("disjoint_categories", np.array(["a"] * 40), np.array(["b"] * 25))
    categorical_case("new_category", categorical(28, 300, five[:4], [0.4, 0.3, 0.2, 0.1]), categorical(29, 300, five, [0.35, 0.3, 0.2, 0.1, 0.05]))

    # scipy.stats.kstwo.sf, which ks_2samp uses for samples over 10,000
    # values: a grid that reaches each of its algorithms.
    kstwo = []
    for n in [1, 2, 5, 10, 50, 100, 140, 141, 500, 1000, 5000, 20000, 100001]:
        for x in [0.001, 0.004, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.45, 0.5, 0.7, 0.95]:
            kstwo.append({"n": n, "x": x, "sf": float(stats.kstwo.sf(x, n))})

    def large_case(name, reference, current):
        ks = stats.ks_2samp(reference, current)
        cases.append({
            "name": name,
            "kind": "numerical",
            "reference": reference.tolist(),
            "current": current.tolist(),
            "ks": {"statistic": float(ks.statistic), "p_value": float(ks.pvalue)},
        })

    large_case("asymptotic_same", numeric(30, 800), numeric(31, 12000))
    large_case("asymptotic_shifted", numeric(32, 600), numeric(33, 10500, loc=0.1))
    large_case("asymptotic_small_current", numeric(34, 10001), numeric(35, 130, loc=0.2))

    document = {
        "generator": "scripts/gen_drift_fixtures.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cases": finite_or_text(cases),
        "kstwo": kstwo,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
