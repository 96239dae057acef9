//! Feature definitions: Feast's data model written as YAML. Every `*.yaml` /
//! `*.yml` file of the repository (except `feature_store.yaml`, hidden
//! directories and `data/`) whose top level holds one of the sections below is
//! a definitions file:
//!
//! ```yaml
//! entities:
//!   - name: driver
//!     join_keys: [driver_id]
//!     value_type: INT64
//! sources:
//!   - name: driver_stats_source
//!     path: data/driver_stats.parquet       # a file or a directory; relative to the repository
//!     timestamp_field: event_timestamp
//!     created_timestamp_column: created
//!     field_mapping: {raw_rate: conv_rate}
//! push_sources:
//!   - name: driver_stats_push
//!     batch_source: driver_stats_source
//! feature_views:
//!   - name: driver_stats
//!     entities: [driver]
//!     ttl: 1d                               # 0 (the default): no ttl
//!     source: driver_stats_push             # a source or a push source
//!     schema:
//!       - {name: conv_rate, dtype: Float32}
//! feature_services:
//!   - name: driver_activity
//!     features:
//!       - driver_stats: [conv_rate]         # or `driver_stats` for all its features
//! ```
//!
//! Invariant: a `Definitions` value that `validate` accepted has unique names
//! per kind, and every reference (entity, source, view, feature) resolves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::CONFIG_FILE;
use crate::offline::{FileFormat, SourceSpec, ViewQuery};
use crate::values::ValueType;
use crate::{FeatureError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    pub name: String,
    /// Feast allows one join key per entity; Keel too. Defaults to the name.
    #[serde(default)]
    pub join_keys: Vec<String>,
    #[serde(default = "default_value_type")]
    pub value_type: ValueType,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

fn default_value_type() -> ValueType {
    ValueType::Int64
}

impl Entity {
    pub fn join_key(&self) -> &str {
        self.join_keys.first().map_or(&self.name, String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub name: String,
    pub path: String,
    /// `parquet` or `csv`; inferred from the path's extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_format: Option<String>,
    pub timestamp_field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_timestamp_column: Option<String>,
    /// Source column name -> the name definitions use.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub field_mapping: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSource {
    pub name: String,
    /// The file source offline pushes append to and historical retrieval reads.
    pub batch_source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    pub dtype: ValueType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureView {
    pub name: String,
    pub entities: Vec<String>,
    /// `0` (no ttl), seconds, or a duration such as `90s`, `15m`, `2h`, `7d`, `1w`.
    #[serde(default = "zero_ttl", with = "ttl_serde")]
    pub ttl: i64,
    #[serde(default = "yes")]
    pub online: bool,
    pub source: String,
    pub schema: Vec<Field>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

fn zero_ttl() -> i64 {
    0
}

fn yes() -> bool {
    true
}

impl FeatureView {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.schema.iter().find(|f| f.name == name)
    }
}

/// Request data an on-demand view reads: values that arrive with the
/// request (online: in `entities`; historical: columns of the entity table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSource {
    pub name: String,
    pub schema: Vec<Field>,
}

/// Features computed at request time from other views' features and request
/// data, each by a SQL expression (`crate::expr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnDemandFeatureView {
    pub name: String,
    /// Feature views and request sources whose columns the expressions read.
    pub sources: Vec<String>,
    pub schema: Vec<Field>,
    /// Output feature -> SQL expression over the sources' columns.
    pub expressions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl OnDemandFeatureView {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.schema.iter().find(|f| f.name == name)
    }
}

/// One entry of a feature service: a whole view, `view:feature`, or
/// `{view: [features]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceEntry {
    Reference(String),
    Projection(BTreeMap<String, Vec<String>>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureService {
    pub name: String,
    pub features: Vec<ServiceEntry>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// The sections of one definitions file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionsFile {
    #[serde(default)]
    entities: Vec<Entity>,
    #[serde(default)]
    sources: Vec<FileSource>,
    #[serde(default)]
    push_sources: Vec<PushSource>,
    #[serde(default)]
    feature_views: Vec<FeatureView>,
    #[serde(default)]
    feature_services: Vec<FeatureService>,
    #[serde(default)]
    request_sources: Vec<RequestSource>,
    #[serde(default)]
    on_demand_feature_views: Vec<OnDemandFeatureView>,
}

const SECTIONS: [&str; 7] = [
    "entities",
    "sources",
    "push_sources",
    "feature_views",
    "feature_services",
    "request_sources",
    "on_demand_feature_views",
];

/// Everything a repository defines, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Definitions {
    pub entities: BTreeMap<String, Entity>,
    pub sources: BTreeMap<String, FileSource>,
    pub push_sources: BTreeMap<String, PushSource>,
    pub feature_views: BTreeMap<String, FeatureView>,
    pub feature_services: BTreeMap<String, FeatureService>,
    pub request_sources: BTreeMap<String, RequestSource>,
    pub on_demand_feature_views: BTreeMap<String, OnDemandFeatureView>,
}

/// A resolved feature reference: view and feature name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeatureRef {
    pub view: String,
    pub feature: String,
}

impl FeatureRef {
    pub fn parse(text: &str) -> Result<Self> {
        match text.split_once(':') {
            Some((view, feature)) if !view.is_empty() && !feature.is_empty() => Ok(Self {
                view: view.to_owned(),
                feature: feature.to_owned(),
            }),
            _ => Err(FeatureError::invalid(format!(
                "feature reference `{text}` must be `feature_view:feature`"
            ))),
        }
    }

    /// The output name: `view__feature` with full feature names, else the feature.
    pub fn output_name(&self, full_feature_names: bool) -> String {
        if full_feature_names {
            format!("{}__{}", self.view, self.feature)
        } else {
            self.feature.clone()
        }
    }
}

impl Definitions {
    /// Reads and validates every definitions file under `root`.
    pub fn load(root: &Path) -> Result<Self> {
        let mut files = Vec::new();
        collect_yaml(root, root, &mut files)?;
        files.sort();
        let mut definitions = Self::default();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| FeatureError::io(&file, e))?;
            let shown = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            definitions.add_text(&shown, &text)?;
        }
        definitions.validate()?;
        Ok(definitions)
    }

    /// Adds one file's definitions; `origin` names it in errors. Text that is
    /// not a mapping with a definitions section is ignored (other YAML files).
    pub fn add_text(&mut self, origin: &str, text: &str) -> Result<()> {
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
            .map_err(|error| FeatureError::invalid(format!("{origin}: {error}")))?;
        let is_definitions = value
            .as_mapping()
            .is_some_and(|m| SECTIONS.iter().any(|s| m.contains_key(*s)));
        if !is_definitions {
            return Ok(());
        }
        let file: DefinitionsFile = serde_yaml_ng::from_value(value)
            .map_err(|error| FeatureError::invalid(format!("{origin}: {error}")))?;
        fn insert<T>(
            map: &mut BTreeMap<String, T>,
            kind: &str,
            origin: &str,
            items: Vec<T>,
            name: impl Fn(&T) -> &str,
        ) -> Result<()> {
            for item in items {
                let key = name(&item).to_owned();
                if map.insert(key.clone(), item).is_some() {
                    return Err(FeatureError::invalid(format!(
                        "{origin}: {kind} `{key}` is defined twice"
                    )));
                }
            }
            Ok(())
        }
        insert(&mut self.entities, "entity", origin, file.entities, |e| {
            &e.name
        })?;
        insert(&mut self.sources, "source", origin, file.sources, |s| {
            &s.name
        })?;
        insert(
            &mut self.push_sources,
            "push source",
            origin,
            file.push_sources,
            |s| &s.name,
        )?;
        insert(
            &mut self.feature_views,
            "feature view",
            origin,
            file.feature_views,
            |v| &v.name,
        )?;
        insert(
            &mut self.feature_services,
            "feature service",
            origin,
            file.feature_services,
            |s| &s.name,
        )?;
        insert(
            &mut self.request_sources,
            "request source",
            origin,
            file.request_sources,
            |s| &s.name,
        )?;
        insert(
            &mut self.on_demand_feature_views,
            "on-demand feature view",
            origin,
            file.on_demand_feature_views,
            |v| &v.name,
        )?;
        Ok(())
    }

    /// Checks every name and reference; the first problem found is the error.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(FeatureError::invalid(message));
        for entity in self.entities.values() {
            check_name("entity", &entity.name)?;
            if entity.join_keys.len() > 1 {
                return invalid(format!(
                    "entity `{}` has {} join keys; an entity has one (use several entities for a composite key)",
                    entity.name,
                    entity.join_keys.len()
                ));
            }
            if matches!(entity.value_type, ValueType::Float32 | ValueType::Float64) {
                return invalid(format!(
                    "entity `{}`: a {} cannot be a join key",
                    entity.name, entity.value_type
                ));
            }
        }
        for source in self.sources.values() {
            check_name("source", &source.name)?;
            source_format(source)?;
        }
        for push in self.push_sources.values() {
            check_name("push source", &push.name)?;
            if self.sources.contains_key(&push.name) {
                return invalid(format!(
                    "`{}` names both a source and a push source",
                    push.name
                ));
            }
            if !self.sources.contains_key(&push.batch_source) {
                return invalid(format!(
                    "push source `{}`: batch_source `{}` is not a defined source",
                    push.name, push.batch_source
                ));
            }
        }
        for view in self.feature_views.values() {
            check_name("feature view", &view.name)?;
            if view.entities.is_empty() {
                return invalid(format!("feature view `{}` names no entities", view.name));
            }
            let mut join_keys = BTreeSet::new();
            for entity in &view.entities {
                let Some(entity) = self.entities.get(entity) else {
                    return invalid(format!(
                        "feature view `{}`: entity `{entity}` is not defined",
                        view.name
                    ));
                };
                join_keys.insert(entity.join_key());
            }
            if self.batch_source(view).is_none() {
                return invalid(format!(
                    "feature view `{}`: source `{}` is neither a source nor a push source",
                    view.name, view.source
                ));
            }
            if view.schema.is_empty() {
                return invalid(format!("feature view `{}` has an empty schema", view.name));
            }
            let mut seen = BTreeSet::new();
            for field in &view.schema {
                if !seen.insert(field.name.as_str()) {
                    return invalid(format!(
                        "feature view `{}`: feature `{}` is listed twice",
                        view.name, field.name
                    ));
                }
                if join_keys.contains(field.name.as_str()) {
                    return invalid(format!(
                        "feature view `{}`: `{}` is a join key, not a feature",
                        view.name, field.name
                    ));
                }
            }
            if view.ttl < 0 {
                return invalid(format!("feature view `{}`: ttl is negative", view.name));
            }
        }
        for request in self.request_sources.values() {
            check_name("request source", &request.name)?;
            if request.schema.is_empty() {
                return invalid(format!(
                    "request source `{}` has an empty schema",
                    request.name
                ));
            }
        }
        for odfv in self.on_demand_feature_views.values() {
            check_name("on-demand feature view", &odfv.name)?;
            if self.feature_views.contains_key(&odfv.name) {
                return invalid(format!(
                    "`{}` names both a feature view and an on-demand feature view",
                    odfv.name
                ));
            }
            self.on_demand_expressions(odfv)?;
        }
        for service in self.feature_services.values() {
            check_name("feature service", &service.name)?;
            self.service_features(service)?;
        }
        Ok(())
    }

    /// The file source a view reads (through its push source, if it has one).
    pub fn batch_source(&self, view: &FeatureView) -> Option<&FileSource> {
        match self.push_sources.get(&view.source) {
            Some(push) => self.sources.get(&push.batch_source),
            None => self.sources.get(&view.source),
        }
    }

    pub fn view(&self, name: &str) -> Result<&FeatureView> {
        self.feature_views
            .get(name)
            .ok_or_else(|| FeatureError::not_found(format!("feature view `{name}` is not defined")))
    }

    /// Resolves `view:feature` references, checking each exists.
    pub fn resolve_refs<S: AsRef<str>>(&self, refs: &[S]) -> Result<Vec<FeatureRef>> {
        if refs.is_empty() {
            return Err(FeatureError::invalid("no features requested"));
        }
        refs.iter()
            .map(|text| {
                let reference = FeatureRef::parse(text.as_ref())?;
                let has_feature = match self.on_demand_feature_views.get(&reference.view) {
                    Some(odfv) => odfv.field(&reference.feature).is_some(),
                    None => self
                        .view(&reference.view)?
                        .field(&reference.feature)
                        .is_some(),
                };
                if !has_feature {
                    return Err(FeatureError::not_found(format!(
                        "feature view `{}` has no feature `{}`",
                        reference.view, reference.feature
                    )));
                }
                Ok(reference)
            })
            .collect()
    }

    /// The features a service selects, in its order.
    pub fn service_features(&self, service: &FeatureService) -> Result<Vec<FeatureRef>> {
        let mut refs = Vec::new();
        let whole_view = |name: &str, refs: &mut Vec<FeatureRef>| -> Result<()> {
            let schema = match self.on_demand_feature_views.get(name) {
                Some(odfv) => &odfv.schema,
                None => {
                    &self
                        .view(name)
                        .map_err(|_| {
                            FeatureError::invalid(format!(
                                "feature service `{}`: feature view `{name}` is not defined",
                                service.name
                            ))
                        })?
                        .schema
                }
            };
            refs.extend(schema.iter().map(|f| FeatureRef {
                view: name.to_owned(),
                feature: f.name.clone(),
            }));
            Ok(())
        };
        for entry in &service.features {
            match entry {
                ServiceEntry::Reference(text) if text.contains(':') => {
                    refs.extend(self.resolve_refs(&[text]).map_err(|e| {
                        FeatureError::invalid(format!("feature service `{}`: {e}", service.name))
                    })?);
                }
                ServiceEntry::Reference(view) => whole_view(view, &mut refs)?,
                ServiceEntry::Projection(map) => {
                    for (view, features) in map {
                        if features.is_empty() {
                            whole_view(view, &mut refs)?;
                            continue;
                        }
                        let texts: Vec<String> =
                            features.iter().map(|f| format!("{view}:{f}")).collect();
                        refs.extend(self.resolve_refs(&texts).map_err(|e| {
                            FeatureError::invalid(format!(
                                "feature service `{}`: {e}",
                                service.name
                            ))
                        })?);
                    }
                }
            }
        }
        Ok(refs)
    }

    pub fn service(&self, name: &str) -> Result<Vec<FeatureRef>> {
        let service = self.feature_services.get(name).ok_or_else(|| {
            FeatureError::not_found(format!("feature service `{name}` is not defined"))
        })?;
        self.service_features(service)
    }

    /// The join keys of a view with their types, in the view's entity order.
    pub fn join_keys(&self, view: &FeatureView) -> Vec<(String, ValueType)> {
        view.entities
            .iter()
            .filter_map(|e| self.entities.get(e))
            .map(|e| (e.join_key().to_owned(), e.value_type))
            .collect()
    }

    /// The offline query for some features of a view; `root` resolves
    /// relative source paths.
    pub fn view_query(
        &self,
        root: &Path,
        view: &FeatureView,
        features: &[&Field],
        output_names: Vec<String>,
    ) -> Result<ViewQuery> {
        let source = self.batch_source(view).ok_or_else(|| {
            FeatureError::invalid(format!("feature view `{}` has no file source", view.name))
        })?;
        Ok(ViewQuery {
            name: view.name.clone(),
            source: source_spec(root, source)?,
            join_keys: self.join_keys(view).into_iter().map(|(k, _)| k).collect(),
            features: features
                .iter()
                .map(|f| (f.name.clone(), f.dtype.arrow()))
                .collect(),
            ttl_micros: (view.ttl > 0).then_some(view.ttl * 1_000_000),
            output_names,
        })
    }
}

