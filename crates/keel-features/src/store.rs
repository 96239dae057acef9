//! `FeatureStore`: one feature repository opened for work — its config, its
//! registry and its online store — and the operations the CLI and the feature
//! server share: apply, historical retrieval, materialization, online reads,
//! pushes.
//!
//! Invariants: reads and retrieval use the *applied* definitions (the
//! registry), never the YAML files directly; the resolution of an online
//! request's features is cached per request shape and the cache is dropped on
//! every apply; all views of an online request are read in one batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use arrow::array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field as ArrowField, Schema, TimeUnit};
use serde_json::{Map, Value as Json};

use crate::config::{OnlineStoreConfig, RepoConfig};
use crate::definitions::{Definitions, FeatureRef, FeatureView};
use crate::online::{OnlineRow, OnlineStore, RedisOnlineStore, SqliteOnlineStore, ViewRead};
use crate::registry::{Action, Interval, Plan, Registry};
use crate::values::{self, ValueType};
use crate::{offline, FeatureError, Result};

/// Which features a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FeatureSelection {
    Refs(Vec<String>),
    Service(String),
}

pub struct FeatureStore {
    pub config: RepoConfig,
    registry: Registry,
    online: Arc<dyn OnlineStore>,
    definitions: RwLock<Arc<Definitions>>,
    plans: Mutex<HashMap<(FeatureSelection, bool), Arc<OnlinePlan>>>,
}

/// A resolved online request: per view, the features to read and how.
#[derive(Debug)]
pub struct OnlinePlan {
    views: Vec<PlannedView>,
    /// The response's feature columns, in request order.
    outputs: Vec<PlannedOutput>,
    on_demand: Vec<PlannedOnDemand>,
}

#[derive(Debug)]
enum PlannedOutput {
    /// A stored feature: (view index, feature name, output name).
    Stored(usize, String, String),
    /// An on-demand feature: (on-demand index, output index in its plan, output name).
    OnDemand(usize, usize, String),
}

/// An on-demand view of a request, with the view index each input is read from.
struct PlannedOnDemand {
    name: String,
    plan: crate::definitions::OnDemandPlan,
    /// Per view input: (view index, input type).
    inputs: Vec<(usize, ValueType)>,
}

impl std::fmt::Debug for PlannedOnDemand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedOnDemand")
            .field("name", &self.name)
            .finish()
    }
}

#[derive(Debug)]
struct PlannedView {
    name: String,
    join_keys: Vec<(String, ValueType)>,
    ttl_micros: i64,
}

/// The answer to an online request, in Feast's column-major shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OnlineResponse {
    pub metadata: OnlineMetadata,
    pub results: Vec<OnlineColumn>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OnlineMetadata {
    pub feature_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OnlineColumn {
    pub values: Vec<Json>,
    pub statuses: Vec<&'static str>,
    pub event_timestamps: Vec<String>,
}

/// Where a push goes (Feast's `PushMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushTarget {
    Online,
    Offline,
    OnlineAndOffline,
}

impl PushTarget {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "online" => Ok(Self::Online),
            "offline" => Ok(Self::Offline),
            "online_and_offline" => Ok(Self::OnlineAndOffline),
            other => Err(FeatureError::invalid(format!(
                "`to` must be online, offline or online_and_offline, not `{other}`"
            ))),
        }
    }
}

/// What one view's materialization did.
#[derive(Debug, Clone, PartialEq)]
pub struct MaterializedView {
    pub view: String,
    pub start: i64,
    pub end: i64,
    pub rows_read: usize,
    pub rows_written: usize,
}

/// Reports materialization progress: (view, rows written, rows to write).
pub type Progress<'a> = dyn Fn(&str, usize, usize) + Sync + 'a;

/// A stored row parsed once: event time, feature values, older than the ttl.
/// (event time as served, feature values, older than the ttl); the time is
/// formatted once per row, not once per feature.
type ParsedRow = Option<(String, Map<String, Json>, bool)>;

/// Column-major JSON data, as Feast's `df` fields carry it.
pub type JsonColumns = BTreeMap<String, Vec<Json>>;

const EPOCH: &str = "1970-01-01T00:00:00Z";
const FIRST_WINDOW_WITHOUT_TTL: i64 = 52 * 7 * 86_400 * 1_000_000;
const WRITE_CHUNK: usize = 10_000;

impl FeatureStore {
    /// Opens the repository at `root`: reads its config, opens the registry
    /// and connects the online store.
    pub async fn open(root: &std::path::Path) -> Result<Self> {
        let config = RepoConfig::load(root)?;
        Self::open_with(config).await
    }

