//! Model versions and aliases: create (numbered from the model's counter),
//! read, update, stage transitions, delete (cascading to tags and aliases),
//! tags, aliases, latest versions per stage, search.

use std::collections::HashMap;

use keel_core::page::decode_offset_token;
use keel_core::registry::{
    model_version_not_found, ModelVersion, ModelVersionSearch, NewModelVersion, Stage,
};
use keel_core::store::Page;
use keel_core::tracking::Tag;
use keel_core::{KeelError, Result};
use sqlx::SqliteConnection;

use super::search::{fetch_page, model_version_query};
use super::{model_row_id, SqliteStore};
use crate::sqlite::errors::{corrupt, DbResultExt};
use crate::sqlite::sql::{now_ms, placeholders};

/// `(model id, version)` keys per statement (two binds each).
const KEYS_PER_STATEMENT: usize = 256;

/// The model id of an existing version of `name`, or MLflow's not-found error.
async fn version_row(conn: &mut SqliteConnection, name: &str, version: i64) -> Result<i64> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT mv.registered_model_id FROM model_versions mv
         JOIN registered_models rm ON rm.registered_model_id = mv.registered_model_id
         WHERE rm.name = ? AND mv.version = ?",
    )
    .bind(name)
    .bind(version)
    .fetch_optional(conn)
    .await
    .db("look up a model version")?;
    id.ok_or_else(|| model_version_not_found(name, version))
}

async fn load_one(
    conn: &mut SqliteConnection,
    model_id: i64,
    name: &str,
    version: i64,
) -> Result<ModelVersion> {
    load(conn, &[(model_id, version)])
        .await?
        .pop()
        .ok_or_else(|| model_version_not_found(name, version))
}

async fn upsert_tag(
    conn: &mut SqliteConnection,
    model_id: i64,
    version: i64,
    tag: &Tag,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO model_version_tags (registered_model_id, version, key, value) VALUES (?, ?, ?, ?)
         ON CONFLICT (registered_model_id, version, key) DO UPDATE SET value = excluded.value",
    )
    .bind(model_id)
    .bind(version)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(conn)
    .await
    .db("set a model version tag")?;
    Ok(())
}

async fn touch_model(conn: &mut SqliteConnection, model_id: i64, now: i64) -> Result<()> {
    sqlx::query("UPDATE registered_models SET last_updated_time = ? WHERE registered_model_id = ?")
        .bind(now)
        .bind(model_id)
        .execute(conn)
        .await
        .db("update a registered model")?;
    Ok(())
}

