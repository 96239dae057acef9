//! Backend-independent checks of `RegistryStore`, each a `pub async fn` taking
//! `Arc<dyn RegistryStore>` on a fresh store. Every backend's runner calls
//! every check (see `registry_conformance.rs`).

use std::fmt::Debug;
use std::sync::Arc;

use keel_core::registry::{
    parse_model_version_filter, parse_model_version_order_by, parse_registered_model_filter,
    parse_registered_model_order_by, ModelVersion, ModelVersionSearch, NewModelVersion,
    RegisteredModelSearch, RegistryStore, Stage, IS_PROMPT_TAG_KEY,
};
use keel_core::tracking::Tag;
use keel_core::{ErrorCode, KeelError, Result};

fn expect_error<T: Debug>(result: Result<T>, code: ErrorCode) -> KeelError {
    match result {
        Ok(value) => panic!("expected a {code} error, got Ok({value:?})"),
        Err(err) => {
            assert_eq!(err.code, code, "unexpected error: {err}");
            err
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

async fn new_model(store: &dyn RegistryStore, name: &str) {
    store
        .create_registered_model(name, &[], None)
        .await
        .expect("create registered model");
}

async fn new_version(store: &dyn RegistryStore, name: &str, run_id: &str) -> ModelVersion {
    store
        .create_model_version(&NewModelVersion {
            name: name.to_string(),
            source: format!("runs:/{run_id}/model"),
            storage_location: format!("mlflow-artifacts:/1/{run_id}/artifacts/model"),
            run_id: Some(run_id.to_string()),
            ..NewModelVersion::default()
        })
        .await
        .expect("create model version")
}

async fn search_models(
    store: &dyn RegistryStore,
    filter: &str,
    order_by: &[&str],
    max_results: u32,
    page_token: Option<String>,
) -> (Vec<String>, Option<String>) {
    let page = store
        .search_registered_models(&RegisteredModelSearch {
            filter: parse_registered_model_filter(filter).expect("filter parses"),
            order_by: parse_registered_model_order_by(&strings(order_by)).expect("order parses"),
            max_results,
            page_token,
        })
        .await
        .expect("search registered models");
    (
        page.items.into_iter().map(|model| model.name).collect(),
        page.next_page_token,
    )
}

async fn search_versions(
    store: &dyn RegistryStore,
    filter: &str,
    order_by: &[&str],
    max_results: u32,
    page_token: Option<String>,
) -> (Vec<(String, i64)>, Option<String>) {
    let page = store
        .search_model_versions(&ModelVersionSearch {
            filter: parse_model_version_filter(filter).expect("filter parses"),
            order_by: parse_model_version_order_by(&strings(order_by)).expect("order parses"),
            max_results,
            page_token,
        })
        .await
        .expect("search model versions");
    (
        page.items
            .into_iter()
            .map(|v| (v.name, v.version))
            .collect(),
        page.next_page_token,
    )
}

pub async fn registered_model_create_get_and_unique_names(store: Arc<dyn RegistryStore>) {
    let tags = [
        Tag::new("team", "a"),
        Tag::new("team", "b"),
        Tag::new("x", "1"),
    ];
    let created = store
        .create_registered_model("clf", &tags, Some("first"))
        .await
        .expect("create");
    assert_eq!(created.name, "clf");
    assert_eq!(created.description.as_deref(), Some("first"));
    assert!(created.creation_timestamp > 0);
    assert_eq!(created.creation_timestamp, created.last_updated_timestamp);
    assert_eq!(
        created.tags,
        vec![Tag::new("team", "b"), Tag::new("x", "1")],
        "the last value wins"
    );
    assert!(created.latest_versions.is_empty() && created.aliases.is_empty());
    assert_eq!(
        store.get_registered_model("clf").await.expect("get"),
        created
    );

    let err = expect_error(
        store.create_registered_model("clf", &[], None).await,
        ErrorCode::ResourceAlreadyExists,
    );
    assert_eq!(err.message, "Registered Model (name=clf) already exists.");
    let err = expect_error(
        store.get_registered_model("nope").await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(err.message, "Registered Model with name=nope not found");
    // Names are case-sensitive.
    new_model(&*store, "CLF").await;
}

pub async fn registered_model_descriptions_update_and_clear(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    let updated = store
        .update_registered_model("m", Some("about m"))
        .await
        .expect("update");
    assert_eq!(updated.description.as_deref(), Some("about m"));
    let cleared = store
        .update_registered_model("m", None)
        .await
        .expect("clear");
    assert_eq!(cleared.description, None);
    expect_error(
        store.update_registered_model("nope", Some("x")).await,
        ErrorCode::ResourceDoesNotExist,
    );
}

pub async fn registered_model_tags_set_overwrite_and_delete(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    store
        .set_registered_model_tag("m", &Tag::new("k", "1"))
        .await
        .expect("set");
    store
        .set_registered_model_tag("m", &Tag::new("k", "2"))
        .await
        .expect("overwrite");
    store
        .set_registered_model_tag("m", &Tag::new("a", ""))
        .await
        .expect("empty value");
    let model = store.get_registered_model("m").await.expect("get");
    assert_eq!(model.tags, vec![Tag::new("a", ""), Tag::new("k", "2")]);
    store
        .delete_registered_model_tag("m", "k")
        .await
        .expect("delete");
    store
        .delete_registered_model_tag("m", "missing")
        .await
        .expect("deleting a missing tag succeeds");
    assert_eq!(
        store.get_registered_model("m").await.expect("get").tags,
        vec![Tag::new("a", "")]
    );
    expect_error(
        store
            .set_registered_model_tag("nope", &Tag::new("k", "v"))
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.delete_registered_model_tag("nope", "k").await,
        ErrorCode::ResourceDoesNotExist,
    );
}

pub async fn version_numbers_increment_and_are_never_reused(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    new_model(&*store, "other").await;
    for expected in 1..=3 {
        assert_eq!(new_version(&*store, "m", "r").await.version, expected);
    }
    assert_eq!(
        new_version(&*store, "other", "r").await.version,
        1,
        "numbers are per model"
    );
    store.delete_model_version("m", 3).await.expect("delete v3");
    assert_eq!(
        new_version(&*store, "m", "r").await.version,
        4,
        "a deleted number is not reused"
    );
    let err = expect_error(
        store.get_model_version("m", 3).await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(err.message, "Model Version (name=m, version=3) not found");
    expect_error(
        store.delete_model_version("m", 3).await,
        ErrorCode::ResourceDoesNotExist,
    );
    let err = expect_error(
        store
            .create_model_version(&NewModelVersion {
                name: "nope".into(),
                ..NewModelVersion::default()
            })
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(err.message, "Registered Model with name=nope not found");
    // A model deleted and created again starts over, as in MLflow.
    store
        .delete_registered_model("m")
        .await
        .expect("delete model");
    new_model(&*store, "m").await;
    assert_eq!(new_version(&*store, "m", "r").await.version, 1);
}

pub async fn model_version_fields_round_trip(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    let created = store
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: "models:/m-123".into(),
            storage_location: "mlflow-artifacts:/1/models/m-123/artifacts".into(),
            run_id: Some("abc".into()),
            run_link: Some("http://runs/abc".into()),
            model_id: Some("m-123".into()),
            description: Some("v1".into()),
            tags: vec![Tag::new("t", "1")],
        })
        .await
        .expect("create version");
    assert_eq!(created.version, 1);
    assert_eq!(created.current_stage, Stage::None);
    assert_eq!(created.source, "models:/m-123");
    assert_eq!(
        created.storage_location,
        "mlflow-artifacts:/1/models/m-123/artifacts"
    );
    assert_eq!(created.run_id.as_deref(), Some("abc"));
    assert_eq!(created.run_link.as_deref(), Some("http://runs/abc"));
    assert_eq!(created.model_id.as_deref(), Some("m-123"));
    assert_eq!(created.description.as_deref(), Some("v1"));
    assert_eq!(created.tags, vec![Tag::new("t", "1")]);
    assert_eq!(store.get_model_version("m", 1).await.expect("get"), created);
    let model = store.get_registered_model("m").await.expect("get model");
    assert!(model.last_updated_timestamp >= created.creation_timestamp);
    assert_eq!(model.latest_versions, vec![created]);
}

pub async fn model_version_tags_and_descriptions(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    new_version(&*store, "m", "r").await;
    store
        .set_model_version_tag("m", 1, &Tag::new("k", "1"))
        .await
        .expect("set");
    store
        .set_model_version_tag("m", 1, &Tag::new("k", "2"))
        .await
        .expect("overwrite");
    assert_eq!(
        store.get_model_version("m", 1).await.expect("get").tags,
        vec![Tag::new("k", "2")]
    );
    store
        .delete_model_version_tag("m", 1, "k")
        .await
        .expect("delete");
    store
        .delete_model_version_tag("m", 1, "k")
        .await
        .expect("deleting a missing tag succeeds");
    assert!(store
        .get_model_version("m", 1)
        .await
        .expect("get")
        .tags
        .is_empty());
    expect_error(
        store
            .set_model_version_tag("m", 9, &Tag::new("k", "v"))
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
    let updated = store
        .update_model_version("m", 1, Some("better"))
        .await
        .expect("update");
    assert_eq!(updated.description.as_deref(), Some("better"));
    assert_eq!(
        store
            .update_model_version("m", 1, None)
            .await
            .expect("clear")
            .description,
        None
    );
    expect_error(
        store.update_model_version("m", 2, None).await,
        ErrorCode::ResourceDoesNotExist,
    );
}

pub async fn stages_latest_versions_and_archiving(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    for _ in 0..4 {
        new_version(&*store, "m", "r").await;
    }
    let moved = store
        .transition_model_version_stage("m", 1, Stage::Production, false)
        .await
        .expect("v1");
    assert_eq!(moved.current_stage, Stage::Production);
    store
        .transition_model_version_stage("m", 2, Stage::Staging, false)
        .await
        .expect("v2");
    store
        .transition_model_version_stage("m", 3, Stage::Production, false)
        .await
        .expect("v3");

    let latest = store.get_latest_versions("m", &[]).await.expect("latest");
    let summary: Vec<(i64, Stage)> = latest
        .iter()
        .map(|v| (v.version, v.current_stage))
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, Stage::Staging),
            (3, Stage::Production),
            (4, Stage::None)
        ]
    );
    let production = store
        .get_latest_versions("m", &[Stage::Production])
        .await
        .expect("production");
    assert_eq!(
        production.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![3]
    );
    let model = store.get_registered_model("m").await.expect("model");
    assert_eq!(model.latest_versions.len(), 3, "one per stage");

    // Archiving moves every other version in the target stage.
    store
        .transition_model_version_stage("m", 4, Stage::Production, true)
        .await
        .expect("v4");
    let stages: Vec<Stage> = {
        let mut stages = Vec::new();
        for version in 1..=4 {
            stages.push(
                store
                    .get_model_version("m", version)
                    .await
                    .expect("get")
                    .current_stage,
            );
        }
        stages
    };
    assert_eq!(
        stages,
        vec![
            Stage::Archived,
            Stage::Staging,
            Stage::Archived,
            Stage::Production
        ]
    );
    expect_error(
        store.get_latest_versions("nope", &[]).await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store
            .transition_model_version_stage("m", 9, Stage::Staging, false)
            .await,
        ErrorCode::ResourceDoesNotExist,
    );
}

pub async fn aliases_are_unique_per_model_and_move(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    new_model(&*store, "other").await;
    new_version(&*store, "m", "r").await;
    new_version(&*store, "m", "r").await;
    new_version(&*store, "other", "r").await;
    store
        .set_registered_model_alias("m", "champion", 1)
        .await
        .expect("set");
    store
        .set_registered_model_alias("other", "champion", 1)
        .await
        .expect("same alias, other model");
    assert_eq!(
        store
            .get_model_version_by_alias("m", "champion")
            .await
            .expect("by alias")
            .version,
        1
    );
    store
        .set_registered_model_alias("m", "champion", 2)
        .await
        .expect("move");
    store
        .set_registered_model_alias("m", "challenger", 2)
        .await
        .expect("second alias");
    let version = store
        .get_model_version_by_alias("m", "champion")
        .await
        .expect("by alias");
    assert_eq!(version.version, 2);
    assert_eq!(version.aliases, vec!["challenger", "champion"]);
    assert!(store
        .get_model_version("m", 1)
        .await
        .expect("v1")
        .aliases
        .is_empty());
    let model = store.get_registered_model("m").await.expect("model");
    let aliases: Vec<(String, i64)> = model
        .aliases
        .iter()
        .map(|a| (a.alias.clone(), a.version))
        .collect();
    assert_eq!(
        aliases,
        vec![("challenger".into(), 2), ("champion".into(), 2)]
    );

    let err = expect_error(
        store.get_model_version_by_alias("m", "nope").await,
        ErrorCode::InvalidParameterValue,
    );
    assert_eq!(err.message, "Registered model alias nope not found.");
    expect_error(
        store.set_registered_model_alias("m", "x", 9).await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.get_model_version_by_alias("nope", "champion").await,
        ErrorCode::ResourceDoesNotExist,
    );
    store
        .delete_registered_model_alias("m", "challenger")
        .await
        .expect("delete");
    store
        .delete_registered_model_alias("m", "challenger")
        .await
        .expect("deleting a missing alias succeeds");
    expect_error(
        store.delete_registered_model_alias("nope", "x").await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(
        store.get_model_version("m", 2).await.expect("v2").aliases,
        vec!["champion"]
    );
}

pub async fn deleting_a_version_drops_its_aliases_and_tags(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    new_version(&*store, "m", "r").await;
    new_version(&*store, "m", "r").await;
    store
        .set_registered_model_alias("m", "champion", 2)
        .await
        .expect("alias");
    store
        .set_model_version_tag("m", 2, &Tag::new("k", "v"))
        .await
        .expect("tag");
    store.delete_model_version("m", 2).await.expect("delete v2");
    expect_error(
        store.get_model_version_by_alias("m", "champion").await,
        ErrorCode::InvalidParameterValue,
    );
    assert!(store
        .get_registered_model("m")
        .await
        .expect("model")
        .aliases
        .is_empty());
    // The number is not reused, so nothing of version 2 can come back.
    let v3 = new_version(&*store, "m", "r").await;
    assert_eq!(v3.version, 3);
    assert!(v3.tags.is_empty() && v3.aliases.is_empty());
}

pub async fn rename_keeps_versions_tags_and_aliases(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "old").await;
    new_model(&*store, "taken").await;
    new_version(&*store, "old", "r").await;
    store
        .set_registered_model_tag("old", &Tag::new("team", "ml"))
        .await
        .expect("tag");
    store
        .set_model_version_tag("old", 1, &Tag::new("k", "v"))
        .await
        .expect("version tag");
    store
        .set_registered_model_alias("old", "champion", 1)
        .await
        .expect("alias");

    let renamed = store
        .rename_registered_model("old", "new")
        .await
        .expect("rename");
    assert_eq!(renamed.name, "new");
    assert_eq!(renamed.tags, vec![Tag::new("team", "ml")]);
    assert_eq!(renamed.aliases.len(), 1);
    assert_eq!(renamed.latest_versions[0].name, "new");
    let version = store
        .get_model_version_by_alias("new", "champion")
        .await
        .expect("alias follows");
    assert_eq!(version.tags, vec![Tag::new("k", "v")]);
    expect_error(
        store.get_registered_model("old").await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.get_model_version("old", 1).await,
        ErrorCode::ResourceDoesNotExist,
    );
    assert_eq!(
        new_version(&*store, "new", "r").await.version,
        2,
        "numbering continues"
    );

    let err = expect_error(
        store.rename_registered_model("new", "taken").await,
        ErrorCode::ResourceAlreadyExists,
    );
    assert_eq!(err.message, "Registered Model (name=taken) already exists.");
    expect_error(
        store.rename_registered_model("nope", "x").await,
        ErrorCode::ResourceDoesNotExist,
    );
    store
        .rename_registered_model("new", "new")
        .await
        .expect("renaming to the same name is a no-op");
}

pub async fn delete_cascades_to_versions_tags_and_aliases(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    new_model(&*store, "kept").await;
    new_version(&*store, "m", "r").await;
    new_version(&*store, "kept", "r").await;
    store
        .set_registered_model_tag("m", &Tag::new("k", "v"))
        .await
        .expect("tag");
    store
        .set_registered_model_alias("m", "champion", 1)
        .await
        .expect("alias");
    store.delete_registered_model("m").await.expect("delete");
    expect_error(
        store.get_registered_model("m").await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.get_model_version("m", 1).await,
        ErrorCode::ResourceDoesNotExist,
    );
    expect_error(
        store.delete_registered_model("m").await,
        ErrorCode::ResourceDoesNotExist,
    );
    let (versions, _) = search_versions(&*store, "", &[], 100, None).await;
    assert_eq!(versions, vec![("kept".to_string(), 1)]);
    new_model(&*store, "m").await;
    let model = store.get_registered_model("m").await.expect("recreated");
    assert!(model.tags.is_empty() && model.aliases.is_empty() && model.latest_versions.is_empty());
}

pub async fn search_registered_models_filters_orders_and_pages(store: Arc<dyn RegistryStore>) {
    for name in ["alpha", "Beta", "beta-2", "gamma", "delta_x"] {
        new_model(&*store, name).await;
    }
    store
        .set_registered_model_tag("gamma", &Tag::new("team", "vision"))
        .await
        .expect("tag");
    store
        .set_registered_model_tag("alpha", &Tag::new("team", "nlp"))
        .await
        .expect("tag");

    let (all, token) = search_models(&*store, "", &[], 100, None).await;
    assert_eq!(
        all,
        strings(&["Beta", "alpha", "beta-2", "delta_x", "gamma"]),
        "name order by default"
    );
    assert!(token.is_none());
    assert_eq!(
        search_models(&*store, "name = 'alpha'", &[], 100, None)
            .await
            .0,
        strings(&["alpha"])
    );
    assert_eq!(
        search_models(&*store, "name != 'alpha'", &[], 100, None)
            .await
            .0
            .len(),
        4
    );
    assert_eq!(
        search_models(&*store, "name LIKE 'b%'", &[], 100, None)
            .await
            .0,
        strings(&["beta-2"])
    );
    assert_eq!(
        search_models(&*store, "name ILIKE 'b%'", &[], 100, None)
            .await
            .0,
        strings(&["Beta", "beta-2"])
    );
    assert_eq!(
        search_models(&*store, "name LIKE 'delta\\_%'", &[], 100, None)
            .await
            .0
            .len(),
        0
    );
    assert_eq!(
        search_models(&*store, "name LIKE 'delta_x'", &[], 100, None)
            .await
            .0,
        strings(&["delta_x"])
    );
    assert_eq!(
        search_models(&*store, "name IN ('gamma', 'alpha', 'zzz')", &[], 100, None)
            .await
            .0,
        strings(&["alpha", "gamma"])
    );
    assert_eq!(
        search_models(&*store, "tags.team = 'vision'", &[], 100, None)
            .await
            .0,
        strings(&["gamma"])
    );
    assert_eq!(
        search_models(&*store, "tags.team != 'vision'", &[], 100, None)
            .await
            .0,
        strings(&["alpha"]),
        "!= matches only models that have the tag"
    );
    assert_eq!(
        search_models(
            &*store,
            "tags.team LIKE '%i%' AND name != 'alpha'",
            &[],
            100,
            None
        )
        .await
        .0,
        strings(&["gamma"])
    );

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store
        .update_registered_model("alpha", Some("touched"))
        .await
        .expect("update");
    let (newest_first, _) = search_models(&*store, "", &["timestamp DESC"], 100, None).await;
    assert_eq!(
        newest_first[0], "alpha",
        "the last updated model comes first"
    );
    let (oldest_first, _) =
        search_models(&*store, "", &["last_updated_timestamp ASC"], 100, None).await;
    assert_eq!(oldest_first.last().map(String::as_str), Some("alpha"));
    let (desc, _) = search_models(&*store, "", &["name DESC"], 100, None).await;
    assert_eq!(
        desc,
        strings(&["gamma", "delta_x", "beta-2", "alpha", "Beta"])
    );

    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let (names, next) = search_models(&*store, "", &[], 2, token).await;
        pages.push(names);
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.concat(), all);
}

pub async fn search_model_versions_filters_orders_and_pages(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "a").await;
    new_model(&*store, "b").await;
    for run_id in ["r1", "r2", "r1"] {
        new_version(&*store, "a", run_id).await;
    }
    new_version(&*store, "b", "r3").await;
    store
        .set_model_version_tag("a", 2, &Tag::new("quality", "good"))
        .await
        .expect("tag");

    let (all, _) =
        search_versions(&*store, "", &["name ASC", "version_number ASC"], 100, None).await;
    assert_eq!(
        all,
        vec![
            ("a".into(), 1),
            ("a".into(), 2),
            ("a".into(), 3),
            ("b".into(), 1)
        ]
    );
    let (recent, _) = search_versions(&*store, "", &[], 100, None).await;
    assert_eq!(recent.len(), 4);
    assert_eq!(
        search_versions(
            &*store,
            "name = 'a' AND version_number >= 2",
            &["version_number ASC"],
            100,
            None
        )
        .await
        .0,
        vec![("a".into(), 2), ("a".into(), 3)]
    );
    assert_eq!(
        search_versions(&*store, "run_id = 'r1'", &["version_number ASC"], 100, None)
            .await
            .0,
        vec![("a".into(), 1), ("a".into(), 3)]
    );
    assert_eq!(
        search_versions(&*store, "run_id IN ('r2', 'r3')", &["name ASC"], 100, None)
            .await
            .0,
        vec![("a".into(), 2), ("b".into(), 1)]
    );
    assert_eq!(
        search_versions(&*store, "source_path = 'runs:/r3/model'", &[], 100, None)
            .await
            .0,
        vec![("b".into(), 1)]
    );
    assert_eq!(
        search_versions(&*store, "source_path LIKE 'runs:/r1/%'", &[], 100, None)
            .await
            .0
            .len(),
        2
    );
    assert_eq!(
        search_versions(&*store, "tags.quality = 'good'", &[], 100, None)
            .await
            .0,
        vec![("a".into(), 2)]
    );
    assert_eq!(
        search_versions(&*store, "name = 'a'", &[], 100, None)
            .await
            .0,
        vec![("a".into(), 3), ("a".into(), 2), ("a".into(), 1)],
        "the version that changed last comes first, then higher versions"
    );

    let (first, token) =
        search_versions(&*store, "", &["name ASC", "version_number ASC"], 3, None).await;
    assert_eq!(first.len(), 3);
    let (second, token) =
        search_versions(&*store, "", &["name ASC", "version_number ASC"], 3, token).await;
    assert_eq!(second, vec![("b".into(), 1)]);
    assert!(token.is_none());
}

pub async fn prompts_are_left_out_of_searches_unless_asked_for(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "model").await;
    store
        .create_registered_model("prompt", &[Tag::new(IS_PROMPT_TAG_KEY, "true")], None)
        .await
        .expect("create prompt");
    assert_eq!(
        search_models(&*store, "", &[], 100, None).await.0,
        strings(&["model"])
    );
    assert_eq!(
        search_models(
            &*store,
            "tags.`mlflow.prompt.is_prompt` = 'true'",
            &[],
            100,
            None
        )
        .await
        .0,
        strings(&["prompt"])
    );
}

pub async fn concurrent_version_creation_numbers_densely(store: Arc<dyn RegistryStore>) {
    new_model(&*store, "m").await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            new_version(&*store, "m", "r").await.version
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.expect("task"));
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=16).collect::<Vec<i64>>());
}
