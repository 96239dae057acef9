//! The embedded online store: one SQLite file in WAL mode, one table keyed by
//! (project, view, entity key), no server to run.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use super::{OnlineRow, OnlineStore, StoredRow, ViewRead};
use crate::{FeatureError, Result};

/// SQLite refuses statements with more bound parameters than this
/// (`SQLITE_MAX_VARIABLE_NUMBER` since 3.32).
///
/// Statements use anonymous `?` parameters only: for numbered ones (`?7`)
/// sqlx looks each name up with `sqlite3_bind_parameter_name`, a linear scan,
/// which made binding a 500-pair read quadratic and cost milliseconds.
const MAX_PARAMETERS: usize = 32_766;

/// Rows per INSERT statement. Big enough that a bulk write costs few
/// statements, small enough that the full-size statement is cheap to prepare
/// and to keep in the connection's statement cache.
const ROWS_PER_INSERT: usize = 500;
const _: () = assert!(ROWS_PER_INSERT * 5 <= MAX_PARAMETERS);

/// Writes this small (a pushed row or a few) keep their statement cached too;
/// the odd-sized tails of bulk writes are prepared once and dropped.
const MAX_CACHED_SMALL_INSERT: usize = 16;

/// Reads with more (view, key) pairs than this are prepared once and not
/// cached: large one-off statements would push the small, hot ones out of the
/// per-connection statement cache.
const MAX_CACHED_READ_PAIRS: usize = 1_024;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS online_features (
    project TEXT NOT NULL,
    view TEXT NOT NULL,
    entity_key BLOB NOT NULL,
    event_ts INTEGER NOT NULL,
    feature_values BLOB NOT NULL,
    PRIMARY KEY (project, view, entity_key)
) WITHOUT ROWID";

/// The online store in a SQLite file, scoped to one project.
#[derive(Debug, Clone)]
pub struct SqliteOnlineStore {
    pool: SqlitePool,
    project: String,
}

