//! `ModelManager`: the models a server holds, each with one or more loaded
//! versions and a routing (primary version, weighted canaries, a shadow).
//! Swapping a version replaces an `Arc`, so requests in flight finish on the
//! version they started with and no request is dropped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use std::time::Instant;

use crate::batching::{BatchSettings, Batcher};
use crate::inference_log::{InferenceLogger, InferenceRecord};
use crate::metrics::{ServingMetrics, VersionMetrics};
use crate::runtime::Runtime;
use crate::{
    InferenceRequest, InferenceResponse, ModelMetadata, NamedTensor, ServerMetadata, ServingError,
};

/// The OIP extensions this server implements.
pub const EXTENSIONS: &[&str] = &["binary_tensor_data", "model_repository"];

/// One loaded version of a model.
pub struct LoadedVersion {
    pub version: String,
    pub runtime: Arc<dyn Runtime>,
}

/// Which versions of a model answer requests that do not name a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub primary: String,
    /// `(version, weight)`: a request goes to a canary with probability
    /// weight / (sum of canary weights + primary_weight).
    pub canaries: Vec<(String, u32)>,
    pub primary_weight: u32,
    /// Receives a copy of every routed request; its answers are discarded.
    pub shadow: Option<String>,
}

impl Routing {
    pub fn single(version: impl Into<String>) -> Routing {
        Routing {
            primary: version.into(),
            canaries: Vec::new(),
            primary_weight: 100,
            shadow: None,
        }
    }
}

/// A loaded version as the manager serves it: with its batcher and metrics.
struct ServedVersion {
    loaded: LoadedVersion,
    batcher: Option<Batcher>,
    metrics: VersionMetrics,
}

struct ModelSlot {
    versions: BTreeMap<String, Arc<ServedVersion>>,
    routing: Routing,
}

/// Readiness of one entry of the repository index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryEntry {
    pub name: String,
    pub version: Option<String>,
    pub state: String,
    pub reason: String,
}

#[derive(Clone)]
pub struct ModelManager {
    inner: Arc<Inner>,
}

struct Inner {
    server_name: String,
    server_version: String,
    models: RwLock<BTreeMap<String, ModelSlot>>,
    request_counter: AtomicU64,
    metrics: ServingMetrics,
    inference_log: OnceLock<InferenceLogger>,
}

impl ModelManager {
    pub fn new(server_name: impl Into<String>, server_version: impl Into<String>) -> ModelManager {
        ModelManager {
            inner: Arc::new(Inner {
                server_name: server_name.into(),
                server_version: server_version.into(),
                models: RwLock::new(BTreeMap::new()),
                request_counter: AtomicU64::new(0),
                metrics: ServingMetrics::new(),
                inference_log: OnceLock::new(),
            }),
        }
    }

    /// Live as long as the process answers.
    pub fn is_live(&self) -> bool {
        true
    }

    /// Ready when every model it holds has a routable primary version.
    pub fn is_ready(&self) -> bool {
        let models = read(&self.inner.models);
        models
            .values()
            .all(|slot| slot.versions.contains_key(&slot.routing.primary))
    }

    pub fn server_metadata(&self) -> ServerMetadata {
        ServerMetadata {
            name: self.inner.server_name.clone(),
            version: self.inner.server_version.clone(),
            extensions: EXTENSIONS.iter().map(|ext| ext.to_string()).collect(),
        }
    }

    pub fn metrics(&self) -> &ServingMetrics {
        &self.inner.metrics
    }

    /// Every answered request is offered to `logger` from now on (the
    /// logger samples and never blocks). Only the first logger set counts.
    pub fn set_inference_logger(&self, logger: InferenceLogger) {
        let _ = self.inner.inference_log.set(logger);
    }

    /// The metrics in Prometheus' text format, with the log's drop count current.
    pub fn render_metrics(&self) -> String {
        if let Some(logger) = self.inner.inference_log.get() {
            self.inner.metrics.set_log_dropped(logger.dropped());
        }
        self.inner.metrics.render()
    }

