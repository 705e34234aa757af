"""
### Monitoring

Every day (and on demand), after new actuals have come in: scores every stored forecast of the
last `window_days` days against the actuals (WAPE, MASE, bias, 80/95 interval coverage, and
seasonal naive on the same days: the forecast value added), per model version, series group and
horizon day, into `forecast_accuracy`; and the drift of the target and each numeric covariate
(PSI, latest days against the `reference_days` before them, per series group) into
`drift_report`. Re-running a day replaces that day's rows.

`check_accuracy` and `check_drift` fail when a threshold (the Params) is crossed, so Airflow's
alerting fires; with `retrain_on_alert` the daily DAG is then triggered.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG
from sales_forecast.monitoring import monitor_params
from sales_forecast.monitoring_tasks import check_accuracy, check_drift, decide_retrain, monitor

with DAG(
    dag_id="sales_forecast_monitoring",
    description="Realised accuracy of past forecasts and drift, with thresholds",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "forecasting", "retries": 1, "retry_delay": timedelta(minutes=2)},
    params=monitor_params(),
    doc_md=__doc__,
    tags=["forecasting", "sales", "monitoring"],
) as dag:
    computed = PythonOperator(task_id="monitor", python_callable=monitor)
    accuracy = PythonOperator(task_id="check_accuracy", python_callable=check_accuracy)
    drift = PythonOperator(task_id="check_drift", python_callable=check_drift)
    decide = PythonOperator(
        task_id="decide_retrain", python_callable=decide_retrain, trigger_rule="one_failed"
    )
    retrain = TriggerDagRunOperator(
        task_id="trigger_retrain",
        trigger_dag_id="sales_forecast",
        conf={"dataset": "{{ params.dataset }}"},
    )
    computed >> [accuracy, drift] >> decide >> retrain
