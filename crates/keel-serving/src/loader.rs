//! From a model URI to a served model: `models:/NAME@ALIAS` and
//! `models:/NAME/VERSION` are resolved against a Keel (or MLflow) tracking
//! server and downloaded into a local cache; a local `.onnx` file or model
//! directory is used in place. The format decides the runtime: an `onnx`
//! flavor or a bare `.onnx` file runs natively, any other MLflow model
//! through Python workers. Aliases are followed: a poller notices when an
//! alias moves, loads and warms up the new version, then swaps it in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use keel_client::{Client, ModelRef};
use keel_core::tensor::{DataType, Tensor, TensorData};

use crate::batching::BatchSettings;
use crate::onnx_runtime::OnnxRuntime;
use crate::python::{PythonOptions, PythonRuntime};
use crate::repository::ModelRepository;
use crate::runtime::Runtime;
use crate::{
    LoadedVersion, ModelManager, NamedTensor, Parameters, RepositoryEntry, Routing, ServingError,
};

/// Where a served model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Registry(ModelRef),
    Local(PathBuf),
}

/// A model the server should serve, under `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub name: String,
    pub source: ModelSource,
}

impl FromStr for ModelSpec {
    type Err = ServingError;

    /// `[SERVED_NAME=]URI` where URI is `models:/NAME@ALIAS`,
    /// `models:/NAME/VERSION` or a local path.
    fn from_str(text: &str) -> Result<ModelSpec, ServingError> {
        let (explicit_name, uri) = match text.split_once('=') {
            Some((name, uri)) if !name.is_empty() && !name.contains('/') && !name.contains(':') => {
                (Some(name.to_string()), uri)
            }
            _ => (None, text),
        };
        let source = match uri.strip_prefix("models:/") {
            Some(reference) => ModelSource::Registry(
                reference
                    .parse::<ModelRef>()
                    .map_err(|err| ServingError::invalid(format!("invalid model URI '{uri}': {err}")))?,
            ),
            None if uri.contains("://") || uri.starts_with("runs:/") => {
                return Err(ServingError::invalid(format!(
                    "cannot serve '{uri}': give models:/NAME@ALIAS, models:/NAME/VERSION or a local path"
                )))
            }
            None => ModelSource::Local(PathBuf::from(uri)),
        };
        let name = match (explicit_name, &source) {
            (Some(name), _) => name,
            (None, ModelSource::Registry(reference)) => reference.name().to_string(),
            (None, ModelSource::Local(path)) => path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .filter(|stem| !stem.is_empty())
                .ok_or_else(|| {
                    ServingError::invalid(format!(
                        "cannot name a model after the path '{uri}'; use NAME={uri}"
                    ))
                })?
                .to_string(),
        };
        Ok(ModelSpec { name, source })
    }
}

/// How models are loaded and served.
#[derive(Debug, Clone)]
pub struct LoaderOptions {
    /// Tracking server for `models:/` URIs.
    pub tracking_uri: String,
    /// Where downloaded model versions are kept.
    pub cache_dir: PathBuf,
    pub python: PythonOptions,
    pub batching: Option<BatchSettings>,
    /// How often aliases are checked for a new version.
    pub alias_poll_interval: Duration,
}

/// A model version on local disk, ready to load.
struct Fetched {
    version: String,
    path: PathBuf,
}

/// Loads model specs into a manager and follows their aliases.
pub struct Loader {
    manager: ModelManager,
    options: LoaderOptions,
    specs: Mutex<BTreeMap<String, ModelSpec>>,
    /// Canary and shadow versions per served name, kept across alias swaps.
    splits: Mutex<BTreeMap<String, LoadedSplit>>,
}

/// Extra versions that share a model's traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficSplit {
    /// A version that answers `percent` % of the requests that name no version.
    pub canary: Option<(ModelSource, u32)>,
    /// A version that receives a copy of every such request; its answers are discarded.
    pub shadow: Option<ModelSource>,
}