    /// Adds (or replaces) a loaded version and, when `routing` is given,
    /// makes it the model's routing. Replacing is atomic for requests.
    pub fn install(&self, name: &str, loaded: LoadedVersion, routing: Option<Routing>) {
        self.install_with(name, loaded, None, routing);
    }

    /// `install` with adaptive batching for this version (must be called
    /// inside a tokio runtime when batching is on).
    pub fn install_with(
        &self,
        name: &str,
        loaded: LoadedVersion,
        batching: Option<BatchSettings>,
        routing: Option<Routing>,
    ) {
        let version = loaded.version.clone();
        let batcher = batching
            .filter(|settings| settings.max_batch_size > 1)
            .map(|settings| Batcher::start(loaded.runtime.clone(), settings));
        let served = ServedVersion {
            metrics: self.inner.metrics.for_version(name, &version),
            loaded,
            batcher,
        };
        let mut models = write(&self.inner.models);
        match models.get_mut(name) {
            Some(slot) => {
                slot.versions.insert(version, Arc::new(served));
                if let Some(routing) = routing {
                    slot.routing = routing;
                }
            }
            None => {
                let routing = routing.unwrap_or_else(|| Routing::single(version.clone()));
                let mut versions = BTreeMap::new();
                versions.insert(version, Arc::new(served));
                models.insert(name.to_string(), ModelSlot { versions, routing });
            }
        }
    }

    /// Points a model's routing somewhere else; every version it names must be loaded.
    pub fn set_routing(&self, name: &str, routing: Routing) -> Result<(), ServingError> {
        let mut models = write(&self.inner.models);
        let slot = models
            .get_mut(name)
            .ok_or_else(|| ServingError::not_found(format!("model '{name}' is not loaded")))?;
        let named = std::iter::once(&routing.primary)
            .chain(routing.canaries.iter().map(|(version, _)| version))
            .chain(routing.shadow.iter());
        for version in named {
            if !slot.versions.contains_key(version) {
                return Err(ServingError::invalid(format!(
                    "version '{version}' of model '{name}' is not loaded"
                )));
            }
        }
        slot.routing = routing;
        Ok(())
    }

    /// Removes versions no routing names any more; answers their runtimes
    /// so the caller can shut them down once in-flight requests are done.
    pub fn retire_unrouted(&self, name: &str) -> Vec<Arc<dyn Runtime>> {
        let mut models = write(&self.inner.models);
        let Some(slot) = models.get_mut(name) else {
            return Vec::new();
        };
        let routing = slot.routing.clone();
        let keep = |version: &String| {
            *version == routing.primary
                || routing.canaries.iter().any(|(canary, _)| canary == version)
                || routing.shadow.as_ref() == Some(version)
        };
        let retired: Vec<String> = slot.versions.keys().filter(|v| !keep(v)).cloned().collect();
        retired
            .into_iter()
            .filter_map(|version| slot.versions.remove(&version))
            .map(|served| served.loaded.runtime.clone())
            .collect()
    }

    /// Unloads a whole model; answers its versions for shutdown.
    pub fn unload(&self, name: &str) -> Result<Vec<Arc<dyn Runtime>>, ServingError> {
        let mut models = write(&self.inner.models);
        let slot = models
            .remove(name)
            .ok_or_else(|| ServingError::not_found(format!("model '{name}' is not loaded")))?;
        Ok(slot
            .versions
            .into_values()
            .map(|served| served.loaded.runtime.clone())
            .collect())
    }

    /// Unloads every model and shuts its runtimes down (server shutdown).
    pub async fn shutdown_all(&self) {
        let names: Vec<String> = read(&self.inner.models).keys().cloned().collect();
        for name in names {
            for runtime in self.unload(&name).unwrap_or_default() {
                runtime.shutdown().await;
            }
        }
    }

    /// Every model and version held, for the repository extension's index.
    pub fn index(&self) -> Vec<RepositoryEntry> {
        let models = read(&self.inner.models);
        let mut entries = Vec::new();
        for (name, slot) in models.iter() {
            for version in slot.versions.keys() {
                entries.push(RepositoryEntry {
                    name: name.clone(),
                    version: Some(version.clone()),
                    state: "READY".to_string(),
                    reason: String::new(),
                });
            }
        }
        entries
    }

