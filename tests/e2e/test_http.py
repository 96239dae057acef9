"""The wire itself, with plain `requests`: error format and statuses, host checks,
path safety of the artifact proxy, body limits, and the small endpoints clients probe."""

import select
import socket
import uuid
from pathlib import Path

import pytest
import requests
from e2e_helpers import unique_name

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
PASSWD_MARKER = "root:x:0:0"


def error_of(response):
    body = response.json()
    assert isinstance(body.get("error_code"), str) and body["error_code"], body
    assert isinstance(body.get("message"), str), body
    return body["error_code"]


def test_health(tracking_uri):
    response = requests.get(f"{tracking_uri}/health")
    assert response.status_code == 200
    assert response.text == "OK"


def test_version(tracking_uri):
    response = requests.get(f"{tracking_uri}/version")
    assert response.status_code == 200
    assert response.text.strip()


def test_server_info(tracking_uri):
    response = requests.get(f"{tracking_uri}/api/3.0/mlflow/server-info")
    assert response.status_code == 200
    info = response.json()
    assert isinstance(info, dict)
    assert "store_type" in info
    assert isinstance(info.get("multipart_uploads_enabled", False), bool)


def test_malformed_json_is_400_with_error_code(tracking_uri):
    response = requests.post(f"{tracking_uri}{API}/experiments/create", data="{not json",
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error_of(response)


WRONG_TYPES = {
    "experiment name is a number": ("experiments/create", {"name": 123}),
    "metric value is a word": ("runs/log-metric", {"run_id": "0" * 32, "key": "m", "value": "high",
                                                   "timestamp": 1}),
    "max_results is a word": ("runs/search", {"experiment_ids": ["0"], "max_results": "ten"}),
    "experiment_ids is a string": ("runs/search", {"experiment_ids": 5}),
    "tags is an object": ("experiments/create", {"name": "x", "tags": {"k": "v"}}),
}


@pytest.mark.parametrize("endpoint,body", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_field_types_are_400(tracking_uri, endpoint, body):
    response = requests.post(f"{tracking_uri}{API}/{endpoint}", json=body)
    assert response.status_code == 400
    assert error_of(response) in ("INVALID_PARAMETER_VALUE", "MALFORMED_REQUEST", "BAD_REQUEST")


def test_missing_required_field_is_400(tracking_uri):
    response = requests.post(f"{tracking_uri}{API}/experiments/create", json={})
    assert response.status_code == 400
    assert error_of(response) == "INVALID_PARAMETER_VALUE"


def test_unknown_endpoint_is_404(tracking_uri):
    assert requests.get(f"{tracking_uri}{API}/does-not-exist").status_code == 404
    assert requests.post(f"{tracking_uri}{API}/runs/frobnicate", json={}).status_code == 404


def test_wrong_method_is_405(tracking_uri):
    assert requests.get(f"{tracking_uri}{API}/runs/create").status_code == 405


def test_unknown_run_is_404_resource_does_not_exist(tracking_uri):
    response = requests.get(f"{tracking_uri}{API}/runs/get", params={"run_id": "f" * 32})
    assert response.status_code == 404
    assert error_of(response) == "RESOURCE_DOES_NOT_EXIST"


def test_duplicate_experiment_is_400_resource_already_exists(tracking_uri):
    name = unique_name("raw-dup")
    assert requests.post(f"{tracking_uri}{API}/experiments/create", json={"name": name}).ok
    response = requests.post(f"{tracking_uri}{API}/experiments/create", json={"name": name})
    assert response.status_code == 400
    assert error_of(response) == "RESOURCE_ALREADY_EXISTS"


def test_ajax_api_prefix_serves_the_same_api(tracking_uri):
    response = requests.get(f"{tracking_uri}/ajax-api/2.0/mlflow/experiments/get",
                            params={"experiment_id": "0"})
    assert response.status_code == 200
    assert response.json()["experiment"]["name"] == "Default"


def test_get_experiments_search_with_query_args(tracking_uri, client):
    prefix = unique_name("raw-search")
    for suffix in ("a", "b", "c"):
        client.create_experiment(f"{prefix}-{suffix}")
    response = requests.get(f"{tracking_uri}{API}/experiments/search", params={
        "max_results": 2, "filter": f"name LIKE '{prefix}%'", "order_by": "name DESC",
    })
    assert response.status_code == 200
    body = response.json()
    assert [e["name"] for e in body["experiments"]] == [f"{prefix}-c", f"{prefix}-b"]
    assert body["next_page_token"]
    response = requests.get(f"{tracking_uri}{API}/experiments/search", params={
        "max_results": 2, "filter": f"name LIKE '{prefix}%'", "order_by": "name DESC",
        "page_token": body["next_page_token"],
    })
    assert [e["name"] for e in response.json()["experiments"]] == [f"{prefix}-a"]


def test_get_metric_history_with_query_args(tracking_uri, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    for step in range(3):
        client.log_metric(run_id, "loss", float(step), step=step)
    response = requests.get(f"{tracking_uri}{API}/metrics/get-history",
                            params={"run_id": run_id, "metric_key": "loss"})
    assert response.status_code == 200
    assert sorted(m["step"] for m in response.json()["metrics"]) == [0, 1, 2]


def log_and_read_back_raw(tracking_uri, run_id, raw_values):
    for step, value in enumerate(raw_values):
        response = requests.post(f"{tracking_uri}{API}/runs/log-metric", json={
            "run_id": run_id, "key": "x", "value": value, "timestamp": 1, "step": step})
        assert response.status_code == 200, response.text
    response = requests.get(f"{tracking_uri}{API}/metrics/get-history",
                            params={"run_id": run_id, "metric_key": "x"})
    return {m["step"]: m["value"] for m in response.json()["metrics"]}


def test_nan_on_the_wire(tracking_uri, client, experiment_id):
    """The client sends NaN as the JSON string "NaN" (protobuf JSON); so must the server."""
    run_id = client.create_run(experiment_id).info.run_id
    assert log_and_read_back_raw(tracking_uri, run_id, ["NaN", 2.5]) == {0: "NaN", 1: 2.5}


@pytest.mark.beyond_mlflow  # MLflow's SQL store clamps infinities to +-max float
def test_infinities_on_the_wire(tracking_uri, client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    values = log_and_read_back_raw(tracking_uri, run_id, ["Infinity", "-Infinity"])
    assert values == {0: "Infinity", 1: "-Infinity"}


def test_delete_with_json_body(tracking_uri, client, experiment_id):
    model = client.create_logged_model(experiment_id, name="raw-delete", tags={"k": "v", "keep": "1"})
    response = requests.delete(f"{tracking_uri}{API}/logged-models/{model.model_id}/tags/k",
                               json={"model_id": model.model_id, "tag_key": "k"})
    assert response.status_code == 200, response.text
    assert client.get_logged_model(model.model_id).tags == {"keep": "1"}
    response = requests.delete(f"{tracking_uri}{API}/logged-models/{model.model_id}",
                               json={"model_id": model.model_id})
    assert response.status_code == 200, response.text
    response = requests.get(f"{tracking_uri}{API}/logged-models/{model.model_id}")
    assert response.status_code == 404


# --- Host header (DNS rebinding) -------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.com", "evil.com:5000", "attacker.localhost.evil.com"])
def test_foreign_host_header_is_403(tracking_uri, host):
    response = requests.get(f"{tracking_uri}{API}/experiments/get", params={"experiment_id": "0"},
                            headers={"Host": host})
    assert response.status_code == 403
    assert "Default" not in response.text


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1:1234", "[::1]:8080"])
def test_loopback_host_headers_are_allowed(tracking_uri, host):
    response = requests.get(f"{tracking_uri}{API}/experiments/get", params={"experiment_id": "0"},
                            headers={"Host": host})
    assert response.status_code == 200


# --- artifact proxy path safety --------------------------------------------------------

TRAVERSALS = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2F%2e%2e%2F%2e%2e%2F%2e%2e%2Fetc%2Fpasswd",
    "0/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2Fetc%2Fpasswd",
    "..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd%00.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_on_artifact_download_is_400(tracking_uri, path):
    response = requests.get(f"{tracking_uri}{ARTIFACTS}/{path}")
    assert response.status_code == 400
    assert PASSWD_MARKER not in response.text


@pytest.mark.parametrize("path", [
    # Decoded once this is a literal file name "%2e%2e%2fetc..." (no such artifact: 404);
    # decoded twice it would be a traversal (must be 400).
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    # Backslash is an ordinary file-name byte on Unix (404), a separator on Windows (400).
    "..%5C..%5C..%5C..%5Cetc%5Cpasswd",
])
def test_ambiguous_traversal_reads_nothing(tracking_uri, path):
    response = requests.get(f"{tracking_uri}{ARTIFACTS}/{path}")
    assert response.status_code in (400, 404)
    assert PASSWD_MARKER not in response.text


@pytest.mark.parametrize("path", ["../..", "../../etc", "/etc", "0/../../.."])
def test_traversal_on_artifact_listing_is_400(tracking_uri, path):
    response = requests.get(f"{tracking_uri}{ARTIFACTS}", params={"path": path})
    assert response.status_code == 400
    assert "passwd" not in response.text


def test_traversal_on_artifact_upload_writes_nothing(tracking_uri, keel):
    marker = f"keel-pwned-{uuid.uuid4().hex}"
    for path in (f"..%2F{marker}", f"..%2F..%2F{marker}", f"0/..%2F..%2F..%2F{marker}"):
        response = requests.put(f"{tracking_uri}{ARTIFACTS}/{path}", data=b"pwned")
        assert response.status_code == 400
    roots = [keel.artifacts_dir, keel.artifacts_dir.parent, keel.artifacts_dir.parent.parent,
             Path("/tmp")]
    assert not [root for root in roots if (root / marker).exists()]


# --- body size limit ---------------------------------------------------------------------

def send_oversized_body(base_uri: str, path: str, declared_bytes: int) -> int:
    """Stream a JSON body of `declared_bytes` and return the HTTP status the server answers.

    Stops sending as soon as the server answers (a server may refuse on Content-Length alone
    and close the connection), so this works whether the server reads the body or not.
    """
    host, port = base_uri.removeprefix("http://").split(":")
    head = b'{"name": "'
    tail = b'"}'
    sock = socket.create_connection((host, int(port)), timeout=60)
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared_bytes}\r\nConnection: close\r\n\r\n".encode() + head)
        remaining = declared_bytes - len(head) - len(tail)
        chunk = b"a" * (1 << 20)
        try:
            while remaining > 0:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                piece = chunk[:min(len(chunk), remaining)]
                sock.sendall(piece)
                remaining -= len(piece)
            else:
                sock.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = b""
        while b"\r\n" not in response:
            data = sock.recv(4096)
            if not data:
                break
            response += data
    finally:
        sock.close()
    status_line = response.split(b"\r\n", 1)[0].decode(errors="replace")
    assert status_line.startswith("HTTP/1."), f"no HTTP response, got {response[:200]!r}"
    return int(status_line.split()[1])


@pytest.mark.beyond_mlflow  # MLflow reads the whole body, then answers 400
def test_oversized_json_body_is_413(tracking_uri):
    status = send_oversized_body(tracking_uri, f"{API}/experiments/create", 256 * 1024 * 1024)
    assert status == 413
    # ...and the server is still fine afterwards.
    assert requests.get(f"{tracking_uri}/health").status_code == 200


def test_get_run_without_run_id_is_400(tracking_uri):
    response = requests.get(f"{tracking_uri}{API}/runs/get")
    assert response.status_code == 400
    assert error_of(response) == "INVALID_PARAMETER_VALUE"
