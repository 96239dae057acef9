"""Feature store end to end: a feature repository driven by `keel features` (plan, apply,
get-historical, materialize) and Feast's HTTP API served by `keel features serve` and
mounted in `keel server`, with the embedded SQLite and the Redis online stores.

Point-in-time results are checked against pandas' `merge_asof` computing Feast's
documented semantics on the same files.
"""

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from conftest import KeelServer, free_port, keel_bin
from e2e_helpers import unique_name

READY_TIMEOUT_S = 60
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
N_DRIVERS = 50
FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_daily:rating"]
REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def keel_features(repo, *args, check=True):
    result = subprocess.run(
        [str(keel_bin()), "features", "--repo", str(repo), *args],
        capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("KEEL_")},
    )
    if check and result.returncode != 0:
        pytest.fail(f"keel features {' '.join(args)} failed ({result.returncode}):\n"
                    f"{result.stdout}\n{result.stderr}", pytrace=False)
    return result


def _ts(seconds):
    return START + timedelta(seconds=int(seconds))


def make_repo(path: Path, online_store="sqlite", seed=3):
    """A repository with two views over generated Parquet sources."""
    rng = np.random.default_rng(seed)
    (path / "data").mkdir(parents=True)
    n = 600
    ids = rng.integers(1, N_DRIVERS + 1, size=n)
    ev = rng.integers(0, 10 * 86400, size=n)
    created = ev + rng.integers(0, 100, size=n)
    # force ties on event time, broken by the later created timestamp
    ev[1], ids[1] = ev[0], ids[0]
    created[1] = created[0] + 5
    stats = pa.table({
        "driver_id": pa.array(ids, pa.int64()),
        "event_timestamp": pa.array([_ts(s) for s in ev], pa.timestamp("us", tz="UTC")),
        "created": pa.array([_ts(s) for s in created], pa.timestamp("us", tz="UTC")),
        "conv_rate": pa.array(rng.random(n), pa.float32()),
        "trips": pa.array(rng.integers(0, 100, size=n), pa.int64()),
    })
    pq.write_table(stats, path / "data" / "driver_stats.parquet")
    m = 200
    daily = pa.table({
        "driver_id": pa.array(rng.integers(1, N_DRIVERS + 1, size=m), pa.int64()),
        "event_timestamp": pa.array([_ts(s) for s in rng.integers(0, 10 * 86400, size=m)],
                                    pa.timestamp("us", tz="UTC")),
        "rating": pa.array(rng.random(m) * 5, pa.float64()),
    })
    pq.write_table(daily, path / "data" / "driver_daily.parquet")
    entity_ids = rng.integers(1, N_DRIVERS + 10, size=300)  # some ids exist nowhere
    entity_ts = rng.integers(0, 11 * 86400, size=300)
    entities = pd.DataFrame({
        "driver_id": entity_ids.astype("int64"),
        "event_timestamp": pd.to_datetime([_ts(s) for s in entity_ts], utc=True),
        "label": np.arange(300, dtype="int64"),
    })
    entities = pd.concat([entities, entities.iloc[:5]], ignore_index=True)  # duplicate rows
    entities.to_parquet(path / "data" / "entities.parquet", index=False)

    if online_store == "redis":
        online = f"online_store:\n  type: redis\n  connection_string: {REDIS_URL}\n"
    else:
        online = "online_store:\n  type: sqlite\n  path: data/online_store.db\n"
    project = unique_name("fs").replace("-", "_")
    (path / "feature_store.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\nprovider: local\n{online}"
        "offline_store:\n  type: file\n")
    (path / "features.yaml").write_text("""
entities:
  - {name: driver, join_keys: [driver_id], value_type: INT64}
sources:
  - name: stats_source
    path: data/driver_stats.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created
  - name: daily_source
    path: data/driver_daily.parquet
    timestamp_field: event_timestamp
push_sources:
  - {name: stats_push, batch_source: stats_source}
feature_views:
  - name: driver_stats
    entities: [driver]
    ttl: 1d
    source: stats_push
    schema:
      - {name: conv_rate, dtype: Float32}
      - {name: trips, dtype: Int64}
  - name: driver_daily
    entities: [driver]
    ttl: 0
    source: daily_source
    schema:
      - {name: rating, dtype: Float64}
request_sources:
  - name: trip_request
    schema:
      - {name: val_to_add, dtype: Int64}
on_demand_feature_views:
  - name: conv_adjusted
    sources: [driver_stats, trip_request]
    schema:
      - {name: conv_plus_val, dtype: Float64}
      - {name: busy, dtype: String}
    expressions:
      conv_plus_val: "conv_rate + val_to_add"
      busy: "CASE WHEN trips > 50 THEN 'busy' ELSE 'calm' END"
feature_services:
  - name: driver_activity
    features:
      - driver_stats: [conv_rate]
      - driver_daily
""")
    return path


