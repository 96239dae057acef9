//! `Client`: one blocking `ureq` agent and a base URI; one method per endpoint.

use std::io::{Read, Write};
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::types::{
    DownloadUriResponse, ErrorBody, FileInfo, ListArtifactsResponse, ModelVersion,
    ModelVersionLineage, ModelVersionResponse, RegisteredModel, RegisteredModelResponse,
    SearchModelVersionsResponse, SearchRegisteredModelsResponse,
};
use crate::{ClientError, ModelRef, Result};

const REGISTRY_API: &str = "/api/2.0/mlflow";
const ARTIFACTS_API: &str = "/api/2.0/mlflow-artifacts/artifacts";
const LINEAGE_API: &str = "/api/keel/v1/lineage/model-versions";

/// Everything but RFC 3986's unreserved characters is escaped in a path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Error bodies that are not MLflow's JSON are cut to this many characters.
const MAX_ERROR_BODY_CHARS: usize = 300;

/// A page size the server accepts for registered-model searches.
const REGISTERED_MODELS_PAGE: &str = "1000";

fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// `a/b c/d` → `a/b%20c/d`: every segment escaped, the slashes kept.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// A filter string literal for MLflow's search grammar.
fn quote_literal(value: &str) -> String {
    if value.contains('\'') {
        format!("\"{value}\"")
    } else {
        format!("'{value}'")
    }
}

/// A dataset to log as a run input: MLflow's `Dataset` fields, and the
/// role it plays in the run (`training`, `validation`, ...), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInput {
    pub dataset: serde_json::Value,
    pub context: Option<String>,
}

/// A blocking client of one tracking server.
#[derive(Debug, Clone)]
pub struct Client {
    base_uri: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the server at `tracking_uri` (`http://` or `https://`).
    pub fn new(tracking_uri: &str) -> Result<Self> {
        let base_uri = tracking_uri.trim().trim_end_matches('/').to_string();
        let scheme_ok = base_uri.starts_with("http://") || base_uri.starts_with("https://");
        if !scheme_ok || base_uri.split("://").nth(1).is_none_or(str::is_empty) {
            return Err(ClientError::Invalid(format!(
                "invalid tracking URI '{tracking_uri}': expected http://HOST[:PORT] or https://HOST[:PORT]"
            )));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(300))
            .build();
        Ok(Client { base_uri, agent })
    }

    pub fn base_uri(&self) -> &str {
        &self.base_uri
    }

