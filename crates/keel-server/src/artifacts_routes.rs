//! MLflow's artifact proxy (`mlflow server --serve-artifacts`) over an [`ArtifactStore`]:
//! list, download, upload and delete under `/api/2.0/mlflow-artifacts` and
//! `/ajax-api/2.0/mlflow-artifacts`, answering as MLflow does so its client works unchanged.
//!
//! Wire behaviour copied from MLflow 3.x (`mlflow/server/handlers.py`, client
//! `mlflow/store/artifact/http_artifact_repo.py`):
//! - list answers `{"files": [{"path": <basename>, "is_dir": .., "file_size": ..}]}`, with
//!   `file_size` left out for directories and `{}` when nothing is there;
//! - download streams the file as an attachment with a content type guessed from its name;
//! - upload streams the raw body to the store and answers `{}`; delete answers `{}`;
//! - multipart upload and presigned download answer 501 `NOT_IMPLEMENTED` with the messages
//!   the client checks for, so it falls back to plain uploads and downloads;
//! - errors are `{"error_code": .., "message": ..}` with the code's HTTP status.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::TryStreamExt;
use keel_api::mlflow::{ErrorResponse, FileInfo as FileInfoJson};
use keel_artifacts::{ArtifactStore, FileInfo, RelativeArtifactPath};
use keel_core::KeelError;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

type SharedStore = Arc<dyn ArtifactStore>;

/// Both prefixes MLflow serves its artifact API under: the REST one and the one its UI calls.
const API_PREFIXES: [&str; 2] = [
    "/api/2.0/mlflow-artifacts",
    "/ajax-api/2.0/mlflow-artifacts",
];

/// Messages MLflow's client matches on to fall back to plain transfers; keep them verbatim.
const MULTIPART_UPLOAD_UNSUPPORTED: &str =
    "Multipart upload is not supported for the current artifact repository";
const PRESIGNED_DOWNLOAD_UNSUPPORTED: &str =
    "Presigned URL download is not supported for the current artifact repository";

/// The artifact proxy routes, state applied, ready to `.merge()` into the server's router.
///
/// Uploads are streamed and exempt from the server's default body limit.
pub fn artifact_routes(store: SharedStore) -> Router {
    let mut router = Router::new();
    for prefix in API_PREFIXES {
        router = router
            .route(&format!("{prefix}/artifacts"), get(list_artifacts))
            .route(
                &format!("{prefix}/artifacts/{{*artifact_path}}"),
                get(download_artifact)
                    .put(upload_artifact)
                    .delete(delete_artifact),
            )
            .route(
                &format!("{prefix}/mpu/create/{{*artifact_path}}"),
                post(multipart_upload_unsupported),
            )
            .route(
                &format!("{prefix}/mpu/complete/{{*artifact_path}}"),
                post(multipart_upload_unsupported),
            )
            .route(
                &format!("{prefix}/mpu/abort/{{*artifact_path}}"),
                post(multipart_upload_unsupported),
            )
            .route(
                &format!("{prefix}/presigned/{{*artifact_path}}"),
                get(presigned_download_unsupported),
            );
    }
    router.layer(DefaultBodyLimit::disable()).with_state(store)
}

#[derive(Debug, Deserialize)]
struct ListArtifactsQuery {
    path: Option<String>,
}

/// `mlflow.artifacts.ListArtifacts.Response` as MLflow serializes it: unlike the tracking
/// API's, it has no `root_uri`, and an empty list is left out entirely (`{}`).
#[derive(Debug, Serialize)]
struct ProxyListArtifactsResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<FileInfoJson>,
}

/// MLflow's proxy answers with names relative to the listed directory.
fn proxy_file_info(info: &FileInfo) -> FileInfoJson {
    FileInfoJson {
        path: info.name().to_owned(),
        is_dir: info.is_dir,
        file_size: info
            .file_size
            .map(|size| i64::try_from(size).unwrap_or(i64::MAX)),
    }
}

/// The empty protobuf response (`UploadArtifact.Response`, `DeleteArtifact.Response`).
#[derive(Debug, Serialize)]
struct EmptyResponse {}

