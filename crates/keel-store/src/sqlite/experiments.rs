//! Experiments: create, read, rename, delete/restore (with their runs), tags, search.

use std::collections::HashMap;

use keel_core::page::decode_offset_token;
use keel_core::store::{ExperimentSearch, Page};
use keel_core::tracking::{Experiment, LifecycleStage, Tag};
use keel_core::{ErrorCode, KeelError, Result};
use sqlx::SqliteConnection;

use super::errors::{
    corrupt, experiment_name_taken, experiment_not_active, experiment_not_found, DbResultExt,
};
use super::search::{fetch_page_ids, int_id, validate_max_results};
use super::sql::{join_uri, now_ms, placeholders, pow2_chunks, MAX_IDS_PER_IN_LIST};
use super::SqliteStore;
use crate::search_sql::{experiment_search_sql, Dialect};

/// Experiment ids are integers in the database and strings in the domain; an
/// id that is not a number names no experiment.
pub(super) fn parse_experiment_id(experiment_id: &str) -> Result<i64> {
    experiment_id
        .trim()
        .parse()
        .map_err(|_| experiment_not_found(experiment_id))
}

/// The lifecycle stage and artifact location of an experiment, if it exists.
pub(super) async fn stage_and_location(
    conn: &mut SqliteConnection,
    experiment_id: i64,
) -> Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT lifecycle_stage, artifact_location FROM experiments WHERE experiment_id = ?",
    )
    .bind(experiment_id)
    .fetch_optional(conn)
    .await
    .db("read an experiment")
}

/// The experiment's artifact location; fails unless it exists and is active.
pub(super) async fn require_active(
    conn: &mut SqliteConnection,
    experiment_id: &str,
) -> Result<(i64, String)> {
    let id = parse_experiment_id(experiment_id)?;
    match stage_and_location(conn, id).await? {
        None => Err(experiment_not_found(experiment_id)),
        Some((stage, _)) if stage != LifecycleStage::Active.as_str() => {
            Err(experiment_not_active(experiment_id, &stage))
        }
        Some((_, artifact_location)) => Ok((id, artifact_location)),
    }
}

pub(super) async fn create(
    store: &SqliteStore,
    name: &str,
    artifact_location: Option<&str>,
    tags: &[Tag],
) -> Result<String> {
    if name.is_empty() {
        return Err(KeelError::invalid("Invalid experiment name: ''"));
    }
    let context = format!("create experiment '{name}'");
    let mut tx = store.begin_write(&context).await?;
    if name_exists(&mut tx, name).await? {
        return Err(experiment_name_taken(name));
    }
    let now = now_ms();
    let experiment_id: i64 = sqlx::query_scalar(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
         VALUES (?, ?, 'active', ?, ?) RETURNING experiment_id",
    )
    .bind(name)
    .bind(artifact_location.unwrap_or(""))
    .bind(now)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .db(&context)?;
    if artifact_location.is_none_or(str::is_empty) {
        let location = join_uri(&store.default_artifact_root, &[&experiment_id.to_string()]);
        sqlx::query("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?")
            .bind(location)
            .bind(experiment_id)
            .execute(&mut *tx)
            .await
            .db(&context)?;
    }
    for tag in tags {
        upsert_tag(&mut tx, experiment_id, tag).await?;
    }
    tx.commit().await.db(&context)?;
    Ok(experiment_id.to_string())
}

async fn name_exists(conn: &mut SqliteConnection, name: &str) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM experiments WHERE name = ?")
        .bind(name)
        .fetch_optional(conn)
        .await
        .db("look up an experiment name")?;
    Ok(found.is_some())
}

async fn upsert_tag(conn: &mut SqliteConnection, experiment_id: i64, tag: &Tag) -> Result<()> {
    sqlx::query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(experiment_id)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(conn)
    .await
    .db("set an experiment tag")?;
    Ok(())
}

pub(super) async fn get(store: &SqliteStore, experiment_id: &str) -> Result<Experiment> {
    let id = parse_experiment_id(experiment_id)?;
    let mut tx = store.begin_read("read an experiment").await?;
    load(&mut tx, &[id])
        .await?
        .pop()
        .ok_or_else(|| experiment_not_found(experiment_id))
}

