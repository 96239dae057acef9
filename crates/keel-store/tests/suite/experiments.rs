//! Experiments: the Default experiment, CRUD, name uniqueness, tags, delete/restore with runs.

use std::sync::Arc;

use keel_core::store::{NewRun, TrackingStore};
use keel_core::tracking::{LifecycleStage, Tag};
use keel_core::ErrorCode;

use super::{expect_error, new_experiment, new_run, ARTIFACT_ROOT};

pub async fn default_experiment_exists(store: Arc<dyn TrackingStore>) {
    let default = store.get_experiment("0").await.expect("get experiment 0");
    assert_eq!(default.name, "Default");
    assert_eq!(default.artifact_location, format!("{ARTIFACT_ROOT}/0"));
    assert_eq!(default.lifecycle_stage, LifecycleStage::Active);
    let by_name = store
        .get_experiment_by_name("Default")
        .await
        .expect("get Default by name");
    assert_eq!(by_name.experiment_id, "0");
}

pub async fn experiment_create_and_get(store: Arc<dyn TrackingStore>) {
    let tags = [Tag::new("team", "vision"), Tag::new("owner", "ada")];
    let experiment_id = store
        .create_experiment("exp-a", None, &tags)
        .await
        .expect("create experiment");
    assert_ne!(experiment_id, "0");
    let experiment = store
        .get_experiment(&experiment_id)
        .await
        .expect("get experiment");
    assert_eq!(experiment.name, "exp-a");
    assert_eq!(
        experiment.artifact_location,
        format!("{ARTIFACT_ROOT}/{experiment_id}")
    );
    assert_eq!(experiment.lifecycle_stage, LifecycleStage::Active);
    assert!(experiment.creation_time > 0);
    assert_eq!(experiment.creation_time, experiment.last_update_time);
    let mut got_tags = experiment.tags.clone();
    got_tags.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        got_tags,
        vec![Tag::new("owner", "ada"), Tag::new("team", "vision")]
    );

    let explicit_id = store
        .create_experiment("exp-b", Some("s3://bucket/somewhere"), &[])
        .await
        .expect("create experiment with a location");
    let explicit = store
        .get_experiment(&explicit_id)
        .await
        .expect("get experiment");
    assert_eq!(explicit.artifact_location, "s3://bucket/somewhere");
    assert_ne!(explicit_id, experiment_id);

    let by_name = store
        .get_experiment_by_name("exp-b")
        .await
        .expect("get by name");
    assert_eq!(by_name.experiment_id, explicit_id);
    expect_error(
        store.get_experiment_by_name("nope").await,
        ErrorCode::ResourceDoesNotExist,
    );

    let err = expect_error(
        store.get_experiment("987654").await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(err.message, "No Experiment with id=987654 exists");
    expect_error(
        store.get_experiment("not-a-number").await,
        ErrorCode::ResourceDoesNotExist,
    );
}

pub async fn experiment_names_are_unique(store: Arc<dyn TrackingStore>) {
    new_experiment(store.as_ref(), "unique").await;
    let err = expect_error(
        store.create_experiment("unique", None, &[]).await,
        ErrorCode::ResourceAlreadyExists,
    );
    assert!(
        err.message
            .starts_with("Experiment(name=unique) already exists."),
        "{}",
        err.message
    );

    // A deleted experiment still holds its name, as in MLflow.
    let doomed = new_experiment(store.as_ref(), "doomed").await;
    store
        .delete_experiment(&doomed)
        .await
        .expect("delete experiment");
    expect_error(
        store.create_experiment("doomed", None, &[]).await,
        ErrorCode::ResourceAlreadyExists,
    );
    let by_name = store
        .get_experiment_by_name("doomed")
        .await
        .expect("deleted found by name");
    assert_eq!(by_name.lifecycle_stage, LifecycleStage::Deleted);
}

