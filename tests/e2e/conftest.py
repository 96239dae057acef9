"""Fixtures for the end-to-end suite: a real `keel` process driven by the real `mlflow` client.

The server binary is `$KEEL_BIN` (default `target/debug/keel`, relative to the repo root).
Every test talks to one session-wide server unless it needs its own (durability, startup
configuration), in which case it uses `KeelServer` directly.

When a test fails, the tail of every server log written during that test is attached
to the failure report.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_TIMEOUT_S = 90

# Set before any test imports mlflow: fail fast instead of retrying for minutes on a 5xx,
# and keep the client from phoning home.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

from e2e_helpers import unique_name  # noqa: E402 (imports mlflow; env above must come first)

_running_servers = []


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "beyond_mlflow: Keel deliberately does better than MLflow's own server here "
        "(deselect with -m 'not beyond_mlflow' when checking the suite against MLflow)",
    )


def keel_bin() -> Path:
    path = Path(os.environ.get("KEEL_BIN", "target/debug/keel"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KeelServer:
    """One `keel server` process over a SQLite file and an artifact directory in `data_dir`.

    `start()` may be called again after `stop()` or `kill9()`: the new process reuses the
    same database and artifacts (on a fresh port), which is what durability tests need.
    """

    def __init__(self, data_dir: Path, extra_args=(), extra_env=None, pass_flags=True):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "keel.db"
        self.artifacts_dir = self.data_dir / "artifacts"
        self.extra_args = list(extra_args)
        self.extra_env = dict(extra_env or {})
        self.pass_flags = pass_flags
        self.process = None
        self.port = None
        self.log_path = None
        self.n_starts = 0
        # True after stop()/kill9(): a failure report then leaves this server's log out.
        self.expected_down = True

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port=None):
        binary = keel_bin()
        if not binary.exists():
            pytest.fail(
                f"keel binary not found at {binary}: run `cargo build -p keel` "
                "or point KEEL_BIN at a built binary",
                pytrace=False,
            )
        self.port = port or free_port()
        self.n_starts += 1
        self.log_path = self.data_dir / f"server-{self.n_starts}.log"
        cmd = [str(binary), "server"]
        if self.pass_flags:
            cmd += [
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--backend-store-uri", f"sqlite:///{self.db_path}",
                "--artifacts-destination", str(self.artifacts_dir),
            ]
        cmd += self.extra_args
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KEEL_"))}
        # Lets tests/e2e/mlflow_as_keel.sh find the venv's `mlflow` when it stands in for keel.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("RUST_LOG", "info")
        env.setdefault("NO_COLOR", "1")
        env.update(self.extra_env)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                cmd,
                cwd=self.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.expected_down = False
        if self not in _running_servers:
            _running_servers.append(self)
        self.wait_healthy()
        return self

    def wait_healthy(self, host_header=None):
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        headers = {"Host": host_header} if host_header else {}
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"keel exited with code {self.process.returncode} before becoming healthy\n"
                    f"{self.log_tail()}",
                    pytrace=False,
                )
            try:
                response = requests.get(f"{self.uri}/health", headers=headers, timeout=2)
                if response.status_code == 200:
                    return
                last_error = f"status {response.status_code}"
            except requests.RequestException as error:
                last_error = repr(error)
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"keel did not answer /health within {HEALTH_TIMEOUT_S}s ({last_error})\n"
            f"{self.log_tail()}",
            pytrace=False,
        )

    def _signal_group(self, sig):
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def kill9(self):
        """Kill the process without giving it a chance to flush anything."""
        self.expected_down = True
        if self.process is None or self.process.poll() is not None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        self.expected_down = True
        if self.process is None or self.process.poll() is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill9()

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, n_lines=80) -> str:
        lines = self.log_text().splitlines()[-n_lines:]
        return f"--- keel log {self.log_path} (last {len(lines)} lines) ---\n" + "\n".join(lines)


@pytest.fixture(scope="session")
def keel(tmp_path_factory):
    server = KeelServer(tmp_path_factory.mktemp("keel-session"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tracking_uri(keel):
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = keel.uri
    mlflow.set_tracking_uri(keel.uri)
    yield keel.uri


@pytest.fixture(scope="session")
def client(tracking_uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture
def experiment_id(client, request):
    return client.create_experiment(unique_name(request.node.name[:40]))


@pytest.fixture(autouse=True)
def _no_leftover_active_run():
    yield
    if "mlflow" in sys.modules:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in _running_servers:
            text = server.log_tail()
            if text and not server.expected_down:
                report.sections.append((f"keel server log ({report.when})", text))


def pytest_sessionfinish(session, exitstatus):
    for server in _running_servers:
        server.stop()
