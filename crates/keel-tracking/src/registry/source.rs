//! Where a model version's files may come from.
//!
//! A version's `source` is later handed to clients as a download location and
//! read by the server itself (`model-versions/get-artifact`), so a source that
//! names arbitrary files is a path to reading them (MLflow had advisories for
//! exactly this). Keel accepts only sources that resolve inside artifacts the
//! registry already knows about:
//!
//! - `models:/<logged model id>`: an existing logged model;
//! - `models:/<name>/<version|stage|latest>`, `models:/<name>@<alias>`: an
//!   existing registered version (its lineage is copied);
//! - `runs:/<run_id>/<path>`: the run named by the request's `run_id`;
//! - any other URI or path only if it lies inside the artifact root of the
//!   request's run or logged model (same scheme, same authority, a prefix of
//!   the path components), or, for the server's own `mlflow-artifacts:`
//!   scheme, inside the artifact location of their experiment.
//!
//! Before that, the text itself must be clean once every layer of
//! percent-encoding is peeled: no NUL or other control characters, no
//! backslashes, no `.`/`..` components, no query or fragment.

use keel_core::registry::ModelVersion;
use keel_core::tracking::{LoggedModel, Run};
use keel_core::{ErrorCode, KeelError, Result};
use percent_encoding::percent_decode_str;

use super::RegistryService;

/// How many layers of percent-encoding are peeled before giving up.
const MAX_DECODE_ROUNDS: usize = 10;

/// Sources that prompt versions use instead of a location (MLflow's placeholders).
pub const PROMPT_SOURCE_PLACEHOLDERS: &[&str] = &["dummy-source", "prompt-template"];

/// A source after validation: what the store records for the new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSource {
    pub source: String,
    pub storage_location: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
}

/// `Invalid model version source: '<source>'. <reason>`.
fn invalid_source(source: &str, reason: &str) -> KeelError {
    KeelError::invalid(format!(
        "Invalid model version source: '{source}'. {reason}"
    ))
}

fn not_contained(source: &str, id_name: &str) -> KeelError {
    invalid_source(
        source,
        &format!(
            "The {id_name} request parameter must identify the resource that contains the source."
        ),
    )
}

/// Peels percent-encoding until the text stops changing.
fn decode_fully(text: &str) -> std::result::Result<String, &'static str> {
    let mut current = text.to_string();
    for _ in 0..MAX_DECODE_ROUNDS {
        let decoded = percent_decode_str(&current)
            .decode_utf8()
            .map_err(|_| "it is not valid UTF-8 once percent-decoded")?
            .into_owned();
        if decoded == current {
            return Ok(current);
        }
        current = decoded;
    }
    Err("it has too many layers of percent-encoding")
}

/// The checks on the text alone; returns the fully decoded source.
pub fn check_source_text(source: &str) -> Result<String> {
    if source.trim().is_empty() {
        return Err(KeelError::invalid(
            "Missing value for required parameter 'source'. See the API docs for more information about request parameters.",
        ));
    }
    let decoded = decode_fully(source).map_err(|reason| invalid_source(source, reason))?;
    for text in [source, decoded.as_str()] {
        if text.chars().any(char::is_control) {
            return Err(invalid_source(
                source,
                "Sources must not contain control characters.",
            ));
        }
        if text.contains('\\') {
            return Err(invalid_source(
                source,
                "Sources must use '/' as the path separator.",
            ));
        }
    }
    if decoded.contains('?') || decoded.contains('#') {
        return Err(invalid_source(
            source,
            "Sources must not carry a query or a fragment.",
        ));
    }
    if decoded.split('/').any(|part| part == ".." || part == ".") {
        return Err(invalid_source(
            source,
            "An absolute path must be provided without relative path references present.",
        ));
    }
    Ok(decoded)
}

/// A source or artifact root split as `_normalized_uri_parts` in MLflow:
/// lowercase scheme and authority, decoded non-empty path components. A plain
/// path is a `file` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriParts {
    pub scheme: String,
    pub authority: String,
    pub components: Vec<String>,
}

fn uri_scheme(uri: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    // `C:/x` is a Windows drive, not a scheme.
    (valid && scheme.len() > 1).then_some((scheme, rest))
}

/// Splits an already decoded URI.
pub fn uri_parts(decoded: &str) -> UriParts {
    let (scheme, rest) = match uri_scheme(decoded) {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("file".to_string(), decoded),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.split_once('/') {
            Some((authority, path)) => (authority.to_ascii_lowercase(), path),
            None => (after.to_ascii_lowercase(), ""),
        },
        None => (String::new(), rest),
    };
    let components = path
        .split('/')
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect();
    UriParts {
        scheme,
        authority,
        components,
    }
}

