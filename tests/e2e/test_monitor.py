"""`keel monitor drift` on Parquet files: Evidently's default tests, numbers equal to scipy's."""

import json
import subprocess

import numpy as np
import pytest
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

from conftest import keel_bin


def _write(path, columns):
    pq.write_table(pa.table(columns), path)


def test_drift_report_matches_scipy(tmp_path):
    rng = np.random.default_rng(7)
    n_large, n_small = 5000, 300
    reference = {
        "stable": rng.normal(0, 1, n_large),
        "shifted": rng.normal(0, 1, n_large),
        "city": rng.choice(["a", "b", "c"], n_large, p=[0.5, 0.3, 0.2]),
    }
    current = {
        "stable": rng.normal(0, 1, n_large),
        "shifted": rng.normal(0.8, 1, n_large),
        "city": rng.choice(["a", "b", "c"], n_large, p=[0.2, 0.3, 0.5]),
    }
    _write(tmp_path / "ref.parquet", reference)
    _write(tmp_path / "cur.parquet", current)
    out = subprocess.run([str(keel_bin()), "monitor", "drift", "--reference", str(tmp_path / "ref.parquet"),
                          "--current", str(tmp_path / "cur.parquet"), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    by_column = {column["column"]: column for column in report["columns"]}
    for name in ("stable", "shifted"):
        expected = stats.wasserstein_distance(reference[name], current[name]) / np.std(reference[name])
        assert by_column[name]["test"] == "wasserstein"
        assert abs(by_column[name]["score"] - expected) < 1e-6
    assert by_column["stable"]["drifted"] is False and by_column["shifted"]["drifted"] is True
    assert by_column["city"]["test"] == "jensenshannon" and by_column["city"]["drifted"] is True
    assert report["n_drifted"] == 2 and report["dataset_drifted"] is True

    # A small reference takes the exact Kolmogorov-Smirnov test, as Evidently does.
    _write(tmp_path / "ref_small.parquet", {"x": reference["shifted"][:n_small]})
    _write(tmp_path / "cur_small.parquet", {"x": current["shifted"][:n_small]})
    out = subprocess.run([str(keel_bin()), "monitor", "drift", "--reference", str(tmp_path / "ref_small.parquet"),
                          "--current", str(tmp_path / "cur_small.parquet"), "--json"], capture_output=True, text=True)
    column = json.loads(out.stdout)["columns"][0]
    assert column["test"] == "ks"
    expected = stats.ks_2samp(reference["shifted"][:n_small], current["shifted"][:n_small]).pvalue
    assert abs(column["score"] - expected) <= max(1e-6 * expected, 1e-300)


def test_drift_of_missing_or_bad_files_is_one_clear_error(tmp_path):
    (tmp_path / "not.parquet").write_text("hello")
    for reference in (tmp_path / "missing.parquet", tmp_path / "not.parquet"):
        out = subprocess.run([str(keel_bin()), "monitor", "drift", "--reference", str(reference),
                              "--current", str(reference)], capture_output=True, text=True)
        assert out.returncode != 0
        assert out.stderr.startswith("error: ") and "panicked" not in out.stderr, out.stderr


def test_chosen_tests_match_scipy(tmp_path):
    rng = np.random.default_rng(3)
    reference = {"x": rng.normal(0, 1, 400), "y": rng.normal(0, 1, 400)}
    current = {"x": rng.normal(0.3, 1, 300), "y": rng.normal(0, 1, 300)}
    _write(tmp_path / "ref.parquet", reference)
    _write(tmp_path / "cur.parquet", current)

    def run(*flags):
        out = subprocess.run([str(keel_bin()), "monitor", "drift", "--reference", str(tmp_path / "ref.parquet"),
                              "--current", str(tmp_path / "cur.parquet"), "--json", *flags],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return {column["column"]: column for column in json.loads(out.stdout)["columns"]}

    columns = run("--stattest", "mannw", "--column-stattest", "y=cramer_von_mises")
    assert columns["x"]["test"] == "mannw" and columns["y"]["test"] == "cramer_von_mises"
    # Evidently's mannw: scipy's one-sided "less" alternative, asymptotic.
    expected = stats.mannwhitneyu(reference["x"], current["x"], alternative="less", method="asymptotic").pvalue
    assert abs(columns["x"]["score"] - expected) <= 1e-6 * max(expected, 1e-12)
    assert columns["x"]["drifted"] is bool(expected < 0.05)
    expected = stats.cramervonmises_2samp(reference["y"], current["y"], method="asymptotic").pvalue
    assert abs(columns["y"]["score"] - expected) < 1e-6

    columns = run("--stattest", "anderson")
    expected = stats.anderson_ksamp([reference["x"], current["x"]]).pvalue
    assert abs(columns["x"]["score"] - expected) < 1e-6

    out = subprocess.run([str(keel_bin()), "monitor", "drift", "--reference", str(tmp_path / "ref.parquet"),
                          "--current", str(tmp_path / "cur.parquet"), "--stattest", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "unknown test `nope`" in out.stderr and "panicked" not in out.stderr


CHROMIUM = "/usr/bin/chromium"


def test_html_report_of_a_million_rows_renders_in_headless_chromium(tmp_path):
    """One self-contained HTML file (no raw rows: plots come from histograms), which the
    real Chromium renders; the screenshot is kept in the test's directory."""
    import os

    rng = np.random.default_rng(11)
    n = 1_000_000
    _write(tmp_path / "ref.parquet", {
        "amount": rng.lognormal(3, 1, n), "age": rng.integers(18, 90, n),
        "plan": rng.choice(["free", "pro", "team", "<script>"], n, p=[0.6, 0.25, 0.1, 0.05]),
    })
    _write(tmp_path / "cur.parquet", {
        "amount": rng.lognormal(3.5, 1, n), "age": rng.integers(18, 90, n),
        "plan": rng.choice(["free", "pro", "team", "<script>"], n, p=[0.3, 0.4, 0.25, 0.05]),
    })
    report = tmp_path / "report.html"
    out = subprocess.run([str(keel_bin()), "monitor", "report", "--reference", str(tmp_path / "ref.parquet"),
                          "--current", str(tmp_path / "cur.parquet"), "-o", str(report),
                          "--title", "Churn inputs"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2 of 3 columns drifted, dataset drift DETECTED" in out.stdout
    html = report.read_text()
    assert len(html) < 200_000  # a million rows, yet a small page
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched
    assert "<script>" not in html and "&lt;script&gt;" in html  # values are escaped

    # The same report for machines.
    out = subprocess.run([str(keel_bin()), "monitor", "report", "--reference", str(tmp_path / "ref.parquet"),
                          "--current", str(tmp_path / "cur.parquet"), "-o", str(tmp_path / "report.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    as_json = json.loads((tmp_path / "report.json").read_text())
    hist = {c["column"]: c["histogram"] for c in as_json["columns"]}
    assert sum(hist["amount"]["reference"]) == n and sum(hist["amount"]["current"]) == n
    assert sum(hist["plan"]["current"]) == n and "free" in hist["plan"]["categories"]

    assert os.path.exists(CHROMIUM), "Chromium is needed (apt-get install chromium; .ci/run installs it)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 3
    assert "Dataset drift DETECTED: 2 of 3 columns drifted" in dom.stdout
    shot = tmp_path / "report.png"
    result = subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,1600",
                             report.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    from PIL import Image

    pixels = Image.open(shot).convert("RGB")
    colors = pixels.getcolors(maxcolors=1 << 20)
    # A rendered page: many distinct colors (text antialiasing, bars), not a blank canvas.
    assert colors is not None and len(colors) > 20
    # The current-data bar color is on the page.
    assert any(rgb == (0xD9, 0x53, 0x4F) for _, rgb in colors)


def test_drift_from_profiles_matches_the_raw_report(tmp_path):
    """`keel data profile` summaries compared instead of rows: the same verdicts, exact scores
    for categories (and small numeric columns), distance scores close to the raw ones."""
    rng = np.random.default_rng(5)
    n = 300_000
    _write(tmp_path / "ref.parquet", {"x": rng.normal(0, 1, n), "city": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    _write(tmp_path / "cur.parquet", {"x": rng.normal(0.6, 1, n), "city": rng.choice(["a", "b", "c"], n, p=[0.3, 0.3, 0.4])})
    for name in ("ref", "cur"):
        out = subprocess.run([str(keel_bin()), "data", "profile", str(tmp_path / f"{name}.parquet"),
                              "-o", str(tmp_path / f"{name}.json")], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr

    def drift(reference, current):
        out = subprocess.run([str(keel_bin()), "monitor", "drift", "--reference", str(tmp_path / reference),
                              "--current", str(tmp_path / current), "--json"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return {c["column"]: c for c in json.loads(out.stdout)["columns"]}

    profile = json.loads((tmp_path / "ref.json").read_text())
    x = next(c for c in profile["columns"] if c["name"] == "x")["summary"]
    assert len(x["histogram"]["edges"]) == 21 and sum(x["histogram"]["counts"]) == n

    raw = drift("ref.parquet", "cur.parquet")
    profiles = drift("ref.json", "cur.json")
    mixed = drift("ref.json", "cur.parquet")
    for report in (profiles, mixed):
        assert report["city"]["score"] == raw["city"]["score"] and "approximate" not in report["city"]
        assert report["x"]["approximate"] is True and report["x"]["test"] == raw["x"]["test"] == "wasserstein"
        assert report["x"]["score"] == pytest.approx(raw["x"]["score"], rel=0.05)
        assert {c: report[c]["drifted"] for c in report} == {c: raw[c]["drifted"] for c in raw}
    out = subprocess.run([str(keel_bin()), "monitor", "drift", "--reference", str(tmp_path / "ref.json"),
                          "--current", str(tmp_path / "cur.json"), "--stattest", "ks"], capture_output=True, text=True)
    assert out.returncode != 0 and "needs every value" in out.stderr and "panicked" not in out.stderr


def test_multivariate_drift_sees_a_broken_correlation_that_univariate_tests_miss(tmp_path):
    """NannyML's PCA reconstruction error: the two columns keep their distributions, but their
    correlation flips from +0.9 to -0.9. Column by column nothing drifts; together they do."""
    rng = np.random.default_rng(3)
    n = 20_000

    def pair(rho):
        x = rng.normal(0, 1, n)
        y = rho * x + np.sqrt(1 - rho ** 2) * rng.normal(0, 1, n)
        return {"x": x, "y": y, "noise": rng.normal(0, 1, n)}

    _write(tmp_path / "ref.parquet", pair(0.9))
    _write(tmp_path / "cur.parquet", pair(-0.9))
    args = ["--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.parquet")]
    out = subprocess.run([str(keel_bin()), "monitor", "drift", *args, "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["dataset_drifted"] is False
    out = subprocess.run([str(keel_bin()), "monitor", "multivariate", *args, "--chunk-size", "2000", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["reference"]) == len(report["current"]) == 10
    assert not any(chunk["alert"] for chunk in report["reference"])
    assert all(chunk["alert"] for chunk in report["current"])
    assert report["n_alerts"] == 10
    out = subprocess.run([str(keel_bin()), "monitor", "multivariate", *args, "--columns", "x,nope"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "nope" in out.stderr and "panicked" not in out.stderr
