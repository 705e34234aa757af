import numpy as np
import pandas as pd
import pytest

from trainer.baselines import (
    SEASONAL_NAIVE_VERSION,
    seasonal_naive,
    seasonal_naive_forecast,
    seasonal_naive_history_days,
)


def test_seasonal_naive_repeats_last_week():
    dates = pd.date_range("2024-01-01", periods=10)
    hist = pd.DataFrame({"unique_id": "a", "ds": dates, "y": np.arange(10.0)})
    out = seasonal_naive(hist, 9)
    # last week is days 3..9 -> forecasts 3,4,...,9 then 3,4 again
    np.testing.assert_allclose(out["y_hat"], [3, 4, 5, 6, 7, 8, 9, 3, 4])
    assert list(out["step"]) == list(range(1, 10))
    assert out["ds"].iloc[0] == pd.Timestamp("2024-01-11")


def test_short_series_fall_back_to_naive_and_every_series_is_forecast():
    hist = pd.DataFrame(
        {
            "unique_id": ["long"] * 8 + ["short"] * 3,
            "ds": list(pd.date_range("2024-01-01", periods=8))
            + list(pd.date_range("2024-01-06", periods=3)),
            "y": [1, 2, 3, 4, 5, 6, 7, 8] + [5, 6, 9],
        }
    )
    out = seasonal_naive(hist, 3)
    assert len(out) == 6
    short = out[out["unique_id"] == "short"]
    np.testing.assert_allclose(short["y_hat"], [9, 9, 9])
    long = out[out["unique_id"] == "long"]
    np.testing.assert_allclose(long["y_hat"], [2, 3, 4])


def _panel(values: dict[str, np.ndarray], end: str = "2024-06-30", **extra) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "series_id": sid,
                "date": pd.date_range(end=end, periods=len(y)),
                "sales": np.asarray(y, dtype=float),
            }
        )
        for sid, y in values.items()
    ]
    return pd.concat(frames, ignore_index=True).assign(**extra)


def test_forecast_is_seasonal_naive_with_the_quantiles_of_its_own_errors():
    rng = np.random.default_rng(3)
    y = rng.poisson(30, 120).astype(float)
    out = seasonal_naive_forecast(_panel({"a": y}), 10, (80,), target_col="sales")
    assert list(out.columns) == ["series_id", "date", "step", "forecast", "lower_80", "upper_80"]
    np.testing.assert_allclose(out["forecast"], np.r_[y[-7:], y[-7:-4]])
    assert out["date"].iloc[0] == pd.Timestamp("2024-07-01") and list(out["step"]) == [
        *range(1, 11)
    ]
    window = slice(len(y) - 56, len(y))
    for step, lag in ((1, 7), (8, 14)):
        errors = (y - np.r_[np.full(lag, np.nan), y[:-lag]])[window]
        row = out.iloc[step - 1]
        upper_q = 0.9 * 57 / 56  # the finite-sample correction for 56 errors
        lo, hi = np.quantile(errors, [1 - upper_q, upper_q])
        assert row["lower_80"] == pytest.approx(max(min(row["forecast"] + lo, row["forecast"]), 0))
        assert row["upper_80"] == pytest.approx(max(row["forecast"] + hi, row["forecast"]))


def test_intervals_hold_the_forecast_and_never_go_below_zero():
    rng = np.random.default_rng(4)
    panel = _panel(
        {
            "trend": np.arange(60.0) * 3,  # every error positive: lower would exceed the point
            "sparse": (rng.random(90) < 0.1).astype(float),
            "zero": np.zeros(30),
        }
    )
    out = seasonal_naive_forecast(panel, 21, target_col="sales")
    assert len(out) == 3 * 21
    for lv in (80, 95):
        assert (out[f"lower_{lv}"] >= 0).all()
        assert (out[f"lower_{lv}"] <= out["forecast"]).all()
        assert (out["forecast"] <= out[f"upper_{lv}"]).all()
    assert (out.loc[out["series_id"] == "zero", ["forecast", "upper_95"]] == 0).all().all()
    trend = out[out["series_id"] == "trend"]
    assert (trend["lower_95"] == trend["forecast"]).all() and (trend["upper_95"] > 0).all()


def test_short_series_repeat_their_mean_with_an_interval_from_their_spread():
    panel = _panel({"young": np.array([4.0, 8.0, 6.0, 10.0]), "one": np.array([5.0])})
    out = seasonal_naive_forecast(panel, 9, (80,), target_col="sales").set_index("series_id")
    young = out.loc["young"]
    np.testing.assert_allclose(young["forecast"], 7.0)
    lo, hi = np.quantile([4.0, 8.0, 6.0, 10.0], [1 - 0.9 * 57 / 56, 0.9 * 57 / 56])
    np.testing.assert_allclose(young["lower_80"], lo)
    np.testing.assert_allclose(young["upper_80"], hi)
    one = out.loc[["one"]]
    assert (one["forecast"] == 5.0).all() and (one["lower_80"] == one["upper_80"]).all()


def test_a_series_too_short_for_a_far_lag_uses_its_longest_lag():
    rng = np.random.default_rng(5)
    y = rng.normal(50, 5, 12)  # week-over-week errors exist, two-week ones do not
    out = seasonal_naive_forecast(_panel({"a": y}), 14, (80,), target_col="sales")
    width = (out["upper_80"] - out["lower_80"]).to_numpy()
    assert np.isfinite(width).all()
    np.testing.assert_allclose(width[7:], width[:7])  # same errors, same point pattern


def test_unknown_days_are_no_actuals_for_the_errors():
    rng = np.random.default_rng(6)
    y = rng.normal(50, 2, 70)
    flagged = np.zeros(70, dtype=bool)
    flagged[[20, 40]] = True
    spiked = y.copy()
    spiked[flagged] = 5000.0  # an unknown day's filled value, not a sale
    panel = _panel({"a": spiked}, is_unknown=flagged)
    out = seasonal_naive_forecast(panel, 7, (95,), target_col="sales")
    assert (out["upper_95"] < 100).all()
    plain = seasonal_naive_forecast(panel.drop(columns="is_unknown"), 7, (95,), target_col="sales")
    assert (plain["upper_95"] > 1000).any()


def test_empirical_interval_coverage_is_about_the_level():
    """Stationary series: the coverage of the actual next weeks is close to each level."""
    rng = np.random.default_rng(7)
    n_series, n_hist, horizon = 300, 84, 14
    values = rng.normal(100, 10, (n_series, n_hist + horizon)).clip(0)
    panel = _panel({f"s{i}": values[i, :n_hist] for i in range(n_series)})
    out = seasonal_naive_forecast(panel, horizon, (80, 95), target_col="sales")
    # Rows come sorted by series id as text (s0, s1, s10, ...).
    order = np.argsort([f"s{i}" for i in range(n_series)], kind="stable")
    actual = values[order, n_hist:].ravel()
    for lv, tolerance in ((80, 0.04), (95, 0.025)):
        inside = (actual >= out[f"lower_{lv}"]) & (actual <= out[f"upper_{lv}"])
        assert inside.mean() == pytest.approx(lv / 100, abs=tolerance)


def test_history_days_cover_the_error_window_and_the_longest_lag():
    assert seasonal_naive_history_days(7) == 63
    assert seasonal_naive_history_days(28) == 84
    assert seasonal_naive_history_days(29) == 91
    assert SEASONAL_NAIVE_VERSION == "seasonal_naive"
