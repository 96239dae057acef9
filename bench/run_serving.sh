#!/usr/bin/env bash
# Keel `serve` vs Seldon MLServer 1.7.1 (mlserver-sklearn), same models, same request bodies, same wrk
# matrix, same sitting. MLServer serves the pickles; Keel serves the same models exported to ONNX
# (native runtime, default settings: metrics on, inference log on for every request).
#
# Usage: bash bench/run_serving.sh [duration=20s] [runs=3]
# Needs: the anchors' environments (bash ../shared/bench/anchors/setup-serving-monitoring.sh),
#        the repo's .venv (scripts/test.sh creates it) and a release build (cargo build --release -p keel).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$(cd "$ROOT/../shared/bench/anchors" && pwd)}
WORK=${WORK:-/tmp/anchors2}
DUR=${1:-20s}
RUNS=${2:-3}
KEEL=${KEEL_BIN:-$ROOT/target/release/keel}
OUT=${OUT:-$WORK/serving-results}
mkdir -p "$OUT"

[[ -f $WORK/repo/rf/model.joblib ]] || "$WORK/mlserver/bin/python" "$ANCHORS/mlserver_train.py" "$WORK/repo"
KREPO=$WORK/keel-repo
mkdir -p "$KREPO"
"$ROOT/.venv/bin/python" "$ROOT/bench/export_serving_models.py" "$WORK/repo" "$KREPO"
cp "$WORK"/repo/body-b*.json "$KREPO/"

stop_pid() { kill "$1" 2>/dev/null || true; for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done; kill -9 "$1" 2>/dev/null || true; }

port_free() { ! curl -s -o /dev/null http://127.0.0.1:18080/v2/health/live; }
for run in $(seq 1 "$RUNS"); do
  port_free || { echo "port 18080 is taken; stop what runs there first"; exit 1; }
  echo "== run $run: MLServer"
  bash "$ANCHORS/mlserver_start.sh" "$WORK/repo"
  bash "$ANCHORS/mlserver_bench.sh" "$WORK/repo" "$OUT/mlserver-run$run" "$DUR"
  stop_pid "$(cat "$WORK/repo/mlserver.pid")"
  for _ in $(seq 1 50); do port_free && break; sleep 0.2; done

  echo "== run $run: keel serve"
  rm -rf "$KREPO/inference-log"
  # Job control gives the background job its own process group (pgid = pid), which is what
  # mlserver_bench.sh sums CPU over.
  set -m
  (cd "$KREPO" && exec "$KEEL" serve rf="$KREPO/rf.onnx" lr="$KREPO/lr.onnx" --port 18080 --grpc-port 18081 \
      --inference-log "$KREPO/inference-log" > "$KREPO/keel.log" 2>&1) &
  echo $! > "$KREPO/mlserver.pid"
  set +m
  for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18080/v2/models/rf/ready >/dev/null && break; sleep 0.1; done
  bash "$ANCHORS/mlserver_bench.sh" "$KREPO" "$OUT/keel-run$run" "$DUR"
  curl -s http://127.0.0.1:18080/metrics > "$OUT/keel-run$run/metrics.txt"
  stop_pid "$(cat "$KREPO/mlserver.pid")"
  for _ in $(seq 1 50); do port_free && break; sleep 0.2; done
done

echo "== MLServer"; python3 "$ANCHORS/mlserver_aggregate.py" "$OUT"/mlserver-run*/summary.txt
echo "== Keel";     python3 "$ANCHORS/mlserver_aggregate.py" "$OUT"/keel-run*/summary.txt
python3 "$ROOT/bench/server_side_latency.py" "$OUT"/keel-run*/metrics.txt
