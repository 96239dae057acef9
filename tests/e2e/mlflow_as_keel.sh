#!/usr/bin/env bash
# Stand-in for the `keel` binary that runs MLflow's own tracking server instead.
#
# It exists to check the e2e suite itself against the reference implementation:
#   KEEL_BIN=tests/e2e/mlflow_as_keel.sh .venv/bin/pytest -q tests/e2e -m "not beyond_mlflow"
# Every selected test must pass there; a failure means the test is wrong about MLflow's
# contract. Tests marked `beyond_mlflow` pin places where Keel deliberately does better
# (413 on huge bodies, infinities stored as infinities).
# Accepts the subset of `keel server` flags that conftest.py passes.
set -euo pipefail
[[ "${1:-}" == "server" ]] || { echo "usage: $0 server [flags]" >&2; exit 2; }
shift
host=${KEEL_HOST:-127.0.0.1} port=${KEEL_PORT:-5000}
store=${KEEL_BACKEND_STORE_URI:-} artifacts=${KEEL_ARTIFACTS_DESTINATION:-}
allowed=${KEEL_ALLOWED_HOSTS:-}
while (($#)); do
  case "$1" in
    --host) host=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --backend-store-uri) store=$2; shift 2 ;;
    --artifacts-destination) artifacts=$2; shift 2 ;;
    --allowed-hosts) allowed=$2; shift 2 ;;
    *) echo "mlflow_as_keel: unsupported flag $1" >&2; exit 2 ;;
  esac
done
if [[ -n "$allowed" ]]; then export MLFLOW_SERVER_ALLOWED_HOSTS=$allowed; fi
mlflow_bin="$(dirname "$(command -v python3)")/mlflow"
[[ -x "$mlflow_bin" ]] || mlflow_bin=mlflow
echo "mlflow_as_keel: listening on http://$host:$port" >&2
exec "$mlflow_bin" server --host "$host" --port "$port" --workers 1 \
  --backend-store-uri "$store" --artifacts-destination "$artifacts" --serve-artifacts