    /// The primary version a model routes to, if loaded.
    pub fn primary_version(&self, name: &str) -> Option<String> {
        read(&self.inner.models)
            .get(name)
            .map(|slot| slot.routing.primary.clone())
    }

    pub fn model_ready(&self, name: &str, version: Option<&str>) -> bool {
        self.resolve(name, version).is_ok()
    }

    pub fn model_metadata(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<ModelMetadata, ServingError> {
        let loaded = self.resolve(name, version)?;
        let versions = match version {
            Some(version) => vec![version.to_string()],
            None => read(&self.inner.models)
                .get(name)
                .map(|slot| slot.versions.keys().cloned().collect())
                .unwrap_or_default(),
        };
        Ok(ModelMetadata {
            name: name.to_string(),
            versions,
            platform: loaded.loaded.runtime.platform().to_string(),
            inputs: loaded.loaded.runtime.inputs().to_vec(),
            outputs: loaded.loaded.runtime.outputs().to_vec(),
        })
    }

    /// The version that answers a request: the named one, else the routing's choice.
    fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<ServedVersion>, ServingError> {
        self.route(name, version).map(|(primary, _)| primary)
    }

    fn route(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(Arc<ServedVersion>, Option<Arc<ServedVersion>>), ServingError> {
        let models = read(&self.inner.models);
        let slot = models
            .get(name)
            .ok_or_else(|| ServingError::not_found(format!("model '{name}' is not loaded")))?;
        if let Some(version) = version {
            let loaded = slot.versions.get(version).ok_or_else(|| {
                ServingError::not_found(format!(
                    "version '{version}' of model '{name}' is not loaded"
                ))
            })?;
            return Ok((loaded.clone(), None));
        }
        let routing = &slot.routing;
        let mut chosen = &routing.primary;
        if !routing.canaries.is_empty() {
            let total: u64 = u64::from(routing.primary_weight)
                + routing
                    .canaries
                    .iter()
                    .map(|(_, w)| u64::from(*w))
                    .sum::<u64>();
            if total > 0 {
                // A counter spreads requests deterministically by weight
                // without a random-number dependency.
                let tick = self.inner.request_counter.fetch_add(1, Ordering::Relaxed);
                let mut point = spread(tick) % total;
                for (canary, weight) in &routing.canaries {
                    if point < u64::from(*weight) {
                        chosen = canary;
                        break;
                    }
                    point -= u64::from(*weight);
                }
            }
        }
        let loaded = slot.versions.get(chosen).ok_or_else(|| {
            ServingError::unavailable(format!("model '{name}' has no loaded version '{chosen}'"))
        })?;
        let shadow = routing
            .shadow
            .as_ref()
            .filter(|shadow| *shadow != chosen)
            .and_then(|shadow| slot.versions.get(shadow).cloned());
        Ok((loaded.clone(), shadow))
    }

    /// Runs a request: validates the inputs against the model's signature,
    /// calls the runtime (through the batcher when on), keeps the requested
    /// outputs, and records metrics.
    pub async fn infer(
        &self,
        name: &str,
        version: Option<&str>,
        request: InferenceRequest,
    ) -> Result<InferenceResponse, ServingError> {
        let (served, shadow) = match self.route(name, version) {
            Ok(routed) => routed,
            Err(err) => {
                self.inner.metrics.count_unrouted(name);
                return Err(err);
            }
        };
        let metrics = &served.metrics;
        let _in_flight = metrics.start();
        let result = self.infer_on(name, &served, shadow, request).await;
        metrics.count(result.as_ref().map(|_| ()).map_err(|err| err.kind));
        let response = result?;
        Ok(InferenceResponse {
            model_name: name.to_string(),
            ..response
        })
    }

    async fn infer_on(
        &self,
        name: &str,
        served: &ServedVersion,
        shadow: Option<Arc<ServedVersion>>,
        request: InferenceRequest,
    ) -> Result<InferenceResponse, ServingError> {
        let started = Instant::now();
        let runtime = &served.loaded.runtime;
        check_inputs(runtime.as_ref(), &request.inputs)?;
        let requested: Vec<String> = request.outputs.iter().map(|out| out.name.clone()).collect();
        for wanted in &requested {
            if !runtime.outputs().iter().any(|spec| &spec.name == wanted) {
                return Err(ServingError::invalid(format!(
                    "the model has no output named '{wanted}'"
                )));
            }
        }
        if let Some(shadow) = shadow {
            let inputs = request.inputs.clone();
            tokio::spawn(async move {
                let result = match &shadow.batcher {
                    Some(batcher) => batcher.submit(inputs).await.map(|_| ()),
                    None => shadow.loaded.runtime.infer(inputs).await.map(|_| ()),
                };
                if let Err(err) = result {
                    tracing::debug!(version = %shadow.loaded.version, error = %err, "shadow request failed");
                }
            });
        }
        let rows = request
            .inputs
            .first()
            .map(|input| input.tensor.batch_size())
            .unwrap_or(0);
        let logged_inputs = self
            .inner
            .inference_log
            .get()
            .map(|_| request.inputs.clone());
        let (mut outputs, queued) = match &served.batcher {
            Some(batcher) => batcher.submit(request.inputs).await?,
            None => (
                runtime.infer(request.inputs).await?,
                std::time::Duration::ZERO,
            ),
        };
        let total = started.elapsed();
        served
            .metrics
            .observe(queued, total.saturating_sub(queued), total, rows);
        if let (Some(logger), Some(inputs)) = (self.inner.inference_log.get(), logged_inputs) {
            logger.record(InferenceRecord {
                model_name: name.to_string(),
                model_version: served.loaded.version.clone(),
                request_id: request
                    .id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                timestamp: std::time::SystemTime::now(),
                inputs,
                outputs: outputs.clone(),
            });
        }
        if !requested.is_empty() {
            outputs.retain(|output| requested.contains(&output.name));
            outputs.sort_by_key(|output| requested.iter().position(|name| name == &output.name));
        }
        Ok(InferenceResponse {
            model_name: String::new(),
            model_version: Some(served.loaded.version.clone()),
            id: request.id,
            outputs,
            parameters: Default::default(),
        })
    }
}

/// A cheap integer mix so consecutive ticks land far apart.
fn spread(tick: u64) -> u64 {
    let mut x = tick.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Every declared input present once with a usable datatype and shape; no unknown inputs.
fn check_inputs(runtime: &dyn Runtime, inputs: &[NamedTensor]) -> Result<(), ServingError> {
    for (idx, input) in inputs.iter().enumerate() {
        if inputs[..idx].iter().any(|other| other.name == input.name) {
            return Err(ServingError::invalid(format!(
                "input '{}' is given twice",
                input.name
            )));
        }
        let Some(spec) = runtime.inputs().iter().find(|spec| spec.name == input.name) else {
            let expected: Vec<&str> = runtime
                .inputs()
                .iter()
                .map(|spec| spec.name.as_str())
                .collect();
            return Err(ServingError::invalid(format!(
                "unexpected input '{}'; the model takes {expected:?}",
                input.name
            )));
        };
        let shape = input.tensor.shape();
        if !spec.shape.is_empty() {
            let fits = shape.len() == spec.shape.len()
                && shape
                    .iter()
                    .zip(&spec.shape)
                    .all(|(&dim, &want)| want < 0 || dim as i64 == want);
            if !fits {
                return Err(ServingError::invalid(format!(
                    "input '{}' has shape {shape:?} but the model expects {:?} (-1 = any size)",
                    input.name, spec.shape
                )));
            }
        }
    }
    for spec in runtime.inputs() {
        if !inputs.iter().any(|input| input.name == spec.name) {
            return Err(ServingError::invalid(format!(
                "missing input '{}'",
                spec.name
            )));
        }
    }
    Ok(())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorSpec;
    use async_trait::async_trait;
    use keel_core::tensor::{DataType, Tensor, TensorData};
    use std::sync::atomic::AtomicUsize;

    /// Answers its own label; counts calls.
    struct Constant {
        label: i64,
        calls: AtomicUsize,
        specs: Vec<TensorSpec>,
    }

    #[async_trait]
    impl Runtime for Constant {
        fn platform(&self) -> &str {
            "test"
        }
        fn inputs(&self) -> &[TensorSpec] {
            &self.specs[..1]
        }
        fn outputs(&self) -> &[TensorSpec] {
            &self.specs[1..]
        }
        async fn infer(&self, inputs: Vec<NamedTensor>) -> Result<Vec<NamedTensor>, ServingError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let rows = inputs[0].tensor.batch_size();
            let tensor = Tensor::new(vec![rows], TensorData::I64(vec![self.label; rows])).unwrap();
            Ok(vec![NamedTensor::new("label", tensor)])
        }
    }

    fn constant(label: i64) -> Arc<Constant> {
        Arc::new(Constant {
            label,
            calls: AtomicUsize::new(0),
            specs: vec![
                TensorSpec {
                    name: "x".into(),
                    datatype: DataType::F32,
                    shape: vec![-1, 2],
                },
                TensorSpec {
                    name: "label".into(),
                    datatype: DataType::I64,
                    shape: vec![-1],
                },
            ],
        })
    }

    fn request() -> InferenceRequest {
        let tensor = Tensor::new(vec![1, 2], TensorData::F32(vec![0.0, 1.0])).unwrap();
        InferenceRequest {
            inputs: vec![NamedTensor::new("x", tensor)],
            ..InferenceRequest::default()
        }
    }

    fn install(manager: &ModelManager, version: &str, runtime: Arc<Constant>) {
        manager.install(
            "m",
            LoadedVersion {
                version: version.into(),
                runtime,
            },
            None,
        );
    }

    #[tokio::test]
    async fn canary_takes_its_share_and_shadow_sees_every_request() {
        let manager = ModelManager::new("keel", "test");
        let (primary, canary, shadow) = (constant(1), constant(2), constant(3));
        install(&manager, "1", primary.clone());
        install(&manager, "2", canary.clone());
        install(&manager, "3", shadow.clone());
        manager
            .set_routing(
                "m",
                Routing {
                    primary: "1".into(),
                    canaries: vec![("2".into(), 20)],
                    primary_weight: 80,
                    shadow: Some("3".into()),
                },
            )
            .unwrap();
        let mut by_version = BTreeMap::new();
        for _ in 0..1000 {
            let response = manager.infer("m", None, request()).await.unwrap();
            *by_version
                .entry(response.model_version.unwrap())
                .or_insert(0) += 1;
        }
        let to_canary = by_version.get("2").copied().unwrap_or(0);
        assert!((120..=280).contains(&to_canary), "{by_version:?}");
        assert!(
            !by_version.contains_key("3"),
            "the shadow must never answer"
        );
        for _ in 0..100 {
            if shadow.calls.load(Ordering::SeqCst) == 1000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(shadow.calls.load(Ordering::SeqCst), 1000);
        // A named version bypasses the routing.
        let pinned = manager.infer("m", Some("3"), request()).await.unwrap();
        assert_eq!(pinned.outputs[0].tensor.data(), &TensorData::I64(vec![3]));
        assert!(manager.set_routing("m", Routing::single("9")).is_err());
    }

    #[tokio::test]
    async fn swapping_the_primary_retires_the_old_version() {
        let manager = ModelManager::new("keel", "test");
        install(&manager, "1", constant(1));
        manager.install(
            "m",
            LoadedVersion {
                version: "2".into(),
                runtime: constant(2),
            },
            Some(Routing::single("2")),
        );
        assert_eq!(manager.retire_unrouted("m").len(), 1);
        let response = manager.infer("m", None, request()).await.unwrap();
        assert_eq!(response.model_version.as_deref(), Some("2"));
        assert!(manager.infer("m", Some("1"), request()).await.is_err());
        let missing = manager
            .infer("m", None, InferenceRequest::default())
            .await
            .unwrap_err();
        assert!(
            missing.message.contains("missing input 'x'"),
            "{}",
            missing.message
        );
    }
}
