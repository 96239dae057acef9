"""Many clients at once: no request fails and every acknowledged write is there."""

import threading

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from e2e_helpers import now_ms

N_THREADS = 8
RUNS_PER_THREAD = 5
N_METRIC_KEYS = 20
N_STEPS = 10


def run_threads(target):
    errors = []

    def guarded(thread_idx):
        try:
            target(thread_idx)
        except Exception as error:  # collected and asserted on below
            errors.append(f"thread {thread_idx}: {error!r}"[:500])

    threads = [threading.Thread(target=guarded, args=(idx,)) for idx in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_eight_threads_logging_runs(tracking_uri, experiment_id):
    created = {}
    lock = threading.Lock()

    def worker(thread_idx):
        client = MlflowClient(tracking_uri=tracking_uri)
        for run_idx in range(RUNS_PER_THREAD):
            run_id = client.create_run(experiment_id, run_name=f"t{thread_idx}-r{run_idx}").info.run_id
            timestamp = now_ms()
            metrics = [Metric(f"m{k}", float(thread_idx * 1000 + run_idx * 10 + step), timestamp, step)
                       for k in range(N_METRIC_KEYS) for step in range(N_STEPS)]
            client.log_batch(run_id, metrics=metrics,
                             params=[Param("thread", str(thread_idx)), Param("run", str(run_idx))],
                             tags=[RunTag("owner", f"thread-{thread_idx}")])
            client.log_metric(run_id, "single", 1.0)
            client.set_terminated(run_id)
            with lock:
                created[run_id] = (thread_idx, run_idx)

    errors = run_threads(worker)
    assert errors == []
    assert len(created) == N_THREADS * RUNS_PER_THREAD

    client = MlflowClient(tracking_uri=tracking_uri)
    runs = client.search_runs([experiment_id], "", max_results=1000)
    assert {r.info.run_id for r in runs} == set(created)
    for run in runs:
        thread_idx, run_idx = created[run.info.run_id]
        assert run.info.status == "FINISHED"
        assert run.data.params == {"thread": str(thread_idx), "run": str(run_idx)}
        assert run.data.tags["owner"] == f"thread-{thread_idx}"
        assert len(run.data.metrics) == N_METRIC_KEYS + 1
        assert run.data.metrics["m0"] == float(thread_idx * 1000 + run_idx * 10 + N_STEPS - 1)
    some_run = next(iter(created))
    assert len(client.get_metric_history(some_run, "m7")) == N_STEPS


def test_eight_threads_writing_one_run(tracking_uri, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    n_points = 50

    def worker(thread_idx):
        thread_client = MlflowClient(tracking_uri=tracking_uri)
        for step in range(n_points):
            thread_client.log_metric(run_id, "shared", float(thread_idx), step=thread_idx * n_points + step)
        thread_client.log_param(run_id, f"p{thread_idx}", "v")
        thread_client.log_param(run_id, "same-everywhere", "v")

    errors = run_threads(worker)
    assert errors == []
    history = client.get_metric_history(run_id, "shared")
    assert sorted(m.step for m in history) == list(range(N_THREADS * n_points))
    params = client.get_run(run_id).data.params
    assert params == {**{f"p{i}": "v" for i in range(N_THREADS)}, "same-everywhere": "v"}


def test_concurrent_create_experiment_with_one_name_has_one_winner(tracking_uri):
    name = f"race-{now_ms()}"
    outcomes = []
    lock = threading.Lock()

    def worker(thread_idx):
        thread_client = MlflowClient(tracking_uri=tracking_uri)
        try:
            experiment_id = thread_client.create_experiment(name)
            outcome = ("created", experiment_id)
        except Exception as error:
            outcome = ("refused", getattr(error, "error_code", repr(error)))
        with lock:
            outcomes.append(outcome)

    assert run_threads(worker) == []
    created = [o for o in outcomes if o[0] == "created"]
    refused = [o for o in outcomes if o[0] == "refused"]
    assert len(created) == 1
    assert refused == [("refused", "RESOURCE_ALREADY_EXISTS")] * (N_THREADS - 1)
