#!/usr/bin/env bash
# Raw HTTP load (bench/load_http.py) against MLflow's tracking server and Keel, same sitting.
#
#   bench/run_http.sh                      8 clients, 25 log-batch requests each, 10k seeded runs
#   SEED_RUNS=100000 bench/run_http.sh     the full-size search (seeding MLflow takes long)
#   SEED_SQL=1 SEED_RUNS=100000 bench/run_http.sh   seed with SQL into each server's own schema
#   ONLY=search QUERIES=3 ...              one part only (log-batch or search)
set -euo pipefail

CLIENTS=${CLIENTS:-8}
BATCHES=${BATCHES:-25}
SEED_RUNS=${SEED_RUNS:-10000}
QUERIES=${QUERIES:-50}

source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
build_keel
ensure_venv
start_servers

echo "mlflow server --workers $MLFLOW_WORKERS vs keel (release), both on SQLite; $(nproc) cores; $(date -u +%F)"
"$VENV/bin/python" "$BENCH_REPO/bench/load_http.py" \
  --target "mlflow=$MLFLOW_URI" --target "keel=$KEEL_URI" \
  --clients "$CLIENTS" --batches "$BATCHES" --seed-runs "$SEED_RUNS" --queries "$QUERIES" \
  ${ONLY:+--only "$ONLY"} ${SEED_SQL:+--seed-db "mlflow=$BENCH_WORK/mlflow.db" --seed-db "keel=$BENCH_WORK/keel.db"}
