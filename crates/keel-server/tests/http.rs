//! In-process handler tests: the router of `keel server` over a real SQLite
//! store and artifact directory, called with `oneshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use keel_artifacts::LocalArtifactStore;
use keel_server::{app, AllowedHosts, AppState, HttpOptions};
use keel_store::SqliteStore;
use keel_tracking::{RegistryService, TrackingService};
use serde_json::{json, Value};
use tower::ServiceExt;

struct TestServer {
    router: Router,
    _dir: tempfile::TempDir,
}

async fn server_with(options: HttpOptions) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("keel.db").display());
    let store = SqliteStore::open(&db, "mlflow-artifacts:")
        .await
        .expect("open store");
    let artifacts = LocalArtifactStore::new(dir.path().join("artifacts")).expect("artifact dir");
    let store = Arc::new(store);
    let state = AppState {
        tracking: TrackingService::new(store.clone()),
        webhooks: keel_tracking::WebhookService::start(
            store.clone(),
            Default::default(),
            Default::default(),
        ),
        registry: RegistryService::new(store.clone(), store),
        artifacts: Arc::new(artifacts),
    };
    TestServer {
        router: app(state, &options),
        _dir: dir,
    }
}

async fn server() -> TestServer {
    server_with(HttpOptions::default()).await
}

impl TestServer {
    async fn call(&self, method: Method, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "localhost:5000")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.unwrap_or("").to_string()))
            .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(&body.to_string())).await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None).await
    }

    async fn create_run(&self) -> String {
        let (status, body) = self
            .post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "0"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["run"]["info"]["run_id"]
            .as_str()
            .expect("run id")
            .to_string()
    }
}

