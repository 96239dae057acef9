//! In-process handler tests of Keel's lineage API
//! (`GET /api/keel/v1/lineage/model-versions/{name}/{version|@alias}`): the
//! router of `keel server` over a real SQLite store, called with `oneshot`.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use common::TestServer;

const LINEAGE: &str = "/api/keel/v1/lineage/model-versions";

async fn lineage(server: &TestServer, name_and_version: &str) -> (StatusCode, Value) {
    server
        .call(Method::GET, &format!("{LINEAGE}/{name_and_version}"), None)
        .await
}

/// A run with params, metrics, a training dataset and a logged model it
/// output, registered as version 1 of `model_name` with alias `champion`.
async fn trained_and_registered(server: &TestServer, model_name: &str) -> (String, String) {
    let run = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            Some(json!({"experiment_id": "0", "run_name": "brave-fox"})),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/runs/log-batch",
            Some(json!({
                "run_id": run_id,
                "params": [{"key": "alpha", "value": "0.5"}],
                "metrics": [
                    {"key": "rmse", "value": 0.4, "timestamp": 1, "step": 0},
                    {"key": "rmse", "value": 0.2, "timestamp": 2, "step": 1},
                    {"key": "loss", "value": "NaN", "timestamp": 2, "step": 1}
                ],
                "tags": [{"key": "team", "value": "search"}]
            })),
        )
        .await;
    server.ok(
        Method::POST,
        "/api/2.0/mlflow/runs/log-inputs",
        Some(json!({
            "run_id": run_id,
            "datasets": [{
                "tags": [{"key": "mlflow.data.context", "value": "training"}],
                "dataset": {
                    "name": "wine", "digest": "d41d8cd9", "source_type": "local",
                    "source": "{\"uri\": \"/data/wine.csv\"}",
                    "schema": "{\"mlflow_colspec\": [{\"name\": \"acidity\", \"type\": \"double\"}]}"
                }
            }]
        })),
    )
    .await;
    let model = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/logged-models",
            Some(
                json!({"experiment_id": "0", "name": "model", "source_run_id": run_id,
                   "params": [{"key": "flavor", "value": "sklearn"}]}),
            ),
        )
        .await;
    let model_id = model["model"]["info"]["model_id"]
        .as_str()
        .expect("model id")
        .to_string();
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/runs/outputs",
            Some(json!({"run_id": run_id, "models": [{"model_id": model_id, "step": 1}]})),
        )
        .await;
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/create",
            Some(json!({"name": model_name})),
        )
        .await;
    server.ok(
        Method::POST,
        "/api/2.0/mlflow/model-versions/create",
        Some(json!({"name": model_name, "source": format!("models:/{model_id}"), "model_id": model_id,
               "tags": [{"key": "validated", "value": "yes"}]})),
    )
    .await;
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({"name": model_name, "alias": "champion", "version": "1"})),
        )
        .await;
    (run_id, model_id)
}

#[tokio::test]
async fn lineage_joins_version_logged_model_run_and_datasets_in_one_document() {
    let server = TestServer::start().await;
    let (run_id, model_id) = trained_and_registered(&server, "wine-clf").await;

    let (status, by_version) = lineage(&server, "wine-clf/1").await;
    assert_eq!(status, StatusCode::OK, "{by_version}");
    let (status, by_alias) = lineage(&server, "wine-clf/@champion").await;
    assert_eq!(status, StatusCode::OK, "{by_alias}");
    assert_eq!(by_version, by_alias);

    let version = &by_version["model_version"];
    assert_eq!(version["name"], "wine-clf");
    assert_eq!(version["version"], 1);
    assert_eq!(version["aliases"], json!(["champion"]));
    assert_eq!(version["tags"]["validated"], "yes");
    assert_eq!(version["current_stage"], "None");
    assert_eq!(version["run_id"], run_id.as_str());
    assert!(version["storage_location"]
        .as_str()
        .is_some_and(|location| location.starts_with("mlflow-artifacts:/")));

    let model = &by_version["logged_model"];
    assert_eq!(model["model_id"], model_id.as_str());
    assert_eq!(model["params"]["flavor"], "sklearn");
    assert_eq!(model["source_run_id"], run_id.as_str());

    let run = &by_version["run"];
    assert_eq!(run["run_id"], run_id.as_str());
    assert_eq!(run["run_name"], "brave-fox");
    assert_eq!(run["experiment_name"], "Default");
    assert_eq!(run["params"]["alpha"], "0.5");
    assert_eq!(run["tags"]["team"], "search");
    assert_eq!(
        run["metrics"],
        json!([
            {"key": "loss", "value": "NaN", "step": 1, "timestamp": 2},
            {"key": "rmse", "value": 0.2, "step": 1, "timestamp": 2}
        ]),
        "latest value of each metric, sorted, NaN spelled as protobuf does"
    );
    let dataset = &run["datasets"][0];
    assert_eq!(dataset["name"], "wine");
    assert_eq!(dataset["digest"], "d41d8cd9");
    assert_eq!(dataset["source_type"], "local");
    assert_eq!(dataset["context"], "training");
    assert!(dataset["schema"]
        .as_str()
        .is_some_and(|schema| schema.contains("acidity")));
    assert_eq!(
        run["model_outputs"],
        json!([{"model_id": model_id, "step": 1}])
    );
    assert_eq!(by_version["notes"], json!([]));

    let (status, latest) = lineage(&server, "wine-clf/@latest").await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(latest["model_version"]["version"], 1);
}

#[tokio::test]
async fn names_with_spaces_and_at_signs_are_percent_encoded() {
    let server = TestServer::start().await;
    trained_and_registered(&server, "team@x model").await;
    let (status, value) = lineage(&server, "team%40x%20model/%40champion").await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["model_version"]["name"], "team@x model");
}

#[tokio::test]
async fn unknown_models_versions_and_aliases_are_404_in_mlflow_error_json() {
    let server = TestServer::start().await;
    trained_and_registered(&server, "clf").await;
    for (path, message) in [
        ("nope/1", "Registered Model with name=nope not found"),
        (
            "nope/@champion",
            "Registered Model with name=nope not found",
        ),
        ("clf/7", "Model Version (name=clf, version=7) not found"),
        (
            "clf/@challenger",
            "Registered model alias challenger not found for model clf.",
        ),
    ] {
        let (status, value) = lineage(&server, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {value}");
        assert_eq!(value["error_code"], "RESOURCE_DOES_NOT_EXIST", "{path}");
        assert_eq!(value["message"], message, "{path}");
    }
}

#[tokio::test]
async fn malformed_versions_are_invalid_parameters() {
    let server = TestServer::start().await;
    for path in ["clf/three", "clf/@", "clf/@a%20b", "clf/1.5"] {
        let (status, value) = lineage(&server, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {value}");
        assert_eq!(value["error_code"], "INVALID_PARAMETER_VALUE", "{path}");
    }
    let (status, value) = lineage(&server, "clf").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{value}");
    assert_eq!(value["error_code"], "ENDPOINT_NOT_FOUND");
}
