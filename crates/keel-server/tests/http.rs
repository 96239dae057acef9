//! In-process handler tests: the router of `keel server` over a real SQLite
//! store and artifact directory, called with `oneshot`.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use keel_server::{AllowedHosts, HttpOptions};
use keel_tracking::webhooks::{DeliverySettings, DestinationPolicy};
use serde_json::{json, Value};

use common::TestServer;

async fn server_with(options: HttpOptions) -> TestServer {
    TestServer::start_with(
        options,
        DestinationPolicy::default(),
        DeliverySettings::default(),
    )
    .await
}

async fn create_run(server: &TestServer) -> String {
    let (status, body) = server
        .post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "0"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string()
}

#[tokio::test]
async fn experiments_round_trip_on_both_prefixes() {
    let server = TestServer::start().await;
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
    let server = TestServer::start().await;
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
    let server = TestServer::start().await;
    let (status, body) = server
        .call_text(
            Method::POST,
            "/api/2.0/mlflow/experiments/create",
            "{\"name\": ",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "BAD_REQUEST");
    let (status, body) = server
        .post("/api/2.0/mlflow/experiments/create", json!({"name": 12}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    let run_id = create_run(&server).await;
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
    let server = TestServer::start().await;
    let (status, body) = server.get("/api/2.0/mlflow/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");
}

#[tokio::test]
async fn foreign_host_header_is_refused() {
    let server = TestServer::start().await;
    let request = Request::builder()
        .uri("/health")
        .header(header::HOST, "evil.example:5000")
        .body(Body::empty())
        .expect("request");
    let response = server.send(request).await;
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
    let response = open.send(request).await;
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
        .call_text(Method::POST, "/api/2.0/mlflow/experiments/create", &big)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error_code"].is_string());
}

#[tokio::test]
async fn non_finite_metrics_round_trip_as_protobuf_strings() {
    let server = TestServer::start().await;
    let run_id = create_run(&server).await;
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
    let server = TestServer::start().await;
    let run_id = create_run(&server).await;
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
    let server = TestServer::start().await;
    let run_id = create_run(&server).await;
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
    let server = TestServer::start().await;
    let run_id = create_run(&server).await;
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
    let server = TestServer::start().await;
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
    let server = TestServer::start().await;
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
    let server = TestServer::start().await;
    let (status, body) = server.get("/api/3.0/mlflow/server-info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["store_type"], "SqlStore");
    let (status, body) = server.get("/version").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_str().unwrap_or("").starts_with('3'), "{body}");
}
