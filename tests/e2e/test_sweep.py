"""`keel sweep`: hyperparameter search over a stage of a real `dvc.yaml`,
trials in parallel in their own copies of the repository, each trial a child
run on the Keel server (through the real mlflow client inside the trial),
the best trial tagged, median-rule pruning from intermediate metrics, and
resumption after Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import keel_bin

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "SHELL": "/bin/sh"}

# The objective is known: smallest at lr=0.01, layers=3, opt=adam.
TRAIN = """\
import json, math, os, sys, time
import yaml
params = yaml.safe_load(open("params.yaml"))["train"]
data = open("data/train.csv").read()
assert data.startswith("x,y"), data
block = os.environ.get("SWEEP_BLOCK_FILE")
while block and os.path.exists(block):
    time.sleep(0.1)
base = (math.log10(params["lr"]) + 2) ** 2 + 0.1 * (params["layers"] - 3) ** 2 \\
    + (0.5 if params["opt"] == "sgd" else 0.0)
steps = int(os.environ.get("SWEEP_STEPS", "1"))
run_id = os.environ.get("MLFLOW_RUN_ID")
if run_id:
    from mlflow.tracking import MlflowClient
    client = MlflowClient()
for step in range(steps):
    value = base + 1.0 / (step + 1)
    if run_id:
        client.log_metric(run_id, "val_loss", value, step=step)
    if steps > 1:
        time.sleep(float(os.environ.get("SWEEP_STEP_SECONDS", "0.4")))
print(f"trained lr={params['lr']} layers={params['layers']} opt={params['opt']}")
os.makedirs("model", exist_ok=True)
open("model/weights.txt", "w").write(str(params))
json.dump({"val_loss": base, "train": {"acc": 1.0 / (1.0 + base)}}, open("metrics.json", "w"))
"""

DVC_YAML = """\
stages:
  train:
    cmd: {python} train.py
    deps: [train.py, data]
    params: [train]
    outs: [model]
    metrics:
      - metrics.json:
          cache: false
