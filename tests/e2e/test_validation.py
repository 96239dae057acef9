"""`keel data profile | suggest | validate` on Parquet and CSV files: a suite suggested from a
reference passes on it, a broken copy fails with the offending expectations named, and the exit
code tells CI bad data (1) from a step that could not validate at all (2)."""

import json
import subprocess

import numpy as np
import pandas as pd
import yaml

from conftest import keel_bin

N_ROWS = 1000


def keel_data(*args):
    return subprocess.run([str(keel_bin()), "data", *map(str, args)], capture_output=True, text=True)


def reference_frame():
    rng = np.random.default_rng(11)
    return pd.DataFrame({
        "order_id": np.arange(N_ROWS, dtype="int64"),
        "price": np.round(rng.uniform(1.0, 99.0, N_ROWS), 2),
        "qty": rng.integers(1, 50, N_ROWS, dtype="int64"),
        "city": rng.choice(["paris", "lyon", "nice"], N_ROWS),
        "email": [f"user{i}@example.com" for i in range(N_ROWS)],
        "created": pd.date_range("2024-01-01", periods=N_ROWS, freq="h"),
    })


def broken_frame():
    broken = reference_frame()
    broken["price"] = broken["price"].astype("float64")
    broken.loc[:29, "price"] = None  # 30 nulls
    broken.loc[100, "qty"] = 500  # out of the reference's range
    broken.loc[200, "city"] = "berlin"  # a category the reference never had
    return broken


def write_reference_and_broken(tmp_path):
    reference, broken = tmp_path / "reference.parquet", tmp_path / "broken.parquet"
    reference_frame().to_parquet(reference, index=False)
    broken_frame().to_parquet(broken, index=False)
    return reference, broken


def test_suggested_suite_passes_on_the_reference_and_names_what_broke(tmp_path):
    reference, broken = write_reference_and_broken(tmp_path)
    suite_path = tmp_path / "suite.yaml"

    out = keel_data("suggest", reference, "-o", suite_path)
    assert out.returncode == 0, out.stderr
    suite = yaml.safe_load(suite_path.read_text())
    expectations = suite["expectations"]
    assert f"{len(expectations)} expectations" in out.stderr
    by_kind = {}
    for expectation in expectations:
        by_kind.setdefault((expectation["expect"], expectation.get("column")), []).append(expectation)
    frame = reference_frame()
    assert by_kind[("row_count", None)] == [{"expect": "row_count", "min": 500, "max": 2000}]
    dtypes = {column: by_kind[("column_exists", column)][0]["dtype"] for column in frame.columns}
    assert dtypes == {"order_id": "integer", "price": "float", "qty": "integer", "city": "string",
                      "email": "string", "created": "timestamp"}
    for column in ("order_id", "price", "qty", "city", "email"):
        # No nulls in the reference: min_share stays at its default of 1.
        assert by_kind[("not_null", column)] == [{"expect": "not_null", "column": column}]
    [price_range] = by_kind[("range", "price")]
    assert (price_range["min"], price_range["max"]) == (frame["price"].min(), frame["price"].max())
    [qty_range] = by_kind[("range", "qty")]
    assert (qty_range["min"], qty_range["max"]) == (frame["qty"].min(), frame["qty"].max())
    assert by_kind[("allowed_values", "city")][0]["values"] == ["lyon", "nice", "paris"]
    assert ("allowed_values", "email") not in by_kind  # 1000 distinct values: not a category

    out = keel_data("validate", reference, "--suite", suite_path)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(expectations) + 1
    assert all(line.startswith("PASS ") for line in lines[:-1]), out.stdout
    assert lines[-1].startswith("PASSED"), out.stdout

    out = keel_data("validate", broken, "--suite", suite_path)
    assert out.returncode == 1, out.stdout + out.stderr
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAIL ")]
    assert len(failed) == 3, out.stdout
    assert any("`price` is not null" in line and "30 unexpected" in line for line in failed), out.stdout
    assert any("`qty`" in line and '"500"' in line for line in failed), out.stdout
    assert any("`city`" in line and '"berlin"' in line for line in failed), out.stdout
    assert out.stdout.splitlines()[-1].startswith("FAILED: 3 of"), out.stdout

    out = keel_data("validate", broken, "--suite", suite_path, "--json")
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["success"] is False and report["rows"] == N_ROWS
    failures = {(result["kind"], result["column"]): result for result in report["results"] if not result["success"]}
    assert set(failures) == {("not_null", "price"), ("range", "qty"), ("allowed_values", "city")}
    assert failures[("not_null", "price")]["observed"] == 0.97
    assert failures[("not_null", "price")]["unexpected_examples"] == [f"row {row}" for row in range(5)]
    assert failures[("range", "qty")]["observed"]["max"] == 500
    assert failures[("range", "qty")]["unexpected_examples"] == ["500"]
    assert failures[("allowed_values", "city")]["unexpected_count"] == 1
    assert failures[("allowed_values", "city")]["unexpected_examples"] == ["berlin"]


