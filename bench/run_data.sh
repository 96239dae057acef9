#!/usr/bin/env bash
# Data versioning: `keel data` vs `dvc` (and the parallel md5sum floor) on the same
# generated tree, same sitting. Steps: add, no-change status, status after one change.
#
#   bench/run_data.sh                        20,000 files / 1 GiB (TREE=big)
#   TREE=small bench/run_data.sh             100,000 files of 1-4 KiB
#   TREE=small FILES=200000 bench/run_data.sh
#   RUNS=3 bench/run_data.sh                 every step 3 times (fresh copies), medians
#
# Needs `dvc` on PATH or DVC=/path/to/dvc (pip install dvc==3.67.1). Uses
# KEEL=/path/to/keel, else builds `keel` in release (honouring CARGO_TARGET_DIR).
set -euo pipefail

TREE=${TREE:-big}
RUNS=${RUNS:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DVC=${DVC:-dvc}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keel-data-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export DVC_NO_ANALYTICS=1

if [ -z "${KEEL:-}" ]; then
  (cd "$REPO" && cargo build --release -p keel) >&2
  KEEL=${CARGO_TARGET_DIR:-$REPO/target}/release/keel
fi

# t NAME CMD...: wall seconds of CMD, appended to $WORK/times as "NAME<TAB>seconds".
t() {
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  printf '%s\t%s\n' "$name" "$(echo "$end - $start" | bc)" >>"$WORK/times"
}

gen_args=("$TREE" "$WORK/tree")
[ -n "${FILES:-}" ] && gen_args+=(--files "$FILES")
python3 "$REPO/bench/gen_dvc_tree.py" "${gen_args[@]}" >&2
: >"$WORK/times"
: >"$WORK/notes"
floor="md5sum floor (find | xargs -0 -n 200 -P $(nproc) md5sum)"
for run_idx in $(seq "$RUNS"); do
  rm -rf "$WORK/keel" "$WORK/dvc" "$WORK/dvc-site-cache"
  for tool in keel dvc; do
    mkdir -p "$WORK/$tool" && cp -r "$WORK/tree" "$WORK/$tool/data"
    (cd "$WORK/$tool" && git init -q)
  done
  (cd "$WORK/dvc" && "$DVC" init -q && "$DVC" config core.analytics false &&
    "$DVC" config core.site_cache_dir "$WORK/dvc-site-cache")
  (cd "$WORK/keel" && "$KEEL" data init >/dev/null)
  sync
  echo "run $run_idx of $RUNS" >&2
  t "$floor" sh -c "cd '$WORK/tree' && find . -type f -print0 | xargs -0 -n 200 -P $(nproc) md5sum"
  t "dvc add data" sh -c "cd '$WORK/dvc' && '$DVC' add -q data"
  t "keel data add data" sh -c "cd '$WORK/keel' && '$KEEL' data add data"
  sync
  t "dvc status (no change)" sh -c "cd '$WORK/dvc' && '$DVC' status"
  t "keel data status (no change)" sh -c "cd '$WORK/keel' && '$KEEL' data status"
  first=$(cd "$WORK/tree" && find . -type f -print -quit)
  echo changed >>"$WORK/dvc/data/$first"
  echo changed >>"$WORK/keel/data/$first"
  t "dvc status (one file changed)" sh -c "cd '$WORK/dvc' && '$DVC' status"
  t "keel data status (one file changed)" sh -c "cd '$WORK/keel' && '$KEEL' data status"
  # What the next no-change status costs (the state saved by the one above).
  t "keel data status (no change, after the one-change status)" sh -c "cd '$WORK/keel' && '$KEEL' data status"
  if cmp -s "$WORK/dvc/data.dvc" "$WORK/keel/data.dvc"; then
    echo "run $run_idx: data.dvc written by keel and by dvc: identical bytes" >>"$WORK/notes"
  else
    echo "run $run_idx: data.dvc written by keel and by dvc: DIFFERENT" >>"$WORK/notes"
  fi
done

echo "### $TREE tree: $(find "$WORK/tree" -type f | wc -l) files, $(du -sh "$WORK/tree" | cut -f1); $(nproc) cores; $(date -u +%F); median of $RUNS"
echo
echo "| step | seconds | runs |"
echo "|---|---:|---|"
python3 - "$WORK/times" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, seconds = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append(float(seconds))
for name, values in rows.items():
    runs = " ".join(f"{value:.3f}" for value in values)
    print(f"| {name} | {statistics.median(values):.3f} | {runs} |")
PY
echo
cat "$WORK/notes"
