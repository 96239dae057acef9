"""`keel repro` and the real `dvc repro` on the same `dvc.yaml`: the same
`dvc.lock` bytes, `dvc status` clean after Keel ran the pipeline, the same
`status --json` and stage names (foreach/matrix); plus what Keel adds:
independent stages overlap with `--jobs`, a failure stops only what depends
on it with `--keep-going`, and Ctrl-C stops running commands."""

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

DVC_YAML = """\
vars:
  - config.json:model
  - names: [alpha, beta]
stages:
  prepare:
    cmd: >-
      mkdir -p prepared && cp raw/a.txt prepared/a.txt && cp raw/b.txt prepared/b.txt &&
      echo ${prepare.split} > prepared/split.txt
    deps:
      - raw
      - scripts/prepare.sh
    params:
      - prepare.split
    outs:
      - prepared
  featurize:
    foreach: ${names}
    do:
      cmd: cat prepared/a.txt > features-${item}.txt && echo ${item} >> features-${item}.txt
      deps: [prepared]
      outs: ['features-${item}.txt']
  train:
    matrix:
      lr: [0.1, 1.0e-05]
      depth: [2, 8]
    cmd:
      - cat features-alpha.txt features-beta.txt > model-${item.lr}-${item.depth}.bin
      - echo lr=${item.lr} depth=${item.depth} units=${model.units} >> model-${item.lr}-${item.depth}.bin
    deps:
      - features-alpha.txt
      - features-beta.txt
    params:
      - train.seed
      - config.json:
          - model.units
    outs:
      - model-${item.lr}-${item.depth}.bin
  evaluate:
    wdir: reports
    cmd: >-
      echo '{"acc": 0.91, "loss": 0.2}' > metrics.json && printf 'step,loss\\n1,0.5\\n' > loss.csv &&
      echo this is a long command line that folds past column eighty in dvc.lock > /dev/null
    deps:
      - ../model-0.1-2.bin
      - ../scripts
    params:
      - evaluate.toml:
    metrics:
      - metrics.json:
          cache: false
    plots:
      - loss.csv:
          x: step
  notes:
    cmd: echo notes > notes.txt
    always_changed: true
    outs:
      - notes.txt:
          cache: false
"""


def run(cwd, *args, check=True):
    result = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def keel(cwd, *args, check=True):
    return run(cwd, str(keel_bin()), *args, check=check)


def dvc(cwd, *args, check=True):
    return run(cwd, DVC, *args, check=check)


def make_repo(path: Path, dvc_yaml: str = DVC_YAML) -> Path:
    path.mkdir(parents=True)
    run(path, "git", "init", "-q")
    dvc(path, "init", "-q")
    (path / "raw").mkdir()
    (path / "raw" / "a.txt").write_text("a\n")
    (path / "raw" / "b.txt").write_text("b\n")
    (path / "scripts").mkdir()
    (path / "scripts" / "prepare.sh").write_text("#!/bin/sh\n")
    (path / "reports").mkdir()
    (path / "reports" / "evaluate.toml").write_text("[eval]\nthreshold = 0.5\nname = 'test'\n")
    (path / "params.yaml").write_text("prepare:\n  split: 0.25\ntrain:\n  seed: 7\n  extra: 1\n")
    (path / "config.json").write_text('{"model": {"units": 64}, "unused": true}\n')
    (path / "dvc.yaml").write_text(dvc_yaml)
    return path


@pytest.fixture
def twins(tmp_path):
    return make_repo(tmp_path / "by-keel"), make_repo(tmp_path / "by-dvc")


def status_json(cwd, tool):
    output = tool(cwd, "status", "--json").stdout
    return json.loads(output.strip().splitlines()[-1])


def test_keel_repro_writes_the_lock_dvc_repro_writes(twins):
    by_keel, by_dvc = twins
    keel(by_keel, "repro", "--jobs", "3")
    dvc(by_dvc, "repro")
    assert (by_keel / "dvc.lock").read_text() == (by_dvc / "dvc.lock").read_text()
    assert (by_keel / "dvc.lock").read_bytes() == (by_dvc / "dvc.lock").read_bytes()
    assert (by_keel / ".gitignore").read_bytes() == (by_dvc / ".gitignore").read_bytes()
    assert (by_keel / "reports" / ".gitignore").read_bytes() == (by_dvc / "reports" / ".gitignore").read_bytes()

    # A changed parameter: both rewrite the same entries in place.
    for repo in twins:
        text = (repo / "params.yaml").read_text().replace("seed: 7", "seed: 8")
        (repo / "params.yaml").write_text(text)
    keel(by_keel, "repro")
    dvc(by_dvc, "repro")
    assert (by_keel / "dvc.lock").read_bytes() == (by_dvc / "dvc.lock").read_bytes()


