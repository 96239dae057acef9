//! Run inputs (datasets, logged models) and outputs (logged models).

use std::sync::Arc;

use keel_core::store::TrackingStore;
use keel_core::tracking::{Dataset, DatasetInput, ModelInput, ModelOutput, Tag};

use super::{new_experiment, new_run};

fn dataset(name: &str, digest: &str) -> Dataset {
    Dataset {
        name: name.into(),
        digest: digest.into(),
        source_type: "local".into(),
        source: format!("{{\"uri\": \"/data/{name}.csv\"}}"),
        schema: Some("{\"mlflow_colspec\": []}".into()),
        profile: None,
    }
}

pub async fn dataset_inputs_are_linked_with_tags(store: Arc<dyn TrackingStore>) {
    let experiment_id = new_experiment(store.as_ref(), "datasets").await;
    let run_a = new_run(store.as_ref(), &experiment_id, "a")
        .await
        .info
        .run_id;
    let run_b = new_run(store.as_ref(), &experiment_id, "b")
        .await
        .info
        .run_id;

    let train = DatasetInput {
        tags: vec![Tag::new("mlflow.data.context", "train")],
        dataset: dataset("iris", "abc123"),
    };
    let eval = DatasetInput {
        tags: vec![Tag::new("mlflow.data.context", "eval")],
        dataset: dataset("iris-eval", "def456"),
    };
    store
        .log_inputs(&run_a, &[train.clone(), eval.clone()], &[])
        .await
        .expect("log inputs");
    // Logging the same dataset again (even with other tags) keeps one link with the first tags.
    let retagged = DatasetInput {
        tags: vec![Tag::new("mlflow.data.context", "test")],
        ..train.clone()
    };
    store
        .log_inputs(&run_a, &[retagged], &[])
        .await
        .expect("log the dataset again");
    store
        .log_inputs(&run_b, std::slice::from_ref(&train), &[])
        .await
        .expect("reuse the dataset in another run");

    let run = store.get_run(&run_a).await.expect("get run");
    let mut inputs = run.inputs.dataset_inputs.clone();
    inputs.sort_by(|x, y| x.dataset.name.cmp(&y.dataset.name));
    assert_eq!(inputs, vec![train.clone(), eval]);

    let other = store.get_run(&run_b).await.expect("get run");
    assert_eq!(other.inputs.dataset_inputs, vec![train]);
}

pub async fn model_inputs_and_outputs(store: Arc<dyn TrackingStore>) {
    let run_id = new_run(store.as_ref(), "0", "io").await.info.run_id;
    store
        .log_inputs(
            &run_id,
            &[],
            &[
                ModelInput {
                    model_id: "m-in".into(),
                },
                ModelInput {
                    model_id: "m-in".into(),
                },
            ],
        )
        .await
        .expect("log model input");
    store
        .log_outputs(
            &run_id,
            &[ModelOutput {
                model_id: "m-out".into(),
                step: 3,
            }],
        )
        .await
        .expect("log model output");
    let run = store.get_run(&run_id).await.expect("get run");
    assert_eq!(
        run.inputs.model_inputs,
        vec![ModelInput {
            model_id: "m-in".into()
        }]
    );
    assert_eq!(
        run.outputs.model_outputs,
        vec![ModelOutput {
            model_id: "m-out".into(),
            step: 3
        }]
    );
}
