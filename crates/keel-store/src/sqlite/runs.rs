//! Runs: lifecycle, run-name/tag sync, search, and assembling whole runs
//! (params, tags, latest metrics, inputs, outputs) for a page of ids at once.

use std::collections::HashMap;

use keel_core::page::decode_offset_token;
use keel_core::store::{NewRun, Page, RunSearch, RunUpdate};
use keel_core::tracking::{
    Dataset, DatasetInput, LifecycleStage, Metric, ModelInput, ModelOutput, Param, Run, RunData,
    RunInfo, RunInputs, RunOutputs, Tag,
};
use keel_core::{KeelError, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, SqliteConnection};

use super::errors::{corrupt, run_not_active, run_not_found, DbResultExt};
use super::experiments;
use super::search::{fetch_page_ids, text_id, validate_max_results};
use super::sql::{join_uri, new_hex_id, now_ms, placeholders, pow2_chunks, MAX_IDS_PER_IN_LIST};
use super::SqliteStore;
use crate::search_sql::{run_search_sql, Dialect};

/// The tag that mirrors a run's name.
pub(super) const RUN_NAME_TAG: &str = "mlflow.runName";

/// Fails unless the run exists and is active; returns its experiment id.
pub(super) async fn require_active(conn: &mut SqliteConnection, run_id: &str) -> Result<i64> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT experiment_id, lifecycle_stage FROM runs WHERE run_uuid = ?")
            .bind(run_id)
            .fetch_optional(conn)
            .await
            .db("read a run")?;
    match row {
        None => Err(run_not_found(run_id)),
        Some((_, stage)) if stage != LifecycleStage::Active.as_str() => {
            Err(run_not_active(run_id, &stage))
        }
        Some((experiment_id, _)) => Ok(experiment_id),
    }
}

pub(super) async fn create(store: &SqliteStore, new_run: &NewRun) -> Result<Run> {
    let tag_name = new_run
        .tags
        .iter()
        .rev()
        .find(|tag| tag.key == RUN_NAME_TAG);
    let run_name = match tag_name {
        Some(tag) if !new_run.run_name.is_empty() && tag.value != new_run.run_name => {
            return Err(KeelError::invalid(format!(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with \
                 different values (run_name='{}', mlflow.runName='{}').",
                new_run.run_name, tag.value
            )));
        }
        Some(tag) if new_run.run_name.is_empty() => tag.value.clone(),
        _ => new_run.run_name.clone(),
    };

    let context = format!("create a run in experiment {}", new_run.experiment_id);
    let mut tx = store.begin_write(&context).await?;
    let (experiment_id, experiment_location) =
        experiments::require_active(&mut tx, &new_run.experiment_id).await?;
    let run_id = new_hex_id();
    sqlx::query(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time,
                           artifact_uri, lifecycle_stage)
         VALUES (?, ?, ?, ?, 'RUNNING', ?, NULL, ?, 'active')",
    )
    .bind(&run_id)
    .bind(experiment_id)
    .bind(&run_name)
    .bind(&new_run.user_id)
    .bind(new_run.start_time.unwrap_or_else(now_ms))
    .bind(join_uri(&experiment_location, &[&run_id, "artifacts"]))
    .execute(&mut *tx)
    .await
    .db(&context)?;

    let mut tags = new_run.tags.clone();
    if tag_name.is_none() && !run_name.is_empty() {
        tags.push(Tag::new(RUN_NAME_TAG, run_name));
    }
    upsert_tags(&mut tx, &run_id, &tags).await?;
    let run = load(&mut tx, std::slice::from_ref(&run_id))
        .await?
        .pop()
        .ok_or_else(|| run_not_found(&run_id))?;
    tx.commit().await.db(&context)?;
    Ok(run)
}

