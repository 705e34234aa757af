"""End to end: the real `airflow dags test` of a daily run, then of the tuning DAG on its features.

Airflow runs as a user runs it (a subprocess with its own AIRFLOW_HOME), the trials and the
retrain are real trainer subprocesses, the warehouse a real DuckDB file.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
HORIZON = 7


def dags_test(env, dag_id, logical_date, conf):
    proc = subprocess.run(
        [AIRFLOW, "dags", "test", dag_id, logical_date, "-c", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def test_tuning_run_after_a_daily_run(tmp_path):
    from datagen.retail import generate_retail

    panel = generate_retail(
        n_stores=1, n_items=3, start="2024-06-01", end="2025-03-31", future_days=0, seed=11
    )
    sales = tmp_path / "sales.csv"
    panel.history.to_csv(sales, index=False)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}",
        "SF_PLATFORM": "local",
        "SF_DATA_ROOT": str(tmp_path / "data"),
        "SF_INPUT_ROOTS": json.dumps([str(tmp_path)]),
        "SF_BACKTEST_WINDOWS": "1",
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    dags_test(env, "sales_forecast", "2025-04-01", {"input_uri": str(sales), "horizon": HORIZON})
    conf = {
        "trials": 2,
        "parallel_trials": 2,
        "metric": "wape",
        "horizon": HORIZON,
        "cutoff_date": "2025-03-31",
        "enable_deploy": True,
    }
    proc = dags_test(env, "sales_forecast_hpt", "2025-04-02", conf)
    log = proc.stdout + proc.stderr
    assert "tuning progress: 2/2 trials done" in log
    con = sqlite3.connect(tmp_path / "airflow" / "airflow.db")
    states = dict(
        con.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = 'sales_forecast_hpt'"
        ).fetchall()
    )
    con.close()
    ran = ("tune", "pick_best", "retrain", "backtest_and_gate")
    assert {states[t] for t in ran} == {"success"}, states
    assert states["register"] in ("success", "skipped")
    assert states["deploy"] in ("success", "skipped")
    runs = [p for p in (tmp_path / "data" / "runs").iterdir() if (p / "tuning").is_dir()]
    (run,) = runs
    best = json.loads((run / "tuning" / "best.json").read_text())
    trained = json.loads((run / "model" / "params.json").read_text())["params"]
    assert {k: trained[k] for k in best["params"]} == best["params"]
    if states["register"] == "success":
        registry = json.loads(
            (tmp_path / "data" / "models" / "sales_forecast" / "registry.json").read_text()
        )
        tuned = [v for v in registry["versions"] if v.get("tuning")]
        assert tuned and tuned[-1]["tuning"]["study"] == best["study"]