"""

SPACE = """\
train.lr: {type: loguniform, low: 1.0e-4, high: 1.0}
train.layers: {type: int, low: 1, high: 6}
train.opt: {type: choice, values: [adam, sgd]}
"""


def run(cwd, *args, check=True, env=None, **kwargs):
    result = subprocess.run(list(args), cwd=cwd, env=env or ENV, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    run(path, "git", "init", "-q")
    run(path, DVC, "init", "-q")
    (path / "data").mkdir()
    (path / "data" / "train.csv").write_text("x,y\n1,2\n")
    (path / "train.py").write_text(TRAIN)
    (path / "params.yaml").write_text("train:\n  lr: 0.1\n  layers: 2\n  opt: sgd\n  epochs: 3\n")
    (path / "dvc.yaml").write_text(DVC_YAML.format(python=sys.executable))
    (path / "space.yaml").write_text(SPACE)
    return path


def keel(cwd, *args, check=True, env=None):
    return run(cwd, str(keel_bin()), *args, check=check, env=env)


def state(repo, name="train"):
    return json.loads((repo / ".dvc" / "tmp" / "sweeps" / name / "sweep.json").read_text())


def expected_objective(params):
    import math
    return (math.log10(params["train.lr"]) + 2) ** 2 + 0.1 * (params["train.layers"] - 3) ** 2 \
        + (0.5 if params["train.opt"] == "sgd" else 0.0)


def test_a_tracked_sweep_runs_trials_in_parallel_and_tags_the_best(tmp_path, tracking_uri, client):
    repo = make_repo(tmp_path / "repo")
    experiment = f"sweep-{tmp_path.name}"
    result = keel(repo, "sweep", "train", "--space", "space.yaml", "--trials", "6", "--parallel", "2",
                  "--objective", "metrics.val_loss", "--strategy", "random", "--seed", "3",
                  "--tracking-uri", tracking_uri, "--experiment", experiment)
    assert "[trial 0] trained" in result.stdout, result.stdout
    recorded = state(repo)
    assert [trial["state"] for trial in recorded["trials"]] == ["complete"] * 6
    for trial in recorded["trials"]:
        params = dict(trial["params"])
        assert 1e-4 <= params["train.lr"] <= 1.0 and params["train.opt"] in ("adam", "sgd")
        assert isinstance(params["train.layers"], int) and 1 <= params["train.layers"] <= 6
        assert trial["objective"] == pytest.approx(expected_objective(params))
    best = min(recorded["trials"], key=lambda trial: trial["objective"])
    assert f"Best trial {best['number']}" in result.stdout

    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6 and parent.info.status == "FINISHED"
    assert parent.data.tags["keel.sweep.best_trial"] == str(best["number"])
    assert parent.data.metrics["best_val_loss"] == pytest.approx(best["objective"])
    tagged = [run for run in children if run.data.tags.get("keel.sweep.best") == "true"]
    assert [run.info.run_id for run in tagged] == [best["run_id"]]
    winner = tagged[0]
    assert winner.data.params["train.opt"] == dict(best["params"])["train.opt"]
    assert winner.data.metrics["val_loss"] == pytest.approx(best["objective"])
    assert winner.info.status == "FINISHED"
    # The trial's output is the run's log artifact.
    log_path = client.download_artifacts(winner.info.run_id, f"logs/trial-{best['number']}.log", str(tmp_path))
    assert "trained lr=" in Path(log_path).read_text()
    # The user's workspace is untouched; the best trial's outputs are kept, the others removed.
    assert (repo / "params.yaml").read_text().startswith("train:\n  lr: 0.1\n")
    assert not (repo / "model").exists()
    trials_dir = repo / ".dvc" / "tmp" / "sweeps" / "train" / "trials"
    assert sorted(p.name for p in trials_dir.iterdir()) == [str(best["number"])]
    kept = (trials_dir / str(best["number"]) / "model" / "weights.txt").read_text()
    assert repr(dict(best["params"])["train.opt"]) in kept
    # A stage's untouched parameters stay as they were in the trial's params.yaml.
    import yaml
    trial_params = yaml.safe_load((trials_dir / str(best["number"]) / "params.yaml").read_text())
    assert trial_params["train"]["epochs"] == 3


def test_grid_runs_every_point_once_and_stops_when_exhausted(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "grid.yaml").write_text(
        "train.lr: {type: choice, values: [0.001, 0.01]}\n"
        "train.layers: {type: int, low: 2, high: 4}\n"
        "train.opt: {type: choice, values: [adam]}\n")
    result = keel(repo, "sweep", "train", "--space", "grid.yaml", "--strategy", "grid", "--parallel", "3",
                  "--objective", "metrics.json:val_loss", "--name", "g")
    trials = state(repo, "g")["trials"]
    points = sorted((dict(t["params"])["train.lr"], dict(t["params"])["train.layers"]) for t in trials)
    assert points == [(lr, layers) for lr in (0.001, 0.01) for layers in (2, 3, 4)]
    best = min(trials, key=lambda trial: trial["objective"])
    assert dict(best["params"]) == {"train.lr": 0.01, "train.layers": 3, "train.opt": "adam"}
    assert "The grid is exhausted." in result.stdout
    # Running it again finds nothing left to try.
    again = keel(repo, "sweep", "train", "--space", "grid.yaml", "--strategy", "grid",
                 "--objective", "metrics.json:val_loss", "--name", "g")
    assert len(state(repo, "g")["trials"]) == 6
    assert "Resuming sweep 'g': 6 trial(s) already finished" in again.stdout


def test_an_interrupted_sweep_resumes_with_the_same_parameters(tmp_path):
    repo = make_repo(tmp_path / "repo")
    block = tmp_path / "block"
    block.write_text("")
    env = {**ENV, "SWEEP_BLOCK_FILE": str(block)}
    args = [str(keel_bin()), "sweep", "train", "--space", "space.yaml", "--trials", "3",
            "--objective", "metrics.val_loss", "--strategy", "tpe", "--seed", "11"]
    process = subprocess.Popen(args, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sweep_file = repo / ".dvc" / "tmp" / "sweeps" / "train" / "sweep.json"
    deadline = time.monotonic() + 60
    while not (sweep_file.exists() and json.loads(sweep_file.read_text())["trials"]):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "run the same command again to resume" in stderr
    interrupted = state(repo)["trials"]
    assert [trial["state"] for trial in interrupted] == ["running"]

    block.unlink()
    resumed = run(repo, *args, env=env)
    trials = state(repo)["trials"]
    assert [trial["state"] for trial in trials] == ["complete"] * 3
    assert trials[0]["params"] == interrupted[0]["params"]
    assert "Trial 0 starting" in resumed.stdout
    # A different search is refused rather than mixed into this one.
    (repo / "space.yaml").write_text("train.lr: {type: uniform, low: 0.1, high: 0.2}\n")
    refused = keel(repo, *args[1:], check=False)
    assert refused.returncode != 0 and "--restart" in refused.stderr
    assert "Traceback" not in refused.stderr and "panicked" not in refused.stderr


def test_median_rule_prunes_a_trial_worse_at_every_step(tmp_path, tracking_uri, client):
    repo = make_repo(tmp_path / "repo")
    # Grid order is the file's order: five good trials first, then one clearly worse.
    (repo / "lr.yaml").write_text(
        "train.lr: {type: choice, values: [0.01, 0.011, 0.012, 0.013, 0.014, 0.9]}\n"
        "train.layers: {type: choice, values: [3]}\n"
        "train.opt: {type: choice, values: [adam]}\n")
    experiment = f"prune-{tmp_path.name}"
    env = {**ENV, "SWEEP_STEPS": "12", "SWEEP_STEP_SECONDS": "0.5"}
    keel(repo, "sweep", "train", "--space", "lr.yaml", "--strategy", "grid", "--prune",
         "--objective", "metrics.val_loss", "--tracking-uri", tracking_uri, "--experiment", experiment, env=env)
    trials = state(repo)["trials"]
    assert [trial["state"] for trial in trials[:5]] == ["complete"] * 5
    assert trials[5]["state"] == "pruned", trials[5]
    assert trials[5]["intermediate"], "the pruned trial's reported values are kept"
    assert len(trials[5]["intermediate"]) < 12
    run = client.get_run(trials[5]["run_id"])
    assert run.info.status == "KILLED" and run.data.tags["keel.sweep.state"] == "pruned"


def test_bad_input_is_a_clear_error(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "bad.yaml").write_text("train.lr: {type: loguniform, low: 0, high: 1}\n")
    cases = [
        (["sweep", "train", "--space", "bad.yaml", "--objective", "x"], "train.lr"),
        (["sweep", "nope", "--space", "space.yaml", "--objective", "x"], "'nope' is not a stage"),
        (["sweep", "train", "--space", "missing.yaml", "--objective", "x"], "missing.yaml"),
        (["sweep", "train", "--space", "space.yaml", "--objective", "x", "--parallel", "0"], "--parallel"),
    ]
    for args, message in cases:
        result = keel(repo, *args, check=False)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert "panicked" not in result.stderr
    # An objective no trial reports fails the trials, with the reason.
    failed = keel(repo, "sweep", "train", "--space", "space.yaml", "--trials", "1", "--objective", "nowhere",
                  "--name", "n", check=False)
    assert failed.returncode != 0
    assert "objective 'nowhere' was not found" in failed.stdout + failed.stderr


def test_a_sweep_runs_its_trials_on_ray(tmp_path):
    address = os.environ.get("KEEL_TEST_RAY_ADDRESS")
    if not address:
        if os.environ.get("CI") == "true":
            pytest.fail("KEEL_TEST_RAY_ADDRESS is not set; start Ray with scripts/ray-head.sh start")
        pytest.skip("KEEL_TEST_RAY_ADDRESS is not set (scripts/ray-head.sh start)")
    import urllib.request
    repo = make_repo(tmp_path / "repo")
    keel(repo, "sweep", "train", "--space", "space.yaml", "--trials", "6", "--parallel", "3",
         "--objective", "metrics.val_loss", "--strategy", "random", "--seed", "5",
         "--executor", "ray", "--ray-address", address)
    trials = state(repo)["trials"]
    assert [trial["state"] for trial in trials] == ["complete"] * 6
    for trial in trials:
        assert trial["objective"] == pytest.approx(expected_objective(dict(trial["params"])))
    with urllib.request.urlopen(f"{address}/api/jobs/", timeout=30) as response:
        jobs = json.load(response)
    ours = [job for job in jobs if (job.get("metadata") or {}).get("keel.root", "").startswith(str(repo))]
    assert len(ours) == 6 and {job["status"] for job in ours} == {"SUCCEEDED"}
