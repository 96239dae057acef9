#!/usr/bin/env bash
# Drift at scale (issue 5): reference and current of ROWS rows x 100 columns (80 numeric, 20
# categorical; 15 shifted), `keel monitor drift` vs Evidently 0.7.23's DataDriftPreset on the same
# Parquet files, same sitting. Evidently runs under the anchors' rss_guard.py so that a memory
# blow-up is stopped (exit 137) before the machine's OOM killer acts.
# Usage: bash bench/run_monitor_wide.sh [rows=5000000] [evidently RSS limit MiB=14000] [timeout s=3600]
# Needs: the Evidently venv (/tmp/anchors2/evidently, see ../shared/bench/anchors/setup-serving-monitoring.sh),
#        cargo build --release -p keel.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$(cd "$ROOT/../shared/bench/anchors" && pwd)}
WORK=${WORK:-/tmp/anchors2}
ROWS=${1:-5000000}
LIMIT_MIB=${2:-14000}
TIMEOUT_S=${3:-3600}
KEEL=${KEEL_BIN:-$ROOT/target/release/keel}
DATA=$WORK/wide
[[ -f $DATA/reference-$ROWS.parquet ]] || "$WORK/evidently/bin/python" "$ROOT/bench/gen_wide_drift.py" "$DATA" "$ROWS"
echo "== keel monitor drift ($ROWS rows x 100 columns)"
/usr/bin/time -f "keel wall %e s, peak RSS %M KB" "$KEEL" monitor drift \
  --reference "$DATA/reference-$ROWS.parquet" --current "$DATA/current-$ROWS.parquet" | tail -n 4
echo "== Evidently DataDriftPreset (RSS limit $LIMIT_MIB MiB, timeout $TIMEOUT_S s)"
start=$SECONDS
set +e
"$WORK/evidently/bin/python" "$ANCHORS/rss_guard.py" "$LIMIT_MIB" "$TIMEOUT_S" \
  "$WORK/evidently/bin/python" "$ANCHORS/evidently_drift.py" "$DATA" "$ROWS" "$WORK/evidently-wide-$ROWS.json" | cut -c1-400
status=${PIPESTATUS[0]}
set -e
echo "evidently exit $status after $((SECONDS - start)) s (137: stopped at the RSS limit, 124: timeout)"
