//! Runs the id queries compiled by `search_sql` and turns their rows into pages.

use keel_core::page::encode_offset_token;
use keel_core::{KeelError, Result};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::errors::{corrupt, DbResultExt};
use crate::search_sql::{BindValue, CompiledQuery};

/// The most results one search page may hold (MLflow's `SEARCH_MAX_RESULTS_THRESHOLD`).
pub(super) const SEARCH_MAX_RESULTS_THRESHOLD: u32 = 50_000;

/// MLflow's bounds on `max_results` for run and experiment searches.
pub(super) fn validate_max_results(max_results: u32) -> Result<()> {
    if max_results < 1 {
        return Err(KeelError::invalid(format!(
            "Invalid value for request parameter max_results. It must be a positive integer, \
             but got {max_results}"
        )));
    }
    if max_results > SEARCH_MAX_RESULTS_THRESHOLD {
        return Err(KeelError::invalid(format!(
            "Invalid value for request parameter max_results. It must be at most \
             {SEARCH_MAX_RESULTS_THRESHOLD}, but got {max_results}"
        )));
    }
    Ok(())
}

/// Runs a compiled query asking for `page_size + 1` ids and returns the first
/// `page_size` ids and, when there were more, the token of the next page.
pub(super) async fn fetch_page_ids<Id>(
    conn: &mut SqliteConnection,
    query: &CompiledQuery,
    offset: u64,
    page_size: u32,
    read_id: impl Fn(&SqliteRow) -> Result<Id>,
) -> Result<(Vec<Id>, Option<String>)> {
    let mut statement = sqlx::query(&query.sql);
    for bind in &query.binds {
        statement = match bind {
            BindValue::Text(text) => statement.bind(text.as_str()),
            BindValue::Int(int) => statement.bind(*int),
            BindValue::Real(real) => statement.bind(*real),
        };
    }
    let rows = statement.fetch_all(conn).await.db("run the search query")?;
    let mut ids = rows.iter().map(read_id).collect::<Result<Vec<Id>>>()?;
    let page_size = page_size as usize;
    let next_page_token = if ids.len() > page_size {
        ids.truncate(page_size);
        Some(encode_offset_token(offset + page_size as u64))
    } else {
        None
    };
    Ok((ids, next_page_token))
}

/// The first column as text (run and logged model ids).
pub(super) fn text_id(row: &SqliteRow) -> Result<String> {
    row.try_get::<String, _>(0)
        .map_err(|err| corrupt("search result id", err))
}

/// The first column as an integer (experiment ids), whether stored or computed as text.
pub(super) fn int_id(row: &SqliteRow) -> Result<i64> {
    if let Ok(id) = row.try_get::<i64, _>(0) {
        return Ok(id);
    }
    let text = row
        .try_get::<String, _>(0)
        .map_err(|err| corrupt("experiment id", err))?;
    text.parse().map_err(|err| corrupt("experiment id", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_results_bounds() {
        assert!(validate_max_results(0).is_err());
        assert!(validate_max_results(1).is_ok());
        assert!(validate_max_results(50_000).is_ok());
        assert!(validate_max_results(50_001).is_err());
    }
}