def expected_historical(repo: Path, entities: pd.DataFrame) -> pd.DataFrame:
    """Feast's documented point-in-time semantics, computed with pandas."""
    out = entities.reset_index(drop=True).copy()
    out["_row"] = np.arange(len(out))
    left = out.sort_values("event_timestamp")
    for view, cols, ttl, has_created in [
        ("driver_stats", ["conv_rate", "trips"], pd.Timedelta(days=1), True),
        ("driver_daily", ["rating"], None, False),
    ]:
        src = pd.read_parquet(repo / "data" / f"{view}.parquet")
        order = ["event_timestamp", "created"] if has_created else ["event_timestamp"]
        src = src.sort_values(order, kind="stable")
        src = src.drop_duplicates(["driver_id", "event_timestamp"], keep="last")
        m = pd.merge_asof(left[["_row", "driver_id", "event_timestamp"]],
                          src[["driver_id", "event_timestamp"] + cols],
                          on="event_timestamp", by="driver_id", direction="backward",
                          tolerance=ttl, allow_exact_matches=True)
        left = left.merge(m[["_row"] + cols], on="_row")
    return left.sort_values("_row").drop(columns="_row").reset_index(drop=True)


@pytest.fixture
def repo(tmp_path):
    repo = make_repo(tmp_path / "repo")
    keel_features(repo, "apply")
    return repo


class FeatureServer:
    def __init__(self, repo: Path):
        self.repo = repo
        self.port = free_port()
        self.log_path = repo / "serve.log"
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(keel_bin()), "features", "--repo", str(self.repo), "serve",
                 "--port", str(self.port), "--registry-refresh", "1"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"keel features serve exited:\n{self.log_path.read_text()}",
                            pytrace=False)
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        pytest.fail(f"feature server not ready:\n{self.log_path.read_text()}", pytrace=False)

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)

    def post(self, path, body):
        return requests.post(f"{self.url}{path}", json=body, timeout=30)


def test_apply_plan_list_describe(tmp_path):
    repo = make_repo(tmp_path / "repo")
    plan = keel_features(repo, "plan").stdout
    assert "create feature view driver_stats" in plan, plan
    out = keel_features(repo, "apply").stdout
    assert "created feature view driver_stats (version 1)" in out, out
    assert "no changes" in keel_features(repo, "plan").stdout
    listing = keel_features(repo, "list").stdout
    assert "driver_stats" in listing and "driver_daily" in listing
    described = keel_features(repo, "describe", "driver_stats").stdout
    assert "ttl: 1d" in described and "conv_rate" in described, described

    text = (repo / "features.yaml").read_text().replace("dtype: Int64", "dtype: Int32")
    (repo / "features.yaml").write_text(text)
    out = keel_features(repo, "apply").stdout
    assert "updated feature view driver_stats (version 2)" in out, out