/// Whether `source` lies inside `root`: same scheme and authority, and the
/// root's (non-empty) components are a prefix of the source's.
pub fn is_within_root(source: &UriParts, root: &str) -> bool {
    let Ok(root) = decode_fully(root) else {
        return false;
    };
    let root = uri_parts(&root);
    source.scheme == root.scheme
        && source.authority == root.authority
        && !root.components.is_empty()
        && source.components.starts_with(&root.components)
}

/// A `models:/` URI, as MLflow's `_parse_model_uri` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUri {
    LoggedModel(String),
    Version { name: String, version: i64 },
    Stage { name: String, stage: String },
    Latest { name: String },
    Alias { name: String, alias: String },
}

/// Parses `models:/...`; `None` when the URI is not of that form.
pub fn parse_model_uri(uri: &str) -> Option<ModelUri> {
    let rest = uri.strip_prefix("models:")?;
    let path = rest.strip_prefix('/')?;
    if path.starts_with('/') || path.is_empty() {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [name, suffix] => {
            if name.trim().is_empty() || suffix.trim().is_empty() {
                return None;
            }
            let name = name.to_string();
            if suffix.chars().all(|c| c.is_ascii_digit()) {
                return suffix
                    .parse()
                    .ok()
                    .map(|version| ModelUri::Version { name, version });
            }
            if suffix.eq_ignore_ascii_case("latest") {
                return Some(ModelUri::Latest { name });
            }
            Some(ModelUri::Stage {
                name,
                stage: suffix.to_string(),
            })
        }
        [single] if single.contains('@') => {
            let (name, alias) = single.rsplit_once('@')?;
            if name.trim().is_empty() || alias.trim().is_empty() {
                return None;
            }
            Some(ModelUri::Alias {
                name: name.to_string(),
                alias: alias.to_string(),
            })
        }
        [single] if !single.trim().is_empty() => Some(ModelUri::LoggedModel(single.to_string())),
        _ => None,
    }
}

/// `runs:/<run_id>/<path>` split into the run id and the (possibly empty) path.
pub fn parse_runs_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("runs:/")?;
    if rest.starts_with('/') {
        return None;
    }
    let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
    if run_id.is_empty() {
        return None;
    }
    Some((run_id.to_string(), path.trim_matches('/').to_string()))
}

fn join_location(root: &str, path: &str) -> String {
    if path.is_empty() {
        return root.to_string();
    }
    format!("{}/{}", root.trim_end_matches('/'), path)
}

/// The request's lineage fields, as given.
pub struct SourceRequest<'a> {
    pub source: &'a str,
    pub run_id: Option<&'a str>,
    pub model_id: Option<&'a str>,
}

impl RegistryService {
    /// Validates a new version's source against the run, logged model or
    /// registered version it claims to come from; see the module docs.
    pub async fn resolve_source(&self, request: &SourceRequest<'_>) -> Result<ResolvedSource> {
        let source = request.source;
        let decoded = check_source_text(source)?;
        let parts = uri_parts(&decoded);
        if parts.scheme == "models" {
            if !parts.authority.is_empty() {
                return Err(invalid_source(
                    source,
                    "Registered model sources must use the active model registry.",
                ));
            }
            let model_uri =
                parse_model_uri(source).ok_or_else(|| not_contained(source, "model_id"))?;
            return match model_uri {
                ModelUri::LoggedModel(model_id) => {
                    self.logged_model_source(request, &model_id).await
                }
                registered => self.registered_version_source(request, registered).await,
            };
        }
        if parts.scheme == "runs" {
            if !parts.authority.is_empty() || request.model_id.is_some() {
                return Err(not_contained(source, "run_id"));
            }
            let (source_run_id, path) =
                parse_runs_uri(source).ok_or_else(|| not_contained(source, "run_id"))?;
            if request.run_id != Some(source_run_id.as_str()) {
                return Err(not_contained(source, "run_id"));
            }
            let run = self.source_run(&source_run_id, source).await?;
            // MLflow 3 logs models outside the run's artifacts: `runs:/<id>/<name>`
            // then means the logged model of that name the run produced.
            if let Some(model) = self.run_logged_model(&run, &path).await? {
                return Ok(ResolvedSource {
                    source: source.to_string(),
                    storage_location: model.artifact_location.clone(),
                    run_id: Some(source_run_id),
                    model_id: Some(model.model_id),
                });
            }
            return Ok(ResolvedSource {
                source: source.to_string(),
                storage_location: join_location(&run.info.artifact_uri, &path),
                run_id: Some(source_run_id),
                model_id: None,
            });
        }
        self.location_source(request, &parts).await
    }

