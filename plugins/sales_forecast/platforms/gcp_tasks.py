"""The daily DAG's tasks for ``SF_PLATFORM=gcp``: the same ids, in the same order, as locally.

| task id            | operator (Google provider)                                   |
|--------------------|--------------------------------------------------------------|
| load_to_staging    | ``GCSToBigQueryOperator`` (contract schema, WRITE_TRUNCATE)  |
| validate           | ``BigQueryInsertJobOperator`` (validate.sql, quarantine.sql) |
| build_features     | ``BigQueryInsertJobOperator`` (merge_history.sql, features.sql) |
| train              | ``CreateCustomJobOperator`` (trainer image), or Cloud Run    |
| backtest_and_gate  | ``CreateCustomJobOperator`` (trainer image), or Cloud Run    |
| forecast           | ``CreateCustomJobOperator`` (trainer image), or Cloud Run    |
| register           | ``UploadModelOperator`` (serving image, promoted folder)     |
| deploy             | ``DeployModelOperator`` (endpoint found or created)          |

Every GCP value is read when the task runs (see ``Settings.gcp_*`` and docs/gcp.md); building
the tasks reads nothing but the environment's ``SF_*`` variables.
"""

from __future__ import annotations

from typing import Any

from sales_forecast.config import Settings

__all__ = ["build_gcp_tasks"]


def build_gcp_tasks(settings: Settings) -> list[Any]:
    """The eight provider operators, in ``dag_factory.TASK_IDS`` order (call inside a DAG)."""
    # Imported here: the provider (and the Vertex AI SDK under it) loads only on the gcp platform.
    from sales_forecast.platforms.gcp_operators import (
        SfBigQuerySqlOperator,
        SfDeployModelOperator,
        SfGcsToBigQueryOperator,
        SfTrainerJobOperator,
        SfUploadModelOperator,
    )

    return [
        SfGcsToBigQueryOperator(task_id="load_to_staging", settings=settings),
        SfBigQuerySqlOperator(
            task_id="validate",
            settings=settings,
            scripts=("validate", "quarantine"),
            sql_params={"run_id": "{{ sf.run_id }}", "source_file": "{{ sf.input_uri }}"},
            check="validate",
        ),
        SfBigQuerySqlOperator(
            task_id="build_features",
            settings=settings,
            scripts=("merge_history", "features"),
            sql_params={"run_id": "{{ sf.run_id }}"},
            check="features",
        ),
        SfTrainerJobOperator(task_id="train", settings=settings, command="train"),
        SfTrainerJobOperator(task_id="backtest_and_gate", settings=settings, command="backtest"),
        SfTrainerJobOperator(task_id="forecast", settings=settings, command="predict"),
        SfUploadModelOperator(task_id="register", settings=settings),
        SfDeployModelOperator(task_id="deploy", settings=settings),
    ]
