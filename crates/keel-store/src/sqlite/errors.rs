//! The one place where SQLite and pool errors become `KeelError`s, and the
//! messages MLflow uses for missing or inactive entities.

use keel_core::{ErrorCode, KeelError, Result};
use sqlx::error::ErrorKind;

/// SQLite's primary result codes for "another connection holds the lock".
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// Translates a database error. `context` says what the store was doing, in
/// words a user can act on ("log batch to run 1234").
pub(super) fn db_error(context: &str, err: sqlx::Error) -> KeelError {
    match &err {
        sqlx::Error::Database(db_err) => {
            let message = db_err.message();
            match db_err.kind() {
                ErrorKind::UniqueViolation => {
                    KeelError::already_exists(format!("{context}: already exists ({message})"))
                }
                ErrorKind::ForeignKeyViolation => KeelError::not_found(format!(
                    "{context}: it refers to an entity that does not exist ({message})"
                )),
                ErrorKind::NotNullViolation | ErrorKind::CheckViolation => {
                    KeelError::invalid(format!("{context}: invalid value ({message})"))
                }
                _ if is_busy(db_err.code().as_deref()) => busy(context),
                _ => internal(context, &err),
            }
        }
        sqlx::Error::PoolTimedOut => busy(context),
        _ => internal(context, &err),
    }
}

fn is_busy(code: Option<&str>) -> bool {
    let Some(code) = code.and_then(|c| c.parse::<i32>().ok()) else {
        return false;
    };
    matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)
}

fn busy(context: &str) -> KeelError {
    KeelError::new(
        ErrorCode::TemporarilyUnavailable,
        format!("{context}: the database is busy, retry the request"),
    )
}

fn internal(context: &str, err: &sqlx::Error) -> KeelError {
    tracing::error!(error = %err, "sqlite store: {context}");
    KeelError::internal(format!("{context}: database error: {err}"))
}

/// `.db("what I was doing")` on any sqlx result.
pub(super) trait DbResultExt<T> {
    fn db(self, context: &str) -> Result<T>;
}

impl<T> DbResultExt<T> for std::result::Result<T, sqlx::Error> {
    fn db(self, context: &str) -> Result<T> {
        self.map_err(|err| db_error(context, err))
    }
}

/// A value read from the database that the domain cannot represent (a corrupt
/// or hand-edited row).
pub(super) fn corrupt(what: &str, err: impl std::fmt::Display) -> KeelError {
    KeelError::internal(format!("unreadable {what} in the database: {err}"))
}

pub(super) fn run_not_found(run_id: &str) -> KeelError {
    KeelError::not_found(format!("Run with id={run_id} not found"))
}

pub(super) fn experiment_not_found(experiment_id: &str) -> KeelError {
    KeelError::not_found(format!("No Experiment with id={experiment_id} exists"))
}

pub(super) fn experiment_name_taken(name: &str) -> KeelError {
    KeelError::already_exists(format!("Experiment(name={name}) already exists."))
}

pub(super) fn logged_model_not_found(model_id: &str) -> KeelError {
    KeelError::not_found(format!("Logged model with ID '{model_id}' not found."))
}

pub(super) fn run_not_active(run_id: &str, stage: &str) -> KeelError {
    KeelError::invalid(format!(
        "The run {run_id} must be in the 'active' state. Current state is {stage}."
    ))
}

pub(super) fn experiment_not_active(experiment_id: &str, stage: &str) -> KeelError {
    KeelError::invalid(format!(
        "The experiment {experiment_id} must be in the 'active' state. Current state is {stage}."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_codes_include_extended_ones() {
        assert!(is_busy(Some("5")));
        assert!(is_busy(Some("517"))); // SQLITE_BUSY_SNAPSHOT
        assert!(is_busy(Some("6")));
        assert!(!is_busy(Some("19"))); // SQLITE_CONSTRAINT
        assert!(!is_busy(None));
    }

    #[test]
    fn pool_timeout_is_temporarily_unavailable() {
        let err = db_error("log batch", sqlx::Error::PoolTimedOut);
        assert_eq!(err.code, ErrorCode::TemporarilyUnavailable);
    }
}
