#!/usr/bin/env bash
# Data transfer: `keel data push|pull|checkout` vs `dvc push|pull|checkout`, same
# generated tree, same sitting, each tool in its own git + .dvc repository.
#
#   TREE=big   bench/run_data_transfer.sh   20,000 files / 1 GiB (gen_dvc_tree.py big)
#   TREE=small bench/run_data_transfer.sh   200,000 files of 1-4 KiB (gen_dvc_tree.py small --files 200000)
#   TREE=one   bench/run_data_transfer.sh   one 4 GiB file of random bytes (S3 skipped by default)
#
# Per tool: `add data` (setup, timed once for reference), then
#   push to a local-directory remote        (remote emptied before each run)
#   pull from it                             (.dvc/cache and data/ deleted before each run)
#   checkout                                 (data/ deleted before each run)
#   push to the S3-compatible server         (scripts/s3-server.sh: moto; prefix emptied before each run)
#   pull from it                             (.dvc/cache and data/ deleted before each run)
# A step that takes under $REPEAT_UNDER seconds is run 3 times and the median kept.
# Each tool runs at its defaults (no --jobs): DVC 4 x cores for every remote,
# Keel the number of cores for a local remote and 16 for S3.
#
# Environment:
#   KEEL (default /work/tgt-bench/release/keel; not built here), DVC (default dvc on PATH)
#   S3=1|0 (default 1, 0 for TREE=one: moto keeps every object in memory)
#   STEP_TIMEOUT seconds per run of a step (default 900); a run that hits it is reported as ">N"
#   REPEAT_UNDER (default 10), WORK (default a new directory under ${TMPDIR:-/tmp}, removed at exit)
#   TOOLS (default "dvc keel"; one of them alone when the other ran in another sitting)
#   OUT: a directory to keep results.tsv, checks.txt, the remotes' listings and the log in
#   MOTO_PY: a python with boto3 to empty/list the S3 prefix (default scripts/s3-server.sh's venv)
set -uo pipefail

TREE=${TREE:-big}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEEL=${KEEL:-/work/tgt-bench/release/keel}
DVC=${DVC:-dvc}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
REPEAT_UNDER=${REPEAT_UNDER:-10}
MOTO_PY=${MOTO_PY:-${KEEL_S3_VENV:-$HOME/.cache/keel/moto-venv}/bin/python}
if [[ $TREE == one ]]; then S3=${S3:-0}; else S3=${S3:-1}; fi
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/keel-transfer-bench.XXXXXX")}
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
export DVC_NO_ANALYTICS=1
RUNID=$(date +%s)-$$
LOG=$WORK/log.txt
RES=$WORK/results.tsv # step \t tool \t value \t runs
: >"$RES"

[[ -x $KEEL ]] || {
  echo "no keel binary at $KEEL (build: cargo build --release -p keel)" >&2
  exit 1
}

if [[ $S3 == 1 ]]; then
  bash "$REPO/scripts/s3-server.sh" status || {
    echo "S3 server not up: bash scripts/s3-server.sh start (or S3=0)" >&2
    exit 1
  }
  eval "$(bash "$REPO/scripts/s3-server.sh" env)"
fi

# s3util list|clear PREFIX: list "key size" below s3://BUCKET/PREFIX/, or delete them all
s3util() {
  "$MOTO_PY" - "$1" "$2" <<'EOF'
import os, sys
import boto3
op, prefix = sys.argv[1], sys.argv[2].rstrip("/") + "/"
s3 = boto3.client("s3", endpoint_url=os.environ["KEEL_TEST_S3_ENDPOINT"], region_name="us-east-1",
                  aws_access_key_id=os.environ["KEEL_TEST_S3_ACCESS_KEY_ID"],
                  aws_secret_access_key=os.environ["KEEL_TEST_S3_SECRET_ACCESS_KEY"])
bucket = os.environ["KEEL_TEST_S3_BUCKET"]
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
if op == "list":
    for k, s in sorted(keys):
        print(k[len(prefix):], s)
else:
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k, _ in keys[i:i + 1000]]})
EOF
}

# run_once CMD...: wall seconds of one run in $T, exit code in $RC (124 = timed out)
run_once() {
  local start end
  start=$(date +%s.%N)
  timeout "$STEP_TIMEOUT" "$@" >>"$LOG" 2>&1
  RC=$?
  end=$(date +%s.%N)
  T=$(echo "$end - $start" | bc)
}

