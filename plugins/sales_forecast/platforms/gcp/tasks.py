"""The daily DAG's tasks for ``SF_PLATFORM=gcp``: the same ids, in the same order, as locally.

| task id            | on GCP                                                            |
|--------------------|-------------------------------------------------------------------|
| load_to_staging    | ``GCSToBigQueryOperator`` (contract schema, WRITE_TRUNCATE)       |
| validate           | the shared ``steps.validate`` on BigQuery (``PythonOperator``)    |
| build_features     | the shared ``steps.build_features`` on BigQuery                   |
| train              | ``CreateCustomJobOperator`` (trainer image), or Cloud Run         |
| backtest_and_gate  | ``CreateCustomJobOperator`` (trainer image), or Cloud Run         |
| forecast           | ``CreateCustomJobOperator`` (trainer image), or Cloud Run         |
| merge_history      | the shared ``steps.merge_history`` on BigQuery                    |
| register           | ``UploadModelOperator`` (serving image, promoted folder)          |
| deploy             | ``DeployModelOperator`` (endpoint found or created)               |

The tuning DAG (``sales_forecast_hpt``): ``tune`` is ``CreateHyperparameterTuningJobOperator``
(:mod:`sales_forecast.platforms.gcp.tuning`), ``pick_best`` the shared step, ``retrain`` and
``backtest_and_gate`` trainer custom jobs, ``register`` and ``deploy`` as above.

Every GCP value is read when the task runs (see ``Settings.gcp_*`` and docs/gcp.md); building
the tasks reads nothing but the environment's ``SF_*`` variables.
"""

from __future__ import annotations

from sales_forecast.config import Settings
from sales_forecast.platforms.gcp.deploy import DeployToEndpointOperator
from sales_forecast.platforms.gcp.load import GcsToStagingOperator
from sales_forecast.platforms.gcp.register import RegisterModelOperator
from sales_forecast.platforms.gcp.trainer_jobs import TrainerJobOperator
from sales_forecast.platforms.gcp.tuning import TuneJobOperator
from sales_forecast.tasks import DailyTasks, HptTasks, outlets, step_operator

__all__ = ["gcp_daily_tasks", "gcp_hpt_tasks"]


def gcp_hpt_tasks(settings: Settings) -> HptTasks:
    """The tuning DAG's six tasks on the Google provider's operators."""
    return HptTasks(
        tune=TuneJobOperator(task_id="tune", settings=settings),
        pick_best=step_operator("pick_best"),
        retrain=TrainerJobOperator(task_id="retrain", settings=settings, step="retrain"),
        backtest_and_gate=TrainerJobOperator(
            task_id="backtest_and_gate", settings=settings, step="backtest_and_gate"
        ),
        register=RegisterModelOperator(
            task_id="register", settings=settings, outlets=outlets("register")
        ),
        deploy=DeployToEndpointOperator(task_id="deploy", settings=settings),
    )


def gcp_daily_tasks(settings: Settings) -> DailyTasks:
    """The nine tasks on the Google provider's operators (call inside a ``with DAG``)."""
    return DailyTasks(
        load_to_staging=GcsToStagingOperator(task_id="load_to_staging", settings=settings),
        validate=step_operator("validate"),
        build_features=step_operator("build_features"),
        train=TrainerJobOperator(task_id="train", settings=settings, step="train"),
        backtest_and_gate=TrainerJobOperator(
            task_id="backtest_and_gate", settings=settings, step="backtest_and_gate"
        ),
        forecast=TrainerJobOperator(
            task_id="forecast", settings=settings, step="forecast", outlets=outlets("forecast")
        ),
        merge_history=step_operator("merge_history"),
        register=RegisterModelOperator(
            task_id="register", settings=settings, outlets=outlets("register")
        ),
        deploy=DeployToEndpointOperator(task_id="deploy", settings=settings),
    )
