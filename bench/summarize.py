#!/usr/bin/env python3
"""Median of each phase over the JSON lines in a results directory, as a markdown table.

Files are named `<server>-<iteration>.json` (one JSON object each, from tracking_workload.py).
"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def load(results_dir):
    by_server = defaultdict(list)
    for path in sorted(Path(results_dir).glob("*.json")):
        server = path.stem.rsplit("-", 1)[0]
        text = path.read_text().strip()
        try:
            run = json.loads(text)
            if isinstance(run.get("total"), float):
                # Comparable across servers whether or not the registry phase ran.
                registry = run.get("registry")
                run["total_without_registry"] = round(
                    run["total"] - (registry if isinstance(registry, float) else 0.0), 3)
            by_server[server].append(run)
        except json.JSONDecodeError:
            by_server[server].append({"error": text[:200] or "no output"})
    return by_server


def cell(values):
    """Median of timings (floats) or counts (ints); otherwise the distinct texts."""
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values):
        if all(isinstance(v, int) for v in numbers):
            return f"{statistics.median(numbers):g}"  # a count, not a time: no ratio
        return round(statistics.median(numbers), 3)
    texts = {str(v)[:60] for v in values if not isinstance(v, (int, float))}
    return "; ".join(sorted(texts)) or "absent"


def main():
    by_server = load(sys.argv[1])
    baseline, candidate = "mlflow", "keel"
    phases = []
    for runs in by_server.values():
        for run in runs:
            phases += [k for k in run if k not in phases]
    print(f"| phase | {baseline} (median s) | {candidate} (median s) | {baseline} / {candidate} |")
    print("|---|---:|---:|---:|")
    for phase in phases:
        left = cell([r.get(phase, "absent") for r in by_server.get(baseline, [])] or ["absent"])
        right = cell([r.get(phase, "absent") for r in by_server.get(candidate, [])] or ["absent"])
        ratio = ""
        if isinstance(left, float) and isinstance(right, float) and right > 0:
            ratio = f"{left / right:.1f}x"
        print(f"| {phase} | {left} | {right} | {ratio} |")


if __name__ == "__main__":
    main()
