//! Online stores: the latest feature values per entity key, read in
//! milliseconds by the feature server. Two backends pass one conformance suite
//! (`tests/online_conformance.rs`): an embedded SQLite file (the default, no
//! server needed) and Redis.
//!
//! Invariants every backend keeps:
//! - a write never replaces a stored row with an older one: a row is written
//!   only when its event timestamp is >= the stored one (equal: the later write
//!   wins, as a re-materialization of the same data must be idempotent);
//! - `read_batch` answers all views of a request in one round trip, in the
//!   order asked, `None` for a key the store does not hold;
//! - views are namespaced by project, so two projects never see each other.

mod redis_store;
mod sqlite;

pub use redis_store::RedisOnlineStore;
pub use sqlite::SqliteOnlineStore;

use crate::Result;

/// One row to write: the serialized entity key (`values::entity_key`), the
/// row's event timestamp in microseconds since the epoch, and the feature
/// values as a JSON object `{"feature": value, ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRow {
    pub key: Vec<u8>,
    pub event_ts: i64,
    pub values: Vec<u8>,
}

/// A stored row as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub event_ts: i64,
    pub values: Vec<u8>,
}

/// The keys to read from one feature view.
#[derive(Debug, Clone, Copy)]
pub struct ViewRead<'a> {
    pub view: &'a str,
    pub keys: &'a [Vec<u8>],
}

#[async_trait::async_trait]
pub trait OnlineStore: Send + Sync {
    /// Writes `rows` of `view`, skipping each row older than what is stored for
    /// its key. Returns how many rows were written.
    async fn write(&self, view: &str, rows: &[OnlineRow]) -> Result<usize>;

    /// Reads several views in one round trip: `result[i][j]` is view `i`'s row
    /// for its key `j`.
    async fn read_batch(&self, reads: &[ViewRead<'_>]) -> Result<Vec<Vec<Option<StoredRow>>>>;

    /// Removes every row of `view` (teardown, or a view deleted by `apply`).
    async fn drop_view(&self, view: &str) -> Result<()>;

    /// A short name for logs and `describe`: "sqlite" or "redis".
    fn kind(&self) -> &'static str;
}