    pub async fn open_with(config: RepoConfig) -> Result<Self> {
        let registry = Registry::open(&config.registry, &config.project).await?;
        let online: Arc<dyn OnlineStore> = match &config.online_store {
            OnlineStoreConfig::Sqlite { path } => {
                Arc::new(SqliteOnlineStore::open(path, &config.project).await?)
            }
            OnlineStoreConfig::Redis { url } => {
                Arc::new(RedisOnlineStore::connect(url, &config.project).await?)
            }
        };
        let definitions = Arc::new(registry.definitions().await?);
        Ok(Self {
            config,
            registry,
            online,
            definitions: RwLock::new(definitions),
            plans: Mutex::new(HashMap::new()),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn online_store(&self) -> &dyn OnlineStore {
        self.online.as_ref()
    }

    /// The applied definitions.
    pub fn definitions(&self) -> Arc<Definitions> {
        self.definitions
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |d| d.clone())
    }

    /// Re-reads the registry (another process may have applied); installs
    /// the definitions, and drops cached plans, only when they changed.
    /// Returns whether they did.
    pub async fn refresh(&self) -> Result<bool> {
        let fresh = self.registry.definitions().await?;
        if *self.definitions() == fresh {
            return Ok(false);
        }
        self.install(Arc::new(fresh));
        Ok(true)
    }

    /// Keeps a long-running server in step with `apply` run elsewhere:
    /// re-reads the registry every `every` (Feast's registry cache ttl).
    pub fn spawn_refresh(
        self: &Arc<Self>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(store) = store.upgrade() else { return };
                match store.refresh().await {
                    Ok(true) => {
                        tracing::info!("feature definitions changed in the registry; reloaded")
                    }
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "cannot re-read the feature registry"),
                }
            }
        })
    }

    fn install(&self, definitions: Arc<Definitions>) {
        match self.definitions.write() {
            Ok(mut d) => *d = definitions,
            Err(poisoned) => *poisoned.into_inner() = definitions,
        }
        match self.plans.lock() {
            Ok(mut plans) => plans.clear(),
            Err(poisoned) => poisoned.into_inner().clear(),
        }
    }

    /// Checks `definitions` against the sources' schemas, stores them, and
    /// clears the online rows of views that were deleted or changed schema.
    pub async fn apply(&self, definitions: Definitions) -> Result<Plan> {
        definitions.validate()?;
        self.check_sources(&definitions)?;
        let plan = self.registry.apply(&definitions).await?;
        for change in plan.changes.iter().filter(|c| c.kind == "feature_view") {
            if change.action == Action::Delete {
                self.online.drop_view(&change.name).await?;
            }
        }
        self.install(Arc::new(definitions));
        Ok(plan)
    }

    /// Every view's features, join keys and timestamps must be columns of
    /// its source, when the source exists (a push-only source may not yet).
    fn check_sources(&self, definitions: &Definitions) -> Result<()> {
        for view in definitions.feature_views.values() {
            let Some(source) = definitions.batch_source(view) else {
                continue;
            };
            let spec = crate::definitions::source_spec(&self.config.root, source)?;
            if !spec.path.exists() {
                tracing::warn!(view = %view.name, path = %spec.path.display(), "source does not exist yet");
                continue;
            }
            let schema = match offline::source_schema(&spec) {
                Ok(schema) => schema,
                // A push source's directory may hold no data yet.
                Err(FeatureError::NotFound(reason)) if spec.path.is_dir() => {
                    tracing::warn!(view = %view.name, %reason, "source holds no data yet");
                    continue;
                }
                Err(error) => return Err(error),
            };
            let mut needed: Vec<&str> = view.schema.iter().map(|f| f.name.as_str()).collect();
            let keys = definitions.join_keys(view);
            needed.extend(keys.iter().map(|(k, _)| k.as_str()));
            needed.push(source.timestamp_field.as_str());
            for column in needed {
                if schema.field_with_name(column).is_err() {
                    return Err(FeatureError::invalid(format!(
                        "feature view `{}`: source `{}` ({}) has no column `{column}`",
                        view.name,
                        source.name,
                        spec.path.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Removes the project's registry entries and online rows.
    pub async fn teardown(&self) -> Result<()> {
        for view in self.definitions().feature_views.keys() {
            self.online.drop_view(view).await?;
        }
        self.registry.teardown().await?;
        self.install(Arc::new(Definitions::default()));
        Ok(())
    }

    /// The features a selection resolves to.
    pub fn resolve(&self, selection: &FeatureSelection) -> Result<Vec<FeatureRef>> {
        let definitions = self.definitions();
        match selection {
            FeatureSelection::Refs(refs) => definitions.resolve_refs(refs),
            FeatureSelection::Service(name) => definitions.service(name),
        }
    }

    /// Point-in-time correct training data for `entity` (a table with the
    /// views' join keys and an `event_timestamp` column). On-demand features
    /// are computed from their inputs' point-in-time values and the entity
    /// table's request-data columns.
    pub fn get_historical(
        &self,
        entity: &RecordBatch,
        selection: &FeatureSelection,
        full_feature_names: bool,
    ) -> Result<RecordBatch> {
        let refs = self.resolve(selection)?;
        let definitions = self.definitions();
        check_unique_outputs(entity, &refs, full_feature_names)?;
        // What to join: the requested stored features under their output
        // names, plus on-demand inputs not requested, under hidden names.
        let mut fetch: Vec<(FeatureRef, String)> = Vec::new();
        let mut on_demand = Vec::new();
        for reference in &refs {
            match definitions.on_demand_feature_views.get(&reference.view) {
                None => fetch.push((reference.clone(), reference.output_name(full_feature_names))),
                Some(odfv) => {
                    if !on_demand.iter().any(|(name, _)| *name == odfv.name) {
                        on_demand
                            .push((odfv.name.clone(), definitions.on_demand_expressions(odfv)?));
                    }
                }
            }
        }
        for (_, plan) in &on_demand {
            for input in &plan.view_inputs {
                if !fetch.iter().any(|(r, _)| r == input) {
                    let hidden = format!("__keel_input__{}__{}", input.view, input.feature);
                    fetch.push((input.clone(), hidden));
                }
            }
        }
        let mut by_view: Vec<(String, Vec<&(FeatureRef, String)>)> = Vec::new();
        for item in &fetch {
            match by_view.iter_mut().find(|(v, _)| *v == item.0.view) {
                Some((_, list)) => list.push(item),
                None => by_view.push((item.0.view.clone(), vec![item])),
            }
        }
        let mut queries = Vec::new();
        for (view_name, features) in &by_view {
            let view = definitions.view(view_name)?;
            let fields: Vec<_> = features
                .iter()
                .filter_map(|(r, _)| view.field(&r.feature))
                .collect();
            let names = features.iter().map(|(_, name)| name.clone()).collect();
            queries.push(definitions.view_query(&self.config.root, view, &fields, names)?);
        }
        let joined = if queries.is_empty() {
            entity.clone()
        } else {
            offline::get_historical(entity, "event_timestamp", &queries)?
        };
        let column_of = |reference: &FeatureRef| -> Result<ArrayRef> {
            let (_, name) = fetch.iter().find(|(r, _)| r == reference).ok_or_else(|| {
                FeatureError::invalid(format!(
                    "`{}:{}` was not fetched",
                    reference.view, reference.feature
                ))
            })?;
            joined
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| FeatureError::invalid(format!("retrieval lost column `{name}`")))
        };
        // Compute each on-demand view once, over all its inputs.
        let mut computed: HashMap<(String, String), ArrayRef> = HashMap::new();
        for (name, plan) in &on_demand {
            let mut fields = Vec::new();
            let mut arrays = Vec::new();
            for input in &plan.view_inputs {
                let array = column_of(input)?;
                fields.push(ArrowField::new(
                    &input.feature,
                    array.data_type().clone(),
                    true,
                ));
                arrays.push(array);
            }
            for (column, value_type) in &plan.request_inputs {
                let array = entity.column_by_name(column).ok_or_else(|| {
                    FeatureError::invalid(format!(
                        "on-demand feature view `{name}` needs request data `{column}`: the entity table has no such column"
                    ))
                })?;
                let array = arrow::compute::cast(array, &value_type.arrow())?;
                fields.push(ArrowField::new(column, array.data_type().clone(), true));
                arrays.push(array);
            }
            let inputs = RecordBatch::try_new_with_options(
                Arc::new(Schema::new(fields)),
                arrays,
                &arrow::array::RecordBatchOptions::new().with_row_count(Some(entity.num_rows())),
            )?;
            for (feature, _, expr) in &plan.outputs {
                computed.insert((name.clone(), feature.clone()), expr.evaluate(&inputs)?);
            }
        }
        // Entity columns, then the features in request order.
        let mut fields: Vec<ArrowField> = entity
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut arrays: Vec<ArrayRef> = entity.columns().to_vec();
        for reference in &refs {
            let array = match computed.get(&(reference.view.clone(), reference.feature.clone())) {
                Some(array) => array.clone(),
                None => column_of(reference)?,
            };
            fields.push(ArrowField::new(
                reference.output_name(full_feature_names),
                array.data_type().clone(),
                true,
            ));
            arrays.push(array);
        }
        Ok(RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(entity.num_rows())),
        )?)
    }

    fn online_plan(
        &self,
        selection: &FeatureSelection,
        full_feature_names: bool,
    ) -> Result<Arc<OnlinePlan>> {
        let key = (selection.clone(), full_feature_names);
        if let Ok(plans) = self.plans.lock() {
            if let Some(plan) = plans.get(&key) {
                return Ok(plan.clone());
            }
        }
        let definitions = self.definitions();
        let refs = self.resolve(selection)?;
        let mut views: Vec<PlannedView> = Vec::new();
        let mut view_index = |name: &str| -> Result<usize> {
            if let Some(index) = views.iter().position(|v| v.name == name) {
                return Ok(index);
            }
            let view = definitions.view(name)?;
            views.push(PlannedView {
                name: view.name.clone(),
                join_keys: definitions.join_keys(view),
                ttl_micros: view.ttl * 1_000_000,
            });
            Ok(views.len() - 1)
        };
        let mut outputs = Vec::new();
        let mut on_demand: Vec<PlannedOnDemand> = Vec::new();
        for reference in refs {
            let output = reference.output_name(full_feature_names);
            let Some(odfv) = definitions.on_demand_feature_views.get(&reference.view) else {
                let index = view_index(&reference.view)?;
                outputs.push(PlannedOutput::Stored(index, reference.feature, output));
                continue;
            };
            let odfv_index = match on_demand.iter().position(|o| o.name == odfv.name) {
                Some(index) => index,
                None => {
                    let plan = definitions.on_demand_expressions(odfv)?;
                    let mut inputs = Vec::new();
                    for input in &plan.view_inputs {
                        let dtype = definitions
                            .view(&input.view)?
                            .field(&input.feature)
                            .map_or(ValueType::String, |f| f.dtype);
                        inputs.push((view_index(&input.view)?, dtype));
                    }
                    on_demand.push(PlannedOnDemand {
                        name: odfv.name.clone(),
                        plan,
                        inputs,
                    });
                    on_demand.len() - 1
                }
            };
            let output_index = on_demand[odfv_index]
                .plan
                .outputs
                .iter()
                .position(|(name, _, _)| *name == reference.feature)
                .ok_or_else(|| {
                    FeatureError::not_found(format!(
                        "on-demand feature view `{}` has no feature `{}`",
                        odfv.name, reference.feature
                    ))
                })?;
            outputs.push(PlannedOutput::OnDemand(odfv_index, output_index, output));
        }
        let plan = Arc::new(OnlinePlan {
            views,
            outputs,
            on_demand,
        });
        if let Ok(mut plans) = self.plans.lock() {
            plans.insert(key, plan.clone());
        }
        Ok(plan)
    }

    /// Feast's `get-online-features`: the latest values for each entity row,
    /// `OUTSIDE_MAX_AGE` (and a null value) where a row is older than its ttl.
    pub async fn get_online(
        &self,
        selection: &FeatureSelection,
        entities: &[(String, Vec<Json>)],
        full_feature_names: bool,
    ) -> Result<OnlineResponse> {
        let now = chrono::Utc::now().timestamp_micros();
        self.get_online_at(selection, entities, full_feature_names, now)
            .await
    }

    /// `get_online` as if it were `now` (microseconds): ttl is judged against it.
    pub async fn get_online_at(
        &self,
        selection: &FeatureSelection,
        entities: &[(String, Vec<Json>)],
        full_feature_names: bool,
        now: i64,
    ) -> Result<OnlineResponse> {
        let plan = self.online_plan(selection, full_feature_names)?;
        let rows = match entities.first() {
            Some((_, values)) => values.len(),
            None => return Err(FeatureError::invalid("no entities given")),
        };
        for (name, values) in entities {
            if values.len() != rows {
                return Err(FeatureError::invalid(format!(
                    "entity column `{name}` has {} values where `{}` has {rows}",
                    values.len(),
                    entities[0].0
                )));
            }
        }
        let mut keys_per_view = Vec::with_capacity(plan.views.len());
        for view in &plan.views {
            let mut columns = Vec::with_capacity(view.join_keys.len());
            for (key, value_type) in &view.join_keys {
                let Some((_, values)) = entities.iter().find(|(n, _)| n == key) else {
                    return Err(FeatureError::invalid(format!(
                        "entity column `{key}` is missing (feature view `{}` is keyed by it)",
                        view.name
                    )));
                };
                columns.push((key, *value_type, values));
            }
            let mut keys = Vec::with_capacity(rows);
            for row in 0..rows {
                let mut key = Vec::with_capacity(16);
                for (name, value_type, values) in &columns {
                    values::push_key_json(&mut key, *value_type, &values[row]).ok_or_else(
                        || {
                            FeatureError::invalid(format!(
                                "entity column `{name}`: {} is not a valid {value_type} key",
                                values[row]
                            ))
                        },
                    )?;
                }
                keys.push(key);
            }
            keys_per_view.push(keys);
        }
        let reads: Vec<ViewRead> = plan
            .views
            .iter()
            .zip(&keys_per_view)
            .map(|(view, keys)| ViewRead {
                view: &view.name,
                keys,
            })
            .collect();
        let stored = self.online.read_batch(&reads).await?;
        // Parse each stored row once, whatever number of its features are asked.
        let parsed: Vec<Vec<ParsedRow>> = stored
            .into_iter()
            .zip(&plan.views)
            .map(|(rows, view)| {
                rows.into_iter()
                    .map(|row| {
                        row.map(|row| {
                            let fields = serde_json::from_slice::<Map<String, Json>>(&row.values)
                                .unwrap_or_default();
                            let expired =
                                view.ttl_micros > 0 && now - row.event_ts > view.ttl_micros;
                            (values::format_timestamp(row.event_ts), fields, expired)
                        })
                    })
                    .collect()
            })
            .collect();

        let mut feature_names = Vec::with_capacity(entities.len() + plan.outputs.len());
        let mut results = Vec::with_capacity(entities.len() + plan.outputs.len());
        for (name, values) in entities {
            feature_names.push(name.clone());
            let key_type = plan
                .views
                .iter()
                .flat_map(|v| &v.join_keys)
                .find(|(key, _)| key == name)
                .map(|(_, value_type)| value_type);
            let values = match key_type {
                Some(value_type) => values
                    .iter()
                    .map(|v| values::normalize_key_json(*value_type, v))
                    .collect(),
                None => values.clone(),
            };
            results.push(OnlineColumn {
                values,
                statuses: vec!["PRESENT"; rows],
                event_timestamps: vec![EPOCH.to_owned(); rows],
            });
        }
        let computed = compute_on_demand(&plan, &parsed, entities, rows)?;
        for planned in &plan.outputs {
            let mut column = OnlineColumn {
                values: Vec::with_capacity(rows),
                statuses: Vec::with_capacity(rows),
                event_timestamps: Vec::with_capacity(rows),
            };
            let output = match planned {
                PlannedOutput::Stored(view_index, feature, output) => {
                    for row in &parsed[*view_index] {
                        let (value, status, ts) = match row {
                            None => (Json::Null, "NOT_FOUND", EPOCH.to_owned()),
                            // A stored null is PRESENT with a null value, as Feast answers.
                            Some((ts, _, true)) => (Json::Null, "OUTSIDE_MAX_AGE", ts.clone()),
                            Some((ts, fields, false)) => (
                                fields.get(feature).cloned().unwrap_or(Json::Null),
                                "PRESENT",
                                ts.clone(),
                            ),
                        };
                        column.values.push(value);
                        column.statuses.push(status);
                        column.event_timestamps.push(ts);
                    }
                    output
                }
                PlannedOutput::OnDemand(odfv_index, output_index, output) => {
                    column.values = computed[*odfv_index][*output_index].clone();
                    column.statuses = vec!["PRESENT"; rows];
                    column.event_timestamps = vec![EPOCH.to_owned(); rows];
                    output
                }
            };
            feature_names.push(output.clone());
            results.push(column);
        }
        Ok(OnlineResponse {
            metadata: OnlineMetadata { feature_names },
            results,
        })
    }

    /// Writes column-major rows of one view to the online store (Feast's
    /// `write-to-online-store`). Returns the number of rows written (rows
    /// older than what is stored are skipped).
    pub async fn write_to_online(&self, view_name: &str, df: &JsonColumns) -> Result<usize> {
        let definitions = self.definitions();
        let view = definitions.view(view_name)?;
        let batch = self.batch_from_json(&definitions, view, df)?;
        let rows = online_rows(
            &definitions,
            view,
            &batch,
            &self.timestamp_field(&definitions, view)?,
        )?;
        self.write_rows(view_name, &rows).await
    }

    fn timestamp_field(&self, definitions: &Definitions, view: &FeatureView) -> Result<String> {
        definitions
            .batch_source(view)
            .map(|s| s.timestamp_field.clone())
            .ok_or_else(|| {
                FeatureError::invalid(format!("feature view `{}` has no source", view.name))
            })
    }

    async fn write_rows(&self, view: &str, rows: &[OnlineRow]) -> Result<usize> {
        let mut written = 0;
        for chunk in rows.chunks(WRITE_CHUNK) {
            written += self.online.write(view, chunk).await?;
        }
        Ok(written)
    }

    /// Feast's `push`: rows for every view fed by the push source, to the
    /// online store, the offline source, or both.
    pub async fn push(&self, push_source: &str, df: &JsonColumns, to: PushTarget) -> Result<usize> {
        let definitions = self.definitions();
        let push = definitions.push_sources.get(push_source).ok_or_else(|| {
            FeatureError::not_found(format!("push source `{push_source}` is not defined"))
        })?;
        let views: Vec<&FeatureView> = definitions
            .feature_views
            .values()
            .filter(|v| v.source == push.name)
            .collect();
        if views.is_empty() {
            return Err(FeatureError::invalid(format!(
                "push source `{push_source}` feeds no feature view"
            )));
        }
        let source = definitions.sources.get(&push.batch_source).ok_or_else(|| {
            FeatureError::not_found(format!("source `{}` is not defined", push.batch_source))
        })?;
        let mut written = 0;
        if to != PushTarget::Offline {
            for view in &views {
                let batch = self.batch_from_json(&definitions, view, df)?;
                let rows = online_rows(&definitions, view, &batch, &source.timestamp_field)?;
                written += self.write_rows(&view.name, &rows).await?;
            }
        }
        if to != PushTarget::Online {
            let batch = self.offline_batch_from_json(&definitions, &views, source, df)?;
            let spec = crate::definitions::source_spec(&self.config.root, source)?;
            let rows = batch.num_rows();
            tokio::task::spawn_blocking(move || offline::append_rows(&spec, &batch))
                .await
                .map_err(|e| FeatureError::Online(format!("offline push failed: {e}")))??;
            if to == PushTarget::Offline {
                written = rows;
            }
        }
        Ok(written)
    }

    /// A batch with the view's join keys, its source's timestamp and the
    /// features present in `df` (features absent from `df` are absent here).
    fn batch_from_json(
        &self,
        definitions: &Definitions,
        view: &FeatureView,
        df: &JsonColumns,
    ) -> Result<RecordBatch> {
        let timestamp_field = self.timestamp_field(definitions, view)?;
        let mut columns: Vec<(String, ValueType)> = definitions.join_keys(view);
        columns.push((timestamp_field, ValueType::UnixTimestamp));
        let mut present_features = 0;
        for field in &view.schema {
            if df.contains_key(&field.name) {
                columns.push((field.name.clone(), field.dtype));
                present_features += 1;
            }
        }
        if present_features == 0 {
            return Err(FeatureError::invalid(format!(
                "df holds none of feature view `{}`'s features",
                view.name
            )));
        }
        json_batch(df, &columns)
    }

    /// The rows of a push as the batch source stores them: every view's
    /// features, join keys, timestamp and (if the source has one) created
    /// timestamp, filled with now when the push does not carry it.
    fn offline_batch_from_json(
        &self,
        definitions: &Definitions,
        views: &[&FeatureView],
        source: &crate::definitions::FileSource,
        df: &JsonColumns,
    ) -> Result<RecordBatch> {
        let mut columns: Vec<(String, ValueType)> = Vec::new();
        let mut add = |name: &str, value_type: ValueType| {
            if !columns.iter().any(|(n, _)| n == name) {
                columns.push((name.to_owned(), value_type));
            }
        };
        for view in views {
            for (key, value_type) in definitions.join_keys(view) {
                add(&key, value_type);
            }
        }
        add(&source.timestamp_field, ValueType::UnixTimestamp);
        for view in views {
            for field in &view.schema {
                add(&field.name, field.dtype);
            }
        }
        let mut df = df.clone();
        let rows = df.values().next().map_or(0, Vec::len);
        if let Some(created) = &source.created_timestamp_column {
            add(created, ValueType::UnixTimestamp);
            df.entry(created.clone()).or_insert_with(|| {
                let now = values::format_timestamp(chrono::Utc::now().timestamp_micros());
                vec![Json::String(now); rows]
            });
        }
        for (name, _) in &columns {
            df.entry(name.clone())
                .or_insert_with(|| vec![Json::Null; rows]);
        }
        json_batch(&df, &columns)
    }

    /// Materializes the online views over [start, end] (both included, as in
    /// Feast): the latest row per
    /// key in the window, never replacing a newer stored value. Views run in
    /// parallel; each window is recorded in the registry.
    pub async fn materialize(
        &self,
        start: i64,
        end: i64,
        views: Option<&[String]>,
        progress: Option<&Progress<'_>>,
    ) -> Result<Vec<MaterializedView>> {
        let windows = self
            .online_views(views)?
            .into_iter()
            .map(|v| (v, start))
            .collect();
        self.materialize_windows(windows, end, progress).await
    }

    /// Materializes each view from where its last materialization ended (or,
    /// the first time, as Feast does: from now - ttl, or now - 52 weeks
    /// without a ttl) to `end`.
    pub async fn materialize_incremental(
        &self,
        end: i64,
        views: Option<&[String]>,
        progress: Option<&Progress<'_>>,
    ) -> Result<Vec<MaterializedView>> {
        let mut windows = Vec::new();
        let now = chrono::Utc::now().timestamp_micros();
        for view in self.online_views(views)? {
            let start = match self.registry.most_recent_end(&view.name).await? {
                Some(previous) => previous,
                // Feast's first window: the ttl back from now, or 52 weeks without a ttl.
                None if view.ttl > 0 => now - view.ttl * 1_000_000,
                None => now - FIRST_WINDOW_WITHOUT_TTL,
            };
            windows.push((view, start));
        }
        self.materialize_windows(windows, end, progress).await
    }

    fn online_views(&self, names: Option<&[String]>) -> Result<Vec<FeatureView>> {
        let definitions = self.definitions();
        match names {
            Some(names) if !names.is_empty() => {
                names.iter().map(|n| definitions.view(n).cloned()).collect()
            }
            _ => Ok(definitions
                .feature_views
                .values()
                .filter(|v| v.online)
                .cloned()
                .collect()),
        }
    }

    async fn materialize_windows(
        &self,
        windows: Vec<(FeatureView, i64)>,
        end: i64,
        progress: Option<&Progress<'_>>,
    ) -> Result<Vec<MaterializedView>> {
        let definitions = self.definitions();
        // Read every view's window in parallel (blocking Parquet work), then write.
        let mut reads = Vec::new();
        for (view, start) in &windows {
            if *start >= end {
                return Err(FeatureError::invalid(format!(
                    "feature view `{}`: the window start {} is not before its end {}",
                    view.name,
                    values::format_timestamp(*start),
                    values::format_timestamp(end)
                )));
            }
            let fields: Vec<_> = view.schema.iter().collect();
            let names = view.schema.iter().map(|f| f.name.clone()).collect();
            let query = definitions.view_query(&self.config.root, view, &fields, names)?;
            let start = *start;
            // Feast's window includes both ends; read_latest's end is exclusive.
            reads.push(tokio::task::spawn_blocking(move || {
                offline::read_latest(&query, start, end.saturating_add(1))
            }));
        }
        let mut reports = Vec::new();
        for ((view, start), read) in windows.iter().zip(reads) {
            let batch = read
                .await
                .map_err(|e| FeatureError::Online(format!("materialization failed: {e}")))??;
            let rows = online_rows(&definitions, view, &batch, "event_timestamp")?;
            let mut written = 0;
            for chunk in rows.chunks(WRITE_CHUNK) {
                written += self.online.write(&view.name, chunk).await?;
                if let Some(progress) = progress {
                    progress(&view.name, written, rows.len());
                }
            }
            if rows.is_empty() {
                if let Some(progress) = progress {
                    progress(&view.name, 0, 0);
                }
            }
            self.registry
                .record_materialization(
                    &view.name,
                    Interval {
                        start: *start,
                        end,
                        rows_written: written as i64,
                    },
                )
                .await?;
            reports.push(MaterializedView {
                view: view.name.clone(),
                start: *start,
                end,
                rows_read: rows.len(),
                rows_written: written,
            });
        }
        Ok(reports)
    }
}

impl FeatureStore {
    /// Where a training set's features came from: each feature reference,
    /// its view's registry version and its source file(s) with size and
    /// modification time. `digest` is a SHA-256 over all of it, so two
    /// training sets built from the same definitions and data share it.
    pub async fn lineage(&self, selection: &FeatureSelection, entity_rows: usize) -> Result<Json> {
        let refs = self.resolve(selection)?;
        let definitions = self.definitions();
        let versions = self.registry.versions().await?;
        let mut views = Map::new();
        let mut on_demand = Map::new();
        // On-demand views record their version and bring their source views in.
        let mut view_names: Vec<String> = Vec::new();
        for reference in &refs {
            match definitions.on_demand_feature_views.get(&reference.view) {
                Some(odfv) => {
                    let version = versions
                        .get(&("on_demand_feature_view".to_owned(), odfv.name.clone()))
                        .copied()
                        .unwrap_or(0);
                    on_demand.insert(
                        odfv.name.clone(),
                        serde_json::json!({"version": version, "expressions": odfv.expressions}),
                    );
                    view_names.extend(
                        odfv.sources
                            .iter()
                            .filter(|s| definitions.feature_views.contains_key(*s))
                            .cloned(),
                    );
                }
                None => view_names.push(reference.view.clone()),
            }
        }
        for view_name in &view_names {
            if views.contains_key(view_name) {
                continue;
            }
            let view = definitions.view(view_name)?;
            let version = versions
                .get(&("feature_view".to_owned(), view.name.clone()))
                .copied()
                .unwrap_or(0);
            let mut files = Vec::new();
            if let Some(source) = definitions.batch_source(view) {
                let spec = crate::definitions::source_spec(&self.config.root, source)?;
                let mut paths = vec![spec.path.clone()];
                if spec.path.is_dir() {
                    paths = std::fs::read_dir(&spec.path)
                        .map_err(|e| FeatureError::io(&spec.path, e))?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file())
                        .collect();
                    paths.sort();
                }
                for path in paths {
                    let meta = std::fs::metadata(&path).map_err(|e| FeatureError::io(&path, e))?;
                    let modified = meta
                        .modified()
                        .ok()
                        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_micros() as i64);
                    files.push(serde_json::json!({
                        "path": path.strip_prefix(&self.config.root).unwrap_or(&path).display().to_string(),
                        "size": meta.len(),
                        "modified": values::format_timestamp(modified),
                    }));
                }
            }
            views.insert(
                view.name.clone(),
                serde_json::json!({
                    "version": version,
                    "source": definitions.batch_source(view).map(|s| s.name.clone()),
                    "files": files,
                }),
            );
        }
        let features: Vec<String> = refs
            .iter()
            .map(|r| format!("{}:{}", r.view, r.feature))
            .collect();
        let mut lineage = serde_json::json!({
            "project": self.config.project,
            "features": features,
            "feature_views": views,
            "entity_rows": entity_rows,
        });
        if !on_demand.is_empty() {
            lineage["on_demand_feature_views"] = Json::Object(on_demand);
        }
        if let FeatureSelection::Service(name) = selection {
            let version = versions
                .get(&("feature_service".to_owned(), name.clone()))
                .copied()
                .unwrap_or(0);
            lineage["feature_service"] = serde_json::json!({"name": name, "version": version});
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(lineage.to_string().as_bytes());
        lineage["digest"] = Json::String(hex::encode(digest));
        Ok(lineage)
    }
}

/// An entity table from column-major JSON: join keys typed as their
/// entities declare, `event_timestamp` as a timestamp, other columns carried
/// as JSON-inferred types (integers, floats, strings, booleans).
pub fn entity_batch_from_json(
    store: &FeatureStore,
    selection: &FeatureSelection,
    columns: &[(String, Vec<Json>)],
) -> Result<RecordBatch> {
    let refs = store.resolve(selection)?;
    let definitions = store.definitions();
    let mut key_types: HashMap<String, ValueType> = HashMap::new();
    for reference in &refs {
        if let Ok(view) = definitions.view(&reference.view) {
            key_types.extend(definitions.join_keys(view));
        }
    }
    let mut typed = Vec::with_capacity(columns.len());
    for (name, values) in columns {
        let value_type = if name == "event_timestamp" {
            ValueType::UnixTimestamp
        } else if let Some(t) = key_types.get(name) {
            *t
        } else if values.iter().all(|v| v.is_i64() || v.is_null()) {
            ValueType::Int64
        } else if values.iter().all(|v| v.is_number() || v.is_null()) {
            ValueType::Float64
        } else if values.iter().all(|v| v.is_boolean() || v.is_null()) {
            ValueType::Bool
        } else {
            ValueType::String
        };
        typed.push((name.clone(), value_type));
    }
    if !typed.iter().any(|(n, _)| n == "event_timestamp") {
        return Err(FeatureError::invalid(
            "entities need an `event_timestamp` column",
        ));
    }
    let df: JsonColumns = columns.iter().cloned().collect();
    let batch = json_batch(&df, &typed)?;
    Ok(batch)
}

/// Evaluates a request's on-demand views: `result[odfv][output][row]`. An
/// input from a missing or expired row is null.
fn compute_on_demand(
    plan: &OnlinePlan,
    parsed: &[Vec<ParsedRow>],
    entities: &[(String, Vec<Json>)],
    rows: usize,
) -> Result<Vec<Vec<Vec<Json>>>> {
    let mut computed = Vec::with_capacity(plan.on_demand.len());
    for odfv in &plan.on_demand {
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for (input, (view_index, dtype)) in odfv.plan.view_inputs.iter().zip(&odfv.inputs) {
            let values: Vec<Json> = parsed[*view_index]
                .iter()
                .map(|row| match row {
                    Some((_, fields, false)) => {
                        fields.get(&input.feature).cloned().unwrap_or(Json::Null)
                    }
                    _ => Json::Null,
                })
                .collect();
            arrays.push(dtype.array_from_json(&input.feature, &values)?);
            fields.push(ArrowField::new(&input.feature, dtype.arrow(), true));
        }
        for (column, dtype) in &odfv.plan.request_inputs {
            let Some((_, values)) = entities.iter().find(|(name, _)| name == column) else {
                return Err(FeatureError::invalid(format!(
                    "on-demand feature view `{}` needs request data `{column}`: add it to `entities`",
                    odfv.name
                )));
            };
            arrays.push(dtype.array_from_json(column, values)?);
            fields.push(ArrowField::new(column, dtype.arrow(), true));
        }
        let inputs = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        let mut outputs = Vec::with_capacity(odfv.plan.outputs.len());
        for (_, dtype, expr) in &odfv.plan.outputs {
            let array = expr.evaluate(&inputs)?;
            outputs.push(
                (0..rows)
                    .map(|row| dtype.to_json(array.as_ref(), row))
                    .collect(),
            );
        }
        computed.push(outputs);
    }
    Ok(computed)
}

/// Output names must not collide with each other or the entity columns
/// (Feast asks for `full_feature_names` then).
fn check_unique_outputs(
    entity: &RecordBatch,
    refs: &[FeatureRef],
    full_feature_names: bool,
) -> Result<()> {
    let mut seen: HashMap<String, String> = entity
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), "the entity table".to_owned()))
        .collect();
    for reference in refs {
        let name = reference.output_name(full_feature_names);
        let owner = format!("`{}:{}`", reference.view, reference.feature);
        if let Some(previous) = seen.insert(name.clone(), owner.clone()) {
            return Err(FeatureError::invalid(format!(
                "output column `{name}` of {owner} collides with {previous}; use full feature names"
            )));
        }
    }
    Ok(())
}