/// What an on-demand view computes from: the input columns its expressions
/// may read (every feature of its source views, every field of its request
/// sources), and each output's compiled expression.
pub struct OnDemandPlan {
    /// (feature view, feature) pairs to fetch.
    pub view_inputs: Vec<FeatureRef>,
    /// Request-data fields (name, type) the request must carry.
    pub request_inputs: Vec<(String, ValueType)>,
    /// (output feature, its type, expression), in schema order.
    pub outputs: Vec<(String, ValueType, crate::expr::Expr)>,
}

impl Definitions {
    /// Compiles an on-demand view's expressions against its sources; the
    /// error names the view, the feature and what is wrong.
    pub fn on_demand_expressions(&self, odfv: &OnDemandFeatureView) -> Result<OnDemandPlan> {
        let invalid = |message: String| {
            FeatureError::invalid(format!("on-demand feature view `{}`: {message}", odfv.name))
        };
        let mut columns: Vec<(String, ValueType, String)> = Vec::new();
        let mut view_inputs = Vec::new();
        let mut request_inputs = Vec::new();
        for source in &odfv.sources {
            let fields: Vec<(&Field, bool)> = if let Some(view) = self.feature_views.get(source) {
                view.schema.iter().map(|f| (f, true)).collect()
            } else if let Some(request) = self.request_sources.get(source) {
                request.schema.iter().map(|f| (f, false)).collect()
            } else {
                return Err(invalid(format!(
                    "source `{source}` is neither a feature view nor a request source"
                )));
            };
            for (field, from_view) in fields {
                if let Some((_, _, other)) = columns.iter().find(|(n, _, _)| *n == field.name) {
                    return Err(invalid(format!(
                        "column `{}` comes from both `{other}` and `{source}`",
                        field.name
                    )));
                }
                columns.push((field.name.clone(), field.dtype, source.clone()));
                if from_view {
                    view_inputs.push(FeatureRef {
                        view: source.clone(),
                        feature: field.name.clone(),
                    });
                } else {
                    request_inputs.push((field.name.clone(), field.dtype));
                }
            }
        }
        let schema = arrow::datatypes::Schema::new(
            columns
                .iter()
                .map(|(name, dtype, _)| arrow::datatypes::Field::new(name, dtype.arrow(), true))
                .collect::<Vec<_>>(),
        );
        if odfv.schema.is_empty() {
            return Err(invalid("empty schema".to_owned()));
        }
        let mut outputs = Vec::new();
        for field in &odfv.schema {
            let Some(sql) = odfv.expressions.get(&field.name) else {
                return Err(invalid(format!(
                    "feature `{}` has no expression",
                    field.name
                )));
            };
            let expr = crate::expr::Expr::parse(sql, &schema, &field.dtype.arrow())
                .map_err(|e| invalid(format!("feature `{}`: {e}", field.name)))?;
            outputs.push((field.name.clone(), field.dtype, expr));
        }
        if let Some(extra) = odfv.expressions.keys().find(|k| odfv.field(k).is_none()) {
            return Err(invalid(format!(
                "expression `{extra}` is not in the schema"
            )));
        }
        Ok(OnDemandPlan {
            view_inputs,
            request_inputs,
            outputs,
        })
    }
}

