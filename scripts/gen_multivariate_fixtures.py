#!/usr/bin/env python3
"""Writes crates/keel-monitor/tests/fixtures/multivariate.json: small datasets
(embedded whole, values rounded so that both sides read the same numbers) and
the per-chunk reconstruction errors, thresholds, sampling errors and alerts of
NannyML's DataReconstructionDriftCalculator on them.

Computed with nannyml 0.13.1 (scikit-learn 1.9.1, category_encoders 2.11.2,
pandas 2.3.3, numpy 2.4.6):
    python3 -m venv /work/venv-h3
    /work/venv-h3/bin/pip install nannyml==0.13.1 "pandas<3"
    NML_DISABLE_USAGE_LOGGING=1 /work/venv-h3/bin/python scripts/gen_multivariate_fixtures.py

pandas is held below 3 because nannyml 0.13.1 picks categorical columns by
dtype name ('object', 'string', 'category', 'bool'), which pandas 3's `str`
dtype is not.
"""

import json
import math
import os
import pathlib
import warnings

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import category_encoders  # noqa: E402
import nannyml as nml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/keel-monitor/tests/fixtures/multivariate.json"

warnings.filterwarnings("ignore")


def correlated(rng, n, correlation, decimals=3):
    """Two standard normal columns with the given correlation."""
    first = rng.normal(size=n)
    noise = rng.normal(size=n)
    second = correlation * first + math.sqrt(1 - correlation**2) * noise
    return np.round(first, decimals), np.round(second, decimals)


def numeric_case(rng):
    def frame(n):
        a, b = correlated(rng, n, 0.8)
        c = np.round(0.5 * a + rng.normal(scale=2.0, size=n) + 10, 3)
        d = np.round(rng.exponential(scale=3.0, size=n), 3)
        return pd.DataFrame({"a": a, "b": b, "c": c, "d": d})

    return frame(1000), frame(1050), {"chunk_size": 100}


def mixed_case(rng):
    colours = np.array(["red", "green", "blue", "violet"])

    def frame(n, colour_weights):
        x, y = correlated(rng, n, 0.6)
        colour = rng.choice(colours, size=n, p=colour_weights)
        # the size depends on x so that the categorical column correlates
        size = np.where(x + rng.normal(scale=0.5, size=n) > 0.3, "large", "small")
        flag = rng.random(n) < 0.3
        count = rng.poisson(4.0, size=n).astype(np.int64)
        return pd.DataFrame({"x": x, "y": y, "colour": colour, "size": size, "flag": flag, "count": count})

    reference = frame(1000, [0.4, 0.3, 0.2, 0.1])
    analysis = pd.concat(
        [frame(500, [0.4, 0.3, 0.2, 0.1]), frame(500, [0.1, 0.2, 0.3, 0.4])], ignore_index=True
    )
    return reference, analysis, {"chunk_number": 8}


def missing_case(rng):
    def frame(n, unknown):
        p, q = correlated(rng, n, 0.7)
        r = np.round(rng.uniform(-1, 1, size=n) + 0.3 * p, 3)
        kinds = ["k1", "k2", "k3"] + (["k9"] if unknown else [])
        kind = rng.choice(kinds, size=n).astype(object)
        frame = pd.DataFrame({"p": p, "q": q, "r": r, "kind": kind})
        for column, share in (("p", 0.1), ("q", 0.05), ("kind", 0.1)):
            frame.loc[rng.random(n) < share, column] = np.nan
        return frame

    # the analysis has a category the reference never saw (encoded as 0)
    # and leaves a 4-row chunk at the end (900 // 7 = 128 rows a chunk)
    return frame(800, False), frame(900, True), {"chunk_number": 7}


def correlation_drift_case(rng):
    """Marginals stay N(0, 1) and uniform; only the correlation of u and v flips."""

    def frame(n, correlation):
        u, v = correlated(rng, n, correlation)
        w = np.round(rng.normal(size=n), 3)
        z = np.round(rng.uniform(0, 1, size=n), 3)
        return pd.DataFrame({"u": u, "v": v, "w": w, "z": z})

    reference = frame(1000, 0.9)
    analysis = pd.concat([frame(500, 0.9), frame(500, -0.9)], ignore_index=True)
    return reference, analysis, {"chunk_size": 100, "drifted_from_row": 500}


def column_type(series):
    if series.dtype == bool:
        return "bool"
    if series.dtype.kind in "iu":
        return "int"
    if series.dtype.kind == "f":
        return "float"
    return "str"


def column_values(series):
    out = []
    for value in series.tolist():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(None)
        else:
            out.append(value)
    return out


def optional(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def run(name, reference, analysis, options):
    columns = list(reference.columns)
    chunking = {k: v for k, v in options.items() if k in ("chunk_size", "chunk_number")}
    calculator = nml.DataReconstructionDriftCalculator(column_names=columns, **chunking)
    calculator.fit(reference.copy())
    results = calculator.calculate(analysis.copy()).to_df()
    chunks = []
    for _, row in results.iterrows():
        chunks.append(
            {
                "period": row[("chunk", "period")],
                "start_index": int(row[("chunk", "start_index")]),
                "end_index": int(row[("chunk", "end_index")]),
                "error": float(row[("reconstruction_error", "value")]),
                "sampling_error": optional(row[("reconstruction_error", "sampling_error")]),
                "upper_confidence_boundary": optional(row[("reconstruction_error", "upper_confidence_boundary")]),
                "lower_confidence_boundary": optional(row[("reconstruction_error", "lower_confidence_boundary")]),
                "lower_threshold": optional(row[("reconstruction_error", "lower_threshold")]),
                "upper_threshold": optional(row[("reconstruction_error", "upper_threshold")]),
                "alert": bool(row[("reconstruction_error", "alert")]),
            }
        )
    return {
        "name": name,
        "columns": columns,
        "types": {column: column_type(reference[column]) for column in columns},
        **chunking,
        "drifted_from_row": options.get("drifted_from_row"),
        "n_components": int(calculator._pca.n_components_),
        "reference": {column: column_values(reference[column]) for column in columns},
        "analysis": {column: column_values(analysis[column]) for column in columns},
        "chunks": chunks,
    }


def main():
    rng = np.random.default_rng(20240605)
    cases = [
        run("numeric", *numeric_case(rng)),
        run("mixed", *mixed_case(rng)),
        run("missing", *missing_case(rng)),
        run("correlation_drift", *correlation_drift_case(rng)),
    ]
    document = {
        "generator": "scripts/gen_multivariate_fixtures.py",
        "nannyml": nml.__version__,
        "scikit_learn": sklearn.__version__,
        "category_encoders": category_encoders.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "cases": cases,
    }
    OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    for case in cases:
        analysis = [chunk for chunk in case["chunks"] if chunk["period"] == "analysis"]
        print(
            case["name"],
            "components",
            case["n_components"],
            "alerts",
            [int(chunk["alert"]) for chunk in analysis],
        )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