def test_apply_rejects_bad_definitions_and_keeps_the_registry(repo):
    good = (repo / "features.yaml").read_text()
    for broken, needle in [
        (good.replace("entities: [driver]", "entities: [rider]", 1), "rider"),
        (good.replace("{name: trips, dtype: Int64}", "{name: tripz, dtype: Int64}"), "tripz"),
        (good.replace("ttl: 1d", "ttl: soon"), "soon"),
    ]:
        (repo / "features.yaml").write_text(broken)
        result = keel_features(repo, "apply", check=False)
        assert result.returncode == 1, result.stdout
        assert needle in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    (repo / "features.yaml").write_text(good)
    assert "no changes" in keel_features(repo, "plan").stdout


@pytest.mark.parametrize("full_names", [False, True])
def test_get_historical_matches_point_in_time_reference(repo, tmp_path, full_names):
    out = tmp_path / "training.parquet"
    args = ["get-historical", "--entities", str(repo / "data" / "entities.parquet"),
            "--features", ",".join(FEATURES), "-o", str(out)]
    if full_names:
        args.append("--full-feature-names")
    keel_features(repo, *args)
    got = pd.read_parquet(out)
    entities = pd.read_parquet(repo / "data" / "entities.parquet")
    want = expected_historical(repo, entities)
    assert len(got) == len(entities)  # every entity row is kept, in order
    names = ["conv_rate", "trips", "rating"]
    if full_names:
        names = [f.replace(":", "__") for f in FEATURES]
    assert list(got.columns) == ["driver_id", "event_timestamp", "label"] + names
    assert (got["label"].to_numpy() == entities["label"].to_numpy()).all()
    for got_name, want_name in zip(names, ["conv_rate", "trips", "rating"]):
        g, w = got[got_name], want[want_name]
        assert (g.isna() == w.isna()).all(), got_name
        np.testing.assert_allclose(g[g.notna()].astype(float), w[w.notna()].astype(float),
                                   rtol=0, atol=0, err_msg=got_name)
    # there is something to compare: some rows found, some not
    assert 0 < got[names[0]].notna().sum() < len(got)
    meta = pq.read_metadata(out).metadata
    lineage = json.loads(meta[b"keel.feature_lineage"])
    assert lineage["features"] == FEATURES
    assert lineage["feature_views"]["driver_stats"]["version"] == 1
    assert lineage["feature_views"]["driver_stats"]["files"][0]["path"] == "data/driver_stats.parquet"


def test_get_historical_by_service_and_logged_to_a_run(repo, tmp_path, client, tracking_uri):
    run = client.create_run(client.create_experiment(unique_name("features")))
    out = tmp_path / "train.parquet"
    keel_features(repo, "get-historical", "--entities", str(repo / "data" / "entities.parquet"),
                  "--service", "driver_activity", "-o", str(out),
                  "--log-to-run", run.info.run_id, "--tracking-uri", tracking_uri)
    got = pd.read_parquet(out)
    assert list(got.columns)[-2:] == ["conv_rate", "rating"]
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.name == "train" and dataset.source_type == "keel_feature_store"
    source = json.loads(dataset.source)
    assert source["feature_lineage"]["feature_service"] == {"name": "driver_activity", "version": 1}


def _latest(repo, view, cols, end):
    src = pd.read_parquet(repo / "data" / f"{view}.parquet")
    src = src[src["event_timestamp"] < pd.Timestamp(end)]
    order = ["event_timestamp", "created"] if "created" in src else ["event_timestamp"]
    src = src.sort_values(order, kind="stable").groupby("driver_id").tail(1)
    return src.set_index("driver_id")[cols + ["event_timestamp"]]


