//! Metric history: one metric of one run page by page, and the sampled
//! multi-run view the MLflow UI's charts ask for.

use std::collections::{BTreeSet, HashSet};

use keel_core::page::{decode_offset_token, encode_offset_token};
use keel_core::store::{MetricHistoryQuery, Page};
use keel_core::tracking::Metric;
use keel_core::{KeelError, Result};
use sqlx::SqliteConnection;

use super::errors::DbResultExt;
use super::sql::{placeholders, pow2_chunks, MAX_IDS_PER_IN_LIST};
use super::SqliteStore;

/// At most this many observations per run in a bulk-interval answer
/// (MLflow's `MAX_RESULTS_GET_METRIC_HISTORY`).
const MAX_RESULTS_GET_METRIC_HISTORY: usize = 25_000;

type MetricRow = (
    String,
    f64,
    bool,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

const METRIC_COLUMNS: &str =
    "key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest";

fn metric_from_row(row: MetricRow) -> Metric {
    let (key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) = row;
    Metric {
        key,
        value: if is_nan { f64::NAN } else { value },
        timestamp,
        step,
        model_id,
        dataset_name,
        dataset_digest,
    }
}

/// Every observation of a metric ordered by step, timestamp, value; all of
/// them when `max_results` is `None`. An unknown run has an empty history, as in MLflow.
pub(super) async fn history(
    store: &SqliteStore,
    query: &MetricHistoryQuery,
) -> Result<Page<Metric>> {
    if query.max_results == Some(0) {
        return Err(KeelError::invalid(
            "Invalid value for request parameter max_results. It must be a positive integer, but got 0",
        ));
    }
    let offset = decode_offset_token(query.page_token.as_deref())?;
    // SQLite reads LIMIT -1 as "no limit".
    let limit = query
        .max_results
        .map_or(-1, |max_results| i64::from(max_results) + 1);
    let sql = format!(
        "SELECT {METRIC_COLUMNS} FROM metrics WHERE run_uuid = ? AND key = ?
         ORDER BY step, timestamp, value LIMIT ? OFFSET ?"
    );
    let mut conn = store.read_conn("read metric history").await?;
    let rows: Vec<MetricRow> = sqlx::query_as(&sql)
        .bind(&query.run_id)
        .bind(&query.metric_key)
        .bind(limit)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .db("read metric history")?;
    let mut items: Vec<Metric> = rows.into_iter().map(metric_from_row).collect();
    let next_page_token = match query.max_results {
        Some(max_results) if items.len() > max_results as usize => {
            items.truncate(max_results as usize);
            Some(encode_offset_token(offset + u64::from(max_results)))
        }
        _ => None,
    };
    Ok(Page {
        items,
        next_page_token,
    })
}

/// MLflow's `GetMetricHistoryBulkInterval`: sample at most `max_results` of the
/// steps present in any of the runs within `[start_step, end_step]` (evenly,
/// always keeping the last), add every run's first and last step, and return
/// each run's observations at those steps.
pub(super) async fn bulk_interval(
    store: &SqliteStore,
    run_ids: &[String],
    metric_key: &str,
    start_step: Option<i64>,
    end_step: Option<i64>,
    max_results: u32,
) -> Result<Vec<(String, Metric)>> {
    let mut unique_run_ids: Vec<String> = Vec::with_capacity(run_ids.len());
    let mut seen: HashSet<&str> = HashSet::new();
    for run_id in run_ids {
        if seen.insert(run_id) {
            unique_run_ids.push(run_id.clone());
        }
    }
    let mut tx = store.begin_read("read metric histories").await?;
    let (all_steps, ends) = steps_of_runs(&mut tx, &unique_run_ids, metric_key).await?;

    let start = start_step.unwrap_or(0);
    let end = end_step.unwrap_or_else(|| all_steps.last().copied().unwrap_or(0));
    let mut steps: BTreeSet<i64> = sample_steps(&all_steps, start, end, max_results as usize);
    steps.extend(ends.into_iter().filter(|step| (start..=end).contains(step)));
    let steps: Vec<i64> = steps.into_iter().collect();

    let mut samples = Vec::new();
    for run_id in &unique_run_ids {
        let observations = observations_at_steps(&mut tx, run_id, metric_key, &steps).await?;
        samples.extend(
            observations
                .into_iter()
                .map(|metric| (run_id.clone(), metric)),
        );
    }
    Ok(samples)
}

/// The sorted distinct steps logged for the metric in any of the runs, and
/// each run's first and last step.
async fn steps_of_runs(
    conn: &mut SqliteConnection,
    run_ids: &[String],
    metric_key: &str,
) -> Result<(Vec<i64>, Vec<i64>)> {
    let mut all_steps: BTreeSet<i64> = BTreeSet::new();
    let mut ends: Vec<i64> = Vec::new();
    for run_id in run_ids {
        let steps: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT step FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY step",
        )
        .bind(run_id)
        .bind(metric_key)
        .fetch_all(&mut *conn)
        .await
        .db("read metric steps")?;
        if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
            ends.push(*first);
            ends.push(*last);
        }
        all_steps.extend(steps);
    }
    Ok((all_steps.into_iter().collect(), ends))
}