/// Sets run tags, last value winning; one statement per tag is fine here
/// because `log_batch` has its own multi-row path.
pub(super) async fn upsert_tags(
    conn: &mut SqliteConnection,
    run_id: &str,
    tags: &[Tag],
) -> Result<()> {
    for tag in tags {
        sqlx::query(
            "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)
             ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
        )
        .bind(run_id)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut *conn)
        .await
        .db("set a run tag")?;
    }
    Ok(())
}

pub(super) async fn get(store: &SqliteStore, run_id: &str) -> Result<Run> {
    let mut tx = store.begin_read("read a run").await?;
    load(&mut tx, &[run_id.to_string()])
        .await?
        .pop()
        .ok_or_else(|| run_not_found(run_id))
}

pub(super) async fn update(
    store: &SqliteStore,
    run_id: &str,
    update: &RunUpdate,
) -> Result<RunInfo> {
    let context = format!("update run {run_id}");
    let mut tx = store.begin_write(&context).await?;
    require_active(&mut tx, run_id).await?;
    let new_name = update.run_name.as_deref().filter(|name| !name.is_empty());
    sqlx::query(
        "UPDATE runs SET status = COALESCE(?, status), end_time = COALESCE(?, end_time),
                         name = COALESCE(?, name)
         WHERE run_uuid = ?",
    )
    .bind(update.status.map(|status| status.as_str()))
    .bind(update.end_time)
    .bind(new_name)
    .bind(run_id)
    .execute(&mut *tx)
    .await
    .db(&context)?;
    if let Some(name) = new_name {
        upsert_tags(&mut tx, run_id, &[Tag::new(RUN_NAME_TAG, name)]).await?;
    }
    let run = load(&mut tx, &[run_id.to_string()])
        .await?
        .pop()
        .ok_or_else(|| run_not_found(run_id))?;
    tx.commit().await.db(&context)?;
    Ok(run.info)
}

pub(super) async fn delete(store: &SqliteStore, run_id: &str) -> Result<()> {
    set_stage(store, run_id, LifecycleStage::Deleted).await
}

pub(super) async fn restore(store: &SqliteStore, run_id: &str) -> Result<()> {
    set_stage(store, run_id, LifecycleStage::Active).await
}

async fn set_stage(store: &SqliteStore, run_id: &str, stage: LifecycleStage) -> Result<()> {
    let context = format!("move run {run_id} to {}", stage.as_str());
    let deleted_time = match stage {
        LifecycleStage::Deleted => Some(now_ms()),
        LifecycleStage::Active => None,
    };
    let mut tx = store.begin_write(&context).await?;
    let updated =
        sqlx::query("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?")
            .bind(stage.as_str())
            .bind(deleted_time)
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .db(&context)?
            .rows_affected();
    if updated == 0 {
        return Err(run_not_found(run_id));
    }
    tx.commit().await.db(&context)
}

pub(super) async fn delete_tag(store: &SqliteStore, run_id: &str, key: &str) -> Result<()> {
    let context = format!("delete a tag of run {run_id}");
    let mut tx = store.begin_write(&context).await?;
    require_active(&mut tx, run_id).await?;
    let deleted = sqlx::query("DELETE FROM tags WHERE run_uuid = ? AND key = ?")
        .bind(run_id)
        .bind(key)
        .execute(&mut *tx)
        .await
        .db(&context)?
        .rows_affected();
    if deleted == 0 {
        return Err(KeelError::not_found(format!(
            "No tag with name: {key} in run with id {run_id}"
        )));
    }
    tx.commit().await.db(&context)
}

