//! MLflow 3 logged models: create, finalize, tags, soft delete, search.

use std::collections::HashMap;

use keel_core::page::decode_offset_token;
use keel_core::store::{LoggedModelSearch, NewLoggedModel, Page};
use keel_core::tracking::{LifecycleStage, LoggedModel, LoggedModelStatus, Metric, Param, Tag};
use keel_core::{KeelError, Result};
use sqlx::SqliteConnection;

use super::errors::{corrupt, logged_model_not_found, DbResultExt};
use super::experiments;
use super::runs::{fetch_for_ids, fetch_key_values};
use super::search::{fetch_page_ids, text_id, validate_max_results};
use super::sql::{join_uri, new_hex_id, now_ms};
use super::SqliteStore;
use crate::search_sql::{logged_model_search_sql, Dialect};

/// Page size of a logged-model search that asks for none (MLflow's default).
const SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT: u32 = 100;

pub(super) async fn create(store: &SqliteStore, new_model: &NewLoggedModel) -> Result<LoggedModel> {
    let context = format!(
        "create a logged model in experiment {}",
        new_model.experiment_id
    );
    let mut tx = store.begin_write(&context).await?;
    let (experiment_id, experiment_location) =
        experiments::require_active(&mut tx, &new_model.experiment_id).await?;
    let model_id = format!("m-{}", new_hex_id());
    let now = now_ms();
    sqlx::query(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location,
             creation_timestamp_ms, last_updated_timestamp_ms, status, model_type, source_run_id,
             lifecycle_stage)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
    )
    .bind(&model_id)
    .bind(experiment_id)
    .bind(&new_model.name)
    .bind(join_uri(
        &experiment_location,
        &["models", &model_id, "artifacts"],
    ))
    .bind(now)
    .bind(now)
    .bind(LoggedModelStatus::Pending.as_str())
    .bind(new_model.model_type.as_deref())
    .bind(new_model.source_run_id.as_deref())
    .execute(&mut *tx)
    .await
    .db(&context)?;
    insert_params(&mut tx, &model_id, &new_model.params).await?;
    upsert_tags(&mut tx, &model_id, &new_model.tags).await?;
    let model = load(&mut tx, std::slice::from_ref(&model_id))
        .await?
        .pop()
        .ok_or_else(|| logged_model_not_found(&model_id))?;
    tx.commit().await.db(&context)?;
    Ok(model)
}

async fn upsert_tags(conn: &mut SqliteConnection, model_id: &str, tags: &[Tag]) -> Result<()> {
    for tag in tags {
        sqlx::query(
            "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, ?)
             ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(model_id)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut *conn)
        .await
        .db("set logged model tags")?;
    }
    Ok(())
}

/// An active logged model; a deleted one is "not found", as in MLflow.
pub(super) async fn get(store: &SqliteStore, model_id: &str) -> Result<LoggedModel> {
    let mut tx = store.begin_read("read a logged model").await?;
    let model = load(&mut tx, &[model_id.to_string()]).await?.pop();
    match model {
        Some(model) if model.lifecycle_stage == LifecycleStage::Active => Ok(model),
        _ => Err(logged_model_not_found(model_id)),
    }
}

/// Fails unless the model exists (in any lifecycle stage, as MLflow's writes allow).
async fn require_exists(conn: &mut SqliteConnection, model_id: &str) -> Result<()> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM logged_models WHERE model_id = ?")
        .bind(model_id)
        .fetch_optional(conn)
        .await
        .db("read a logged model")?;
    found
        .map(|_| ())
        .ok_or_else(|| logged_model_not_found(model_id))
}

pub(super) async fn finalize(
    store: &SqliteStore,
    model_id: &str,
    status: LoggedModelStatus,
) -> Result<LoggedModel> {
    let context = format!("finalize logged model {model_id}");
    let mut tx = store.begin_write(&context).await?;
    let updated = sqlx::query(
        "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?",
    )
    .bind(status.as_str())
    .bind(now_ms())
    .bind(model_id)
    .execute(&mut *tx)
    .await
    .db(&context)?
    .rows_affected();
    if updated == 0 {
        return Err(logged_model_not_found(model_id));
    }
    let model = load(&mut tx, &[model_id.to_string()])
        .await?
        .pop()
        .ok_or_else(|| logged_model_not_found(model_id))?;
    tx.commit().await.db(&context)?;
    Ok(model)
}

pub(super) async fn set_tags(store: &SqliteStore, model_id: &str, tags: &[Tag]) -> Result<()> {
    let context = format!("set tags on logged model {model_id}");
    let mut tx = store.begin_write(&context).await?;
    require_exists(&mut tx, model_id).await?;
    upsert_tags(&mut tx, model_id, tags).await?;
    tx.commit().await.db(&context)
}

/// Adds params; a key already logged with another value fails them all.
pub(super) async fn log_params(
    store: &SqliteStore,
    model_id: &str,
    params: &[Param],
) -> Result<()> {
    let context = format!("log params to logged model {model_id}");
    let mut tx = store.begin_write(&context).await?;
    require_exists(&mut tx, model_id).await?;
    insert_params(&mut tx, model_id, params).await?;
    tx.commit().await.db(&context)
}

async fn insert_params(
    conn: &mut SqliteConnection,
    model_id: &str,
    params: &[Param],
) -> Result<()> {
    for param in params {
        let logged: Option<String> = sqlx::query_scalar(
            "SELECT value FROM logged_model_params WHERE model_id = ? AND key = ?",
        )
        .bind(model_id)
        .bind(&param.key)
        .fetch_optional(&mut *conn)
        .await
        .db("read logged model params")?;
        match logged {
            Some(old_value) if old_value != param.value => {
                return Err(KeelError::invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged \
                     with value='{old_value}' for logged model ID='{model_id}'. Attempted logging \
                     new value '{}'.",
                    param.key, param.value
                )));
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO logged_model_params (model_id, key, value) VALUES (?, ?, ?)",
                )
                .bind(model_id)
                .bind(&param.key)
                .bind(&param.value)
                .execute(&mut *conn)
                .await
                .db("log logged model params")?;
            }
        }
    }
    Ok(())
}

