#!/usr/bin/env bash
# Runs bench/tracking_workload.py (the real mlflow client) against MLflow's own tracking
# server and against Keel, N times each in alternating order, and prints a markdown table
# of the median time of every phase.
#
#   bench/run_tracking.sh                  N=3, 200 runs, 8 threads, 50 steps
#   N=5 RUNS=400 bench/run_tracking.sh
#
# Raw JSON lines are kept under bench/results/ (git-ignored).
set -euo pipefail

N=${N:-3}
RUNS=${RUNS:-200}
THREADS=${THREADS:-8}
STEPS=${STEPS:-50}

source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
build_keel
ensure_venv
start_servers

results=$BENCH_REPO/bench/results/tracking-$(date +%Y%m%d-%H%M%S)
mkdir -p "$results"
run_workload() {
  local name=$1 uri=$2 iteration=$3
  echo "==> $name, iteration $iteration" >&2
  MLFLOW_DISABLE_TELEMETRY=true "$VENV/bin/python" "$BENCH_REPO/bench/tracking_workload.py" "$uri" \
    --runs "$RUNS" --threads "$THREADS" --steps "$STEPS" ${SKIP_REGISTRY:+--skip-registry} \
    2>"$results/$name-$iteration.err" | tail -n1 >"$results/$name-$iteration.json" ||
    echo "warning: $name iteration $iteration failed; see $results/$name-$iteration.err" >&2
}
for iteration in $(seq "$N"); do
  if ((iteration % 2)); then
    run_workload mlflow "$MLFLOW_URI" "$iteration"
    run_workload keel "$KEEL_URI" "$iteration"
  else
    run_workload keel "$KEEL_URI" "$iteration"
    run_workload mlflow "$MLFLOW_URI" "$iteration"
  fi
done

echo
echo "tracking workload: $RUNS runs x 20 metrics x $STEPS steps, $THREADS threads, N=$N;" \
  "mlflow server --workers $MLFLOW_WORKERS; both on SQLite; $(nproc) cores; $(date -u +%F)"
echo
"$VENV/bin/python" "$BENCH_REPO/bench/summarize.py" "$results"