def _online(server, entities, features=FEATURES, **extra):
    response = server.post("/get-online-features",
                           {"features": features, "entities": {"driver_id": entities}, **extra})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_materialize_then_serve_online(tmp_path, store):
    repo = make_repo(tmp_path / "repo", online_store=store)
    keel_features(repo, "apply")
    out = keel_features(repo, "materialize", "2025-01-01", "2025-01-12").stdout
    assert "driver_stats" in out and "driver_daily" in out, out
    latest_stats = _latest(repo, "driver_stats", ["conv_rate", "trips"], "2025-01-12T00:00:00Z")
    latest_daily = _latest(repo, "driver_daily", ["rating"], "2025-01-12T00:00:00Z")
    ids = [int(i) for i in latest_stats.index[:5]] + [9999]
    with FeatureServer(repo) as server:
        body = _online(server, ids)
        assert body["metadata"]["feature_names"] == ["driver_id", "conv_rate", "trips", "rating"]
        results = body["results"]
        assert results[0]["values"] == ids
        # the data is from January 2025, so with a 1-day ttl every driver_stats value is too old now
        assert results[1]["statuses"][:5] == ["OUTSIDE_MAX_AGE"] * 5
        assert results[1]["values"][:5] == [None] * 5
        assert results[1]["statuses"][5] == "NOT_FOUND"
        # driver_daily has no ttl: values are served
        for i, driver in enumerate(ids[:5]):
            if driver in latest_daily.index:
                assert results[3]["statuses"][i] == "PRESENT"
                assert results[3]["values"][i] == pytest.approx(latest_daily.loc[driver, "rating"], abs=0)
                ts = latest_daily.loc[driver, "event_timestamp"]
                assert results[3]["event_timestamps"][i] == ts.strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                assert results[3]["statuses"][i] == "NOT_FOUND"

        # a push of fresh rows is served (and is within the ttl)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        push = server.post("/push", {"push_source_name": "stats_push", "to": "online", "df": {
            "driver_id": [ids[0]], "event_timestamp": [now.isoformat()],
            "conv_rate": [0.25], "trips": [7]}})
        assert push.status_code == 200, push.text
        body = _online(server, [ids[0]], full_feature_names=True)
        assert body["metadata"]["feature_names"][1:3] == ["driver_stats__conv_rate", "driver_stats__trips"]
        assert body["results"][1]["values"] == [0.25]
        assert body["results"][2]["values"] == [7]
        assert body["results"][1]["statuses"] == ["PRESENT"]

        # an older write never replaces a newer value
        older = (now - timedelta(hours=1)).isoformat()
        write = server.post("/write-to-online-store", {"feature_view_name": "driver_stats", "df": {
            "driver_id": [ids[0]], "event_timestamp": [older], "conv_rate": [0.75], "trips": [1]}})
        assert write.status_code == 200, write.text
        assert _online(server, [ids[0]])["results"][1]["values"] == [0.25]

        # the feature service resolves to its features
        body = server.post("/get-online-features", {
            "feature_service": "driver_activity", "entities": {"driver_id": [ids[0]]}}).json()
        assert body["metadata"]["feature_names"] == ["driver_id", "conv_rate", "rating"]


def test_feature_server_errors(repo):
    keel_features(repo, "materialize", "2025-01-01", "2025-01-12")
    with FeatureServer(repo) as server:
        cases = [
            ({"features": ["nope:x"], "entities": {"driver_id": [1]}}, 404, "nope"),
            ({"features": ["driver_stats:nope"], "entities": {"driver_id": [1]}}, 404, "nope"),
            ({"features": ["driver_stats:trips"], "entities": {"rider": [1]}}, 400, "driver_id"),
            ({"features": ["driver_stats:trips"], "entities": {"driver_id": ["a"]}}, 400, "driver_id"),
            ({"features": ["bad"], "entities": {"driver_id": [1]}}, 400, "bad"),
            ({"entities": {"driver_id": [1]}}, 400, "feature"),
        ]
        for body, status, needle in cases:
            response = server.post("/get-online-features", body)
            assert response.status_code == status, (body, response.text)
            assert needle in response.json()["detail"], (body, response.text)
        response = requests.post(f"{server.url}/get-online-features", data="{not json",
                                 headers={"Content-Type": "application/json"}, timeout=10)
        assert 400 <= response.status_code < 500 and "detail" in response.json()
        response = server.post("/push", {"push_source_name": "nope", "df": {"driver_id": [1]}})
        assert response.status_code == 404, response.text
        response = server.post("/materialize", {"start_ts": "yesterday", "end_ts": "2025-01-02"})
        assert response.status_code == 400 and "start_ts" in response.json()["detail"]
        # `curl -d` without a JSON content type, as Feast's docs post, is read as JSON
        plain = requests.post(f"{server.url}/get-online-features", timeout=10, data=json.dumps(
            {"features": ["driver_daily:rating"], "entities": {"driver_id": [1]}}))
        assert plain.status_code == 200, plain.text
        # the server is still healthy after all that
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200


