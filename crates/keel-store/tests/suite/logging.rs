//! `log_batch`: atomicity, param immutability, NaN and infinities, latest-metric rules.

use std::sync::Arc;

use keel_core::store::{MetricHistoryQuery, TrackingStore};
use keel_core::tracking::{Metric, Param, Tag};
use keel_core::ErrorCode;

use super::{expect_error, metric, new_run, tag_value};

async fn history(store: &dyn TrackingStore, run_id: &str, key: &str) -> Vec<Metric> {
    store
        .get_metric_history(&MetricHistoryQuery {
            run_id: run_id.to_string(),
            metric_key: key.to_string(),
            max_results: None,
            page_token: None,
        })
        .await
        .expect("metric history")
        .items
}

async fn latest(store: &dyn TrackingStore, run_id: &str, key: &str) -> Metric {
    let run = store.get_run(run_id).await.expect("get run");
    run.data
        .metrics
        .into_iter()
        .find(|metric| metric.key == key)
        .unwrap_or_else(|| panic!("no latest value of {key}"))
}

pub async fn log_batch_is_atomic_on_param_conflict(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "atomic").await.info.run_id;
    store
        .log_batch(&run_id, &[], &[Param::new("lr", "0.1")], &[])
        .await
        .expect("log param");

    let err = expect_error(
        store
            .log_batch(
                &run_id,
                &[metric("loss", 0.5, 10, 1)],
                &[Param::new("fresh", "yes"), Param::new("lr", "0.2")],
                &[Tag::new("note", "should not stick")],
            )
            .await,
        ErrorCode::InvalidParameterValue,
    );
    assert_eq!(
        err.message,
        format!(
            "Changing param values is not allowed. Param with key='lr' was already logged with \
             value='0.1' for run ID='{run_id}'. Attempted logging new value '0.2'."
        )
    );

    let run = store.get_run(&run_id).await.expect("get run");
    assert_eq!(
        run.data.params,
        vec![Param::new("lr", "0.1")],
        "no param of the failed batch"
    );
    assert!(run.data.metrics.is_empty(), "no metric of the failed batch");
    assert_eq!(
        tag_value(&run.data.tags, "note"),
        None,
        "no tag of the failed batch"
    );
    assert!(history(store.as_ref(), &run_id, "loss").await.is_empty());
}

pub async fn params_are_immutable(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "params").await.info.run_id;
    let params = [Param::new("a", "1"), Param::new("b", "two")];
    store
        .log_batch(&run_id, &[], &params, &[])
        .await
        .expect("log params");
    store
        .log_batch(&run_id, &[], &params, &[])
        .await
        .expect("same values again are fine");
    expect_error(
        store
            .log_batch(&run_id, &[], &[Param::new("b", "three")], &[])
            .await,
        ErrorCode::InvalidParameterValue,
    );
    expect_error(
        store
            .log_batch(
                &run_id,
                &[],
                &[Param::new("c", "x"), Param::new("c", "y")],
                &[],
            )
            .await,
        ErrorCode::InvalidParameterValue,
    );
    let run = store.get_run(&run_id).await.expect("get run");
    assert_eq!(run.data.params, params.to_vec());
}

pub async fn nan_and_infinity_round_trip(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "special").await.info.run_id;
    let metrics = [
        metric("nan", f64::NAN, 10, 0),
        metric("pos", f64::INFINITY, 10, 0),
        metric("neg", f64::NEG_INFINITY, 10, 0),
        metric("tiny", -0.0, 10, 0),
    ];
    store
        .log_batch(&run_id, &metrics, &[], &[])
        .await
        .expect("log special values");

    let nan_history = history(store.as_ref(), &run_id, "nan").await;
    assert_eq!(nan_history.len(), 1);
    assert!(nan_history[0].value.is_nan());
    assert!(latest(store.as_ref(), &run_id, "nan").await.value.is_nan());
    assert_eq!(
        history(store.as_ref(), &run_id, "pos").await[0].value,
        f64::INFINITY
    );
    assert_eq!(
        history(store.as_ref(), &run_id, "neg").await[0].value,
        f64::NEG_INFINITY
    );
    assert_eq!(
        latest(store.as_ref(), &run_id, "pos").await.value,
        f64::INFINITY
    );
    assert_eq!(
        latest(store.as_ref(), &run_id, "neg").await.value,
        f64::NEG_INFINITY
    );

    // NaN logged twice at the same point is one observation.
    store
        .log_batch(&run_id, &[metric("nan", f64::NAN, 10, 0)], &[], &[])
        .await
        .expect("log NaN again");
    assert_eq!(history(store.as_ref(), &run_id, "nan").await.len(), 1);
    // A real value at a later step replaces NaN as the latest value.
    store
        .log_batch(&run_id, &[metric("nan", 3.0, 10, 1)], &[], &[])
        .await
        .expect("log a number");
    assert_eq!(latest(store.as_ref(), &run_id, "nan").await.value, 3.0);
}

