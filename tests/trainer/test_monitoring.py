"""Realised accuracy and drift on panels with known answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sf_contract import Contract
from trainer.monitoring import (
    ACCURACY_COLUMNS,
    DRIFT_COLUMNS,
    TOTAL,
    drift_report,
    population_stability_index,
    realised_accuracy,
)
from trainer.panel import prepare_panel

CONTRACT = Contract.from_dict(
    {
        "name": "shop",
        "date_column": "date",
        "target": "sales",
        "series_keys": ["store", "item"],
        "columns": [
            {"name": "date", "type": "DATE", "role": "date"},
            {"name": "store", "type": "STRING", "role": "key"},
            {"name": "item", "type": "STRING", "role": "key"},
            {"name": "sales", "type": "FLOAT64", "role": "target"},
            {"name": "price", "type": "FLOAT64", "role": "known"},
            {"name": "open", "type": "BOOL", "role": "availability"},
        ],
    }
)
END = pd.Timestamp("2024-03-31")
MONITOR = dt.date(2024, 4, 1)


def linear_panel(days: int = 90) -> pd.DataFrame:
    """Two stores' series whose sales grow by 1 a day: seasonal naive is off by 7 x weeks."""
    dates = pd.date_range(end=END, periods=days, freq="D")
    frames = []
    for store, base in (("A", 100.0), ("B", 300.0)):
        frames.append(
            pd.DataFrame(
                {
                    "store": store,
                    "item": "x",
                    "date": dates,
                    "sales": base + np.arange(days, dtype=float),
                    "price": 2.0,
                    "open": True,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def forecasts_from(panel: pd.DataFrame, cutoff: pd.Timestamp, horizon: int, error: float):
    """Forecasts made at ``cutoff``: the actual plus ``error``, interval actual +- 1 on even
    days and strictly above it on odd ones (so coverage is one half)."""
    rows = panel[(panel["date"] > cutoff) & (panel["date"] <= cutoff + pd.Timedelta(days=horizon))]
    y = rows["sales"].to_numpy()
    odd = (rows["date"].dt.day.to_numpy() % 2).astype(bool)
    lo = np.where(odd, y + 5, y - 1)
    return pd.DataFrame(
        {
            "model_version": "3",
            "cutoff_date": cutoff,
            "series_id": (rows["store"] + "|" + rows["item"]).to_numpy(),
            "date": rows["date"].to_numpy(),
            "forecast": y + error,
            "lower_80": lo,
            "upper_80": lo + 2 + 4 * odd,
            "lower_95": lo,
            "upper_95": lo + 2 + 4 * odd,
        }
    )


def test_realised_accuracy_against_known_answers():
    raw = linear_panel()
    panel = prepare_panel(raw, CONTRACT)
    cutoff = END - pd.Timedelta(days=7)
    fc = forecasts_from(raw, cutoff, 7, error=1.0)
    got = realised_accuracy(panel, fc, CONTRACT, MONITOR, window_days=7)
    assert list(got.columns) == list(ACCURACY_COLUMNS)
    total = got[(got["series_group"] == TOTAL) & (got["horizon_day"] == 0)].iloc[0]
    actuals = raw[raw["date"] > cutoff]["sales"]
    assert total["n_points"] == 14
    assert total["wape"] == pytest.approx(14 / actuals.sum())
    assert total["bias"] == pytest.approx(14 / actuals.sum())
    # Seasonal naive repeats last week: 7 below the actual on every day of a linear series.
    assert total["naive_wape"] == pytest.approx(7 * 14 / actuals.sum())
    assert total["value_added"] == pytest.approx(1 - 1 / 7)
    # In-sample seasonal-naive MAE is 7: an error of 1 is a MASE of 1/7.
    assert total["mase"] == pytest.approx(1 / 7)
    assert (
        total["coverage_80"] == pytest.approx((fc["date"].dt.day % 2 == 0).mean())
        and total["coverage_95"] == total["coverage_80"]
    )
    # One row per horizon day (1..7) and per store, beside the totals.
    day3 = got[(got["series_group"] == "B") & (got["horizon_day"] == 3)].iloc[0]
    assert day3["n_points"] == 1 and day3["wape"] == pytest.approx(1 / (300 + 89 - 4))
    assert set(got["series_group"]) == {TOTAL, "A", "B"}
    assert set(got["horizon_day"]) == set(range(8))
    assert (got["monitor_date"] == pd.Timestamp(MONITOR)).all()


def test_closed_days_and_days_without_actuals_are_not_scored():
    raw = linear_panel()
    closed = (raw["store"] == "A") & (raw["date"] == END - pd.Timedelta(days=2))
    raw.loc[closed, ["sales", "open"]] = [0.0, False]
    panel = prepare_panel(raw, CONTRACT)
    cutoff = END - pd.Timedelta(days=7)
    fc = forecasts_from(linear_panel(), cutoff, 10, error=0.0)  # 3 days past the actuals
    got = realised_accuracy(panel, fc, CONTRACT, MONITOR, window_days=7)
    total = got[(got["series_group"] == TOTAL) & (got["horizon_day"] == 0)].iloc[0]
    assert total["n_points"] == 13  # 2 x 7 days with actuals, minus the closed one
    assert total["wape"] == 0.0  # the closed day's 0 would have been an error of ~170


def test_no_forecast_with_an_actual_yet_is_an_empty_table():
    raw = linear_panel()
    panel = prepare_panel(raw, CONTRACT)
    fc = forecasts_from(raw, END, 7, error=0.0)
    got = realised_accuracy(panel, fc, CONTRACT, MONITOR)
    assert got.empty and list(got.columns) == list(ACCURACY_COLUMNS)


def test_psi_known_answers():
    rng = np.random.default_rng(0)
    same = rng.normal(size=20_000)
    assert population_stability_index(same[:10_000], same[10_000:]) < 0.01
    ref = np.arange(1000, dtype=float)  # ten equal bins
    # Every recent value in the top bin: 0.9 of ten bins at the floor, one at 1.0.
    top = np.full(200, 999.0)
    q, floor = 0.1, 1e-4
    expected = 9 * (floor - q) * np.log(floor / q) + (1 - q) * np.log(1 / q)
    assert population_stability_index(ref, top) == pytest.approx(expected, rel=1e-3)
    assert np.isnan(population_stability_index(ref, np.array([np.nan])))
    # 28 recent values get two bins, not ten: noise alone stays well under 0.2.
    noise = [
        population_stability_index(rng.normal(size=120), rng.normal(size=28)) for _ in range(200)
    ]
    assert np.mean(noise) < 0.1 and np.mean(np.array(noise) > 0.2) < 0.05


def test_drift_flags_a_shifted_level_per_group_and_in_total():
    raw = linear_panel(days=200)
    rng = np.random.default_rng(1)
    raw["sales"] = rng.normal(100, 5, len(raw))
    shift = (raw["store"] == "B") & (raw["date"] > END - pd.Timedelta(days=28))
    raw.loc[shift, "sales"] += 40
    panel = prepare_panel(raw, CONTRACT)
    got = drift_report(panel, CONTRACT, MONITOR, recent_days=28, reference_days=120)
    assert list(got.columns) == list(DRIFT_COLUMNS)
    target = got[got["kind"] == "target"].set_index("series_group")
    assert target.loc["B", "drifted"] and target.loc[TOTAL, "drifted"]
    assert not target.loc["A", "drifted"] and target.loc["A", "psi"] < 0.1
    price = got[got["feature"] == "price"]
    assert len(price) == 3 and not price["drifted"].any()  # a constant price never drifts
    assert got["recent_end"].iloc[0] == END
    assert got["reference_end"].iloc[0] == END - pd.Timedelta(days=28)


def test_a_seasonal_series_is_compared_with_the_same_time_last_year():
    days = 3 * 365
    raw = linear_panel(days=days)
    doy = raw["date"].dt.dayofyear.to_numpy()
    rng = np.random.default_rng(2)
    raw["sales"] = 100 + 40 * np.sin(2 * np.pi * doy / 365.25) + rng.normal(0, 3, len(raw))
    panel = prepare_panel(raw, CONTRACT)
    got = drift_report(panel, CONTRACT, MONITOR, recent_days=28, reference_days=42)
    total = got[(got["kind"] == "target") & (got["series_group"] == TOTAL)].iloc[0]
    assert total["reference_end"] < END - pd.Timedelta(days=300)  # a year back
    assert not total["drifted"], total["psi"]
    # Against the 84 days right before (what a short history gets), the season reads as drift.
    short = prepare_panel(raw[raw["date"] > END - pd.Timedelta(days=200)], CONTRACT)
    before = drift_report(short, CONTRACT, MONITOR, recent_days=28, reference_days=84)
    row = before[(before["kind"] == "target") & (before["series_group"] == TOTAL)].iloc[0]
    assert row["reference_end"] == END - pd.Timedelta(days=28) and row["drifted"]
