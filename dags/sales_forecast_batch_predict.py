"""
### Batch prediction

Forecasts every instance of a file or table with a registered model version, in one job: the
online endpoint's instances (`{"store_id": "S01", "item_id": "I003", "horizon": 14}`, with
`future` and `history` where known), the same predictor, the same forecasts.

Params: `model` (a registry alias such as `production`, or a version number), `input_uri`,
`output_uri`, `horizon` (for instances that give none). Locally the serving image's
`python -m serving.batch` runs on the local registry; on GCP a Vertex AI batch prediction job
runs on the registered model (GCS JSONL or a BigQuery table in, GCS or BigQuery out).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG
from sales_forecast.batch_predict import batch_params, batch_task
from sales_forecast.config import get_settings

settings = get_settings()

with DAG(
    dag_id="sales_forecast_batch_predict",
    description="Batch prediction with a registered model over a file or table of instances",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"owner": "forecasting", "retries": 1, "retry_delay": timedelta(minutes=2)},
    params=batch_params(settings),
    doc_md=__doc__,
    tags=["forecasting", "sales", "batch"],
) as dag:
    batch_task(settings)
