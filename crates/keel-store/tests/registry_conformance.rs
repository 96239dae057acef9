//! The model registry conformance suite (`registry_suite/`) run against
//! `SqliteStore`, each check on a fresh database file.

mod registry_suite;

use std::sync::Arc;

use keel_core::registry::RegistryStore;
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
        let store = SqliteStore::open(&url, "mlflow-artifacts:")
            .await
            .expect("open sqlite store");
        TempStore {
            store: Arc::new(store),
            _dir: dir,
        }
    }

    fn registry(&self) -> Arc<dyn RegistryStore> {
        self.store.clone()
    }
}

macro_rules! sqlite_registry_conformance {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let temp = TempStore::new().await;
                registry_suite::$check(temp.registry()).await;
                temp.store.close().await;
            }
        )*
    };
}

sqlite_registry_conformance!(
    registered_model_create_get_and_unique_names,
    registered_model_descriptions_update_and_clear,
    registered_model_tags_set_overwrite_and_delete,
    version_numbers_increment_and_are_never_reused,
    model_version_fields_round_trip,
    model_version_tags_and_descriptions,
    stages_latest_versions_and_archiving,
    aliases_are_unique_per_model_and_move,
    deleting_a_version_drops_its_aliases_and_tags,
    rename_keeps_versions_tags_and_aliases,
    delete_cascades_to_versions_tags_and_aliases,
    search_registered_models_filters_orders_and_pages,
    search_model_versions_filters_orders_and_pages,
    prompts_are_left_out_of_searches_unless_asked_for,
    concurrent_version_creation_numbers_densely,
);
