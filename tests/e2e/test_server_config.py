"""`keel server` start-up: the banner, and configuration through KEEL_* variables."""

import requests
from conftest import KeelServer, free_port


def test_startup_banner_names_the_address(keel):
    assert f"listening on http://127.0.0.1:{keel.port}" in keel.log_text()


def test_configuration_from_environment(tmp_path):
    port = free_port()
    server = KeelServer(tmp_path / "env-config", pass_flags=False, extra_env={
        "KEEL_HOST": "127.0.0.1",
        "KEEL_PORT": str(port),
        "KEEL_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'env-config' / 'from-env.db'}",
        "KEEL_ARTIFACTS_DESTINATION": str(tmp_path / "env-config" / "env-artifacts"),
        "KEEL_ALLOWED_HOSTS": "keel.example.com",
    })
    try:
        server.start(port=port)
        url = f"{server.uri}/api/2.0/mlflow/experiments/get"
        allowed = requests.get(url, params={"experiment_id": "0"}, headers={"Host": "keel.example.com"})
        assert allowed.status_code == 200
        refused = requests.get(url, params={"experiment_id": "0"}, headers={"Host": "evil.com"})
        assert refused.status_code == 403
        assert (tmp_path / "env-config" / "from-env.db").exists()
    finally:
        server.stop()
