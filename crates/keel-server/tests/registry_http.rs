//! In-process handler tests of the model registry endpoints: the router of
//! `keel server` over a real SQLite store and artifact directory, called with
//! `oneshot`.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use common::TestServer;

/// A run with a logged model named `model` that it output, and one file in each.
struct Lineage {
    run_id: String,
    run_artifact_uri: String,
    model_id: String,
    model_location: String,
}

/// The status and MLflow error code of a request that must fail.
async fn error_code(
    server: &TestServer,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let (status, value) = server.error(method, uri, body).await;
    (
        status,
        value["error_code"].as_str().unwrap_or_default().to_string(),
    )
}

async fn upload(server: &TestServer, path: &str, content: &str) {
    let uri = format!("/api/2.0/mlflow-artifacts/artifacts/{path}");
    let (status, body) = server
        .raw(Method::PUT, &uri, Body::from(content.to_string()))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "upload {path}: {}",
        String::from_utf8_lossy(&body)
    );
}

async fn lineage(server: &TestServer) -> Lineage {
    lineage_in(server, "0").await
}

async fn lineage_in(server: &TestServer, experiment_id: &str) -> Lineage {
    let run = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/runs/create",
            Some(json!({"experiment_id": experiment_id})),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let run_artifact_uri = run["run"]["info"]["artifact_uri"]
        .as_str()
        .expect("uri")
        .to_string();
    let model = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/logged-models",
            Some(json!({"experiment_id": experiment_id, "name": "model", "source_run_id": run_id})),
        )
        .await;
    let model_id = model["model"]["info"]["model_id"]
        .as_str()
        .expect("model id")
        .to_string();
    let model_location = model["model"]["info"]["artifact_uri"]
        .as_str()
        .expect("uri")
        .to_string();
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/runs/outputs",
            Some(json!({"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]})),
        )
        .await;
    let model_path = model_location
        .trim_start_matches("mlflow-artifacts:")
        .trim_start_matches('/');
    upload(server, &format!("{model_path}/MLmodel"), "flavors: {}\n").await;
    let run_path = run_artifact_uri
        .trim_start_matches("mlflow-artifacts:")
        .trim_start_matches('/');
    upload(server, &format!("{run_path}/other/MLmodel"), "run files\n").await;
    Lineage {
        run_id,
        run_artifact_uri,
        model_id,
        model_location,
    }
}

async fn create_model(server: &TestServer, name: &str) {
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/create",
            Some(json!({"name": name})),
        )
        .await;
}

async fn create_version(server: &TestServer, name: &str, lineage: &Lineage) -> Value {
    let body = json!({"name": name, "source": format!("models:/{}", lineage.model_id), "model_id": lineage.model_id});
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/model-versions/create",
            Some(body),
        )
        .await["model_version"]
        .clone()
}

