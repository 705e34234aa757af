"""
### Daily sales forecast

Loads the day's sales CSV into a staging table, validates it (bad rows go to `rejected_rows`
with a reason), builds `daily_sales_features` with SQL, trains a LightGBM forecaster, backtests it
against a seasonal-naive baseline and the production model, and writes the next `horizon` days of
every series to `daily_sales_forecasts`. Only then do the file's accepted rows join
`sales_history` (`merge_history`): a run that fails leaves history as it was.

With **`enable_deploy`** on and the quality gate passed, the model is registered and deployed
(`register` and `deploy` are *skipped*, not failed, otherwise).

The platform (`local`: DuckDB + subprocesses + a folder registry; `gcp`: BigQuery, Vertex AI)
comes from the `SF_PLATFORM` setting. See the repository README for the params and tables.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG
from sales_forecast.tasks import dag_params, daily_tasks

with DAG(
    dag_id="sales_forecast",
    description="Daily sales forecast: load, validate, features, train, gate, forecast, deploy",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "forecasting",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
    params=dag_params(),
    doc_md=__doc__,
    tags=["forecasting", "sales"],
) as dag:
    t = daily_tasks()
    (
        t.load_to_staging
        >> t.validate
        >> t.build_features
        >> t.train
        >> t.backtest_and_gate
        >> t.forecast
        >> t.merge_history
        >> t.register
        >> t.deploy
    )
