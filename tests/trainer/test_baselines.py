import numpy as np
import pandas as pd

from trainer.baselines import seasonal_naive


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