    /// `models:/<model_id>`: an existing logged model, which must be the request's if it names one.
    async fn logged_model_source(
        &self,
        request: &SourceRequest<'_>,
        model_id: &str,
    ) -> Result<ResolvedSource> {
        if request.model_id.is_some_and(|given| given != model_id) {
            return Err(not_contained(request.source, "model_id"));
        }
        let model = self.source_model(model_id, request.source).await?;
        Ok(ResolvedSource {
            source: request.source.to_string(),
            storage_location: model.artifact_location.clone(),
            run_id: request
                .run_id
                .map(str::to_string)
                .or(model.source_run_id.clone()),
            model_id: Some(model.model_id),
        })
    }

    /// `models:/<name>/...`: copies an existing version's location and lineage.
    async fn registered_version_source(
        &self,
        request: &SourceRequest<'_>,
        model_uri: ModelUri,
    ) -> Result<ResolvedSource> {
        let version: ModelVersion = match model_uri {
            ModelUri::Version { name, version } => {
                self.registry.get_model_version(&name, version).await?
            }
            ModelUri::Alias { name, alias } => {
                self.get_model_version_by_alias(&name, &alias).await?
            }
            ModelUri::Latest { name } => self.latest_version(&name, &[]).await?,
            ModelUri::Stage { name, stage } => {
                let stage = stage.parse()?;
                self.latest_version(&name, &[stage]).await?
            }
            ModelUri::LoggedModel(_) => return Err(not_contained(request.source, "model_id")),
        };
        let run_mismatch = request
            .run_id
            .is_some_and(|given| Some(given) != version.run_id.as_deref());
        let model_mismatch = request
            .model_id
            .is_some_and(|given| Some(given) != version.model_id.as_deref());
        if run_mismatch || model_mismatch {
            return Err(invalid_source(
                request.source,
                "The run_id and model_id request parameters must match the referenced model version.",
            ));
        }
        Ok(ResolvedSource {
            source: format!("models:/{}/{}", version.name, version.version),
            storage_location: version.storage_location,
            run_id: version.run_id,
            model_id: version.model_id,
        })
    }

    /// Any other URI or path: inside the request's run or logged model artifacts.
    async fn location_source(
        &self,
        request: &SourceRequest<'_>,
        parts: &UriParts,
    ) -> Result<ResolvedSource> {
        let source = request.source;
        if request.run_id.is_none() && request.model_id.is_none() {
            return Err(invalid_source(
                source,
                "To register a source that is not a models:/ or runs:/ URI, give the run_id or \
                 model_id whose artifacts contain it.",
            ));
        }
        let mut roots: Vec<String> = Vec::new();
        let mut experiment_ids: Vec<String> = Vec::new();
        if let Some(run_id) = request.run_id {
            let run = self.source_run(run_id, source).await?;
            roots.push(run.info.artifact_uri.clone());
            experiment_ids.push(run.info.experiment_id.clone());
        }
        if let Some(model_id) = request.model_id {
            let model = self.source_model(model_id, source).await?;
            roots.push(model.artifact_location.clone());
            experiment_ids.push(model.experiment_id.clone());
        }
        let mut contained = roots.iter().any(|root| is_within_root(parts, root));
        if !contained && parts.scheme == "mlflow-artifacts" {
            // The proxy's own scheme: anywhere under the same experiment's location.
            for experiment_id in &experiment_ids {
                let experiment = self.tracking.get_experiment(experiment_id).await?;
                if is_within_root(parts, &experiment.artifact_location) {
                    contained = true;
                    break;
                }
            }
        }
        if !contained {
            let id_name = if request.model_id.is_some() {
                "model_id"
            } else {
                "run_id"
            };
            return Err(not_contained(source, id_name));
        }
        Ok(ResolvedSource {
            source: source.to_string(),
            storage_location: source.to_string(),
            run_id: request.run_id.map(str::to_string),
            model_id: request.model_id.map(str::to_string),
        })
    }

    async fn source_run(&self, run_id: &str, source: &str) -> Result<Run> {
        match self.tracking.get_run(run_id).await {
            Err(err) if err.code == ErrorCode::ResourceDoesNotExist => {
                Err(not_contained(source, "run_id"))
            }
            other => other,
        }
    }

    async fn source_model(&self, model_id: &str, source: &str) -> Result<LoggedModel> {
        match self.tracking.get_logged_model(model_id).await {
            Err(err) if err.code == ErrorCode::ResourceDoesNotExist => {
                Err(not_contained(source, "model_id"))
            }
            other => other,
        }
    }