pub(super) async fn search(store: &SqliteStore, search: &RunSearch) -> Result<Page<Run>> {
    validate_max_results(search.max_results)?;
    let offset = decode_offset_token(search.page_token.as_deref())?;
    let query = run_search_sql(
        search,
        offset,
        u64::from(search.max_results) + 1,
        Dialect::Sqlite,
    )?;
    let mut tx = store.begin_read("search runs").await?;
    let (ids, next_page_token) =
        fetch_page_ids(&mut tx, &query, offset, search.max_results, text_id).await?;
    let items = load(&mut tx, &ids).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

/// Runs `SELECT <columns> FROM ... WHERE <id column> IN (<ids>) <suffix>` over
/// `ids` in chunks and returns every row.
pub(super) async fn fetch_for_ids<T>(
    conn: &mut SqliteConnection,
    select_from_where_in: &str,
    suffix: &str,
    ids: &[String],
    context: &str,
) -> Result<Vec<T>>
where
    T: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
{
    let mut rows = Vec::new();
    for chunk in pow2_chunks(ids, MAX_IDS_PER_IN_LIST) {
        let sql = format!(
            "{select_from_where_in} ({}) {suffix}",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query_as::<_, T>(&sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        rows.extend(query.fetch_all(&mut *conn).await.db(context)?);
    }
    Ok(rows)
}

/// `(id, key, value)` rows for `ids` (params or tags), grouped by id in row order.
pub(super) async fn fetch_key_values<T>(
    conn: &mut SqliteConnection,
    select_from_where_in: &str,
    suffix: &str,
    ids: &[String],
    context: &str,
    make: impl Fn(String, String) -> T,
) -> Result<HashMap<String, Vec<T>>> {
    let rows: Vec<(String, String, String)> =
        fetch_for_ids(conn, select_from_where_in, suffix, ids, context).await?;
    let mut grouped: HashMap<String, Vec<T>> = HashMap::new();
    for (id, key, value) in rows {
        grouped.entry(id).or_default().push(make(key, value));
    }
    Ok(grouped)
}

type RunRow = (
    String,
    i64,
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    String,
    String,
);
type LatestMetricRow = (String, String, f64, bool, i64, i64);
type DatasetInputRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// The runs with these ids, complete, in the order of `ids` (unknown ids are skipped).
pub(super) async fn load(conn: &mut SqliteConnection, ids: &[String]) -> Result<Vec<Run>> {
    let run_rows: Vec<RunRow> = fetch_for_ids(
        conn,
        "SELECT run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri,
                lifecycle_stage
         FROM runs WHERE run_uuid IN",
        "",
        ids,
        "read runs",
    )
    .await?;
    if run_rows.is_empty() {
        return Ok(Vec::new());
    }

    let mut params = fetch_key_values(
        conn,
        "SELECT run_uuid, key, value FROM params WHERE run_uuid IN",
        "ORDER BY run_uuid, key",
        ids,
        "read run params",
        |key, value| Param { key, value },
    )
    .await?;

    let mut tags = fetch_key_values(
        conn,
        "SELECT run_uuid, key, value FROM tags WHERE run_uuid IN",
        "ORDER BY run_uuid, key",
        ids,
        "read run tags",
        |key, value| Tag { key, value },
    )
    .await?;

    let mut metrics: HashMap<String, Vec<Metric>> = HashMap::new();
    let metric_rows: Vec<LatestMetricRow> = fetch_for_ids(
        conn,
        "SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN",
        "ORDER BY run_uuid, key",
        ids,
        "read run metrics",
    )
    .await?;
    for (run_id, key, value, is_nan, timestamp, step) in metric_rows {
        let value = if is_nan { f64::NAN } else { value };
        metrics
            .entry(run_id)
            .or_default()
            .push(Metric::new(key, value, timestamp, step));
    }

    let mut dataset_inputs: HashMap<String, Vec<DatasetInput>> = HashMap::new();
    let dataset_rows: Vec<DatasetInputRow> = fetch_for_ids(
        conn,
        "SELECT i.run_uuid, i.tags, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
         FROM run_dataset_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid
         WHERE i.run_uuid IN",
        "ORDER BY i.run_uuid, d.name, d.digest",
        ids,
        "read run dataset inputs",
    )
    .await?;
    for (run_id, tags_json, name, digest, source_type, source, schema, profile) in dataset_rows {
        dataset_inputs
            .entry(run_id)
            .or_default()
            .push(DatasetInput {
                tags: tags_from_json(&tags_json)?,
                dataset: Dataset {
                    name,
                    digest,
                    source_type,
                    source,
                    schema,
                    profile,
                },
            });
    }

    let mut model_inputs: HashMap<String, Vec<ModelInput>> = HashMap::new();
    let input_rows: Vec<(String, String)> = fetch_for_ids(
        conn,
        "SELECT run_uuid, model_id FROM run_model_inputs WHERE run_uuid IN",
        "ORDER BY run_uuid, model_id",
        ids,
        "read run model inputs",
    )
    .await?;
    for (run_id, model_id) in input_rows {
        model_inputs
            .entry(run_id)
            .or_default()
            .push(ModelInput { model_id });
    }

    let mut model_outputs: HashMap<String, Vec<ModelOutput>> = HashMap::new();
    let output_rows: Vec<(String, String, i64)> = fetch_for_ids(
        conn,
        "SELECT run_uuid, model_id, step FROM run_model_outputs WHERE run_uuid IN",
        "ORDER BY run_uuid, step, model_id",
        ids,
        "read run model outputs",
    )
    .await?;
    for (run_id, model_id, step) in output_rows {
        model_outputs
            .entry(run_id)
            .or_default()
            .push(ModelOutput { model_id, step });
    }

    let mut infos: HashMap<String, RunInfo> = HashMap::with_capacity(run_rows.len());
    for (
        run_id,
        experiment_id,
        run_name,
        user_id,
        status,
        start_time,
        end_time,
        artifact_uri,
        stage,
    ) in run_rows
    {
        let info = RunInfo {
            run_id: run_id.clone(),
            experiment_id: experiment_id.to_string(),
            run_name,
            user_id,
            status: status.parse().map_err(|err| corrupt("run status", err))?,
            start_time,
            end_time,
            artifact_uri,
            lifecycle_stage: stage
                .parse()
                .map_err(|err| corrupt("lifecycle stage", err))?,
        };
        infos.insert(run_id, info);
    }

    let mut runs = Vec::with_capacity(infos.len());
    for run_id in ids {
        let Some(info) = infos.remove(run_id) else {
            continue;
        };
        runs.push(Run {
            info,
            data: RunData {
                metrics: metrics.remove(run_id).unwrap_or_default(),
                params: params.remove(run_id).unwrap_or_default(),
                tags: tags.remove(run_id).unwrap_or_default(),
            },
            inputs: RunInputs {
                dataset_inputs: dataset_inputs.remove(run_id).unwrap_or_default(),
                model_inputs: model_inputs.remove(run_id).unwrap_or_default(),
            },
            outputs: RunOutputs {
                model_outputs: model_outputs.remove(run_id).unwrap_or_default(),
            },
        });
    }
    Ok(runs)
}

/// Dataset input tags are stored as one JSON object.
pub(super) fn tags_to_json(tags: &[Tag]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = tags
        .iter()
        .map(|tag| {
            (
                tag.key.clone(),
                serde_json::Value::String(tag.value.clone()),
            )
        })
        .collect();
    serde_json::Value::Object(object).to_string()
}

fn tags_from_json(json: &str) -> Result<Vec<Tag>> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|err| corrupt("dataset input tags", err))?;
    Ok(object
        .into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(value) => Tag { key, value },
            other => Tag {
                key,
                value: other.to_string(),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_tags_round_trip_through_json() {
        // Keys come back sorted.
        let tags = vec![
            Tag::new("k", "v\"quoted\""),
            Tag::new("mlflow.data.context", "train"),
        ];
        let json = tags_to_json(&tags);
        assert_eq!(tags_from_json(&json).expect("valid json"), tags);
        assert!(tags_from_json("not json").is_err());
    }
}