#[tokio::test]
async fn registered_model_endpoints_use_mlflow_methods() {
    let server = TestServer::start().await;
    let created = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/create",
            Some(json!({"name": "clf", "description": "d", "tags": [{"key": "team", "value": "ml"}]})),
        )
        .await;
    assert_eq!(created["registered_model"]["name"], "clf");
    assert_eq!(created["registered_model"]["tags"][0]["key"], "team");
    assert!(created["registered_model"]["creation_timestamp"].is_i64());
    assert!(created["registered_model"].get("latest_versions").is_none());

    let got = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/registered-models/get?name=clf",
            None,
        )
        .await;
    assert_eq!(got["registered_model"]["description"], "d");
    let updated = server
        .ok(
            Method::PATCH,
            "/api/2.0/mlflow/registered-models/update",
            Some(json!({"name": "clf", "description": "new"})),
        )
        .await;
    assert_eq!(updated["registered_model"]["description"], "new");
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/set-tag",
            Some(json!({"name": "clf", "key": "k", "value": "v"})),
        )
        .await;
    server
        .ok(
            Method::DELETE,
            "/api/2.0/mlflow/registered-models/delete-tag",
            Some(json!({"name": "clf", "key": "team"})),
        )
        .await;
    let got = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/registered-models/get?name=clf",
            None,
        )
        .await;
    assert_eq!(
        got["registered_model"]["tags"],
        json!([{"key": "k", "value": "v"}])
    );

    let renamed = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/rename",
            Some(json!({"name": "clf", "new_name": "clf2"})),
        )
        .await;
    assert_eq!(renamed["registered_model"]["name"], "clf2");
    let found = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/registered-models/search?filter=name%20LIKE%20%27clf%25%27",
            None,
        )
        .await;
    assert_eq!(found["registered_models"][0]["name"], "clf2");
    server
        .ok(
            Method::DELETE,
            "/api/2.0/mlflow/registered-models/delete",
            Some(json!({"name": "clf2"})),
        )
        .await;
    let (status, code) = error_code(
        &server,
        Method::GET,
        "/api/2.0/mlflow/registered-models/get?name=clf2",
        None,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
    );

    // Wrong methods are not routed.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/2.0/mlflow/registered-models/update",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // The ajax prefix serves the same endpoints.
    let (status, _) = server
        .raw(
            Method::GET,
            "/ajax-api/2.0/mlflow/registered-models/search",
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn errors_use_mlflow_codes_and_messages() {
    let server = TestServer::start().await;
    create_model(&server, "m").await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/2.0/mlflow/registered-models/create",
            Some(json!({"name": "m"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "RESOURCE_ALREADY_EXISTS");
    assert_eq!(body["message"], "Registered Model (name=m) already exists.");
    let (_, body) = server
        .call(
            Method::GET,
            "/api/2.0/mlflow/registered-models/get?name=nope",
            None,
        )
        .await;
    assert_eq!(body["message"], "Registered Model with name=nope not found");
    let (status, code) = error_code(
        &server,
        Method::GET,
        "/api/2.0/mlflow/model-versions/get?name=m&version=abc",
        None,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );
    let (status, code) = error_code(
        &server,
        Method::GET,
        "/api/2.0/mlflow/model-versions/get?name=m&version=7",
        None,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
    );
    let (_, code) = error_code(
        &server,
        Method::POST,
        "/api/2.0/mlflow/registered-models/create",
        Some(json!({"name": "a/b"})),
    )
    .await;
    assert_eq!(code, "INVALID_PARAMETER_VALUE");
    let (_, code) = error_code(
        &server,
        Method::POST,
        "/api/2.0/mlflow/registered-models/create",
        Some(json!({})),
    )
    .await;
    assert_eq!(code, "INVALID_PARAMETER_VALUE");
    let (_, code) = error_code(
        &server,
        Method::GET,
        "/api/2.0/mlflow/registered-models/search?filter=name%20%3E%20%27a%27",
        None,
    )
    .await;
    assert_eq!(code, "INVALID_PARAMETER_VALUE");
    let (_, code) = error_code(
        &server,
        Method::GET,
        "/api/2.0/mlflow/registered-models/search?max_results=1001",
        None,
    )
    .await;
    assert_eq!(code, "INVALID_PARAMETER_VALUE");
    let (_, code) = error_code(
        &server,
        Method::GET,
        "/api/2.0/mlflow/model-versions/search?page_token=garbage!",
        None,
    )
    .await;
    assert_eq!(code, "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn versions_from_logged_models_download_and_stream_through_the_proxy() {
    let server = TestServer::start().await;
    let lineage = lineage(&server).await;
    create_model(&server, "clf").await;
    let version = create_version(&server, "clf", &lineage).await;
    assert_eq!(version["version"], "1");
    assert_eq!(version["status"], "READY");
    assert_eq!(version["current_stage"], "None");
    assert_eq!(version["model_id"], lineage.model_id.as_str());
    assert_eq!(
        version["run_id"],
        lineage.run_id.as_str(),
        "the logged model's run"
    );
    assert_eq!(version["source"], format!("models:/{}", lineage.model_id));

    let uri = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/model-versions/get-download-uri?name=clf&version=1",
            None,
        )
        .await;
    assert_eq!(uri["artifact_uri"], lineage.model_location.as_str());

    let (status, bytes) = server
        .raw(
            Method::GET,
            "/api/2.0/mlflow/model-versions/get-artifact?name=clf&version=1&path=MLmodel",
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, b"flavors: {}\n");
    for hostile in [
        "../../../keel.db",
        "%2e%2e/%2e%2e/x",
        "/etc/passwd",
        "a\\..\\..\\b",
    ] {
        let uri = format!(
            "/ajax-api/2.0/mlflow/model-versions/get-artifact?name=clf&version=1&path={hostile}"
        );
        let (status, _) = server.raw(Method::GET, &uri, Body::empty()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hostile}");
    }

    // MLflow 3 records the version on the logged model.
    let model = server
        .ok(
            Method::GET,
            &format!("/api/2.0/mlflow/logged-models/{}", lineage.model_id),
            None,
        )
        .await;
    let tags = model["model"]["info"]["tags"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let versions_tag = tags
        .iter()
        .find(|tag| tag["key"] == "mlflow.modelVersions")
        .expect("tag");
    let listed: Value =
        serde_json::from_str(versions_tag["value"].as_str().unwrap_or("")).expect("json");
    assert_eq!(listed, json!([{"name": "clf", "version": "1"}]));

    // `runs:/<run>/<name>` means the logged model of that name the run produced.
    let version = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/model-versions/create",
            Some(json!({"name": "clf", "source": format!("runs:/{}/model", lineage.run_id), "run_id": lineage.run_id})),
        )
        .await["model_version"]
        .clone();
    assert_eq!(version["version"], "2");
    assert_eq!(version["model_id"], lineage.model_id.as_str());
    let uri = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/model-versions/get-download-uri?name=clf&version=2",
            None,
        )
        .await;
    assert_eq!(uri["artifact_uri"], lineage.model_location.as_str());

    // A run path without a logged model resolves inside the run's artifacts.
    let version = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/model-versions/create",
            Some(json!({"name": "clf", "source": format!("runs:/{}/other", lineage.run_id), "run_id": lineage.run_id})),
        )
        .await["model_version"]
        .clone();
    assert!(version.get("model_id").is_none());
    let (status, bytes) = server
        .raw(
            Method::GET,
            "/api/2.0/mlflow/model-versions/get-artifact?name=clf&version=3&path=MLmodel",
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, b"run files\n");
    let uri = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/model-versions/get-download-uri?name=clf&version=3",
            None,
        )
        .await;
    assert_eq!(
        uri["artifact_uri"],
        format!("{}/other", lineage.run_artifact_uri)
    );
}

