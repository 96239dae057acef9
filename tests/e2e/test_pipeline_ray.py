"""`keel repro --executor ray`: each stage command runs as a job on a real Ray
head node, submitted through the Ray Jobs REST API of its dashboard, its output
streamed back as the stage's; `dvc.lock` is written as with local processes,
so `dvc status` is clean afterwards. A failing job fails its stage, Ctrl-C
stops the running job on Ray, and a tracked stage's job logs into its run.

The head node is the one `scripts/ray-head.sh start` runs (`.ci/run` does),
found through KEEL_TEST_RAY_ADDRESS. Without it these tests skip on a
developer's machine and fail in CI. Stage commands run in the environment of
the Ray head's processes, so they use only `python3`'s standard library and
the shell. The workspace (pytest's tmp_path) is on the head node's filesystem."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port, keel_bin

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "SHELL": "/bin/sh"}
ENV.pop("RAY_ADDRESS", None)
HOW_TO_START = "start one with `scripts/ray-head.sh start` and `eval \"$(scripts/ray-head.sh env)\"`"
WAIT_S = 120


def ray_get(address, path):
    with urllib.request.urlopen(f"{address}{path}", timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def ray_address():
    address = os.environ.get("KEEL_TEST_RAY_ADDRESS")
    if not address:
        if os.environ.get("CI") == "true":
            pytest.fail(f"KEEL_TEST_RAY_ADDRESS is not set; the Ray executor tests need a Ray head node ({HOW_TO_START})")
        pytest.skip(f"KEEL_TEST_RAY_ADDRESS is not set ({HOW_TO_START})")
    try:
        ray_get(address, "/api/version")
    except OSError as error:
        pytest.fail(f"the Ray executor tests need the Ray dashboard at {address} ({HOW_TO_START}): {error}")
    return address


def run(cwd, *args, check=True):
    result = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def keel_on_ray(cwd, address, *args, check=True):
    return run(cwd, str(keel_bin()), "repro", "--executor", "ray", "--ray-address", address, *args, check=check)


def make_repo(path: Path, dvc_yaml: str, files: dict) -> Path:
    path.mkdir(parents=True)
    run(path, "git", "init", "-q")
    run(path, DVC, "init", "-q")
    for name, text in files.items():
        (path / name).write_text(text)
    (path / "dvc.yaml").write_text(dvc_yaml)
    return path


def jobs_of(address, repo: Path):
    """The Ray jobs Keel submitted for `repo` (its metadata names the workspace)."""
    return [job for job in ray_get(address, "/api/jobs/")
            if (job.get("metadata") or {}).get("keel.root") == str(repo)]


def wait_for(what, predicate):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {WAIT_S}s waiting for {what}")


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


TRAIN_YAML = """\
stages:
  prepare:
    cmd: python3 prepare.py
    deps: [prepare.py, raw.txt]
    outs: [prepared.txt]
  train:
    cmd: python3 train.py
    deps: [train.py, prepared.txt]
    params: [train.epochs]
    outs: [model.txt]
    metrics:
      - metrics.json:
          cache: false
"""

PREPARE_PY = """\
import pathlib
rows = pathlib.Path("raw.txt").read_text().split()
pathlib.Path("prepared.txt").write_text("\\n".join(sorted(rows)) + "\\n")
print(f"prepared {len(rows)} rows")
"""

TRAIN_PY = """\
import json, os, pathlib
rows = pathlib.Path("prepared.txt").read_text().split()
print(f"stage={os.environ['DVC_STAGE']} root={os.environ['DVC_ROOT']}", flush=True)
loss = 1.0
for epoch in range(1, 4):
    loss /= 2
    print(f"epoch {epoch} loss {loss}", flush=True)
pathlib.Path("model.txt").write_text(" ".join(rows) + "\\n")
pathlib.Path("metrics.json").write_text(json.dumps({"loss": loss, "rows": len(rows)}))
"""


def test_a_pipeline_runs_as_ray_jobs_and_dvc_sees_it_up_to_date(tmp_path, ray_address):
    repo = make_repo(tmp_path / "repo", TRAIN_YAML, {
        "raw.txt": "c\na\nb\n", "prepare.py": PREPARE_PY, "train.py": TRAIN_PY,
        "params.yaml": "train:\n  epochs: 3\n",
    })
    result = keel_on_ray(repo, ray_address)
    # The jobs' output comes back as the stages' output.
    assert "[prepare] prepared 3 rows" in result.stdout
    assert f"[train] stage=train root={repo}" in result.stdout
    assert "[train] epoch 3 loss 0.125" in result.stdout
    assert "Running entrypoint" not in result.stdout
    assert json.loads((repo / "metrics.json").read_text()) == {"loss": 0.125, "rows": 3}
    assert (repo / "model.txt").read_text() == "a b c\n"
    lock = (repo / "dvc.lock").read_text()
    assert "prepare:" in lock and "train:" in lock and "metrics.json" in lock

    jobs = jobs_of(ray_address, repo)
    assert sorted((job["metadata"]["keel.stage"], job["status"]) for job in jobs) == [
        ("prepare", "SUCCEEDED"), ("train", "SUCCEEDED")]
    for job in jobs:
        assert job["submission_id"].startswith(f"keel-{job['metadata']['keel.stage']}-")

    status = run(repo, DVC, "status", "--json").stdout
    assert json.loads(status.strip().splitlines()[-1]) == {}
    again = keel_on_ray(repo, ray_address)
    assert "Data and pipelines are up to date." in again.stdout
    assert len(jobs_of(ray_address, repo)) == 2


FAILING_YAML = """\
stages:
  broken:
    cmd: echo partial && exit 3
    outs: [broken.txt]
  after:
    cmd: cp broken.txt after.txt
    deps: [broken.txt]
    outs: [after.txt]
  sibling:
    cmd: echo fine > sibling.txt
    outs: [sibling.txt]
