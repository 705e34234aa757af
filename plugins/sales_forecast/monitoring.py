"""The monitoring DAG's decisions: which day it checks, the trainer's ``monitor`` job, and which
figures cross a threshold.

The figures themselves (realised accuracy, PSI drift) are computed by the trainer image
(``python -m trainer monitor``: the ML code lives there, and the same job runs on either
platform); this module decides everything around it, once: the monitoring day (the day before
the run's logical date, as a daily run's cut-off), the job's arguments, and the alerts.
"""

from __future__ import annotations

__all__ = [
    "MonitorRun",
    "Thresholds",
    "accuracy_alerts",
    "drift_alerts",
    "monitor_args",
    "monitor_params",
    "monitor_run",
]

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sales_forecast.errors import DataError
from sf_contract.constants import DATE_FORMAT


@dataclass(frozen=True)
class Thresholds:
    """What counts as the model no longer working (each ``None``: not checked)."""

    # Forecast value added over seasonal naive on the same realised days: below this, the model
    # is no better than repeating last week (0.0: it must at least match it).
    min_value_added: float | None = 0.0
    max_wape: float | None = None
    # The 80% interval should hold about 80% of the actuals; far below, the bands mislead.
    min_coverage_80: float | None = 0.6
    # Fewer scored points than this and accuracy is not judged (a few days say little).
    min_points: int = 28
    psi: float = 0.2
    # (feature, group) pairs above the PSI threshold tolerated before the drift check fails.
    max_drifted: int = 0


@dataclass(frozen=True)
class MonitorRun:
    """One monitoring run: its day, dataset, windows and thresholds."""

    monitor_date: date
    dataset: str
    window_days: int
    reference_days: int
    thresholds: Thresholds
    retrain_on_alert: bool


def monitor_params() -> dict[str, Any]:
    """The monitoring DAG's Params (the trigger form, and what the daily schedule uses)."""
    from airflow.sdk import Param

    th = Thresholds()
    return {
        "dataset": Param("retail", type="string", title="Dataset contract"),
        "monitor_date": Param(
            "",
            type="string",
            title="Monitoring day",
            description=f"{DATE_FORMAT}; empty: the day before the run's logical date",
        ),
        "window_days": Param(28, type="integer", minimum=1, maximum=366, title="Days scored"),
        "reference_days": Param(
            42,
            type="integer",
            minimum=7,
            maximum=3660,
            title="Drift reference days",
            description="centred on the same days a year earlier (the days before, when the "
            "history is shorter)",
        ),
        "min_value_added": Param(
            th.min_value_added,
            type=["null", "number"],
            title="Least forecast value added over seasonal naive (empty: not checked)",
        ),
        "max_wape": Param(th.max_wape, type=["null", "number"], title="Largest WAPE (empty: off)"),
        "min_coverage_80": Param(
            th.min_coverage_80, type=["null", "number"], title="Least 80% interval coverage"
        ),
        "psi_threshold": Param(th.psi, type="number", exclusiveMinimum=0, title="PSI for drift"),
        "max_drifted": Param(
            th.max_drifted, type="integer", minimum=0, title="Drifted pairs allowed"
        ),
        "retrain_on_alert": Param(
            False,
            type="boolean",
            title="Retrain on alert",
            description="trigger the daily DAG when a check fails",
        ),
    }


def _number(params: dict[str, Any], name: str, default: float | None) -> float | None:
    raw = params.get(name, default)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"param {name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"param {name}={raw!r} is not a finite number")
    return value


def _whole(params: dict[str, Any], name: str, default: int, low: int) -> int:
    raw = params.get(name, default)
    try:
        value = int(str(raw if raw not in (None, "") else default))
    except ValueError:
        raise DataError(f"param {name}={raw!r} is not a whole number") from None
    if value < low:
        raise DataError(f"param {name}={value} must be at least {low}")
    return value


def monitor_run(params: dict[str, Any], logical_date: datetime | None) -> MonitorRun:
    """The run's settings from its params; :class:`DataError` (no retry) names a bad one."""
    from sales_forecast.run_context import data_day

    day = data_day(params, "monitor_date", logical_date or datetime.now(UTC))
    d = Thresholds()
    psi = _number(params, "psi_threshold", d.psi)
    if psi is None or psi <= 0:
        raise DataError("param psi_threshold must be a number above 0")
    thresholds = Thresholds(
        min_value_added=_number(params, "min_value_added", d.min_value_added),
        max_wape=_number(params, "max_wape", d.max_wape),
        min_coverage_80=_number(params, "min_coverage_80", d.min_coverage_80),
        psi=psi,
        max_drifted=_whole(params, "max_drifted", d.max_drifted, 0),
    )
    return MonitorRun(
        monitor_date=day,
        dataset=str(params.get("dataset") or "retail").strip(),
        window_days=_whole(params, "window_days", 28, 1),
        reference_days=_whole(params, "reference_days", 42, 7),
        thresholds=thresholds,
        retrain_on_alert=bool(params.get("retrain_on_alert")),
    )


def monitor_args(
    run: MonitorRun,
    *,
    features_uri: str,
    forecasts_uri: str,
    contract_uri: str,
    accuracy_uri: str,
    drift_uri: str,
) -> list[str]:
    """``python -m trainer monitor`` arguments for ``run``."""
    return [
        "--data-uri", features_uri,
        "--forecasts-uri", forecasts_uri,
        "--contract", contract_uri,
        "--monitor-date", run.monitor_date.isoformat(),
        "--accuracy-uri", accuracy_uri,
        "--drift-uri", drift_uri,
        "--window-days", str(run.window_days),
        "--reference-days", str(run.reference_days),
        "--psi-threshold", str(run.thresholds.psi),
    ]  # fmt: skip


def accuracy_alerts(summary: dict[str, Any], th: Thresholds) -> list[str]:
    """Each model version's realised accuracy that crosses a threshold, in words."""
    out = []
    for version, m in sorted((summary.get("by_model") or {}).items()):
        if int(m.get("n_points") or 0) < th.min_points:
            continue
        added, wape, cov = m.get("value_added"), m.get("wape"), m.get("coverage_80")
        label = f"model {version} over {m['n_points']} realised days"
        naive = m.get("naive_wape")
        if th.min_value_added is not None and added is not None and added < th.min_value_added:
            out.append(
                f"{label}: forecast value added {added:.3f} over seasonal naive is below "
                f"{th.min_value_added} (WAPE {wape:.3f} vs naive {naive:.3f})"
            )
        if th.max_wape is not None and wape is not None and wape > th.max_wape:
            out.append(f"{label}: WAPE {wape:.3f} is above {th.max_wape}")
        if th.min_coverage_80 is not None and cov is not None and cov < th.min_coverage_80:
            out.append(
                f"{label}: the 80% interval held {cov:.1%} of the actuals "
                f"(< {th.min_coverage_80:.0%})"
            )
    return out


def drift_alerts(summary: dict[str, Any], th: Thresholds) -> list[str]:
    """The drifted (feature, series group) pairs, in words, when more than allowed."""
    drifted = list(summary.get("drifted") or [])
    if len(drifted) <= th.max_drifted:
        return []
    shown = ", ".join(
        f"{d['feature']} in {d['series_group']} (PSI {d['psi']:.2f})" for d in drifted[:8]
    )
    more = f" and {len(drifted) - 8} more" if len(drifted) > 8 else ""
    return [
        f"{len(drifted)} drifted (feature, group) pairs above PSI {th.psi} "
        f"(at most {th.max_drifted} allowed): {shown}{more}"
    ]