#[tokio::test]
async fn hostile_sources_are_refused_with_invalid_parameter_value() {
    let server = TestServer::start().await;
    let lineage = lineage(&server).await;
    let experiment = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/experiments/create",
            Some(json!({"name": "elsewhere"})),
        )
        .await;
    let other = lineage_in(&server, experiment["experiment_id"].as_str().expect("id")).await;
    create_model(&server, "clf").await;
    let run_root = lineage.run_artifact_uri.clone();
    let model_root = lineage.model_location.clone();
    let run = Some(lineage.run_id.as_str());
    let model = Some(lineage.model_id.as_str());
    let cases: Vec<(String, Option<&str>, Option<&str>)> = vec![
        ("/etc/passwd".into(), None, None),
        ("/etc/passwd".into(), run, None),
        ("file:///etc/passwd".into(), run, None),
        ("file:///etc/passwd".into(), None, model),
        (format!("{run_root}/../../../../etc/passwd"), run, None),
        (format!("{run_root}/%2e%2e/%2e%2e/%2e%2e/etc"), run, None),
        (format!("{run_root}/%252e%252e/%252e%252e/etc"), run, None),
        (format!("{run_root}/..%2f..%2f..%2fetc"), run, None),
        (format!("{run_root}\\..\\..\\etc"), run, None),
        (format!("{run_root}/model%00"), run, None),
        (format!("{run_root}/model\u{0}"), run, None),
        (format!("{model_root}/../../../../x"), None, model),
        (
            "mlflow-artifacts://evil.example:443/0/x/artifacts".into(),
            run,
            None,
        ),
        (
            "mlflow-artifacts:/1/elsewhere/artifacts/model".into(),
            run,
            None,
        ),
        (other.run_artifact_uri.clone(), run, None),
        (other.model_location.clone(), None, model),
        ("http://evil.example/model".into(), run, None),
        (
            "https://host/api/2.0/mlflow-artifacts/artifacts/0/x".into(),
            run,
            None,
        ),
        ("s3://bucket/model".into(), run, None),
        ("gs://bucket/model".into(), None, model),
        (run_root.clone(), None, None),
        (format!("runs:/{}/model", lineage.run_id), None, None),
        (format!("runs:/{}/model", other.run_id), run, None),
        (format!("runs:/{}/model", lineage.run_id), run, model),
        ("runs://host/x/model".into(), run, None),
        (format!("models:/{}", other.model_id), None, model),
        ("models:/m-does-not-exist".into(), None, None),
        ("models://profile@databricks/clf/1".into(), None, None),
        ("models:/a/b/c".into(), None, None),
        (format!("{run_root}/model?x=../../etc"), run, None),
        ("dummy-source".into(), run, None),
    ];
    for (source, run_id, model_id) in cases {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/2.0/mlflow/model-versions/create",
                Some(json!({"name": "clf", "source": source, "run_id": run_id, "model_id": model_id})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{source:?} run={run_id:?} model={model_id:?}: {body}"
        );
        assert_eq!(
            body["error_code"], "INVALID_PARAMETER_VALUE",
            "{source:?}: {body}"
        );
    }
    // Nothing was registered.
    let found = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/model-versions/search?filter=name%3D%27clf%27",
            None,
        )
        .await;
    assert!(found.get("model_versions").is_none(), "{found}");
}

