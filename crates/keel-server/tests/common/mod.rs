//! The in-process harness every handler test shares: the router of
//! `keel server` over a real SQLite store and artifact directory in a
//! temporary directory, called with `oneshot`.

// Each test binary compiles this module on its own and uses only some helpers.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use keel_artifacts::LocalArtifactStore;
use keel_server::{app, AppState, HttpOptions};
use keel_store::SqliteStore;
use keel_tracking::webhooks::{DeliverySettings, DestinationPolicy};
use serde_json::Value;
use tower::ServiceExt;

/// A `keel server` router with its own store; dropping it deletes the store.
pub struct TestServer {
    router: Router,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with default HTTP options and webhook settings.
    pub async fn start() -> TestServer {
        TestServer::start_with(
            HttpOptions::default(),
            DestinationPolicy::default(),
            DeliverySettings::default(),
        )
        .await
    }

    /// A server with the given HTTP options and webhook settings.
    pub async fn start_with(
        options: HttpOptions,
        webhook_destinations: DestinationPolicy,
        webhook_delivery: DeliverySettings,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}", dir.path().join("keel.db").display());
        let store = SqliteStore::open(&db, "mlflow-artifacts:")
            .await
            .expect("open store");
        let artifacts =
            LocalArtifactStore::new(dir.path().join("artifacts")).expect("artifact dir");
        let state = AppState::new(
            Arc::new(store),
            Arc::new(artifacts),
            webhook_destinations,
            webhook_delivery,
        );
        TestServer {
            router: app(state, &options),
            _dir: dir,
        }
    }

    /// Sends `request` exactly as built.
    pub async fn send(&self, request: Request<Body>) -> Response {
        self.router
            .clone()
            .oneshot(request)
            .await
            .expect("response")
    }

    /// Sends `body` from `localhost:5000` as JSON.
    pub async fn raw(&self, method: Method, uri: &str, body: Body) -> (StatusCode, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "localhost:5000")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .expect("request");
        let response = self.send(request).await;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, bytes.to_vec())
    }

    /// Sends `body` as text; the answer is parsed as JSON, or else kept as a
    /// JSON string.
    pub async fn call_text(&self, method: Method, uri: &str, body: &str) -> (StatusCode, Value) {
        let (status, bytes) = self.raw(method, uri, Body::from(body.to_string())).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// Sends `body` (or nothing) as JSON and returns the answer as JSON.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map_or_else(String::new, |value| value.to_string());
        self.call_text(method, uri, &body).await
    }

    /// Like `call`, asserting the answer is 200.
    pub async fn ok(&self, method: Method, uri: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), uri, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {uri}: {value}");
        value
    }

    /// Like `call`, asserting the answer is not a success.
    pub async fn error(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, value) = self.call(method.clone(), uri, body).await;
        assert!(!status.is_success(), "{method} {uri} should fail: {value}");
        (status, value)
    }

    /// `call` of GET without a body.
    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None).await
    }

    /// `call` of POST with a JSON body.
    pub async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(body)).await
    }
}
