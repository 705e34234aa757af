"""A small seeded warehouse and registry, with answers known by construction.

Three retail series over ten days (2025-01-01 .. 2025-01-10):
``S01|I001`` sells d (the day of the month), ``S01|I002`` sells 2d except on the 5th, which is
an unknown day, ``S02|I001`` sells 10 every day. Two forecast runs: ``r1`` (older) and ``r2``
(latest), forecasts 5 with 80 % band [4, 6] and 95 % band [3, 7] for 2025-01-11 .. 2025-01-13;
S02's forecasts in ``r2`` come from model version 2, the others from 1.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

SERIES = ["S01|I001", "S01|I002", "S02|I001"]
DAYS = [date(2025, 1, 1) + timedelta(days=i) for i in range(10)]
UNKNOWN = ("S01|I002", date(2025, 1, 5))


def sales(series_id: str, day: date) -> float:
    return {"S01|I001": day.day, "S01|I002": 2 * day.day, "S02|I001": 10}[series_id]


def create_features(con, ds: str) -> None:
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{ds}"')
    con.execute(
        f'CREATE TABLE "{ds}".daily_sales_features (series_id VARCHAR, store_id VARCHAR, '
        "item_id VARCHAR, date DATE, sales DOUBLE, price DOUBLE, is_gap_filled BOOLEAN, "
        "is_unknown BOOLEAN)"
    )
    for s in SERIES:
        store, item = s.split("|")
        for d in DAYS:
            unknown = (s, d) == UNKNOWN
            con.execute(
                f'INSERT INTO "{ds}".daily_sales_features VALUES (?, ?, ?, ?, ?, 1.0, false, ?)',
                [s, store, item, d, 0.0 if unknown else sales(s, d), unknown],
            )


def create_forecasts(con, ds: str) -> None:
    con.execute(
        f'CREATE TABLE "{ds}".daily_sales_forecasts (run_id VARCHAR, model_version VARCHAR, '
        "cutoff_date DATE, series_id VARCHAR, store_id VARCHAR, item_id VARCHAR, date DATE, "
        "forecast DOUBLE, lower_80 DOUBLE, upper_80 DOUBLE, lower_95 DOUBLE, upper_95 DOUBLE, "
        "created_at TIMESTAMP)"
    )
    runs = [
        ("r1", date(2025, 1, 9), datetime(2025, 1, 10, 6)),
        ("r2", date(2025, 1, 10), datetime(2025, 1, 11, 6)),
    ]
    for run_id, cutoff, created in runs:
        for s in SERIES:
            store, item = s.split("|")
            version = "2" if run_id == "r2" and s.startswith("S02") else "1"
            value = 5.0 if run_id == "r2" else 1.0
            for h in range(1, 4):
                con.execute(
                    f'INSERT INTO "{ds}".daily_sales_forecasts VALUES '
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        run_id,
                        version,
                        cutoff,
                        s,
                        store,
                        item,
                        cutoff + timedelta(days=h),
                        value,
                        value - 1,
                        value + 1,
                        value - 2,
                        value + 2,
                        created,
                    ],
                )


def create_monitoring(con, ds: str) -> None:
    con.execute(
        f'CREATE TABLE "{ds}".forecast_accuracy (monitor_date DATE, model_version VARCHAR, '
        "series_group VARCHAR, horizon_day BIGINT, n_points BIGINT, wape DOUBLE, mase DOUBLE, "
        "bias DOUBLE, coverage_80 DOUBLE, coverage_95 DOUBLE, naive_wape DOUBLE, "
        "value_added DOUBLE, window_start DATE, window_end DATE, computed_at TIMESTAMP)"
    )
    for i, monitor in enumerate([date(2025, 1, 11), date(2025, 1, 12)]):
        for group in ["total", "S01", "S02"]:
            for h in range(0, 3):
                wape = 0.2 + 0.1 * i + 0.01 * h
                mase = float("nan") if group == "S02" else 0.8
                con.execute(
                    f'INSERT INTO "{ds}".forecast_accuracy VALUES '
                    "(?, '1', ?, ?, 3, ?, ?, 0.05, 0.8, 0.95, 0.4, ?, ?, ?, ?)",
                    [
                        monitor,
                        group,
                        h,
                        wape,
                        mase,
                        1 - wape / 0.4,
                        monitor - timedelta(days=7),
                        monitor,
                        datetime(2025, 1, 12, 7),
                    ],
                )
    con.execute(
        f'CREATE TABLE "{ds}".drift_report (monitor_date DATE, kind VARCHAR, feature VARCHAR, '
        "series_group VARCHAR, psi DOUBLE, threshold DOUBLE, drifted BOOLEAN, "
        "reference_start DATE, reference_end DATE, recent_start DATE, recent_end DATE, "
        "computed_at TIMESTAMP)"
    )
    rows = [
        (date(2025, 1, 11), "target", "sales", "total", 0.05),
        (date(2025, 1, 12), "target", "sales", "total", 0.05),
        (date(2025, 1, 12), "feature", "price", "S01", 0.31),
        (date(2025, 1, 12), "feature", "temperature", "total", 0.12),
    ]
    for monitor, kind, feature, group, psi in rows:
        con.execute(
            f'INSERT INTO "{ds}".drift_report VALUES (?, ?, ?, ?, ?, 0.2, ?, '
            "'2024-10-01', '2024-12-31', '2025-01-01', '2025-01-10', now())",
            [monitor, kind, feature, group, psi, psi > 0.2],
        )


def register_models(settings, name: str = "sales_forecast") -> None:
    from sales_forecast.platforms.local import LocalModelRegistry

    registry = LocalModelRegistry(settings.models_root, name)
    for n, wape in [(1, 0.31), (2, 0.29)]:
        src = settings.data_root / f"model{n}"
        src.mkdir(parents=True)
        (src / "model.txt").write_text(f"model {n}")
        registry.register(
            str(src),
            run_id=f"r{n}",
            metrics={
                "overall": {"wape": wape, "mase": 0.9, "bias": 0.01, "n": 30},
                "baseline": {"overall": {"wape": 0.5}},
                "definitions": "text is left out",
            },
            extra={},
        )
    registry.set_alias("production", "1")


@pytest.fixture
def warehouse(settings) -> Path:
    """The seeded warehouse with forecasts but no monitoring tables yet."""
    path = settings.warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        create_features(con, "sales_forecast")
        create_forecasts(con, "sales_forecast")
    register_models(settings)
    return path


@pytest.fixture
def monitored(warehouse) -> Path:
    """The seeded warehouse after a monitoring run."""
    with duckdb.connect(str(warehouse)) as con:
        create_monitoring(con, "sales_forecast")
    return warehouse
