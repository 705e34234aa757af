"""End to end: the real `airflow dags test` on a small generated panel, checking what it wrote.

Runs Airflow exactly as a user does (a subprocess with its own AIRFLOW_HOME), with the trainer
as a real subprocess and a real DuckDB warehouse.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
HORIZON = 14


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from datagen.retail import generate_retail

    root = tmp_path_factory.mktemp("e2e")
    panel = generate_retail(
        n_stores=2, n_items=3, start="2024-01-01", end="2025-03-31", future_days=HORIZON, seed=3
    )
    sales = root / "sales.csv"
    panel.history.to_csv(sales, index=False)
    # A few bad rows: each must land in rejected_rows with a reason, the rest of the file loads.
    with sales.open("a") as fh:
        fh.write("2025-03-31,S01,I001,-5,1.0,false,false,10.0,true\n")  # negative (and conflicting)
        fh.write("2025-02-30,S01,I001,3,1.0,false,false,10.0,true\n")  # impossible date
        fh.write("2025-03-01,S02,I002,many,1.0,false,false,10.0,true\n")  # wrong type
    future = root / "future.csv"
    panel.future.to_csv(future, index=False)
    home = root / "airflow"
    e = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}",
        "SF_PLATFORM": "local",
        "SF_DATA_ROOT": str(root / "data"),
        "SF_INPUT_ROOTS": json.dumps([str(root)]),  # the test's input files live beside it
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=e, check=True, capture_output=True)
    n_series = panel.history.groupby(["store_id", "item_id"]).ngroups
    return {"env": e, "root": root, "sales": sales, "future": future, "n_series": n_series}


def dags_test(env, logical_date, conf):
    proc = subprocess.run(
        [AIRFLOW, "dags", "test", "sales_forecast", logical_date, "-c", json.dumps(conf)],
        env=env["env"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def task_states(env, logical_date_prefix):
    con = sqlite3.connect(env["root"] / "airflow" / "airflow.db")
    rows = con.execute(
        "SELECT ti.task_id, ti.state FROM task_instance ti JOIN dag_run dr "
        "ON ti.dag_id = dr.dag_id AND ti.run_id = dr.run_id "
        "WHERE dr.dag_id = 'sales_forecast' AND dr.logical_date LIKE ?",
        [f"{logical_date_prefix}%"],
    ).fetchall()
    con.close()
    return dict(rows)


def warehouse(env):
    return duckdb.connect(str(env["root"] / "data" / "warehouse.duckdb"), read_only=True)


def test_daily_run_with_deploy_then_identical_rerun(env):
    conf = {
        "enable_deploy": True,
        "input_uri": str(env["sales"]),
        "future_uri": str(env["future"]),
        "horizon": HORIZON,
    }
    dags_test(env, "2025-04-01", conf)
    states = task_states(env, "2025-04-01")
    assert set(states.values()) == {"success"}, states

    with warehouse(env) as con:
        rows, series, nulls, first, last = con.execute(
            "SELECT count(*), count(DISTINCT series_id), count_if(forecast IS NULL), "
            "min(date), max(date) FROM sales_forecast.daily_sales_forecasts"
        ).fetchone()
        assert series == env["n_series"]
        assert rows == env["n_series"] * HORIZON and nulls == 0
        assert str(first) == "2025-04-01" and str(last) == "2025-04-14"
        reasons = [
            r[0]
            for r in con.execute(
                "SELECT reason FROM sales_forecast.rejected_rows ORDER BY source_row"
            ).fetchall()
        ]
        assert any("negative value" in r for r in reasons)
        assert any('"2025-02-30" is not a valid DATE' in r for r in reasons)
        assert any('"many" is not a valid FLOAT64' in r for r in reasons)
        (history,) = con.execute("SELECT count(*) FROM sales_forecast.sales_history").fetchone()
    registry = json.loads(
        (env["root"] / "data" / "models" / "sales_forecast" / "registry.json").read_text()
    )
    assert len(registry["versions"]) == 1
    assert registry["aliases"]["production"] == registry["versions"][0]["version"]
    gate = json.loads(
        next((env["root"] / "data" / "runs").glob("*/backtest/gate.json")).read_text()
    )
    assert gate["passed"] is True and gate["challenger"] < gate["baseline"]

    # The same run again: nothing is duplicated.
    dags_test(env, "2025-04-01", conf)
    with warehouse(env) as con:
        assert (
            con.execute("SELECT count(*) FROM sales_forecast.daily_sales_forecasts").fetchone()[0]
            == rows
        )
        assert con.execute("SELECT count(*) FROM sales_forecast.sales_history").fetchone()[0] == (
            history
        )
        assert con.execute("SELECT count(*) FROM sales_forecast.rejected_rows").fetchone()[0] == (
            len(reasons)
        )
    registry = json.loads(
        (env["root"] / "data" / "models" / "sales_forecast" / "registry.json").read_text()
    )
    assert len(registry["versions"]) == 1


def test_run_without_deploy_skips_register_and_deploy(env):
    dags_test(env, "2025-04-02", {"input_uri": str(env["sales"]), "horizon": HORIZON})
    states = task_states(env, "2025-04-02")
    assert states["forecast"] == "success"
    assert states["register"] == "skipped" and states["deploy"] == "skipped"


def test_batch_predict_dag_forecasts_a_file_of_instances_with_the_registered_model(env):
    # After test_daily_run_with_deploy_then_identical_rerun: the registry holds version 1.
    instances = env["root"] / "instances.jsonl"
    instances.write_text(
        json.dumps({"store_id": "S01", "item_id": "I001", "horizon": 5})
        + "\n"
        + json.dumps({"store_id": "S02", "item_id": "I002"})
        + "\n"
        + json.dumps({"store_id": "S99", "item_id": "nope"})
        + "\n"
    )
    out = env["root"] / "batch" / "out.jsonl"
    conf = {"model": "1", "input_uri": str(instances), "output_uri": str(out), "horizon": 3}
    proc = subprocess.run(
        [
            AIRFLOW,
            "dags",
            "test",
            "sales_forecast_batch_predict",
            "2025-04-03",
            "-c",
            json.dumps(conf),
        ],
        env=env["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(x["prediction"]["forecasts"]) for x in lines[:2]] == [5, 3]
    assert lines[0]["prediction"]["series_id"] == "S01|I001"
    assert "unknown series" in lines[2]["error"]
    assert "batch manual__" in proc.stdout + proc.stderr or "instances (100%)" in (
        proc.stdout + proc.stderr
    )


def _dag_test(env, dag_id, logical_date, conf):
    return subprocess.run(
        [AIRFLOW, "dags", "test", dag_id, logical_date, "-c", json.dumps(conf)],
        env=env["env"],
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_monitoring_scores_past_forecasts_and_fails_a_crossed_threshold_by_name(env):
    # Forecasts made from 2025-03-17 have actuals (the file runs to 03-31): they get scored.
    dags_test(
        env,
        "2025-04-03",
        {"input_uri": str(env["sales"]), "horizon": HORIZON, "cutoff_date": "2025-03-17"},
    )
    # Then the day's run: daily_sales_features (the actuals) reach 03-31 again.
    dags_test(env, "2025-04-04", {"input_uri": str(env["sales"]), "horizon": HORIZON})
    quiet = {"min_value_added": None, "min_coverage_80": None, "max_drifted": 1000}
    proc = _dag_test(env, "sales_forecast_monitoring", "2025-04-04", quiet)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    with warehouse(env) as con:
        (n, points, versions) = con.execute(
            "SELECT count(*), max(n_points), count(DISTINCT model_version) "
            "FROM sales_forecast.forecast_accuracy "
            "WHERE monitor_date = DATE '2025-04-03' AND series_group = 'total' AND horizon_day = 0"
        ).fetchone()
        assert n >= 1 and points == env["n_series"] * HORIZON
        wape, naive = con.execute(
            "SELECT wape, naive_wape FROM sales_forecast.forecast_accuracy "
            "WHERE series_group = 'total' AND horizon_day = 0"
        ).fetchone()
        assert 0 < wape < 1 and 0 < naive < 2
        groups = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT series_group FROM sales_forecast.drift_report"
            ).fetchall()
        }
        assert groups == {"total", "S01", "S02"}
    # The same day again replaces its rows; an impossible WAPE bound fails check_accuracy.
    strict = {**quiet, "max_wape": 0.0001}
    proc = _dag_test(env, "sales_forecast_monitoring", "2025-04-04T01:00:00+00:00", strict)
    states = dict(
        sqlite3.connect(env["root"] / "airflow" / "airflow.db")
        .execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = 'sales_forecast_monitoring' "
            "AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = 'sales_forecast_monitoring' "
            "ORDER BY id DESC LIMIT 1)"
        )
        .fetchall()
    )
    assert states["monitor"] == "success" and states["check_drift"] == "success"
    assert states["check_accuracy"] == "failed"
    assert states["decide_retrain"] == "skipped"  # retrain_on_alert is off
    assert "realised accuracy: model" in proc.stdout + proc.stderr
    with warehouse(env) as con:
        (again,) = con.execute(
            "SELECT count(*) FROM sales_forecast.forecast_accuracy "
            "WHERE monitor_date = DATE '2025-04-03' AND series_group = 'total' AND horizon_day = 0"
        ).fetchone()
    assert again == n
