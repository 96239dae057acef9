//! Writing to runs: `log_batch` (the hot path), dataset and model inputs, model outputs.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use keel_core::tracking::{DatasetInput, Metric, ModelInput, ModelOutput, Param, Tag};
use keel_core::{KeelError, Result};
use sqlx::SqliteConnection;

use super::errors::{logged_model_not_found, DbResultExt};
use super::runs::{self, fetch_for_ids, tags_to_json, RUN_NAME_TAG};
use super::sql::{
    new_hex_id, placeholders, pow2_chunks, values_rows, MAX_IDS_PER_IN_LIST, MAX_ROWS_PER_STATEMENT,
};
use super::SqliteStore;

/// Logs metrics, params and tags in one transaction; any failure (a param
/// whose value differs from the logged one, an unknown model) logs nothing.
pub(super) async fn log_batch(
    store: &SqliteStore,
    run_id: &str,
    metrics: &[Metric],
    params: &[Param],
    tags: &[Tag],
) -> Result<()> {
    let context = format!("log batch to run {run_id}");
    let mut tx = store.begin_write(&context).await?;
    runs::require_active(&mut tx, run_id).await?;
    insert_params(&mut tx, run_id, params).await?;
    insert_metrics(&mut tx, run_id, metrics).await?;
    upsert_tags(&mut tx, run_id, tags).await?;
    tx.commit().await.db(&context)
}

/// Inserts new params; a key already logged with another value fails the batch.
async fn insert_params(conn: &mut SqliteConnection, run_id: &str, params: &[Param]) -> Result<()> {
    if params.is_empty() {
        return Ok(());
    }
    let mut logged: Vec<(String, String)> = Vec::new();
    for chunk in pow2_chunks(params, MAX_IDS_PER_IN_LIST) {
        let sql = format!(
            "SELECT key, value FROM params WHERE run_uuid = ? AND key IN ({})",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(run_id);
        for param in chunk {
            query = query.bind(&param.key);
        }
        logged.extend(query.fetch_all(&mut *conn).await.db("read logged params")?);
    }
    let mut known: HashMap<&str, &str> = logged
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    let mut new_params: Vec<&Param> = Vec::new();
    for param in params {
        match known.get(param.key.as_str()) {
            Some(old_value) if *old_value != param.value => {
                return Err(KeelError::invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already logged \
                     with value='{}' for run ID='{run_id}'. Attempted logging new value '{}'.",
                    param.key, old_value, param.value
                )));
            }
            Some(_) => {}
            None => {
                known.insert(&param.key, &param.value);
                new_params.push(param);
            }
        }
    }
    for chunk in pow2_chunks(&new_params, MAX_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO params (run_uuid, key, value) VALUES {} ON CONFLICT (run_uuid, key) DO NOTHING",
            values_rows(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for param in chunk {
            query = query.bind(run_id).bind(&param.key).bind(&param.value);
        }
        query.execute(&mut *conn).await.db("log params")?;
    }
    Ok(())
}

/// A metric as stored: NaN becomes value 0 with `is_nan` set, because SQLite
/// turns NaN into NULL. Infinities are stored as they are.
struct StoredMetric<'a> {
    metric: &'a Metric,
    value: f64,
    is_nan: bool,
}

impl<'a> StoredMetric<'a> {
    fn new(metric: &'a Metric) -> Self {
        let is_nan = metric.value.is_nan();
        StoredMetric {
            metric,
            value: if is_nan { 0.0 } else { metric.value },
            is_nan,
        }
    }

    /// MLflow's "more recent" order for latest metrics: step, then timestamp,
    /// then the stored value (so NaN compares as 0).
    fn is_newer_than(&self, other: &StoredMetric<'_>) -> bool {
        let by_step_and_time = (self.metric.step, self.metric.timestamp)
            .cmp(&(other.metric.step, other.metric.timestamp));
        match by_step_and_time {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => self.value > other.value,
        }
    }
}