pub(super) async fn get_by_name(store: &SqliteStore, name: &str) -> Result<Experiment> {
    let mut tx = store.begin_read("read an experiment").await?;
    let id: Option<i64> =
        sqlx::query_scalar("SELECT experiment_id FROM experiments WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .db("look up an experiment by name")?;
    let not_found =
        || KeelError::not_found(format!("Could not find experiment with name '{name}'"));
    let id = id.ok_or_else(not_found)?;
    load(&mut tx, &[id]).await?.pop().ok_or_else(not_found)
}

pub(super) async fn search(
    store: &SqliteStore,
    search: &ExperimentSearch,
) -> Result<Page<Experiment>> {
    validate_max_results(search.max_results)?;
    let offset = decode_offset_token(search.page_token.as_deref())?;
    let query = experiment_search_sql(
        search,
        offset,
        u64::from(search.max_results) + 1,
        Dialect::Sqlite,
    )?;
    let mut tx = store.begin_read("search experiments").await?;
    let (ids, next_page_token) =
        fetch_page_ids(&mut tx, &query, offset, search.max_results, int_id).await?;
    let items = load(&mut tx, &ids).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

type ExperimentRow = (i64, String, String, String, i64, i64);

/// The experiments with these ids, with their tags, in the order of `ids`.
pub(super) async fn load(conn: &mut SqliteConnection, ids: &[i64]) -> Result<Vec<Experiment>> {
    let mut rows: HashMap<i64, ExperimentRow> = HashMap::with_capacity(ids.len());
    let mut tags: HashMap<i64, Vec<Tag>> = HashMap::new();
    for chunk in pow2_chunks(ids, MAX_IDS_PER_IN_LIST) {
        let in_list = placeholders(chunk.len());
        let sql = format!(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time
             FROM experiments WHERE experiment_id IN ({in_list})"
        );
        let mut query = sqlx::query_as::<_, ExperimentRow>(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *conn).await.db("read experiments")? {
            rows.insert(row.0, row);
        }

        let sql = format!(
            "SELECT experiment_id, key, value FROM experiment_tags
             WHERE experiment_id IN ({in_list}) ORDER BY experiment_id, key"
        );
        let mut query = sqlx::query_as::<_, (i64, String, String)>(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for (id, key, value) in query
            .fetch_all(&mut *conn)
            .await
            .db("read experiment tags")?
        {
            tags.entry(id).or_default().push(Tag { key, value });
        }
    }

    let mut experiments = Vec::with_capacity(rows.len());
    for id in ids {
        let Some((id, name, artifact_location, stage, creation_time, last_update_time)) =
            rows.remove(id)
        else {
            continue;
        };
        experiments.push(Experiment {
            experiment_id: id.to_string(),
            name,
            artifact_location,
            lifecycle_stage: stage
                .parse()
                .map_err(|err| corrupt("lifecycle stage", err))?,
            creation_time,
            last_update_time,
            tags: tags.remove(&id).unwrap_or_default(),
        });
    }
    Ok(experiments)
}

pub(super) async fn rename(store: &SqliteStore, experiment_id: &str, new_name: &str) -> Result<()> {
    if new_name.is_empty() {
        return Err(KeelError::invalid("Invalid experiment name: ''"));
    }
    let id = parse_experiment_id(experiment_id)?;
    let context = format!("rename experiment {experiment_id}");
    let mut tx = store.begin_write(&context).await?;
    let (stage, _) = stage_and_location(&mut tx, id)
        .await?
        .ok_or_else(|| experiment_not_found(experiment_id))?;
    if stage != LifecycleStage::Active.as_str() {
        return Err(KeelError::new(
            ErrorCode::InvalidState,
            "Cannot rename a non-active experiment.",
        ));
    }
    let holder: Option<i64> =
        sqlx::query_scalar("SELECT experiment_id FROM experiments WHERE name = ?")
            .bind(new_name)
            .fetch_optional(&mut *tx)
            .await
            .db(&context)?;
    if holder.is_some_and(|holder| holder != id) {
        return Err(experiment_name_taken(new_name));
    }
    sqlx::query("UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?")
        .bind(new_name)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await
        .db(&context)?;
    tx.commit().await.db(&context)
}

/// Moves an active experiment and its active runs to the trash.
pub(super) async fn delete(store: &SqliteStore, experiment_id: &str) -> Result<()> {
    let id = parse_experiment_id(experiment_id)?;
    let context = format!("delete experiment {experiment_id}");
    let mut tx = store.begin_write(&context).await?;
    match stage_and_location(&mut tx, id).await? {
        Some((stage, _)) if stage == LifecycleStage::Active.as_str() => {}
        _ => return Err(experiment_not_found(experiment_id)),
    }
    let now = now_ms();
    sqlx::query(
        "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? WHERE experiment_id = ?",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    sqlx::query(
        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ?
         WHERE experiment_id = ? AND lifecycle_stage = 'active'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    tx.commit().await.db(&context)
}

/// Brings a deleted experiment back, and all its runs with it (as MLflow does).
pub(super) async fn restore(store: &SqliteStore, experiment_id: &str) -> Result<()> {
    let id = parse_experiment_id(experiment_id)?;
    let context = format!("restore experiment {experiment_id}");
    let mut tx = store.begin_write(&context).await?;
    match stage_and_location(&mut tx, id).await? {
        Some((stage, _)) if stage == LifecycleStage::Deleted.as_str() => {}
        _ => return Err(experiment_not_found(experiment_id)),
    }
    sqlx::query(
        "UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? WHERE experiment_id = ?",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    sqlx::query(
        "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE experiment_id = ?",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    tx.commit().await.db(&context)
}

pub(super) async fn set_tag(store: &SqliteStore, experiment_id: &str, tag: &Tag) -> Result<()> {
    let context = format!("set a tag on experiment {experiment_id}");
    let mut tx = store.begin_write(&context).await?;
    let (id, _) = require_active(&mut tx, experiment_id).await?;
    upsert_tag(&mut tx, id, tag).await?;
    tx.commit().await.db(&context)
}

pub(super) async fn delete_tag(store: &SqliteStore, experiment_id: &str, key: &str) -> Result<()> {
    let context = format!("delete a tag of experiment {experiment_id}");
    let mut tx = store.begin_write(&context).await?;
    let (id, _) = require_active(&mut tx, experiment_id).await?;
    let deleted = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?")
        .bind(id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .db(&context)?
        .rows_affected();
    if deleted == 0 {
        return Err(KeelError::not_found(format!(
            "No tag with name: {key} in experiment with id {experiment_id}"
        )));
    }
    tx.commit().await.db(&context)
}
