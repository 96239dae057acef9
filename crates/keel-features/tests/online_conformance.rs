//! The online store conformance suite: every check runs against each backend,
//! the SQLite file store (in a temporary folder) and Redis (at
//! `KEEL_TEST_REDIS_URL`, by default `redis://127.0.0.1:6379`). A Redis that
//! cannot be reached fails the Redis checks; they never pass without one.
//!
//! Each check gets stores on fresh, unique projects, so checks run in parallel
//! on one Redis without seeing each other; every view a check touches is
//! listed in `VIEWS` and dropped afterwards, whether the check passed or not.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use keel_features::online::{
    OnlineRow, OnlineStore, RedisOnlineStore, SqliteOnlineStore, StoredRow, ViewRead,
};
use tempfile::TempDir;

/// Every view the checks write to, so the harness can clean them all up.
const VIEWS: &[&str] = &[
    "drivers",
    "customers",
    "orders",
    "fleet*",
    "fleet_daily",
    "fleet[1]",
    "fleet1",
];

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

enum Backend {
    Sqlite,
    Redis,
}

/// Where a check's stores live; a SQLite folder is removed on drop.
enum Location {
    SqliteFile(TempDir),
    Redis(String),
}

impl Location {
    fn new(backend: Backend) -> Location {
        match backend {
            Backend::Sqlite => Location::SqliteFile(tempfile::tempdir().expect("temp dir")),
            Backend::Redis => Location::Redis(
                std::env::var("KEEL_TEST_REDIS_URL")
                    .unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned()),
            ),
        }
    }

    async fn open(&self, project: &str) -> Arc<dyn OnlineStore> {
        match self {
            Location::SqliteFile(dir) => {
                let path = dir.path().join("nested").join("online.db");
                let store = SqliteOnlineStore::open(&path, project)
                    .await
                    .expect("open sqlite online store");
                assert_eq!(store.kind(), "sqlite");
                Arc::new(store)
            }
            Location::Redis(url) => {
                let store = RedisOnlineStore::connect(url, project)
                    .await
                    .unwrap_or_else(|error| {
                        panic!(
                            "the Redis conformance checks need a running Redis, at \
                             KEEL_TEST_REDIS_URL or else {DEFAULT_REDIS_URL}: {error}"
                        )
                    });
                assert_eq!(store.kind(), "redis");
                Arc::new(store)
            }
        }
    }
}

/// A project name no other check, run or process uses.
fn unique_project() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "conformance_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `check` with two stores of `backend`, each on its own new project,
/// then drops every view of both, even when the check panicked.
async fn run_check<Check, Outcome>(backend: Backend, check: Check)
where
    Check: FnOnce(Arc<dyn OnlineStore>, Arc<dyn OnlineStore>) -> Outcome,
    Outcome: Future<Output = ()> + Send + 'static,
{
    let location = Location::new(backend);
    let store = location.open(&unique_project()).await;
    let other_project = location.open(&unique_project()).await;
    let outcome = tokio::spawn(check(store.clone(), other_project.clone())).await;
    for store in [&store, &other_project] {
        for view in VIEWS {
            store.drop_view(view).await.expect("drop view after check");
        }
    }
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("check did not finish: {error}"),
        }
    }
}