    /// The logged model named `name` that `run` output (the latest step wins), if any.
    async fn run_logged_model(&self, run: &Run, name: &str) -> Result<Option<LoggedModel>> {
        if name.is_empty() {
            return Ok(None);
        }
        let mut outputs = run.outputs.model_outputs.clone();
        outputs.sort_by_key(|output| std::cmp::Reverse(output.step));
        for output in outputs {
            match self.tracking.get_logged_model(&output.model_id).await {
                Ok(model) if model.name == name => return Ok(Some(model)),
                Ok(_) => {}
                Err(err) if err.code == ErrorCode::ResourceDoesNotExist => {}
                Err(err) => return Err(err),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_texts_are_refused() {
        let hostile = [
            "",
            "mlflow-artifacts:/1/run/artifacts/../../../etc",
            "mlflow-artifacts:/1/run/artifacts/%2e%2e/%2e%2e/etc",
            "mlflow-artifacts:/1/run/artifacts/%252e%252e/%252e%252e/etc",
            "mlflow-artifacts:/1/run/artifacts/..%2f..%2fetc",
            "mlflow-artifacts:/1/run/artifacts\\..\\..\\etc",
            "mlflow-artifacts:/1/run/artifacts/%5c..%5cetc",
            "mlflow-artifacts:/1/run/artifacts/model\u{0}",
            "mlflow-artifacts:/1/run/artifacts/model%00",
            "mlflow-artifacts:/1/run/artifacts/./model",
            "mlflow-artifacts:/1/run/artifacts/model?x=../../etc",
            "mlflow-artifacts:/1/run/artifacts/model#frag",
            "file:///tmp/../etc/passwd",
        ];
        for source in hostile {
            let err = check_source_text(source).expect_err(source);
            assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{source}");
        }
        assert!(check_source_text("mlflow-artifacts:/1/run/artifacts/model").is_ok());
        assert!(check_source_text("models:/m-0123").is_ok());
    }

    #[test]
    fn uri_parts_lowercase_scheme_and_authority_and_decode_nothing_more() {
        assert_eq!(
            uri_parts("S3://Bucket/a//b/"),
            UriParts {
                scheme: "s3".into(),
                authority: "bucket".into(),
                components: vec!["a".into(), "b".into()],
            }
        );
        assert_eq!(uri_parts("/etc/passwd").scheme, "file");
        assert_eq!(
            uri_parts("file:///etc/passwd").components,
            vec!["etc", "passwd"]
        );
        assert_eq!(uri_parts("mlflow-artifacts:/1/x").authority, "");
        assert_eq!(
            uri_parts("mlflow-artifacts://evil:5000/1/x").authority,
            "evil:5000"
        );
    }

    #[test]
    fn within_root_compares_components() {
        let root = "mlflow-artifacts:/1/abc/artifacts";
        let inside = uri_parts("mlflow-artifacts:/1/abc/artifacts/model");
        assert!(is_within_root(&inside, root));
        assert!(is_within_root(&uri_parts(root), root));
        for outside in [
            "mlflow-artifacts:/1/abcd/artifacts/model",
            "mlflow-artifacts:/2/abc/artifacts/model",
            "mlflow-artifacts://host/1/abc/artifacts/model",
            "s3://bucket/1/abc/artifacts/model",
            "/1/abc/artifacts/model",
        ] {
            assert!(!is_within_root(&uri_parts(outside), root), "{outside}");
        }
        assert!(
            !is_within_root(&inside, "mlflow-artifacts:/"),
            "an empty root contains nothing"
        );
    }

    #[test]
    fn model_uris() {
        assert_eq!(
            parse_model_uri("models:/m-abc"),
            Some(ModelUri::LoggedModel("m-abc".into()))
        );
        assert_eq!(
            parse_model_uri("models:/clf/3"),
            Some(ModelUri::Version {
                name: "clf".into(),
                version: 3
            })
        );
        assert_eq!(
            parse_model_uri("models:/clf/Latest"),
            Some(ModelUri::Latest { name: "clf".into() })
        );
        assert_eq!(
            parse_model_uri("models:/clf/production"),
            Some(ModelUri::Stage {
                name: "clf".into(),
                stage: "production".into()
            })
        );
        assert_eq!(
            parse_model_uri("models:/clf@champion"),
            Some(ModelUri::Alias {
                name: "clf".into(),
                alias: "champion".into()
            })
        );
        for bad in [
            "models:/",
            "models://x/clf/1",
            "models:/a/b/c",
            "models:/clf@",
            "runs:/x",
        ] {
            assert_eq!(parse_model_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn runs_uris() {
        assert_eq!(
            parse_runs_uri("runs:/abc/model"),
            Some(("abc".into(), "model".into()))
        );
        assert_eq!(
            parse_runs_uri("runs:/abc"),
            Some(("abc".into(), String::new()))
        );
        assert_eq!(parse_runs_uri("runs://abc/model"), None);
        assert_eq!(parse_runs_uri("runs:/"), None);
    }
}