NESTED_PARAMS = """\
train:
  lr: 1.0e-05
  layers: [8, 16]
  opts: {name: "yes", flag: true, none: null, deep: {x: 1.5}}
  big: 1e20
  text: "a: b # c"
  date: "2001-01-01"
other: 3
"""

EXEC_YAML = """\
stages:
  exec:
    cmd: printf '#!/bin/sh\\n' > tool.sh && chmod +x tool.sh && mkdir -p out/sub && echo 1 > out/sub/f && echo 2 > out/g
    deps: [in.txt]
    params: [train, other]
    outs: [tool.sh, out]
  whole:
    cmd: cat in.txt > w.txt
    deps: [in.txt, tool.sh]
    params:
      - params.yaml:
    outs: [{w.txt: {persist: true}}]
  unicode:
    cmd: echo é > "é file.txt"
    deps: [out/sub]
    outs: ["é file.txt"]
"""


def test_lock_bytes_match_for_nested_params_executables_and_unicode(tmp_path):
    repos = [make_repo(tmp_path / name, EXEC_YAML) for name in ("by-keel", "by-dvc")]
    for repo in repos:
        (repo / "params.yaml").write_text(NESTED_PARAMS)
        (repo / "in.txt").write_text("x")
    keel(repos[0], "repro")
    dvc(repos[1], "repro")
    assert (repos[0] / "dvc.lock").read_bytes() == (repos[1] / "dvc.lock").read_bytes()
    assert "isexec: true" in (repos[0] / "dvc.lock").read_text()
    assert status_json(repos[0], dvc) == {}
    assert status_json(repos[1], keel) == {}


def test_dvc_status_is_clean_after_keel_repro(twins):
    by_keel, _ = twins
    keel(by_keel, "repro")
    # `notes` is always_changed, so DVC (and Keel) always report it.
    assert status_json(by_keel, dvc) == {"notes": ["always changed"]}
    assert status_json(by_keel, keel) == {"notes": ["always changed"]}
    dvc_dry = dvc(by_keel, "repro", "--dry").stdout
    assert "Running stage 'notes'" in dvc_dry
    assert "Running stage 'prepare'" not in dvc_dry


def test_keel_status_matches_dvc_status(twins):
    by_keel, _ = twins
    # Nothing ran yet: every stage reports its changes.
    assert keel(by_keel, "status", "--json").stdout == dvc(by_keel, "status", "--json").stdout
    keel(by_keel, "repro")
    (by_keel / "raw" / "a.txt").write_text("changed\n")
    (by_keel / "params.yaml").write_text("prepare:\n  split: 0.5\ntrain:\n  seed: 7\n  extra: 1\n")
    (by_keel / "reports" / "evaluate.toml").write_text("[eval]\nthreshold = 0.5\nname = 'test'\nnew = 1\n")
    (by_keel / "model-0.1-8.bin").unlink()
    (by_keel / "features-beta.txt").write_text("tampered\n")
    # The same JSON, byte for byte (keys in DVC's order), and the same text.
    assert keel(by_keel, "status", "--json").stdout == dvc(by_keel, "status", "--json").stdout
    assert keel(by_keel, "status").stdout == dvc(by_keel, "status").stdout
    expected = status_json(by_keel, dvc)
    # `prepare`'s command interpolates prepare.split, so it changed too.
    assert expected["prepare"] == [{"changed deps": {"raw": "modified",
                                                      "params.yaml": {"prepare.split": "modified"}}},
                                   "changed command"]
    # `.dvc` files are reported too (DVC orders them with the stages by directory
    # listing order, so only the content is compared).
    (by_keel / "extra.csv").write_text("x\n")
    dvc(by_keel, "add", "-q", "extra.csv")
    (by_keel / "extra.csv").write_text("y\n")
    assert status_json(by_keel, keel) == status_json(by_keel, dvc)
    assert status_json(by_keel, keel)["extra.csv.dvc"] == [{"changed outs": {"extra.csv": "modified"}}]