    // ------------------------------------------------------------ plumbing

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_uri)
    }

    /// Sends a request and turns every failure into a `ClientError`.
    fn send(
        &self,
        request: ureq::Request,
        body: Option<serde_json::Value>,
    ) -> Result<ureq::Response> {
        let url = request.url().to_string();
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match result {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(status, response)) => Err(error_from(status, &url, response)),
            Err(ureq::Error::Transport(transport)) => {
                let mut detail = transport.kind().to_string();
                if let Some(message) = transport.message() {
                    detail = format!("{detail}: {message}");
                }
                // The OS's reason ("Connection refused") is the part a person can act on.
                if let Some(cause) = std::error::Error::source(&transport) {
                    detail = format!("{detail}: {cause}");
                }
                Err(ClientError::Connect {
                    base_uri: self.base_uri.clone(),
                    detail,
                })
            }
        }
    }

    fn json<T: DeserializeOwned>(
        &self,
        request: ureq::Request,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let url = request.url().to_string();
        let response = self.send(request, body)?;
        response
            .into_json::<T>()
            .map_err(|err| ClientError::Decode {
                url,
                detail: err.to_string(),
            })
    }

    fn get(&self, path: &str) -> ureq::Request {
        self.agent.get(&self.url(path))
    }

    // ------------------------------------------------------------ registered models

    /// Every registered model matching `filter` (MLflow's search grammar), across pages.
    pub fn search_registered_models(&self, filter: Option<&str>) -> Result<Vec<RegisteredModel>> {
        let mut models = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut request = self
                .get(&format!("{REGISTRY_API}/registered-models/search"))
                .query("max_results", REGISTERED_MODELS_PAGE);
            if let Some(filter) = filter.filter(|text| !text.is_empty()) {
                request = request.query("filter", filter);
            }
            if let Some(token) = &page_token {
                request = request.query("page_token", token);
            }
            let page: SearchRegisteredModelsResponse = self.json(request, None)?;
            models.extend(page.registered_models);
            match page.next_page_token.filter(|token| !token.is_empty()) {
                Some(token) => page_token = Some(token),
                None => return Ok(models),
            }
        }
    }

    pub fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let request = self
            .get(&format!("{REGISTRY_API}/registered-models/get"))
            .query("name", name);
        Ok(self
            .json::<RegisteredModelResponse>(request, None)?
            .registered_model)
    }

    // ------------------------------------------------------------ model versions

    /// Every version of `name`, newest first. Fails with `RESOURCE_DOES_NOT_EXIST`
    /// when the model does not exist (a search alone would answer an empty list).
    pub fn list_model_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        self.get_registered_model(name)?;
        let filter = format!("name = {}", quote_literal(name));
        let mut versions = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut request = self
                .get(&format!("{REGISTRY_API}/model-versions/search"))
                .query("filter", &filter)
                .query("order_by", "version_number DESC");
            if let Some(token) = &page_token {
                request = request.query("page_token", token);
            }
            let page: SearchModelVersionsResponse = self.json(request, None)?;
            versions.extend(page.model_versions);
            match page.next_page_token.filter(|token| !token.is_empty()) {
                Some(token) => page_token = Some(token),
                None => return Ok(versions),
            }
        }
    }

    pub fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        let request = self
            .get(&format!("{REGISTRY_API}/model-versions/get"))
            .query("name", name)
            .query("version", &version.to_string());
        Ok(self
            .json::<ModelVersionResponse>(request, None)?
            .model_version)
    }

    pub fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let request = self
            .get(&format!("{REGISTRY_API}/registered-models/alias"))
            .query("name", name)
            .query("alias", alias);
        Ok(self
            .json::<ModelVersionResponse>(request, None)?
            .model_version)
    }

    /// The version a reference names.
    pub fn resolve(&self, model: &ModelRef) -> Result<ModelVersion> {
        match model {
            ModelRef::Version { name, version } => self.get_model_version(name, *version),
            ModelRef::Alias { name, alias } => self.get_model_version_by_alias(name, alias),
        }
    }

    /// Where the version's files are (`mlflow-artifacts:/...` on a proxying server).
    pub fn get_download_uri(&self, name: &str, version: &str) -> Result<String> {
        let request = self
            .get(&format!("{REGISTRY_API}/model-versions/get-download-uri"))
            .query("name", name)
            .query("version", version);
        Ok(self
            .json::<DownloadUriResponse>(request, None)?
            .artifact_uri)
    }

    // ------------------------------------------------------------ aliases

    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        let request = self
            .agent
            .post(&self.url(&format!("{REGISTRY_API}/registered-models/alias")));
        let body = json!({"name": name, "alias": alias, "version": version});
        self.json::<serde_json::Value>(request, Some(body))?;
        Ok(())
    }

    pub fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let request = self
            .agent
            .delete(&self.url(&format!("{REGISTRY_API}/registered-models/alias")));
        let body = json!({"name": name, "alias": alias});
        self.json::<serde_json::Value>(request, Some(body))?;
        Ok(())
    }

    // ------------------------------------------------------------ runs

    /// Logs a dataset (MLflow's `Dataset` fields: name, digest, source_type,
    /// source, schema, profile) as a training input of a run.
    pub fn log_dataset_input(&self, run_id: &str, dataset: serde_json::Value) -> Result<()> {
        self.log_dataset_inputs(
            run_id,
            &[DatasetInput {
                dataset,
                context: Some("training".to_owned()),
            }],
        )
    }

    /// Logs datasets as inputs of a run in one `runs/log-inputs` request,
    /// each tagged `mlflow.data.context` when it has a context.
    pub fn log_dataset_inputs(&self, run_id: &str, inputs: &[DatasetInput]) -> Result<()> {
        let datasets: Vec<serde_json::Value> = inputs
            .iter()
            .map(|input| {
                let tags: Vec<serde_json::Value> = input
                    .context
                    .iter()
                    .map(|context| json!({"key": "mlflow.data.context", "value": context}))
                    .collect();
                json!({"tags": tags, "dataset": input.dataset})
            })
            .collect();
        let request = self
            .agent
            .post(&self.url("/api/2.0/mlflow/runs/log-inputs"));
        let body = json!({"run_id": run_id, "datasets": datasets});
        self.json::<serde_json::Value>(request, Some(body))?;
        Ok(())
    }

    /// Logs metrics (at step 0, now) and tags on a run (`runs/log-batch`).
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[(&str, f64)],
        tags: &[(&str, String)],
    ) -> Result<()> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let metrics: Vec<serde_json::Value> = metrics
            .iter()
            .map(|(key, value)| json!({"key": key, "value": value, "timestamp": timestamp, "step": 0}))
            .collect();
        let tags: Vec<serde_json::Value> = tags
            .iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        let request = self.agent.post(&self.url("/api/2.0/mlflow/runs/log-batch"));
        let body = json!({"run_id": run_id, "metrics": metrics, "tags": tags});
        self.json::<serde_json::Value>(request, Some(body))?;
        Ok(())
    }

    // ------------------------------------------------------------ lineage

    /// Keel's lineage document of one version (not available on MLflow's own server).
    pub fn lineage(&self, model: &ModelRef) -> Result<ModelVersionLineage> {
        let path = format!(
            "{LINEAGE_API}/{}/{}",
            encode_segment(model.name()),
            encode_segment(&model.selector())
        );
        self.json(self.get(&path), None)
    }

    // ------------------------------------------------------------ artifact proxy

    /// The entries directly under `path` (relative to the artifact root).
    pub fn list_artifacts(&self, path: &str) -> Result<Vec<FileInfo>> {
        let request = self.get(ARTIFACTS_API).query("path", path);
        Ok(self.json::<ListArtifactsResponse>(request, None)?.files)
    }

    /// Streams the file at `path` into `out`; answers the number of bytes written.
    pub fn download_artifact(&self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let url_path = format!("{ARTIFACTS_API}/{}", encode_path(path));
        let response = self.send(self.get(&url_path), None)?;
        let mut reader = response.into_reader();
        std::io::copy(&mut reader, out).map_err(|err| ClientError::Decode {
            url: self.url(&url_path),
            detail: format!("download interrupted: {err}"),
        })
    }
}