/// The offline engine's view of a file source.
pub fn source_spec(root: &Path, source: &FileSource) -> Result<SourceSpec> {
    let path = PathBuf::from(&source.path);
    Ok(SourceSpec {
        path: if path.is_absolute() {
            path
        } else {
            root.join(path)
        },
        format: source_format(source)?,
        timestamp_field: source.timestamp_field.clone(),
        created_timestamp_column: source.created_timestamp_column.clone(),
        field_mapping: source.field_mapping.clone(),
    })
}

fn source_format(source: &FileSource) -> Result<FileFormat> {
    let declared = source.file_format.as_deref().map(str::to_ascii_lowercase);
    let extension = Path::new(&source.path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match declared.as_deref().or(extension.as_deref()) {
        Some("parquet") | None => Ok(FileFormat::Parquet),
        Some("csv") => Ok(FileFormat::Csv),
        Some(other) => Err(FeatureError::invalid(format!(
            "source `{}`: file format `{other}` is not supported (parquet or csv)",
            source.name
        ))),
    }
}

fn check_name(kind: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.contains("__");
    if valid {
        Ok(())
    } else {
        Err(FeatureError::invalid(format!(
            "{kind} name `{name}` must be letters, digits, `_` or `-` (and no `__`, which full feature names use)"
        )))
    }
}

fn collect_yaml(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| FeatureError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| FeatureError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(|e| FeatureError::io(&path, e))?;
        if file_type.is_dir() {
            if dir == root && name == "data" {
                continue;
            }
            collect_yaml(root, &path, files)?;
        } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !(dir == root && name == CONFIG_FILE)
        {
            files.push(path);
        }
    }
    Ok(())
}