def test_foreach_and_matrix_expand_to_dvcs_stage_names(twins):
    by_keel, _ = twins
    dvc_names = dvc(by_keel, "stage", "list", "--name-only").stdout.split()
    keel_names = status_json(by_keel, keel).keys()
    assert sorted(keel_names) == sorted(dvc_names)
    assert len(dvc_names) == 9
    assert "train@1e-05-8" in dvc_names and "featurize@beta" in dvc_names


PARALLEL_YAML = """\
stages:
  left:
    cmd: date +%s.%N > left.start && sleep 2 && date +%s.%N > left.end
    outs: [left.start, left.end]
  right:
    cmd: date +%s.%N > right.start && sleep 2 && date +%s.%N > right.end
    outs: [right.start, right.end]
"""


def test_independent_stages_overlap_with_jobs(tmp_path):
    repo = make_repo(tmp_path / "repo", PARALLEL_YAML)
    keel(repo, "repro", "--jobs", "2")

    def stamp(name):
        return float((repo / name).read_text())

    # Each started before the other ended: they ran at the same time.
    assert stamp("left.start") < stamp("right.end")
    assert stamp("right.start") < stamp("left.end")
    assert status_json(repo, dvc) == {}


FAILING_YAML = """\
stages:
  broken:
    cmd: echo partial > broken.txt && exit 3
    outs: [broken.txt]
  after_broken:
    cmd: cp broken.txt after.txt
    deps: [broken.txt]
    outs: [after.txt]
  sibling:
    cmd: echo fine > sibling.txt
    outs: [sibling.txt]
"""


def test_a_failure_stops_its_dependents_not_its_siblings(tmp_path):
    repo = make_repo(tmp_path / "repo", FAILING_YAML)
    result = keel(repo, "repro", "--keep-going", "--jobs", "1", check=False)
    assert result.returncode == 1
    assert "error: failed to reproduce 'broken': failed to run: echo partial > broken.txt && exit 3, exited with 3" in result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    assert (repo / "sibling.txt").read_text() == "fine\n"
    assert not (repo / "after.txt").exists()
    lock = (repo / "dvc.lock").read_text()
    assert "sibling:" in lock and "broken" not in lock
    assert "[broken]" not in result.stdout  # echo went to a file

    # Without --keep-going Keel stops at the first failure, as DVC does.
    (repo / "dvc.lock").unlink()
    (repo / "sibling.txt").unlink()
    result = keel(repo, "repro", "--jobs", "1", check=False)
    assert result.returncode == 1
    assert not (repo / "sibling.txt").exists()