/// An error status: MLflow's error JSON when the body is one, else the start of the body.
fn error_from(status: u16, url: &str, response: ureq::Response) -> ClientError {
    let mut text = String::new();
    // The body of an error is small; cap it anyway so a hostile server cannot make us buffer much.
    let _ = response
        .into_reader()
        .take(64 * 1024)
        .read_to_string(&mut text);
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ClientError::Api {
            status,
            error_code: body.error_code,
            message: body.message,
        },
        Err(_) => ClientError::Http {
            status,
            url: url.to_string(),
            body: text.trim().chars().take(MAX_ERROR_BODY_CHARS).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_uris_must_be_http() {
        assert_eq!(
            Client::new("http://127.0.0.1:5000/").unwrap().base_uri(),
            "http://127.0.0.1:5000"
        );
        assert!(Client::new("https://keel.example.com").is_ok());
        for bad in [
            "127.0.0.1:5000",
            "file:///tmp/mlruns",
            "http://",
            "databricks",
        ] {
            let err = Client::new(bad).unwrap_err();
            assert!(
                err.to_string().contains("--tracking-uri")
                    || err.to_string().contains("http://HOST"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn paths_and_literals_are_escaped() {
        assert_eq!(encode_path("a b/c%d/MLmodel"), "a%20b/c%25d/MLmodel");
        assert_eq!(encode_segment("my model"), "my%20model");
        assert_eq!(encode_segment("@champion"), "%40champion");
        assert_eq!(quote_literal("clf"), "'clf'");
        assert_eq!(quote_literal("it's"), "\"it's\"");
    }

    #[test]
    fn an_unreachable_server_names_the_uri_and_the_flag() {
        // Port 9 (discard) on loopback is closed on any test machine worth the name.
        let client = Client::new("http://127.0.0.1:9").unwrap();
        let err = client.get_registered_model("m").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ClientError::Connect { .. }), "{text}");
        assert!(text.contains("http://127.0.0.1:9"), "{text}");
        assert!(text.contains("--tracking-uri"), "{text}");
    }
}