#[tokio::test]
async fn experiments_round_trip_on_both_prefixes() {
    let server = server().await;
    let (status, body) = server
        .post(
            "/api/2.0/mlflow/experiments/create",
            json!({"name": "exp-a", "tags": [{"key": "team", "value": "x"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let experiment_id = body["experiment_id"].as_str().expect("id").to_string();
    let (status, body) = server
        .get(&format!(
            "/ajax-api/2.0/mlflow/experiments/get?experiment_id={experiment_id}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["experiment"]["name"], "exp-a");
    assert_eq!(
        body["experiment"]["artifact_location"],
        format!("mlflow-artifacts:/{experiment_id}")
    );
    assert_eq!(body["experiment"]["tags"][0]["value"], "x");
    assert!(body["experiment"]["creation_time"].is_i64());

    let (status, body) = server
        .post(
            "/api/2.0/mlflow/experiments/create",
            json!({"name": "exp-a"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "RESOURCE_ALREADY_EXISTS");
}

#[tokio::test]
async fn missing_required_field_is_invalid_parameter_value() {
    let server = server().await;
    let (status, body) = server
        .post("/api/2.0/mlflow/experiments/create", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        body["message"].as_str().unwrap_or("").contains("'name'"),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400_in_mlflow_shape() {
    let server = server().await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/2.0/mlflow/experiments/create",
            Some("{\"name\": "),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "BAD_REQUEST");
    let (status, body) = server
        .post("/api/2.0/mlflow/experiments/create", json!({"name": 12}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    let run_id = server.create_run().await;
    let (status, body) = server
        .post(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "metrics": [{"key": "m", "value": "abc", "timestamp": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn unknown_endpoint_is_endpoint_not_found() {
    let server = server().await;
    let (status, body) = server.get("/api/2.0/mlflow/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");
}

#[tokio::test]
async fn foreign_host_header_is_refused() {
    let server = server().await;
    let request = Request::builder()
        .uri("/health")
        .header(header::HOST, "evil.example:5000")
        .body(Body::empty())
        .expect("request");
    let response = server
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let open = server_with(HttpOptions {
        allowed_hosts: AllowedHosts::new(["*".to_string()]),
        ..Default::default()
    })
    .await;
    let request = Request::builder()
        .uri("/health")
        .header(header::HOST, "evil.example")
        .body(Body::empty())
        .expect("request");
    let response = open
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_json_body_is_413() {
    let server = server_with(HttpOptions {
        max_json_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let big = json!({"name": "x".repeat(4096)}).to_string();
    let (status, body) = server
        .call(
            Method::POST,
            "/api/2.0/mlflow/experiments/create",
            Some(&big),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error_code"].is_string());
}

#[tokio::test]
async fn non_finite_metrics_round_trip_as_protobuf_strings() {
    let server = server().await;
    let run_id = server.create_run().await;
    let metrics = json!([
        {"key": "nan", "value": "NaN", "timestamp": 1, "step": 0},
        {"key": "inf", "value": "Infinity", "timestamp": 1, "step": 0},
        {"key": "ninf", "value": "-Infinity", "timestamp": 1, "step": 0},
        {"key": "x", "value": 0.5, "timestamp": "2", "step": "3"}
    ]);
    let (status, body) = server
        .post(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "metrics": metrics}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = server
        .get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"))
        .await;
    let metrics = body["run"]["data"]["metrics"]
        .as_array()
        .expect("metrics")
        .clone();
    let value_of = |key: &str| {
        metrics
            .iter()
            .find(|m| m["key"] == key)
            .map(|m| m["value"].clone())
    };
    assert_eq!(value_of("nan"), Some(json!("NaN")));
    assert_eq!(value_of("inf"), Some(json!("Infinity")));
    assert_eq!(value_of("ninf"), Some(json!("-Infinity")));
    assert_eq!(value_of("x"), Some(json!(0.5)));
    let x = metrics.iter().find(|m| m["key"] == "x").expect("x");
    assert_eq!(x["step"], json!(3));
    assert_eq!(x["timestamp"], json!(2));
}

#[tokio::test]
async fn log_batch_limits_are_enforced() {
    let server = server().await;
    let run_id = server.create_run().await;
    let metrics: Vec<Value> = (0..1001)
        .map(|i| json!({"key": "m", "value": i, "timestamp": 1, "step": i}))
        .collect();
    let (status, body) = server
        .post(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "metrics": metrics}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("at most 1000 metrics"),
        "{body}"
    );
    let params: Vec<Value> = (0..101)
        .map(|i| json!({"key": format!("p{i}"), "value": "v"}))
        .collect();
    let (status, _) = server
        .post(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "params": params}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, body) = server
        .get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"))
        .await;
    assert!(
        body["run"]["data"]["metrics"].is_null(),
        "a refused batch logs nothing: {body}"
    );
}

#[tokio::test]
async fn param_values_are_immutable() {
    let server = server().await;
    let run_id = server.create_run().await;
    let log = |value: &'static str| json!({"run_id": run_id, "key": "lr", "value": value});
    assert_eq!(
        server
            .post("/api/2.0/mlflow/runs/log-parameter", log("0.1"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .post("/api/2.0/mlflow/runs/log-parameter", log("0.1"))
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = server
        .post("/api/2.0/mlflow/runs/log-parameter", log("0.2"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn deleted_runs_refuse_writes_and_can_be_restored() {
    let server = server().await;
    let run_id = server.create_run().await;
    assert_eq!(
        server
            .post("/api/2.0/mlflow/runs/delete", json!({"run_id": run_id}))
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = server
        .post(
            "/api/2.0/mlflow/runs/set-tag",
            json!({"run_id": run_id, "key": "k", "value": "v"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        server
            .post("/api/2.0/mlflow/runs/restore", json!({"run_id": run_id}))
            .await
            .0,
        StatusCode::OK
    );
    let (status, _) = server
        .post(
            "/api/2.0/mlflow/runs/set-tag",
            json!({"run_id": run_id, "key": "k", "value": "v"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn get_arguments_come_from_the_query_string() {
    let server = server().await;
    for name in ["alpha", "beta", "alpine"] {
        server
            .post("/api/2.0/mlflow/experiments/create", json!({"name": name}))
            .await;
    }
    let (status, body) = server
        .get("/api/2.0/mlflow/experiments/search?filter=name+LIKE+%27al%25%27&order_by=name+DESC&max_results=10")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["experiments"]
        .as_array()
        .expect("experiments")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, vec!["alpine", "alpha"]);
}

#[tokio::test]
async fn delete_takes_a_json_body() {
    let server = server().await;
    let (_, body) = server
        .post(
            "/api/2.0/mlflow/experiments/create",
            json!({"name": "with-tag"}),
        )
        .await;
    let experiment_id = body["experiment_id"].as_str().expect("id").to_string();
    server
        .post(
            "/api/2.0/mlflow/experiments/set-experiment-tag",
            json!({"experiment_id": experiment_id, "key": "a", "value": "1"}),
        )
        .await;
    let (status, body) = server
        .post(
            "/api/2.0/mlflow/experiments/delete-experiment-tag",
            json!({"experiment_id": experiment_id, "key": "a"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = server
        .get(&format!(
            "/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}"
        ))
        .await;
    assert!(body["experiment"]["tags"].is_null(), "{body}");
}

#[tokio::test]
async fn server_info_and_version() {
    let server = server().await;
    let (status, body) = server.get("/api/3.0/mlflow/server-info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["store_type"], "SqlStore");
    let (status, body) = server.get("/version").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_str().unwrap_or("").starts_with('3'), "{body}");
}
