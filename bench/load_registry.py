#!/usr/bin/env python3
"""Model-registry read load against MLflow's server and Keel, same sitting, same data.

Seeds N_MODELS registered models x N_VERSIONS versions (alias `champion` on the last
version, one tag per version) straight into each server's SQLite database — through
each server's own schema, while it runs — because seeding 100k versions through
MLflow's API would take hours. Then, over HTTP with plain JSON:

  get-by-alias      GET registered-models/alias?name=model-i&alias=champion
  get-download-uri  GET model-versions/get-download-uri?name=model-i&version=v
  search            GET model-versions/search?filter=name='model-i' and tags.stage='s'

Each: p50/p99 of sequential requests from one client, and requests/s from C clients.

usage: load_registry.py --mlflow URI:DB --keel URI:DB [--models 10000] [--versions 10]
                        [--requests 400] [--clients 8]
"""
import argparse
import json
import random
import sqlite3
import statistics
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import requests

API = "/api/2.0/mlflow"
_local = threading.local()


def session():
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def seed_mlflow(db, n_models, n_versions):
    now = int(time.time() * 1000)
    con = sqlite3.connect(db, timeout=60)
    with con:
        con.executemany(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, workspace) VALUES (?, ?, ?, 'default')",
            [(f"model-{i}", now, now) for i in range(n_models)])
        con.executemany(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage, source,"
            " run_id, status, storage_location, workspace) VALUES (?, ?, ?, ?, 'None', ?, '', 'READY', ?, 'default')",
            [(f"model-{i}", v, now, now, f"mlflow-artifacts:/0/models/m-{i}-{v}/artifacts",
              f"mlflow-artifacts:/0/models/m-{i}-{v}/artifacts")
             for i in range(n_models) for v in range(1, n_versions + 1)])
        con.executemany(
            "INSERT INTO model_version_tags (key, value, name, version, workspace) VALUES ('stage', ?, ?, ?, 'default')",
            [(f"s{v % 3}", f"model-{i}", v) for i in range(n_models) for v in range(1, n_versions + 1)])
        con.executemany(
            "INSERT INTO registered_model_aliases (alias, version, name, workspace) VALUES ('champion', ?, ?, 'default')",
            [(n_versions, f"model-{i}") for i in range(n_models)])
    con.close()


def seed_keel(db, n_models, n_versions):
    now = int(time.time() * 1000)
    con = sqlite3.connect(db, timeout=60)
    with con:
        con.executemany(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, last_version) VALUES (?, ?, ?, ?)",
            [(f"model-{i}", now, now, n_versions) for i in range(n_models)])
        ids = dict(con.execute("SELECT name, registered_model_id FROM registered_models WHERE name LIKE 'model-%'"))
        con.executemany(
            "INSERT INTO model_versions (registered_model_id, version, creation_time, last_updated_time, source,"
            " storage_location) VALUES (?, ?, ?, ?, ?, ?)",
            [(ids[f"model-{i}"], v, now, now, f"mlflow-artifacts:/0/models/m-{i}-{v}/artifacts",
              f"mlflow-artifacts:/0/models/m-{i}-{v}/artifacts")
             for i in range(n_models) for v in range(1, n_versions + 1)])
        con.executemany(
            "INSERT INTO model_version_tags (registered_model_id, version, key, value) VALUES (?, ?, 'stage', ?)",
            [(ids[f"model-{i}"], v, f"s{v % 3}") for i in range(n_models) for v in range(1, n_versions + 1)])
        con.executemany(
            "INSERT INTO registered_model_aliases (registered_model_id, alias, version) VALUES (?, 'champion', ?)",
            [(ids[f"model-{i}"], n_versions) for i in range(n_models)])
    con.close()


def requests_for(kind, n_models, n_versions, rng):
    i = rng.randrange(n_models)
    if kind == "get-by-alias":
        return f"{API}/registered-models/alias?name=model-{i}&alias=champion", "version"
    if kind == "get-download-uri":
        return f"{API}/model-versions/get-download-uri?name=model-{i}&version={rng.randint(1, n_versions)}", "artifact_uri"
    query = urllib.parse.quote(f"name='model-{i}' and tags.stage='s1'")
    return f"{API}/model-versions/search?filter={query}", "model_versions"


def timed_get(base, path, expect_key):
    start = time.perf_counter()
    response = session().get(base + path, timeout=120)
    elapsed = time.perf_counter() - start
    if response.status_code != 200 or expect_key not in json.dumps(response.json()):
        raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
    return elapsed


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(base, kind, args):
    rng = random.Random(7)
    for _ in range(20):  # warm up connections and caches
        timed_get(base, *requests_for(kind, args.models, args.versions, rng))
    latencies = [timed_get(base, *requests_for(kind, args.models, args.versions, rng)) for _ in range(args.requests)]
    errors = []

    def worker(seed):
        worker_rng = random.Random(seed)
        for _ in range(args.requests // args.clients):
            try:
                timed_get(base, *requests_for(kind, args.models, args.versions, worker_rng))
            except Exception as exc:  # counted, reported
                errors.append(repr(exc)[:200])

    start = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(worker, range(args.clients)))
    elapsed = time.perf_counter() - start
    done = (args.requests // args.clients) * args.clients
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "rps": round(done / elapsed, 1),
        "errors": len(errors),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mlflow", required=True, help="URI:DBPATH, e.g. http://127.0.0.1:5000:/tmp/m.db")
    parser.add_argument("--keel", required=True)
    parser.add_argument("--models", type=int, default=10000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    targets = {}
    for name, spec, seed in [("mlflow", args.mlflow, seed_mlflow), ("keel", args.keel, seed_keel)]:
        uri, db = spec.rsplit(":", 1)
        start = time.perf_counter()
        seed(db, args.models, args.versions)
        print(f"seeded {name}: {args.models} models x {args.versions} versions in {time.perf_counter() - start:.1f}s", flush=True)
        targets[name] = uri
    results = {}
    for kind in ["get-by-alias", "get-download-uri", "search"]:
        for name in (["mlflow", "keel"] if kind != "get-download-uri" else ["keel", "mlflow"]):
            results[(kind, name)] = measure(targets[name], kind, args)
            print(json.dumps({"kind": kind, "server": name, **results[(kind, name)]}), flush=True)
    print(f"\n### Registry reads: {args.models} models x {args.versions} versions, "
          f"{args.requests} requests, {args.clients} clients\n")
    print("| request | server | p50 ms | p99 ms | req/s | errors |")
    print("|---|---|---|---|---|---|")
    for kind in ["get-by-alias", "get-download-uri", "search"]:
        for name in ["mlflow", "keel"]:
            r = results[(kind, name)]
            print(f"| {kind} | {name} | {r['p50_ms']} | {r['p99_ms']} | {r['rps']} | {r['errors']} |")
        ratio = results[(kind, "keel")]["rps"] / max(results[(kind, "mlflow")]["rps"], 1e-9)
        print(f"| {kind} | keel/mlflow req/s | | | {ratio:.1f}x | |")


if __name__ == "__main__":
    main()
