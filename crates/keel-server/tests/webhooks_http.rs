//! In-process handler tests of the webhook endpoints (`/webhooks...`): the
//! router of `keel server` over a real SQLite store, called with `oneshot`,
//! delivering to a receiver on 127.0.0.1 that the test allow-lists.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use keel_server::HttpOptions;
use keel_tracking::webhooks::{DeliverySettings, DestinationPolicy};
use serde_json::{json, Value};
use sha2::Sha256;

use common::TestServer;

const FLAG: &str = "--webhook-allowed-destinations";

/// A server delivering webhooks to the destinations `allowed` lists, retrying fast.
async fn server(allowed: &str) -> TestServer {
    let settings = DeliverySettings {
        initial_backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        ..DeliverySettings::default()
    };
    TestServer::start_with(
        HttpOptions::default(),
        DestinationPolicy::from_list(allowed),
        settings,
    )
    .await
}

/// One request the receiver got.
#[derive(Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A tiny HTTP receiver on 127.0.0.1 answering each request with the next
/// status of `statuses` (the last one repeats).
fn receiver(statuses: Vec<u16>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answered = 0usize;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            reader.read_line(&mut line).expect("request line");
            let mut headers = Vec::new();
            loop {
                line.clear();
                reader.read_line(&mut line).expect("header");
                let trimmed = line.trim_end();
                if trimmed.is_empty() {
                    break;
                }
                if let Some((key, value)) = trimmed.split_once(':') {
                    headers.push((key.trim().to_string(), value.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let status = statuses[answered.min(statuses.len() - 1)];
            answered += 1;
            let reply = format!("received {answered}");
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
            let _ = sender.send(Received {
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
    });
    (url, received)
}

fn next(received: &mpsc::Receiver<Received>) -> Received {
    received
        .recv_timeout(Duration::from_secs(20))
        .expect("a delivery")
}

/// The verification a receiver written for MLflow does.
fn verify(secret: &str, delivery: &Received) {
    let delivery_id = delivery
        .header("X-MLflow-Delivery-Id")
        .expect("delivery id");
    let timestamp = delivery.header("X-MLflow-Timestamp").expect("timestamp");
    let signature = delivery.header("X-MLflow-Signature").expect("signature");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{delivery_id}.{timestamp}.{}", delivery.body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(signature, expected);
}

fn hook(url: &str, events: Value) -> Value {
    json!({"name": "hook", "url": url, "events": events, "secret": "s3cret",
           "description": "notify CI"})
}

#[tokio::test]
async fn webhook_crud_round_trips_without_the_secret() {
    let server = server("").await;
    let created = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/webhooks",
            Some(hook(
                "https://93.184.215.14/hook",
                json!([{"entity": "MODEL_VERSION", "action": "CREATED"},
                       {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"}]),
            )),
        )
        .await;
    let webhook = &created["webhook"];
    let id = webhook["webhook_id"].as_str().expect("id").to_string();
    assert_eq!(webhook["status"], "ACTIVE");
    assert_eq!(webhook["description"], "notify CI");
    assert_eq!(
        webhook["events"],
        json!([{"entity": "MODEL_VERSION", "action": "CREATED"},
               {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"}])
    );
    assert!(webhook.get("secret").is_none(), "{webhook}");
    assert!(!created.to_string().contains("s3cret"));

    let got = server
        .ok(Method::GET, &format!("/api/2.0/mlflow/webhooks/{id}"), None)
        .await;
    assert_eq!(got["webhook"], *webhook);
    assert!(!got.to_string().contains("s3cret"));

    let updated = server
        .ok(
            Method::PATCH,
            &format!("/api/2.0/mlflow/webhooks/{id}"),
            Some(json!({"name": "renamed", "status": "DISABLED"})),
        )
        .await;
    assert_eq!(updated["webhook"]["name"], "renamed");
    assert_eq!(updated["webhook"]["status"], "DISABLED");
    assert_eq!(updated["webhook"]["url"], "https://93.184.215.14/hook");

    let listed = server
        .ok(Method::GET, "/api/2.0/mlflow/webhooks", None)
        .await;
    assert_eq!(listed["webhooks"].as_array().map(Vec::len), Some(1));
    assert!(!listed.to_string().contains("s3cret"));

    server
        .ok(
            Method::DELETE,
            &format!("/api/2.0/mlflow/webhooks/{id}"),
            None,
        )
        .await;
    let (status, body) = server
        .error(Method::GET, &format!("/api/2.0/mlflow/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn lists_page_with_tokens() {
    let server = server("").await;
    for idx in 0..3 {
        server
            .ok(
                Method::POST,
                "/api/2.0/mlflow/webhooks",
                Some(
                    json!({"name": format!("h{idx}"), "url": "https://93.184.215.14/",
                            "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]}),
                ),
            )
            .await;
    }
    let first = server
        .ok(Method::GET, "/api/2.0/mlflow/webhooks?max_results=2", None)
        .await;
    assert_eq!(first["webhooks"].as_array().map(Vec::len), Some(2));
    let token = first["next_page_token"].as_str().expect("token");
    let second = server
        .ok(
            Method::GET,
            &format!("/api/2.0/mlflow/webhooks?max_results=2&page_token={token}"),
            None,
        )
        .await;
    assert_eq!(second["webhooks"].as_array().map(Vec::len), Some(1));
    assert!(second.get("next_page_token").is_none());
    let (status, body) = server
        .error(
            Method::GET,
            "/api/2.0/mlflow/webhooks?max_results=1001",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn non_public_destinations_are_refused_naming_the_flag() {
    let server = server("").await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
    ] {
        let (status, body) = server
            .error(
                Method::POST,
                "/api/2.0/mlflow/webhooks",
                Some(hook(
                    url,
                    json!([{"entity": "MODEL_VERSION", "action": "CREATED"}]),
                )),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{url}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(FLAG), "{url}: {message}");
    }

    // An update to a refused URL is refused too, and leaves the webhook as it was.
    let created = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/webhooks",
            Some(hook(
                "https://93.184.215.14/",
                json!([{"entity": "MODEL_VERSION", "action": "CREATED"}]),
            )),
        )
        .await;
    let id = created["webhook"]["webhook_id"].as_str().expect("id");
    let (status, body) = server
        .error(
            Method::PATCH,
            &format!("/api/2.0/mlflow/webhooks/{id}"),
            Some(json!({"url": "http://169.254.169.254/"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap_or_default().contains(FLAG));
    let got = server
        .ok(Method::GET, &format!("/api/2.0/mlflow/webhooks/{id}"), None)
        .await;
    assert_eq!(got["webhook"]["url"], "https://93.184.215.14/");
}

#[tokio::test]
async fn invalid_requests_are_invalid_parameter_values() {
    let server = server("").await;
    let event = json!([{"entity": "MODEL_VERSION", "action": "CREATED"}]);
    let cases = [
        json!({"name": "-bad-", "url": "https://93.184.215.14/", "events": event}),
        json!({"name": "ok", "url": "ftp://93.184.215.14/", "events": event}),
        json!({"name": "ok", "url": "file:///etc/passwd", "events": event}),
        json!({"name": "ok", "url": "https://93.184.215.14/", "events": []}),
        json!({"name": "ok", "url": "https://93.184.215.14/",
               "events": [{"entity": "MODEL_VERSION", "action": "SET"}]}),
        json!({"name": "ok", "url": "https://93.184.215.14/",
               "events": [{"entity": "RUN", "action": "CREATED"}]}),
        json!({"name": "ok", "url": "https://93.184.215.14/", "events": event,
               "status": "PAUSED"}),
        json!({"url": "https://93.184.215.14/", "events": event}),
    ];
    for case in cases {
        let (status, body) = server
            .error(Method::POST, "/api/2.0/mlflow/webhooks", Some(case.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{case}");
    }
}

// Multi-threaded: the test thread blocks on the receiver while the delivery worker runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_events_are_delivered_signed_and_retried() {
    let server = server("127.0.0.1").await;
    // The first attempt gets a 503; the retry must carry the same delivery.
    let (url, received) = receiver(vec![503, 200]);
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/webhooks",
            Some(hook(
                &url,
                json!([{"entity": "REGISTERED_MODEL", "action": "CREATED"}]),
            )),
        )
        .await;
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/create",
            Some(json!({"name": "clf", "tags": [{"key": "team", "value": "ml"}]})),
        )
        .await;
    let first = next(&received);
    let second = next(&received);
    for delivery in [&first, &second] {
        verify("s3cret", delivery);
        assert_eq!(delivery.header("Content-Type"), Some("application/json"));
    }
    assert_eq!(
        first.header("X-MLflow-Delivery-Id"),
        second.header("X-MLflow-Delivery-Id")
    );
    assert_eq!(first.body, second.body);
    let payload: Value = serde_json::from_str(&first.body).expect("json body");
    assert_eq!(payload["entity"], "registered_model");
    assert_eq!(payload["action"], "created");
    assert!(payload["timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with("+00:00")));
    assert_eq!(
        payload["data"],
        json!({"name": "clf", "tags": {"team": "ml"}, "description": ""})
    );
}

#[tokio::test]
async fn the_test_endpoint_reports_the_receivers_answer() {
    let server = server("127.0.0.1").await;
    let (url, received) = receiver(vec![200]);
    let created = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/webhooks",
            Some(hook(
                &url,
                json!([{"entity": "MODEL_VERSION_TAG", "action": "SET"}]),
            )),
        )
        .await;
    let id = created["webhook"]["webhook_id"].as_str().expect("id");
    let tested = server
        .ok(
            Method::POST,
            &format!("/api/2.0/mlflow/webhooks/{id}/test"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        tested,
        json!({"result": {"success": true, "response_status": 200,
                          "response_body": "received 1"}})
    );
    let delivery = next(&received);
    verify("s3cret", &delivery);
    let payload: Value = serde_json::from_str(&delivery.body).expect("json body");
    assert_eq!(payload["entity"], "model_version_tag");
    assert_eq!(payload["action"], "set");
    assert_eq!(payload["data"]["key"], "example_key");

    // Another event may be chosen for the test.
    let tested = server
        .ok(
            Method::POST,
            &format!("/api/2.0/mlflow/webhooks/{id}/test"),
            Some(json!({"event": {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"}})),
        )
        .await;
    assert_eq!(tested["result"]["success"], true);
    let payload: Value = serde_json::from_str(&next(&received).body).expect("json body");
    assert_eq!(
        payload["data"],
        json!({"name": "example_model", "alias": "example_alias"})
    );
}

#[tokio::test]
async fn a_failing_test_reports_the_error_instead_of_failing_the_request() {
    let server = server("127.0.0.1").await;
    // A port nothing listens on: bind, read the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let created = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/webhooks",
            Some(hook(
                &format!("http://127.0.0.1:{port}/"),
                json!([{"entity": "MODEL_VERSION", "action": "CREATED"}]),
            )),
        )
        .await;
    let id = created["webhook"]["webhook_id"].as_str().expect("id");
    let tested = server
        .ok(
            Method::POST,
            &format!("/api/2.0/mlflow/webhooks/{id}/test"),
            None,
        )
        .await;
    assert_eq!(tested["result"]["success"], false);
    assert!(tested["result"]["error_message"]
        .as_str()
        .is_some_and(|message| message.starts_with("Failed to test webhook")));
}