def test_materialize_incremental_continues_where_it_ended(repo):
    keel_features(repo, "materialize", "2025-01-01", "2025-01-05", "-v", "driver_daily")
    second = keel_features(repo, "materialize-incremental", "2025-01-12", "-v", "driver_daily").stdout
    assert "2025-01-05T00:00:00Z to 2025-01-12T00:00:00Z" in second, second
    described = keel_features(repo, "describe", "driver_daily").stdout
    assert described.count("rows_written") == 2, described
    # A view never materialized starts its ttl back from now (Feast's rule).
    now = datetime.now(timezone.utc)
    end = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    third = keel_features(repo, "materialize-incremental", end, "-v", "driver_stats").stdout
    assert f"driver_stats: {(now - timedelta(days=1)).strftime('%Y-%m-%d')}" in third, third


def test_offline_push_is_seen_by_historical_retrieval(repo, tmp_path):
    with FeatureServer(repo) as server:
        response = server.post("/push", {"push_source_name": "stats_push", "to": "offline", "df": {
            "driver_id": [4242], "event_timestamp": ["2025-01-03T00:00:00Z"],
            "conv_rate": [0.5], "trips": [3]}})
        assert response.status_code == 200, response.text
    entities = pd.DataFrame({"driver_id": [4242, 4242],
                             "event_timestamp": pd.to_datetime(["2025-01-03T12:00:00Z", "2025-01-05T00:00:00Z"])})
    entities.to_parquet(tmp_path / "e.parquet", index=False)
    keel_features(repo, "get-historical", "--entities", str(tmp_path / "e.parquet"),
                  "--features", "driver_stats:trips", "-o", str(tmp_path / "o.parquet"))
    got = pd.read_parquet(tmp_path / "o.parquet")
    assert got["trips"].iloc[0] == 3
    assert pd.isna(got["trips"].iloc[1])  # two days later: outside the 1-day ttl


