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

# Throughput with a native load generator too (the Python one above saturates first).
if command -v wrk >/dev/null; then
  echo
  echo "### wrk, 8 connections, 2 threads, 15 s, random models (\`bench/registry_random.lua\`)"
  echo
  echo "| request | server | req/s | p50 ms | p99 ms |"
  echo "|---|---|---:|---:|---:|"
  for kind in alias download-uri; do
    for target in "mlflow $MLFLOW_URI" "keel $KEEL_URI"; do
      set -- $target
      wrk -t2 -c8 -d15s --latency -s "$BENCH_REPO/bench/registry_random.lua" "$2" -- "$kind" "$MODELS" |
        awk -v kind="$kind" -v name="$1" '
          /Requests\/sec/ { rps = $2 }
          $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
          END { printf "| %s | %s | %s | %s | %s |\n", kind, name, rps, p50, p99 }'
    done
  done
fi