async fn list_artifacts(
    State(store): State<SharedStore>,
    query: Result<Query<ListArtifactsQuery>, QueryRejection>,
) -> ApiResult<Json<ProxyListArtifactsResponse>> {
    let Query(query) = query.map_err(|rejection| {
        KeelError::invalid(format!(
            "invalid query string: {}",
            rejection.body_text().to_lowercase()
        ))
    })?;
    // No `path` and `path=` both mean the root, as in MLflow.
    let dir = RelativeArtifactPath::parse(query.path.as_deref().unwrap_or(""))?;
    let files = store.list(&dir).await?;
    Ok(Json(ProxyListArtifactsResponse {
        files: files.iter().map(proxy_file_info).collect(),
    }))
}

async fn download_artifact(
    State(store): State<SharedStore>,
    artifact_path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let artifact_path = validated_path(artifact_path)?;
    let download = store.get(&artifact_path).await?;
    let file_name = artifact_path.file_name().unwrap_or("artifact");
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, guess_mime_type(file_name))
        .header(header::CONTENT_LENGTH, download.size)
        .header(
            header::CONTENT_DISPOSITION,
            attachment_disposition(file_name),
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(Body::from_stream(download.stream))
        .map_err(|err| {
            ApiError::from(KeelError::internal(format!(
                "could not build the download response: {err}"
            )))
        })
}

async fn upload_artifact(
    State(store): State<SharedStore>,
    artifact_path: Result<Path<String>, PathRejection>,
    body: Body,
) -> ApiResult<Json<EmptyResponse>> {
    let artifact_path = validated_path(artifact_path)?;
    let chunks = body.into_data_stream().map_err(io::Error::other);
    store.put(&artifact_path, Box::pin(chunks)).await?;
    Ok(Json(EmptyResponse {}))
}