pub async fn experiment_rename(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "before").await;
    new_experiment(store.as_ref(), "taken").await;
    let created = store
        .get_experiment(&experiment_id)
        .await
        .expect("get experiment");

    store
        .rename_experiment(&experiment_id, "after")
        .await
        .expect("rename");
    let renamed = store
        .get_experiment(&experiment_id)
        .await
        .expect("get experiment");
    assert_eq!(renamed.name, "after");
    assert!(renamed.last_update_time >= created.last_update_time);
    expect_error(
        store.get_experiment_by_name("before").await,
        ErrorCode::ResourceDoesNotExist,
    );

    expect_error(
        store.rename_experiment(&experiment_id, "taken").await,
        ErrorCode::ResourceAlreadyExists,
    );
    expect_error(
        store.rename_experiment("424242", "x").await,
        ErrorCode::ResourceDoesNotExist,
    );

    store
        .delete_experiment(&experiment_id)
        .await
        .expect("delete");
    expect_error(
        store.rename_experiment(&experiment_id, "again").await,
        ErrorCode::InvalidState,
    );
}

pub async fn experiment_tags(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "tagged").await;
    store
        .set_experiment_tag(&experiment_id, &Tag::new("k", "v1"))
        .await
        .expect("set tag");
    store
        .set_experiment_tag(&experiment_id, &Tag::new("k", "v2"))
        .await
        .expect("overwrite tag");
    let experiment = store.get_experiment(&experiment_id).await.expect("get");
    assert_eq!(experiment.tags, vec![Tag::new("k", "v2")]);

    store
        .delete_experiment_tag(&experiment_id, "k")
        .await
        .expect("delete tag");
    assert!(store
        .get_experiment(&experiment_id)
        .await
        .expect("get")
        .tags
        .is_empty());
    expect_error(
        store.delete_experiment_tag(&experiment_id, "k").await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store
            .set_experiment_tag("313131", &Tag::new("k", "v"))
            .await,
        ErrorCode::ResourceDoesNotExist,
    );

    store
        .delete_experiment(&experiment_id)
        .await
        .expect("delete");
    let err = expect_error(
        store
            .set_experiment_tag(&experiment_id, &Tag::new("k", "v"))
            .await,
        ErrorCode::InvalidParameterValue,
    );
    assert!(
        err.message.contains("must be in the 'active' state"),
        "{}",
        err.message
    );
}

pub async fn experiment_delete_and_restore_with_runs(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "trash").await;
    let run_a = new_run(store.as_ref(), &experiment_id, "a")
        .await
        .info
        .run_id;
    let run_b = new_run(store.as_ref(), &experiment_id, "b")
        .await
        .info
        .run_id;
    let other_experiment = new_experiment(store.as_ref(), "bystander").await;
    let bystander = new_run(store.as_ref(), &other_experiment, "c")
        .await
        .info
        .run_id;

    store
        .delete_experiment(&experiment_id)
        .await
        .expect("delete experiment");
    let deleted = store
        .get_experiment(&experiment_id)
        .await
        .expect("deleted is still readable");
    assert_eq!(deleted.lifecycle_stage, LifecycleStage::Deleted);
    for run_id in [&run_a, &run_b] {
        let run = store.get_run(run_id).await.expect("get run");
        assert_eq!(
            run.info.lifecycle_stage,
            LifecycleStage::Deleted,
            "runs follow their experiment"
        );
    }
    let untouched = store.get_run(&bystander).await.expect("get run");
    assert_eq!(untouched.info.lifecycle_stage, LifecycleStage::Active);

    let err = expect_error(
        store
            .create_run(&NewRun {
                experiment_id: experiment_id.clone(),
                user_id: "u".into(),
                run_name: "late".into(),
                start_time: None,
                tags: vec![],
            })
            .await,
        ErrorCode::InvalidParameterValue,
    );
    assert!(
        err.message.contains("must be in the 'active' state"),
        "{}",
        err.message
    );
    expect_error(
        store.delete_experiment(&experiment_id).await,
        ErrorCode::ResourceDoesNotExist,
    );

    store
        .restore_experiment(&experiment_id)
        .await
        .expect("restore experiment");
    let restored = store.get_experiment(&experiment_id).await.expect("get");
    assert_eq!(restored.lifecycle_stage, LifecycleStage::Active);
    assert!(restored.last_update_time >= deleted.last_update_time);
    for run_id in [&run_a, &run_b] {
        let run = store.get_run(run_id).await.expect("get run");
        assert_eq!(
            run.info.lifecycle_stage,
            LifecycleStage::Active,
            "runs come back too"
        );
    }
    expect_error(
        store.restore_experiment(&experiment_id).await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.delete_experiment("777777").await,
        ErrorCode::ResourceDoesNotExist,
    );
}