async fn insert_metrics(
    conn: &mut SqliteConnection,
    run_id: &str,
    metrics: &[Metric],
) -> Result<()> {
    if metrics.is_empty() {
        return Ok(());
    }
    let stored: Vec<StoredMetric<'_>> = metrics.iter().map(StoredMetric::new).collect();

    require_models_exist(conn, metrics).await?;

    // Identical observations are stored once (the primary key covers every field).
    for chunk in pow2_chunks(&stored, MAX_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT OR IGNORE INTO metrics
                 (run_uuid, key, step, timestamp, value, is_nan, model_id, dataset_name, dataset_digest)
             VALUES {}",
            values_rows(chunk.len(), 9)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(run_id)
                .bind(&row.metric.key)
                .bind(row.metric.step)
                .bind(row.metric.timestamp)
                .bind(row.value)
                .bind(row.is_nan)
                .bind(row.metric.model_id.as_deref())
                .bind(row.metric.dataset_name.as_deref())
                .bind(row.metric.dataset_digest.as_deref());
        }
        query.execute(&mut *conn).await.db("log metrics")?;
    }

    // The newest observation of each key in this batch, then one upsert that
    // only replaces the stored latest value with a newer one.
    let mut newest: Vec<&StoredMetric<'_>> = Vec::new();
    let mut position_of_key: HashMap<&str, usize> = HashMap::new();
    for row in &stored {
        match position_of_key.get(row.metric.key.as_str()) {
            Some(&position) => {
                if row.is_newer_than(newest[position]) {
                    newest[position] = row;
                }
            }
            None => {
                position_of_key.insert(&row.metric.key, newest.len());
                newest.push(row);
            }
        }
    }
    for chunk in pow2_chunks(&newest, MAX_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES {}
             ON CONFLICT (run_uuid, key) DO UPDATE SET
                 step = excluded.step, timestamp = excluded.timestamp,
                 value = excluded.value, is_nan = excluded.is_nan
             WHERE (excluded.step, excluded.timestamp, excluded.value)
                 > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)",
            values_rows(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(run_id)
                .bind(&row.metric.key)
                .bind(row.metric.step)
                .bind(row.metric.timestamp)
                .bind(row.value)
                .bind(row.is_nan);
        }
        query
            .execute(&mut *conn)
            .await
            .db("update latest metrics")?;
    }

    insert_logged_model_metrics(conn, run_id, &stored).await
}

/// Metrics computed for a logged model must name a model that exists.
async fn require_models_exist(conn: &mut SqliteConnection, metrics: &[Metric]) -> Result<()> {
    let model_ids: Vec<String> = metrics
        .iter()
        .filter_map(|metric| metric.model_id.clone())
        .collect::<HashSet<String>>()
        .into_iter()
        .collect();
    if model_ids.is_empty() {
        return Ok(());
    }
    let found: Vec<(String,)> = fetch_for_ids(
        conn,
        "SELECT model_id FROM logged_models WHERE model_id IN",
        "",
        &model_ids,
        "look up logged models",
    )
    .await?;
    let found: HashSet<String> = found.into_iter().map(|(model_id,)| model_id).collect();
    match model_ids.iter().find(|model_id| !found.contains(*model_id)) {
        Some(missing) => Err(logged_model_not_found(missing)),
        None => Ok(()),
    }
}

