#!/usr/bin/env python3
"""HTTP load against MLflow-compatible tracking servers, with plain JSON requests.

Two measurements, each run against every target in turn (same sitting, same machine):

  log-batch  C concurrent clients each send R `runs/log-batch` requests of 1000 metrics
             to their own run: requests/s, metric points/s, p50/p99 latency.
  search     an experiment seeded with S runs x 20 metrics (+10 params) through the API,
             or with --seed-db straight into each server's SQLite file through its own schema,
             then Q sequential `runs/search` requests
             (`metrics.m0 > 0.5 and params.p0 = 'x'`, order `metrics.m1 DESC`, max 100):
             p50/p99 latency, and the same query from C concurrent clients: requests/s.

The load generator runs on the same cores as the servers; it is a thread pool over
`requests`, so it is the same overhead for every target.

usage: load_http.py --target mlflow=http://127.0.0.1:5000 --target keel=http://127.0.0.1:5001
                    [--clients 8] [--batches 25] [--seed-runs 10000] [--queries 50]
"""
import argparse
import json
import random
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

API = "/api/2.0/mlflow"
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p0 = 'x'"
SEARCH_ORDER = ["metrics.m1 DESC"]
N_SEED_METRICS = 20
N_SEED_PARAMS = 10

_local = threading.local()


def session():
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def call(base, endpoint, body):
    response = session().post(f"{base}{API}/{endpoint}", data=json.dumps(body),
                              headers={"Content-Type": "application/json"}, timeout=600)
    if response.status_code != 200:
        raise RuntimeError(f"{endpoint}: {response.status_code} {response.text[:200]}")
    return response.json()


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def create_experiment(base, prefix):
    return call(base, "experiments/create", {"name": f"{prefix}-{uuid.uuid4().hex[:8]}"})["experiment_id"]


def bench_log_batch(base, n_clients, n_batches):
    experiment_id = create_experiment(base, "load-log-batch")
    run_ids = [call(base, "runs/create", {"experiment_id": experiment_id})["run"]["info"]["run_id"]
               for _ in range(n_clients)]
    latencies, errors = [], []
    lock = threading.Lock()

    def client(client_idx):
        run_id = run_ids[client_idx]
        now = int(time.time() * 1000)
        for batch_idx in range(n_batches):
            body = {"run_id": run_id, "metrics": [
                {"key": f"m{k}", "value": random.random(), "timestamp": now + batch_idx, "step": batch_idx}
                for k in range(1000)]}
            started = time.perf_counter()
            try:
                call(base, "runs/log-batch", body)
            except Exception as error:  # counted, not fatal: a server that fails shows here
                with lock:
                    errors.append(repr(error)[:200])
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        list(pool.map(client, range(n_clients)))
    wall = time.perf_counter() - started
    return {
        "requests/s": len(latencies) / wall,
        "points/s": len(latencies) * 1000 / wall,
        "p50 ms": 1000 * percentile(latencies, 0.5) if latencies else None,
        "p99 ms": 1000 * percentile(latencies, 0.99) if latencies else None,
        "errors": len(errors),
    }


def seed(base, n_runs, n_clients):
    experiment_id = create_experiment(base, "load-search")
    errors = []

    def seed_one(run_idx):
        rng = random.Random(run_idx)
        try:
            run_id = call(base, "runs/create", {"experiment_id": experiment_id, "run_name": f"r{run_idx}",
                                                 "start_time": int(time.time() * 1000)})["run"]["info"]["run_id"]
            now = int(time.time() * 1000)
            call(base, "runs/log-batch", {
                "run_id": run_id,
                "metrics": [{"key": f"m{k}", "value": rng.random(), "timestamp": now, "step": 0}
                            for k in range(N_SEED_METRICS)],
                "params": [{"key": f"p{k}", "value": rng.choice("xyz")} for k in range(N_SEED_PARAMS)],
            })
        except Exception as error:
            errors.append(repr(error)[:200])

    started = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        list(pool.map(seed_one, range(n_runs)))
    return experiment_id, time.perf_counter() - started, len(errors)