"""


def test_a_failed_ray_job_fails_its_stage_and_keep_going_runs_its_sibling(tmp_path, ray_address):
    repo = make_repo(tmp_path / "repo", FAILING_YAML, {})
    result = keel_on_ray(repo, ray_address, "--keep-going", "--jobs", "1", check=False)
    assert result.returncode == 1
    assert "error: failed to reproduce 'broken': failed to run: echo partial && exit 3, exited with 3 (Ray job keel-broken-" in result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    assert "[broken] partial" in result.stdout
    assert (repo / "sibling.txt").read_text() == "fine\n"
    assert not (repo / "after.txt").exists()
    lock = (repo / "dvc.lock").read_text()
    assert "sibling:" in lock and "broken" not in lock
    statuses = {job["metadata"]["keel.stage"]: job["status"] for job in jobs_of(ray_address, repo)}
    assert statuses == {"broken": "FAILED", "sibling": "SUCCEEDED"}


SLOW_YAML = """\
stages:
  slow:
    cmd: sh slow.sh
    deps: [slow.sh]
    outs: [slow.txt]
"""

SLOW_SH = """\
echo started
sleep 300 &
echo $! > slow.pid
wait
echo never > slow.txt
"""


def test_ctrl_c_stops_the_ray_job(tmp_path, ray_address):
    repo = make_repo(tmp_path / "repo", SLOW_YAML, {"slow.sh": SLOW_SH})
    process = subprocess.Popen(
        [str(keel_bin()), "repro", "--executor", "ray", "--ray-address", ray_address],
        cwd=repo, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid_file = repo / "slow.pid"
        wait_for("the Ray job to start sleeping", lambda: pid_file.exists() and pid_file.read_text().strip())
        sleep_pid = int(pid_file.read_text())
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    assert "error: interrupted" in stderr
    assert "[slow] started" in stdout
    [job] = jobs_of(ray_address, repo)
    assert job["submission_id"].startswith("keel-slow-")
    wait_for("the Ray job to be STOPPED",
             lambda: ray_get(ray_address, f"/api/jobs/{job['submission_id']}")["status"] == "STOPPED")
    wait_for("the command's processes to end", lambda: not process_alive(sleep_pid))
    assert not (repo / "slow.txt").exists()
    assert not (repo / "dvc.lock").exists()


TRACKED_YAML = """\
stages:
  train:
    cmd: python3 log_metric.py
    deps: [log_metric.py]
    outs: [run_id.txt]
"""

# The mlflow client is not on the Ray node: the stage logs through MLflow's REST API.
LOG_METRIC_PY = """\
import json, os, pathlib, time, urllib.request
run_id = os.environ["MLFLOW_RUN_ID"]
body = {"run_id": run_id, "key": "from_ray", "value": 1.5, "timestamp": int(time.time() * 1000), "step": 0}
request = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=30).read()
pathlib.Path("run_id.txt").write_text(run_id)
"""


def test_a_tracked_stage_on_ray_logs_into_its_own_run(tmp_path, ray_address, tracking_uri, client):
    repo = make_repo(tmp_path / "repo", TRACKED_YAML, {"log_metric.py": LOG_METRIC_PY})
    experiment_name = f"ray-{tmp_path.name}"
    keel_on_ray(repo, ray_address, "--track", "--tracking-uri", tracking_uri, "--experiment", experiment_name)
    experiment = client.get_experiment_by_name(experiment_name)
    train = next(run for run in client.search_runs([experiment.experiment_id]) if run.info.run_name == "train")
    assert train.info.run_id == (repo / "run_id.txt").read_text()
    assert train.info.status == "FINISHED"
    assert train.data.metrics == {"from_ray": 1.5}


def test_an_unreachable_ray_dashboard_fails_before_any_stage_runs(tmp_path):
    repo = make_repo(tmp_path / "repo", "stages:\n  hello:\n    cmd: echo hello > hello.txt\n", {})
    address = f"http://127.0.0.1:{free_port()}"
    result = keel_on_ray(repo, address, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach the Ray dashboard at {address}: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Running stage" not in result.stdout
    assert not (repo / "hello.txt").exists()


# A real pipeline: prepare two splits in parallel, train with the mlflow client (fluent API,
# inside the stage's run), evaluate; the same dvc.yaml runs locally and on Ray.
REAL_YAML = """\
stages:
  prepare:
    foreach: [train, test]
    do:
      cmd: {python} prepare.py ${{item}}
      deps: [prepare.py, raw.csv]
      params: [prepare.seed]
      outs:
        - data/${{item}}.csv
  train:
    cmd: {python} train.py
    deps: [train.py, data/train.csv]
    params: [train.lr]
    outs: [model.json]
  evaluate:
    cmd: {python} evaluate.py
    deps: [evaluate.py, model.json, data/test.csv]
    metrics:
      - scores.json:
          cache: false
