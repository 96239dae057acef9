"""MLflow 3 webhooks with the real client: CRUD through `MlflowClient`, a signed delivery for
a registered model version that verifies the way MLflow's docs verify it, the test endpoint,
and destinations refused by the SSRF policy (cloud metadata, loopback without the allow-list).

The receiver listens on 127.0.0.1, so these tests start their own `keel server` with
`KEEL_WEBHOOK_ALLOWED_DESTINATIONS=127.0.0.1`; the session server (no allow-list) must refuse it.
"""

import base64
import hashlib
import hmac
import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from conftest import KeelServer
from e2e_helpers import raises_mlflow, unique_name

SECRET = "webhook-secret-for-tests"


class Receiver:
    """An HTTP receiver on 127.0.0.1 that records every POST and answers 200."""

    def __init__(self):
        self.deliveries = queue.Queue()
        deliveries = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode("utf-8")
                deliveries.put({"headers": dict(self.headers), "body": body})
                reply = b"thanks"
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def next(self, timeout=30):
        return self.deliveries.get(timeout=timeout)

    def next_for(self, entity, action, timeout=30):
        while True:
            delivery = self.next(timeout)
            payload = json.loads(delivery["body"])
            if payload["entity"] == entity and payload["action"] == action:
                return delivery, payload

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def verify_signature(delivery, secret):
    """What MLflow's webhook docs tell a receiver to do."""
    headers = delivery["headers"]
    delivery_id = headers["X-MLflow-Delivery-Id"]
    timestamp = headers["X-MLflow-Timestamp"]
    version, signature = headers["X-MLflow-Signature"].split(",", 1)
    assert version == "v1"
    signed_content = f"{delivery_id}.{timestamp}.{delivery['body']}"
    expected = base64.b64encode(
        hmac.new(secret.encode(), signed_content.encode(), hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(signature, expected)


@pytest.fixture(scope="module")
def allowing_server(tmp_path_factory):
    server = KeelServer(
        tmp_path_factory.mktemp("keel-webhooks"),
        extra_env={"KEEL_WEBHOOK_ALLOWED_DESTINATIONS": "127.0.0.1"},
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def allowing_client(allowing_server):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(allowing_server.uri)
    # The active experiment of earlier tests lives on the session server, not on this one.
    mlflow.set_experiment(unique_name("webhooks"))
    yield MlflowClient(tracking_uri=allowing_server.uri)
    mlflow.set_tracking_uri(previous)


def test_webhook_crud_with_the_client(allowing_client, receiver):
    name = unique_name("crud")
    created = allowing_client.create_webhook(
        name=name,
        url=receiver.url,
        events=["model_version.created", "model_version_alias.created"],
        description="notify CI",
        secret=SECRET,
    )
    assert created.name == name
    assert created.url == receiver.url
    assert [str(event) for event in created.events] == [
        "model_version.created",
        "model_version_alias.created",
    ]
    assert str(created.status) == "ACTIVE"
    assert created.secret is None, "the secret is never returned"

    fetched = allowing_client.get_webhook(created.webhook_id)
    assert fetched.webhook_id == created.webhook_id
    assert fetched.description == "notify CI"
    assert fetched.secret is None

    updated = allowing_client.update_webhook(
        created.webhook_id, name=name + "-2", status="DISABLED"
    )
    assert updated.name == name + "-2"
    assert str(updated.status) == "DISABLED"
    assert updated.url == receiver.url

    listed = allowing_client.list_webhooks(max_results=1000)
    assert created.webhook_id in [webhook.webhook_id for webhook in listed]

    allowing_client.delete_webhook(created.webhook_id)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        allowing_client.get_webhook(created.webhook_id)


def test_registering_a_version_delivers_a_signed_event(allowing_client, receiver):
    webhook = allowing_client.create_webhook(
        name=unique_name("versions"),
        url=receiver.url,
        events=["model_version.created"],
        secret=SECRET,
    )
    model_name = unique_name("clf")
    estimator = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(estimator, name="model", registered_model_name=model_name)

    delivery, payload = receiver.next_for("model_version", "created")
    assert verify_signature(delivery, SECRET)
    assert not verify_signature(delivery, "wrong-secret")
    assert delivery["headers"]["Content-Type"] == "application/json"
    assert payload["data"]["name"] == model_name
    assert payload["data"]["version"] == "1"
    assert payload["data"]["run_id"] == run.info.run_id
    assert payload["timestamp"].endswith("+00:00")
    allowing_client.delete_webhook(webhook.webhook_id)


def test_alias_events_are_delivered(allowing_client, receiver):
    webhook = allowing_client.create_webhook(
        name=unique_name("aliases"),
        url=receiver.url,
        events=["model_version_alias.created", "model_version_alias.deleted"],
        secret=SECRET,
    )
    model_name = unique_name("aliased")
    estimator = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with mlflow.start_run():
        mlflow.sklearn.log_model(estimator, name="model", registered_model_name=model_name)
    allowing_client.set_registered_model_alias(model_name, "champion", "1")
    delivery, payload = receiver.next_for("model_version_alias", "created")
    assert verify_signature(delivery, SECRET)
    assert payload["data"] == {"name": model_name, "alias": "champion", "version": "1"}
    allowing_client.delete_registered_model_alias(model_name, "champion")
    _, payload = receiver.next_for("model_version_alias", "deleted")
    assert payload["data"] == {"name": model_name, "alias": "champion"}
    allowing_client.delete_webhook(webhook.webhook_id)


def test_test_webhook_reports_the_receivers_answer(allowing_client, receiver):
    webhook = allowing_client.create_webhook(
        name=unique_name("tested"),
        url=receiver.url,
        events=["registered_model.created"],
        secret=SECRET,
        status="DISABLED",
    )
    result = allowing_client.test_webhook(webhook.webhook_id)
    assert result.success is True
    assert result.response_status == 200
    assert result.response_body == "thanks"
    assert result.error_message is None
    delivery, payload = receiver.next_for("registered_model", "created")
    assert verify_signature(delivery, SECRET)
    assert payload["data"]["name"] == "example_model"

    result = allowing_client.test_webhook(webhook.webhook_id, event="model_version_tag.set")
    assert result.success is True
    _, payload = receiver.next_for("model_version_tag", "set")
    assert payload["data"]["key"] == "example_key"
    allowing_client.delete_webhook(webhook.webhook_id)


def test_cloud_metadata_is_refused_even_with_an_allow_list(allowing_client):
    with raises_mlflow("INVALID_PARAMETER_VALUE") as info:
        allowing_client.create_webhook(
            name=unique_name("metadata"),
            url="http://169.254.169.254/latest/meta-data/",
            events=["model_version.created"],
        )
    assert "--webhook-allowed-destinations" in info.value.message


def test_loopback_is_refused_without_the_allow_list(client, receiver):
    """The session server runs without KEEL_WEBHOOK_ALLOWED_DESTINATIONS."""
    for url in [receiver.url, "http://localhost:9/hook", "http://[::1]/", "http://2130706433/"]:
        with raises_mlflow("INVALID_PARAMETER_VALUE") as info:
            client.create_webhook(
                name=unique_name("loopback"), url=url, events=["model_version.created"]
            )
        assert "KEEL_WEBHOOK_ALLOWED_DESTINATIONS" in info.value.message, url


def test_invalid_webhooks_are_refused(client):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_webhook(
            name="-bad-", url="https://93.184.215.14/", events=["model_version.created"]
        )
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_webhook(
            name=unique_name("scheme"), url="ftp://93.184.215.14/",
            events=["model_version.created"],
        )
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_webhook("no-such-webhook")
