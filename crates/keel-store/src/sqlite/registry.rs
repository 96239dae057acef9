//! The model registry on SQLite: `impl RegistryStore for SqliteStore`.
//!
//! Same invariants as the tracking store: writes on the one write connection
//! inside `BEGIN IMMEDIATE`, reads in a read transaction, entities assembled
//! by set-based queries over the ids of a page. Models are referred to by an
//! integer id, so renaming touches one row; version numbers come from the
//! model's `last_version` counter and are never reused.

mod models;
mod search;
mod versions;

use async_trait::async_trait;
use keel_core::registry::{
    registered_model_not_found, ModelVersion, ModelVersionSearch, NewModelVersion, RegisteredModel,
    RegisteredModelSearch, RegistryStore, Stage,
};
use keel_core::store::Page;
use keel_core::tracking::Tag;
use keel_core::Result;
use sqlx::SqliteConnection;

use super::errors::DbResultExt;
use super::SqliteStore;

/// The integer id of the registered model called `name`.
async fn model_row_id(conn: &mut SqliteConnection, name: &str) -> Result<i64> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT registered_model_id FROM registered_models WHERE name = ?")
            .bind(name)
            .fetch_optional(conn)
            .await
            .db("look up a registered model")?;
    id.ok_or_else(|| registered_model_not_found(name))
}

#[async_trait]
impl RegistryStore for SqliteStore {
    async fn create_registered_model(
        &self,
        name: &str,
        tags: &[Tag],
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        models::create(self, name, tags, description).await
    }

    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        models::get(self, name).await
    }

    async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        models::update(self, name, description).await
    }

    async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        models::rename(self, name, new_name).await
    }

    async fn delete_registered_model(&self, name: &str) -> Result<()> {
        models::delete(self, name).await
    }

    async fn search_registered_models(
        &self,
        search: &RegisteredModelSearch,
    ) -> Result<Page<RegisteredModel>> {
        models::search(self, search).await
    }

    async fn get_latest_versions(&self, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>> {
        versions::latest(self, name, stages).await
    }

    async fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()> {
        models::set_tag(self, name, tag).await
    }

    async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        models::delete_tag(self, name, key).await
    }

    async fn create_model_version(&self, new_version: &NewModelVersion) -> Result<ModelVersion> {
        versions::create(self, new_version).await
    }

    async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        versions::get(self, name, version).await
    }

    async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<ModelVersion> {
        versions::update(self, name, version, description).await
    }

    async fn transition_model_version_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion> {
        versions::transition(self, name, version, stage, archive_existing_versions).await
    }

    async fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        versions::delete(self, name, version).await
    }

    async fn search_model_versions(
        &self,
        search: &ModelVersionSearch,
    ) -> Result<Page<ModelVersion>> {
        versions::search(self, search).await
    }

    async fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<()> {
        versions::set_tag(self, name, version, tag).await
    }

    async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        versions::delete_tag(self, name, version, key).await
    }

    async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
    ) -> Result<()> {
        versions::set_alias(self, name, alias, version).await
    }

    async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        versions::delete_alias(self, name, alias).await
    }

    async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        versions::get_by_alias(self, name, alias).await
    }
}