#[derive(Debug, Clone, Default)]
struct LoadedSplit {
    canary: Option<(String, u32)>,
    shadow: Option<String>,
}

impl Loader {
    pub fn new(manager: ModelManager, options: LoaderOptions) -> Arc<Loader> {
        Arc::new(Loader {
            manager,
            options,
            specs: Mutex::new(BTreeMap::new()),
            splits: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn manager(&self) -> &ModelManager {
        &self.manager
    }

    /// Loads, warms up and installs `spec`; answers the version now served.
    /// The previous version keeps answering until the new one is ready.
    pub async fn load(&self, spec: ModelSpec) -> Result<String, ServingError> {
        let fetched = self.fetch(&spec.source).await?;
        let runtime = load_runtime(&fetched.path, &self.options.python).await?;
        warm_up(runtime.as_ref()).await?;
        let version = fetched.version.clone();
        self.manager.install_with(
            &spec.name,
            LoadedVersion {
                version: version.clone(),
                runtime,
            },
            self.options.batching,
            Some(self.routing_for(&spec.name, &version)),
        );
        self.retire(&spec.name);
        tracing::info!(model = %spec.name, version = %version, "model loaded");
        lock(&self.specs).insert(spec.name.clone(), spec);
        Ok(version)
    }

    /// The routing of `name` with `primary` as its primary version and the
    /// canary and shadow versions loaded for it, if any.
    fn routing_for(&self, name: &str, primary: &str) -> Routing {
        let mut routing = Routing::single(primary);
        if let Some(split) = lock(&self.splits).get(name) {
            if let Some((version, percent)) = &split.canary {
                if version != primary {
                    routing.canaries = vec![(version.clone(), *percent)];
                    routing.primary_weight = 100u32.saturating_sub(*percent);
                }
            }
            routing.shadow = split.shadow.clone().filter(|shadow| shadow != primary);
        }
        routing
    }

    /// Loads the canary and shadow versions of an already loaded model and
    /// splits its traffic: `percent` % to the canary, a copy to the shadow.
    pub async fn load_split(&self, name: &str, split: TrafficSplit) -> Result<(), ServingError> {
        let primary = self
            .manager
            .primary_version(name)
            .ok_or_else(|| ServingError::not_found(format!("model '{name}' is not loaded")))?;
        let mut loaded = LoadedSplit::default();
        let extras = split
            .canary
            .iter()
            .map(|(source, percent)| (source, Some(*percent)))
            .chain(split.shadow.iter().map(|source| (source, None)));
        for (source, percent) in extras {
            if let Some(percent) = percent {
                if percent > 100 {
                    return Err(ServingError::invalid(format!(
                        "a canary share of {percent} % is above 100 %"
                    )));
                }
            }
            let fetched = self.fetch(source).await?;
            let version = match source {
                ModelSource::Local(path) => path
                    .file_stem()
                    .and_then(|stem| stem.to_str())
                    .unwrap_or("local")
                    .to_string(),
                ModelSource::Registry(_) => fetched.version.clone(),
            };
            if version == primary {
                return Err(ServingError::invalid(format!(
                    "the canary or shadow of '{name}' is version {version}, which is already its primary version"
                )));
            }
            let runtime = load_runtime(&fetched.path, &self.options.python).await?;
            warm_up(runtime.as_ref()).await?;
            self.manager.install_with(
                name,
                LoadedVersion {
                    version: version.clone(),
                    runtime,
                },
                self.options.batching,
                None,
            );
            match percent {
                Some(percent) => loaded.canary = Some((version, percent)),
                None => loaded.shadow = Some(version),
            }
        }
        lock(&self.splits).insert(name.to_string(), loaded);
        self.manager
            .set_routing(name, self.routing_for(name, &primary))?;
        self.retire(name);
        Ok(())
    }

    /// Retires versions the routing no longer names, shutting each down
    /// once its in-flight requests have finished.
    fn retire(&self, name: &str) {
        for runtime in self.manager.retire_unrouted(name) {
            tokio::spawn(shutdown_when_idle(runtime));
        }
    }

    async fn fetch(&self, source: &ModelSource) -> Result<Fetched, ServingError> {
        match source {
            ModelSource::Local(path) => {
                if !path.exists() {
                    return Err(ServingError::not_found(format!(
                        "no model at {}",
                        path.display()
                    )));
                }
                Ok(Fetched {
                    version: "1".to_string(),
                    path: path.clone(),
                })
            }
            ModelSource::Registry(reference) => {
                let tracking_uri = self.options.tracking_uri.clone();
                let cache_dir = self.options.cache_dir.clone();
                let reference = reference.clone();
                tokio::task::spawn_blocking(move || download(&tracking_uri, &cache_dir, &reference))
                    .await
                    .map_err(|err| ServingError::internal(format!("download task failed: {err}")))?
            }
        }
    }

    /// Polls every alias-following model and swaps in the version its alias
    /// now names. Runs until the task is dropped.
    pub async fn follow_aliases(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.options.alias_poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let followed: Vec<ModelSpec> = lock(&self.specs)
                .values()
                .filter(|spec| matches!(spec.source, ModelSource::Registry(ModelRef::Alias { .. })))
                .cloned()
                .collect();
            for spec in followed {
                if let Err(err) = self.refresh(&spec).await {
                    tracing::warn!(model = %spec.name, error = %err, "cannot follow the model's alias");
                }
            }
        }
    }

    async fn refresh(&self, spec: &ModelSpec) -> Result<(), ServingError> {
        let ModelSource::Registry(reference) = &spec.source else {
            return Ok(());
        };
        let tracking_uri = self.options.tracking_uri.clone();
        let lookup = reference.clone();
        let current = tokio::task::spawn_blocking(move || {
            let client =
                Client::new(&tracking_uri).map_err(|err| ServingError::invalid(err.to_string()))?;
            client
                .resolve(&lookup)
                .map_err(|err| ServingError::unavailable(err.to_string()))
        })
        .await
        .map_err(|err| ServingError::internal(format!("alias lookup task failed: {err}")))??;
        if self.manager.primary_version(&spec.name).as_deref() == Some(current.version.as_str()) {
            return Ok(());
        }
        tracing::info!(model = %spec.name, version = %current.version, "alias moved; loading the new version");
        let pinned = ModelSpec {
            name: spec.name.clone(),
            source: ModelSource::Registry(ModelRef::Version {
                name: current.name.clone(),
                version: current.version.parse().unwrap_or(0),
            }),
        };
        self.load(pinned).await?;
        // Keep following the alias, not the pinned version.
        lock(&self.specs).insert(spec.name.clone(), spec.clone());
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits until no request holds `runtime` any more (bounded), then shuts it down.
async fn shutdown_when_idle(runtime: Arc<dyn Runtime>) {
    for _ in 0..600 {
        if Arc::strong_count(&runtime) <= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    runtime.shutdown().await;
}

/// Resolves a registry reference and downloads the version into the cache
/// (`CACHE/NAME/VERSION`), reusing a complete earlier download.
fn download(
    tracking_uri: &str,
    cache_dir: &Path,
    reference: &ModelRef,
) -> Result<Fetched, ServingError> {
    let client = Client::new(tracking_uri).map_err(|err| ServingError::invalid(err.to_string()))?;
    let version = client.resolve(reference).map_err(|err| {
        if err.is_not_found() {
            ServingError::not_found(format!("{reference}: {err}"))
        } else {
            ServingError::unavailable(format!(
                "cannot resolve {reference} at {tracking_uri}: {err}"
            ))
        }
    })?;
    let dest = cache_dir
        .join(sanitize(&version.name))
        .join(&version.version);
    let complete_marker = dest.join(".keel-complete");
    if complete_marker.exists() {
        return Ok(Fetched {
            version: version.version,
            path: dest,
        });
    }
    let staging = cache_dir.join(format!(
        ".{}-{}.partial",
        sanitize(&version.name),
        version.version
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let pinned = ModelRef::Version {
        name: version.name.clone(),
        version: version.version.parse().unwrap_or(0),
    };
    client
        .download_version(&pinned, &staging)
        .map_err(|err| ServingError::unavailable(format!("cannot download {reference}: {err}")))?;
    std::fs::write(staging.join(".keel-complete"), b"").map_err(|err| {
        ServingError::internal(format!("cannot write to {}: {err}", staging.display()))
    })?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|err| {
            ServingError::internal(format!("cannot create {}: {err}", parent.display()))
        })?;
    }
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&staging, &dest).map_err(|err| {
        ServingError::internal(format!(
            "cannot move the download into {}: {err}",
            dest.display()
        ))
    })?;
    Ok(Fetched {
        version: version.version,
        path: dest,
    })
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What kind of model a path holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFormat {
    /// A native ONNX file.
    Onnx(PathBuf),
    /// An MLflow model directory to load with `mlflow.pyfunc`.
    MlflowPyfunc(PathBuf),
}

/// Decides the runtime for a path: a `.onnx` file, a directory whose MLmodel
/// has an `onnx` flavor (or holding `model.onnx` without MLmodel), or any
/// other MLflow model directory.
pub fn detect_format(path: &Path) -> Result<ModelFormat, ServingError> {
    if path.is_file() {
        if path.extension().and_then(|ext| ext.to_str()) == Some("onnx") {
            return Ok(ModelFormat::Onnx(path.to_path_buf()));
        }
        return Err(ServingError::invalid(format!(
            "{} is not a model: give an .onnx file or an MLflow model directory",
            path.display()
        )));
    }
    let mlmodel = path.join("MLmodel");
    match std::fs::read_to_string(&mlmodel) {
        Ok(text) => {
            if let Some(data) = onnx_flavor_file(&text) {
                return Ok(ModelFormat::Onnx(path.join(data)));
            }
            Ok(ModelFormat::MlflowPyfunc(path.to_path_buf()))
        }
        Err(_) if path.join("model.onnx").is_file() => {
            Ok(ModelFormat::Onnx(path.join("model.onnx")))
        }
        Err(_) => Err(ServingError::invalid(format!(
            "{} holds neither an MLmodel file nor model.onnx",
            path.display()
        ))),
    }
}

/// The `data` file of an MLmodel's `onnx` flavor, if it has one. MLmodel
/// files are YAML written by MLflow with two-space indents: `flavors:` at
/// the top, flavor names one level in, their keys two levels in.
fn onnx_flavor_file(mlmodel: &str) -> Option<String> {
    let mut in_flavors = false;
    let mut in_onnx = false;
    let mut found_onnx = false;
    for line in mlmodel.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if indent == 0 {
            in_flavors = trimmed == "flavors:";
            in_onnx = false;
            continue;
        }
        if !in_flavors {
            continue;
        }
        if indent == 2 {
            in_onnx = trimmed == "onnx:";
            found_onnx |= in_onnx;
            continue;
        }
        if in_onnx && indent == 4 {
            if let Some(data) = trimmed.strip_prefix("data:") {
                return Some(data.trim().trim_matches(['\'', '"']).to_string());
            }
        }
    }
    found_onnx.then(|| "model.onnx".to_string())
}

/// Loads the runtime a path calls for.
pub async fn load_runtime(
    path: &Path,
    python: &PythonOptions,
) -> Result<Arc<dyn Runtime>, ServingError> {
    match detect_format(path)? {
        ModelFormat::Onnx(file) => {
            let runtime = tokio::task::spawn_blocking(move || OnnxRuntime::from_file(&file))
                .await
                .map_err(|err| {
                    ServingError::internal(format!("model load task failed: {err}"))
                })??;
            Ok(Arc::new(runtime))
        }
        ModelFormat::MlflowPyfunc(dir) => Ok(Arc::new(PythonRuntime::start(&dir, python).await?)),
    }
}

/// Runs one request of zeros through a freshly loaded model so the first
/// real request does not pay for lazy initialisation. Models whose inputs
/// have unknown shapes are not warmed up.
pub async fn warm_up(runtime: &dyn Runtime) -> Result<(), ServingError> {
    let mut inputs = Vec::new();
    for spec in runtime.inputs() {
        if spec.shape.is_empty() {
            return Ok(());
        }
        let shape: Vec<usize> = spec
            .shape
            .iter()
            .map(|&dim| if dim < 0 { 1 } else { dim as usize })
            .collect();
        let count: usize = shape.iter().product();
        let data = match spec.datatype {
            DataType::Bytes => TensorData::Bytes(vec![Vec::new(); count]),
            DataType::Bool => TensorData::Bool(vec![false; count]),
            DataType::F32 => TensorData::F32(vec![0.0; count]),
            DataType::F64 => TensorData::F64(vec![0.0; count]),
            DataType::I64 => TensorData::I64(vec![0; count]),
            DataType::I32 => TensorData::I32(vec![0; count]),
            _ => return Ok(()),
        };
        let tensor =
            Tensor::new(shape, data).map_err(|err| ServingError::internal(err.to_string()))?;
        inputs.push(NamedTensor::new(spec.name.clone(), tensor));
    }
    runtime.infer(inputs).await.map(|_| ()).map_err(|err| {
        ServingError::invalid(format!("the model failed its warm-up request: {err}"))
    })
}

#[async_trait]
impl ModelRepository for Loader {
    async fn load(&self, name: &str, parameters: &Parameters) -> Result<(), ServingError> {
        let spec = match parameters.get("uri").and_then(|uri| uri.as_str()) {
            Some(uri) => ModelSpec {
                name: name.to_string(),
                source: format!("{name}={uri}").parse::<ModelSpec>()?.source,
            },
            None => lock(&self.specs)
                .get(name)
                .cloned()
                .ok_or_else(|| {
                    ServingError::not_found(format!(
                        "model '{name}' is not in the repository; pass {{\"parameters\": {{\"uri\": \"models:/NAME@ALIAS\"}}}}"
                    ))
                })?,
        };
        Loader::load(self, spec).await.map(|_| ())
    }

    async fn unload(&self, name: &str) -> Result<(), ServingError> {
        for runtime in self.manager.unload(name)? {
            tokio::spawn(shutdown_when_idle(runtime));
        }
        Ok(())
    }

    fn available(&self) -> Vec<RepositoryEntry> {
        lock(&self.specs)
            .keys()
            .map(|name| RepositoryEntry {
                name: name.clone(),
                version: None,
                state: "UNAVAILABLE".to_string(),
                reason: "unloaded".to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs_parse() {
        let spec: ModelSpec = "models:/churn@champion".parse().unwrap();
        assert_eq!(spec.name, "churn");
        assert!(matches!(
            spec.source,
            ModelSource::Registry(ModelRef::Alias { .. })
        ));
        let spec: ModelSpec = "fast=models:/churn/3".parse().unwrap();
        assert_eq!(spec.name, "fast");
        let spec: ModelSpec = "/tmp/models/iris.onnx".parse().unwrap();
        assert_eq!(spec.name, "iris");
        assert!("s3://bucket/model".parse::<ModelSpec>().is_err());
        assert!("models:/churn".parse::<ModelSpec>().is_err());
    }

    #[test]
    fn onnx_flavor_is_found_in_mlmodel() {
        let mlmodel = "artifact_path: model\nflavors:\n  onnx:\n    code: null\n    data: model.onnx\n    onnx_version: 1.17.0\n  python_function:\n    loader_module: mlflow.onnx\n";
        assert_eq!(onnx_flavor_file(mlmodel).as_deref(), Some("model.onnx"));
        let sklearn = "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n  sklearn:\n    pickled_model: model.pkl\n";
        assert_eq!(onnx_flavor_file(sklearn), None);
    }
}
