#!/usr/bin/env bash
# Keel's feature store vs Feast 0.67 (local provider: file offline store, sqlite online store)
# on the same generated repository, same machine, same sitting.
# Data: ../shared/bench/anchors/gen_feast_repo.py — 5 views x 10 Float32 features, ENTITIES drivers,
# 10 rows per driver per view, ttl 7 days, entity table of ENTITY_ROWS rows.
#
# Usage: bash bench/run_features.sh [gen|hist|mat|serve|all] (default all)
# Env:   ENTITIES (200000), ROWS_PER_ENTITY (10), ENTITY_ROWS (100000), FEAST_VENV (/tmp/feastvenv), WORK (/tmp/featbench),
#        KEEL_BIN (target/release/keel), SKIP_FEAST=1 to time Keel alone (e.g. at sizes Feast cannot do)
# Needs: python3 -m venv /tmp/feastvenv && /tmp/feastvenv/bin/pip install feast==0.67.0;
#        cargo build --release -p keel
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$(cd "$ROOT/../shared/bench/anchors" && pwd)}
FEAST_VENV=${FEAST_VENV:-/tmp/feastvenv}
WORK=${WORK:-/tmp/featbench}
ENTITIES=${ENTITIES:-200000}
ENTITY_ROWS=${ENTITY_ROWS:-100000}
ROWS_PER_ENTITY=${ROWS_PER_ENTITY:-10}
KEEL=${KEEL_BIN:-$ROOT/target/release/keel}
REPO=$WORK/repo-$ENTITIES-$ROWS_PER_ENTITY-$ENTITY_ROWS
MODE=${1:-all}
export FEAST_USAGE=False
FEATURES=$(python3 -c 'print(",".join(f"fv{k}:v{k}_f{j}" for k in range(5) for j in range(10)))')

timed() { # timed LABEL CMD...: wall seconds and peak RSS of CMD
  local label=$1; shift
  /usr/bin/time -f "$label: wall %e s, peak RSS %M KB" "$@"
}

gen() {
  rm -rf "$REPO"; mkdir -p "$WORK"
  "$FEAST_VENV/bin/python" "$ANCHORS/gen_feast_repo.py" "$REPO" --entities "$ENTITIES" \
    --rows-per-entity "$ROWS_PER_ENTITY" --entity-rows "$ENTITY_ROWS"
  # The same definitions for Keel, in YAML (Feast reads features.py, Keel reads *.yaml).
  python3 - "$REPO" <<'PY'
import sys
lines = ["entities:", "  - {name: driver, join_keys: [driver_id], value_type: INT64}", "sources:"]
for k in range(5):
    lines += [f"  - {{name: fv{k}_source, path: data/fv{k}.parquet, timestamp_field: event_timestamp, created_timestamp_column: created}}"]
lines += ["feature_views:"]
for k in range(5):
    lines += [f"  - name: fv{k}", "    entities: [driver]", "    ttl: 7d", f"    source: fv{k}_source", "    schema:"]
    lines += [f"      - {{name: v{k}_f{j}, dtype: Float32}}" for j in range(10)]
open(sys.argv[1] + "/keel_features.yaml", "w").write("\n".join(lines) + "\n")
PY
  # Keel keeps its registry and online store apart from Feast's.
  mkdir -p "$REPO/keel"
  sed -e 's#data/registry.db#keel/registry.db#' -e 's#data/online_store.db#keel/online_store.db#' \
    "$REPO/feature_store.yaml" > "$REPO/keel/feature_store.yaml.in"
  (cd "$REPO" && "$FEAST_VENV/bin/feast" apply >/dev/null)
}

# Keel reads the repository with its own feature_store.yaml; swap it in for Keel's commands.
keel_repo() { # keel_repo CMD...: runs keel features in $REPO with Keel's config
  cp "$REPO/feature_store.yaml" "$REPO/keel/feast_store.yaml"
  cp "$REPO/keel/feature_store.yaml.in" "$REPO/feature_store.yaml"
  local rc=0
  "$@" || rc=$?
  cp "$REPO/keel/feast_store.yaml" "$REPO/feature_store.yaml"
  return $rc
}

hist() {
  keel_repo "$KEEL" features -r "$REPO" apply >/dev/null
  if [[ -z ${SKIP_FEAST:-} ]]; then
    echo "== Feast get_historical_features ($ENTITY_ROWS entity rows x 50 features)"
    (cd "$REPO" && timed "feast hist" "$FEAST_VENV/bin/python" "$ANCHORS/feast_hist.py" "$REPO" | grep -E "entity_rows|retrieval")
  fi
  echo "== keel features get-historical"
  keel_repo timed "keel hist" "$KEEL" features -r "$REPO" get-historical --entities "$REPO/data/entity_df.parquet" \
    --features "$FEATURES" -o "$WORK/keel_training.parquet"
  "$FEAST_VENV/bin/python" - "$WORK/keel_training.parquet" <<'PY'
import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]); feats = [c for c in t.column_names if c.startswith("v")]
nulls = sum(t.column(c).null_count for c in feats) / (t.num_rows * len(feats))
print(f"keel result: {t.num_rows} rows x {len(feats)} features, null fraction {nulls:.4f}")
PY
}

mat() {
  keel_repo "$KEEL" features -r "$REPO" apply >/dev/null
  rm -f "$REPO/keel/online_store.db"*
  if [[ -z ${SKIP_FEAST:-} ]]; then
    echo "== feast materialize (30 days)"
    rm -f "$REPO/data/online_store.db" "$REPO/data/registry.db"
    (cd "$REPO" && "$FEAST_VENV/bin/feast" apply >/dev/null && timed "feast materialize" "$FEAST_VENV/bin/feast" materialize 2025-01-01T00:00:00 2025-01-31T00:00:00 >/dev/null)
  fi
  echo "== keel features materialize (30 days)"
  keel_repo timed "keel materialize" "$KEEL" features -r "$REPO" materialize 2025-01-01T00:00:00 2025-01-31T00:00:00 >/dev/null
}

serve_one() { # serve_one NAME CMD...: start a server on 6566, load it, stop it
  local name=$1; shift
  "$@" > "$WORK/$name-serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do curl -sf -o /dev/null http://127.0.0.1:6566/health && break; sleep 1; done
  echo "== $name: 2000 sequential requests, 50 features, batch 1 and 100"
  "$FEAST_VENV/bin/python" "$ANCHORS/feast_serve_load.py" --n 2000 --warmup 50 --batch 1 --batch 100 \
    --entities "$ENTITIES" --out "$WORK/$name-serve.json" | grep -v shape
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

serve() {
  if [[ -z ${SKIP_FEAST:-} ]]; then
    (cd "$REPO" && serve_one feast "$FEAST_VENV/bin/feast" serve -h 127.0.0.1 -p 6566 --no-access-log)
  fi
  cp "$REPO/feature_store.yaml" "$REPO/keel/feast_store.yaml"
  cp "$REPO/keel/feature_store.yaml.in" "$REPO/feature_store.yaml"
  serve_one keel "$KEEL" features -r "$REPO" serve --port 6566 || true
  cp "$REPO/keel/feast_store.yaml" "$REPO/feature_store.yaml"
}

case "$MODE" in
  gen) gen ;;
  hist) hist ;;
  mat) mat ;;
  serve) serve ;;
  all) [[ -d $REPO ]] || gen; hist; mat; serve ;;
  *) echo "usage: $0 [gen|hist|mat|serve|all]" >&2; exit 2 ;;
esac