impl SqliteOnlineStore {
    /// Opens (creating it and its parent folders if needed) the SQLite file at
    /// `path` and serves `project`'s rows from it.
    pub async fn open(path: &Path, project: &str) -> Result<Self> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|error| FeatureError::io(parent, error))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // A large read's rows flow from sqlx's worker thread without it
            // stalling every 50 rows (the default) for the reader to catch up.
            .row_buffer_size(4096);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|error| {
                FeatureError::Online(format!(
                    "cannot open the sqlite online store at {}: {error}",
                    path.display()
                ))
            })?;
        sqlx::query(CREATE_TABLE)
            .execute(&pool)
            .await
            .map_err(sqlite_error)?;
        Ok(Self {
            pool,
            project: project.to_owned(),
        })
    }

    /// Closes the pool's connections; reads and writes fail afterwards.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl OnlineStore for SqliteOnlineStore {
    async fn write(&self, view: &str, rows: &[OnlineRow]) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut transaction = self.pool.begin().await.map_err(sqlite_error)?;
        let mut n_written = 0;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = insert_sql(chunk.len());
            let mut query = sqlx::query(&sql).persistent(
                chunk.len() == ROWS_PER_INSERT || chunk.len() <= MAX_CACHED_SMALL_INSERT,
            );
            for row in chunk {
                query = query
                    .bind(&self.project)
                    .bind(view)
                    .bind(row.key.as_slice())
                    .bind(row.event_ts)
                    .bind(row.values.as_slice());
            }
            let outcome = query
                .execute(&mut *transaction)
                .await
                .map_err(sqlite_error)?;
            // An upsert touches at most one stored row per row of the chunk.
            n_written += usize::try_from(outcome.rows_affected()).unwrap_or(chunk.len());
        }
        transaction.commit().await.map_err(sqlite_error)?;
        Ok(n_written)
    }

    async fn read_batch(&self, reads: &[ViewRead<'_>]) -> Result<Vec<Vec<Option<StoredRow>>>> {
        let mut results: Vec<Vec<Option<StoredRow>>> = reads
            .iter()
            .map(|read| vec![None; read.keys.len()])
            .collect();
        // Every (view, key) pair gets a position in one flat list; the query
        // hands the position back so rows land where they were asked for.
        let pairs: Vec<(usize, usize)> = reads
            .iter()
            .enumerate()
            .flat_map(|(read_idx, read)| {
                (0..read.keys.len()).map(move |key_idx| (read_idx, key_idx))
            })
            .collect();
        if pairs.is_empty() {
            return Ok(results);
        }
        let pairs_per_query = (MAX_PARAMETERS - 1) / 2;
        let mut connection = self.pool.acquire().await.map_err(sqlite_error)?;
        for (chunk_idx, chunk) in pairs.chunks(pairs_per_query).enumerate() {
            let chunk_offset = chunk_idx * pairs_per_query;
            let sql = select_sql(chunk.len());
            let mut query = sqlx::query(&sql).persistent(chunk.len() <= MAX_CACHED_READ_PAIRS);
            for &(read_idx, key_idx) in chunk {
                let read = &reads[read_idx];
                query = query.bind(read.view).bind(read.keys[key_idx].as_slice());
            }
            query = query.bind(&self.project);
            let rows = query
                .fetch_all(&mut *connection)
                .await
                .map_err(sqlite_error)?;
            for row in rows {
                let position: i64 = row.try_get(0).map_err(sqlite_error)?;
                let Some(&(read_idx, key_idx)) = usize::try_from(position)
                    .ok()
                    .and_then(|position| pairs.get(chunk_offset + position))
                else {
                    return Err(FeatureError::Online(format!(
                        "sqlite returned an unknown request position {position}"
                    )));
                };
                results[read_idx][key_idx] = Some(StoredRow {
                    event_ts: row.try_get(1).map_err(sqlite_error)?,
                    values: row.try_get(2).map_err(sqlite_error)?,
                });
            }
        }
        Ok(results)
    }

    async fn drop_view(&self, view: &str) -> Result<()> {
        sqlx::query("DELETE FROM online_features WHERE project = ? AND view = ?")
            .bind(&self.project)
            .bind(view)
            .execute(&self.pool)
            .await
            .map_err(sqlite_error)?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

/// An upsert of `n_rows` rows, bound as (project, view, key, event_ts, values)
/// per row. A stored row is replaced only by one at least as recent, so
/// `rows_affected` counts exactly the rows written.
fn insert_sql(n_rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO online_features (project, view, entity_key, event_ts, feature_values) VALUES ",
    );
    for row_idx in 0..n_rows {
        if row_idx > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?)");
    }
    sql.push_str(
        " ON CONFLICT (project, view, entity_key) DO UPDATE SET \
         event_ts = excluded.event_ts, feature_values = excluded.feature_values \
         WHERE excluded.event_ts >= online_features.event_ts",
    );
    sql
}

/// A lookup of `n_pairs` (view, key) pairs, bound as (view, key) per pair and
/// then the project. Each row found comes back with its pair's position.
/// `CROSS JOIN` keeps the wanted pairs as the outer loop, so each pair is one
/// primary-key probe whatever the size of the table.
fn select_sql(n_pairs: usize) -> String {
    let mut sql = String::from("WITH wanted (position, view, entity_key) AS (VALUES ");
    for pair_idx in 0..n_pairs {
        if pair_idx > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({pair_idx},?,?)"));
    }
    sql.push_str(
        ") SELECT wanted.position, stored.event_ts, stored.feature_values \
         FROM wanted CROSS JOIN online_features AS stored \
         ON stored.project = ? AND stored.view = wanted.view \
         AND stored.entity_key = wanted.entity_key",
    );
    sql
}

fn sqlite_error(error: sqlx::Error) -> FeatureError {
    FeatureError::Online(format!("sqlite: {error}"))
}
