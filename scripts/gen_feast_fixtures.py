#!/usr/bin/env python3
"""Ground truth for keel-features, taken from the real Feast (0.67.0).

Writes small Parquet inputs, the historical retrieval Feast returns on them, the
same retrieval computed independently from Feast's documented semantics, a
report of where the two differ, and exact HTTP exchanges with `feast serve`.

Run with a venv that has Feast (never the project's .venv):

    python3 -m venv /tmp/feastvenv && /tmp/feastvenv/bin/pip install feast==0.67.0
    /tmp/feastvenv/bin/python scripts/gen_feast_fixtures.py \
        crates/keel-features/tests/fixtures/feast

Everything is fixed: data are hand-placed timestamps and values drawn from a
seeded generator; no wall-clock time goes into the data or the requests. A temp
Feast repo is created, used and deleted; its path never appears in the outputs.
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20250101
UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")
FEAST_VERSION_EXPECTED = "0.67.0"

STATS_TTL = timedelta(days=1)
DAILY_TTL = timedelta(0)

FEATURES = [
    "driver_stats:conv_rate",
    "driver_stats:acc_rate",
    "driver_stats:trips",
    "driver_daily:rating",
    "driver_daily:tier",
]


def ts(text):
    """'2025-01-07 12:00:00' -> aware datetime (UTC)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


# --------------------------------------------------------------------------
# 1. Data
# --------------------------------------------------------------------------

# Event timestamps per driver (second resolution). Special cases:
#   1001: two rows at 2025-01-07 12:00:00 with different `created`; the row
#         created LATER is written FIRST in the file, so "last in file order"
#         picks the wrong one and only (event_ts, created) ordering is right.
#   1002: latest row has acc_rate null (shows up online as a null value).
#   1003: row 2025-01-04 12:00:00 has conv_rate null.
#   1004: latest row has trips null.
#   1005/1006: gaps longer than the ttl, so entity rows sit exactly on
#         entity_ts - ttl (inclusive) and one second past it.
#   1009: rows only on 2025-01-01, long before most entity timestamps.
#   1010: rows only from 2025-01-09 on (in the future of some entity rows).
STATS_TIMES = {
    1001: ["2025-01-02 09:00:00", "2025-01-04 14:30:00", "2025-01-06 08:15:00",
           "2025-01-07 12:00:00", "2025-01-07 12:00:00", "2025-01-09 18:00:00"],
    1002: ["2025-01-01 06:00:00", "2025-01-03 11:11:11", "2025-01-05 20:00:00",
           "2025-01-08 07:30:00", "2025-01-09 23:59:59"],
    1003: ["2025-01-02 00:00:00", "2025-01-04 12:00:00", "2025-01-06 12:00:00",
           "2025-01-08 12:00:00", "2025-01-10 00:00:00"],
    1004: ["2025-01-01 12:00:00", "2025-01-03 12:00:00", "2025-01-05 12:00:00",
           "2025-01-07 12:00:00", "2025-01-09 12:00:00"],
    1005: ["2025-01-02 08:00:00", "2025-01-04 10:00:00", "2025-01-06 09:30:00",
           "2025-01-08 16:45:00", "2025-01-09 20:00:00"],
    1006: ["2025-01-01 03:00:00", "2025-01-02 03:00:00", "2025-01-05 03:00:00",
           "2025-01-06 03:00:00", "2025-01-07 03:00:00", "2025-01-08 03:00:00"],
    1007: ["2025-01-03 17:20:00", "2025-01-05 17:20:00", "2025-01-07 17:20:00",
           "2025-01-09 17:20:00", "2025-01-09 17:20:30"],
    1008: ["2025-01-01 01:01:01", "2025-01-04 04:04:04", "2025-01-06 06:06:06",
           "2025-01-08 08:08:08", "2025-01-10 10:10:10"],
    1009: ["2025-01-01 00:30:00", "2025-01-01 05:00:00", "2025-01-01 09:45:00"],
    1010: ["2025-01-09 06:00:00", "2025-01-09 12:00:00", "2025-01-10 06:00:00",
           "2025-01-10 12:00:00", "2025-01-10 18:00:00"],
}
TIE_TS = "2025-01-07 12:00:00"
TIE_LATE = (0.999, 0.5, 99)   # created 12:05:00, written first in the file
TIE_EARLY = (0.111, 0.1, 11)  # created 12:00:10, written second
NULLS = {  # (driver, event ts) -> column made null
    (1002, "2025-01-09 23:59:59"): "acc_rate",
    (1003, "2025-01-04 12:00:00"): "conv_rate",
    (1004, "2025-01-09 12:00:00"): "trips",
}

DAILY_DAYS = {
    1001: [1, 4, 7], 1002: [2, 5, 8], 1003: [3, 6, 9], 1004: [1, 5, 9],
    1005: [2, 6, 10], 1006: [3, 7], 1007: [4, 8], 1008: [5, 9, 10], 1010: [10],
}
TIERS = ["bronze", "silver", "gold"]
DAILY_NULL_TIER = (1008, 10)