/// Durations as definitions write them: `0`, seconds, or `<n><unit>` with
/// unit s, m, h, d or w (several may follow each other: `1d12h`).
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: i64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    number.is_empty().then_some(total)
}

/// Shows seconds the way `parse_duration` reads them (`7d`, `90s`, `0`).
pub fn format_duration(seconds: i64) -> String {
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds > 0 && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    if seconds == 0 {
        "0".to_owned()
    } else {
        format!("{seconds}s")
    }
}

mod ttl_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ttl: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*ttl))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(seconds) => Ok(seconds),
            Raw::Text(text) => super::parse_duration(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "ttl `{text}` is not a duration (0, seconds, or e.g. 90s, 15m, 2h, 7d, 1w)"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &str = "
entities:
  - name: driver
    join_keys: [driver_id]
    value_type: INT64
sources:
  - name: stats_source
    path: data/stats.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created
push_sources:
  - name: stats_push
    batch_source: stats_source
feature_views:
  - name: driver_stats
    entities: [driver]
    ttl: 1d
    source: stats_push
    schema:
      - {name: conv_rate, dtype: Float32}
      - {name: trips, dtype: Int64}
feature_services:
  - name: activity
    features:
      - driver_stats: [trips]
      - driver_stats:conv_rate
";

    fn defs() -> Definitions {
        let mut d = Definitions::default();
        d.add_text("features.yaml", DEFS).expect("parse");
        d.validate().expect("valid");
        d
    }

    #[test]
    fn reads_and_resolves_definitions() {
        let d = defs();
        let view = d.view("driver_stats").expect("view");
        assert_eq!(view.ttl, 86_400);
        assert!(view.online);
        assert_eq!(
            d.batch_source(view).map(|s| s.name.as_str()),
            Some("stats_source")
        );
        let service = d.service("activity").expect("service");
        let names: Vec<_> = service.iter().map(|r| r.feature.as_str()).collect();
        assert_eq!(names, ["trips", "conv_rate"]);
        assert_eq!(
            d.join_keys(view),
            vec![("driver_id".to_owned(), ValueType::Int64)]
        );
    }

    #[test]
    fn bad_references_say_what_is_missing() {
        let d = defs();
        let error = d
            .resolve_refs(&["driver_stats:nope"])
            .expect_err("no feature");
        assert!(matches!(error, FeatureError::NotFound(_)));
        assert!(error.to_string().contains("nope"), "{error}");
        let error = d.resolve_refs(&["nothing"]).expect_err("no colon");
        assert!(matches!(error, FeatureError::Invalid(_)));
        for (broken, needle) in [
            (
                DEFS.replace("entities: [driver]", "entities: [rider]"),
                "rider",
            ),
            (DEFS.replace("source: stats_push", "source: gone"), "gone"),
            (DEFS.replace("ttl: 1d", "ttl: soon"), "soon"),
            (DEFS.replace("name: trips", "name: driver_id"), "join key"),
            (DEFS.replace("dtype: Int64", "dtype: Decimal"), "Decimal"),
            (
                DEFS.replace("- driver_stats:conv_rate", "- driver_stats:zzz"),
                "zzz",
            ),
        ] {
            let mut d = Definitions::default();
            let result = d.add_text("f.yaml", &broken).and_then(|()| d.validate());
            let error = result.expect_err(needle);
            assert!(error.to_string().contains(needle), "{needle}: {error}");
        }
    }

    const ON_DEMAND: &str = "
request_sources:
  - name: req
    schema: [{name: val, dtype: Int64}]
on_demand_feature_views:
  - name: adjusted
    sources: [driver_stats, req]
    schema: [{name: plus, dtype: Float64}]
    expressions: {plus: \"conv_rate + val\"}
";

    #[test]
    fn on_demand_views_compile_against_their_sources() {
        let mut d = defs();
        d.add_text("odfv.yaml", ON_DEMAND).expect("parse");
        d.validate().expect("valid");
        let refs = d.resolve_refs(&["adjusted:plus"]).expect("resolves");
        assert_eq!(refs[0].view, "adjusted");
        let plan = d
            .on_demand_expressions(&d.on_demand_feature_views["adjusted"])
            .expect("plan");
        assert_eq!(
            plan.request_inputs,
            vec![("val".to_owned(), ValueType::Int64)]
        );
        assert_eq!(
            plan.view_inputs.len(),
            2,
            "every feature of driver_stats is an input"
        );
        for (broken, needle) in [
            (
                ON_DEMAND.replace("conv_rate + val", "conv_rate + nope"),
                "nope",
            ),
            (
                ON_DEMAND.replace("[driver_stats, req]", "[driver_stats, ghost]"),
                "ghost",
            ),
            (ON_DEMAND.replace("{plus:", "{minus:"), "plus"),
            (
                ON_DEMAND.replace("[driver_stats, req]", "[driver_stats, req, driver_stats]"),
                "conv_rate",
            ),
        ] {
            let mut d = defs();
            let result = d.add_text("odfv.yaml", &broken).and_then(|()| d.validate());
            let error = result.expect_err(needle);
            assert!(error.to_string().contains(needle), "{needle}: {error}");
            assert!(error.to_string().contains("adjusted"), "{error}");
        }
    }

    #[test]
    fn durations_round_trip() {
        for (text, seconds) in [
            ("0", 0),
            ("90s", 90),
            ("15m", 900),
            ("7d", 604_800),
            ("1d12h", 129_600),
            ("3600", 3_600),
        ] {
            assert_eq!(parse_duration(text), Some(seconds), "{text}");
            assert_eq!(parse_duration(&format_duration(seconds)), Some(seconds));
        }
        assert_eq!(parse_duration("7x"), None);
        assert_eq!(parse_duration("d"), None);
    }

    #[test]
    fn other_yaml_files_are_not_definitions() {
        let mut d = Definitions::default();
        d.add_text("ci.yaml", "jobs: {build: {}}\n")
            .expect("ignored");
        assert_eq!(d, Definitions::default());
        let error = d
            .add_text("f.yaml", "entities: []\nviews: []\n")
            .expect_err("unknown section");
        assert!(error.to_string().contains("views"), "{error}");
    }
}