macro_rules! backend_checks {
    ($module:ident, $backend:ident, [$($single:ident),* $(,)?], [$($paired:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $single() {
                    super::run_check(super::Backend::$backend, |store, _| async move {
                        super::$single(&*store).await
                    })
                    .await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $paired() {
                    super::run_check(super::Backend::$backend, |store, other_project| async move {
                        super::$paired(&*store, &*other_project).await
                    })
                    .await;
                }
            )*
        }
    };
}

macro_rules! conformance {
    (single: [$($single:ident),* $(,)?], paired: [$($paired:ident),* $(,)?] $(,)?) => {
        backend_checks!(sqlite, Sqlite, [$($single),*], [$($paired),*]);
        backend_checks!(redis, Redis, [$($single),*], [$($paired),*]);
    };
}

conformance!(
    single: [
        written_rows_read_back,
        missing_keys_read_as_none,
        older_rows_are_skipped_newer_and_equal_overwrite,
        concurrent_writers_keep_the_newest_row,
        read_batch_answers_in_the_order_asked,
        drop_view_removes_that_view_only,
        drop_view_takes_glob_characters_literally,
        large_write_is_stored_completely,
        keys_are_arbitrary_bytes,
    ],
    paired: [projects_are_isolated],
);

fn row(key: &[u8], event_ts: i64, values: &str) -> OnlineRow {
    OnlineRow {
        key: key.to_vec(),
        event_ts,
        values: values.as_bytes().to_vec(),
    }
}

fn stored(event_ts: i64, values: &str) -> Option<StoredRow> {
    Some(StoredRow {
        event_ts,
        values: values.as_bytes().to_vec(),
    })
}

/// Reads `keys` of one view.
async fn read(store: &dyn OnlineStore, view: &str, keys: &[&[u8]]) -> Vec<Option<StoredRow>> {
    let keys: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
    let mut results = store
        .read_batch(&[ViewRead { view, keys: &keys }])
        .await
        .expect("read_batch");
    assert_eq!(results.len(), 1, "one result per view read");
    results.remove(0)
}

async fn write(store: &dyn OnlineStore, view: &str, rows: &[OnlineRow]) -> usize {
    store.write(view, rows).await.expect("write")
}

async fn written_rows_read_back(store: &dyn OnlineStore) {
    let rows = [
        row(
            b"driver-1",
            1_700_000_000_000_000,
            r#"{"rating":4.5,"trips":12}"#,
        ),
        row(
            b"driver-2",
            1_700_000_000_000_001,
            r#"{"rating":null,"name":"Zoë ✓"}"#,
        ),
    ];
    assert_eq!(write(store, "drivers", &rows).await, 2);

    let found = read(store, "drivers", &[b"driver-2", b"driver-1"]).await;
    assert_eq!(
        found,
        vec![
            stored(1_700_000_000_000_001, r#"{"rating":null,"name":"Zoë ✓"}"#),
            stored(1_700_000_000_000_000, r#"{"rating":4.5,"trips":12}"#),
        ]
    );
    assert_eq!(
        write(store, "drivers", &[]).await,
        0,
        "an empty write writes nothing"
    );
}

async fn missing_keys_read_as_none(store: &dyn OnlineStore) {
    assert_eq!(read(store, "drivers", &[b"nobody"]).await, vec![None]);

    write(store, "drivers", &[row(b"driver-1", 10, r#"{"trips":1}"#)]).await;
    assert_eq!(
        read(store, "drivers", &[b"nobody", b"driver-1", b"driver-10"]).await,
        vec![None, stored(10, r#"{"trips":1}"#), None]
    );
    assert_eq!(
        read(store, "customers", &[b"driver-1"]).await,
        vec![None],
        "a key of another view is missing"
    );
    assert_eq!(
        read(store, "drivers", &[]).await,
        Vec::<Option<StoredRow>>::new()
    );
    let nothing = store.read_batch(&[]).await.expect("read_batch of nothing");
    assert!(nothing.is_empty());
}

async fn older_rows_are_skipped_newer_and_equal_overwrite(store: &dyn OnlineStore) {
    assert_eq!(
        write(
            store,
            "drivers",
            &[row(b"driver-1", 200, r#"{"v":"first"}"#)]
        )
        .await,
        1
    );

    assert_eq!(
        write(
            store,
            "drivers",
            &[row(b"driver-1", 100, r#"{"v":"older"}"#)]
        )
        .await,
        0,
        "an older row is not written"
    );
    assert_eq!(
        read(store, "drivers", &[b"driver-1"]).await,
        vec![stored(200, r#"{"v":"first"}"#)]
    );

    assert_eq!(
        write(
            store,
            "drivers",
            &[row(b"driver-1", 300, r#"{"v":"newer"}"#)]
        )
        .await,
        1
    );
    assert_eq!(
        read(store, "drivers", &[b"driver-1"]).await,
        vec![stored(300, r#"{"v":"newer"}"#)]
    );

    assert_eq!(
        write(
            store,
            "drivers",
            &[row(b"driver-1", 300, r#"{"v":"same time"}"#)]
        )
        .await,
        1,
        "a row as recent as the stored one replaces it"
    );
    assert_eq!(
        read(store, "drivers", &[b"driver-1"]).await,
        vec![stored(300, r#"{"v":"same time"}"#)]
    );

    // One write mixing skipped and written rows counts only the written ones.
    let mixed = [
        row(b"driver-1", 299, r#"{"v":"stale"}"#),
        row(b"driver-2", -5, r#"{"v":"before the epoch"}"#),
        row(b"driver-3", i64::MAX, r#"{"v":"far future"}"#),
    ];
    assert_eq!(write(store, "drivers", &mixed).await, 2);
    // Timestamps past 2^53 (where doubles lose precision) still compare exactly.
    assert_eq!(
        write(
            store,
            "drivers",
            &[row(b"driver-3", i64::MAX - 1, r#"{"v":"just older"}"#)]
        )
        .await,
        0
    );
    assert_eq!(
        write(
            store,
            "drivers",
            &[row(b"driver-2", -6, r#"{"v":"older, negative"}"#)]
        )
        .await,
        0
    );
    assert_eq!(
        read(store, "drivers", &[b"driver-1", b"driver-2", b"driver-3"]).await,
        vec![
            stored(300, r#"{"v":"same time"}"#),
            stored(-5, r#"{"v":"before the epoch"}"#),
            stored(i64::MAX, r#"{"v":"far future"}"#),
        ]
    );
}

async fn concurrent_writers_keep_the_newest_row(store: &dyn OnlineStore) {
    let write_at = |event_ts: i64| async move {
        let rows = [row(
            b"driver-1",
            event_ts,
            &format!(r#"{{"ts":{event_ts}}}"#),
        )];
        write(store, "drivers", &rows).await
    };
    let counts = tokio::join!(
        write_at(5),
        write_at(8),
        write_at(1),
        write_at(7),
        write_at(3),
        write_at(6),
        write_at(2),
        write_at(4),
    );
    assert_eq!(counts.1, 1, "the newest row is always written");
    assert_eq!(
        read(store, "drivers", &[b"driver-1"]).await,
        vec![stored(8, r#"{"ts":8}"#)]
    );
}

async fn read_batch_answers_in_the_order_asked(store: &dyn OnlineStore) {
    write(
        store,
        "drivers",
        &[
            row(b"k1", 1, r#"{"view":"drivers","key":1}"#),
            row(b"k3", 3, r#"{"view":"drivers","key":3}"#),
        ],
    )
    .await;
    write(
        store,
        "customers",
        &[row(b"k2", 2, r#"{"view":"customers","key":2}"#)],
    )
    .await;
    write(
        store,
        "orders",
        &[row(b"k1", 10, r#"{"view":"orders","key":1}"#)],
    )
    .await;

    let orders_keys = vec![b"k1".to_vec(), b"k1".to_vec()];
    let drivers_keys = vec![b"k3".to_vec(), b"k2".to_vec(), b"k1".to_vec()];
    let customers_keys = vec![b"k9".to_vec(), b"k2".to_vec()];
    let results = store
        .read_batch(&[
            ViewRead {
                view: "orders",
                keys: &orders_keys,
            },
            ViewRead {
                view: "drivers",
                keys: &drivers_keys,
            },
            ViewRead {
                view: "customers",
                keys: &customers_keys,
            },
        ])
        .await
        .expect("read_batch");
    assert_eq!(
        results,
        vec![
            vec![
                stored(10, r#"{"view":"orders","key":1}"#),
                stored(10, r#"{"view":"orders","key":1}"#),
            ],
            vec![
                stored(3, r#"{"view":"drivers","key":3}"#),
                None,
                stored(1, r#"{"view":"drivers","key":1}"#),
            ],
            vec![None, stored(2, r#"{"view":"customers","key":2}"#)],
        ]
    );
}

async fn drop_view_removes_that_view_only(store: &dyn OnlineStore) {
    write(
        store,
        "drivers",
        &[row(b"k1", 100, r#"{"a":1}"#), row(b"k2", 100, r#"{"a":2}"#)],
    )
    .await;
    write(store, "customers", &[row(b"k1", 100, r#"{"b":1}"#)]).await;

    store.drop_view("drivers").await.expect("drop drivers");
    assert_eq!(
        read(store, "drivers", &[b"k1", b"k2"]).await,
        vec![None, None]
    );
    assert_eq!(
        read(store, "customers", &[b"k1"]).await,
        vec![stored(100, r#"{"b":1}"#)]
    );

    store
        .drop_view("orders")
        .await
        .expect("dropping a view without rows succeeds");
    assert_eq!(
        write(store, "drivers", &[row(b"k1", 1, r#"{"a":"again"}"#)]).await,
        1,
        "a dropped view keeps no timestamps"
    );
}

async fn drop_view_takes_glob_characters_literally(store: &dyn OnlineStore) {
    for view in ["fleet*", "fleet_daily", "fleet[1]", "fleet1"] {
        write(
            store,
            view,
            &[row(b"k", 1, &format!(r#"{{"view":"{view}"}}"#))],
        )
        .await;
    }
    store.drop_view("fleet*").await.expect("drop fleet*");
    store.drop_view("fleet[1]").await.expect("drop fleet[1]");

    assert_eq!(read(store, "fleet*", &[b"k"]).await, vec![None]);
    assert_eq!(read(store, "fleet[1]", &[b"k"]).await, vec![None]);
    assert_eq!(
        read(store, "fleet_daily", &[b"k"]).await,
        vec![stored(1, r#"{"view":"fleet_daily"}"#)]
    );
    assert_eq!(
        read(store, "fleet1", &[b"k"]).await,
        vec![stored(1, r#"{"view":"fleet1"}"#)]
    );
}

async fn projects_are_isolated(store: &dyn OnlineStore, other_project: &dyn OnlineStore) {
    write(
        store,
        "drivers",
        &[row(b"k1", 100, r#"{"project":"first"}"#)],
    )
    .await;
    assert_eq!(read(other_project, "drivers", &[b"k1"]).await, vec![None]);

    assert_eq!(
        write(
            other_project,
            "drivers",
            &[row(b"k1", 50, r#"{"project":"second"}"#)]
        )
        .await,
        1,
        "another project's newer row does not block this one"
    );
    assert_eq!(
        read(store, "drivers", &[b"k1"]).await,
        vec![stored(100, r#"{"project":"first"}"#)]
    );
    assert_eq!(
        read(other_project, "drivers", &[b"k1"]).await,
        vec![stored(50, r#"{"project":"second"}"#)]
    );

    other_project
        .drop_view("drivers")
        .await
        .expect("drop drivers");
    assert_eq!(read(other_project, "drivers", &[b"k1"]).await, vec![None]);
    assert_eq!(
        read(store, "drivers", &[b"k1"]).await,
        vec![stored(100, r#"{"project":"first"}"#)]
    );
}

async fn large_write_is_stored_completely(store: &dyn OnlineStore) {
    const N_ROWS: usize = 20_000;
    let values_of = |row_idx: usize| format!(r#"{{"trips":{row_idx},"rating":{}}}"#, row_idx % 5);
    let rows: Vec<OnlineRow> = (0..N_ROWS)
        .map(|row_idx| {
            let event_ts = 1_000 + i64::try_from(row_idx).expect("row index fits i64");
            row(
                format!("driver-{row_idx}").as_bytes(),
                event_ts,
                &values_of(row_idx),
            )
        })
        .collect();
    assert_eq!(write(store, "drivers", &rows).await, N_ROWS);

    let sample_idxs: Vec<usize> = (0..N_ROWS).step_by(97).chain([N_ROWS - 1]).collect();
    let sample_keys: Vec<Vec<u8>> = sample_idxs
        .iter()
        .map(|row_idx| format!("driver-{row_idx}").into_bytes())
        .collect();
    let results = store
        .read_batch(&[ViewRead {
            view: "drivers",
            keys: &sample_keys,
        }])
        .await
        .expect("read_batch");
    let expected: Vec<Option<StoredRow>> = sample_idxs
        .iter()
        .map(|&row_idx| {
            let event_ts = 1_000 + i64::try_from(row_idx).expect("row index fits i64");
            stored(event_ts, &values_of(row_idx))
        })
        .collect();
    assert_eq!(results, vec![expected]);

    let all_keys: Vec<Vec<u8>> = rows.iter().map(|row| row.key.clone()).collect();
    let all = store
        .read_batch(&[ViewRead {
            view: "drivers",
            keys: &all_keys,
        }])
        .await
        .expect("read_batch of every key");
    assert_eq!(
        all[0].iter().filter(|found| found.is_some()).count(),
        N_ROWS
    );

    let older: Vec<OnlineRow> = rows
        .iter()
        .map(|stored_row| {
            row(
                &stored_row.key,
                stored_row.event_ts - 1,
                r#"{"stale":true}"#,
            )
        })
        .collect();
    assert_eq!(
        write(store, "drivers", &older).await,
        0,
        "a stale re-run writes nothing"
    );
}

async fn keys_are_arbitrary_bytes(store: &dyn OnlineStore) {
    let keys: [&[u8]; 9] = [
        b"\x00",
        b"\xff",
        b"*",
        b":",
        b"a",
        b"a\x00",
        b"\x00\xff*:?[]\\",
        b"drivers:k1",
        b"",
    ];
    let rows: Vec<OnlineRow> = keys
        .iter()
        .enumerate()
        .map(|(key_idx, key)| row(key, 7, &format!(r#"{{"key_idx":{key_idx}}}"#)))
        .collect();
    assert_eq!(write(store, "drivers", &rows).await, keys.len());

    let mut asked: Vec<&[u8]> = keys.to_vec();
    asked.reverse();
    let expected: Vec<Option<StoredRow>> = (0..keys.len())
        .rev()
        .map(|key_idx| stored(7, &format!(r#"{{"key_idx":{key_idx}}}"#)))
        .collect();
    assert_eq!(read(store, "drivers", &asked).await, expected);
    assert_eq!(
        read(store, "drivers", &[b"\x00\x00", b"a\x00\x00"]).await,
        vec![None, None]
    );

    store.drop_view("drivers").await.expect("drop drivers");
    assert_eq!(read(store, "drivers", &asked).await, vec![None; keys.len()]);
}
