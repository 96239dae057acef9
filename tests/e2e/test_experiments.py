"""Experiments: lifecycle, tags, and search with filters, ordering and pages."""

import pytest
from mlflow.entities import ViewType
from e2e_helpers import raises_mlflow, unique_name


def test_default_experiment_exists(client):
    default = client.get_experiment("0")
    assert default.name == "Default"
    assert default.lifecycle_stage == "active"


def test_create_get_rename_delete_restore(client):
    name = unique_name("exp")
    experiment_id = client.create_experiment(name, tags={"owner": "keel"})
    got = client.get_experiment(experiment_id)
    assert got.name == name
    assert got.lifecycle_stage == "active"
    assert got.artifact_location == f"mlflow-artifacts:/{experiment_id}"
    assert got.tags["owner"] == "keel"
    assert got.creation_time is not None and got.last_update_time is not None
    assert client.get_experiment_by_name(name).experiment_id == experiment_id

    renamed = unique_name("renamed")
    client.rename_experiment(experiment_id, renamed)
    assert client.get_experiment(experiment_id).name == renamed
    assert client.get_experiment_by_name(name) is None

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert client.get_experiment_by_name(renamed).lifecycle_stage == "deleted"
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(renamed)

    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_duplicate_name_is_refused(client):
    name = unique_name("dup")
    client.create_experiment(name)
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(name)


def test_unknown_experiment(client):
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_experiment("987654321")
    assert client.get_experiment_by_name(unique_name("missing")) is None


def test_empty_name_is_refused(client):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_experiment("")


def test_experiment_tags_set_overwrite_delete(client, experiment_id):
    client.set_experiment_tag(experiment_id, "k", "v1")
    client.set_experiment_tag(experiment_id, "k", "v2")
    client.set_experiment_tag(experiment_id, "other", "x")
    tags = client.get_experiment(experiment_id).tags
    assert tags["k"] == "v2" and tags["other"] == "x"
    client.delete_experiment_tag(experiment_id, "k")
    tags = client.get_experiment(experiment_id).tags
    assert "k" not in tags and tags["other"] == "x"


@pytest.fixture(scope="module")
def three_experiments(client):
    prefix = unique_name("search-exp")
    ids = {
        "alpha": client.create_experiment(f"{prefix}-alpha", tags={"k": "v", "team": "red"}),
        "beta": client.create_experiment(f"{prefix}-beta", tags={"k": "v"}),
        "gamma": client.create_experiment(f"{prefix}-gamma", tags={"k": "other"}),
    }
    return prefix, ids


def names(experiments, prefix):
    return [e.name[len(prefix) + 1:] for e in experiments]


def test_search_by_name_like(client, three_experiments):
    prefix, _ = three_experiments
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=["name ASC"])
    assert names(found, prefix) == ["alpha", "beta", "gamma"]
    found = client.search_experiments(filter_string=f"name = '{prefix}-beta'")
    assert names(found, prefix) == ["beta"]
    found = client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}-%A'")
    assert sorted(names(found, prefix)) == ["alpha", "beta", "gamma"]


def test_search_by_tag(client, three_experiments):
    prefix, _ = three_experiments
    found = client.search_experiments(
        filter_string=f"name LIKE '{prefix}%' AND tags.k = 'v'", order_by=["name DESC"])
    assert names(found, prefix) == ["beta", "alpha"]
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%' AND tags.team = 'red'")
    assert names(found, prefix) == ["alpha"]


def test_search_order_by_creation_time(client, three_experiments):
    prefix, _ = three_experiments
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%'",
                                      order_by=["creation_time DESC", "name ASC"])
    times = [e.creation_time for e in found]
    assert times == sorted(times, reverse=True)
    assert len(found) == 3


def test_search_pages(client, three_experiments):
    prefix, _ = three_experiments
    first = client.search_experiments(max_results=2, filter_string=f"name LIKE '{prefix}%'",
                                      order_by=["name ASC"])
    assert names(first, prefix) == ["alpha", "beta"]
    assert first.token
    second = client.search_experiments(max_results=2, filter_string=f"name LIKE '{prefix}%'",
                                       order_by=["name ASC"], page_token=first.token)
    assert names(second, prefix) == ["gamma"]
    assert not second.token


def test_search_view_type(client):
    prefix = unique_name("view")
    kept = client.create_experiment(f"{prefix}-kept")
    gone = client.create_experiment(f"{prefix}-gone")
    client.delete_experiment(gone)
    flt = f"name LIKE '{prefix}%'"
    assert [e.experiment_id for e in client.search_experiments(filter_string=flt)] == [kept]
    assert [e.experiment_id for e in client.search_experiments(
        view_type=ViewType.DELETED_ONLY, filter_string=flt)] == [gone]
    assert {e.experiment_id for e in client.search_experiments(
        view_type=ViewType.ALL, filter_string=flt)} == {kept, gone}


@pytest.mark.parametrize("bad_filter", ["name LIKE", "nmae = 'x'", "tags.k >> 'v'", "name = 'a' OR name = 'b'"])
def test_search_with_invalid_filter_is_refused(client, bad_filter):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_experiments(filter_string=bad_filter)


def test_search_with_invalid_order_by_is_refused(client):
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_experiments(order_by=["name SIDEWAYS"])