"""

REAL_PREPARE_PY = """\
import os, sys, yaml
split = sys.argv[1]
seed = yaml.safe_load(open("params.yaml"))["prepare"]["seed"]
rows = [line for i, line in enumerate(open("raw.csv").read().splitlines()[1:]) if (i + seed) % 2 == (split == "test")]
os.makedirs("data", exist_ok=True)
open(f"data/{split}.csv", "w").write("x,y\\n" + "\\n".join(rows) + "\\n")
print(f"prepared {split}: {len(rows)} rows")
"""

REAL_TRAIN_PY = """\
import json, mlflow, yaml
lr = yaml.safe_load(open("params.yaml"))["train"]["lr"]
rows = [tuple(map(float, line.split(","))) for line in open("data/train.csv").read().splitlines()[1:]]
w = 0.0
for epoch in range(20):
    grad = sum((w * x - y) * x for x, y in rows) / len(rows)
    w -= lr * grad
    mlflow.log_metric("train_loss", sum((w * x - y) ** 2 for x, y in rows) / len(rows), step=epoch)
mlflow.log_param("epochs", 20)
json.dump({"w": w}, open("model.json", "w"))
print(f"trained w={w:.4f}")
"""

REAL_EVALUATE_PY = """\
import json
w = json.load(open("model.json"))["w"]
rows = [tuple(map(float, line.split(","))) for line in open("data/test.csv").read().splitlines()[1:]]
json.dump({"mse": sum((w * x - y) ** 2 for x, y in rows) / len(rows)}, open("scores.json", "w"))
"""


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_real_pipeline_runs_in_parallel_and_tracked(tmp_path, executor, tracking_uri, client, request):
    if executor == "ray":
        address = request.getfixturevalue("ray_address")
        where = ["--executor", "ray", "--ray-address", address]
    else:
        where = []
    raw = "x,y\n" + "\n".join(f"{x},{2 * x + 0.1 * (x % 3)}" for x in range(1, 21)) + "\n"
    repo = make_repo(tmp_path / "repo", REAL_YAML.format(python=sys.executable), {
        "raw.csv": raw, "prepare.py": REAL_PREPARE_PY, "train.py": REAL_TRAIN_PY, "evaluate.py": REAL_EVALUATE_PY,
        "params.yaml": "prepare:\n  seed: 1\ntrain:\n  lr: 0.002\n"})
    experiment_name = f"real-{executor}-{tmp_path.name}"
    result = run(repo, str(keel_bin()), "repro", "--jobs", "2", *where, "--track",
                 "--tracking-uri", tracking_uri, "--experiment", experiment_name)
    assert "[prepare@train] prepared train: 10 rows" in result.stdout
    assert "[train] trained w=" in result.stdout
    assert run(repo, DVC, "status", "--json").stdout.strip().splitlines()[-1] == "{}"

    experiment = client.get_experiment_by_name(experiment_name)
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"repro repo", "prepare@train", "prepare@test", "train", "evaluate"}
    parent = runs.pop("repro repo")
    assert parent.info.status == "FINISHED"
    assert {run.data.tags["mlflow.parentRunId"] for run in runs.values()} == {parent.info.run_id}
    train = runs["train"]
    # The mlflow client inside the stage logged into the stage's run.
    history = client.get_metric_history(train.info.run_id, "train_loss")
    assert [metric.step for metric in history] == list(range(20))
    assert train.data.params == {"train.lr": "0.002", "epochs": "20"}
    scores = json.loads((repo / "scores.json").read_text())
    assert runs["evaluate"].data.metrics == {"mse": pytest.approx(scores["mse"])}
    import yaml
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    inputs = client.get_run(runs["evaluate"].info.run_id).inputs.dataset_inputs
    assert {(item.dataset.name, item.dataset.digest) for item in inputs} == {
        (dep["path"], dep["md5"]) for dep in lock["evaluate"]["deps"]}
    log = client.download_artifacts(train.info.run_id, "logs/train.log", str(tmp_path))
    assert "trained w=" in Path(log).read_text()
    if executor == "ray":
        assert {job["status"] for job in jobs_of(address, repo)} == {"SUCCEEDED"}
        assert len(jobs_of(address, repo)) == 4
