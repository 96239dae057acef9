//! Keel's metadata stores. `SqliteStore` implements every store trait of
//! `keel-core` on an embedded SQLite file (WAL); a PostgreSQL backend will sit
//! beside it and pass the same conformance suite (`tests/conformance.rs`).

mod search_sql;
mod sqlite;

pub use sqlite::SqliteStore;