/// Copies the metrics that carry a model id to that model's metrics, once per observation.
async fn insert_logged_model_metrics(
    conn: &mut SqliteConnection,
    run_id: &str,
    stored: &[StoredMetric<'_>],
) -> Result<()> {
    for row in stored {
        let Some(model_id) = row.metric.model_id.as_deref() else {
            continue;
        };
        sqlx::query(
            "INSERT INTO logged_model_metrics
                 (model_id, key, step, timestamp, value, is_nan, run_uuid, dataset_name, dataset_digest)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
             WHERE NOT EXISTS (
                 SELECT 1 FROM logged_model_metrics
                 WHERE model_id = ?1 AND key = ?2 AND step = ?3 AND timestamp = ?4 AND value = ?5
                   AND is_nan = ?6 AND run_uuid IS ?7 AND dataset_name IS ?8 AND dataset_digest IS ?9)",
        )
        .bind(model_id)
        .bind(&row.metric.key)
        .bind(row.metric.step)
        .bind(row.metric.timestamp)
        .bind(row.value)
        .bind(row.is_nan)
        .bind(run_id)
        .bind(row.metric.dataset_name.as_deref())
        .bind(row.metric.dataset_digest.as_deref())
        .execute(&mut *conn)
        .await
        .db("log logged model metrics")?;
    }
    Ok(())
}

/// Upserts tags (last value of a key wins); `mlflow.runName` also renames the run.
async fn upsert_tags(conn: &mut SqliteConnection, run_id: &str, tags: &[Tag]) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    for chunk in pow2_chunks(tags, MAX_ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO tags (run_uuid, key, value) VALUES {}
             ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
            values_rows(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for tag in chunk {
            query = query.bind(run_id).bind(&tag.key).bind(&tag.value);
        }
        query.execute(&mut *conn).await.db("set run tags")?;
    }
    if let Some(name_tag) = tags.iter().rev().find(|tag| tag.key == RUN_NAME_TAG) {
        sqlx::query("UPDATE runs SET name = ? WHERE run_uuid = ?")
            .bind(&name_tag.value)
            .bind(run_id)
            .execute(&mut *conn)
            .await
            .db("rename a run")?;
    }
    Ok(())
}

/// Links datasets (created once per experiment, name and digest) and logged
/// models to a run as its inputs. A dataset already linked keeps its first tags.
pub(super) async fn log_inputs(
    store: &SqliteStore,
    run_id: &str,
    datasets: &[DatasetInput],
    models: &[ModelInput],
) -> Result<()> {
    let context = format!("log inputs to run {run_id}");
    let mut tx = store.begin_write(&context).await?;
    let experiment_id = runs::require_active(&mut tx, run_id).await?;
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for input in datasets {
        let dataset = &input.dataset;
        if !seen.insert((&dataset.name, &dataset.digest)) {
            continue;
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
        )
        .bind(experiment_id)
        .bind(&dataset.name)
        .bind(&dataset.digest)
        .fetch_optional(&mut *tx)
        .await
        .db(&context)?;
        let dataset_uuid = match existing {
            Some(dataset_uuid) => dataset_uuid,
            None => {
                let dataset_uuid = new_hex_id();
                sqlx::query(
                    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type,
                                           source, schema, profile)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&dataset_uuid)
                .bind(experiment_id)
                .bind(&dataset.name)
                .bind(&dataset.digest)
                .bind(&dataset.source_type)
                .bind(&dataset.source)
                .bind(dataset.schema.as_deref())
                .bind(dataset.profile.as_deref())
                .execute(&mut *tx)
                .await
                .db(&context)?;
                dataset_uuid
            }
        };
        sqlx::query(
            "INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid, tags) VALUES (?, ?, ?)
             ON CONFLICT (run_uuid, dataset_uuid) DO NOTHING",
        )
        .bind(run_id)
        .bind(&dataset_uuid)
        .bind(tags_to_json(&input.tags))
        .execute(&mut *tx)
        .await
        .db(&context)?;
    }
    for model in models {
        sqlx::query("INSERT OR IGNORE INTO run_model_inputs (run_uuid, model_id) VALUES (?, ?)")
            .bind(run_id)
            .bind(&model.model_id)
            .execute(&mut *tx)
            .await
            .db(&context)?;
    }
    tx.commit().await.db(&context)
}

/// Records logged models a run produced; logging a model again updates its step.
pub(super) async fn log_outputs(
    store: &SqliteStore,
    run_id: &str,
    models: &[ModelOutput],
) -> Result<()> {
    let context = format!("log outputs of run {run_id}");
    let mut tx = store.begin_write(&context).await?;
    runs::require_active(&mut tx, run_id).await?;
    for model in models {
        sqlx::query(
            "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES (?, ?, ?)
             ON CONFLICT (run_uuid, model_id) DO UPDATE SET step = excluded.step",
        )
        .bind(run_id)
        .bind(&model.model_id)
        .bind(model.step)
        .execute(&mut *tx)
        .await
        .db(&context)?;
    }
    tx.commit().await.db(&context)
}
