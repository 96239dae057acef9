//! Searching runs and experiments: filters, view types, page tokens, bounds.

use std::collections::HashSet;
use std::sync::Arc;

use keel_core::search::{CompareOp, Comparison, Filter, FilterValue, KeyKind};
use keel_core::store::{ExperimentSearch, RunSearch, TrackingStore};
use keel_core::tracking::{Param, ViewType};
use keel_core::ErrorCode;

use super::{expect_error, metric, new_experiment, new_run};

async fn all_run_pages(store: &dyn TrackingStore, search: RunSearch) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut search = search;
    loop {
        let page = store.search_runs(&search).await.expect("search runs");
        pages.push(page.items.into_iter().map(|run| run.info.run_id).collect());
        match page.next_page_token {
            Some(token) => search.page_token = Some(token),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

pub async fn search_runs_pages_and_filters(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "searchable").await;
    let mut run_ids = Vec::new();
    for idx in 0..7 {
        let run = new_run(store.as_ref(), &experiment_id, &format!("run-{idx}")).await;
        store
            .log_batch(
                &run.info.run_id,
                &[metric("score", idx as f64, 10, 0)],
                &[Param::new(
                    "family",
                    if idx < 3 { "tree" } else { "linear" },
                )],
                &[],
            )
            .await
            .expect("log");
        run_ids.push(run.info.run_id);
    }
    store.delete_run(&run_ids[6]).await.expect("delete a run");

    let base = RunSearch {
        experiment_ids: vec![experiment_id.clone()],
        max_results: 3,
        ..Default::default()
    };
    let pages = all_run_pages(store.as_ref(), base.clone()).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3]);
    let found: Vec<String> = pages.concat();
    assert_eq!(found.iter().collect::<HashSet<_>>().len(), 6);
    assert!(!found.contains(&run_ids[6]), "deleted runs are not active");

    let deleted = store
        .search_runs(&RunSearch {
            view_type: ViewType::DeletedOnly,
            ..base.clone()
        })
        .await
        .expect("search deleted runs");
    assert_eq!(deleted.items.len(), 1);
    assert_eq!(deleted.items[0].info.run_id, run_ids[6]);
    assert_eq!(deleted.next_page_token, None);

    let filtered = store
        .search_runs(&RunSearch {
            filter: Filter {
                comparisons: vec![
                    Comparison {
                        kind: KeyKind::Metric,
                        key: "score".into(),
                        op: CompareOp::Ge,
                        value: FilterValue::Number(2.0),
                    },
                    Comparison {
                        kind: KeyKind::Param,
                        key: "family".into(),
                        op: CompareOp::Eq,
                        value: FilterValue::String("linear".into()),
                    },
                ],
            },
            max_results: 100,
            ..base.clone()
        })
        .await
        .expect("search with a filter");
    let mut filtered_ids: Vec<String> = filtered
        .items
        .iter()
        .map(|run| run.info.run_id.clone())
        .collect();
    filtered_ids.sort();
    let mut expected: Vec<String> = run_ids[3..6].to_vec();
    expected.sort();
    assert_eq!(filtered_ids, expected);
    let sample = &filtered.items[0];
    assert_eq!(
        sample.data.metrics.len(),
        1,
        "search results carry their data"
    );
    assert_eq!(sample.data.params.len(), 1);

    expect_error(
        store
            .search_runs(&RunSearch {
                max_results: 0,
                ..base.clone()
            })
            .await,
        ErrorCode::InvalidParameterValue,
    );
    expect_error(
        store
            .search_runs(&RunSearch {
                max_results: 50_001,
                ..base.clone()
            })
            .await,
        ErrorCode::InvalidParameterValue,
    );
    expect_error(
        store
            .search_runs(&RunSearch {
                page_token: Some("%%%".into()),
                ..base
            })
            .await,
        ErrorCode::InvalidParameterValue,
    );
}

pub async fn search_experiments_pages(store: Arc<dyn TrackingStore>) {
    let mut created = Vec::new();
    for idx in 0..5 {
        created.push(new_experiment(store.as_ref(), &format!("paged-{idx}")).await);
    }
    store
        .delete_experiment(&created[0])
        .await
        .expect("delete one");

    let mut seen = Vec::new();
    let mut search = ExperimentSearch {
        max_results: 2,
        ..Default::default()
    };
    let mut n_pages = 0;
    loop {
        let page = store
            .search_experiments(&search)
            .await
            .expect("search experiments");
        n_pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(
            page.items
                .into_iter()
                .map(|experiment| experiment.experiment_id),
        );
        match page.next_page_token {
            Some(token) => search.page_token = Some(token),
            None => break,
        }
        assert!(n_pages < 20, "paging does not end");
    }
    // Default plus four active experiments.
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);
    assert!(seen.contains(&"0".to_string()));
    assert!(!seen.contains(&created[0]));

    let all = store
        .search_experiments(&ExperimentSearch {
            view_type: ViewType::All,
            max_results: 100,
            ..Default::default()
        })
        .await
        .expect("search all");
    assert_eq!(all.items.len(), 6);
    expect_error(
        store
            .search_experiments(&ExperimentSearch {
                max_results: 0,
                ..Default::default()
            })
            .await,
        ErrorCode::InvalidParameterValue,
    );
}
