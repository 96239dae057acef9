#!/usr/bin/env bash
# The S3-compatible server the data-remote tests run against: moto's server
# (moto[server] from PyPI, in a venv of its own), on 127.0.0.1 with request
# signing enforced: at start it makes an IAM user allowed s3:*, an access key
# for it (kept in $KEEL_S3_DIR/credentials) and the bucket. Used by .ci/run
# and by hand:
#
#   scripts/s3-server.sh start    install moto if missing, start it (a no-op when it is up)
#   scripts/s3-server.sh stop     stop the server this script started
#   scripts/s3-server.sh status   exit 0 when the server answers
#   scripts/s3-server.sh env      print the KEEL_TEST_S3_* variables the tests read
#
# Environment: KEEL_S3_PORT (default 9000), KEEL_S3_DIR (default
# ${TMPDIR:-/tmp}/keel-s3-server: credentials, log, pid file), KEEL_S3_VENV
# (default ~/.cache/keel/moto-venv), PYTHON (default python3).
#
# Why moto and not s3s-fs (crates.io): s3s-fs answers a HEAD on a key that is
# a "directory" of its file tree (`<prefix>/files/md5`, which `dvc pull`
# probes first) with a 500, so dvc cannot pull from it.
set -euo pipefail

MOTO_VERSION=5.2.5
PORT=${KEEL_S3_PORT:-9000}
DATA_DIR=${KEEL_S3_DIR:-${TMPDIR:-/tmp}/keel-s3-server}
VENV=${KEEL_S3_VENV:-$HOME/.cache/keel/moto-venv}
PYTHON=${PYTHON:-python3}
PID_FILE=$DATA_DIR/moto.pid
LOG_FILE=$DATA_DIR/moto.log
CREDENTIALS=$DATA_DIR/credentials
BUCKET=keel-test

fail() {
  echo "error: $*" >&2
  exit 1
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

our_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ensure_installed() {
  if [[ -x $VENV/bin/moto_server ]] &&
    [[ "$("$VENV/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" == "$MOTO_VERSION" ]]; then
    return 0
  fi
  command -v "$PYTHON" >/dev/null || fail "$PYTHON not found: it runs the S3 test server (moto)"
  echo "installing moto[server]==$MOTO_VERSION from PyPI into $VENV (once)"
  local start=$SECONDS
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV" || fail "could not create $VENV (is python3-venv installed?)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" ||
    fail "could not install moto[server]==$MOTO_VERSION from PyPI"
  echo "installed moto in $((SECONDS - start))s"
}

# The first three requests are let through unsigned (moto's
# INITIAL_NO_AUTH_ACTION_COUNT): they make the user, its policy and its key.
bootstrap() {
  "$VENV/bin/python" - "http://127.0.0.1:$PORT" "$BUCKET" "$CREDENTIALS" <<'EOF'
import json, sys
import boto3

endpoint, bucket, credentials = sys.argv[1:]
anonymous = dict(endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam = boto3.client("iam", **anonymous)
iam.create_user(UserName="keel-test")
iam.put_user_policy(UserName="keel-test", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="keel-test")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
with open(credentials, "w") as out:
    out.write(f"{key['AccessKeyId']}\n{key['SecretAccessKey']}\n")
EOF
}

start() {
  ensure_installed
  mkdir -p "$DATA_DIR"
  if our_pid >/dev/null && port_open && [[ -s $CREDENTIALS ]]; then
    echo "S3 server (moto) is up on 127.0.0.1:$PORT"
    return 0
  fi
  if port_open; then
    fail "127.0.0.1:$PORT is taken by another process; set KEEL_S3_PORT to another port"
  fi
  rm -f "$CREDENTIALS"
  INITIAL_NO_AUTH_ACTION_COUNT=3 nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" \
    </dev/null >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  local attempt
  for attempt in $(seq 100); do
    port_open && break
    our_pid >/dev/null || break
    sleep 0.2
  done
  if ! port_open; then
    tail -n 20 "$LOG_FILE" >&2 || true
    fail "moto did not come up on 127.0.0.1:$PORT (log: $LOG_FILE)"
  fi
  bootstrap || fail "could not create the test user, key and bucket on the S3 server (log: $LOG_FILE)"
  echo "S3 server (moto $MOTO_VERSION) is up on 127.0.0.1:$PORT, bucket '$BUCKET', key in $CREDENTIALS"
}

stop() {
  local pid
  if pid=$(our_pid); then
    kill "$pid"
    rm -f "$PID_FILE" "$CREDENTIALS"
    echo "stopped moto ($pid)"
  else
    echo "no S3 server started by this script is running"
  fi
}

print_env() {
  local key_id="" secret=""
  if [[ -s $CREDENTIALS ]]; then
    { read -r key_id && read -r secret; } <"$CREDENTIALS"
  fi
  printf 'export %s=%q\n' \
    KEEL_TEST_S3_ENDPOINT "${KEEL_TEST_S3_ENDPOINT:-http://127.0.0.1:$PORT}" \
    KEEL_TEST_S3_BUCKET "${KEEL_TEST_S3_BUCKET:-$BUCKET}" \
    KEEL_TEST_S3_ACCESS_KEY_ID "${KEEL_TEST_S3_ACCESS_KEY_ID:-$key_id}" \
    KEEL_TEST_S3_SECRET_ACCESS_KEY "${KEEL_TEST_S3_SECRET_ACCESS_KEY:-$secret}"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) port_open ;;
env) print_env ;;
*)
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
  ;;
esac
