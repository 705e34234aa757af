import numpy as np
import pandas as pd
import pytest

from trainer.columns import ID, TIME
from trainer.scaling import SeasonalScaler


def test_seasonal_scaler_round_trip_and_weekday_profile():
    days = pd.date_range("2024-01-01", periods=70, freq="D")
    weekly = np.where(days.dayofweek >= 5, 20.0, 10.0)
    df = pd.DataFrame(
        {
            ID: np.repeat(["a", "b"], 70),
            TIME: np.tile(days, 2),
            "y": np.concatenate([weekly, weekly * 0]),
        }
    )
    scaler = SeasonalScaler(window=364, log=True, kappa=1.0)
    scaler.set_column_names(ID, TIME, "y")
    scaled = scaler.fit_transform(df)
    # Series a: level x weekday profile explains it exactly, so every scaled day is log1p(1).
    a = scaled[scaled[ID] == "a"]["y"].to_numpy()
    np.testing.assert_allclose(a, np.log1p(1.0), rtol=1e-6)
    back = scaler.inverse_transform(scaled.rename(columns={"y": "m"})[[ID, TIME, "m"]])
    np.testing.assert_allclose(back["m"].to_numpy(), df["y"].to_numpy(), atol=1e-9)
    # An all-zero series keeps the floor (no division by zero).
    assert scaler.level_[list(scaler.ids_).index("b")] == 1.0


def _growing(days: int, yearly_growth: float) -> pd.DataFrame:
    dates = pd.date_range("2022-01-03", periods=days, freq="D")
    weekly = np.where(dates.dayofweek >= 5, 1.5, 1.0)
    level = 100.0 * (1 + yearly_growth) ** (np.arange(days) / 364.0)
    return pd.DataFrame({ID: "a", TIME: dates, "y": level * weekly})


def test_level_trend_follows_year_over_year_growth():
    df = _growing(3 * 364, 0.2)
    flat = SeasonalScaler(window=364).prefit(df, id_col=ID, time_col=TIME, target_col="y")
    trend = SeasonalScaler(window=364, trend=True)
    trend.prefit(df, id_col=ID, time_col=TIME, target_col="y")
    assert trend.growth_[0] * 364 == pytest.approx(np.log(1.2), rel=1e-3)
    last_year = df.iloc[-364:]
    ratio = last_year["y"].to_numpy() / trend.scale(last_year[ID], last_year[TIME])
    # The trend-following level explains the growth; the flat one leaves +-9% of it.
    np.testing.assert_allclose(ratio, 1.0, rtol=0.01)
    flat_ratio = last_year["y"].to_numpy() / flat.scale(last_year[ID], last_year[TIME])
    assert flat_ratio.max() / flat_ratio.min() > 1.15
    # Forecast days continue the trend.
    ahead = pd.date_range(df[TIME].max() + pd.Timedelta(days=1), periods=28)
    assert trend.scale(["a"] * 28, ahead)[-1] > trend.scale(["a"], [df[TIME].max()])[0]


def test_level_trend_needs_two_full_years_and_old_pickles_keep_a_flat_level():
    one_year = _growing(400, 0.5)
    scaler = SeasonalScaler(window=364, trend=True)
    scaler.prefit(one_year, id_col=ID, time_col=TIME, target_col="y")
    assert scaler.growth_[0] == 0.0  # a year and a bit cannot tell a trend from a season
    two_years = SeasonalScaler(window=364, trend=True)
    two_years.prefit(_growing(2 * 364, 0.2), id_col=ID, time_col=TIME, target_col="y")
    before = two_years.scale(["a"], [pd.Timestamp("2022-06-01")])
    del two_years.growth_, two_years.anchor_  # as unpickled from a model saved before trends
    assert two_years.scale(["a"], [pd.Timestamp("2022-06-01")])[0] != before[0]
    assert two_years.scale(["a"], [pd.Timestamp("2022-06-01")])[0] > 0
