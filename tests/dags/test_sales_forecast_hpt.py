"""The tuning DAG's shape: its tasks, edges and params, on both platforms, parsed cheaply."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
TASKS = ["tune", "pick_best", "retrain", "backtest_and_gate", "register", "deploy"]


def load(monkeypatch, platform):
    from airflow.dag_processing.dagbag import DagBag
    from sales_forecast import config

    monkeypatch.setenv("SF_PLATFORM", platform)
    config.get_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        config.get_settings.cache_clear()
    assert bag.import_errors == {}
    return bag.dags["sales_forecast_hpt"]


@pytest.mark.parametrize(
    ("platform", "tune_operator"),
    [("local", "PythonOperator"), ("gcp", "TuneJobOperator")],
)
def test_tasks_and_edges(monkeypatch, platform, tune_operator):
    dag = load(monkeypatch, platform)
    assert dag.schedule is None  # manual trigger only
    assert sorted(t.task_id for t in dag.tasks) == sorted(TASKS)
    for upstream, downstream in zip(TASKS, TASKS[1:], strict=False):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert dag.get_task("deploy").downstream_task_ids == set()
    assert type(dag.get_task("tune")).__name__ == tune_operator
    if platform == "gcp":
        from airflow.providers.google.cloud.operators.vertex_ai.hyperparameter_tuning_job import (
            CreateHyperparameterTuningJobOperator,
        )

        assert isinstance(dag.get_task("tune"), CreateHyperparameterTuningJobOperator)
        assert type(dag.get_task("retrain")).__name__ == "TrainerJobOperator"


def test_params(monkeypatch):
    dag = load(monkeypatch, "local")
    params = dag.params
    assert {"trials", "parallel_trials", "metric", "trial_timeout_s", "enable_deploy"} <= set(
        params
    )
    assert {"dataset", "horizon", "cutoff_date"} <= set(params)
    assert params["enable_deploy"] is False
    assert params.get_param("metric").schema["enum"] == ["mae", "wape"]
    assert params["trials"] == 20 and params["parallel_trials"] == 2


def test_parses_without_heavy_imports():
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('pandas', 'lightgbm', 'duckdb', 'mlforecast', 'optuna', "
        "'google.cloud.aiplatform', 'sklearn', 'trainer', 'serving') if m in sys.modules]; "
        "print(heavy)"
    )
    env = {
        **os.environ,
        "SF_PLATFORM": "local",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////nonexistent-dir/airflow.db",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "sales_forecast_hpt.py")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
