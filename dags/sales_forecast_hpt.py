"""
### Sales forecast: hyperparameter tuning

Manual trigger. Searches the LightGBM parameters (`sales_forecast.tuning.SPEC`) on the features
a daily `sales_forecast` run built for the dataset: **`trials`** trainer runs, up to
**`parallel_trials`** at once, each scored by its validation **`metric`** (mae or wape,
minimised) and stopped (recorded pruned) after **`trial_timeout_s`**. Then `pick_best` reads the
best trial, `retrain` trains the model once on the full window with its params, and the daily
DAG's `backtest_and_gate`, `register` and `deploy` follow (register and deploy only with
**`enable_deploy`** and a passed gate). Trials write under the run's `tuning/` folder, never to
the promoted models; the registry records the study that produced the model's params.

Locally an Optuna study (SQLite, under the run folder: a re-run resumes it) drives trainer
subprocesses; on GCP a Vertex AI hyperparameter tuning job runs the trainer image.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG
from sales_forecast.tasks import hpt_params, hpt_tasks

with DAG(
    dag_id="sales_forecast_hpt",
    description="Tune the forecaster's LightGBM params, retrain once, gate, register, deploy",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "forecasting",
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
    },
    params=hpt_params(),
    doc_md=__doc__,
    tags=["forecasting", "sales", "tuning"],
) as dag:
    t = hpt_tasks()
    t.tune >> t.pick_best >> t.retrain >> t.backtest_and_gate >> t.register >> t.deploy