pub(super) async fn create(
    store: &SqliteStore,
    new_version: &NewModelVersion,
) -> Result<ModelVersion> {
    let name = new_version.name.as_str();
    let context = format!("create a version of registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = model_row_id(&mut tx, name).await?;
    let now = now_ms();
    let version: i64 = sqlx::query_scalar(
        "UPDATE registered_models SET last_version = last_version + 1, last_updated_time = ?
         WHERE registered_model_id = ? RETURNING last_version",
    )
    .bind(now)
    .bind(model_id)
    .fetch_one(&mut *tx)
    .await
    .db(&context)?;
    sqlx::query(
        "INSERT INTO model_versions (registered_model_id, version, creation_time, last_updated_time,
             description, current_stage, source, storage_location, run_id, run_link, model_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(model_id)
    .bind(version)
    .bind(now)
    .bind(now)
    .bind(&new_version.description)
    .bind(Stage::None.as_str())
    .bind(&new_version.source)
    .bind(&new_version.storage_location)
    .bind(&new_version.run_id)
    .bind(&new_version.run_link)
    .bind(&new_version.model_id)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    for tag in &new_version.tags {
        upsert_tag(&mut tx, model_id, version, tag).await?;
    }
    let created = load_one(&mut tx, model_id, name, version).await?;
    tx.commit().await.db(&context)?;
    Ok(created)
}

pub(super) async fn get(store: &SqliteStore, name: &str, version: i64) -> Result<ModelVersion> {
    let mut tx = store.begin_read("read a model version").await?;
    let model_id = version_row(&mut tx, name, version).await?;
    load_one(&mut tx, model_id, name, version).await
}

pub(super) async fn update(
    store: &SqliteStore,
    name: &str,
    version: i64,
    description: Option<&str>,
) -> Result<ModelVersion> {
    let context = format!("update version {version} of registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = version_row(&mut tx, name, version).await?;
    sqlx::query(
        "UPDATE model_versions SET description = ?, last_updated_time = ?
         WHERE registered_model_id = ? AND version = ?",
    )
    .bind(description)
    .bind(now_ms())
    .bind(model_id)
    .bind(version)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    let updated = load_one(&mut tx, model_id, name, version).await?;
    tx.commit().await.db(&context)?;
    Ok(updated)
}

pub(super) async fn transition(
    store: &SqliteStore,
    name: &str,
    version: i64,
    stage: Stage,
    archive_existing_versions: bool,
) -> Result<ModelVersion> {
    let context = format!("move version {version} of registered model '{name}' to {stage}");
    let mut tx = store.begin_write(&context).await?;
    let model_id = version_row(&mut tx, name, version).await?;
    let now = now_ms();
    if archive_existing_versions {
        sqlx::query(
            "UPDATE model_versions SET current_stage = ?, last_updated_time = ?
             WHERE registered_model_id = ? AND version != ? AND current_stage = ?",
        )
        .bind(Stage::Archived.as_str())
        .bind(now)
        .bind(model_id)
        .bind(version)
        .bind(stage.as_str())
        .execute(&mut *tx)
        .await
        .db(&context)?;
    }
    sqlx::query(
        "UPDATE model_versions SET current_stage = ?, last_updated_time = ?
         WHERE registered_model_id = ? AND version = ?",
    )
    .bind(stage.as_str())
    .bind(now)
    .bind(model_id)
    .bind(version)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    touch_model(&mut tx, model_id, now).await?;
    let moved = load_one(&mut tx, model_id, name, version).await?;
    tx.commit().await.db(&context)?;
    Ok(moved)
}

/// Deletes the version; foreign keys cascade to its tags and the aliases pointing to it.
pub(super) async fn delete(store: &SqliteStore, name: &str, version: i64) -> Result<()> {
    let context = format!("delete version {version} of registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = version_row(&mut tx, name, version).await?;
    sqlx::query("DELETE FROM model_versions WHERE registered_model_id = ? AND version = ?")
        .bind(model_id)
        .bind(version)
        .execute(&mut *tx)
        .await
        .db(&context)?;
    touch_model(&mut tx, model_id, now_ms()).await?;
    tx.commit().await.db(&context)
}

pub(super) async fn set_tag(
    store: &SqliteStore,
    name: &str,
    version: i64,
    tag: &Tag,
) -> Result<()> {
    let context = format!("set a tag on version {version} of registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = version_row(&mut tx, name, version).await?;
    upsert_tag(&mut tx, model_id, version, tag).await?;
    tx.commit().await.db(&context)
}

pub(super) async fn delete_tag(
    store: &SqliteStore,
    name: &str,
    version: i64,
    key: &str,
) -> Result<()> {
    let context = format!("delete a tag of version {version} of registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = version_row(&mut tx, name, version).await?;
    sqlx::query(
        "DELETE FROM model_version_tags WHERE registered_model_id = ? AND version = ? AND key = ?",
    )
    .bind(model_id)
    .bind(version)
    .bind(key)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    tx.commit().await.db(&context)
}

pub(super) async fn set_alias(
    store: &SqliteStore,
    name: &str,
    alias: &str,
    version: i64,
) -> Result<()> {
    let context = format!("set alias '{alias}' of registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = version_row(&mut tx, name, version).await?;
    sqlx::query(
        "INSERT INTO registered_model_aliases (registered_model_id, alias, version) VALUES (?, ?, ?)
         ON CONFLICT (registered_model_id, alias) DO UPDATE SET version = excluded.version",
    )
    .bind(model_id)
    .bind(alias)
    .bind(version)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    tx.commit().await.db(&context)
}

pub(super) async fn delete_alias(store: &SqliteStore, name: &str, alias: &str) -> Result<()> {
    let context = format!("delete alias '{alias}' of registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = model_row_id(&mut tx, name).await?;
    sqlx::query("DELETE FROM registered_model_aliases WHERE registered_model_id = ? AND alias = ?")
        .bind(model_id)
        .bind(alias)
        .execute(&mut *tx)
        .await
        .db(&context)?;
    tx.commit().await.db(&context)
}

pub(super) async fn get_by_alias(
    store: &SqliteStore,
    name: &str,
    alias: &str,
) -> Result<ModelVersion> {
    let mut tx = store.begin_read("read a model version by alias").await?;
    let model_id = model_row_id(&mut tx, name).await?;
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM registered_model_aliases WHERE registered_model_id = ? AND alias = ?",
    )
    .bind(model_id)
    .bind(alias)
    .fetch_optional(&mut *tx)
    .await
    .db("read a registered model alias")?;
    let version = version
        .ok_or_else(|| KeelError::invalid(format!("Registered model alias {alias} not found.")))?;
    load_one(&mut tx, model_id, name, version).await
}

/// The `(model id, version)` keys of the highest version per stage of each
/// model (only `stages` when not empty), ordered by model then version.
pub(super) async fn latest_keys(
    conn: &mut SqliteConnection,
    model_ids: &[i64],
    stages: &[Stage],
) -> Result<Vec<(i64, i64)>> {
    let mut keys = Vec::new();
    for chunk in model_ids.chunks(KEYS_PER_STATEMENT) {
        let mut sql = format!(
            "SELECT registered_model_id, MAX(version) FROM model_versions
             WHERE registered_model_id IN ({})",
            placeholders(chunk.len())
        );
        if !stages.is_empty() {
            sql.push_str(&format!(
                " AND current_stage IN ({})",
                placeholders(stages.len())
            ));
        }
        sql.push_str(" GROUP BY registered_model_id, current_stage ORDER BY 1, 2");
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for stage in stages {
            query = query.bind(stage.as_str());
        }
        keys.extend(
            query
                .fetch_all(&mut *conn)
                .await
                .db("read the latest model versions")?,
        );
    }
    Ok(keys)
}

pub(super) async fn latest(
    store: &SqliteStore,
    name: &str,
    stages: &[Stage],
) -> Result<Vec<ModelVersion>> {
    let mut tx = store.begin_read("read the latest model versions").await?;
    let model_id = model_row_id(&mut tx, name).await?;
    let keys = latest_keys(&mut tx, &[model_id], stages).await?;
    load(&mut tx, &keys).await
}

pub(super) async fn search(
    store: &SqliteStore,
    search: &ModelVersionSearch,
) -> Result<Page<ModelVersion>> {
    let offset = decode_offset_token(search.page_token.as_deref())?;
    let page_size = search.max_results.max(1);
    let query = model_version_query(&search.filter, &search.order_by, offset, page_size)?;
    let mut tx = store.begin_read("search model versions").await?;
    let (keys, next_page_token) = fetch_page(&mut tx, &query, offset, page_size).await?;
    let items = load(&mut tx, &keys).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

type VersionRow = (
    i64,
    i64,
    String,
    i64,
    i64,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// `(registered_model_id, version) IN (VALUES (?, ?), ...)` for a chunk of keys.
fn keys_condition(prefix: &str, n_keys: usize) -> String {
    let rows = vec!["(?, ?)"; n_keys].join(", ");
    format!("({prefix}registered_model_id, {prefix}version) IN (VALUES {rows})")
}

/// The versions with these keys, with tags and aliases, in the order of `keys`.
pub(super) async fn load(
    conn: &mut SqliteConnection,
    keys: &[(i64, i64)],
) -> Result<Vec<ModelVersion>> {
    let mut rows: HashMap<(i64, i64), VersionRow> = HashMap::with_capacity(keys.len());
    let mut tags: HashMap<(i64, i64), Vec<Tag>> = HashMap::new();
    let mut aliases: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let sql = format!(
            "SELECT mv.registered_model_id, mv.version, rm.name, mv.creation_time,
                 mv.last_updated_time, mv.description, mv.current_stage, mv.source,
                 mv.storage_location, mv.run_id, mv.run_link, mv.model_id
             FROM model_versions mv
             JOIN registered_models rm ON rm.registered_model_id = mv.registered_model_id
             WHERE {}",
            keys_condition("mv.", chunk.len())
        );
        let mut query = sqlx::query_as::<_, VersionRow>(&sql);
        for (model_id, version) in chunk {
            query = query.bind(model_id).bind(version);
        }
        for row in query
            .fetch_all(&mut *conn)
            .await
            .db("read model versions")?
        {
            rows.insert((row.0, row.1), row);
        }

        let sql = format!(
            "SELECT registered_model_id, version, key, value FROM model_version_tags
             WHERE {} ORDER BY registered_model_id, version, key",
            keys_condition("", chunk.len())
        );
        let mut query = sqlx::query_as::<_, (i64, i64, String, String)>(&sql);
        for (model_id, version) in chunk {
            query = query.bind(model_id).bind(version);
        }
        for (model_id, version, key, value) in query
            .fetch_all(&mut *conn)
            .await
            .db("read model version tags")?
        {
            tags.entry((model_id, version))
                .or_default()
                .push(Tag { key, value });
        }

        let sql = format!(
            "SELECT registered_model_id, version, alias FROM registered_model_aliases
             WHERE {} ORDER BY registered_model_id, version, alias",
            keys_condition("", chunk.len())
        );
        let mut query = sqlx::query_as::<_, (i64, i64, String)>(&sql);
        for (model_id, version) in chunk {
            query = query.bind(model_id).bind(version);
        }
        for (model_id, version, alias) in query
            .fetch_all(&mut *conn)
            .await
            .db("read model version aliases")?
        {
            aliases.entry((model_id, version)).or_default().push(alias);
        }
    }

    let mut versions = Vec::with_capacity(rows.len());
    for key in keys {
        let Some(row) = rows.remove(key) else {
            continue;
        };
        let (
            model_id,
            version,
            name,
            creation_time,
            last_updated_time,
            description,
            stage,
            source,
            storage_location,
            run_id,
            run_link,
            logged_model_id,
        ) = row;
        versions.push(ModelVersion {
            name,
            version,
            creation_timestamp: creation_time,
            last_updated_timestamp: last_updated_time,
            description,
            current_stage: stage
                .parse()
                .map_err(|err| corrupt("model version stage", err))?,
            source,
            storage_location,
            run_id,
            run_link,
            model_id: logged_model_id,
            tags: tags.remove(&(model_id, version)).unwrap_or_default(),
            aliases: aliases.remove(&(model_id, version)).unwrap_or_default(),
        });
    }
    Ok(versions)
}