# (driver_id, event_timestamp, why) -- shuffled with the seed before writing.
ENTITY_ROWS = [
    (1001, "2025-01-07 12:00:00", "equals the tied rows' event ts: inclusive bound + tie on created"),
    (1001, "2025-01-07 13:00:00", "after the tie"),
    (1001, "2025-01-06 08:15:00", "equals a feature row's event ts"),
    (1001, "2025-01-10 00:00:00", "latest stats row 6h old"),
    (1001, "2025-01-02 09:00:00", "equals the earliest stats row"),
    (1001, "2025-01-01 00:00:00", "before every stats row; daily row at exactly this ts"),
    (1002, "2025-01-09 23:59:59", "equals latest row (acc_rate null)"),
    (1002, "2025-01-06 20:00:00", "exactly entity_ts - ttl = previous row (inclusive)"),
    (1002, "2025-01-06 20:00:01", "one second past ttl"),
    (1002, "2025-01-04 00:00:00", "ordinary"),
    (1002, "2025-01-09 00:00:00", "ordinary"),
    (1003, "2025-01-05 00:00:00", "picks the row with conv_rate null"),
    (1003, "2025-01-10 00:00:00", "equals a feature row's event ts"),
    (1003, "2025-01-08 12:00:00", "duplicate entity row (same driver_id, ts), first"),
    (1003, "2025-01-08 12:00:00", "duplicate entity row (same driver_id, ts), second"),
    (1004, "2025-01-09 12:00:00", "equals latest row (trips null)"),
    (1004, "2025-01-08 00:00:00", "ordinary"),
    (1004, "2025-01-05 12:00:00", "equals a feature row's event ts"),
    (1005, "2025-01-05 10:00:00", "exactly entity_ts - ttl = previous row (inclusive)"),
    (1005, "2025-01-05 10:00:01", "one second past ttl"),
    (1005, "2025-01-09 21:00:00", "ordinary"),
    (1005, "2025-01-07 00:00:00", "ordinary"),
    (1006, "2025-01-03 03:00:00", "exactly entity_ts - ttl = previous row (inclusive)"),
    (1006, "2025-01-04 00:00:00", "previous stats row older than ttl; daily present"),
    (1006, "2025-01-08 03:00:00", "equals a feature row's event ts"),
    (1006, "2025-01-10 00:00:00", "latest stats row older than ttl"),
    (1007, "2025-01-09 17:20:15", "between two rows 30s apart"),
    (1007, "2025-01-09 17:20:30", "equals the later of two close rows"),
    (1007, "2025-01-04 00:00:00", "ordinary"),
    (1008, "2025-01-06 06:06:06", "equals a feature row's event ts"),
    (1008, "2025-01-07 00:00:00", "ordinary"),
    (1008, "2025-01-10 10:10:10", "equals a feature row's event ts; daily tier null"),
    (1009, "2025-01-08 00:00:00", "stats rows only long before (outside ttl), no daily rows"),
    (1009, "2025-01-01 05:00:00", "equals an early stats row"),
    (1010, "2025-01-06 00:00:00", "every row of both views is in the future"),
    (1010, "2025-01-10 12:00:00", "equals a feature row's event ts"),
    (1010, "2025-01-09 09:00:00", "stats present, daily only in the future"),
    (9999, "2025-01-08 00:00:00", "driver in no source, first"),
    (9999, "2025-01-08 00:00:00", "driver in no source, duplicate"),
    (9998, "2025-01-05 00:00:00", "driver in no source"),
]


def make_driver_stats(rng):
    ids, events, created, conv, acc, trips = [], [], [], [], [], []
    for driver, times in STATS_TIMES.items():
        tie_done = False
        for text in times:
            event = ts(text)
            if driver == 1001 and text == TIE_TS:
                # Later-created row first, earlier-created second.
                c_val, a_val, t_val = TIE_EARLY if tie_done else TIE_LATE
                made = event + (timedelta(seconds=10) if tie_done else timedelta(minutes=5))
                tie_done = True
            else:
                c_val = round(float(rng.uniform(0.0, 1.0)), 4)
                a_val = round(float(rng.uniform(0.0, 1.0)), 4)
                t_val = int(rng.integers(0, 500))
                made = event + timedelta(seconds=int(rng.integers(1, 900)))
            row = {"conv_rate": c_val, "acc_rate": a_val, "trips": t_val}
            null_col = NULLS.get((driver, text))
            if null_col:
                row[null_col] = None
            ids.append(driver)
            events.append(event)
            created.append(made)
            conv.append(row["conv_rate"])
            acc.append(row["acc_rate"])
            trips.append(row["trips"])
    return pa.table({
        "driver_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array(events, TS),
        "created": pa.array(created, TS),
        "conv_rate": pa.array(conv, pa.float32()),
        "acc_rate": pa.array(acc, pa.float32()),
        "trips": pa.array(trips, pa.int64()),
    })


