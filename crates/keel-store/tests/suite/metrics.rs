//! Metric history paging and the sampled bulk-interval view.

use std::sync::Arc;

use keel_core::store::{MetricHistoryQuery, TrackingStore};
use keel_core::tracking::Metric;
use keel_core::ErrorCode;

use super::{expect_error, metric, new_run};

pub async fn metric_history_pages(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "history").await.info.run_id;
    // Logged out of order: history comes back ordered by step, then timestamp.
    let metrics: Vec<Metric> = (0..25)
        .rev()
        .map(|step| metric("loss", step as f64, 500 - step, step))
        .collect();
    store
        .log_batch(&run_id, &metrics, &[], &[])
        .await
        .expect("log history");
    store
        .log_batch(&run_id, &[metric("loss", -1.0, 1, 3)], &[], &[])
        .await
        .expect("earlier time at step 3");

    let query = |max_results: Option<u32>, page_token: Option<String>| MetricHistoryQuery {
        run_id: run_id.clone(),
        metric_key: "loss".into(),
        max_results,
        page_token,
    };

    let everything = store
        .get_metric_history(&query(None, None))
        .await
        .expect("whole history");
    assert_eq!(everything.items.len(), 26);
    assert_eq!(everything.next_page_token, None);
    let order: Vec<(i64, i64)> = everything
        .items
        .iter()
        .map(|m| (m.step, m.timestamp))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(
        (everything.items[3].step, everything.items[3].value),
        (3, -1.0)
    );

    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .get_metric_history(&query(Some(10), token))
            .await
            .expect("a page");
        pages.push(page.items);
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 6]
    );
    assert_eq!(pages.concat(), everything.items);

    let exact = store
        .get_metric_history(&query(Some(26), None))
        .await
        .expect("exact page");
    assert_eq!(exact.items.len(), 26);
    assert_eq!(exact.next_page_token, None, "no token when nothing is left");

    expect_error(
        store
            .get_metric_history(&query(Some(10), Some("garbage!".into())))
            .await,
        ErrorCode::InvalidParameterValue,
    );

    let unknown = MetricHistoryQuery {
        run_id: run_id.clone(),
        metric_key: "never-logged".into(),
        max_results: None,
        page_token: None,
    };
    assert!(store
        .get_metric_history(&unknown)
        .await
        .expect("empty history")
        .items
        .is_empty());
}

pub async fn metric_history_bulk_interval_samples_steps(store: Arc<dyn TrackingStore>) {
    let long_run = new_run(store.as_ref(), "0", "long").await.info.run_id;
    let short_run = new_run(store.as_ref(), "0", "short").await.info.run_id;
    let long: Vec<Metric> = (0..100)
        .map(|step| metric("acc", step as f64, 1000 + step, step))
        .collect();
    let short: Vec<Metric> = (0..50)
        .map(|step| metric("acc", -(step as f64), 1000 + step, step))
        .collect();
    store
        .log_batch(&long_run, &long, &[], &[])
        .await
        .expect("log long run");
    store
        .log_batch(&short_run, &short, &[], &[])
        .await
        .expect("log short run");
    store
        .log_batch(&short_run, &[metric("other", 1.0, 1, 1)], &[], &[])
        .await
        .expect("other metric");

    let run_ids = vec![long_run.clone(), short_run.clone()];
    let samples = store
        .get_metric_history_bulk_interval(&run_ids, "acc", None, None, 10)
        .await
        .expect("bulk interval");
    let steps_of = |run_id: &str| -> Vec<i64> {
        samples
            .iter()
            .filter(|(id, _)| id == run_id)
            .map(|(_, metric)| metric.step)
            .collect()
    };
    let long_steps = steps_of(&long_run);
    let short_steps = steps_of(&short_run);
    // Ten evenly spaced steps of all steps present (0..=99), the last one, and
    // every run's first and last step (49 for the short run).
    assert_eq!(
        long_steps,
        vec![0, 10, 20, 30, 40, 49, 50, 60, 70, 80, 90, 99]
    );
    assert_eq!(short_steps, vec![0, 10, 20, 30, 40, 49]);
    for (run_id, sample) in &samples {
        assert_eq!(sample.key, "acc");
        let expected_value = if *run_id == long_run {
            sample.step as f64
        } else {
            -(sample.step as f64)
        };
        assert_eq!(sample.value, expected_value);
    }

    let window = store
        .get_metric_history_bulk_interval(
            std::slice::from_ref(&long_run),
            "acc",
            Some(10),
            Some(20),
            100,
        )
        .await
        .expect("bulk interval in a window");
    let window_steps: Vec<i64> = window.iter().map(|(_, metric)| metric.step).collect();
    assert_eq!(window_steps, (10..=20).collect::<Vec<_>>());

    let nothing = store
        .get_metric_history_bulk_interval(&[long_run], "missing", None, None, 10)
        .await
        .expect("bulk interval of an unlogged metric");
    assert!(nothing.is_empty());
}