def test_stage_output_is_prefixed_and_missing_targets_are_one_error_line(tmp_path):
    repo = make_repo(tmp_path / "repo", "stages:\n  hello:\n    cmd: echo hello; echo warn >&2\n")
    result = keel(repo, "repro")
    assert "[hello] hello" in result.stdout
    assert "[hello] warn" in result.stderr
    missing = keel(repo, "repro", "nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: stage 'nope' not found in 'dvc.yaml'"
    (repo / "dvc.yaml").write_text("stages:\n  bad:\n    cmd: echo ${undefined}\n")
    broken = keel(repo, "status", check=False)
    assert broken.returncode == 1
    assert broken.stderr.strip() == "error: dvc.yaml: stage 'bad': 'cmd': Could not find 'undefined'"


def test_dag_in_mermaid_matches_dvc(twins):
    by_keel, _ = twins
    (by_keel / "dvc.yaml").write_text(PARALLEL_YAML + FAILING_YAML.replace("stages:\n", ""))
    assert keel(by_keel, "dag", "--mermaid").stdout.strip() == dvc(by_keel, "dag", "--mermaid").stdout.strip()
    assert keel(by_keel, "dag", "--dot").stdout.strip() == dvc(by_keel, "dag", "--dot").stdout.strip()


def test_ctrl_c_stops_running_commands_and_keeps_the_lock_consistent(tmp_path):
    repo = make_repo(tmp_path / "repo", """\
stages:
  quick:
    cmd: echo done > quick.txt
    outs: [quick.txt]
  slow:
    cmd: echo $$ > slow.pid && sleep 60 && echo never > slow.txt
    deps: [quick.txt]
    outs: [slow.txt]
""")
    process = subprocess.Popen([str(keel_bin()), "repro"], cwd=repo, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_file = repo / "slow.pid"
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    shell_pid = int(pid_file.read_text())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "error: interrupted" in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(shell_pid, 0)
    lock = (repo / "dvc.lock").read_text()
    assert "quick:" in lock and "slow:" not in lock
    assert status_json(repo, dvc) == {"slow": [{"changed deps": {"quick.txt": "modified"}},
                                               {"changed outs": {"slow.txt": "deleted"}}]}


RUN_CACHE_YAML = """\
stages:
  copy:
    cmd: echo ran >> runs.log && cp in.txt out.txt
    deps: [in.txt]
    outs: [out.txt]
"""


def test_run_cache_is_shared_with_dvc(tmp_path):
    repo = make_repo(tmp_path / "repo", RUN_CACHE_YAML)
    (repo / "in.txt").write_text("one")
    keel(repo, "repro")
    (repo / "in.txt").write_text("two")
    dvc(repo, "repro")
    # Back to inputs Keel ran: DVC restores Keel's run-cache entry...
    (repo / "in.txt").write_text("one")
    assert "Stage 'copy' is cached - skipping run" in dvc(repo, "repro").stdout
    # ...and Keel restores DVC's.
    (repo / "in.txt").write_text("two")
    assert "Stage 'copy' is cached - skipping run" in keel(repo, "repro").stdout
    assert (repo / "out.txt").read_text() == "two"
    assert (repo / "runs.log").read_text() == "ran\nran\n"
    assert status_json(repo, dvc) == {}


TRACKED_YAML = """\
stages:
  train:
    cmd: >-
      python -c "import mlflow, os; print('stage says hello'); open('run_id.txt', 'w').write(os.environ['MLFLOW_RUN_ID']);
      mlflow.log_metric('from_stage', 3.0);
      open('metrics.json', 'w').write('{\\"acc\\": 0.75, \\"val\\": {\\"loss\\": 0.5}}')"
    deps: [raw]
    params: [train.seed]
    metrics:
      - metrics.json:
          cache: false
  broken:
    cmd: exit 2
    outs: [never.txt]
"""


def test_tracked_repro_records_a_parent_run_and_a_run_per_stage(tmp_path, tracking_uri, client):
    repo = make_repo(tmp_path / "repo", TRACKED_YAML)
    env_python = str(Path(sys.executable).parent)
    env_with_python = {**ENV, "PATH": f"{env_python}:{ENV['PATH']}"}
    result = subprocess.run([str(keel_bin()), "repro", "--keep-going", "--track", "--tracking-uri", tracking_uri,
                             "--experiment", f"pipeline-{tmp_path.name}"],
                            cwd=repo, env=env_with_python, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    experiment = client.get_experiment_by_name(f"pipeline-{tmp_path.name}")
    runs = client.search_runs([experiment.experiment_id])
    by_name = {run.info.run_name: run for run in runs}
    parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
    assert parent.info.status == "FAILED"
    train = by_name["train"]
    assert train.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert train.info.run_id == (repo / "run_id.txt").read_text()
    assert train.info.status == "FINISHED"
    assert train.data.params == {"train.seed": "7"}
    assert train.data.metrics == {"acc": 0.75, "val.loss": 0.5, "from_stage": 3.0}
    assert train.data.tags["keel.cmd"].startswith("python -c")
    assert by_name["broken"].info.status == "FAILED"
    assert "exited with 2" in by_name["broken"].data.tags["keel.error"]
    # Dependencies are the run's dataset inputs, outputs tags, with the hashes of dvc.lock.
    import yaml
    locked = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train"]
    inputs = client.get_run(train.info.run_id).inputs.dataset_inputs
    assert [(item.dataset.name, item.dataset.digest) for item in inputs] == [
        ("raw", locked["deps"][0]["md5"])]
    assert train.data.tags["keel.out.metrics.json"] == locked["outs"][0]["md5"]
    # The stage's output is its run's log artifact.
    log = client.download_artifacts(train.info.run_id, "logs/train.log", str(tmp_path))
    assert "stage says hello\n" in Path(log).read_text()
