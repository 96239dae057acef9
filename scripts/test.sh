#!/usr/bin/env bash
# The one test command: formatting, lints, Rust tests, then the end-to-end suite
# (the real `mlflow` client against a freshly built `keel`).
#
#   scripts/test.sh                 everything
#   scripts/test.sh -k artifacts    extra arguments go to pytest
#
# Environment: PYTHON (default python3) builds the .venv; KEEL_BIN overrides the
# binary under test (default target/debug/keel); KEEL_TEST_S3_* point the S3
# remote tests at a server (default: the one scripts/s3-server.sh starts).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv
REQUIREMENTS=tests/e2e/requirements.txt
STAMP=$VENV/.requirements.sha256
PYTHON=${PYTHON:-python3}

timings=()
suite_start=$SECONDS

fail() {
  echo "error: $*" >&2
  exit 1
}

report_timings() {
  local status=$?
  echo
  echo "==> step timings"
  for line in "${timings[@]}"; do echo "    $line"; done
  echo "    total: $((SECONDS - suite_start))s"
  if ((status == 0)); then echo "==> all checks passed"; else echo "==> FAILED (exit $status)" >&2; fi
}
trap report_timings EXIT

# step NAME HINT CMD...: runs CMD, records its time, and on failure says what to do.
step() {
  local name=$1 hint=$2
  shift 2
  echo
  echo "==> $name"
  local start=$SECONDS
  if ! "$@"; then
    timings+=("$name: FAILED after $((SECONDS - start))s")
    fail "$name failed: $hint"
  fi
  timings+=("$name: $((SECONDS - start))s")
}

ensure_venv() {
  local wanted
  wanted=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [[ -x $VENV/bin/python && -f $STAMP && "$(cat "$STAMP")" == "$wanted" ]]; then
    echo "$VENV is up to date with $REQUIREMENTS"
    return 0
  fi
  command -v "$PYTHON" >/dev/null || { echo "$PYTHON not found" >&2; return 1; }
  if [[ ! -x $VENV/bin/python ]]; then
    echo "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV" || return 1
  fi
  echo "installing $REQUIREMENTS into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" || return 1
  echo "$wanted" >"$STAMP"
}

run_e2e() {
  KEEL_BIN=${KEEL_BIN:-target/debug/keel} "$VENV/bin/python" -m pytest -q tests/e2e "$@"
}

command -v cargo >/dev/null || fail "cargo not found: install Rust with rustup (https://rustup.rs)"

# Where the data-remote tests find the S3 server (`scripts/s3-server.sh start`
# runs it; .ci/run does so); values already set win.
eval "$(bash scripts/s3-server.sh env)"
# Where the Ray executor tests find the Ray dashboard (`scripts/ray-head.sh start`).
eval "$(bash scripts/ray-head.sh env)"

step "cargo fmt" "run 'cargo fmt --all' and commit the result" \
  cargo fmt --all -- --check
step "cargo clippy" "fix the warnings above (they are errors here)" \
  cargo clippy --workspace --all-targets -- -D warnings
# The Python runtime's Rust tests need the venv (mlflow, scikit-learn) too.
step "python venv" "could not create $VENV or install $REQUIREMENTS (is python3-venv installed? is PyPI reachable?)" \
  ensure_venv
step "cargo test" "see the failing tests above" \
  cargo test --workspace
step "cargo build -p keel" "the server binary does not build" \
  cargo build -p keel
step "e2e (pytest tests/e2e)" "see the failures above; each failure shows the tail of the keel server log" \
  run_e2e "$@"