# measure STEP TOOL PREP CMD...: PREP (a shell function) rebuilds the state before each
# run; one run, or three and the median if the first took under $REPEAT_UNDER s.
measure() {
  local step=$1 tool=$2 prep=$3 runs=() i value
  shift 3
  for i in 1 2 3; do
    "$prep"
    echo "== $tool: $step (run $i): $*" >>"$LOG"
    run_once "$@"
    if ((RC != 0)); then
      if ((RC == 124)); then value=">$STEP_TIMEOUT"; else value="FAILED(exit $RC)"; fi
      echo "$tool $step: $value (see $LOG)" >&2
      tail -n 5 "$LOG" >&2
      printf '%s\t%s\t%s\t%s\n' "$step" "$tool" "$value" "$i" >>"$RES"
      return 1
    fi
    runs+=("$T")
    echo "$tool $step run $i: $(printf '%.2f' "$T") s" >&2
    if ((i == 1)) && (($(echo "$T >= $REPEAT_UNDER" | bc))); then break; fi
  done
  value=$(printf '%s\n' "${runs[@]}" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
  printf '%s\t%s\t%.2f\t%s\n' "$step" "$tool" "$value" "${#runs[@]}" >>"$RES"
}

# --- the tree --------------------------------------------------------------------------
echo "generating the $TREE tree in $WORK/tree" >&2
case $TREE in
big) python3 "$REPO/bench/gen_dvc_tree.py" big "$WORK/tree" >&2 ;;
small) python3 "$REPO/bench/gen_dvc_tree.py" small "$WORK/tree" --files 200000 >&2 ;;
one) mkdir -p "$WORK/tree" && head -c 4G /dev/urandom >"$WORK/tree/blob.bin" ;;
tiny) python3 "$REPO/bench/gen_dvc_tree.py" small "$WORK/tree" --files 300 >&2 ;; # smoke test
*)
  echo "TREE must be big, small, one (or tiny, a smoke test)" >&2
  exit 2
  ;;
esac
NFILES=$(find "$WORK/tree" -type f | wc -l)
SIZE=$(du -sh --apparent-size "$WORK/tree" | cut -f1)
sync

# --- one tool at a time (its repo is removed before the next: disk) -------------------------
for tool in ${TOOLS:-dvc keel}; do
  D=$WORK/$tool
  mkdir -p "$D/repo" && cd "$D/repo" || exit 1
  git init -q
  if [[ $tool == dvc ]]; then
    X=("$DVC")
    "$DVC" init -q && "$DVC" config core.analytics false && "$DVC" config core.check_update false &&
      "$DVC" config core.site_cache_dir "$D/site-cache"
  else
    X=("$KEEL" data)
    "$KEEL" data init >/dev/null
  fi
  # Each tool configures its own remotes (the same .dvc/config keys either way).
  "${X[@]}" remote add -d local "$D/remote" >/dev/null
  if [[ $S3 == 1 ]]; then
    PREFIX=bench-transfer/$RUNID/$TREE/$tool
    "${X[@]}" remote add s3 "s3://$KEEL_TEST_S3_BUCKET/$PREFIX" >/dev/null
    "${X[@]}" remote modify s3 endpointurl "$KEEL_TEST_S3_ENDPOINT" >/dev/null
    "${X[@]}" remote modify --local s3 access_key_id "$KEEL_TEST_S3_ACCESS_KEY_ID" >/dev/null
    "${X[@]}" remote modify --local s3 secret_access_key "$KEEL_TEST_S3_SECRET_ACCESS_KEY" >/dev/null
  fi
  # a real copy: add moves/links files into the cache and changes their modes
  cp -r "$WORK/tree" data
  sync

  noop() { :; }
  empty_local_remote() { rm -rf "$D/remote" && mkdir -p "$D/remote"; }
  empty_cache_and_data() { rm -rf .dvc/cache data && sync; }
  empty_data() { rm -rf data && sync; }
  empty_s3_prefix() { s3util clear "$PREFIX"; }

  if ! measure "add (setup)" "$tool" noop "${X[@]}" add data; then
    cd "$WORK" && rm -rf "$D"
    continue
  fi
  git add -A >/dev/null 2>&1

  if measure "push, local remote" "$tool" empty_local_remote "${X[@]}" push; then
    (cd "$D/remote" && find . -type f -printf '%P %s\n' | sort) >"$WORK/remote-local-$tool.txt"
    # the other tool's view of this remote: every object there?
    echo "-- after $tool push: dvc status -c -r local" >>"$WORK/checks.txt"
    "$DVC" status -c -r local >>"$WORK/checks.txt" 2>&1
    echo "-- after $tool push: keel data status -c -r local" >>"$WORK/checks.txt"
    "$KEEL" data status -c -r local >>"$WORK/checks.txt" 2>&1
    if measure "pull, local remote" "$tool" empty_cache_and_data "${X[@]}" pull; then
      if diff -rq "$WORK/tree" data >/dev/null; then
        echo "$tool pull (local): workspace identical to the tree" >>"$WORK/checks.txt"
      else
        echo "$tool pull (local): workspace DIFFERS from the tree" >>"$WORK/checks.txt"
      fi
      if measure "checkout (data/ deleted)" "$tool" empty_data "${X[@]}" checkout; then
        if diff -rq "$WORK/tree" data >/dev/null; then
          echo "$tool checkout: workspace identical to the tree" >>"$WORK/checks.txt"
        else
          echo "$tool checkout: workspace DIFFERS from the tree" >>"$WORK/checks.txt"
        fi
      fi
    fi
  fi
  rm -rf "$D/remote"

  if [[ $S3 == 1 ]] && [[ -d .dvc/cache ]]; then
    if measure "push, S3 (moto)" "$tool" empty_s3_prefix "${X[@]}" push -r s3; then
      s3util list "$PREFIX" >"$WORK/remote-s3-$tool.txt"
      echo "-- after $tool push to S3: dvc status -c -r s3" >>"$WORK/checks.txt"
      "$DVC" status -c -r s3 >>"$WORK/checks.txt" 2>&1
      echo "-- after $tool push to S3: keel data status -c -r s3" >>"$WORK/checks.txt"
      "$KEEL" data status -c -r s3 >>"$WORK/checks.txt" 2>&1
      if measure "pull, S3 (moto)" "$tool" empty_cache_and_data "${X[@]}" pull -r s3; then
        if diff -rq "$WORK/tree" data >/dev/null; then
          echo "$tool pull (S3): workspace identical to the tree" >>"$WORK/checks.txt"
        else
          echo "$tool pull (S3): workspace DIFFERS from the tree" >>"$WORK/checks.txt"
        fi
      fi
    fi
    s3util clear "$PREFIX"
  fi
  cd "$WORK" && rm -rf "$D"
