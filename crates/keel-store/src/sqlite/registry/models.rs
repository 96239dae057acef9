//! Registered models: create, read, update, rename, delete (cascading), tags, search.

use std::collections::HashMap;

use keel_core::page::decode_offset_token;
use keel_core::registry::{
    registered_model_exists, registered_model_not_found, RegisteredModel, RegisteredModelAlias,
    RegisteredModelSearch,
};
use keel_core::store::Page;
use keel_core::tracking::Tag;
use keel_core::Result;
use sqlx::SqliteConnection;

use super::search::{fetch_page, registered_model_query};
use super::versions::{latest_keys, load as load_versions};
use super::{model_row_id, SqliteStore};
use crate::sqlite::errors::DbResultExt;
use crate::sqlite::sql::{now_ms, placeholders};

/// Model ids per `IN (...)` list.
const IDS_PER_STATEMENT: usize = 256;

async fn name_holder(conn: &mut SqliteConnection, name: &str) -> Result<Option<i64>> {
    sqlx::query_scalar("SELECT registered_model_id FROM registered_models WHERE name = ?")
        .bind(name)
        .fetch_optional(conn)
        .await
        .db("look up a registered model name")
}

async fn upsert_tag(conn: &mut SqliteConnection, model_id: i64, tag: &Tag) -> Result<()> {
    sqlx::query(
        "INSERT INTO registered_model_tags (registered_model_id, key, value) VALUES (?, ?, ?)
         ON CONFLICT (registered_model_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(model_id)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(conn)
    .await
    .db("set a registered model tag")?;
    Ok(())
}

/// Loads one model that must exist (it was just read or written in this transaction).
async fn load_one(
    conn: &mut SqliteConnection,
    model_id: i64,
    name: &str,
) -> Result<RegisteredModel> {
    load(conn, &[model_id])
        .await?
        .pop()
        .ok_or_else(|| registered_model_not_found(name))
}

pub(super) async fn create(
    store: &SqliteStore,
    name: &str,
    tags: &[Tag],
    description: Option<&str>,
) -> Result<RegisteredModel> {
    let context = format!("create registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    if name_holder(&mut tx, name).await?.is_some() {
        return Err(registered_model_exists(name));
    }
    let now = now_ms();
    let model_id: i64 = sqlx::query_scalar(
        "INSERT INTO registered_models (name, creation_time, last_updated_time, description)
         VALUES (?, ?, ?, ?) RETURNING registered_model_id",
    )
    .bind(name)
    .bind(now)
    .bind(now)
    .bind(description)
    .fetch_one(&mut *tx)
    .await
    .db(&context)?;
    // Later tags with the same key win, as in MLflow.
    for tag in tags {
        upsert_tag(&mut tx, model_id, tag).await?;
    }
    let model = load_one(&mut tx, model_id, name).await?;
    tx.commit().await.db(&context)?;
    Ok(model)
}

pub(super) async fn get(store: &SqliteStore, name: &str) -> Result<RegisteredModel> {
    let mut tx = store.begin_read("read a registered model").await?;
    let model_id = model_row_id(&mut tx, name).await?;
    load_one(&mut tx, model_id, name).await
}

pub(super) async fn update(
    store: &SqliteStore,
    name: &str,
    description: Option<&str>,
) -> Result<RegisteredModel> {
    let context = format!("update registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = model_row_id(&mut tx, name).await?;
    sqlx::query(
        "UPDATE registered_models SET description = ?, last_updated_time = ? WHERE registered_model_id = ?",
    )
    .bind(description)
    .bind(now_ms())
    .bind(model_id)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    let model = load_one(&mut tx, model_id, name).await?;
    tx.commit().await.db(&context)?;
    Ok(model)
}

pub(super) async fn rename(
    store: &SqliteStore,
    name: &str,
    new_name: &str,
) -> Result<RegisteredModel> {
    let context = format!("rename registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = model_row_id(&mut tx, name).await?;
    if name_holder(&mut tx, new_name)
        .await?
        .is_some_and(|holder| holder != model_id)
    {
        return Err(registered_model_exists(new_name));
    }
    let now = now_ms();
    sqlx::query(
        "UPDATE registered_models SET name = ?, last_updated_time = ? WHERE registered_model_id = ?",
    )
    .bind(new_name)
    .bind(now)
    .bind(model_id)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    // Versions, tags and aliases hang off the id; MLflow also bumps the versions' update time.
    sqlx::query("UPDATE model_versions SET last_updated_time = ? WHERE registered_model_id = ?")
        .bind(now)
        .bind(model_id)
        .execute(&mut *tx)
        .await
        .db(&context)?;
    let model = load_one(&mut tx, model_id, new_name).await?;
    tx.commit().await.db(&context)?;
    Ok(model)
}

/// Deletes the model; foreign keys cascade to versions, tags and aliases.
pub(super) async fn delete(store: &SqliteStore, name: &str) -> Result<()> {
    let context = format!("delete registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let deleted = sqlx::query("DELETE FROM registered_models WHERE name = ?")
        .bind(name)
        .execute(&mut *tx)
        .await
        .db(&context)?
        .rows_affected();
    if deleted == 0 {
        return Err(registered_model_not_found(name));
    }
    tx.commit().await.db(&context)
}

pub(super) async fn set_tag(store: &SqliteStore, name: &str, tag: &Tag) -> Result<()> {
    let context = format!("set a tag on registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = model_row_id(&mut tx, name).await?;
    upsert_tag(&mut tx, model_id, tag).await?;
    tx.commit().await.db(&context)
}

pub(super) async fn delete_tag(store: &SqliteStore, name: &str, key: &str) -> Result<()> {
    let context = format!("delete a tag of registered model '{name}'");
    let mut tx = store.begin_write(&context).await?;
    let model_id = model_row_id(&mut tx, name).await?;
    sqlx::query("DELETE FROM registered_model_tags WHERE registered_model_id = ? AND key = ?")
        .bind(model_id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .db(&context)?;
    tx.commit().await.db(&context)
}

pub(super) async fn search(
    store: &SqliteStore,
    search: &RegisteredModelSearch,
) -> Result<Page<RegisteredModel>> {
    let offset = decode_offset_token(search.page_token.as_deref())?;
    let page_size = search.max_results.max(1);
    let query = registered_model_query(&search.filter, &search.order_by, offset, page_size)?;
    let mut tx = store.begin_read("search registered models").await?;
    let (keys, next_page_token) = fetch_page(&mut tx, &query, offset, page_size).await?;
    let ids: Vec<i64> = keys.into_iter().map(|(model_id, _)| model_id).collect();
    let items = load(&mut tx, &ids).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

type ModelRow = (i64, String, i64, i64, Option<String>);

/// The models with these ids, with tags, aliases and latest versions, in the order of `ids`.
pub(super) async fn load(conn: &mut SqliteConnection, ids: &[i64]) -> Result<Vec<RegisteredModel>> {
    let mut rows: HashMap<i64, ModelRow> = HashMap::with_capacity(ids.len());
    let mut tags: HashMap<i64, Vec<Tag>> = HashMap::new();
    let mut aliases: HashMap<i64, Vec<RegisteredModelAlias>> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let in_list = placeholders(chunk.len());
        let sql = format!(
            "SELECT registered_model_id, name, creation_time, last_updated_time, description
             FROM registered_models WHERE registered_model_id IN ({in_list})"
        );
        let mut query = sqlx::query_as::<_, ModelRow>(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query
            .fetch_all(&mut *conn)
            .await
            .db("read registered models")?
        {
            rows.insert(row.0, row);
        }

        let sql = format!(
            "SELECT registered_model_id, key, value FROM registered_model_tags
             WHERE registered_model_id IN ({in_list}) ORDER BY registered_model_id, key"
        );
        let mut query = sqlx::query_as::<_, (i64, String, String)>(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for (id, key, value) in query
            .fetch_all(&mut *conn)
            .await
            .db("read registered model tags")?
        {
            tags.entry(id).or_default().push(Tag { key, value });
        }

        let sql = format!(
            "SELECT registered_model_id, alias, version FROM registered_model_aliases
             WHERE registered_model_id IN ({in_list}) ORDER BY registered_model_id, alias"
        );
        let mut query = sqlx::query_as::<_, (i64, String, i64)>(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for (id, alias, version) in query
            .fetch_all(&mut *conn)
            .await
            .db("read registered model aliases")?
        {
            aliases
                .entry(id)
                .or_default()
                .push(RegisteredModelAlias { alias, version });
        }
    }

    let latest_version_keys = latest_keys(&mut *conn, ids, &[]).await?;
    let latest = load_versions(&mut *conn, &latest_version_keys).await?;
    let mut latest_by_model: HashMap<String, Vec<_>> = HashMap::new();
    for version in latest {
        latest_by_model
            .entry(version.name.clone())
            .or_default()
            .push(version);
    }

    let mut models = Vec::with_capacity(rows.len());
    for id in ids {
        let Some((id, name, creation_time, last_updated_time, description)) = rows.remove(id)
        else {
            continue;
        };
        models.push(RegisteredModel {
            latest_versions: latest_by_model.remove(&name).unwrap_or_default(),
            name,
            creation_timestamp: creation_time,
            last_updated_timestamp: last_updated_time,
            description,
            tags: tags.remove(&id).unwrap_or_default(),
            aliases: aliases.remove(&id).unwrap_or_default(),
        });
    }
    Ok(models)
}
