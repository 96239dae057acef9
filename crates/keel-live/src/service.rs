//! The monitor service: evaluates monitors over the inference log (on
//! schedule and on demand), stores every result, keeps the latest as
//! Prometheus gauges, and takes ground-truth labels.
//!
//! An evaluation reads the window `[now - window, now)` of the monitored
//! model's log, per version; a version with fewer than `min_rows` rows gets
//! an `insufficient_data` result (no verdict, gauges untouched). Otherwise
//! each feature is tested against the reference with Evidently's rules
//! (keel-monitor's `DriftReport`), null shares are measured, and when the
//! monitor has a `performance` section, the rows whose labels have arrived
//! are scored.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use arrow::array::Array;
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use keel_monitor::cbpe::{Cbpe, ChunkEstimate, Chunking};
use keel_monitor::multivariate::{
    ChunkResult, Chunking as MultivariateChunking, ReconstructionDrift, ReconstructionOptions,
};
use keel_monitor::report::{DriftOptions, DriftReport};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::alerts::{AlertEvent, Alerts};
use crate::gauges::Gauges;
use crate::logread::{self, VersionRows, REQUEST_ID_COLUMN, ROW_COLUMN};
use crate::performance::{self, normalize_label, Performance};
use crate::spec::{MonitorSpec, Task};
use crate::store::{Label, ResultStore};
use crate::LiveError;
use keel_tracking::webhooks::Deliverer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Tests ran; `drift` holds the verdicts.
    Ok,
    /// Fewer rows than `min_rows`: no verdict.
    InsufficientData,
    /// The evaluation could not run; `message` says why.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::InsufficientData => "insufficient_data",
            Status::Error => "error",
        }
    }
}

/// Share of a feature's window values that are missing (null or NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnQuality {
    pub missing_share: f64,
}

/// One evaluation of one monitor on one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorResult {
    pub monitor: String,
    pub model: String,
    /// The model version whose rows were tested (`""` when the window held none).
    pub version: String,
    #[serde(with = "rfc3339")]
    pub evaluated_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub window_start: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub window_end: DateTime<Utc>,
    pub rows: u64,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftReport>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data_quality: BTreeMap<String, ColumnQuality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<Performance>,
    /// The window's PCA reconstruction error against the reference chunks'
    /// thresholds (NannyML's multivariate drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivariate: Option<ChunkResult>,
    /// Performance estimated without labels (NannyML's CBPE), per chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_performance: Option<EstimatedPerformance>,
    /// Alert rules that went pending, fired or resolved on this result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertEvent>,
}

mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// CBPE's estimates over a window, chunk by chunk (empty, with `message`,
/// when the window is shorter than one chunk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimatedPerformance {
    pub chunks: Vec<ChunkEstimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl EstimatedPerformance {
    /// The latest chunk's estimate of `metric` (`accuracy`, `roc_auc`, ...).
    pub fn latest(&self, metric: &str) -> Option<f64> {
        let chunk = self.chunks.last()?;
        keel_monitor::cbpe::Metric::ALL
            .iter()
            .find(|m| m.name() == metric)
            .and_then(|m| chunk.metrics.get(*m).value)
    }
}

/// Blocks until the inference log has finished its open files.
pub type FlushLog = Arc<dyn Fn() + Send + Sync>;

/// Checks a monitor against what is served and fills in what the server
/// knows (the reference from the model's lineage); blocking.
pub type PrepareSpec = Arc<dyn Fn(MonitorSpec) -> Result<MonitorSpec, String> + Send + Sync>;

/// What the service needs besides the monitors.
pub struct ServiceOptions {
    /// The inference log's root directory.
    pub log_root: PathBuf,
    /// The SQLite file of results, labels and API-defined monitors.
    pub db: PathBuf,
    pub flush: Option<FlushLog>,
    pub deliverer: Option<Arc<Deliverer>>,
    pub prepare: Option<PrepareSpec>,
}

#[derive(Clone)]
pub struct MonitorService {
    inner: Arc<Inner>,
}

