#!/usr/bin/env bash
# Pipelines (issue 8): a generated 200-stage dvc.yaml (a chain of 20 layers of 10 stages, each
# stage reading one file of the layer before and writing one), timed for a no-op `repro` and a
# `status` once everything is up to date, Keel vs `dvc` on the same repository; then 8 independent
# stages that each sleep 2 s, wall time of `keel repro --jobs 1/2/4` (DVC runs stages one at a time).
# Usage: bash bench/run_pipeline.sh      Needs: cargo build --release -p keel; DVC (DVC=path/to/dvc,
# default .venv/bin/dvc) and hyperfine (apt install hyperfine).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEEL=${KEEL_BIN:-$ROOT/target/release/keel}
DVC=${DVC:-$ROOT/.venv/bin/dvc}
WORK=${WORK:-/tmp/keel-bench-pipeline}
rm -rf "$WORK" && mkdir -p "$WORK/chain" "$WORK/sleep"

cd "$WORK/chain"
git init -q && "$DVC" init -q
mkdir -p data && echo seed > data/l0.txt
{
  echo "stages:"
  for layer in $(seq 1 20); do
    for i in $(seq 0 9); do
      if ((layer == 1)); then dep=data/l0.txt; else dep=out/l$((layer - 1))_$i.txt; fi
      echo "  s${layer}_$i:"
      echo "    cmd: mkdir -p out && cat $dep > out/l${layer}_$i.txt && echo $layer-$i >> out/l${layer}_$i.txt"
      echo "    deps: [$dep]"
      echo "    outs: [out/l${layer}_$i.txt]"
    done
  done
} > dvc.yaml
git add -A && git commit -qm pipeline
echo "== first repro of 200 stages"
/usr/bin/time -f "keel repro (200 stages run) wall %e s" "$KEEL" repro --jobs 2 > /dev/null
echo "== no-op repro and status: keel vs dvc (hyperfine, same repository)"
hyperfine --warmup 1 --runs 5 --export-markdown "$WORK/noop.md" \
  "$KEEL repro" "$DVC repro" "$KEEL status" "$DVC status"
cat "$WORK/noop.md"

cd "$WORK/sleep"
git init -q && "$DVC" init -q
{
  echo "stages:"
  for i in $(seq 1 8); do
    echo "  sleep$i:"
    echo "    cmd: sleep 2 && echo $i > s$i.txt"
    echo "    outs: [s$i.txt]"
  done
} > dvc.yaml
git add -A && git commit -qm sleeps
echo "== 8 independent stages of 2 s"
for jobs in 1 2 4; do
  rm -f s*.txt dvc.lock
  start=$(date +%s.%N)
  "$KEEL" repro --jobs "$jobs" > /dev/null
  echo "keel repro --jobs $jobs: $(echo "$(date +%s.%N) - $start" | bc) s"
done
rm -f s*.txt dvc.lock
start=$(date +%s.%N)
"$DVC" repro > /dev/null
echo "dvc repro: $(echo "$(date +%s.%N) - $start" | bc) s"