pub(super) async fn delete_tag(store: &SqliteStore, model_id: &str, key: &str) -> Result<()> {
    let context = format!("delete a tag of logged model {model_id}");
    let mut tx = store.begin_write(&context).await?;
    require_exists(&mut tx, model_id).await?;
    let deleted = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?")
        .bind(model_id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .db(&context)?
        .rows_affected();
    if deleted == 0 {
        return Err(KeelError::not_found(format!(
            "No tag with key '{key}' found for model with ID '{model_id}'."
        )));
    }
    tx.commit().await.db(&context)
}

pub(super) async fn delete(store: &SqliteStore, model_id: &str) -> Result<()> {
    let context = format!("delete logged model {model_id}");
    let mut tx = store.begin_write(&context).await?;
    let updated = sqlx::query(
        "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ?
         WHERE model_id = ?",
    )
    .bind(now_ms())
    .bind(model_id)
    .execute(&mut *tx)
    .await
    .db(&context)?
    .rows_affected();
    if updated == 0 {
        return Err(logged_model_not_found(model_id));
    }
    tx.commit().await.db(&context)
}

pub(super) async fn search(
    store: &SqliteStore,
    search: &LoggedModelSearch,
) -> Result<Page<LoggedModel>> {
    let page_size = match search.max_results {
        0 => SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT,
        max_results => max_results,
    };
    validate_max_results(page_size)?;
    if search.datasets.iter().any(|(name, _)| name.is_empty()) {
        return Err(KeelError::invalid(
            "`dataset_name` in the `datasets` clause must be specified.",
        ));
    }
    let offset = decode_offset_token(search.page_token.as_deref())?;
    let mut search = search.clone();
    search.max_results = page_size;
    let query =
        logged_model_search_sql(&search, offset, u64::from(page_size) + 1, Dialect::Sqlite)?;
    let mut tx = store.begin_read("search logged models").await?;
    let (ids, next_page_token) =
        fetch_page_ids(&mut tx, &query, offset, page_size, text_id).await?;
    let items = load(&mut tx, &ids).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

type ModelRow = (
    String,
    i64,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);
type ModelMetricRow = (
    String,
    String,
    f64,
    bool,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

/// The logged models with these ids (any lifecycle stage), complete, in the order of `ids`.
async fn load(conn: &mut SqliteConnection, ids: &[String]) -> Result<Vec<LoggedModel>> {
    let model_rows: Vec<ModelRow> = fetch_for_ids(
        conn,
        "SELECT model_id, experiment_id, name, artifact_location, creation_timestamp_ms,
                last_updated_timestamp_ms, status, status_message, model_type, source_run_id,
                lifecycle_stage
         FROM logged_models WHERE model_id IN",
        "",
        ids,
        "read logged models",
    )
    .await?;
    if model_rows.is_empty() {
        return Ok(Vec::new());
    }

    let mut tags = fetch_key_values(
        conn,
        "SELECT model_id, key, value FROM logged_model_tags WHERE model_id IN",
        "ORDER BY model_id, key",
        ids,
        "read logged model tags",
        |key, value| Tag { key, value },
    )
    .await?;
    let mut params = fetch_key_values(
        conn,
        "SELECT model_id, key, value FROM logged_model_params WHERE model_id IN",
        "ORDER BY model_id, key",
        ids,
        "read logged model params",
        |key, value| Param { key, value },
    )
    .await?;

    let mut metrics: HashMap<String, Vec<Metric>> = HashMap::new();
    let metric_rows: Vec<ModelMetricRow> = fetch_for_ids(
        conn,
        "SELECT model_id, key, value, is_nan, timestamp, step, dataset_name, dataset_digest
         FROM logged_model_metrics WHERE model_id IN",
        "ORDER BY model_id, key, step, timestamp",
        ids,
        "read logged model metrics",
    )
    .await?;
    for (model_id, key, value, is_nan, timestamp, step, dataset_name, dataset_digest) in metric_rows
    {
        let metric = Metric {
            key,
            value: if is_nan { f64::NAN } else { value },
            timestamp,
            step,
            model_id: Some(model_id.clone()),
            dataset_name,
            dataset_digest,
        };
        metrics.entry(model_id).or_default().push(metric);
    }

    let mut models: HashMap<String, LoggedModel> = HashMap::with_capacity(model_rows.len());
    for row in model_rows {
        let (
            model_id,
            experiment_id,
            name,
            artifact_location,
            creation_timestamp_ms,
            last_updated_timestamp_ms,
            status,
            status_message,
            model_type,
            source_run_id,
            stage,
        ) = row;
        let model = LoggedModel {
            model_id: model_id.clone(),
            experiment_id: experiment_id.to_string(),
            name,
            artifact_location,
            creation_timestamp_ms,
            last_updated_timestamp_ms,
            status: status
                .parse()
                .map_err(|err| corrupt("logged model status", err))?,
            status_message,
            model_type,
            source_run_id,
            lifecycle_stage: stage
                .parse()
                .map_err(|err| corrupt("lifecycle stage", err))?,
            tags: tags.remove(&model_id).unwrap_or_default(),
            params: params.remove(&model_id).unwrap_or_default(),
            metrics: metrics.remove(&model_id).unwrap_or_default(),
        };
        models.insert(model_id, model);
    }
    Ok(ids
        .iter()
        .filter_map(|model_id| models.remove(model_id))
        .collect())
}
