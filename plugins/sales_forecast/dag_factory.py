"""Builds the daily DAG's tasks for the configured platform.

Same task ids, same params, same order on every platform; only the operators behind the ids
change. Nothing here imports pandas, DuckDB, LightGBM or a cloud client at parse time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sales_forecast.config import Settings, get_settings

__all__ = ["TASK_IDS", "build_tasks", "dag_params", "run_step"]

TASK_IDS = (
    "load_to_staging",
    "validate",
    "build_features",
    "train",
    "backtest_and_gate",
    "forecast",
    "register",
    "deploy",
)

# The steps whose functions also take the settings object.
_WITH_SETTINGS = {"validate", "backtest_and_gate"}


def dag_params(settings: Settings | None = None) -> dict[str, Any]:
    """The Params shown in the trigger form."""
    from airflow.sdk import Param

    settings = settings or get_settings()
    return {
        "enable_deploy": Param(
            False,
            type="boolean",
            title="Deploy if the gate passes",
            description="Register the new model and deploy it to the endpoint, but only when it "
            "beats the seasonal-naive baseline and the production model on the backtest.",
        ),
        "input_uri": Param(
            settings.default_input_uri,
            type="string",
            minLength=1,
            title="Input CSV",
            description="Sales history CSV: a local path or a gs:// URI. Templates are rendered "
            "with the run, e.g. gs://bucket/drops/{{ ds }}/sales.csv for a daily drop.",
        ),
        "future_uri": Param(
            "",
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
            title="Dataset contract",
            description="retail, takeaway, or the path to a contract YAML/JSON file.",
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


def _render(value: Any, context: dict[str, Any]) -> Any:
    if not isinstance(value, str) or "{" not in value:
        return value
    return context["task"].render_template(value, context)


def run_step(step: str, **context: Any) -> Any:
    """Run one step of :mod:`sales_forecast.steps` inside an Airflow task."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from sales_forecast import steps
    from sales_forecast.platforms import build_platform

    settings = get_settings()
    dag_run = context["dag_run"]
    # Airflow 3 runs triggered without a logical date still have run_after.
    when = context.get("logical_date") or dag_run.run_after
    ctx_for_templates = dict(context)
    ctx_for_templates.setdefault("ds", when.strftime("%Y-%m-%d"))
    ctx_for_templates.setdefault("ds_nodash", when.strftime("%Y%m%d"))
    params = {k: _render(v, ctx_for_templates) for k, v in dict(context["params"]).items()}
    fn: Callable[..., Any] = getattr(steps, step)
    try:
        ctx = steps.make_run_context(
            run_id=dag_run.run_id,
            logical_date=when,
            params=params,
            settings=settings,
            runs_root=str(settings.runs_root),
        )
        platform = build_platform(settings, steps.load_run_contract(ctx).name)
        args = (ctx, platform, settings) if step in _WITH_SETTINGS else (ctx, platform)
        return fn(*args)
    except steps.DataError as exc:
        # A bad input does not get better by retrying.
        raise AirflowFailException(str(exc)) from None
    except steps.SkipStep as exc:
        raise AirflowSkipException(str(exc)) from None


def _build_local_tasks(settings: Settings) -> list[Any]:
    from airflow.providers.standard.operators.python import PythonOperator

    return [
        PythonOperator(task_id=step, python_callable=run_step, op_kwargs={"step": step})
        for step in TASK_IDS
    ]


def _build_gcp_tasks(settings: Settings) -> list[Any]:
    from sales_forecast.platforms.gcp_tasks import build_gcp_tasks

    return build_gcp_tasks(settings)


_BUILDERS: dict[str, Callable[[Settings], list[Any]]] = {
    "local": _build_local_tasks,
    "gcp": _build_gcp_tasks,
}


def build_tasks(settings: Settings | None = None) -> list[Any]:
    """The DAG's tasks, in order, for the configured platform (call inside a ``with DAG``)."""
    settings = settings or get_settings()
    tasks = _BUILDERS[settings.platform](settings)
    assert tuple(t.task_id for t in tasks) == TASK_IDS, "every platform must keep the task ids"
    return tasks