/// A monitor ready to run: its spec and its reference in memory.
struct Loaded {
    spec: MonitorSpec,
    reference: Arc<Vec<RecordBatch>>,
    /// Fitted on the reference when the monitor estimates performance.
    cbpe: Option<Arc<Cbpe>>,
    /// Fitted on the reference when the monitor tests multivariate drift.
    multivariate: Option<Arc<ReconstructionDrift>>,
    /// Defined through the API (kept in the store), not the YAML file.
    from_api: bool,
}

struct Inner {
    monitors: RwLock<BTreeMap<String, Arc<Loaded>>>,
    schedules: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    log_root: PathBuf,
    store: ResultStore,
    gauges: Gauges,
    alerts: Alerts,
    flush: Option<FlushLog>,
    prepare: Option<PrepareSpec>,
    /// One evaluation at a time: they are CPU-bound and share the gauges.
    running: tokio::sync::Mutex<()>,
}

fn blocking_failed(err: tokio::task::JoinError) -> LiveError {
    LiveError::Spec(format!("preparing a monitor failed: {err}"))
}

/// Runs the `prepare` hook, loads the reference and fits the performance
/// estimator on it, off the async threads.
async fn load(
    spec: MonitorSpec,
    prepare: Option<PrepareSpec>,
    from_api: bool,
) -> Result<Loaded, LiveError> {
    tokio::task::spawn_blocking(move || {
        let spec = match prepare {
            Some(prepare) => prepare(spec).map_err(LiveError::Spec)?,
            None => spec,
        };
        let full = read_reference(&spec)?;
        let cbpe = fit_estimator(&spec, &full)?;
        let multivariate = fit_multivariate(&spec, &full)?;
        let reference = project_features(&spec, full)?;
        Ok(Loaded {
            spec,
            reference: Arc::new(reference),
            cbpe: cbpe.map(Arc::new),
            multivariate: multivariate.map(Arc::new),
            from_api,
        })
    })
    .await
    .map_err(blocking_failed)?
}

