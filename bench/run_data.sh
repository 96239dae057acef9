#!/usr/bin/env bash
# Data versioning: `keel data` vs `dvc` (and the parallel md5sum floor) on the same
# generated tree, same sitting. Steps: add, no-change status, status after one change.
#
#   bench/run_data.sh               20,000 files / 1 GiB (TREE=big)
#   TREE=small bench/run_data.sh    100,000 files of 1-4 KiB
#
# Needs `dvc` on PATH or DVC=/path/to/dvc (pip install dvc==3.67.1).
set -euo pipefail

TREE=${TREE:-big}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DVC=${DVC:-dvc}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keel-data-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export DVC_NO_ANALYTICS=1

(cd "$REPO" && cargo build --release -p keel) >&2
KEEL=$REPO/target/release/keel

# t NAME CMD...: wall seconds of CMD, printed as a table row.
t() {
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  printf '| %s | %.2f |\n' "$name" "$(echo "$end - $start" | bc)"
}

python3 "$REPO/bench/gen_dvc_tree.py" "$TREE" "$WORK/tree" >&2
for tool in keel dvc; do
  mkdir -p "$WORK/$tool" && cp -r "$WORK/tree" "$WORK/$tool/data"
  (cd "$WORK/$tool" && git init -q)
done
(cd "$WORK/dvc" && "$DVC" init -q && "$DVC" config core.analytics false &&
  "$DVC" config core.site_cache_dir "$WORK/dvc-site-cache")
(cd "$WORK/keel" && "$KEEL" data init >/dev/null)
sync

echo "### $TREE tree: $(find "$WORK/tree" -type f | wc -l) files, $(du -sh "$WORK/tree" | cut -f1); $(nproc) cores; $(date -u +%F)"
echo
echo "| step | seconds |"
echo "|---|---:|"
t "md5sum floor (find | xargs -0 -n 200 -P $(nproc) md5sum)" \
  sh -c "cd '$WORK/tree' && find . -type f -print0 | xargs -0 -n 200 -P $(nproc) md5sum"
t "dvc add data" sh -c "cd '$WORK/dvc' && '$DVC' add -q data"
t "keel data add data" sh -c "cd '$WORK/keel' && '$KEEL' data add data"
t "dvc status (no change)" sh -c "cd '$WORK/dvc' && '$DVC' status"
t "keel data status (no change)" sh -c "cd '$WORK/keel' && '$KEEL' data status"
first=$(cd "$WORK/tree" && find . -type f -print -quit)
echo changed >>"$WORK/dvc/data/$first"
echo changed >>"$WORK/keel/data/$first"
t "dvc status (one file changed)" sh -c "cd '$WORK/dvc' && '$DVC' status"
t "keel data status (one file changed)" sh -c "cd '$WORK/keel' && '$KEEL' data status"
if cmp -s "$WORK/dvc/data.dvc" "$WORK/keel/data.dvc"; then
  echo
  echo "data.dvc written by keel and by dvc: identical bytes"
else
  echo
  echo "data.dvc written by keel and by dvc: DIFFERENT" >&2
fi
