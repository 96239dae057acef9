#!/usr/bin/env bash
# Model-registry read load (bench/load_registry.py) against MLflow's server and Keel.
#
#   bench/run_registry.sh                    10,000 models x 10 versions, 8 clients
#   MODELS=1000 REQUESTS=200 bench/run_registry.sh
set -euo pipefail

MODELS=${MODELS:-10000}
VERSIONS=${VERSIONS:-10}
REQUESTS=${REQUESTS:-400}
CLIENTS=${CLIENTS:-8}

source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
build_keel
ensure_venv
start_servers

echo "mlflow server --workers $MLFLOW_WORKERS vs keel (release), both on SQLite; $(nproc) cores; $(date -u +%F)"
"$VENV/bin/python" "$BENCH_REPO/bench/load_registry.py" \
  --mlflow "$MLFLOW_URI:$BENCH_WORK/mlflow.db" --keel "$KEEL_URI:$BENCH_WORK/keel.db" \
  --models "$MODELS" --versions "$VERSIONS" --requests "$REQUESTS" --clients "$CLIENTS"