async fn delete_artifact(
    State(store): State<SharedStore>,
    artifact_path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<EmptyResponse>> {
    let artifact_path = validated_path(artifact_path)?;
    store.delete(&artifact_path).await?;
    Ok(Json(EmptyResponse {}))
}

async fn multipart_upload_unsupported(
    artifact_path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    validated_path(artifact_path)?;
    Ok(not_implemented(MULTIPART_UPLOAD_UNSUPPORTED))
}

async fn presigned_download_unsupported(
    artifact_path: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    validated_path(artifact_path)?;
    Ok(not_implemented(PRESIGNED_DOWNLOAD_UNSUPPORTED))
}

/// Axum has percent-decoded the path once; `RelativeArtifactPath` peels any further layers.
fn validated_path(
    artifact_path: Result<Path<String>, PathRejection>,
) -> ApiResult<RelativeArtifactPath> {
    let Path(raw) = artifact_path.map_err(|rejection| {
        KeelError::invalid(format!(
            "invalid artifact path: {}",
            rejection.body_text().to_lowercase()
        ))
    })?;
    Ok(RelativeArtifactPath::parse(&raw)?)
}

/// MLflow's `_guess_mime_type`: its text extensions (and `MLmodel`, `MLproject`) are
/// `text/plain`, a few common types are recognized, everything else is binary.
fn guess_mime_type(file_name: &str) -> &'static str {
    const TEXT_EXTENSIONS: &[&str] = &[
        "txt",
        "log",
        "err",
        "cfg",
        "conf",
        "cnf",
        "cf",
        "ini",
        "properties",
        "prop",
        "hocon",
        "toml",
        "yaml",
        "yml",
        "xml",
        "json",
        "js",
        "py",
        "py3",
        "csv",
        "tsv",
        "md",
        "rst",
        "MLmodel",
        "MLproject",
    ];
    let extension = match file_name.rsplit_once('.') {
        Some((_, extension)) if !extension.is_empty() => extension,
        _ => file_name,
    };
    if TEXT_EXTENSIONS.contains(&extension) {
        return "text/plain";
    }
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "mp3" => "audio/mpeg",
        "wav" => "audio/x-wav",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// Characters left as they are in an RFC 5987 `filename*` value.
const FILENAME_ATTR_CHARS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename=NAME` as MLflow sends it when the name is a plain token; otherwise
/// an ASCII fallback plus the exact name in RFC 5987 form, so any name makes a valid header.
fn attachment_disposition(file_name: &str) -> HeaderValue {
    let is_token = file_name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte));
    let value = if is_token {
        format!("attachment; filename={file_name}")
    } else {
        let fallback: String = file_name
            .chars()
            .map(|character| {
                if character.is_ascii_graphic() && character != '"' && character != '\\' {
                    character
                } else {
                    '_'
                }
            })
            .collect();
        format!(
            "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
            utf8_percent_encode(file_name, FILENAME_ATTR_CHARS)
        )
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// MLflow's `NOT_IMPLEMENTED` (501), which has no `keel_core::ErrorCode`: only this proxy
/// answers it.
fn not_implemented(message: &str) -> Response {
    let body = ErrorResponse {
        error_code: "NOT_IMPLEMENTED".to_owned(),
        message: message.to_owned(),
    };
    (StatusCode::NOT_IMPLEMENTED, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::http::{Method, Request};
    use http_body_util::BodyExt;
    use keel_artifacts::LocalArtifactStore;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    const ARTIFACTS: &str = "/api/2.0/mlflow-artifacts/artifacts";

    struct TestServer {
        /// Holds the artifact root at `<dir>/root`; everything else in `<dir>` is "outside".
        dir: tempfile::TempDir,
        router: Router,
    }

    impl TestServer {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = LocalArtifactStore::new(dir.path().join("root")).expect("store opens");
            TestServer {
                dir,
                router: artifact_routes(Arc::new(store)),
            }
        }

        async fn send(&self, method: Method, uri: &str, body: Body) -> Response {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .body(body)
                .expect("valid request");
            self.router
                .clone()
                .oneshot(request)
                .await
                .expect("router is infallible")
        }

        async fn put(&self, uri: &str, content: &[u8]) -> Response {
            self.send(Method::PUT, uri, Body::from(content.to_vec()))
                .await
        }

        async fn get(&self, uri: &str) -> Response {
            self.send(Method::GET, uri, Body::empty()).await
        }

        async fn delete(&self, uri: &str) -> Response {
            self.send(Method::DELETE, uri, Body::empty()).await
        }

        /// Names directly inside the temporary directory, i.e. outside the artifact root.
        fn entries_beside_root(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
                .expect("readable")
                .map(|entry| {
                    entry
                        .expect("entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            names.sort();
            names
        }
    }

    async fn body_bytes(response: Response) -> Vec<u8> {
        response
            .into_body()
            .collect()
            .await
            .expect("body is readable")
            .to_bytes()
            .to_vec()
    }

    async fn body_json(response: Response) -> Value {
        serde_json::from_slice(&body_bytes(response).await).expect("body is json")
    }

    async fn assert_ok_empty_json(response: Response) {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_json(response).await, json!({}));
    }

    async fn assert_error(response: Response, status: StatusCode, error_code: &str) -> String {
        assert_eq!(response.status(), status);
        let body = body_json(response).await;
        assert_eq!(body["error_code"], error_code, "{body}");
        body["message"].as_str().expect("message").to_owned()
    }

    fn header_str(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .expect("header present")
            .to_str()
            .expect("ascii header")
    }

    #[tokio::test]
    async fn upload_list_download_delete_round_trip() {
        let server = TestServer::new();
        let content: Vec<u8> = (0..300_000u32).map(|idx| (idx % 256) as u8).collect();
        assert_ok_empty_json(
            server
                .put(&format!("{ARTIFACTS}/1/run/artifacts/model.bin"), &content)
                .await,
        )
        .await;
        assert_ok_empty_json(
            server
                .put(&format!("{ARTIFACTS}/1/run/artifacts/sub/notes.txt"), b"hi")
                .await,
        )
        .await;

        let listing = server
            .get(&format!("{ARTIFACTS}?path=1/run/artifacts"))
            .await;
        assert_eq!(listing.status(), StatusCode::OK);
        assert_eq!(
            body_json(listing).await,
            json!({"files": [
                {"path": "model.bin", "is_dir": false, "file_size": 300_000},
                {"path": "sub", "is_dir": true},
            ]})
        );

        let download = server
            .get(&format!("{ARTIFACTS}/1/run/artifacts/model.bin"))
            .await;
        assert_eq!(download.status(), StatusCode::OK);
        assert_eq!(header_str(&download, header::CONTENT_LENGTH), "300000");
        assert_eq!(body_bytes(download).await, content);

        assert_ok_empty_json(
            server
                .delete(&format!("{ARTIFACTS}/1/run/artifacts/model.bin"))
                .await,
        )
        .await;
        let missing = server
            .get(&format!("{ARTIFACTS}/1/run/artifacts/model.bin"))
            .await;
        assert_error(missing, StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST").await;
    }

    #[tokio::test]
    async fn ajax_prefix_serves_the_same_artifacts() {
        let server = TestServer::new();
        assert_ok_empty_json(
            server
                .put("/ajax-api/2.0/mlflow-artifacts/artifacts/a.txt", b"x")
                .await,
        )
        .await;
        let download = server.get(&format!("{ARTIFACTS}/a.txt")).await;
        assert_eq!(body_bytes(download).await, b"x");
        let listing = server.get("/ajax-api/2.0/mlflow-artifacts/artifacts").await;
        assert_eq!(
            body_json(listing).await,
            json!({"files": [{"path": "a.txt", "is_dir": false, "file_size": 1}]})
        );
    }

    #[tokio::test]
    async fn listing_nothing_answers_an_empty_object() {
        let server = TestServer::new();
        for uri in [
            ARTIFACTS.to_owned(),
            format!("{ARTIFACTS}?path="),
            format!("{ARTIFACTS}?path=no/such/dir"),
        ] {
            let listing = server.get(&uri).await;
            assert_eq!(listing.status(), StatusCode::OK, "{uri}");
            assert_eq!(body_json(listing).await, json!({}), "{uri}");
        }
    }

    #[tokio::test]
    async fn listing_a_file_answers_an_empty_object() {
        let server = TestServer::new();
        server.put(&format!("{ARTIFACTS}/d/f.txt"), b"x").await;
        let listing = server.get(&format!("{ARTIFACTS}?path=d/f.txt")).await;
        assert_eq!(body_json(listing).await, json!({}));
    }

    #[tokio::test]
    async fn empty_file_keeps_its_zero_size() {
        let server = TestServer::new();
        assert_ok_empty_json(server.put(&format!("{ARTIFACTS}/empty.txt"), b"").await).await;
        let listing = server.get(ARTIFACTS).await;
        assert_eq!(
            body_json(listing).await,
            json!({"files": [{"path": "empty.txt", "is_dir": false, "file_size": 0}]})
        );
    }

    #[tokio::test]
    async fn download_is_an_attachment_with_a_guessed_type() {
        let server = TestServer::new();
        server
            .put(&format!("{ARTIFACTS}/m/MLmodel"), b"flavors: {}")
            .await;
        server
            .put(&format!("{ARTIFACTS}/m/weights.pkl"), b"\x80\x04")
            .await;
        server
            .put(&format!("{ARTIFACTS}/m/plot.png"), b"\x89PNG")
            .await;
        server
            .put(&format!("{ARTIFACTS}/m/my%20r%C3%A9sum%C3%A9.txt"), b"cv")
            .await;

        let cases = [
            ("m/MLmodel", "text/plain", "attachment; filename=MLmodel"),
            ("m/weights.pkl", "application/octet-stream", "attachment; filename=weights.pkl"),
            ("m/plot.png", "image/png", "attachment; filename=plot.png"),
            (
                "m/my%20r%C3%A9sum%C3%A9.txt",
                "text/plain",
                "attachment; filename=\"my_r_sum_.txt\"; filename*=UTF-8''my%20r%C3%A9sum%C3%A9.txt",
            ),
        ];
        for (path, content_type, disposition) in cases {
            let download = server.get(&format!("{ARTIFACTS}/{path}")).await;
            assert_eq!(download.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_str(&download, header::CONTENT_TYPE),
                content_type,
                "{path}"
            );
            assert_eq!(
                header_str(&download, header::CONTENT_DISPOSITION),
                disposition,
                "{path}"
            );
            assert_eq!(
                header_str(&download, header::X_CONTENT_TYPE_OPTIONS),
                "nosniff"
            );
        }
    }

    #[tokio::test]
    async fn downloading_a_directory_is_a_bad_parameter() {
        let server = TestServer::new();
        server.put(&format!("{ARTIFACTS}/dir/f.txt"), b"x").await;
        let response = server.get(&format!("{ARTIFACTS}/dir")).await;
        assert_error(response, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE").await;
    }

    #[tokio::test]
    async fn traversal_attempts_are_rejected_and_write_nothing_outside_the_root() {
        let server = TestServer::new();
        let attempts = [
            "../escape.txt",
            "a/../../escape.txt",
            "..%2Fescape.txt",
            "..%2fescape.txt",
            "%2e%2e/escape.txt",
            "%2E%2E%2Fescape.txt",
            "%252e%252e%252fescape.txt",
            "%25252e%25252e%25252fescape.txt",
            "..%5Cescape.txt",
            "..%255cescape.txt",
            "%2F%2Fescape.txt",
            "/escape.txt",
            "%2Ftmp%2Fescape.txt",
            "C:%2Fescape.txt",
            "file:%2F%2F%2Ftmp%2Fescape.txt",
            "escape.txt%00.png",
        ];
        for attempt in attempts {
            let uri = format!("{ARTIFACTS}/{attempt}");
            let message = assert_error(
                server.put(&uri, b"pwned").await,
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
            )
            .await;
            assert!(
                message.starts_with("invalid artifact path"),
                "{attempt}: {message}"
            );
            assert_error(
                server.get(&uri).await,
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
            )
            .await;
            assert_error(
                server.delete(&uri).await,
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
            )
            .await;
        }
        assert_eq!(server.entries_beside_root(), vec!["root".to_owned()]);
        let root_listing = server.get(ARTIFACTS).await;
        assert_eq!(
            body_json(root_listing).await,
            json!({}),
            "nothing written inside either"
        );
    }

    #[tokio::test]
    async fn traversal_in_the_list_query_is_rejected() {
        let server = TestServer::new();
        for query in ["..", "..%2F..", "%252e%252e", "%2Fetc", "a%5C..%5C.."] {
            let response = server.get(&format!("{ARTIFACTS}?path={query}")).await;
            assert_error(response, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE").await;
        }
    }

    #[tokio::test]
    async fn delete_with_a_trailing_slash_removes_the_directory() {
        // MLflow's client deletes a run's artifacts with `DELETE <root>/` (posixpath.join).
        let server = TestServer::new();
        server
            .put(&format!("{ARTIFACTS}/1/run/artifacts/a.txt"), b"a")
            .await;
        server
            .put(&format!("{ARTIFACTS}/1/run/artifacts/b/c.txt"), b"c")
            .await;
        assert_ok_empty_json(
            server
                .delete(&format!("{ARTIFACTS}/1/run/artifacts/"))
                .await,
        )
        .await;
        let listing = server.get(&format!("{ARTIFACTS}?path=1/run")).await;
        assert_eq!(body_json(listing).await, json!({}));
    }

    #[tokio::test]
    async fn deleting_something_missing_succeeds() {
        let server = TestServer::new();
        assert_ok_empty_json(server.delete(&format!("{ARTIFACTS}/no/such/file")).await).await;
    }

    #[tokio::test]
    async fn upload_is_not_capped_by_a_global_body_limit() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = LocalArtifactStore::new(dir.path()).expect("store opens");
        // What the server does for its JSON endpoints.
        let router = artifact_routes(Arc::new(store)).layer(DefaultBodyLimit::max(1024));
        let content = vec![7u8; 3 * 1024 * 1024];
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("{ARTIFACTS}/big.bin"))
            .body(Body::from(content.clone()))
            .expect("valid request");
        let response = router.oneshot(request).await.expect("router is infallible");
        assert_ok_empty_json(response).await;
        assert_eq!(
            std::fs::read(dir.path().join("big.bin")).expect("stored"),
            content
        );
    }

    #[tokio::test]
    async fn broken_upload_stores_nothing() {
        let server = TestServer::new();
        let chunks: Vec<Result<&'static [u8], io::Error>> = vec![
            Ok(b"partial"),
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        ];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let response = server
            .send(Method::PUT, &format!("{ARTIFACTS}/d/broken.bin"), body)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "BAD_REQUEST").await;
        let listing = server.get(ARTIFACTS).await;
        assert_eq!(body_json(listing).await, json!({}));
    }

    #[tokio::test]
    async fn multipart_upload_is_declined_the_way_the_client_expects() {
        let server = TestServer::new();
        for action in ["create", "complete", "abort"] {
            let response = server
                .send(
                    Method::POST,
                    &format!("/api/2.0/mlflow-artifacts/mpu/{action}/1/run/artifacts/big.bin"),
                    Body::from(r#"{"path": "big.bin", "num_parts": 3}"#),
                )
                .await;
            let message =
                assert_error(response, StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED").await;
            assert!(
                message.starts_with(MULTIPART_UPLOAD_UNSUPPORTED),
                "{message}"
            );
        }
        let response = server
            .get("/api/2.0/mlflow-artifacts/presigned/1/run/artifacts/big.bin")
            .await;
        assert_error(response, StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED").await;
    }
}
