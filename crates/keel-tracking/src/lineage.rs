//! Lineage of a registered model version: the version, the logged model it was
//! registered from, the run that produced it (params, latest metrics, tags,
//! input datasets, model inputs and outputs) — assembled from the registry and
//! tracking stores so one call answers "what made this model?".

use std::fmt;

use keel_core::registry::ModelVersion;
use keel_core::tracking::{LoggedModel, Run};
use keel_core::{ErrorCode, KeelError, Result};

use crate::registry::{parse_version, validate_alias_name, validate_model_name};
use crate::{RegistryService, TrackingService};

/// Which version of a registered model: a number, or an alias (`latest` is the highest version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    Version(i64),
    Alias(String),
}

impl VersionSelector {
    /// Parses the path segment of the lineage route: `3` or `@champion`.
    pub fn parse(segment: &str) -> Result<Self> {
        match segment.strip_prefix('@') {
            Some(alias) => {
                validate_alias_name(alias)?;
                Ok(VersionSelector::Alias(alias.to_string()))
            }
            None => Ok(VersionSelector::Version(parse_version(segment)?)),
        }
    }
}

impl fmt::Display for VersionSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSelector::Version(version) => write!(f, "{version}"),
            VersionSelector::Alias(alias) => write!(f, "@{alias}"),
        }
    }
}

/// A model version and what produced it. Links that cannot be followed any
/// more (a purged run, a deleted logged model) are `None` with a note saying why.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersionLineage {
    pub model_version: ModelVersion,
    pub logged_model: Option<LoggedModel>,
    pub run: Option<Run>,
    /// The name of the run's experiment, when the run and its experiment exist.
    pub experiment_name: Option<String>,
    pub notes: Vec<String>,
}

/// Reads lineage across the registry and tracking services.
#[derive(Clone)]
pub struct LineageService {
    tracking: TrackingService,
    registry: RegistryService,
}

fn is_not_found(err: &KeelError) -> bool {
    err.code == ErrorCode::ResourceDoesNotExist
}

impl LineageService {
    pub fn new(tracking: TrackingService, registry: RegistryService) -> Self {
        LineageService { tracking, registry }
    }

    /// The version `selector` names; `RESOURCE_DOES_NOT_EXIST` for an unknown
    /// model, version or alias.
    pub async fn resolve_version(
        &self,
        name: &str,
        selector: &VersionSelector,
    ) -> Result<ModelVersion> {
        validate_model_name(name)?;
        let version = match selector {
            VersionSelector::Version(version) => *version,
            VersionSelector::Alias(alias) if alias.eq_ignore_ascii_case("latest") => {
                return self.registry.get_model_version_by_alias(name, alias).await;
            }
            // Through the registered model rather than the by-alias lookup, which answers
            // MLflow's INVALID_PARAMETER_VALUE for a missing alias; here it is a missing resource.
            VersionSelector::Alias(alias) => self
                .registry
                .get_registered_model(name)
                .await?
                .aliases
                .iter()
                .find(|candidate| candidate.alias == *alias)
                .map(|found| found.version)
                .ok_or_else(|| {
                    KeelError::not_found(format!(
                        "Registered model alias {alias} not found for model {name}."
                    ))
                })?,
        };
        match self
            .registry
            .get_model_version(name, &version.to_string())
            .await
        {
            // Say which is missing: the model itself, or only this version of it.
            Err(err) if is_not_found(&err) => {
                match self.registry.get_registered_model(name).await {
                    Ok(_) => Err(err),
                    Err(model_err) => Err(model_err),
                }
            }
            result => result,
        }
    }