def test_keel_server_mounts_the_feature_server(repo, tmp_path):
    keel_features(repo, "materialize", "2025-01-01", "2025-01-12")
    server = KeelServer(tmp_path / "server", extra_args=["--feature-repo", str(repo)])
    server.start()
    try:
        assert requests.get(f"{server.uri}/features/health", timeout=5).status_code == 200
        response = requests.post(f"{server.uri}/features/get-online-features", json={
            "features": ["driver_daily:rating"], "entities": {"driver_id": [1, 2, 3]}}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["metadata"]["feature_names"] == ["driver_id", "rating"]
        # behind the server's host check, as every other route
        rebound = requests.get(f"{server.uri}/features/health",
                               headers={"Host": "attacker.example"}, timeout=5)
        assert rebound.status_code == 403
    finally:
        server.stop()


def test_historical_retrieval_through_the_api(repo):
    entities = pd.read_parquet(repo / "data" / "entities.parquet").head(40)
    want = expected_historical(repo, entities)
    with FeatureServer(repo) as server:
        response = server.post("/get-historical-features", {
            "features": FEATURES,
            "entities": {
                "driver_id": entities["driver_id"].tolist(),
                "event_timestamp": [t.isoformat() for t in entities["event_timestamp"]],
            }})
        assert response.status_code == 200, response.text
        body = response.json()
        names = body["metadata"]["feature_names"]
        assert names == ["driver_id", "event_timestamp", "conv_rate", "trips", "rating"]
        columns = {name: result["values"] for name, result in zip(names, body["results"])}
        for name in ["conv_rate", "trips", "rating"]:
            got = pd.Series(columns[name], dtype="float64")
            expected = want[name].astype("float64")
            assert (got.isna() == expected.isna()).all(), name
            np.testing.assert_allclose(got[got.notna()], expected[expected.notna()], rtol=1e-7)
        missing = server.post("/get-historical-features", {
            "features": FEATURES, "entities": {"driver_id": [1]}})
        assert missing.status_code == 400 and "event_timestamp" in missing.json()["detail"]


def test_on_demand_features_offline_and_online(repo, tmp_path):
    entities = pd.read_parquet(repo / "data" / "entities.parquet")
    entities["val_to_add"] = np.arange(len(entities), dtype="int64") % 7
    entities.to_parquet(tmp_path / "e.parquet", index=False)
    keel_features(repo, "get-historical", "--entities", str(tmp_path / "e.parquet"), "--features",
                  "driver_stats:conv_rate,driver_stats:trips,conv_adjusted:conv_plus_val,conv_adjusted:busy",
                  "-o", str(tmp_path / "o.parquet"))
    got = pd.read_parquet(tmp_path / "o.parquet")
    conv = got["conv_rate"].astype("float64")  # computed from the Float32 value, widened
    want = conv + got["val_to_add"]
    assert (got["conv_plus_val"].isna() == conv.isna()).all()
    np.testing.assert_allclose(got["conv_plus_val"][conv.notna()], want[conv.notna()], rtol=0, atol=1e-12)
    # SQL: a NULL condition is not true, so rows without trips are 'calm'
    busy = np.where(got["trips"].fillna(0) > 50, "busy", "calm")
    assert (got["busy"].to_numpy() == busy).all()



def test_on_demand_features_need_their_request_data(repo):
    with FeatureServer(repo) as server:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        server.post("/push", {"push_source_name": "stats_push", "df": {
            "driver_id": [7], "event_timestamp": [now.isoformat()], "conv_rate": [0.25], "trips": [70]}})
        response = server.post("/get-online-features", {
            "features": ["conv_adjusted:conv_plus_val", "conv_adjusted:busy", "driver_stats:trips"],
            "entities": {"driver_id": [7, 9999], "val_to_add": [10, 1]}})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["metadata"]["feature_names"] == ["driver_id", "val_to_add", "conv_plus_val", "busy", "trips"]
        assert body["results"][2]["values"] == [10.25, None]
        assert body["results"][3]["values"] == ["busy", "calm"]
        missing = server.post("/get-online-features", {
            "features": ["conv_adjusted:conv_plus_val"], "entities": {"driver_id": [7]}})
        assert missing.status_code == 400 and "val_to_add" in missing.json()["detail"], missing.text


def test_running_server_picks_up_a_later_apply(repo):
    keel_features(repo, "materialize", "2025-01-01", "2025-01-12")
    request = {"feature_service": "daily_only", "entities": {"driver_id": [1, 2]}}
    with FeatureServer(repo) as server:
        assert server.post("/get-online-features", request).status_code == 404
        text = (repo / "features.yaml").read_text()
        text += "  - name: daily_only\n    features:\n      - driver_daily\n"
        (repo / "features.yaml").write_text(text)
        assert "created feature service daily_only" in keel_features(repo, "apply").stdout
        deadline = time.monotonic() + 60
        while True:  # the server re-reads the registry every second
            response = server.post("/get-online-features", request)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert response.json()["metadata"]["feature_names"] == ["driver_id", "rating"]
