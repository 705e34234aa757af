"""The daily DAG's nine tasks, built for the configured platform, and their trigger form.

Same task ids, same params, same order on every platform; only the operators behind the ids
change. Nothing here imports pandas, DuckDB, LightGBM or a cloud client at parse time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from sales_forecast.config import Settings, get_settings

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

log = logging.getLogger(__name__)

__all__ = [
    "ASSETS",
    "DailyTasks",
    "HptTasks",
    "daily_tasks",
    "dag_params",
    "hpt_params",
    "hpt_tasks",
    "local_daily_tasks",
    "outlets",
    "run_step",
]


class DailyTasks(NamedTuple):
    """The daily DAG's tasks by id; every platform builder returns one of these."""

    load_to_staging: BaseOperator
    validate: BaseOperator
    build_features: BaseOperator
    train: BaseOperator
    backtest_and_gate: BaseOperator
    forecast: BaseOperator
    merge_history: BaseOperator
    register: BaseOperator
    deploy: BaseOperator


class HptTasks(NamedTuple):
    """The tuning DAG's tasks by id (``sales_forecast_hpt``), on every platform."""

    tune: BaseOperator
    pick_best: BaseOperator
    retrain: BaseOperator
    backtest_and_gate: BaseOperator
    register: BaseOperator
    deploy: BaseOperator


def dag_params(settings: Settings | None = None) -> dict[str, Any]:
    """The Params shown in the trigger form."""
    from airflow.sdk import Param

    from sf_contract.schema import IDENTIFIER_PATTERN

    settings = settings or get_settings()
    return {
        "enable_deploy": Param(
            False,
            type="boolean",
            title="Deploy if the gate passes",
            description="Register the new model and deploy it to the endpoint, but only when it "
            "passes the quality gate (beats seasonal naive, and the production model unless it "
            "is the same recipe on newer data). Scheduled runs use SF_SCHEDULED_ENABLE_DEPLOY.",
        ),
        "use_tuned_params": Param(
            # On: until a study's model is registered this changes nothing (the lookup finds
            # no tuned version and the run says so); after that, daily runs keep its params.
            True,
            type="boolean",
            title="Use the tuned params",
            description="Train with the LightGBM params of the newest registered model that "
            "came from a sales_forecast_hpt study (it passed its gate to be registered). "
            "Until a study's model is registered, or when off: the SF_TRAINER_PARAMS recipe.",
        ),
        "input_uri": Param(
            settings.input_uri_default,
            type="string",
            minLength=1,
            title="Input CSV",
            description="Sales history CSV: a local path or a gs:// URI. Templates are rendered "
            "with the run, e.g. gs://bucket/drops/{{ ds }}/sales.csv for a daily drop.",
        ),
        "future_uri": Param(
            settings.default_future_uri,
            type=["null", "string"],
            title="Future covariates CSV (optional)",
            description="Known-in-advance values (prices, promotions, holidays) for the forecast "
            "days: the contract's columns minus the target. Without it, each known column is "
            "filled by its contract rule (e.g. last price, no promotion), never left empty.",
        ),
        "dataset": Param(
            settings.default_dataset,
            type="string",
            minLength=1,
            # The trigger form refuses a path or a name that could not be a table name.
            pattern=IDENTIFIER_PATTERN,
            title="Dataset contract",
            description="A shipped contract (retail, takeaway) or the name of a contract file "
            "in the configured contracts folder (SF_CONTRACTS_DIR).",
            examples=["retail", "takeaway"],
        ),
        "horizon": Param(
            settings.default_horizon,
            type="integer",
            minimum=1,
            maximum=366,
            title="Horizon (days)",
            description="How many days after the last day of data to forecast.",
        ),
        "cutoff_date": Param(
            "",
            type=["null", "string"],
            title="Cutoff date (optional)",
            description="Last day of data to use, YYYY-MM-DD. Empty: the day before the run's "
            "logical date, so a backfill sees only its own past.",
        ),
    }