/// A record batch from column-major JSON with the given columns and types.
fn json_batch(df: &JsonColumns, columns: &[(String, ValueType)]) -> Result<RecordBatch> {
    let rows = df.values().next().map_or(0, Vec::len);
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (name, value_type) in columns {
        let values = df
            .get(name)
            .ok_or_else(|| FeatureError::invalid(format!("df has no column `{name}`")))?;
        if values.len() != rows {
            return Err(FeatureError::invalid(format!(
                "df column `{name}` has {} values, others have {rows}",
                values.len()
            )));
        }
        arrays.push(value_type.array_from_json(name, values)?);
        fields.push(ArrowField::new(name, value_type.arrow(), true));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// Online rows of `view` from a batch holding its join keys, a timestamp
/// column named `timestamp_column` and some of its features.
fn online_rows(
    definitions: &Definitions,
    view: &FeatureView,
    batch: &RecordBatch,
    timestamp_column: &str,
) -> Result<Vec<OnlineRow>> {
    let keys = definitions.join_keys(view);
    let key_columns: Vec<&ArrayRef> = keys
        .iter()
        .map(|(k, _)| {
            batch
                .column_by_name(k)
                .ok_or_else(|| FeatureError::invalid(format!("no join key column `{k}`")))
        })
        .collect::<Result<_>>()?;
    let timestamps = batch.column_by_name(timestamp_column).ok_or_else(|| {
        FeatureError::invalid(format!("no timestamp column `{timestamp_column}`"))
    })?;
    let timestamps = arrow::compute::cast(
        timestamps,
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )?;
    let timestamps = timestamps
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .ok_or_else(|| FeatureError::invalid("timestamps did not convert"))?;
    let features: Vec<(&str, ValueType, ArrayRef)> = view
        .schema
        .iter()
        .filter_map(|f| {
            batch.column_by_name(&f.name).map(|c| {
                let cast = arrow::compute::cast(c, &f.dtype.arrow()).unwrap_or_else(|_| c.clone());
                (f.name.as_str(), f.dtype, cast)
            })
        })
        .collect();
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut key = Vec::with_capacity(16);
        let mut valid = true;
        for column in &key_columns {
            valid &= values::push_key_arrow(&mut key, column.as_ref(), row).is_some();
        }
        if !valid || timestamps.is_null(row) {
            continue; // a row without a key or a time cannot be served
        }
        let mut object = Map::with_capacity(features.len());
        for (name, value_type, array) in &features {
            object.insert((*name).to_owned(), value_type.to_json(array.as_ref(), row));
        }
        rows.push(OnlineRow {
            key,
            event_ts: timestamps.value(row),
            values: serde_json::to_vec(&object).map_err(|e| FeatureError::Online(e.to_string()))?,
        });
    }
    Ok(rows)
}