#[tokio::test]
async fn legitimate_sources_are_accepted() {
    let server = TestServer::start().await;
    let lineage = lineage(&server).await;
    create_model(&server, "clf").await;
    let run_root = lineage.run_artifact_uri.clone();
    let model_root = lineage.model_location.clone();
    let run = Some(lineage.run_id.as_str());
    let model = Some(lineage.model_id.as_str());
    let cases: Vec<(String, Option<&str>, Option<&str>)> = vec![
        (format!("models:/{}", lineage.model_id), None, model),
        (format!("models:/{}", lineage.model_id), run, None),
        (format!("runs:/{}/model", lineage.run_id), run, None),
        (format!("runs:/{}", lineage.run_id), run, None),
        (run_root.clone(), run, None),
        (format!("{run_root}/other"), run, None),
        (model_root.clone(), None, model),
        (format!("{model_root}/sub/dir"), run, model),
        // The proxy's own scheme, anywhere in the same experiment's location.
        ("mlflow-artifacts:/0/shared/model".into(), run, None),
        ("models:/clf/1".into(), None, None),
        ("models:/clf/latest".into(), None, None),
        ("models:/clf/None".into(), None, None),
    ];
    for (idx, (source, run_id, model_id)) in cases.iter().enumerate() {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/2.0/mlflow/model-versions/create",
                Some(json!({"name": "clf", "source": source, "run_id": run_id, "model_id": model_id})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{source:?} run={run_id:?} model={model_id:?}: {body}"
        );
        assert_eq!(body["model_version"]["version"], (idx + 1).to_string());
    }
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({"name": "clf", "alias": "champion", "version": "1"})),
        )
        .await;
    let copied = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/model-versions/create",
            Some(json!({"name": "clf", "source": "models:/clf@champion"})),
        )
        .await;
    assert_eq!(
        copied["model_version"]["source"], "models:/clf/1",
        "sources naming versions are normalized"
    );
    assert_eq!(
        copied["model_version"]["model_id"],
        lineage.model_id.as_str(),
        "lineage is copied"
    );
    let uri = server
        .ok(
            Method::GET,
            &format!(
                "/api/2.0/mlflow/model-versions/get-download-uri?name=clf&version={}",
                cases.len() + 1
            ),
            None,
        )
        .await;
    assert_eq!(uri["artifact_uri"], model_root.as_str());
}

#[tokio::test]
async fn aliases_and_reserved_alias_names() {
    let server = TestServer::start().await;
    let lineage = lineage(&server).await;
    create_model(&server, "clf").await;
    create_version(&server, "clf", &lineage).await;
    create_version(&server, "clf", &lineage).await;
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({"name": "clf", "alias": "champion", "version": 1})),
        )
        .await;
    let by_alias = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/registered-models/alias?name=clf&alias=champion",
            None,
        )
        .await;
    assert_eq!(by_alias["model_version"]["version"], "1");
    assert_eq!(by_alias["model_version"]["aliases"], json!(["champion"]));
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({"name": "clf", "alias": "champion", "version": "2"})),
        )
        .await;
    let model = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/registered-models/get?name=clf",
            None,
        )
        .await;
    assert_eq!(
        model["registered_model"]["aliases"],
        json!([{"alias": "champion", "version": "2"}])
    );
    let latest = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/registered-models/alias?name=clf&alias=latest",
            None,
        )
        .await;
    assert_eq!(latest["model_version"]["version"], "2");

    for reserved in ["latest", "Latest", "v1", "V12"] {
        let (status, code) = error_code(
            &server,
            Method::POST,
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({"name": "clf", "alias": reserved, "version": "1"})),
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
            "{reserved}"
        );
    }
    let (_, code) = error_code(
        &server,
        Method::POST,
        "/api/2.0/mlflow/registered-models/alias",
        Some(json!({"name": "clf", "alias": "a.b", "version": "1"})),
    )
    .await;
    assert_eq!(code, "INVALID_PARAMETER_VALUE");
    server
        .ok(
            Method::DELETE,
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({"name": "clf", "alias": "champion"})),
        )
        .await;
    let (status, code) = error_code(
        &server,
        Method::GET,
        "/api/2.0/mlflow/registered-models/alias?name=clf&alias=champion",
        None,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
    );
}