impl MonitorService {
    /// Opens the store and loads every monitor's reference: those of the
    /// YAML file (`specs`, already prepared; a missing or unreadable
    /// reference stops the server at start-up) and those defined earlier
    /// through the API (one that no longer loads is skipped with a warning).
    pub async fn open(
        specs: Vec<MonitorSpec>,
        options: ServiceOptions,
    ) -> Result<MonitorService, LiveError> {
        let store = ResultStore::open(&options.db).await?;
        let mut monitors = BTreeMap::new();
        for spec in specs {
            let loaded = load(spec, None, false).await?;
            monitors.insert(loaded.spec.name.clone(), Arc::new(loaded));
        }
        for (name, body) in store.monitor_specs().await? {
            if monitors.contains_key(&name) {
                tracing::warn!(monitor = %name, "a monitor defined through the API has the name of one in the YAML file; the file's wins");
                continue;
            }
            let loaded = match crate::spec::parse_api(&name, &body) {
                Ok(spec) => load(spec, options.prepare.clone(), true).await,
                Err(err) => Err(LiveError::Spec(err)),
            };
            match loaded {
                Ok(loaded) => {
                    monitors.insert(name, Arc::new(loaded));
                }
                Err(err) => {
                    tracing::warn!(monitor = %name, error = %err, "a stored monitor cannot be loaded; skipped")
                }
            }
        }
        Ok(MonitorService {
            inner: Arc::new(Inner {
                monitors: RwLock::new(monitors),
                schedules: Mutex::new(HashMap::new()),
                log_root: options.log_root,
                store,
                gauges: Gauges::new(),
                alerts: Alerts::new(options.deliverer),
                flush: options.flush,
                prepare: options.prepare,
                running: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Every monitor's spec, by name.
    pub fn specs(&self) -> Vec<MonitorSpec> {
        self.inner
            .monitors
            .read()
            .map(|monitors| {
                monitors
                    .values()
                    .map(|loaded| loaded.spec.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn loaded(&self, name: &str) -> Result<Arc<Loaded>, LiveError> {
        self.inner
            .monitors
            .read()
            .ok()
            .and_then(|monitors| monitors.get(name).cloned())
            .ok_or_else(|| LiveError::NotFound(format!("no monitor named `{name}`")))
    }

    pub fn spec(&self, name: &str) -> Result<MonitorSpec, LiveError> {
        Ok(self.loaded(name)?.spec.clone())
    }

    /// Creates or replaces monitor `name` from its JSON definition (the YAML
    /// file's fields), keeps it in the store so it survives restarts, and
    /// (re)starts its schedule. Returns the spec and whether it is new.
    pub async fn put(
        &self,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<(MonitorSpec, bool), LiveError> {
        if let Ok(existing) = self.loaded(name) {
            if !existing.from_api {
                return Err(LiveError::BadRequest(format!(
                    "monitor `{name}` is defined in the --monitors file; change it there"
                )));
            }
        }
        let spec = crate::spec::parse_api(name, body).map_err(LiveError::BadRequest)?;
        let loaded =
            load(spec, self.inner.prepare.clone(), true)
                .await
                .map_err(|err| match err {
                    LiveError::Spec(message) => LiveError::BadRequest(message),
                    other => other,
                })?;
        let spec = loaded.spec.clone();
        self.inner.store.save_monitor_spec(name, body).await?;
        let created = {
            let mut monitors = self
                .inner
                .monitors
                .write()
                .map_err(|_| LiveError::Spec("the monitor table is poisoned".to_owned()))?;
            monitors.insert(name.to_owned(), Arc::new(loaded)).is_none()
        };
        self.schedule(&spec);
        Ok((spec, created))
    }

    /// Removes a monitor defined through the API (its stored results stay).
    pub async fn delete(&self, name: &str) -> Result<(), LiveError> {
        let loaded = self.loaded(name)?;
        if !loaded.from_api {
            return Err(LiveError::BadRequest(format!(
                "monitor `{name}` is defined in the --monitors file; remove it there"
            )));
        }
        self.inner.store.delete_monitor_spec(name).await?;
        if let Ok(mut monitors) = self.inner.monitors.write() {
            monitors.remove(name);
        }
        if let Ok(mut schedules) = self.inner.schedules.lock() {
            if let Some(task) = schedules.remove(name) {
                task.abort();
            }
        }
        Ok(())
    }

    /// Evaluates monitor `name` now; one result per model version with rows
    /// in the window (one `insufficient_data` result when none has any).
    pub async fn run(&self, name: &str) -> Result<Vec<MonitorResult>, LiveError> {
        let loaded = self.loaded(name)?;
        let spec = loaded.spec.clone();
        let _running = self.inner.running.lock().await;
        if let Some(flush) = self.inner.flush.clone() {
            let _ = tokio::task::spawn_blocking(move || flush()).await;
        }
        let reference = Arc::clone(&loaded.reference);
        let cbpe = loaded.cbpe.clone();
        let multivariate = loaded.multivariate.clone();
        let now = Utc::now();
        let window = chrono::Duration::from_std(spec.window).unwrap_or(chrono::Duration::hours(1));
        let start = now - window;
        let labels = match &spec.performance {
            Some(_) => {
                self.inner
                    .store
                    .labels_since(&spec.model, start.timestamp_millis())
                    .await?
            }
            None => HashMap::new(),
        };
        let log_root = self.inner.log_root.clone();
        let evaluated = spec.clone();
        let results = tokio::task::spawn_blocking(move || {
            let models = Models {
                cbpe: cbpe.as_deref(),
                multivariate: multivariate.as_deref(),
            };
            evaluate(
                &evaluated, &reference, models, &log_root, start, now, &labels,
            )
        })
        .await
        .map_err(|err| LiveError::Log(format!("the evaluation failed: {err}")))??;
        let mut results = results;
        for result in &mut results {
            result.alerts = self.inner.alerts.evaluate(&spec.alerts, result);
            self.inner.store.save_result(result).await?;
            self.inner.gauges.record(result);
            for rule in &spec.alerts {
                let firing = self
                    .inner
                    .alerts
                    .firing(&result.monitor, &result.version, &rule.name);
                self.inner.gauges.set_alert(result, &rule.name, firing);
            }
        }
        Ok(results)
    }

    /// Stored results of `name`, newest first.
    pub async fn results(
        &self,
        name: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<MonitorResult>, LiveError> {
        self.loaded(name)?;
        self.inner.store.results(name, since_ms, limit).await
    }

    /// Stores ground truth for rows of `model`'s requests.
    pub async fn post_labels(&self, model: &str, labels: &[Label]) -> Result<usize, LiveError> {
        self.inner
            .store
            .save_labels(model, labels, Utc::now().timestamp_millis())
            .await?;
        Ok(labels.len())
    }

    /// The gauges in Prometheus text format 0.0.4.
    pub fn render_metrics(&self) -> String {
        self.inner.gauges.render()
    }

    /// Starts the schedule of every monitor with `every`.
    pub fn start_schedules(&self) {
        for spec in self.specs() {
            self.schedule(&spec);
        }
    }

    /// Stops every schedule (at shutdown).
    pub fn stop_schedules(&self) {
        if let Ok(mut schedules) = self.inner.schedules.lock() {
            for (_, task) in schedules.drain() {
                task.abort();
            }
        }
    }

    /// (Re)starts `spec`'s schedule: a task evaluating it every `every`.
    fn schedule(&self, spec: &MonitorSpec) {
        let Ok(mut schedules) = self.inner.schedules.lock() else {
            return;
        };
        if let Some(previous) = schedules.remove(&spec.name) {
            previous.abort();
        }
        let Some(every) = spec.every else {
            return;
        };
        let service = self.clone();
        let name = spec.name.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                match service.run(&name).await {
                    Ok(results) => {
                        for result in results {
                            tracing::info!(monitor = %name, version = %result.version, status = result.status.as_str(),
                                rows = result.rows, drifted = result.drift.as_ref().map(|d| d.dataset_drifted), "monitor evaluated");
                        }
                    }
                    Err(err) => {
                        tracing::warn!(monitor = %name, error = %err, "monitor evaluation failed")
                    }
                }
            }
        });
        schedules.insert(spec.name.clone(), task);
    }
}

/// The reference's batches, every column.
fn read_reference(spec: &MonitorSpec) -> Result<Vec<RecordBatch>, LiveError> {
    let Some(workspace_path) = &spec.reference else {
        return Err(LiveError::Spec(format!(
            "monitor `{}` has no reference",
            spec.name
        )));
    };
    let bad = |err: &dyn std::fmt::Display| {
        LiveError::Spec(format!(
            "monitor `{}`: cannot read the reference {}{}: {err}",
            spec.name,
            workspace_path.display(),
            spec.reference_rev
                .as_deref()
                .map(|rev| format!(" at `{rev}`"))
                .unwrap_or_default()
        ))
    };
    let versioned = match &spec.reference_rev {
        Some(rev) => Some(versioned_reference(workspace_path, rev).map_err(|err| bad(&err))?),
        None => None,
    };
    let path = versioned.as_deref().unwrap_or(workspace_path);
    let file = File::open(path).map_err(|err| bad(&err))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|err| bad(&err))?
        .with_batch_size(65_536)
        .build()
        .map_err(|err| bad(&err))?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|err| bad(&err))?;
    if batches.iter().all(|batch| batch.num_rows() == 0) {
        return Err(bad(&"it has no rows"));
    }
    Ok(batches)
}

/// The cache object holding `path` as DVC tracked it at git revision `rev`.
fn versioned_reference(path: &Path, rev: &str) -> Result<PathBuf, String> {
    let start = path.parent().unwrap_or(Path::new("."));
    let repo = keel_data::repo::Repo::find(start).map_err(|err| err.to_string())?;
    let relative = path
        .strip_prefix(repo.root())
        .map_err(|_| format!("it is outside the DVC repository {}", repo.root().display()))?
        .to_string_lossy()
        .replace('\\', "/");
    let git = keel_data::git::Git::open(repo.root()).map_err(|err| err.to_string())?;
    let outputs = keel_data::revision::outputs_at(&git, &[rev.to_owned()])
        .map_err(|err| format!("cannot read revision `{rev}`: {err}"))?;
    let tracked = outputs
        .into_iter()
        .flatten()
        .find(|tracked| tracked.shown == relative)
        .ok_or_else(|| format!("no .dvc file tracks `{relative}` at revision `{rev}`"))?;
    if tracked.output.is_dir() {
        return Err(format!(
            "`{relative}` is a directory at `{rev}`; name a Parquet file"
        ));
    }
    repo.cache().find(&tracked.output.md5).ok_or_else(|| {
        format!(
            "`{relative}` at `{rev}` (md5 {}) is not in the cache; `keel data fetch` it first",
            tracked.output.md5
        )
    })
}

fn reference_error(spec: &MonitorSpec, message: &dyn std::fmt::Display) -> LiveError {
    LiveError::Spec(format!(
        "monitor `{}`: the reference {}: {message}",
        spec.name,
        spec.reference
            .as_deref()
            .unwrap_or(Path::new("?"))
            .display()
    ))
}

/// The reference cut to the monitor's features when it names them.
fn project_features(
    spec: &MonitorSpec,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>, LiveError> {
    let bad = |err: &dyn std::fmt::Display| reference_error(spec, err);
    let Some(first) = batches.first() else {
        return Err(bad(&"it has no rows"));
    };
    let Some(features) = &spec.features else {
        return Ok(batches);
    };
    let schema = first.schema();
    let indices: Vec<usize> = features
        .iter()
        .map(|feature| {
            schema.index_of(feature).map_err(|_| {
                bad(&format!(
                    "has no column `{feature}` (it has: {})",
                    column_list(&schema)
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    batches
        .iter()
        .map(|batch| batch.project(&indices).map_err(|err| bad(&err)))
        .collect()
}

/// The reference column a log column is compared with.
fn reference_name<'a>(spec: &'a MonitorSpec, log_column: &'a str) -> &'a str {
    spec.column_map
        .get(log_column)
        .map_or(log_column, String::as_str)
}

/// NannyML's reconstruction-error model fitted on the reference, when the
/// monitor's `multivariate` asks for it.
fn fit_multivariate(
    spec: &MonitorSpec,
    reference: &[RecordBatch],
) -> Result<Option<ReconstructionDrift>, LiveError> {
    let Some(multivariate) = &spec.multivariate else {
        return Ok(None);
    };
    let columns = multivariate
        .columns
        .clone()
        .or_else(|| spec.features.clone())
        .unwrap_or_default();
    let mut options = ReconstructionOptions::new(columns);
    if let Some(size) = multivariate.chunk_size {
        options.chunking = MultivariateChunking::Size(size);
    }
    ReconstructionDrift::fit(reference, &options)
        .map(Some)
        .map_err(|err| reference_error(spec, &format!("cannot fit multivariate drift: {err}")))
}

/// NannyML's CBPE fitted on the reference's labelled predictions, when the
/// monitor's `performance.estimate` asks for it.
fn fit_estimator(spec: &MonitorSpec, reference: &[RecordBatch]) -> Result<Option<Cbpe>, LiveError> {
    let Some(perf) = &spec.performance else {
        return Ok(None);
    };
    let Some(estimate) = &perf.estimate else {
        return Ok(None);
    };
    let bad = |err: &dyn std::fmt::Display| reference_error(spec, err);
    let prediction = estimate
        .prediction
        .as_deref()
        .unwrap_or_else(|| reference_name(spec, &perf.prediction));
    let Some(score_log) = perf.score.as_deref() else {
        return Err(bad(
            &"performance.estimate needs performance.score (the positive class's probability)",
        ));
    };
    let score = estimate
        .score
        .as_deref()
        .unwrap_or_else(|| reference_name(spec, score_log));
    let positive = normalize_label(&perf.positive_label);
    let (mut truths, mut predictions, mut scores) = (Vec::new(), Vec::new(), Vec::new());
    for batch in reference {
        let column = |name: &str| {
            batch.column_by_name(name).cloned().ok_or_else(|| {
                bad(&format!(
                    "has no column `{name}` (it has: {})",
                    column_list(&batch.schema())
                ))
            })
        };
        let truth =
            logread::text_values(column(&estimate.target)?.as_ref()).map_err(|e| bad(&e))?;
        let predicted = logread::text_values(column(prediction)?.as_ref()).map_err(|e| bad(&e))?;
        let score = logread::number_values(column(score)?.as_ref()).map_err(|e| bad(&e))?;
        for ((truth, predicted), score) in truth.into_iter().zip(predicted).zip(score) {
            // Rows without all three cannot teach the estimator anything.
            if let (Some(truth), Some(predicted), Some(score)) = (truth, predicted, score) {
                truths.push(normalize_label(&truth) == positive);
                predictions.push(normalize_label(&predicted) == positive);
                scores.push(score);
            }
        }
    }
    Cbpe::fit(
        &truths,
        &predictions,
        &scores,
        Chunking::Size(estimate.chunk_size),
    )
    .map(Some)
    .map_err(|err| bad(&format!("cannot fit the performance estimator: {err}")))
}

fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|field| field.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One monitor over one window: a result per version.
/// What a monitor fitted on its reference besides the reference itself.
#[derive(Clone, Copy)]
struct Models<'a> {
    cbpe: Option<&'a Cbpe>,
    multivariate: Option<&'a ReconstructionDrift>,
}

fn evaluate(
    spec: &MonitorSpec,
    reference: &[RecordBatch],
    models: Models<'_>,
    log_root: &Path,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    labels: &HashMap<(String, i64), String>,
) -> Result<Vec<MonitorResult>, LiveError> {
    let reference_schema = reference.first().map(RecordBatch::schema).ok_or_else(|| {
        LiveError::Spec(format!(
            "monitor `{}`: the reference has no rows",
            spec.name
        ))
    })?;
    // reference column -> log column
    let log_name_of: BTreeMap<String, String> = reference_schema
        .fields()
        .iter()
        .map(|field| {
            let reference_name = field.name().clone();
            let log_name = spec
                .column_map
                .iter()
                .find(|(_, to)| **to == reference_name)
                .map(|(from, _)| from.clone())
                .unwrap_or_else(|| reference_name.clone());
            (reference_name, log_name)
        })
        .collect();
    let mut columns: Vec<String> = log_name_of.values().cloned().collect();
    columns.extend([REQUEST_ID_COLUMN.to_owned(), ROW_COLUMN.to_owned()]);
    if let Some(perf) = &spec.performance {
        columns.push(perf.prediction.clone());
        columns.extend(perf.score.clone());
    }
    let versions = logread::read_window(
        log_root,
        &spec.model,
        logread::micros(start),
        logread::micros(end),
        Some(&columns),
    )?;
    let base = |version: &str, rows: u64, status: Status, message: Option<String>| MonitorResult {
        monitor: spec.name.clone(),
        model: spec.model.clone(),
        version: version.to_owned(),
        evaluated_at: end,
        window_start: start,
        window_end: end,
        rows,
        status,
        message,
        drift: None,
        data_quality: BTreeMap::new(),
        performance: None,
        estimated_performance: None,
        multivariate: None,
        alerts: Vec::new(),
    };
    if versions.is_empty() {
        return Ok(vec![base(
            "",
            0,
            Status::InsufficientData,
            Some(format!(
                "no inference-log rows of model `{}` in the window",
                spec.model
            )),
        )]);
    }
    let mut results = Vec::new();
    for rows in versions {
        let n = rows.num_rows() as u64;
        if n < spec.min_rows {
            results.push(base(
                &rows.version,
                n,
                Status::InsufficientData,
                Some(format!(
                    "{n} row(s) in the window; the monitor needs {}",
                    spec.min_rows
                )),
            ));
            continue;
        }
        let mut result = base(&rows.version, n, Status::Ok, None);
        match evaluate_version(spec, reference, models, &log_name_of, &rows, labels) {
            Ok((drift, quality, perf, estimated, multivariate)) => {
                result.estimated_performance = estimated;
                result.multivariate = multivariate;
                result.drift = Some(drift);
                result.data_quality = quality;
                result.performance = perf;
            }
            Err(message) => {
                result.status = Status::Error;
                result.message = Some(message);
            }
        }
        results.push(result);
    }
    Ok(results)
}

type VersionOutcome = (
    DriftReport,
    BTreeMap<String, ColumnQuality>,
    Option<Performance>,
    Option<EstimatedPerformance>,
    Option<ChunkResult>,
);

fn evaluate_version(
    spec: &MonitorSpec,
    reference: &[RecordBatch],
    models: Models<'_>,
    log_name_of: &BTreeMap<String, String>,
    rows: &VersionRows,
    labels: &HashMap<(String, i64), String>,
) -> Result<VersionOutcome, String> {
    let log_schema = rows.batches[0].schema();
    // The features the log has, renamed to the reference's names.
    let present: Vec<(&String, usize)> = log_name_of
        .iter()
        .filter_map(|(reference_name, log_name)| {
            Some((reference_name, log_schema.index_of(log_name).ok()?))
        })
        .collect();
    if present.is_empty() {
        return Err(format!(
            "no reference column is in the inference log (log columns: {}); map them with column_map",
            column_list(&log_schema)
        ));
    }
    let schema = Arc::new(Schema::new(
        present
            .iter()
            .map(|(name, index)| {
                Field::new(
                    name.as_str(),
                    log_schema.field(*index).data_type().clone(),
                    true,
                )
            })
            .collect::<Vec<_>>(),
    ));
    let current: Vec<RecordBatch> = rows
        .batches
        .iter()
        .map(|batch| {
            RecordBatch::try_new(
                schema.clone(),
                present
                    .iter()
                    .map(|(_, index)| batch.column(*index).clone())
                    .collect(),
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|err| format!("cannot read the window's features: {err}"))?;
    let mut tests = spec.column_stattests.clone();
    if let Some(every) = spec.stattest {
        for (name, _) in &present {
            tests.entry((*name).clone()).or_insert(every);
        }
    }
    let options = DriftOptions {
        drift_share: spec.drift_share,
        tests,
        thresholds: spec.column_thresholds.clone(),
    };
    let drift =
        DriftReport::compute(reference, &current, &options).map_err(|err| err.to_string())?;
    let mut quality = BTreeMap::new();
    let total = rows.num_rows().max(1) as f64;
    for (position, (name, _)) in present.iter().enumerate() {
        let mut missing = 0usize;
        for batch in &current {
            let column = batch.column(position);
            missing += column.null_count();
            if let Ok(numbers) = logread::number_values(column.as_ref()) {
                missing += numbers
                    .iter()
                    .filter(|v| v.is_some_and(f64::is_nan))
                    .count();
            }
        }
        quality.insert(
            (*name).clone(),
            ColumnQuality {
                missing_share: missing as f64 / total,
            },
        );
    }
    let perf = match &spec.performance {
        Some(perf_spec) => Some(score(perf_spec, rows, labels)?),
        None => None,
    };
    let estimated = match (&spec.performance, models.cbpe) {
        (Some(perf_spec), Some(cbpe)) => Some(estimate(perf_spec, cbpe, rows)?),
        _ => None,
    };
    let multivariate = match models.multivariate {
        Some(model) => Some(
            model
                .evaluate_window(&current)
                .map_err(|err| format!("multivariate drift: {err}"))?,
        ),
        None => None,
    };
    Ok((drift, quality, perf, estimated, multivariate))
}

/// NannyML's CBPE over the window's predictions and scores, labels or not:
/// one estimate per chunk of the reference's chunk size.
fn estimate(
    perf: &crate::spec::PerformanceSpec,
    cbpe: &Cbpe,
    rows: &VersionRows,
) -> Result<EstimatedPerformance, String> {
    let schema = rows.batches[0].schema();
    let Some(score_name) = perf.score.as_deref() else {
        return Err("performance.estimate needs performance.score".to_owned());
    };
    let column = |name: &str| {
        schema.index_of(name).map_err(|_| {
            format!(
                "the inference log has no column `{name}` (it has: {})",
                column_list(&schema)
            )
        })
    };
    let (prediction_at, score_at) = (column(&perf.prediction)?, column(score_name)?);
    let positive = normalize_label(&perf.positive_label);
    let (mut predictions, mut scores) = (Vec::new(), Vec::new());
    for batch in &rows.batches {
        let predicted = logread::text_values(batch.column(prediction_at).as_ref())
            .map_err(|e| e.to_string())?;
        let score =
            logread::number_values(batch.column(score_at).as_ref()).map_err(|e| e.to_string())?;
        for (predicted, score) in predicted.into_iter().zip(score) {
            if let (Some(predicted), Some(score)) = (predicted, score) {
                predictions.push(normalize_label(&predicted) == positive);
                scores.push(score);
            }
        }
    }
    Ok(match cbpe.estimate(&predictions, &scores) {
        Ok(chunks) => EstimatedPerformance {
            chunks,
            message: None,
        },
        Err(err) => EstimatedPerformance {
            chunks: Vec::new(),
            message: Some(err.to_string()),
        },
    })
}

/// Joins the window's predictions with their labels and scores them.
fn score(
    perf: &crate::spec::PerformanceSpec,
    rows: &VersionRows,
    labels: &HashMap<(String, i64), String>,
) -> Result<Performance, String> {
    let schema = rows.batches[0].schema();
    let column = |name: &str| {
        schema.index_of(name).map_err(|_| {
            format!(
                "the inference log has no column `{name}` (it has: {})",
                column_list(&schema)
            )
        })
    };
    let request_ids = column(REQUEST_ID_COLUMN)?;
    let row_numbers = column(ROW_COLUMN)?;
    let predictions = column(&perf.prediction)?;
    let score_column = perf.score.as_deref().map(column).transpose()?;
    let mut class_pairs = Vec::new();
    let mut scores = Vec::new();
    let mut numeric_pairs = Vec::new();
    for batch in &rows.batches {
        let ids =
            logread::text_values(batch.column(request_ids).as_ref()).map_err(|e| e.to_string())?;
        let row_index = logread::number_values(batch.column(row_numbers).as_ref())
            .map_err(|e| e.to_string())?;
        let predicted =
            logread::text_values(batch.column(predictions).as_ref()).map_err(|e| e.to_string())?;
        let batch_scores = match score_column {
            Some(index) => Some(
                logread::number_values(batch.column(index).as_ref()).map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        for i in 0..batch.num_rows() {
            let (Some(id), Some(row), Some(prediction)) = (&ids[i], row_index[i], &predicted[i])
            else {
                continue;
            };
            let Some(truth) = labels.get(&(id.clone(), row as i64)) else {
                continue;
            };
            match perf.task {
                Task::Classification => {
                    class_pairs.push((normalize_label(truth), normalize_label(prediction)));
                    if let Some(batch_scores) = &batch_scores {
                        scores.push(batch_scores[i].unwrap_or(f64::NAN));
                    }
                }
                Task::Regression => {
                    if let (Ok(truth), Ok(prediction)) = (
                        truth.trim().parse::<f64>(),
                        prediction.trim().parse::<f64>(),
                    ) {
                        numeric_pairs.push((truth, prediction));
                    }
                }
            }
        }
    }
    Ok(match perf.task {
        Task::Classification => performance::classification(
            &class_pairs,
            score_column.map(|_| scores.as_slice()),
            &perf.positive_label,
        ),
        Task::Regression => performance::regression(&numeric_pairs),
    })
}
