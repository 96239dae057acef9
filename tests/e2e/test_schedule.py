"""Pipelines on a cron schedule: `keel server --schedules FILE` reproduces a
real `dvc.yaml` at the times a cron expression names, each run tracked on
the server itself (seen through the real mlflow client), with the recent
runs listed at /api/2.0/keel/schedules and a run on demand."""

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from conftest import KeelServer, keel_bin

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=path, check=True, env=ENV)
    (path / "data.txt").write_text("1\n2\n3\n")
    (path / "dvc.yaml").write_text(
        "stages:\n"
        "  count:\n"
        "    cmd: wc -l < data.txt > count.txt && echo counted\n"
        "    deps: [data.txt]\n"
        "    outs: [count.txt]\n")
    return path


def wait_for(predicate, what, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_scheduled_pipeline_runs_on_its_cron_and_is_tracked(tmp_path):
    repo = make_repo(tmp_path / "repo")
    spec = tmp_path / "schedules.yaml"
    spec.write_text(
        "schedules:\n"
        "  - name: every-2s\n"
        "    repo: repo\n"
        "    cron: '*/2 * * * * *'\n"
        "    experiment: scheduled\n"
        "  - name: yearly\n"
        "    repo: repo\n"
        "    cron: '0 0 1 1 *'\n")
    server = KeelServer(tmp_path / "server", extra_args=["--schedules", str(spec)])
    server.start()
    try:
        url = f"{server.uri}/api/2.0/keel/schedules"

        def two_finished():
            listed = requests.get(url).json()["schedules"]
            runs = listed[0]["runs"]
            done = [run for run in runs if run["status"] == "FINISHED"]
            return listed if len(done) >= 2 else None

        listed = wait_for(two_finished, "two scheduled runs")
        every, yearly = listed
        assert every["name"] == "every-2s" and every["cron"] == "*/2 * * * * *"
        assert yearly["runs"] == [] and yearly["next_run_time"].endswith("-01-01T00:00:00+00:00")
        finished = [run for run in every["runs"] if run["status"] == "FINISHED"]
        # The first run made count.txt; the later ones found the pipeline up to date.
        oldest = finished[-1]
        assert oldest["stages_ran"] == ["count"] and oldest["trigger"] == "cron"
        assert finished[0]["stages_ran"] == []
        assert (repo / "count.txt").read_text().strip() == "3"

        from mlflow.tracking import MlflowClient
        client = MlflowClient(tracking_uri=server.uri)
        experiment = client.get_experiment_by_name("scheduled")
        runs = client.search_runs([experiment.experiment_id], filter_string="tags.`keel.schedule` = 'every-2s'")
        parents = {run.info.run_id: run for run in runs}
        assert oldest["run_id"] in parents and parents[oldest["run_id"]].info.status == "FINISHED"
        stage_runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{oldest['run_id']}'")
        assert [run.info.run_name for run in stage_runs] == ["count"]
        log = client.download_artifacts(stage_runs[0].info.run_id, "logs/count.log", str(tmp_path))
        assert Path(log).read_text() == "counted\n"

        # On demand: the yearly schedule runs now; an unknown one is a 404 in MLflow's format.
        triggered = requests.post(f"{url}/yearly/run")
        assert triggered.status_code == 200, triggered.text
        wait_for(lambda: [run for run in requests.get(url).json()["schedules"][1]["runs"]
                          if run["status"] == "FINISHED" and run["trigger"] == "manual"], "the manual run")
        missing = requests.post(f"{url}/nope/run")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    finally:
        server.stop()


def test_a_bad_schedule_file_stops_the_server_with_a_clear_error(tmp_path):
    make_repo(tmp_path / "repo")
    spec = tmp_path / "schedules.yaml"
    spec.write_text("schedules:\n  - name: broken\n    repo: repo\n    cron: 'every day'\n")
    result = subprocess.run([str(keel_bin()), "server", "--port", "0", "--schedules", str(spec),
                             "--backend-store-uri", f"sqlite:///{tmp_path / 'k.db'}",
                             "--artifacts-destination", str(tmp_path / "a")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "schedule 'broken': 'every day' is not a cron expression" in result.stderr
    assert "panicked" not in result.stderr
