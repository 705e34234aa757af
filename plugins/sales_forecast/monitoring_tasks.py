"""The monitoring DAG's tasks: run the trainer's ``monitor`` job, then check its figures.

``monitor`` writes this day's ``forecast_accuracy`` and ``drift_report`` rows (re-running the
day replaces them) and a summary; ``check_accuracy`` and ``check_drift`` fail, each under its own
name, when a threshold is crossed (so Airflow's alerting and callbacks fire);
``decide_retrain`` triggers the daily DAG after a failed check when the run asks for it.
The local platform runs the job as a subprocess; on GCP the job is not wired yet (the task
says so).
"""

from __future__ import annotations

__all__ = ["check_accuracy", "check_drift", "decide_retrain", "monitor"]

import json
import logging
from typing import Any

from sales_forecast.config import get_settings
from sales_forecast.errors import ConfigError, DataError
from sales_forecast.monitoring import (
    MonitorRun,
    Thresholds,
    accuracy_alerts,
    drift_alerts,
    monitor_args,
    monitor_run,
)

log = logging.getLogger(__name__)


def _run(context: dict[str, Any]) -> MonitorRun:
    return monitor_run(dict(context["params"]), context.get("logical_date"))


def monitor(**context: Any) -> dict[str, Any]:
    """Compute and store the day's realised accuracy and drift; the summary goes to XCom."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from sales_forecast.contract import load_contract
    from sales_forecast.platforms.local import build_local_platform
    from sales_forecast.run_context import run_key
    from sf_contract.schema import ContractError

    settings = get_settings()
    try:
        run = _run(context)
        if settings.platform == "gcp":
            raise ConfigError(
                "sales_forecast_monitoring runs on the local platform only for now: on GCP, run "
                "`python -m trainer monitor` as a Vertex AI custom job (docs/gcp.md)"
            )
        contract = load_contract(run.dataset)
        platform = build_local_platform(settings, contract.name)
        wh = platform.warehouse
        missing = [
            t for t in ("daily_sales_features", "daily_sales_forecasts") if not wh.table_exists(t)
        ]
        if missing:
            raise AirflowSkipException(
                f"nothing to monitor yet for {contract.name!r}: no {', '.join(missing)} "
                "(run sales_forecast first)"
            )
        folder = f"{settings.runs_root}/{run_key(str(context['run_id']))}/monitoring"
        contract_uri = f"{folder}/contract.json"
        summary_uri = f"{folder}/summary.json"
        platform.store.write_text(contract_uri, json.dumps(contract.to_dict(), indent=2))
        args = monitor_args(
            run,
            features_uri=wh.table_uri("daily_sales_features"),
            forecasts_uri=wh.table_uri("daily_sales_forecasts"),
            contract_uri=contract_uri,
            accuracy_uri=wh.table_uri("forecast_accuracy"),
            drift_uri=wh.table_uri("drift_report"),
        )
        if platform.runner is None:
            raise ConfigError("the local platform has no job runner")
        platform.runner.run(
            "monitor",
            [*args, "--summary-uri", summary_uri],
            env={},
            job_name=f"monitor-{run_key(str(context['run_id']))}",
        )
        summary: dict[str, Any] = json.loads(platform.store.read_bytes(summary_uri))
    except (DataError, ConfigError, ContractError) as exc:
        raise AirflowFailException(str(exc)) from None
    log.info(
        "monitoring %s (%s): %d forecast points scored, %d drifted pairs",
        run.monitor_date,
        run.dataset,
        summary["scored_points"],
        len(summary["drifted"]),
    )
    return summary


def _summary(context: dict[str, Any]) -> tuple[dict[str, Any], Thresholds]:
    summary = context["ti"].xcom_pull(task_ids="monitor")
    return dict(summary or {}), _run(context).thresholds


def check_accuracy(**context: Any) -> list[str]:
    """Fail (no retry) when a model's realised accuracy crosses a threshold."""
    from airflow.sdk.exceptions import AirflowFailException

    summary, thresholds = _summary(context)
    if not summary.get("scored_points"):
        log.info("no stored forecast has an actual yet: accuracy not judged")
    alerts = accuracy_alerts(summary, thresholds)
    if alerts:
        raise AirflowFailException("realised accuracy: " + "; ".join(alerts))
    return alerts


def check_drift(**context: Any) -> list[str]:
    """Fail (no retry) when more (feature, group) pairs drifted than allowed."""
    from airflow.sdk.exceptions import AirflowFailException

    summary, thresholds = _summary(context)
    alerts = drift_alerts(summary, thresholds)
    if alerts:
        raise AirflowFailException("drift: " + "; ".join(alerts))
    return alerts


def decide_retrain(**context: Any) -> dict[str, Any]:
    """After a failed check: go on to trigger the daily DAG only when the run asks for it."""
    from airflow.sdk.exceptions import AirflowSkipException

    run = _run(context)
    if context["ti"].xcom_pull(task_ids="monitor") is None:
        raise AirflowSkipException("monitoring itself failed: nothing says the model is worse")
    if not run.retrain_on_alert:
        raise AirflowSkipException("retrain_on_alert is off: no retraining triggered")
    return {"dataset": run.dataset}
