# Sourced by the bench scripts: build Keel, prepare the Python venv, and start MLflow's
# server and Keel's side by side on fresh SQLite databases under $BENCH_WORK.
# Both servers are stopped when the sourcing script exits.

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$BENCH_REPO/.venv}
MLFLOW_WORKERS=${MLFLOW_WORKERS:-4} # `mlflow server`'s own default
BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench.XXXXXX")
server_pids=()

stop_servers() {
  local pid
  for pid in "${server_pids[@]}"; do
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  done
  for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -z ${KEEP_BENCH_WORK:-} ]]; then rm -rf "$BENCH_WORK"; else echo "kept $BENCH_WORK"; fi
}
trap stop_servers EXIT

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

build_keel() {
  echo "==> cargo build --release -p keel" >&2
  (cd "$BENCH_REPO" && cargo build --release -p keel) >&2
}

ensure_venv() {
  local requirements=$BENCH_REPO/tests/e2e/requirements.txt stamp=$VENV/.requirements.sha256 wanted
  wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ -x $VENV/bin/mlflow && -f $stamp && "$(cat "$stamp")" == "$wanted" ]]; then return 0; fi
  echo "==> preparing $VENV (mlflow==3.17.2)" >&2
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  echo "$wanted" >"$stamp"
}

wait_healthy() {
  local name=$1 uri=$2 log=$3 attempt
  for attempt in $(seq 1800); do # up to ~3 minutes: mlflow starts slowly on a busy machine
    if curl -fsS "$uri/health" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "error: $name did not become healthy at $uri; last log lines:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

# start_servers: sets MLFLOW_URI and KEEL_URI.
start_servers() {
  local mlflow_port keel_port
  mlflow_port=$(free_port)
  keel_port=$(free_port)
  mkdir -p "$BENCH_WORK/mlart" "$BENCH_WORK/keelart"
  setsid "$VENV/bin/mlflow" server --host 127.0.0.1 --port "$mlflow_port" --workers "$MLFLOW_WORKERS" \
    --backend-store-uri "sqlite:///$BENCH_WORK/mlflow.db" \
    --artifacts-destination "$BENCH_WORK/mlart" --serve-artifacts \
    >"$BENCH_WORK/mlflow.log" 2>&1 &
  server_pids+=($!)
  setsid "$BENCH_REPO/target/release/keel" server --host 127.0.0.1 --port "$keel_port" \
    --backend-store-uri "sqlite:///$BENCH_WORK/keel.db" \
    --artifacts-destination "$BENCH_WORK/keelart" \
    >"$BENCH_WORK/keel.log" 2>&1 &
  server_pids+=($!)
  MLFLOW_URI=http://127.0.0.1:$mlflow_port
  KEEL_URI=http://127.0.0.1:$keel_port
  wait_healthy mlflow "$MLFLOW_URI" "$BENCH_WORK/mlflow.log"
  wait_healthy keel "$KEEL_URI" "$BENCH_WORK/keel.log"
  echo "==> mlflow server (workers=$MLFLOW_WORKERS) at $MLFLOW_URI, keel at $KEEL_URI; data in $BENCH_WORK" >&2
}
