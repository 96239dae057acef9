//! SQLite store (placeholder)
pub struct SqliteStore;
