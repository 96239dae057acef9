#!/usr/bin/env bash
# `keel monitor drift` vs Evidently 0.7.23's DataDriftPreset on the anchor's generated data
# (15 numeric + 5 categorical columns, 4 of them shifted), same files, same sitting.
# Usage: bash bench/run_monitor.sh [rows=200000]
# Needs: ../shared/bench/anchors/setup-serving-monitoring.sh (Evidently venv), cargo build --release -p keel.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$(cd "$ROOT/../shared/bench/anchors" && pwd)}
WORK=${WORK:-/tmp/anchors2}
ROWS=${1:-200000}
KEEL=${KEEL_BIN:-$ROOT/target/release/keel}
DATA=$WORK/evdata
[[ -f $DATA/reference-$ROWS.parquet ]] || "$WORK/evidently/bin/python" "$ANCHORS/evidently_gen.py" "$DATA" "$ROWS"
echo "== Evidently"
/usr/bin/time -f "evidently wall %e s, peak RSS %M KB" "$WORK/evidently/bin/python" "$ANCHORS/evidently_drift.py" "$DATA" "$ROWS" "$WORK/evidently-$ROWS.json" | cut -c1-400
echo "== keel monitor drift"
/usr/bin/time -f "keel wall %e s, peak RSS %M KB" "$KEEL" monitor drift --reference "$DATA/reference-$ROWS.parquet" --current "$DATA/current-$ROWS.parquet"
