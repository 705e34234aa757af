"""``python -m trainer monitor``: the realised accuracy and drift tables of one monitoring day.

Reads the clean panel and the stored forecasts (any table URI: ``duckdb://``, ``bq://``, files),
writes ``forecast_accuracy`` and ``drift_report`` rows for ``monitor_date`` (re-running the day
replaces that day's rows), and returns a summary with the figures the thresholds read.
"""

from __future__ import annotations

__all__ = ["run_monitor"]

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd

from sf_contract import Contract
from trainer.inputs import load_panel
from trainer.io.tables import read_table, write_table
from trainer.monitoring import TOTAL, drift_report, realised_accuracy

log = logging.getLogger(__name__)

_FORECAST_COLUMNS = (
    "model_version",
    "cutoff_date",
    "series_id",
    "date",
    "forecast",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
)


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def run_monitor(
    *,
    data_uri: str,
    forecasts_uri: str,
    contract: Contract,
    monitor_date: dt.date,
    accuracy_uri: str,
    drift_uri: str,
    window_days: int = 28,
    reference_days: int = 42,
    psi_threshold: float = 0.2,
) -> dict[str, Any]:
    """Compute and store one day's monitoring tables; the summary the Airflow side checks.

    The panel is read up to ``monitor_date``; the forecasts of the last ``window_days`` days of
    actuals are scored, and drift compares those days with ``reference_days`` days around the
    same time a year earlier (:func:`trainer.monitoring.drift_report`).
    """
    # Far enough back for the reference window a year earlier, and the MASE scale before it.
    since = monitor_date - dt.timedelta(days=364 + window_days + reference_days + 56)
    panel = load_panel(data_uri, contract, monitor_date, since=since)
    forecasts = read_table(forecasts_uri, columns=_FORECAST_COLUMNS)
    accuracy = realised_accuracy(panel, forecasts, contract, monitor_date, window_days=window_days)
    drift = drift_report(
        panel,
        contract,
        monitor_date,
        recent_days=window_days,
        reference_days=reference_days,
        threshold=psi_threshold,
    )
    stamp = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    day = {"monitor_date": monitor_date}
    dates = ["monitor_date", "window_start", "window_end"]
    if len(accuracy):
        write_table(
            accuracy.assign(computed_at=stamp), accuracy_uri, replace_where=day, date_columns=dates
        )
    drift_dates = ["monitor_date", "reference_start", "reference_end", "recent_start", "recent_end"]
    write_table(
        drift.assign(computed_at=stamp), drift_uri, replace_where=day, date_columns=drift_dates
    )
    totals = accuracy[(accuracy["series_group"] == TOTAL) & (accuracy["horizon_day"] == 0)]
    drifted = drift[drift["drifted"]]
    summary: dict[str, Any] = {
        "monitor_date": monitor_date.isoformat(),
        "accuracy_rows": len(accuracy),
        "drift_rows": len(drift),
        "scored_points": int(totals["n_points"].sum()) if len(totals) else 0,
        "by_model": {
            str(r.model_version): {
                "wape": _finite(r.wape),
                "naive_wape": _finite(r.naive_wape),
                "value_added": _finite(r.value_added),
                "coverage_80": _finite(r.coverage_80),
                "coverage_95": _finite(r.coverage_95),
                "n_points": int(r.n_points),
            }
            for r in totals.itertuples()
        },
        "drifted": [
            {"kind": r.kind, "feature": r.feature, "series_group": r.series_group, "psi": r.psi}
            for r in drifted.itertuples()
        ],
    }
    log.info(
        "monitoring %s: %d forecast points scored, %d drift checks (%d above PSI %.2f)",
        monitor_date,
        summary["scored_points"],
        len(drift),
        len(drifted),
        psi_threshold,
    )
    return summary
