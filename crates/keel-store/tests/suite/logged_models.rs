//! MLflow 3 logged models: create, finalize, tags, params, metrics, delete, search.

use std::collections::HashSet;
use std::sync::Arc;

use keel_core::search::{CompareOp, Comparison, Filter, FilterValue, KeyKind};
use keel_core::store::{LoggedModelSearch, NewLoggedModel, TrackingStore};
use keel_core::tracking::{LifecycleStage, LoggedModelStatus, Metric, Param, Tag};
use keel_core::ErrorCode;

use super::{expect_error, metric, new_experiment, new_run};

fn new_model(experiment_id: &str, name: &str) -> NewLoggedModel {
    NewLoggedModel {
        experiment_id: experiment_id.to_string(),
        name: name.to_string(),
        model_type: Some("sklearn".into()),
        source_run_id: None,
        params: vec![Param::new("alpha", "0.5")],
        tags: vec![Tag::new("stage", "dev")],
    }
}

pub async fn logged_model_lifecycle(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "models").await;
    let experiment = store
        .get_experiment(&experiment_id)
        .await
        .expect("get experiment");
    let run_id = new_run(store.as_ref(), &experiment_id, "trainer")
        .await
        .info
        .run_id;

    let mut spec = new_model(&experiment_id, "clf");
    spec.source_run_id = Some(run_id.clone());
    let created = store
        .create_logged_model(&spec)
        .await
        .expect("create logged model");
    let model_id = created.model_id.clone();
    assert!(
        model_id.starts_with("m-") && model_id.len() == 34,
        "{model_id}"
    );
    assert_eq!(created.status, LoggedModelStatus::Pending);
    assert_eq!(created.experiment_id, experiment_id);
    assert_eq!(created.name, "clf");
    assert_eq!(created.model_type.as_deref(), Some("sklearn"));
    assert_eq!(created.source_run_id.as_deref(), Some(run_id.as_str()));
    assert_eq!(created.lifecycle_stage, LifecycleStage::Active);
    assert_eq!(
        created.artifact_location,
        format!(
            "{}/models/{model_id}/artifacts",
            experiment.artifact_location
        )
    );
    assert_eq!(created.params, vec![Param::new("alpha", "0.5")]);
    assert_eq!(created.tags, vec![Tag::new("stage", "dev")]);
    assert_eq!(
        store.get_logged_model(&model_id).await.expect("get"),
        created
    );

    let ready = store
        .finalize_logged_model(&model_id, LoggedModelStatus::Ready)
        .await
        .expect("finalize");
    assert_eq!(ready.status, LoggedModelStatus::Ready);
    assert!(ready.last_updated_timestamp_ms >= created.last_updated_timestamp_ms);

    store
        .set_logged_model_tags(
            &model_id,
            &[Tag::new("stage", "prod"), Tag::new("owner", "ada")],
        )
        .await
        .expect("set tags");
    store
        .delete_logged_model_tag(&model_id, "owner")
        .await
        .expect("delete tag");
    expect_error(
        store.delete_logged_model_tag(&model_id, "owner").await,
        ErrorCode::ResourceDoesNotExist,
    );
    store
        .log_logged_model_params(&model_id, &[Param::new("beta", "1")])
        .await
        .expect("log params");
    store
        .log_logged_model_params(&model_id, &[Param::new("beta", "1")])
        .await
        .expect("same value again");
    expect_error(
        store
            .log_logged_model_params(&model_id, &[Param::new("beta", "2")])
            .await,
        ErrorCode::InvalidParameterValue,
    );
    let model = store.get_logged_model(&model_id).await.expect("get");
    assert_eq!(model.tags, vec![Tag::new("stage", "prod")]);
    assert_eq!(
        model.params,
        vec![Param::new("alpha", "0.5"), Param::new("beta", "1")]
    );

    // Metrics logged to a run for a model show up on the model too.
    let mut scored = metric("accuracy", 0.93, 100, 1);
    scored.model_id = Some(model_id.clone());
    scored.dataset_name = Some("iris".into());
    scored.dataset_digest = Some("abc".into());
    store
        .log_batch(&run_id, &[scored.clone(), scored.clone()], &[], &[])
        .await
        .expect("log model metric");
    let model = store.get_logged_model(&model_id).await.expect("get");
    assert_eq!(model.metrics, vec![scored.clone()]);

    // A metric for an unknown model fails the whole batch.
    let mut stray: Metric = metric("accuracy", 0.1, 200, 2);
    stray.model_id = Some("m-00000000000000000000000000000000".into());
    expect_error(
        store
            .log_batch(&run_id, &[metric("loss", 1.0, 1, 1), stray], &[], &[])
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    let run = store.get_run(&run_id).await.expect("get run");
    assert!(run.data.metrics.iter().all(|metric| metric.key != "loss"));

    store.delete_logged_model(&model_id).await.expect("delete");
    let err = expect_error(
        store.get_logged_model(&model_id).await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(
        err.message,
        format!("Logged model with ID '{model_id}' not found.")
    );

    let missing = "m-ffffffffffffffffffffffffffffffff";
    expect_error(
        store.get_logged_model(missing).await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store
            .finalize_logged_model(missing, LoggedModelStatus::Failed)
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store
            .set_logged_model_tags(missing, &[Tag::new("a", "b")])
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.delete_logged_model(missing).await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.create_logged_model(&new_model("55555", "x")).await,
        ErrorCode::ResourceDoesNotExist,
    );
}

pub async fn search_logged_models_pages(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "model-search").await;
    let mut created = Vec::new();
    for idx in 0..5 {
        let mut spec = new_model(&experiment_id, &format!("model-{idx}"));
        spec.tags = vec![Tag::new(
            "parity",
            if idx % 2 == 0 { "even" } else { "odd" },
        )];
        created.push(
            store
                .create_logged_model(&spec)
                .await
                .expect("create")
                .model_id,
        );
    }
    store
        .delete_logged_model(&created[4])
        .await
        .expect("delete one");

    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let page = store
            .search_logged_models(&LoggedModelSearch {
                experiment_ids: vec![experiment_id.clone()],
                max_results: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("search logged models");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|model| model.model_id));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 4, "deleted models are not found: {seen:?}");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        4,
        "no model twice"
    );
    assert!(!seen.contains(&created[4]));

    let even = store
        .search_logged_models(&LoggedModelSearch {
            experiment_ids: vec![experiment_id.clone()],
            filter: Filter {
                comparisons: vec![Comparison {
                    kind: KeyKind::Tag,
                    key: "parity".into(),
                    op: CompareOp::Eq,
                    value: FilterValue::String("even".into()),
                }],
            },
            max_results: 100,
            ..Default::default()
        })
        .await
        .expect("search with a tag filter");
    let mut even_ids: Vec<String> = even.items.into_iter().map(|model| model.model_id).collect();
    even_ids.sort();
    let mut expected = vec![created[0].clone(), created[2].clone()];
    expected.sort();
    assert_eq!(even_ids, expected);
}