/// At most `max_results` of the sorted `all_steps` within `[start, end]`,
/// evenly spaced and always including the last one in range.
fn sample_steps(all_steps: &[i64], start: i64, end: i64, max_results: usize) -> BTreeSet<i64> {
    let start_idx = all_steps.partition_point(|step| *step < start);
    let end_idx = all_steps.partition_point(|step| *step <= end);
    if end_idx <= start_idx {
        return BTreeSet::new();
    }
    let in_range = &all_steps[start_idx..end_idx];
    if in_range.len() <= max_results || max_results == 0 {
        return in_range.iter().copied().collect();
    }
    let interval = in_range.len() as f64 / max_results as f64;
    let mut sampled: BTreeSet<i64> = (0..max_results)
        .filter_map(|sample_idx| {
            in_range
                .get((sample_idx as f64 * interval) as usize)
                .copied()
        })
        .collect();
    if let Some(last) = in_range.last() {
        sampled.insert(*last);
    }
    sampled
}

async fn observations_at_steps(
    conn: &mut SqliteConnection,
    run_id: &str,
    metric_key: &str,
    steps: &[i64],
) -> Result<Vec<Metric>> {
    let mut metrics = Vec::new();
    // `steps` is sorted, so chunk after chunk keeps the step order.
    for chunk in pow2_chunks(steps, MAX_IDS_PER_IN_LIST) {
        let sql = format!(
            "SELECT {METRIC_COLUMNS} FROM metrics WHERE run_uuid = ? AND key = ? AND step IN ({})
             ORDER BY step, timestamp, value",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query_as::<_, MetricRow>(&sql)
            .bind(run_id)
            .bind(metric_key);
        for step in chunk {
            query = query.bind(step);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .db("read metric history")?;
        metrics.extend(rows.into_iter().map(metric_from_row));
        if metrics.len() >= MAX_RESULTS_GET_METRIC_HISTORY {
            metrics.truncate(MAX_RESULTS_GET_METRIC_HISTORY);
            break;
        }
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_steps_are_all_kept() {
        let steps = [0, 5, 10];
        assert_eq!(sample_steps(&steps, 0, 10, 10), BTreeSet::from([0, 5, 10]));
        assert_eq!(sample_steps(&steps, 1, 9, 10), BTreeSet::from([5]));
        assert!(sample_steps(&steps, 11, 20, 10).is_empty());
    }

    #[test]
    fn many_steps_are_sampled_evenly_with_first_and_last() {
        let steps: Vec<i64> = (0..100).collect();
        let sampled = sample_steps(&steps, 0, 99, 10);
        assert_eq!(
            sampled,
            BTreeSet::from([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99])
        );
        let window = sample_steps(&steps, 50, 59, 5);
        assert_eq!(window, BTreeSet::from([50, 52, 54, 56, 58, 59]));
    }
}