#[tokio::test]
async fn stages_latest_versions_tags_and_deletes() {
    let server = TestServer::start().await;
    let lineage = lineage(&server).await;
    create_model(&server, "clf").await;
    for _ in 0..3 {
        create_version(&server, "clf", &lineage).await;
    }
    let moved = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/model-versions/transition-stage",
            Some(json!({"name": "clf", "version": "1", "stage": "production"})),
        )
        .await;
    assert_eq!(moved["model_version"]["current_stage"], "Production");
    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/model-versions/transition-stage",
            Some(json!({"name": "clf", "version": "2", "stage": "Production", "archive_existing_versions": true})),
        )
        .await;
    let v1 = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/model-versions/get?name=clf&version=1",
            None,
        )
        .await;
    assert_eq!(v1["model_version"]["current_stage"], "Archived");
    let (_, code) = error_code(
        &server,
        Method::POST,
        "/api/2.0/mlflow/model-versions/transition-stage",
        Some(json!({"name": "clf", "version": "3", "stage": "Archived", "archive_existing_versions": true})),
    )
    .await;
    assert_eq!(code, "INVALID_PARAMETER_VALUE");
    let (_, code) = error_code(
        &server,
        Method::POST,
        "/api/2.0/mlflow/model-versions/transition-stage",
        Some(json!({"name": "clf", "version": "3", "stage": "prod"})),
    )
    .await;
    assert_eq!(code, "INVALID_PARAMETER_VALUE");

    let posted = server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/registered-models/get-latest-versions",
            Some(json!({"name": "clf", "stages": ["Production"]})),
        )
        .await;
    assert_eq!(posted["model_versions"][0]["version"], "2");
    let got = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/registered-models/get-latest-versions?name=clf",
            None,
        )
        .await;
    let versions: Vec<&str> = got["model_versions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(versions, vec!["1", "2", "3"]);

    server
        .ok(
            Method::POST,
            "/api/2.0/mlflow/model-versions/set-tag",
            Some(json!({"name": "clf", "version": "3", "key": "k", "value": "v"})),
        )
        .await;
    let updated = server
        .ok(
            Method::PATCH,
            "/api/2.0/mlflow/model-versions/update",
            Some(json!({"name": "clf", "version": "3", "description": "third"})),
        )
        .await;
    assert_eq!(updated["model_version"]["description"], "third");
    assert_eq!(
        updated["model_version"]["tags"],
        json!([{"key": "k", "value": "v"}])
    );
    server
        .ok(
            Method::DELETE,
            "/api/2.0/mlflow/model-versions/delete-tag",
            Some(json!({"name": "clf", "version": "3", "key": "k"})),
        )
        .await;
    let found = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/model-versions/search?filter=tags.k%3D%27v%27",
            None,
        )
        .await;
    assert!(found.get("model_versions").is_none());

    server
        .ok(
            Method::DELETE,
            "/api/2.0/mlflow/model-versions/delete",
            Some(json!({"name": "clf", "version": "3"})),
        )
        .await;
    let next = create_version(&server, "clf", &lineage).await;
    assert_eq!(next["version"], "4", "numbers are never reused");
    let page = server
        .ok(
            Method::GET,
            "/api/2.0/mlflow/model-versions/search?filter=name%3D%27clf%27&max_results=2",
            None,
        )
        .await;
    assert_eq!(page["model_versions"].as_array().map(Vec::len), Some(2));
    let token = page["next_page_token"]
        .as_str()
        .expect("token")
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let rest = server
        .ok(
            Method::GET,
            &format!(
                "/api/2.0/mlflow/model-versions/search?filter=name%3D%27clf%27&max_results=2&page_token={token}"
            ),
            None,
        )
        .await;
    assert_eq!(rest["model_versions"].as_array().map(Vec::len), Some(1));
    assert!(rest.get("next_page_token").is_none());
}
