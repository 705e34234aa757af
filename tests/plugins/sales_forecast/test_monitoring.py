"""The monitoring DAG's decisions: the day, the params, the trainer job and the alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sales_forecast.errors import DataError
from sales_forecast.monitoring import (
    Thresholds,
    accuracy_alerts,
    drift_alerts,
    monitor_args,
    monitor_run,
)

WHEN = datetime(2025, 4, 2, 6, tzinfo=UTC)


def test_the_day_is_the_day_before_the_logical_date_unless_given():
    assert monitor_run({}, WHEN).monitor_date == date(2025, 4, 1)
    assert monitor_run({"monitor_date": "2025-03-15"}, WHEN).monitor_date == date(2025, 3, 15)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"monitor_date": "20250315"}, "is not a YYYY-MM-DD date"),
        ({"psi_threshold": 0}, "psi_threshold must be a number above 0"),
        ({"max_wape": "lots"}, "max_wape='lots' is not a number"),
        ({"min_value_added": float("nan")}, "not a finite number"),
        ({"window_days": 0}, "window_days=0 must be at least 1"),
        ({"max_drifted": "x"}, "max_drifted='x' is not a whole number"),
    ],
)
def test_bad_params_are_clear_errors(params, message):
    with pytest.raises(DataError, match=message):
        monitor_run(params, WHEN)


def test_the_trainer_job_arguments():
    run = monitor_run({"window_days": 14, "reference_days": 90, "psi_threshold": 0.3}, WHEN)
    args = monitor_args(
        run, features_uri="f", forecasts_uri="p", contract_uri="c", accuracy_uri="a", drift_uri="d"
    )
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs == {
        "--data-uri": "f", "--forecasts-uri": "p", "--contract": "c",
        "--monitor-date": "2025-04-01", "--accuracy-uri": "a", "--drift-uri": "d",
        "--window-days": "14", "--reference-days": "90", "--psi-threshold": "0.3",
    }  # fmt: skip


def _summary(**model):
    base = {"n_points": 56, "wape": 0.30, "naive_wape": 0.40, "value_added": 0.25}
    return {"by_model": {"3": {**base, "coverage_80": 0.79, **model}}, "drifted": []}


def test_accuracy_alerts():
    t = Thresholds()
    assert accuracy_alerts(_summary(), t) == []
    (worse,) = accuracy_alerts(_summary(value_added=-0.1, wape=0.44), t)
    assert "model 3 over 56 realised days" in worse and "value added -0.100" in worse
    assert "naive 0.400" in worse
    assert accuracy_alerts(_summary(coverage_80=0.41), t) == [
        "model 3 over 56 realised days: the 80% interval held 41.0% of the actuals (< 60%)"
    ]
    assert accuracy_alerts(_summary(wape=0.5), Thresholds(max_wape=0.45))
    # Too few realised days to judge, or a check turned off: no alert.
    assert accuracy_alerts(_summary(n_points=10, value_added=-1.0), t) == []
    off = Thresholds(min_value_added=None, min_coverage_80=None)
    assert accuracy_alerts(_summary(value_added=-1.0, coverage_80=0.0), off) == []


def test_drift_alerts():
    drifted = [{"feature": "sales", "series_group": "S01", "psi": 0.41, "kind": "target"}]
    assert drift_alerts({"drifted": []}, Thresholds()) == []
    (alert,) = drift_alerts({"drifted": drifted}, Thresholds())
    assert (
        "1 drifted (feature, group) pairs above PSI 0.2" in alert
        and "sales in S01 (PSI 0.41)" in alert
    )
    assert drift_alerts({"drifted": drifted}, Thresholds(max_drifted=1)) == []
