"""Forecast columns (weather): observed in history, a given forecast or their climatology on
forecast days, never a NaN feature; and no look-ahead through them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sf_contract import Contract
from trainer.climatology import (
    PROFILE_DAYS,
    RECENT_DAYS,
    climatology_fill,
    day_of_year_profile,
    recent_means,
)
from trainer.config import LGBMParams, TrainerConfig
from trainer.metrics import wape
from trainer.model import Forecaster

WEATHER_CONTRACT = Contract.from_dict(
    {
        "name": "bikes",
        "date_column": "date",
        "target": "rentals",
        "series_keys": ["station"],
        "columns": [
            {"name": "date", "type": "DATE", "role": "date"},
            {"name": "station", "type": "STRING", "role": "key"},
            {"name": "rentals", "type": "FLOAT64", "role": "target"},
            {"name": "temp", "type": "FLOAT64", "role": "forecast"},
            {"name": "wind", "type": "FLOAT64", "role": "observed"},
        ],
    }
)


def seasonal_temp(dates: pd.DatetimeIndex) -> np.ndarray:
    return 12 + 10 * np.sin(2 * np.pi * (dates.dayofyear.to_numpy() - 110) / 365.25)


def weather_panel(days: int = 800, seed: int = 0) -> pd.DataFrame:
    """Two stations whose rentals follow the day's temperature (season + daily weather)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-01", periods=days, freq="D")
    temp = seasonal_temp(dates) + rng.normal(0, 4, days)  # the same weather at both stations
    frames = []
    for station, scale in (("A", 1.0), ("B", 2.0)):
        rentals = scale * np.clip(20 + 3 * temp + rng.normal(0, 2, days), 0, None)
        frames.append(
            pd.DataFrame(
                {"series_id": station, "station": station, "date": dates,
                 "rentals": rentals.round(), "temp": temp + (station == "B"),
                 "wind": rng.random(days), "is_gap_filled": False}
            )
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_the_contract_role_and_its_default_fill():
    col = WEATHER_CONTRACT.column("temp")
    assert col.role == "forecast" and col.future_fill == "climatology"
    assert [c.name for c in WEATHER_CONTRACT.future_columns] == ["temp"]
    assert WEATHER_CONTRACT.observed_columns[0].name == "wind"


def test_a_profile_needs_a_year_and_follows_the_season():
    dates = pd.Series(pd.date_range("2021-01-01", periods=3 * 365, freq="D"))
    values = pd.Series(seasonal_temp(pd.DatetimeIndex(dates)))
    assert day_of_year_profile(dates[:300], values[:300]) == ()
    profile = np.asarray(day_of_year_profile(dates, values))
    assert len(profile) == PROFILE_DAYS
    truth = seasonal_temp(pd.date_range("2021-01-01", periods=PROFILE_DAYS, freq="D"))
    # Smoothing over two weeks costs at most a fraction of a degree on a 10-degree swing.
    assert np.abs(profile - truth).max() < 0.5


def test_the_fill_is_the_recent_mean_moved_by_the_season():
    profile = tuple(float(d) for d in range(PROFILE_DAYS))  # one degree warmer every day
    last = pd.Series([pd.Timestamp("2024-03-31")] * 3)
    days = pd.Series(pd.to_datetime(["2024-04-10", "2024-04-10", "2024-04-10"]))
    recent = pd.Series([15.0, np.nan, 15.0])
    out = climatology_fill(profile, recent, last, days, fallback=9.0).astype(float).to_numpy()
    # The recent window's usual value is the profile's mean over the last 28 days (13.5
    # days before the end on average): the forecast day is 10 + 13.5 days later in the year.
    assert out[0] == pytest.approx(15.0 + 10 + (RECENT_DAYS - 1) / 2)
    assert out[1] == pytest.approx(9.0 + 10 + (RECENT_DAYS - 1) / 2)  # no value: the mean
    flat = climatology_fill((), recent, last, days, fallback=9.0).astype(float).to_numpy()
    assert flat.tolist() == [15.0, 9.0, 15.0]


def test_recent_means_are_per_series():
    panel = weather_panel(days=60)
    means = recent_means(panel, "date", "temp")
    last = panel[panel["date"] > panel["date"].max() - pd.Timedelta(days=RECENT_DAYS)]
    assert means["A"] == pytest.approx(last[last["station"] == "A"]["temp"].mean())


@pytest.fixture(scope="module")
def fitted_weather():
    panel = weather_panel()
    cutoff = panel["date"].max() - pd.Timedelta(days=14)
    config = TrainerConfig(
        horizon=14,
        params=LGBMParams(n_estimators=120, num_leaves=15, min_child_samples=10),
        num_threads=1,
    )
    fc = Forecaster.fit(panel[panel["date"] <= cutoff], WEATHER_CONTRACT, config)
    return panel, cutoff, fc


def _score(panel, cutoff, frame):
    truth = panel[panel["date"] > cutoff][["series_id", "date", "rentals"]]
    joined = frame.merge(truth, on=["series_id", "date"])
    return wape(joined["rentals"].to_numpy(), joined["forecast"].to_numpy())


def test_a_given_weather_forecast_is_used_and_beats_the_climatology(fitted_weather):
    panel, cutoff, fc = fitted_weather
    assert "temp" in fc.spec.dynamic_names
    assert "wind" not in fc.spec.dynamic_names  # observed only: never a forecast-day input
    actual = panel[panel["date"] > cutoff][["station", "date", "temp"]]
    given = fc.forecast(14, future_df=actual, levels=[])
    assert given.filled_values == {"temp": 0}
    clim = fc.forecast(14, levels=[])
    assert clim.filled_values == {"temp": 2 * 14} and clim.future_cells == 2 * 14
    assert clim.frame["forecast"].notna().all()
    good, usual = _score(panel, cutoff, given.frame), _score(panel, cutoff, clim.frame)
    assert good < 0.8 * usual, (good, usual)


def test_observed_weather_after_the_cutoff_changes_nothing_unless_given(fitted_weather):
    panel, cutoff, fc = fitted_weather
    later = panel[panel["date"] > cutoff]
    # Days after the cut-off, with their weather scrambled, given as history of the other
    # columns only: the forecast does not move. Given as a forecast, it does.
    base = fc.predict(14, levels=[])
    no_temp = later[["station", "date"]]
    pd.testing.assert_frame_equal(base, fc.predict(14, future_df=no_temp, levels=[]))
    hot = later[["station", "date"]].assign(temp=later["temp"] + 15)
    moved = fc.predict(14, future_df=hot, levels=[])
    assert (moved["forecast"] > base["forecast"]).mean() > 0.9


def test_a_partly_given_forecast_fills_only_the_missing_days(fitted_weather):
    panel, cutoff, fc = fitted_weather
    later = panel[panel["date"] > cutoff]
    first_week = later[later["date"] <= cutoff + pd.Timedelta(days=7)][["station", "date", "temp"]]
    res = fc.forecast(14, future_df=first_week, levels=[])
    assert res.filled_values == {"temp": 2 * 7}
    assert res.frame["forecast"].notna().all()


def test_the_model_keeps_the_profile(fitted_weather, tmp_path):
    _, _, fc = fitted_weather
    (col,) = [c for c in fc.spec.dynamic if c.source == "temp"]
    assert col.fill == "climatology" and len(col.profile) == PROFILE_DAYS
    fc.save(str(tmp_path / "m"))
    again = Forecaster.load(str(tmp_path / "m"))
    pd.testing.assert_frame_equal(fc.predict(14, levels=[]), again.predict(14, levels=[]))