def seed_sql(kind, db, experiment_id, n_runs):
    """Inserts runs straight into a server's SQLite file, through that server's own schema
    (`kind` is mlflow or keel): MLflow's API seeds ~12 runs/s here, too slow for 100k."""
    import sqlite3
    now = int(time.time() * 1000)
    runs, metrics, params, tags = [], [], [], []
    for run_idx in range(n_runs):
        rng = random.Random(run_idx)
        run_id = uuid.UUID(int=rng.getrandbits(128)).hex
        runs.append((run_id, f"r{run_idx}", now - run_idx, f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"))
        metrics.extend((run_id, f"m{k}", rng.random(), now) for k in range(N_SEED_METRICS))
        params.extend((run_id, f"p{k}", rng.choice("xyz")) for k in range(N_SEED_PARAMS))
        tags.append((run_id, "mlflow.runName", f"r{run_idx}"))
    started = time.perf_counter()
    con = sqlite3.connect(db, timeout=120)
    with con:
        if kind == "mlflow":
            con.executemany("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
                            " status, start_time, source_version, lifecycle_stage, artifact_uri, experiment_id)"
                            " VALUES (?, ?, 'UNKNOWN', '', '', 'bench', 'FINISHED', ?, '', 'active', ?, ?)",
                            [r + (int(experiment_id),) for r in runs])
            for table in ("metrics", "latest_metrics"):
                con.executemany(f"INSERT INTO {table} (run_uuid, key, value, timestamp, step, is_nan)"
                                " VALUES (?, ?, ?, ?, 0, 0)", metrics)
        else:
            con.executemany("INSERT INTO runs (run_uuid, name, user_id, status, start_time, artifact_uri,"
                            " lifecycle_stage, experiment_id) VALUES (?, ?, 'bench', 'FINISHED', ?, ?, 'active', ?)",
                            [r + (int(experiment_id),) for r in runs])
            for table in ("metrics", "latest_metrics"):
                con.executemany(f"INSERT INTO {table} (run_uuid, key, value, timestamp, step, is_nan)"
                                " VALUES (?, ?, ?, ?, 0, 0)", metrics)
        con.executemany("INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)", params)
        con.executemany("INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)", tags)
    con.close()
    return time.perf_counter() - started


def search_once(base, experiment_id):
    started = time.perf_counter()
    result = call(base, "runs/search", {"experiment_ids": [experiment_id], "filter": SEARCH_FILTER,
                                        "order_by": SEARCH_ORDER, "max_results": 100})
    return time.perf_counter() - started, len(result.get("runs", []))


def bench_search(base, n_runs, n_queries, n_clients, sql_seed=None):
    if sql_seed:
        experiment_id = create_experiment(base, "load-search")
        seed_seconds, seed_errors = seed_sql(sql_seed[0], sql_seed[1], experiment_id, n_runs), 0
    else:
        experiment_id, seed_seconds, seed_errors = seed(base, n_runs, n_clients)
    search_once(base, experiment_id)  # warm-up
    samples = [search_once(base, experiment_id) for _ in range(n_queries)]
    latencies = [s[0] for s in samples]
    started = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        list(pool.map(lambda _: search_once(base, experiment_id), range(n_queries)))
    concurrent_wall = time.perf_counter() - started
    return {
        "seed s": seed_seconds,
        "seed errors": seed_errors,
        "hits": samples[-1][1],
        "p50 ms": 1000 * percentile(latencies, 0.5),
        "p99 ms": 1000 * percentile(latencies, 0.99),
        f"requests/s ({n_clients} clients)": n_queries / concurrent_wall,
    }


def table(title, results):
    names = list(results)
    keys = [k for k in results[names[0]]]
    lines = [f"### {title}", "", "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key in keys:
        cells = []
        for name in names:
            value = results[name].get(key)
            cells.append(f"{value:.1f}" if isinstance(value, float) else str(value))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", required=True, help="name=URI, repeatable")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batches", type=int, default=25, help="log-batch requests per client")
    parser.add_argument("--seed-runs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--only", choices=["log-batch", "search"])
    parser.add_argument("--seed-db", action="append", default=[],
                        help="name=PATH of the target's SQLite file: seed the search runs with SQL "
                             "through that server's schema instead of through its API (name mlflow or keel)")
    args = parser.parse_args()
    targets = dict(t.split("=", 1) for t in args.target)

    if args.only != "search":
        results = {}
        for name, base in targets.items():
            print(f"log-batch against {name} ...", flush=True)
            results[name] = bench_log_batch(base, args.clients, args.batches)
        print()
        print(table(f"log-batch: 1000 metrics/request, {args.clients} clients x {args.batches} requests", results))
        print()
    if args.only != "log-batch":
        results = {}
        for name, base in targets.items():
            print(f"seeding {args.seed_runs} runs and searching against {name} ...", flush=True)
            seed_dbs = dict(d.split("=", 1) for d in args.seed_db)
            sql_seed = (name, seed_dbs[name]) if name in seed_dbs else None
            results[name] = bench_search(base, args.seed_runs, args.queries, args.clients, sql_seed)
        print()
        print(table(f"search: {args.seed_runs} runs x {N_SEED_METRICS} metrics, "
                    f"filter `{SEARCH_FILTER}`, order `{SEARCH_ORDER[0]}`, max 100, "
                    f"{args.queries} queries", results))


if __name__ == "__main__":
    main()
