//! Schema migrations: SQL files embedded in the binary, applied in order, one
//! transaction each, recorded in `schema_migrations`.

use keel_core::{ErrorCode, KeelError, Result};
use sqlx::{Connection, SqliteConnection};

use super::errors::DbResultExt;
use super::sql::{join_uri, now_ms};

/// Every migration this build knows, oldest first. Versions never change once released.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_tracking.sql")),
    (2, include_str!("../../migrations/sqlite/0002_registry.sql")),
    (3, include_str!("../../migrations/sqlite/0003_webhooks.sql")),
];

/// The schema version this build writes.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// Brings the database up to [`latest_version`]; refuses a database that a
/// newer Keel has migrated further.
pub(super) async fn run(conn: &mut SqliteConnection, default_artifact_root: &str) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )
    .execute(&mut *conn)
    .await
    .db("create the schema_migrations table")?;

    for (version, migration_sql) in MIGRATIONS {
        // IMMEDIATE: two processes starting on one file migrate one after the other.
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .db("start a migration")?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await
            .db("read the schema version")?;
        let applied = applied.unwrap_or(0);
        if applied > latest_version() {
            return Err(KeelError::new(
                ErrorCode::InvalidState,
                format!(
                    "the database schema is at version {applied} but this keel knows versions up \
                     to {}; upgrade keel or point it at another database",
                    latest_version()
                ),
            ));
        }
        if applied >= *version {
            continue;
        }
        let context = format!("apply schema migration {version}");
        sqlx::raw_sql(migration_sql)
            .execute(&mut *tx)
            .await
            .db(&context)?;
        if *version == 1 {
            insert_default_experiment(&mut tx, default_artifact_root).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .db(&context)?;
        tx.commit().await.db(&context)?;
        tracing::info!(version, "applied sqlite schema migration");
    }
    Ok(())
}

/// MLflow clients expect experiment 0, "Default", to exist.
async fn insert_default_experiment(
    conn: &mut SqliteConnection,
    default_artifact_root: &str,
) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT OR IGNORE INTO experiments
             (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
         VALUES (0, 'Default', ?, 'active', ?, ?)",
    )
    .bind(join_uri(default_artifact_root, &["0"]))
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .db("create the Default experiment")?;
    Ok(())
}
