"""The container entrypoint end to end, as Airflow's local platform runs it: a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture()
def tiny_db(tmp_path: Path, panel_factory, duckdb_writer) -> str:
    panel = panel_factory()
    return duckdb_writer(panel[panel["date"] >= "2024-03-01"], tmp_path / "warehouse.duckdb")


def test_train_predict_backtest_end_to_end(tmp_path: Path, tiny_db: str, retail_contract_file: str):
    model_dir = tmp_path / "runs" / "r1" / "model"
    hpt_file = tmp_path / "hpt" / "metrics"
    common = ["--data-uri", tiny_db, "--contract", retail_contract_file]
    train = run_cli(
        "train", *common, "--cutoff-date", "2024-06-23", "--horizon", "7",
        "--n-estimators", "10", "--num_leaves", "7", "--objective", "l2",
        "--num-threads", "1", "--hpt-metric-name", "wape", "--interval-windows", "2",
        env={"AIP_MODEL_DIR": str(model_dir), "CLOUD_ML_HP_METRIC_FILE": str(hpt_file)},
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    summary = json.loads(train.stdout.strip().splitlines()[-1])
    assert summary["training_window"]["last_date"] == "2024-06-23"
    assert (model_dir / "params.json").exists()
    assert json.loads(hpt_file.read_text().splitlines()[-1])["wape"]
    params = json.loads((model_dir / "params.json").read_text())
    assert params["params"]["objective"] == "l2" and params["params"]["num_leaves"] == 7

    out_uri = f"duckdb://{tmp_path}/warehouse.duckdb?table=daily_sales_forecasts"
    predict_args = [
        "predict", "--model-dir", str(model_dir), "--cutoff-date", "2024-06-30",
        "--data-uri", tiny_db, "--output-uri", out_uri, "--run-id", "r1", "--model-version", "1",
    ]  # fmt: skip
    for _ in range(2):
        predict = run_cli(*predict_args)
        assert predict.returncode == 0, predict.stderr
    con = duckdb.connect(f"{tmp_path}/warehouse.duckdb", read_only=True)
    try:
        rows = con.execute(
            "SELECT count(*), min(date), count(DISTINCT series_id) FROM daily_sales_forecasts"
        ).fetchone()
    finally:
        con.close()
    assert rows[0] == 42 and str(rows[1]) == "2024-07-01" and rows[2] == 6

    backtest = run_cli(
        "backtest", *common, "--cutoff-date", "2024-06-30", "--horizon", "7",
        "--n-windows", "2", "--model-dir", str(model_dir),
        "--champion-model-dir", str(model_dir), "--min-improvement", "0.5",
        "--output-dir", str(tmp_path / "bt"),
        "--results-uri", f"duckdb://{tmp_path}/warehouse.duckdb?table=backtest_results",
        "--run-id", "r1",
    )  # fmt: skip
    assert backtest.returncode == 0, backtest.stderr
    gate = json.loads((tmp_path / "bt" / "gate.json").read_text())
    # Production is the same recipe, trained up to the last window's cut-off: scored as it
    # serves on that window, it ties with the challenger there, which is within the freshness
    # tolerance (the 50 % margin is for a changed recipe only).
    assert gate["champion_mode"] == "artifact" and gate["recipe_changed"] is False
    assert gate["champion_train_end"] == "2024-06-23" and gate["freshness_tolerance"] == 0.02
    assert gate["challenger_on_artifact_rows"] == pytest.approx(gate["champion"])
    assert gate["passed"] is True, gate["reason"]
    assert "gate PASSED" in backtest.stderr
    # The challenger's intervals were calibrated and scored on every window (rolling origin).
    report = json.loads((tmp_path / "bt" / "backtest.json").read_text())
    assert report["n_windows"] == 2 and report["methods"]["champion_artifact"]["n_windows"] == 1
    coverage = report["methods"]["challenger"]["coverage"]
    assert set(coverage) == {"80", "95"} and 0 <= coverage["95"]["days_1_7"] <= 1
    assert json.loads(backtest.stdout.strip().splitlines()[-1])["coverage"] == coverage
    meta = json.loads((model_dir / "forecaster.json").read_text())
    # train reused its validation forecasts to calibrate the intervals (no extra fit).
    assert meta["intervals"]["source"] == "given" and meta["intervals"]["enabled"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data-uri", "mysql://x/y"], "unsupported table URI"),
        (["--data-uri", "duckdb:///nope/wh.duckdb?table=t"], "DuckDB file not found"),
        (["--cutoff-date", "2020-01-01"], "no rows on or before"),
        (["--horizon", "0"], "must be >= 1"),
        (["--cutoff-date", "30/06/2024"], "expected a date"),
    ],
)
def test_user_errors_exit_non_zero_without_traceback(
    tmp_path: Path, tiny_db: str, retail_contract_file: str, args, message
):
    base = {
        "--data-uri": tiny_db,
        "--contract": retail_contract_file,
        "--cutoff-date": "2024-06-30",
        "--model-dir": str(tmp_path / "m"),
    }
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = run_cli("train", *[x for kv in base.items() for x in kv])
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_backtest_rejects_a_freshness_tolerance_outside_0_1(
    tmp_path: Path, tiny_db: str, retail_contract_file: str, value: str
):
    result = run_cli(
        "backtest", "--data-uri", tiny_db, "--contract", retail_contract_file,
        "--cutoff-date", "2024-06-30", "--model-dir", str(tmp_path / "m"),
        "--output-dir", str(tmp_path / "bt"), "--freshness-tolerance", value,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--freshness-tolerance must be in [0, 1)" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_column_and_missing_model_dir(tmp_path: Path, tiny_db: str):
    contract = {
        "name": "retail",
        "date_column": "date",
        "target": "sales",
        "series_keys": ["store_id"],
        "columns": [
            {"name": "date", "type": "DATE", "role": "date"},
            {"name": "store_id", "type": "STRING", "role": "key"},
            {"name": "sales", "type": "FLOAT64", "role": "target"},
            {"name": "discount", "type": "FLOAT64", "role": "known"},
        ],
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(contract))
    result = run_cli(
        "train",
        "--data-uri",
        tiny_db,
        "--contract",
        str(path),
        "--cutoff-date",
        "2024-06-30",
        "--model-dir",
        str(tmp_path / "m"),
    )
    assert result.returncode == 2 and "missing columns ['discount']" in result.stderr
    result = run_cli(
        "predict",
        "--cutoff-date",
        "2024-06-30",
        "--output-uri",
        str(tmp_path / "o.csv"),
        "--run-id",
        "r",
        "--model-version",
        "1",
        env={"AIP_MODEL_DIR": ""},
    )
    assert result.returncode == 2 and "AIP_MODEL_DIR" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-dir", "m", "--model-version", "1", "--fallback-model-dir", "f"], "together"),
        (["--model-dir", "m", "--model-version", "1", "--fallback-model-version", "2"], "together"),
        (["--seasonal-naive", "--model-dir", "m"], "--seasonal-naive uses no model"),
        (["--seasonal-naive"], "--contract"),
    ],
)
def test_predict_argument_errors_exit_2(tmp_path: Path, tiny_db: str, args, message):
    result = run_cli(
        "predict", "--cutoff-date", "2024-06-30", "--data-uri", tiny_db,
        "--output-uri", str(tmp_path / "o.csv"), "--run-id", "r", *args,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_predict_seasonal_naive_without_a_model(
    tmp_path: Path, tiny_db: str, retail_contract_file: str
):
    out_uri = f"duckdb://{tmp_path}/out.duckdb?table=daily_sales_forecasts"
    result = run_cli(
        "predict", "--seasonal-naive", "--contract", retail_contract_file,
        "--data-uri", tiny_db, "--cutoff-date", "2024-06-30", "--horizon", "7",
        "--output-uri", out_uri, "--run-id", "r1",
        # Vertex sets AIP_MODEL_DIR on any job: it must not count as a --model-dir.
        env={"AIP_MODEL_DIR": str(tmp_path / "unused")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["models"] == {"seasonal_naive": 6} and summary["series_seasonal_naive"] == 6
    con = duckdb.connect(f"{tmp_path}/out.duckdb", read_only=True)
    try:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT series_id), min(model_version), max(model_version),"
            " count(*) FILTER (WHERE lower_80 <= forecast AND forecast <= upper_95"
            " AND lower_95 >= 0) FROM daily_sales_forecasts"
        ).fetchone()
    finally:
        con.close()
    assert rows == (42, 6, "seasonal_naive", "seasonal_naive", 42)


def test_help_documents_every_command():
    top = run_cli("--help")
    assert top.returncode == 0 and all(c in top.stdout for c in ("train", "predict", "backtest"))
    for command, flag in (
        ("train", "--hpt-metric-name"),
        ("predict", "--future-uri"),
        ("backtest", "--champion-model-dir"),
        ("backtest", "--freshness-tolerance"),
    ):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and flag in result.stdout


@pytest.mark.parametrize("value", ["-0.5", "nan", "inf", "lots"])
def test_backtest_rejects_a_weather_noise_that_is_not_a_number_from_0(
    tmp_path: Path, tiny_db: str, retail_contract_file: str, value: str
):
    result = run_cli(
        "backtest", "--data-uri", tiny_db, "--contract", retail_contract_file,
        "--cutoff-date", "2024-06-30", "--model-dir", str(tmp_path / "m"),
        "--output-dir", str(tmp_path / "bt"), f"--weather-noise={value}",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--weather-noise" in result.stderr and ">= 0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("flag", "expected"), [([], "small"), (["--recipe", "panel"], "panel")])
def test_train_records_its_recipe_and_recipe_forces_one(
    tmp_path: Path, tiny_db: str, retail_contract_file: str, flag: list[str], expected: str
):
    model_dir = tmp_path / "model"
    train = run_cli(
        "train", "--data-uri", tiny_db, "--contract", retail_contract_file,
        "--cutoff-date", "2024-06-30", "--horizon", "7", "--n-estimators", "10",
        "--num-threads", "1", "--model-dir", str(model_dir), *flag,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    summary = json.loads(train.stdout.strip().splitlines()[-1])
    # The tiny panel (6 series, 122 days) is small data: auto picks small, the flag overrides.
    assert summary["recipe"]["name"] == expected
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["recipe"]["name"] == expected
    assert metadata["recipe"]["reason"] == summary["recipe"]["reason"]
    if flag:
        assert metadata["recipe"]["reason"] == "set in the trainer config"
        assert json.loads((model_dir / "params.json").read_text())["recipe"] == "panel"
    else:
        assert "fewer than 5,000 rows" in metadata["recipe"]["reason"]
    # Given by a flag, a knob is kept whatever the recipe.
    assert metadata["recipe"]["given"] == ["n_estimators"]


def test_train_rejects_an_unknown_recipe(tmp_path: Path, tiny_db: str, retail_contract_file: str):
    result = run_cli(
        "train", "--data-uri", tiny_db, "--contract", retail_contract_file,
        "--cutoff-date", "2024-06-30", "--model-dir", str(tmp_path / "m"), "--recipe", "huge",
    )  # fmt: skip
    assert result.returncode == 2
    assert "invalid choice: 'huge'" in result.stderr and "auto" in result.stderr
