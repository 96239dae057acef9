//! Small helpers for building statements: placeholders, chunking, ids, clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Rows per multi-row statement at most. Chunks come in powers of two below
/// this, so a connection's statement cache holds a handful of shapes instead
/// of one per batch length.
pub(super) const MAX_ROWS_PER_STATEMENT: usize = 256;

/// Ids per `IN (...)` list at most, far below SQLite's variable limit.
pub(super) const MAX_IDS_PER_IN_LIST: usize = 512;

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `?,?,?` with `n` placeholders.
pub(super) fn placeholders(n: usize) -> String {
    let mut sql = String::with_capacity(n * 2);
    for idx in 0..n {
        if idx > 0 {
            sql.push(',');
        }
        sql.push('?');
    }
    sql
}

/// `(?,?),(?,?)` for `n_rows` rows of `n_columns` values.
pub(super) fn values_rows(n_rows: usize, n_columns: usize) -> String {
    let row = format!("({})", placeholders(n_columns));
    let mut sql = String::with_capacity(n_rows * (row.len() + 1));
    for idx in 0..n_rows {
        if idx > 0 {
            sql.push(',');
        }
        sql.push_str(&row);
    }
    sql
}

/// Splits `items` into chunks of `max` rows, then powers of two for the rest.
pub(super) fn pow2_chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = items;
    let mut size = max.max(1);
    while !rest.is_empty() {
        while size > rest.len() {
            size /= 2;
        }
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Joins URI or path segments with exactly one `/` between them.
pub(super) fn join_uri(base: &str, segments: &[&str]) -> String {
    let mut uri = base.trim_end_matches('/').to_string();
    for segment in segments {
        uri.push('/');
        uri.push_str(segment.trim_matches('/'));
    }
    uri
}

/// 32 lowercase hex characters, as MLflow's run ids.
pub(super) fn new_hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_covering_everything() {
        let items: Vec<usize> = (0..1000).collect();
        let chunks = pow2_chunks(&items, 256);
        let sizes: Vec<usize> = chunks.iter().map(|chunk| chunk.len()).collect();
        assert_eq!(sizes, vec![256, 256, 256, 128, 64, 32, 8]);
        let flattened: Vec<usize> = chunks.concat();
        assert_eq!(flattened, items);
        assert!(pow2_chunks::<u8>(&[], 256).is_empty());
    }

    #[test]
    fn placeholders_and_rows() {
        assert_eq!(placeholders(3), "?,?,?");
        assert_eq!(values_rows(2, 2), "(?,?),(?,?)");
    }

    #[test]
    fn join_uri_avoids_double_slashes() {
        assert_eq!(join_uri("s3://bucket/", &["0"]), "s3://bucket/0");
        assert_eq!(
            join_uri("/data/art", &["1", "abc", "artifacts"]),
            "/data/art/1/abc/artifacts"
        );
    }

    #[test]
    fn hex_ids_are_32_chars() {
        let id = new_hex_id();
        assert_eq!(id.len(), 32);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
