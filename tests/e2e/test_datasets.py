"""Dataset inputs: `mlflow.log_input` and what a run reports back."""

import mlflow
import pandas as pd
from e2e_helpers import unique_name


def test_log_input_pandas_dataset(client):
    experiment = mlflow.set_experiment(unique_name("datasets"))
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/toy.csv", name="toy", targets="label")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"split": "train"})

    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    logged = inputs[0].dataset
    assert logged.name == "toy"
    assert logged.digest == dataset.digest
    assert logged.source_type == "s3"
    assert "s3://bucket/toy.csv" in logged.source
    assert '"x"' in logged.schema
    assert "num_rows" in logged.profile
    tags = {tag.key: tag.value for tag in inputs[0].tags}
    assert tags["mlflow.data.context"] == "training"
    assert tags["split"] == "train"

    found = client.search_runs([experiment.experiment_id], "datasets.name = 'toy'")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    found = client.search_runs([experiment.experiment_id], "datasets.context = 'evaluation'")
    assert list(found) == []


def test_same_dataset_in_two_runs_is_one_dataset_two_inputs(client):
    mlflow.set_experiment(unique_name("datasets-shared"))
    dataset = mlflow.data.from_pandas(pd.DataFrame({"a": [1, 2]}), name="shared")
    with mlflow.start_run() as first:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")  # logging it again adds nothing
    with mlflow.start_run() as second:
        mlflow.log_input(dataset, context="evaluation")

    first_inputs = client.get_run(first.info.run_id).inputs.dataset_inputs
    second_inputs = client.get_run(second.info.run_id).inputs.dataset_inputs
    assert [di.dataset.digest for di in first_inputs] == [dataset.digest]
    assert [di.dataset.digest for di in second_inputs] == [dataset.digest]
    second_tags = {t.key: t.value for t in second_inputs[0].tags}
    assert second_tags["mlflow.data.context"] == "evaluation"
