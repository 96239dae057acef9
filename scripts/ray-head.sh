#!/usr/bin/env bash
# The Ray head node the Ray-executor tests (`keel repro --executor ray`) run
# against: ray[default] from PyPI, in a venv of its own, started as a
# one-node cluster on 127.0.0.1 with its dashboard (which serves the Ray
# Jobs REST API Keel talks to). Used by .ci/run and by hand:
#
#   scripts/ray-head.sh start    install Ray if missing, start the head node (a no-op when it is up)
#   scripts/ray-head.sh stop     stop it (`ray stop --force`)
#   scripts/ray-head.sh status   exit 0 when the dashboard answers
#   scripts/ray-head.sh env      print the KEEL_TEST_RAY_ADDRESS the tests read
#
# Environment: KEEL_RAY_GCS_PORT (default 6380: 6379 is Redis's),
# KEEL_RAY_DASHBOARD_PORT (default 8265), KEEL_RAY_DIR (default
# ${TMPDIR:-/tmp}/keel-ray-head: the log of `ray start`), KEEL_RAY_VENV
# (default ~/.cache/keel/ray-venv), PYTHON (default python3).
#
# Stage commands run by Ray jobs see the environment of the head node's
# processes (this script's environment), not the one `keel repro` runs in.
set -euo pipefail

RAY_VERSION=2.60.0
GCS_PORT=${KEEL_RAY_GCS_PORT:-6380}
DASHBOARD_PORT=${KEEL_RAY_DASHBOARD_PORT:-8265}
DATA_DIR=${KEEL_RAY_DIR:-${TMPDIR:-/tmp}/keel-ray-head}
VENV=${KEEL_RAY_VENV:-$HOME/.cache/keel/ray-venv}
PYTHON=${PYTHON:-python3}
STAMP=$VENV/.keel-ray-version
LOG_FILE=$DATA_DIR/ray-start.log
DASHBOARD=http://127.0.0.1:$DASHBOARD_PORT
START_TIMEOUT_S=120

fail() {
  echo "error: $*" >&2
  exit 1
}

dashboard_answers() {
  curl --silent --fail --max-time 5 "$DASHBOARD/api/version" >/dev/null 2>&1
}

ensure_installed() {
  if [[ -x $VENV/bin/ray && -f $STAMP && "$(cat "$STAMP")" == "$RAY_VERSION" ]]; then
    return 0
  fi
  command -v "$PYTHON" >/dev/null || fail "$PYTHON not found: it runs the Ray head node"
  echo "installing ray[default]==$RAY_VERSION from PyPI into $VENV (once)"
  local start=$SECONDS
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV" || fail "could not create $VENV (is python3-venv installed?)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "ray[default]==$RAY_VERSION" ||
    fail "could not install ray[default]==$RAY_VERSION from PyPI"
  echo "$RAY_VERSION" >"$STAMP"
  echo "installed Ray in $((SECONDS - start))s"
}

start() {
  ensure_installed
  mkdir -p "$DATA_DIR"
  if dashboard_answers; then
    echo "Ray head node is up, dashboard on $DASHBOARD"
    return 0
  fi
  # 200 MB of object store is plenty: the jobs run shell commands, not Ray tasks.
  if ! RAY_USAGE_STATS_ENABLED=0 "$VENV/bin/ray" start --head \
    --port "$GCS_PORT" \
    --dashboard-host 127.0.0.1 --dashboard-port "$DASHBOARD_PORT" --include-dashboard true \
    --num-cpus 2 --object-store-memory 200000000 \
    --disable-usage-stats >"$LOG_FILE" 2>&1; then
    tail -n 30 "$LOG_FILE" >&2 || true
    fail "ray start failed (log: $LOG_FILE)"
  fi
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until dashboard_answers; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOG_FILE" >&2 || true
      fail "the Ray dashboard did not answer on $DASHBOARD within ${START_TIMEOUT_S}s (log: $LOG_FILE)"
    fi
    sleep 1
  done
  echo "Ray $RAY_VERSION head node is up: GCS on port $GCS_PORT, dashboard on $DASHBOARD"
}

stop() {
  if [[ -x $VENV/bin/ray ]]; then
    "$VENV/bin/ray" stop --force
  else
    echo "Ray is not installed in $VENV; nothing to stop"
  fi
}

print_env() {
  printf 'export %s=%q\n' KEEL_TEST_RAY_ADDRESS "${KEEL_TEST_RAY_ADDRESS:-$DASHBOARD}"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) dashboard_answers ;;
env) print_env ;;
*)
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
  ;;
esac
