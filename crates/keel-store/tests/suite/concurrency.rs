//! Many writers at once: nothing fails, nothing is lost.

use std::sync::Arc;

use keel_core::store::{MetricHistoryQuery, TrackingStore};
use keel_core::tracking::{Metric, Param, Tag};

use super::{metric, new_run};

const N_WRITERS: usize = 16;
const BATCHES_PER_WRITER: usize = 50;
const METRICS_PER_BATCH: usize = 10;

pub async fn concurrent_writers_lose_nothing(store: Arc<dyn TrackingStore>) {
    let mut run_ids = Vec::new();
    for writer_idx in 0..N_WRITERS {
        run_ids.push(
            new_run(store.as_ref(), "0", &format!("writer-{writer_idx}"))
                .await
                .info
                .run_id,
        );
    }
    let shared_run = new_run(store.as_ref(), "0", "shared").await.info.run_id;

    let mut tasks = Vec::new();
    for (writer_idx, run_id) in run_ids.iter().cloned().enumerate() {
        let store = store.clone();
        let shared_run = shared_run.clone();
        tasks.push(tokio::spawn(async move {
            for batch_idx in 0..BATCHES_PER_WRITER {
                let metrics: Vec<Metric> = (0..METRICS_PER_BATCH)
                    .map(|metric_idx| {
                        let step = (batch_idx * METRICS_PER_BATCH + metric_idx) as i64;
                        metric("loss", step as f64, 1_000 + step, step)
                    })
                    .collect();
                let params = [Param::new(format!("p{batch_idx}"), batch_idx.to_string())];
                let tags = [Tag::new("writer", writer_idx.to_string())];
                store.log_batch(&run_id, &metrics, &params, &tags).await?;
                // Everyone also appends to one shared run.
                let step = (writer_idx * BATCHES_PER_WRITER + batch_idx) as i64;
                store
                    .log_batch(&shared_run, &[metric("shared", 1.0, step, step)], &[], &[])
                    .await?;
                // And reads while others write.
                store.get_run(&run_id).await?;
            }
            Ok::<(), keel_core::KeelError>(())
        }));
    }
    for task in tasks {
        task.await
            .expect("writer task panicked")
            .expect("a write failed under concurrency");
    }

    let history_len = |run_id: String, key: &'static str| {
        let store = store.clone();
        async move {
            store
                .get_metric_history(&MetricHistoryQuery {
                    run_id,
                    metric_key: key.to_string(),
                    max_results: None,
                    page_token: None,
                })
                .await
                .expect("history")
                .items
                .len()
        }
    };
    for (writer_idx, run_id) in run_ids.iter().enumerate() {
        assert_eq!(
            history_len(run_id.clone(), "loss").await,
            BATCHES_PER_WRITER * METRICS_PER_BATCH
        );
        let run = store.get_run(run_id).await.expect("get run");
        assert_eq!(run.data.params.len(), BATCHES_PER_WRITER);
        assert!(run
            .data
            .tags
            .contains(&Tag::new("writer", writer_idx.to_string())));
        let latest = run
            .data
            .metrics
            .iter()
            .find(|m| m.key == "loss")
            .expect("latest loss");
        assert_eq!(
            latest.step,
            (BATCHES_PER_WRITER * METRICS_PER_BATCH - 1) as i64
        );
    }
    assert_eq!(
        history_len(shared_run, "shared").await,
        N_WRITERS * BATCHES_PER_WRITER
    );
}

pub async fn concurrent_experiment_creation_keeps_names_unique(store: Arc<dyn TrackingStore>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.create_experiment("contested", None, &[]).await
        }));
    }
    let mut n_created = 0;
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok(_) => n_created += 1,
            Err(err) => assert_eq!(
                err.code,
                keel_core::ErrorCode::ResourceAlreadyExists,
                "{err}"
            ),
        }
    }
    assert_eq!(n_created, 1);
}