def hpt_params(settings: Settings | None = None) -> dict[str, Any]:
    """The tuning DAG's trigger form: the search's size and metric, plus the data it tunes on."""
    from airflow.sdk import Param

    from sales_forecast.tuning import MAX_PARALLEL, MAX_TRIALS, METRICS, TuningRequest

    base = TuningRequest()
    daily = dag_params(settings)
    return {
        "trials": Param(
            base.trials,
            type="integer",
            minimum=1,
            maximum=MAX_TRIALS,
            title="Trials",
            description="How many parameter sets the study tries (one trainer run each).",
        ),
        "parallel_trials": Param(
            base.parallel_trials,
            type="integer",
            minimum=1,
            maximum=MAX_PARALLEL,
            title="Parallel trials",
            description="Trials run at the same time (locally: trainer processes at once).",
        ),
        "metric": Param(
            base.metric,
            type="string",
            enum=list(METRICS),
            title="Metric (minimised)",
            description="The validation metric the trainer reports and the study minimises.",
        ),
        "trial_timeout_s": Param(
            base.trial_timeout_s,
            type="integer",
            minimum=10,
            maximum=24 * 3600,
            title="Per-trial time budget (s)",
            description="A trial still running after this long is stopped and recorded pruned.",
        ),
        "enable_deploy": Param(
            False,
            type="boolean",
            title="Deploy if the gate passes",
            description="Register the retrained model and deploy it, only when it passes the "
            "quality gate (a changed recipe must beat the production model).",
        ),
        # The data the study tunes on: the features a daily run of this dataset built.
        "dataset": daily["dataset"],
        "horizon": daily["horizon"],
        "cutoff_date": daily["cutoff_date"],
    }


def run_step(step: str, **context: Any) -> Any:
    """Run one step of :mod:`sales_forecast.steps` inside an Airflow task (any platform)."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
    from pydantic import ValidationError

    from sales_forecast.errors import ConfigError, DataError, SkipStep
    from sales_forecast.platforms import open_run
    from sales_forecast.steps import STEPS
    from sf_contract.schema import ContractError

    try:
        settings = get_settings()
    except ValidationError as exc:
        # A bad SF_* setting does not get better by retrying either.
        raise AirflowFailException(f"invalid settings (SF_* environment): {exc}") from None
    task = context["task"]
    try:
        ctx, platform = open_run(settings, context, task.render_template)
        return STEPS[step](ctx, platform, settings)
    except (DataError, ConfigError, ContractError) as exc:
        # A bad input or setting does not get better by retrying.
        raise AirflowFailException(str(exc)) from None
    except SkipStep as exc:
        # Where the log opens, not only in the skip exception's collapsed traceback.
        log.warning("%s skipped: %s", step, exc)
        raise AirflowSkipException(str(exc)) from None


# What a step produces, as Airflow Assets: the UI lists each run's forecasts and registered
# models under them, and other DAGs can be scheduled on them.
ASSETS: dict[str, str] = {
    "forecast": "sales_forecast/daily_sales_forecasts",
    "register": "sales_forecast/registered_model",
}


def outlets(step: str) -> list[Any]:
    """The Assets a step's task updates (none for most steps)."""
    from airflow.sdk import Asset

    return [Asset(name=ASSETS[step])] if step in ASSETS else []


def step_operator(step: str) -> BaseOperator:
    """A task that runs ``steps.<step>`` as plain Python on the configured platform."""
    from airflow.providers.standard.operators.python import PythonOperator

    return PythonOperator(
        task_id=step, python_callable=run_step, op_kwargs={"step": step}, outlets=outlets(step)
    )


def local_daily_tasks(settings: Settings) -> DailyTasks:
    """Every step as plain Python: DuckDB, subprocess trainer jobs, the folder registry."""
    return DailyTasks(*(step_operator(step) for step in DailyTasks._fields))


def local_hpt_tasks(settings: Settings) -> HptTasks:
    """The tuning DAG locally: an Optuna study of trainer subprocesses, then the usual steps."""
    return HptTasks(*(step_operator(step) for step in HptTasks._fields))


def hpt_tasks(settings: Settings | None = None) -> HptTasks:
    """The tuning DAG's tasks for the configured platform (call inside a ``with DAG``)."""
    settings = settings or get_settings()
    if settings.platform == "gcp":
        from sales_forecast.platforms.gcp.tasks import gcp_hpt_tasks

        return gcp_hpt_tasks(settings)
    return local_hpt_tasks(settings)


def daily_tasks(settings: Settings | None = None) -> DailyTasks:
    """The DAG's tasks for the configured platform (call inside a ``with DAG``)."""
    settings = settings or get_settings()
    if settings.platform == "gcp":
        # Imported here: the provider (and the Vertex AI SDK under it) loads only on gcp.
        from sales_forecast.platforms.gcp.tasks import gcp_daily_tasks

        return gcp_daily_tasks(settings)
    return local_daily_tasks(settings)
