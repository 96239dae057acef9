//! The store conformance suite (`suite/`) run against `SqliteStore`, each check
//! on a fresh database file, plus what only a file database has to show:
//! migrations, reopening, durability.

mod suite;

use std::path::Path;
use std::sync::Arc;

use keel_core::store::TrackingStore;
use keel_core::tracking::{Param, Tag};
use keel_core::ErrorCode;
use keel_store::SqliteStore;
use tempfile::TempDir;

/// A store on a new database file; the folder lives as long as the value.
struct TempStore {
    store: Arc<SqliteStore>,
    _dir: TempDir,
}

impl TempStore {
    async fn new() -> TempStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("keel.db").display());
        let store = SqliteStore::open(&url, suite::ARTIFACT_ROOT)
            .await
            .expect("open sqlite store");
        TempStore {
            store: Arc::new(store),
            _dir: dir,
        }
    }

    fn tracking(&self) -> Arc<dyn TrackingStore> {
        self.store.clone()
    }
}

macro_rules! sqlite_conformance {
    ($($module:ident::$check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let temp = TempStore::new().await;
                suite::$module::$check(temp.tracking()).await;
                temp.store.close().await;
            }
        )*
    };
}

sqlite_conformance!(
    experiments::default_experiment_exists,
    experiments::experiment_create_and_get,
    experiments::experiment_names_are_unique,
    experiments::experiment_rename,
    experiments::experiment_tags,
    experiments::experiment_delete_and_restore_with_runs,
    runs::run_lifecycle,
    runs::run_start_time_defaults_to_now,
    runs::run_name_and_tag_stay_in_sync,
    runs::run_tags_set_and_delete,
    runs::writes_to_deleted_runs_are_refused,
    logging::log_batch_is_atomic_on_param_conflict,
    logging::params_are_immutable,
    logging::nan_and_infinity_round_trip,
    logging::identical_observations_are_stored_once,
    logging::latest_metric_follows_step_then_timestamp_then_value,
    logging::large_batch_is_stored_completely,
    metrics::metric_history_pages,
    metrics::metric_history_bulk_interval_samples_steps,
    inputs::dataset_inputs_are_linked_with_tags,
    inputs::model_inputs_and_outputs,
    logged_models::logged_model_lifecycle,
    logged_models::search_logged_models_pages,
    search::search_runs_pages_and_filters,
    search::search_experiments_pages,
    concurrency::concurrent_writers_lose_nothing,
    concurrency::concurrent_experiment_creation_keeps_names_unique,
);

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(&path.display().to_string(), suite::ARTIFACT_ROOT)
        .await
        .expect("open store")
}

#[tokio::test]
async fn sqlite_open_creates_missing_folders_from_a_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/deeper/keel.db");
    let url = format!(
        "sqlite:///{}",
        path.display().to_string().trim_start_matches('/')
    );
    let store = SqliteStore::open(&url, "/srv/artifacts/")
        .await
        .expect("open via url");
    assert!(path.exists());
    assert_eq!(store.path(), path);
    let default = store.get_experiment("0").await.expect("Default experiment");
    assert_eq!(default.artifact_location, "/srv/artifacts/0");
    store.close().await;
}

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_migrates_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keel.db");
    let store = open(&path).await;
    let experiment_id = store
        .create_experiment("durable", None, &[])
        .await
        .expect("create");
    let run = suite::new_run(&store, &experiment_id, "kept").await;
    store
        .log_batch(
            &run.info.run_id,
            &[suite::metric("m", 1.5, 10, 1)],
            &[Param::new("p", "v")],
            &[Tag::new("t", "x")],
        )
        .await
        .expect("log");

    // A second process opening the file while the first still runs (as after
    // a crash that left the WAL behind) sees every committed write.
    let second = open(&path).await;
    let seen = second
        .get_run(&run.info.run_id)
        .await
        .expect("visible to a second opener");
    assert_eq!(seen.data.params, vec![Param::new("p", "v")]);
    assert_eq!(seen.data.metrics.len(), 1);
    second.close().await;
    store.close().await;

    let reopened = open(&path).await;
    let run_again = reopened
        .get_run(&run.info.run_id)
        .await
        .expect("run survives reopening");
    assert_eq!(run_again.data.metrics[0].value, 1.5);
    assert_eq!(suite::tag_value(&run_again.data.tags, "t"), Some("x"));
    let experiments = reopened
        .search_experiments(&keel_core::store::ExperimentSearch {
            max_results: 100,
            ..Default::default()
        })
        .await
        .expect("search experiments");
    let names: Vec<&str> = experiments.items.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names.iter().filter(|name| **name == "Default").count(),
        1,
        "{names:?}"
    );
    assert!(names.contains(&"durable"));
    reopened.close().await;
}

#[tokio::test]
async fn sqlite_refuses_a_database_from_a_newer_keel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keel.db");
    open(&path).await.close().await;

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("raw connect");
    sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)")
        .bind(SqliteStore::schema_version() + 1)
        .execute(&pool)
        .await
        .expect("pretend a newer keel migrated");
    pool.close().await;

    let err = SqliteStore::open(&path.display().to_string(), suite::ARTIFACT_ROOT)
        .await
        .expect_err("a newer schema must be refused");
    assert_eq!(err.code, ErrorCode::InvalidState);
    assert!(err.message.contains("upgrade keel"), "{}", err.message);
}

#[tokio::test]
async fn sqlite_rejects_in_memory_urls() {
    let err = SqliteStore::open("sqlite:///:memory:", suite::ARTIFACT_ROOT)
        .await
        .expect_err("in-memory is not a file");
    assert_eq!(err.code, ErrorCode::InvalidParameterValue);
}
