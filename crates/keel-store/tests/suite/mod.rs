//! The store conformance suite: backend-independent checks, each a `pub async
//! fn` taking `Arc<dyn TrackingStore>` on a fresh store whose default artifact
//! root is [`ARTIFACT_ROOT`]. Every backend's runner calls every check.

pub mod concurrency;
pub mod experiments;
pub mod inputs;
pub mod logged_models;
pub mod logging;
pub mod metrics;
pub mod runs;
pub mod search;

use std::fmt::Debug;

use keel_core::store::{NewRun, TrackingStore};
use keel_core::tracking::{Metric, Run, Tag};
use keel_core::{ErrorCode, KeelError, Result};

/// The default artifact root the runners open stores with.
pub const ARTIFACT_ROOT: &str = "file:///keel-artifacts";

/// Asserts that `result` failed with `code` and returns the error.
pub fn expect_error<T: Debug>(result: Result<T>, code: ErrorCode) -> KeelError {
    match result {
        Ok(value) => panic!("expected a {code} error, got Ok({value:?})"),
        Err(err) => {
            assert_eq!(err.code, code, "unexpected error: {err}");
            err
        }
    }
}

/// Creates an experiment with a unique name.
pub async fn new_experiment(store: &dyn TrackingStore, name: &str) -> String {
    store
        .create_experiment(name, None, &[])
        .await
        .expect("create experiment")
}

/// Creates a run named `name` in `experiment_id`.
pub async fn new_run(store: &dyn TrackingStore, experiment_id: &str, name: &str) -> Run {
    store
        .create_run(&NewRun {
            experiment_id: experiment_id.to_string(),
            user_id: "tester".to_string(),
            run_name: name.to_string(),
            start_time: Some(1_700_000_000_000),
            tags: vec![],
        })
        .await
        .expect("create run")
}

pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|tag| tag.key == key)
        .map(|tag| tag.value.as_str())
}

pub fn metric(key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
    Metric::new(key, value, timestamp, step)
}
