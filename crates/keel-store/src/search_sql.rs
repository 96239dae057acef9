//! Compiles validated search filters and orderings to SQL (placeholder: the
//! real compiler replaces this file; the signatures below are the contract).

use keel_core::store::{ExperimentSearch, LoggedModelSearch, RunSearch};
use keel_core::{KeelError, Result};

/// SQL dialects the compiler can target.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a `?` (SQLite) or `$n` (PostgreSQL) placeholder, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BindValue {
    Text(String),
    Int(i64),
    Real(f64),
}

/// A complete SELECT statement and its binds, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompiledQuery {
    pub sql: String,
    pub binds: Vec<BindValue>,
}

/// `SELECT runs.run_uuid FROM runs ... WHERE <filter> ORDER BY <order> LIMIT limit OFFSET offset`:
/// the ids of one page of matching runs, in order.
pub(crate) fn run_search_sql(
    _search: &RunSearch,
    _offset: u64,
    _limit: u64,
    _dialect: Dialect,
) -> Result<CompiledQuery> {
    Err(KeelError::internal("search compiler not built yet"))
}

/// The ids (`experiments.experiment_id`) of one page of matching experiments, in order.
pub(crate) fn experiment_search_sql(
    _search: &ExperimentSearch,
    _offset: u64,
    _limit: u64,
    _dialect: Dialect,
) -> Result<CompiledQuery> {
    Err(KeelError::internal("search compiler not built yet"))
}

/// The ids (`logged_models.model_id`) of one page of matching logged models, in order.
pub(crate) fn logged_model_search_sql(
    _search: &LoggedModelSearch,
    _offset: u64,
    _limit: u64,
    _dialect: Dialect,
) -> Result<CompiledQuery> {
    Err(KeelError::internal("search compiler not built yet"))
}