def make_driver_daily(rng):
    ids, events, rating, tier = [], [], [], []
    for driver, days in DAILY_DAYS.items():
        for day in days:
            ids.append(driver)
            events.append(datetime(2025, 1, day, tzinfo=UTC))
            rating.append(round(float(rng.uniform(1.0, 5.0)), 3))
            t = TIERS[int(rng.integers(0, len(TIERS)))]
            tier.append(None if (driver, day) == DAILY_NULL_TIER else t)
    return pa.table({
        "driver_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array(events, TS),
        "rating": pa.array(rating, pa.float64()),
        "tier": pa.array(tier, pa.string()),
    })


def make_entity_df(rng):
    order = rng.permutation(len(ENTITY_ROWS))
    rows = [ENTITY_ROWS[i] for i in order]
    return pa.table({
        "driver_id": pa.array([r[0] for r in rows], pa.int64()),
        "event_timestamp": pa.array([ts(r[1]) for r in rows], TS),
        # label: unique per entity row, so each output row can be traced back.
        "label": pa.array([1000 + int(i) for i in order], pa.int64()),
    }), {1000 + int(i): ENTITY_ROWS[i][2] for i in order}


def write_parquet(table, path):
    pq.write_table(table, path, compression="snappy")


# --------------------------------------------------------------------------
# 2. Feast repo
# --------------------------------------------------------------------------

FEATURE_STORE_YAML = """\
project: fixture
provider: local
registry: data/registry.db
offline_store:
  type: file
online_store:
  type: sqlite
  path: data/online_store.db
entity_key_serialization_version: 3
"""

DEFINITIONS_PY = '''\
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast.types import Float32, Float64, Int64, String
from feast.value_type import ValueType

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)

driver_stats_source = FileSource(
    name="driver_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

# Feast's push pattern: a PushSource wraps the batch source and the view reads
# from the PushSource (view.stream_source = push source, view.batch_source =
# the FileSource, which historical retrieval and materialization use).
driver_stats_push = PushSource(name="driver_stats_push", batch_source=driver_stats_source)

driver_daily_source = FileSource(
    name="driver_daily_source",
    path="data/driver_daily.parquet",
    timestamp_field="event_timestamp",
)

driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="trips", dtype=Int64),
    ],
    online=True,
    source=driver_stats_push,
)

driver_daily = FeatureView(
    name="driver_daily",
    entities=[driver],
    ttl=timedelta(0),
    schema=[
        Field(name="rating", dtype=Float64),
        Field(name="tier", dtype=String),
    ],
    online=True,
    source=driver_daily_source,
)

driver_activity = FeatureService(
    name="driver_activity",
    features=[driver_stats[["conv_rate", "trips"]], driver_daily[["rating"]]],
)
'''


def feast_cli():
    exe = pathlib.Path(sys.executable).parent / "feast"
    if not exe.exists():
        sys.exit(f"no feast executable next to {sys.executable}")
    return str(exe)