    /// The lineage of one model version.
    pub async fn model_version_lineage(
        &self,
        name: &str,
        selector: &VersionSelector,
    ) -> Result<ModelVersionLineage> {
        let model_version = self.resolve_version(name, selector).await?;
        let mut notes = Vec::new();

        let logged_model = match &model_version.model_id {
            None => None,
            Some(model_id) => match self.tracking.get_logged_model(model_id).await {
                Ok(model) => Some(model),
                Err(err) if is_not_found(&err) => {
                    notes.push(format!("logged model {model_id} no longer exists"));
                    None
                }
                Err(err) => return Err(err),
            },
        };

        let run_id = model_version.run_id.clone().or_else(|| {
            logged_model
                .as_ref()
                .and_then(|model| model.source_run_id.clone())
        });
        let run = match &run_id {
            None => None,
            Some(run_id) => match self.tracking.get_run(run_id).await {
                Ok(run) => Some(run),
                Err(err) if is_not_found(&err) => {
                    notes.push(format!("run {run_id} no longer exists"));
                    None
                }
                Err(err) => return Err(err),
            },
        };

        let experiment_name = match &run {
            None => None,
            Some(run) => match self.tracking.get_experiment(&run.info.experiment_id).await {
                Ok(experiment) => Some(experiment.name),
                Err(err) if is_not_found(&err) => None,
                Err(err) => return Err(err),
            },
        };

        Ok(ModelVersionLineage {
            model_version,
            logged_model,
            run,
            experiment_name,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keel_core::store::{NewLoggedModel, NewRun};
    use keel_core::tracking::{Dataset, DatasetInput, Metric, ModelOutput, Param, Tag};
    use keel_store::SqliteStore;

    use super::*;
    use crate::registry::CreateModelVersion;

    struct Fixture {
        lineage: LineageService,
        tracking: TrackingService,
        registry: RegistryService,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("keel.db").display());
        let store = Arc::new(SqliteStore::open(&db, "mlflow-artifacts:").await.unwrap());
        let tracking = TrackingService::new(store.clone());
        let registry = RegistryService::new(store.clone(), store);
        Fixture {
            lineage: LineageService::new(tracking.clone(), registry.clone()),
            tracking,
            registry,
            _dir: dir,
        }
    }

    impl Fixture {
        async fn new_run(&self) -> String {
            let run = self
                .tracking
                .create_run(NewRun {
                    experiment_id: "0".into(),
                    user_id: "ada".into(),
                    run_name: String::new(),
                    start_time: Some(1),
                    tags: vec![],
                })
                .await
                .unwrap();
            run.info.run_id
        }
    }

    #[test]
    fn selectors_are_numbers_or_at_aliases() {
        assert_eq!(
            VersionSelector::parse("3").unwrap(),
            VersionSelector::Version(3)
        );
        assert_eq!(
            VersionSelector::parse("@champion").unwrap(),
            VersionSelector::Alias("champion".into())
        );
        assert_eq!(
            VersionSelector::parse("@champion").unwrap().to_string(),
            "@champion"
        );
        for bad in ["three", "@", "@a b", ""] {
            let err = VersionSelector::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{bad}");
        }
    }

    #[tokio::test]
    async fn lineage_follows_version_to_logged_model_run_and_datasets() {
        let fx = fixture().await;
        let run_id = fx.new_run().await;
        fx.tracking
            .log_batch(
                &run_id,
                &[Metric::new("acc", 0.5, 1, 0), Metric::new("acc", 0.9, 2, 1)],
                &[Param::new("alpha", "0.1")],
                &[],
            )
            .await
            .unwrap();
        let dataset = DatasetInput {
            tags: vec![Tag::new("mlflow.data.context", "training")],
            dataset: Dataset {
                name: "iris".into(),
                digest: "d1".into(),
                source_type: "code".into(),
                source: "{}".into(),
                schema: Some("{\"mlflow_colspec\": []}".into()),
                profile: None,
            },
        };
        fx.tracking
            .log_inputs(&run_id, &[dataset], &[])
            .await
            .unwrap();
        let model = fx
            .tracking
            .create_logged_model(NewLoggedModel {
                experiment_id: "0".into(),
                name: "model".into(),
                model_type: None,
                source_run_id: Some(run_id.clone()),
                params: vec![],
                tags: vec![],
            })
            .await
            .unwrap();
        fx.tracking
            .log_outputs(
                &run_id,
                &[ModelOutput {
                    model_id: model.model_id.clone(),
                    step: 0,
                }],
            )
            .await
            .unwrap();
        fx.registry
            .create_registered_model("clf", &[], None)
            .await
            .unwrap();
        fx.registry
            .create_model_version(CreateModelVersion {
                name: "clf".into(),
                source: format!("models:/{}", model.model_id),
                model_id: Some(model.model_id.clone()),
                ..CreateModelVersion::default()
            })
            .await
            .unwrap();
        fx.registry
            .set_registered_model_alias("clf", "champion", "1")
            .await
            .unwrap();

        let lineage = fx
            .lineage
            .model_version_lineage("clf", &VersionSelector::Alias("champion".into()))
            .await
            .unwrap();
        assert_eq!(lineage.model_version.version, 1);
        assert_eq!(lineage.model_version.aliases, vec!["champion".to_string()]);
        assert_eq!(
            lineage.logged_model.as_ref().map(|m| m.model_id.as_str()),
            Some(model.model_id.as_str())
        );
        let run = lineage.run.expect("run");
        assert_eq!(run.info.run_id, run_id);
        assert_eq!(run.data.metrics.len(), 1, "latest metrics only");
        assert_eq!(run.data.metrics[0].value, 0.9);
        assert_eq!(run.inputs.dataset_inputs[0].dataset.name, "iris");
        assert_eq!(lineage.experiment_name.as_deref(), Some("Default"));
        assert!(lineage.notes.is_empty());

        let latest = fx
            .lineage
            .model_version_lineage("clf", &VersionSelector::Alias("latest".into()))
            .await
            .unwrap();
        assert_eq!(latest.model_version.version, 1);
    }

    #[tokio::test]
    async fn unknown_models_versions_and_aliases_are_not_found() {
        let fx = fixture().await;
        fx.registry
            .create_registered_model("empty", &[], None)
            .await
            .unwrap();
        for (name, selector) in [
            ("nope", VersionSelector::Version(1)),
            ("nope", VersionSelector::Alias("champion".into())),
            ("empty", VersionSelector::Version(1)),
            ("empty", VersionSelector::Alias("champion".into())),
            ("empty", VersionSelector::Alias("latest".into())),
        ] {
            let err = fx
                .lineage
                .model_version_lineage(name, &selector)
                .await
                .unwrap_err();
            assert_eq!(
                err.code,
                ErrorCode::ResourceDoesNotExist,
                "{name} {selector}"
            );
        }
    }

    #[tokio::test]
    async fn a_version_registered_from_a_run_has_a_run_and_no_logged_model() {
        let fx = fixture().await;
        let run_id = fx.new_run().await;
        fx.registry
            .create_registered_model("from-run", &[], None)
            .await
            .unwrap();
        fx.registry
            .create_model_version(CreateModelVersion {
                name: "from-run".into(),
                source: format!("runs:/{run_id}/model"),
                run_id: Some(run_id.clone()),
                ..CreateModelVersion::default()
            })
            .await
            .unwrap();
        let lineage = fx
            .lineage
            .model_version_lineage("from-run", &VersionSelector::Version(1))
            .await
            .unwrap();
        assert!(lineage.logged_model.is_none());
        assert_eq!(lineage.run.map(|run| run.info.run_id), Some(run_id));
        assert!(lineage.notes.is_empty());
    }
}