def test_hand_written_suite_with_sql_regex_and_unique(tmp_path):
    reference, broken = write_reference_and_broken(tmp_path)
    suite_path = tmp_path / "orders.yaml"
    suite_path.write_text(
        "name: orders\n"
        "expectations:\n"
        "  - expect: sql\n"
        "    name: sane order\n"
        "    predicate: price >= 0 AND qty < 100\n"
        "  - expect: regex\n"
        "    column: email\n"
        "    pattern: 'user[0-9]+@example\\.com'\n"
        "  - expect: unique\n"
        "    column: order_id\n"
        "  - expect: not_null\n"
        "    column: price\n"
        "    min_share: 0.95\n"
    )
    out = keel_data("validate", reference, "--suite", suite_path)
    assert out.returncode == 0, out.stdout + out.stderr

    out = keel_data("validate", broken, "--suite", suite_path, "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["suite"] == "orders"
    sql, regex, unique, not_null = report["results"]
    # NULL prices do not satisfy the predicate: 30 of them, plus the row with qty 500.
    assert sql["kind"] == "sql" and sql["success"] is False and sql["error"] is None
    assert sql["unexpected_count"] == 31
    assert sql["expectation"].startswith("sane order:")
    assert regex["success"] and unique["success"] and unique["observed"] == N_ROWS
    assert not_null["success"] and not_null["observed"] == 0.97

    # A predicate over a column the data lacks fails that expectation alone, with the reason.
    suite_path.write_text(
        "expectations:\n"
        "  - {expect: sql, predicate: 'discount < 0.5'}\n"
        "  - {expect: row_count, min: 1}\n"
    )
    out = keel_data("validate", reference, "--suite", suite_path)
    assert out.returncode == 1, out.stdout + out.stderr
    first, second = out.stdout.splitlines()[:2]
    assert first.startswith("FAIL ") and "error:" in first and "discount" in first, out.stdout
    assert second.startswith("PASS "), out.stdout


def test_csv_inputs_and_profile(tmp_path):
    reference, _ = write_reference_and_broken(tmp_path)
    csv = tmp_path / "reference.csv"
    reference_frame().to_csv(csv, index=False)

    suite_path = tmp_path / "suite.yaml"
    assert keel_data("suggest", reference, "-o", suite_path).returncode == 0
    # The suite from the Parquet file holds for the same data as CSV (types by family).
    out = keel_data("validate", csv, "--suite", suite_path)
    assert out.returncode == 0, out.stdout + out.stderr

    out = keel_data("suggest", csv)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["expectations"][0] == {"expect": "row_count", "min": 500, "max": 2000}

    profile_path = tmp_path / "profile.json"
    out = keel_data("profile", reference, "-o", profile_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert f"{N_ROWS} rows, 6 columns" in out.stderr
    assert "created" in out.stderr and "not profiled" in out.stderr
    profile = json.loads(profile_path.read_text())
    columns = {column["name"]: column["summary"] for column in profile["columns"]}
    assert columns["price"]["kind"] == "numeric" and columns["price"]["count"] == N_ROWS
    assert columns["price"]["min"] == reference_frame()["price"].min()
    assert columns["city"]["kind"] == "categorical"

    out = keel_data("profile", csv)
    assert out.returncode == 0, out.stderr
    assert {column["name"] for column in json.loads(out.stdout)["columns"]} >= {"price", "city"}


def test_user_mistakes_exit_2_with_one_error_line(tmp_path):
    reference, _ = write_reference_and_broken(tmp_path)
    good_suite = tmp_path / "suite.yaml"
    good_suite.write_text("expectations:\n  - {expect: row_count, min: 1}\n")
    bad_suite = tmp_path / "bad.yaml"
    bad_suite.write_text("expectations:\n  - expect: not_null\n    colum: price\n")
    not_parquet = tmp_path / "not.parquet"
    not_parquet.write_text("hello")
    unknown_format = tmp_path / "data.txt"
    unknown_format.write_text("a,b\n1,2\n")

    cases = [
        ((tmp_path / "missing.parquet", good_suite), "missing.parquet"),
        ((reference, tmp_path / "missing.yaml"), "missing.yaml"),
        ((reference, bad_suite), "line 2"),
        ((not_parquet, good_suite), "not a Parquet file"),
        ((unknown_format, good_suite), ".parquet or .csv"),
    ]
    for (data, suite), needle in cases:
        out = keel_data("validate", data, "--suite", suite)
        assert out.returncode == 2, (data, suite, out.stdout, out.stderr)
        assert out.stdout == ""
        assert out.stderr.startswith("error: ") and needle in out.stderr, out.stderr
        assert "panicked" not in out.stderr and "backtrace" not in out.stderr.lower(), out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr

    help_text = keel_data("validate", "--help").stdout
    assert "Exit codes" in help_text and "2  the data could not be validated" in help_text


def test_validation_is_logged_to_a_tracking_run(tmp_path, client, tracking_uri):
    reference, broken = write_reference_and_broken(tmp_path)
    suite = tmp_path / "suite.yaml"
    assert keel_data("suggest", reference, "-o", suite).returncode == 0
    run = client.create_run(client.create_experiment(f"validation-{tmp_path.name}"))
    result = keel_data("validate", broken, "--suite", suite,
                       "--log-to-run", run.info.run_id, "--tracking-uri", tracking_uri)
    assert result.returncode == 1, result.stdout + result.stderr
    data = client.get_run(run.info.run_id).data
    assert data.metrics["validation.success"] == 0
    assert data.metrics["validation.failed"] == 3
    assert data.metrics["validation.rows"] == N_ROWS
    assert "price" in data.tags["keel.validation.failed"]
    assert data.tags["keel.validation.data"].endswith("broken.parquet")
    # an unknown run is a clear error, exit 2 (could not record the validation)
    result = keel_data("validate", reference, "--suite", suite,
                       "--log-to-run", "0" * 32, "--tracking-uri", tracking_uri)
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr
