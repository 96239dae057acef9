//! Runs: lifecycle, the run name kept in sync with `mlflow.runName`, deleted runs refuse writes.

use std::sync::Arc;

use keel_core::store::{NewRun, RunUpdate, TrackingStore};
use keel_core::tracking::{
    Dataset, DatasetInput, LifecycleStage, ModelInput, ModelOutput, Param, RunStatus, Tag,
};
use keel_core::ErrorCode;

use super::{expect_error, metric, new_experiment, new_run, tag_value};

const RUN_NAME_TAG: &str = "mlflow.runName";

pub async fn run_lifecycle(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "runs").await;
    let experiment = store
        .get_experiment(&experiment_id)
        .await
        .expect("get experiment");
    let created = store
        .create_run(&NewRun {
            experiment_id: experiment_id.clone(),
            user_id: "ada".into(),
            run_name: "first".into(),
            start_time: Some(1234),
            tags: vec![Tag::new("source", "test")],
        })
        .await
        .expect("create run");
    let run_id = created.info.run_id.clone();
    assert_eq!(run_id.len(), 32);
    assert!(run_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(created.info.experiment_id, experiment_id);
    assert_eq!(created.info.run_name, "first");
    assert_eq!(created.info.user_id, "ada");
    assert_eq!(created.info.status, RunStatus::Running);
    assert_eq!(created.info.start_time, Some(1234));
    assert_eq!(created.info.end_time, None);
    assert_eq!(created.info.lifecycle_stage, LifecycleStage::Active);
    assert_eq!(
        created.info.artifact_uri,
        format!("{}/{run_id}/artifacts", experiment.artifact_location)
    );
    assert_eq!(tag_value(&created.data.tags, RUN_NAME_TAG), Some("first"));
    assert_eq!(tag_value(&created.data.tags, "source"), Some("test"));

    let fetched = store.get_run(&run_id).await.expect("get run");
    assert_eq!(fetched, created);

    let info = store
        .update_run(
            &run_id,
            &RunUpdate {
                status: Some(RunStatus::Finished),
                end_time: Some(5678),
                run_name: None,
            },
        )
        .await
        .expect("update run");
    assert_eq!(info.status, RunStatus::Finished);
    assert_eq!(info.end_time, Some(5678));
    assert_eq!(info.run_name, "first");

    store.delete_run(&run_id).await.expect("delete run");
    assert_eq!(
        store
            .get_run(&run_id)
            .await
            .expect("get")
            .info
            .lifecycle_stage,
        LifecycleStage::Deleted
    );
    store.restore_run(&run_id).await.expect("restore run");
    assert_eq!(
        store
            .get_run(&run_id)
            .await
            .expect("get")
            .info
            .lifecycle_stage,
        LifecycleStage::Active
    );

    let missing = "0123456789abcdef0123456789abcdef";
    let err = expect_error(
        store.get_run(missing).await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(err.message, format!("Run with id={missing} not found"));
    expect_error(
        store.delete_run(missing).await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.restore_run(missing).await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.update_run(missing, &RunUpdate::default()).await,
        ErrorCode::ResourceDoesNotExist,
    );

    let err = expect_error(
        store
            .create_run(&NewRun {
                experiment_id: "99999".into(),
                user_id: "u".into(),
                run_name: "x".into(),
                start_time: None,
                tags: vec![],
            })
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(err.message, "No Experiment with id=99999 exists");
}

pub async fn run_start_time_defaults_to_now(store: Arc<dyn TrackingStore>) {
    let run = store
        .create_run(&NewRun {
            experiment_id: "0".into(),
            user_id: "u".into(),
            run_name: "clocked".into(),
            start_time: None,
            tags: vec![],
        })
        .await
        .expect("create run");
    let start_time = run.info.start_time.expect("a start time");
    assert!(
        start_time > 1_600_000_000_000,
        "{start_time} is not a recent time in ms"
    );
}

pub async fn run_name_and_tag_stay_in_sync(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "names").await;

    let from_tag = store
        .create_run(&NewRun {
            experiment_id: experiment_id.clone(),
            user_id: "u".into(),
            run_name: String::new(),
            start_time: None,
            tags: vec![Tag::new(RUN_NAME_TAG, "tagged-name")],
        })
        .await
        .expect("create run named by tag");
    assert_eq!(from_tag.info.run_name, "tagged-name");

    expect_error(
        store
            .create_run(&NewRun {
                experiment_id: experiment_id.clone(),
                user_id: "u".into(),
                run_name: "one".into(),
                start_time: None,
                tags: vec![Tag::new(RUN_NAME_TAG, "other")],
            })
            .await,
        ErrorCode::InvalidParameterValue,
    );

    let run_id = new_run(store.as_ref(), &experiment_id, "original")
        .await
        .info
        .run_id;
    store
        .log_batch(
            &run_id,
            &[],
            &[],
            &[Tag::new(RUN_NAME_TAG, "renamed-by-tag")],
        )
        .await
        .expect("set the run name tag");
    let run = store.get_run(&run_id).await.expect("get run");
    assert_eq!(run.info.run_name, "renamed-by-tag");

    let info = store
        .update_run(
            &run_id,
            &RunUpdate {
                run_name: Some("renamed-by-update".into()),
                ..Default::default()
            },
        )
        .await
        .expect("rename run");
    assert_eq!(info.run_name, "renamed-by-update");
    let run = store.get_run(&run_id).await.expect("get run");
    assert_eq!(
        tag_value(&run.data.tags, RUN_NAME_TAG),
        Some("renamed-by-update")
    );
    assert_eq!(
        run.info.status,
        RunStatus::Running,
        "a rename leaves the status alone"
    );
}

pub async fn run_tags_set_and_delete(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "tags").await.info.run_id;
    store
        .log_batch(
            &run_id,
            &[],
            &[],
            &[Tag::new("a", "1"), Tag::new("a", "2"), Tag::new("b", "x")],
        )
        .await
        .expect("set tags");
    let run = store.get_run(&run_id).await.expect("get run");
    assert_eq!(
        tag_value(&run.data.tags, "a"),
        Some("2"),
        "the last value of a key wins"
    );
    store.delete_tag(&run_id, "a").await.expect("delete tag");
    let run = store.get_run(&run_id).await.expect("get run");
    assert_eq!(tag_value(&run.data.tags, "a"), None);
    assert_eq!(tag_value(&run.data.tags, "b"), Some("x"));
    let err = expect_error(
        store.delete_tag(&run_id, "a").await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert!(
        err.message.contains("No tag with name: a"),
        "{}",
        err.message
    );
}

pub async fn writes_to_deleted_runs_are_refused(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "gone").await.info.run_id;
    store
        .log_batch(&run_id, &[], &[], &[Tag::new("keep", "me")])
        .await
        .expect("tag");
    store.delete_run(&run_id).await.expect("delete run");

    let expected =
        format!("The run {run_id} must be in the 'active' state. Current state is deleted.");
    let err = expect_error(
        store
            .log_batch(&run_id, &[metric("m", 1.0, 1, 0)], &[], &[])
            .await,
        ErrorCode::InvalidParameterValue,
    );
    assert_eq!(err.message, expected);
    expect_error(
        store
            .log_batch(&run_id, &[], &[Param::new("p", "1")], &[])
            .await,
        ErrorCode::InvalidParameterValue,
    );
    expect_error(
        store
            .update_run(
                &run_id,
                &RunUpdate {
                    status: Some(RunStatus::Failed),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::InvalidParameterValue,
    );
    expect_error(
        store.delete_tag(&run_id, "keep").await,
        ErrorCode::InvalidParameterValue,
    );
    let dataset = DatasetInput {
        tags: vec![],
        dataset: Dataset {
            name: "d".into(),
            digest: "1".into(),
            source_type: "local".into(),
            source: "{}".into(),
            schema: None,
            profile: None,
        },
    };
    expect_error(
        store.log_inputs(&run_id, &[dataset], &[]).await,
        ErrorCode::InvalidParameterValue,
    );
    expect_error(
        store
            .log_inputs(
                &run_id,
                &[],
                &[ModelInput {
                    model_id: "m-1".into(),
                }],
            )
            .await,
        ErrorCode::InvalidParameterValue,
    );
    expect_error(
        store
            .log_outputs(
                &run_id,
                &[ModelOutput {
                    model_id: "m-1".into(),
                    step: 0,
                }],
            )
            .await,
        ErrorCode::InvalidParameterValue,
    );

    let run = store
        .get_run(&run_id)
        .await
        .expect("a deleted run is still readable");
    assert!(run.data.metrics.is_empty());
    assert!(run.data.params.is_empty());
    assert_eq!(tag_value(&run.data.tags, "keep"), Some("me"));
}