def run_feast(repo, *args):
    env = dict(os.environ, FEAST_USAGE="False", PYTHONHASHSEED="0")
    proc = subprocess.run([feast_cli(), *args], cwd=repo, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        sys.exit(f"feast {' '.join(args)} failed")
    return proc.stdout


# --------------------------------------------------------------------------
# 3. Historical retrieval: Feast vs the documented semantics
# --------------------------------------------------------------------------

def pit_match(entity_pd, src, ttl, created):
    """Index (into src) of the documented point-in-time match per entity row, or None:
    latest row with event_ts <= entity_ts and, when ttl > 0, event_ts >= entity_ts - ttl;
    equal event ts broken by the later `created`."""
    keys = ["event_timestamp"] + ([created] if created else [])
    matches = []
    for driver, when in zip(entity_pd["driver_id"], entity_pd["event_timestamp"]):
        cand = src[(src["driver_id"] == driver) & (src["event_timestamp"] <= when)]
        if ttl > timedelta(0):
            cand = cand[cand["event_timestamp"] >= when - ttl]
        matches.append(None if cand.empty else cand.sort_values(keys, kind="mergesort").index[-1])
    return matches


def expected_historical(entity, stats, daily, full_names):
    """Point-in-time join as documented: every entity row kept (nulls when nothing
    matches), entity order kept, entity columns first, then the features in the
    requested order. Returns (table, {view: matched source event ts per row})."""
    ent = entity.to_pandas()
    views = {
        "driver_stats": (stats.to_pandas(), STATS_TTL, "created"),
        "driver_daily": (daily.to_pandas(), DAILY_TTL, None),
    }
    matched = {v: pit_match(ent, *args) for v, args in views.items()}
    columns = {name: list(entity.column(name).to_pylist()) for name in entity.column_names}
    types = {name: entity.schema.field(name).type for name in entity.column_names}
    src_types = {**{f.name: f.type for f in stats.schema}, **{f.name: f.type for f in daily.schema}}
    for ref in FEATURES:
        view, feat = ref.split(":")
        src = views[view][0]
        values = [None if i is None else cell(src.at[i, feat]) for i in matched[view]]
        name = f"{view}__{feat}" if full_names else feat
        columns[name] = values
        types[name] = src_types[feat]
    matched_ts = {v: [None if i is None else views[v][0].at[i, "event_timestamp"] for i in m]
                  for v, m in matched.items()}
    return pa.table({n: pa.array(v, types[n]) for n, v in columns.items()}), matched_ts


def cell(v):
    """Plain Python value; NaN/NaT/None -> None; timestamps -> 'YYYY-mm-dd HH:MM:SS' (UTC)."""
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp, datetime)):
        return None if pd.isna(v) else pd.Timestamp(v).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def same(a, b):
    a, b = cell(a), cell(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return np.float32(a) == np.float32(b)
    return a == b


def fmt(v):
    v = cell(v)
    if v is None:
        return "null"
    if isinstance(v, float):
        f32 = np.float32(v)
        return str(f32) if float(f32) == v else repr(v)
    return str(v)


def diff_report(feast_df, expected, matched_ts, why, title):
    """Markdown section: where Feast's frame differs from `expected`."""
    exp = expected.to_pandas()
    out = [f"## {title}", ""]
    fe_cols, ex_cols = list(feast_df.columns), list(exp.columns)
    out.append(f"- Columns, expected: `{ex_cols}`")
    out.append(f"- Columns, Feast:    `{fe_cols}`")
    out.append(f"- Column order identical: **{'yes' if fe_cols == ex_cols else 'no'}**"
               + ("" if set(fe_cols) == set(ex_cols) else
                  f" (missing: {sorted(set(ex_cols) - set(fe_cols))}, extra: {sorted(set(fe_cols) - set(ex_cols))})"))
    out.append("")
    out.append("| column | expected (Arrow) | Feast to_df() (pandas) | Feast written to Parquet (Arrow) |")
    out.append("|---|---|---|---|")
    fe_arrow = pa.Table.from_pandas(feast_df, preserve_index=False).schema
    for name in ex_cols:
        fe_pd = str(feast_df[name].dtype) if name in feast_df.columns else "-"
        fe_pa = str(fe_arrow.field(name).type) if name in feast_df.columns else "-"
        out.append(f"| {name} | {expected.schema.field(name).type} | {fe_pd} | {fe_pa} |")
    out.append("")

    fe_labels = [int(x) for x in feast_df["label"]]
    ex_labels = [int(x) for x in exp["label"]]
    dropped = [lab for lab in ex_labels if lab not in set(fe_labels)]
    out.append(f"- Rows: expected {len(exp)}, Feast {len(feast_df)}; "
               f"dropped {len(dropped)}, added {len(set(fe_labels) - set(ex_labels))}, "
               f"repeated labels in Feast {len(fe_labels) - len(set(fe_labels))}.")
    exp_by_label = exp.set_index("label")
    feat_cols = [c for c in ex_cols if c not in ("driver_id", "event_timestamp", "label")]
    if dropped:
        out.append("")
        out.append("Dropped entity rows (`label`: driver_id, event_timestamp -- what the row tests; "
                   "the values the documented semantics give):")
        out.append("")
        kept = {(int(d), cell(t)) for d, t in zip(feast_df["driver_id"], feast_df["event_timestamp"])}
        for lab in dropped:
            r = exp_by_label.loc[lab]
            feats = ", ".join(f"{c}={fmt(r[c])}" for c in feat_cols)
            dup = (" **[an entity row with the same (driver_id, event_timestamp) was kept]**"
                   if (int(r["driver_id"]), cell(r["event_timestamp"])) in kept else "")
            out.append(f"- `{lab}`: {r['driver_id']}, {cell(r['event_timestamp'])} -- {why[lab]}; {feats}{dup}")
    out.append("")

    kept_expected_order = [lab for lab in ex_labels if lab in set(fe_labels)]
    out.append(f"- Order of the surviving rows same as the entity df: "
               f"**{'yes' if kept_expected_order == fe_labels else 'no'}**")
    fe_ts = list(feast_df["event_timestamp"])
    out.append(f"- Feast's rows sorted by entity event_timestamp: **{'yes' if fe_ts == sorted(fe_ts) else 'no'}**")
    pos = {lab: i for i, lab in enumerate(ex_labels)}
    last_view = FEATURES[-1].split(":")[0]
    seq = [matched_ts[last_view][pos[lab]] for lab in fe_labels]
    nulls = sum(1 for x in seq if x is None)
    ordered = all(x is None for x in seq[:nulls]) and seq[nulls:] == sorted(x for x in seq if x is not None)
    out.append(f"- Feast's rows sorted by the event_timestamp of the matched `{last_view}` row "
               f"(the last view joined), rows without a match first: **{'yes' if ordered else 'no'}**")
    out.append(f"- Feast's label order: `{fe_labels}`")
    out.append(f"- Entity df label order: `{ex_labels}`")
    out.append("")

    mism = []
    for _, row in feast_df.iterrows():
        lab = int(row["label"])
        if lab not in exp_by_label.index:
            continue
        er = exp_by_label.loc[lab]
        for c in ex_cols:
            if c == "label" or c not in feast_df.columns:
                continue
            if not same(row[c], er[c]):
                mism.append(f"- `{lab}` ({er['driver_id']}, {cell(er['event_timestamp'])}; {why[lab]}): "
                            f"`{c}` Feast={fmt(row[c])} expected={fmt(er[c])}")
    out.append(f"- Value differences in rows present in both (nulls/NaN compared as null, floats as float32): "
               f"**{len(mism)}**")
    out.extend(mism)
    out.append("")
    return out, dropped


EXPLAIN = [
    "## Why (Feast 0.67.0, `feast/infra/offline_stores/dask.py`, used for `offline_store: type: file`)",
    "",
    "- Row order: `evaluate_historical_retrieval()` (inside `DaskOfflineStore.get_historical_features`)",
    "  sorts the entity df by its timestamp (`sort_values(entity_df_event_timestamp_col)`, line ~258);",
    "  then, per view, `_drop_duplicates()` (line ~1249) sorts by `created` (na first) and then by the",
    "  source event ts (na first) before `drop_duplicates(join keys + entity ts, keep=\"last\")`. The",
    "  last sort wins, so the output is ordered by the last view's matched source event ts (rows",
    "  without a match first); `to_df()` only does `reset_index(drop=True)`. The entity order is lost.",
    "- Dropped rows: `_merge()` (line ~1113) left-joins the entity df with ALL source rows of the key;",
    "  `_filter_ttl()` (line ~1187) keeps a merged row only if its source ts is null (key absent from",
    "  the source) or within [entity_ts - ttl, entity_ts] (ttl 0: source ts <= entity_ts). When the key",
    "  has source rows but none in the window, all its merged rows go and the entity row disappears",
    "  instead of getting nulls. Keys absent from the source (9998, 9999) survive with nulls. The views",
    "  are joined one after another, so a row lost in any view is lost for all.",
    "- Duplicate entity rows: `_drop_duplicates()` dedups on join keys + entity timestamp, so entity",
    "  rows with identical (driver_id, event_timestamp) collapse into one, whatever their other columns",
    "  (here `label`); which one survives depends on the sort.",
    "- Ties on event ts: `_drop_duplicates()` sorts by `created`, then re-sorts by event ts with",
    "  pandas' default (quicksort, not stable), then keeps the last row per key; the `created` order",
    "  is not guaranteed to survive the second sort. On this data the EARLIER-created row wins. (The",
    "  materialization path sorts on [event ts, created] together, see README.)",
    "- dtypes: a missing match is NaN, so an int64 feature with any missing value becomes float64;",
    "  float32 stays float32 (NaN for missing); strings become object (None for missing); the entity",
    "  timestamp comes back as datetime64[ns, UTC] (input was timestamp[us, UTC]).",
    "",
]


def historical(repo, out, entity, stats, daily, why):
    import feast

    store = feast.FeatureStore(repo_path=str(repo))
    entity_pd = entity.to_pandas()
    counts = {}
    report = ["# Feast historical retrieval vs the documented semantics", "",
              "Generated by `scripts/gen_feast_fixtures.py` with Feast " + feast.__version__ +
              " (file offline store). Rows are matched by `label` (unique per entity row). "
              "Expected = `historical_expected.parquet`; the full-names section compares against "
              "the same values with `view__feature` column names.", ""]
    for full, fname in ((False, "historical_feast.parquet"), (True, "historical_feast_full_names.parquet")):
        df = store.get_historical_features(entity_df=entity_pd.copy(), features=FEATURES,
                                           full_feature_names=full).to_df()
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out / fname,
                       compression="snappy")
        expected, matched_ts = expected_historical(entity, stats, daily, full)
        if not full:
            write_parquet(expected, out / "historical_expected.parquet")
            counts["historical_expected.parquet"] = {"rows": expected.num_rows,
                                                     "columns": expected.column_names}
        section, dropped = diff_report(df, expected, matched_ts, why,
                                       f"full_feature_names={full} (`{fname}`)")
        report += section
        counts[fname] = {
            "rows": len(df),
            "columns": list(df.columns),
            "pandas_dtypes": {c: str(t) for c, t in df.dtypes.items()},
            "labels_in_order": [int(x) for x in df["label"]],
            "dropped_labels": sorted(int(x) for x in dropped),
        }
    # Column order when the requested features interleave the two views.
    interleaved = ["driver_daily:tier", "driver_stats:trips", "driver_daily:rating", "driver_stats:conv_rate"]
    df = store.get_historical_features(entity_df=entity_pd.copy(), features=interleaved).to_df()
    counts["interleaved_request"] = {"features": interleaved, "columns": list(df.columns), "rows": len(df)}
    counts["entity_df.parquet"] = {"rows": len(entity_pd)}
    report += EXPLAIN
    (out / "historical_diff.md").write_text("\n".join(report))
    (out / "historical_counts.json").write_text(json.dumps(counts, indent=2) + "\n")