pub async fn identical_observations_are_stored_once(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "dupes").await.info.run_id;
    let observation = metric("acc", 0.9, 100, 3);
    store
        .log_batch(
            &run_id,
            &[observation.clone(), observation.clone()],
            &[],
            &[],
        )
        .await
        .expect("log a duplicate within a batch");
    store
        .log_batch(&run_id, std::slice::from_ref(&observation), &[], &[])
        .await
        .expect("log it again");
    store
        .log_batch(&run_id, &[metric("acc", 0.8, 100, 3)], &[], &[])
        .await
        .expect("other value");
    let observations = history(store.as_ref(), &run_id, "acc").await;
    assert_eq!(observations.len(), 2);
}

pub async fn latest_metric_follows_step_then_timestamp_then_value(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "latest").await.info.run_id;
    let log = |metrics: Vec<Metric>| {
        let store = store.clone();
        let run_id = run_id.clone();
        async move {
            store
                .log_batch(&run_id, &metrics, &[], &[])
                .await
                .expect("log batch")
        }
    };

    log(vec![metric("m", 1.0, 1000, 5)]).await;
    // A lower step never wins, even when logged later with a newer timestamp.
    log(vec![metric("m", 2.0, 9000, 4)]).await;
    assert_eq!(latest(store.as_ref(), &run_id, "m").await.value, 1.0);
    // A higher step wins even with an older timestamp.
    log(vec![metric("m", 3.0, 10, 6)]).await;
    assert_eq!(latest(store.as_ref(), &run_id, "m").await.value, 3.0);
    // Same step: the newer timestamp wins.
    log(vec![metric("m", 4.0, 20, 6)]).await;
    assert_eq!(latest(store.as_ref(), &run_id, "m").await.value, 4.0);
    // Same step and timestamp: the larger value wins, a smaller one does not.
    log(vec![metric("m", 5.0, 20, 6)]).await;
    log(vec![metric("m", 0.5, 20, 6)]).await;
    let current = latest(store.as_ref(), &run_id, "m").await;
    assert_eq!(
        (current.value, current.timestamp, current.step),
        (5.0, 20, 6)
    );

    // Within one batch, order of arrival does not matter.
    log(vec![
        metric("k", 1.0, 1, 9),
        metric("k", 2.0, 1, 2),
        metric("k", 7.0, 5, 9),
    ])
    .await;
    let current = latest(store.as_ref(), &run_id, "k").await;
    assert_eq!(
        (current.value, current.timestamp, current.step),
        (7.0, 5, 9)
    );
    assert_eq!(history(store.as_ref(), &run_id, "k").await.len(), 3);
}

pub async fn large_batch_is_stored_completely(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "big").await.info.run_id;
    let metrics: Vec<Metric> = (0..1000)
        .map(|idx| {
            metric(
                &format!("metric_{}", idx % 10),
                idx as f64,
                1_000 + idx,
                idx / 10,
            )
        })
        .collect();
    let params: Vec<Param> = (0..100)
        .map(|idx| Param::new(format!("p{idx}"), idx.to_string()))
        .collect();
    let tags: Vec<Tag> = (0..100)
        .map(|idx| Tag::new(format!("t{idx}"), idx.to_string()))
        .collect();
    store
        .log_batch(&run_id, &metrics, &params, &tags)
        .await
        .expect("log a large batch");

    let run = store.get_run(&run_id).await.expect("get run");
    assert_eq!(run.data.metrics.len(), 10);
    assert_eq!(run.data.params.len(), 100);
    assert_eq!(run.data.tags.len(), 100 + 1, "plus mlflow.runName");
    for key_idx in 0..10 {
        let key = format!("metric_{key_idx}");
        let observations = history(store.as_ref(), &run_id, &key).await;
        assert_eq!(observations.len(), 100, "{key}");
        let newest = latest(store.as_ref(), &run_id, &key).await;
        assert_eq!(newest.step, 99);
        assert_eq!(newest.value, (990 + key_idx) as f64);
    }
}