done

# --- report ------------------------------------------------------------------------------
get() { awk -F'\t' -v s="$1" -v t="$2" '$1 == s && $2 == t {print $3 " (" $4 ")"}' "$RES"; }
val() { awk -F'\t' -v s="$1" -v t="$2" '$1 == s && $2 == t {print $3}' "$RES"; }
echo "### $TREE tree: $NFILES files, $SIZE; $(nproc) cores; $(date -u '+%F %H:%M UTC')"
echo "dvc $("$DVC" --version), $("$KEEL" --version 2>/dev/null)"
echo
echo "| step | dvc s (runs) | keel s (runs) | keel vs dvc |"
echo "|---|---:|---:|---:|"
cut -f1 "$RES" | awk '!seen[$0]++' | while read -r step; do
  d=$(val "$step" dvc) k=$(val "$step" keel) ratio=""
  if [[ $d =~ ^[0-9.]+$ ]] && [[ $k =~ ^[0-9.]+$ ]]; then
    ratio=$(echo "scale=2; $d / $k" | bc | sed 's/^\./0./')x
  elif [[ $d == '>'* ]] && [[ $k =~ ^[0-9.]+$ ]]; then
    ratio=">$(echo "scale=1; ${d#>} / $k" | bc)x"
  fi
  echo "| $step | $(get "$step" dvc) | $(get "$step" keel) | $ratio |"
done
echo
echo "ratio = dvc seconds / keel seconds (above 1: keel faster); (n) = runs, median kept"
echo
for kind in local s3; do
  if [[ -f $WORK/remote-$kind-dvc.txt && -f $WORK/remote-$kind-keel.txt ]]; then
    if cmp -s "$WORK/remote-$kind-dvc.txt" "$WORK/remote-$kind-keel.txt"; then
      echo "$kind remote after push: same $(wc -l <"$WORK/remote-$kind-dvc.txt") objects (paths and sizes) from both tools"
    else
      echo "$kind remote after push: DIFFERENT objects (dvc $(wc -l <"$WORK/remote-$kind-dvc.txt"), keel $(wc -l <"$WORK/remote-$kind-keel.txt"))"
    fi
  fi
done
echo
echo '```'
cat "$WORK/checks.txt"
echo '```'
if [[ -n ${OUT:-} ]]; then mkdir -p "$OUT" && cp "$WORK"/*.txt "$RES" "$OUT"/; fi