# --------------------------------------------------------------------------
# 4. Online: feast serve
# --------------------------------------------------------------------------

class Server:
    def __init__(self, repo):
        self.repo = repo
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, FEAST_USAGE="False", PYTHONHASHSEED="0")
        self.log = open(repo / "serve.log", "w")
        self.proc = subprocess.Popen(
            [feast_cli(), "serve", "-h", "127.0.0.1", "-p", str(self.port), "--no-access-log"],
            cwd=repo, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit("feast serve exited:\n" + (repo / "serve.log").read_text())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        self.stop()
        sys.exit("feast serve did not come up:\n" + (repo / "serve.log").read_text())

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def call(self, method, path, body=None, raw=None, note=None):
        """One exchange. `body` is sent as JSON; `raw` as-is (for malformed JSON)."""
        data = raw.encode() if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                status, ctype, text = resp.status, resp.headers.get("content-type"), resp.read().decode()
        except urllib.error.HTTPError as e:
            status, ctype, text = e.code, e.headers.get("content-type"), e.read().decode()
        text = text.replace(str(self.repo), "<repo>")
        try:
            parsed = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = None
        request = {"method": method, "path": path}
        if raw is not None:
            request["raw_body"] = raw
        elif body is not None:
            request["body"] = body
        rec = {"request": request, "status": status, "content_type": ctype,
               "response_body": parsed, "response_text": text}
        if note:
            rec = {"note": note, **rec}
        return rec


def online_request(entities, features=None, service=None, full=False):
    body = {"entities": entities}
    if service:
        body["feature_service"] = service
    else:
        body["features"] = features
    if full:
        body["full_feature_names"] = True
    return body


def offline_rows(repo, driver_ids, since):
    t = pq.read_table(repo / "data/driver_stats.parquet").to_pandas()
    t = t[t["driver_id"].isin(driver_ids) & (t["event_timestamp"] >= pd.Timestamp(since))]
    t = t.sort_values(["driver_id", "event_timestamp"])
    return [{k: (int(v) if k in ("driver_id", "trips") and cell(v) is not None else cell(v))
             for k, v in r.items()} for r in t.to_dict("records")]


def online(repo, out):
    srv = Server(repo)
    try:
        get = lambda ids, feats=FEATURES, **kw: srv.call(
            "POST", "/get-online-features", online_request({"driver_id": ids}, feats, **kw))
        dump(out / "online_features.json", {
            "exchanges": [get([1001, 1002, 9999])]})
        dump(out / "online_features_full_names.json", {
            "exchanges": [get([1001, 1002, 9999], full=True)]})
        dump(out / "online_service.json", {
            "exchanges": [
                get([1001, 1002, 9999], feats=None, service="driver_activity"),
                get([1001, 1002, 9999], feats=None, service="driver_activity", full=True),
            ]})

        errors = [
            srv.call("POST", "/get-online-features",
                     online_request({"driver_id": [1001]}, ["no_such_view:conv_rate"]),
                     note="unknown feature view"),
            srv.call("POST", "/get-online-features",
                     online_request({"driver_id": [1001]}, ["driver_stats:no_such_feature"]),
                     note="unknown feature name in a known view"),
            srv.call("POST", "/get-online-features",
                     online_request({"driver_idx": [1001]}, ["driver_stats:conv_rate"]),
                     note="missing entity column (wrong join key name)"),
            srv.call("POST", "/get-online-features",
                     online_request({}, ["driver_stats:conv_rate"]),
                     note="missing entity column (no entities at all)"),
            srv.call("POST", "/get-online-features",
                     raw='{"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]',
                     note="malformed JSON (truncated)"),
            srv.call("POST", "/get-online-features",
                     online_request({"driver_id": ["1001"]}, ["driver_stats:conv_rate"]),
                     note="wrong entity type (string for int64)"),
            srv.call("POST", "/get-online-features",
                     online_request({"driver_id": [1001]}, ["conv_rate"]),
                     note="feature reference without a view name"),
            srv.call("POST", "/get-online-features",
                     online_request({"driver_id": [1001]}, service="no_such_service"),
                     note="unknown feature service"),
            srv.call("POST", "/get-online-features", {"features": ["driver_stats:conv_rate"]},
                     note="body without the required `entities` field"),
        ]
        dump(out / "online_errors.json", {"exchanges": errors})

        stats_feats = FEATURES[:3]
        push_row = lambda d, when, c, a, t: {
            "driver_id": [d], "event_timestamp": [when], "created": [when],
            "conv_rate": [c], "acc_rate": [a], "trips": [t]}
        pushed = lambda d, when, c, a, t, to, note: srv.call(
            "POST", "/push", {"push_source_name": "driver_stats_push",
                              "df": push_row(d, when, c, a, t), "to": to}, note=note)
        push = [
            get([1001], stats_feats),
            pushed(1001, "2025-01-12T08:00:00", 0.5, 0.25, 77, "online",
                   "push to online, newer timestamp than the materialized row; naive ISO string"),
            get([1001], stats_feats),
            pushed(1004, "2025-01-11T06:00:00", 0.75, 0.125, 44, "offline",
                   "push to offline with a naive timestamp string: fails casting to the file's timestamp[us, tz=UTC]"),
            pushed(1004, "2025-01-11T06:00:00+00:00", 0.75, 0.125, 44, "offline",
                   "push to offline with an explicit offset: appended to the FileSource parquet"),
            get([1004], stats_feats),
            pushed(1005, "2025-01-11T07:00:00", 0.625, 0.375, 55, "online_and_offline",
                   "online_and_offline with a naive timestamp: the online write happens first, then the offline write fails"),
            get([1005], stats_feats),
            pushed(1005, "2025-01-11T07:00:00+00:00", 0.625, 0.375, 55, "online_and_offline",
                   "online_and_offline with an explicit offset"),
            get([1005], stats_feats),
            srv.call("POST", "/push", {"push_source_name": "no_such_push",
                                       "df": push_row(1001, "2025-01-12T09:00:00", 0.5, 0.25, 1),
                                       "to": "online"},
                     note="unknown push source"),
            pushed(1001, "2025-01-12T09:00:00", 0.5, 0.25, 1, "somewhere", "unsupported `to`"),
            srv.call("POST", "/push", {"push_source_name": "driver_stats_push",
                                       "df": {"driver_id": [1006], "event_timestamp": ["2025-01-12T10:00:00"],
                                              "created": ["2025-01-12T10:00:00"], "conv_rate": [0.5]},
                                       "to": "online"},
                     note="push with feature columns missing (acc_rate, trips)"),
            get([1006], stats_feats),
        ]
        dump(out / "push.json", {
            "exchanges": push,
            "offline_source_rows_after": {
                "note": "rows of the temp repo's data/driver_stats.parquet (the FileSource behind the "
                        "push source) with event_timestamp >= 2025-01-11, read after the pushes above",
                "rows": offline_rows(repo, [1001, 1004, 1005, 1006], "2025-01-11T00:00:00Z"),
            }})

        daily_feats = FEATURES[3:]
        write = [
            get([1003], daily_feats),
            srv.call("POST", "/write-to-online-store",
                     {"feature_view_name": "driver_daily",
                      "df": {"driver_id": [1003], "event_timestamp": ["2025-01-20T00:00:00"],
                             "rating": [4.5], "tier": ["platinum"]}},
                     note="newer timestamp than stored"),
            get([1003], daily_feats),
            srv.call("POST", "/write-to-online-store",
                     {"feature_view_name": "driver_daily",
                      "df": {"driver_id": [1003], "event_timestamp": ["2024-06-01T00:00:00"],
                             "rating": [1.25], "tier": ["old"]}},
                     note="OLDER timestamp than stored: does it overwrite?"),
            get([1003], daily_feats),
            srv.call("POST", "/write-to-online-store",
                     {"feature_view_name": "driver_daily",
                      "df": {"driver_id": [1007, 1008], "event_timestamp": ["2025-01-20T00:00:00Z", "2025-01-20T12:30:00+02:00"],
                             "rating": [None, 2.0], "tier": ["x", None]}},
                     note="two rows, explicit offsets, nulls in the df"),
            get([1007, 1008], daily_feats),
            srv.call("POST", "/write-to-online-store",
                     {"feature_view_name": "no_such_view",
                      "df": {"driver_id": [1003], "event_timestamp": ["2025-01-20T00:00:00"],
                             "rating": [4.5], "tier": ["platinum"]}},
                     note="unknown feature view"),
        ]
        dump(out / "write_to_online_store.json", {"exchanges": write})

        sentinel = {"driver_id": [1002, 1006, 1003],
                    "event_timestamp": ["2030-01-01T00:00:00"] * 3,
                    "created": ["2030-01-01T00:00:00"] * 3,
                    "conv_rate": [-1.0] * 3, "acc_rate": [-1.0] * 3, "trips": [-1] * 3}
        mat = [
            srv.call("GET", "/health"),
            srv.call("POST", "/write-to-online-store",
                     {"feature_view_name": "driver_stats", "df": sentinel},
                     note="sentinel values (ts 2030) for 1002, 1006, 1003 before /materialize"),
            get([1002, 1006, 1003, 1001, 1005], stats_feats),
            srv.call("POST", "/materialize",
                     {"start_ts": "2025-01-08T03:00:00", "end_ts": "2025-01-09T23:59:59",
                      "feature_views": ["driver_stats"]},
                     note="window boundaries: 1006's last row is exactly start_ts, 1002's last row "
                          "exactly end_ts, 1003 has 2025-01-08 12:00:00 inside and 2025-01-10 after; "
                          "1001 and 1005 hold pushed values newer than anything in the window"),
            get([1002, 1006, 1003, 1001, 1005], stats_feats),
            srv.call("POST", "/materialize-incremental",
                     {"end_ts": "2025-01-12T00:00:00", "feature_views": ["driver_stats", "driver_daily"]},
                     note="start = latest end recorded for each view (2025-01-11 from the CLI run); "
                          "picks up the rows pushed to offline (1004 at 2025-01-11 06:00, 1005 at 07:00)"),
            get([1004, 1005, 1001], stats_feats),
            srv.call("POST", "/materialize",
                     {"start_ts": "2025-01-07T00:00:00", "end_ts": "2025-01-07T12:00:00",
                      "feature_views": ["driver_stats"]},
                     note="1001's two rows at 2025-01-07 12:00:00 (= end_ts) differ only in `created`"),
            get([1001], stats_feats),
            srv.call("POST", "/materialize",
                     {"start_ts": "2025-01-09T00:00:00", "end_ts": "2025-01-09T00:00:00",
                      "feature_views": ["driver_stats"]},
                     note="start_ts == end_ts"),
            srv.call("POST", "/materialize", {"feature_views": ["driver_stats"]},
                     note="no start_ts/end_ts"),
            srv.call("POST", "/materialize",
                     {"start_ts": "2025-01-01T00:00:00", "end_ts": "2025-01-02T00:00:00",
                      "feature_views": ["no_such_view"]},
                     note="unknown feature view"),
            srv.call("POST", "/materialize-incremental", {"feature_views": ["driver_stats"]},
                     note="no end_ts"),
            srv.call("GET", "/health"),
        ]
    finally:
        srv.stop()
    dump(out / "materialize.json", {
        "exchanges": mat,
        "registry_materialization_intervals_after": registry_intervals(repo)})


def registry_intervals(repo):
    import feast

    store = feast.FeatureStore(repo_path=str(repo))
    return {name: [[s.isoformat(), e.isoformat()] for s, e in
                   store.get_feature_view(name).materialization_intervals]
            for name in ("driver_stats", "driver_daily")}


ORDER_PROBE = """
import json, sys
import feast
store = feast.FeatureStore(repo_path=sys.argv[1])
feats = json.loads(sys.argv[2])
r = store.get_online_features(features=feats, entity_rows=[{"driver_id": 1001}])
print(json.dumps(list(r.proto.metadata.feature_names.val)))
"""


def feature_order(repo, out):
    """metadata.feature_names for the same request in processes with different
    PYTHONHASHSEED: Feast groups refs per view in a set (utils._group_feature_refs)."""
    requests = {"all_five": FEATURES,
                "interleaved": ["driver_daily:tier", "driver_stats:trips",
                                "driver_daily:rating", "driver_stats:conv_rate"]}
    runs = []
    for name, feats in requests.items():
        for seed in ("0", "1", "2", "3"):
            env = dict(os.environ, FEAST_USAGE="False", PYTHONHASHSEED=seed)
            proc = subprocess.run([sys.executable, "-c", ORDER_PROBE, str(repo), json.dumps(feats)],
                                  env=env, capture_output=True, text=True, check=True)
            runs.append({"request": name, "features": feats, "PYTHONHASHSEED": seed,
                         "feature_names": json.loads(proc.stdout.strip().splitlines()[-1])})
    dump(out / "online_feature_order.json", {
        "note": "FeatureStore.get_online_features (same code path as the server) in separate "
                "processes; the fixtures' feast serve ran with PYTHONHASHSEED=0",
        "runs": runs})


def dump(path, obj):
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--keep-repo", action="store_true", help="do not delete the temp Feast repo")
    args = parser.parse_args()

    import feast
    if feast.__version__ != FEAST_VERSION_EXPECTED:
        sys.exit(f"need feast=={FEAST_VERSION_EXPECTED}, have {feast.__version__}")

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    stats = make_driver_stats(rng)
    daily = make_driver_daily(rng)
    entity, why = make_entity_df(rng)
    for table, name in ((stats, "driver_stats"), (daily, "driver_daily"), (entity, "entity_df")):
        write_parquet(table, out / f"{name}.parquet")
    dump(out / "entity_df_cases.json", [
        {"label": lab, "driver_id": d, "event_timestamp": cell(t), "case": why[lab]}
        for lab, d, t in zip(entity.column("label").to_pylist(), entity.column("driver_id").to_pylist(),
                             entity.column("event_timestamp").to_pylist())])

    repo = pathlib.Path(tempfile.mkdtemp(prefix="feast_fixture_"))
    try:
        (repo / "data").mkdir()
        shutil.copy(out / "driver_stats.parquet", repo / "data/driver_stats.parquet")
        shutil.copy(out / "driver_daily.parquet", repo / "data/driver_daily.parquet")
        (repo / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
        (repo / "definitions.py").write_text(DEFINITIONS_PY)
        (out / "feature_repo").mkdir(exist_ok=True)
        (out / "feature_repo/feature_store.yaml").write_text(FEATURE_STORE_YAML)
        (out / "feature_repo/definitions.py").write_text(DEFINITIONS_PY)

        run_feast(repo, "apply")
        historical(repo, out, entity, stats, daily, why)
        run_feast(repo, "materialize", "2025-01-01T00:00:00", "2025-01-11T00:00:00")
        online(repo, out)
        feature_order(repo, out)
    finally:
        if args.keep_repo:
            print(f"repo kept at {repo}", file=sys.stderr)
        else:
            shutil.rmtree(repo, ignore_errors=True)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
