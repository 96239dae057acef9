#!/usr/bin/env python3
# Origin: copied from the project's shared benchmark, /work/shared/bench/tracking_workload.py
# (our own script). Changes in this copy: `--skip-registry`, and a registry phase that
# is reported as failed instead of aborting the run on servers without a model registry.
"""Tracking-server workload, driven by the real `mlflow` client.

Points MlflowClient at a tracking URI and runs the same workload against any
server (MLflow's own, or ours), printing one JSON line of phase timings.

usage: tracking_workload.py URI [--runs N] [--threads T] [--steps S] [--skip-registry]
"""
import argparse, json, os, random, tempfile, threading, time, uuid

from mlflow.tracking import MlflowClient
from mlflow.entities import Metric, Param, RunTag


def timed(phases, name):
    class T:
        def __enter__(self):
            self.t = time.perf_counter()
        def __exit__(self, *a):
            phases[name] = round(time.perf_counter() - self.t, 3)
    return T()


def log_run(client, exp_id, i, steps, rng):
    run = client.create_run(exp_id, run_name=f"run-{i}", tags={"team": "a" if i % 2 else "b"})
    rid = run.info.run_id
    now = int(time.time() * 1000)
    params = [Param(f"p{k}", str(rng.choice(["x", "y", "z"]))) for k in range(10)]
    tags = [RunTag(f"t{k}", f"v{k}") for k in range(5)]
    metrics = [Metric(f"m{k}", rng.random(), now + s, s) for k in range(20) for s in range(steps)]
    for off in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[off:off + 1000],
                         params=params if off == 0 else [], tags=tags if off == 0 else [])
    client.set_terminated(rid)
    return rid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--skip-registry", action="store_true",
                    help="leave out the model-registry phase (reported as absent)")
    a = ap.parse_args()
    client = MlflowClient(tracking_uri=a.uri, registry_uri=a.uri)
    phases = {}
    exp_id = client.create_experiment(f"bench-{uuid.uuid4().hex[:8]}")

    with timed(phases, "log_runs_serial"):
        rng = random.Random(1)
        ids = [log_run(client, exp_id, i, a.steps, rng) for i in range(a.runs // 2)]

    errors = []
    def worker(t):
        rng = random.Random(100 + t)
        try:
            for i in range(a.runs // 2 // a.threads):
                ids.append(log_run(client, exp_id, 10_000 + t * 1000 + i, a.steps, rng))
        except Exception as e:  # a server that locks up under concurrency shows here
            errors.append(repr(e)[:200])
    with timed(phases, f"log_runs_{a.threads}_threads"):
        th = [threading.Thread(target=worker, args=(t,)) for t in range(a.threads)]
        [t.start() for t in th]
        [t.join() for t in th]

    with timed(phases, "search_runs_x20"):
        for _ in range(20):
            res = client.search_runs([exp_id], "metrics.m0 > 0.5 and params.p0 = 'x'",
                                     order_by=["metrics.m1 DESC"], max_results=100)
    phases["search_hits"] = len(res)

    with timed(phases, "search_all_pages"):
        n, tok = 0, None
        while True:
            page = client.search_runs([exp_id], "", max_results=50, page_token=tok)
            n += len(page)
            tok = page.token
            if not tok:
                break
    phases["runs_found"] = n

    with timed(phases, "metric_history_x50"):
        for rid in ids[:50]:
            h = client.get_metric_history(rid, "m3")
    phases["history_len"] = len(h)

    with timed(phases, "artifacts_20x10"):
        with tempfile.TemporaryDirectory() as d:
            for k in range(10):
                with open(os.path.join(d, f"f{k}.txt"), "w") as f:
                    f.write("x" * 10_000)
            for rid in ids[:20]:
                client.log_artifacts(rid, d, "data")
            listed = client.list_artifacts(ids[0], "data")
            back = client.download_artifacts(ids[0], "data/f3.txt", d)
    phases["artifacts_listed"] = len(listed)

    if a.skip_registry:
        phases["registry"] = "skipped"
    else:
        try:
            with timed(phases, "registry"):
                name = f"model-{uuid.uuid4().hex[:6]}"
                client.create_registered_model(name)
                for rid in ids[:10]:
                    mv = client.create_model_version(name, f"runs:/{rid}/data", rid)
                client.set_registered_model_alias(name, "champion", mv.version)
                got = client.get_model_version_by_alias(name, "champion")
            phases["alias_version"] = got.version
        except Exception as e:  # e.g. a server without a model registry
            phases["registry"] = "failed: " + repr(e)[:200]
    phases["errors"] = errors
    phases["total"] = round(sum(v for k, v in phases.items() if isinstance(v, float)), 3)
    print(json.dumps(phases))


if __name__ == "__main__":
    main()
