import numpy as np
import pandas as pd
import pytest

from trainer.metrics import bias, bucket_names, mae, mase, rmse, seasonal_scale, summarize, wape

Y = np.array([10.0, 0.0, 5.0, 5.0])
F = np.array([8.0, 1.0, 5.0, 9.0])  # errors: -2, +1, 0, +4


def test_metrics_on_hand_computed_values():
    assert mae(Y, F) == pytest.approx(7 / 4)
    assert rmse(Y, F) == pytest.approx(np.sqrt((4 + 1 + 0 + 16) / 4))
    assert wape(Y, F) == pytest.approx(7 / 20)
    assert bias(Y, F) == pytest.approx(3 / 20)
    assert mase(Y, F, 2.0) == pytest.approx(7 / 4 / 2)
    assert mase(Y, F, [1.0, 1.0, 2.0, 3.0]) == pytest.approx(7 / 7)


def test_zero_actuals_give_nan_not_inf():
    assert np.isnan(wape([0, 0], [1, 2]))
    assert np.isnan(bias([0, 0], [1, 2]))
    assert np.isnan(mase([0, 0], [1, 1], 0.0))


def test_seasonal_scale_is_pooled_over_series():
    df = pd.DataFrame(
        {
            "unique_id": ["a"] * 9 + ["b"] * 8,
            "ds": list(pd.date_range("2024-01-01", periods=9))
            + list(pd.date_range("2024-01-01", periods=8)),
            "y": [1, 2, 3, 4, 5, 6, 7, 3, 5] + [0] * 7 + [4],
        }
    )
    # a: |3-1|, |5-2|; b: |4-0|  -> (2 + 3 + 4) / 3
    assert seasonal_scale(df) == pytest.approx(3.0)


def test_summarize_buckets():
    assert [b for b, _ in bucket_names(28)] == ["day_1", "days_1_7", "days_1_28"]
    assert [b for b, _ in bucket_names(7)] == ["day_1", "days_1_7"]
    assert [b for b, _ in bucket_names(1)] == ["day_1"]
    frame = pd.DataFrame(
        {"y": [10.0, 10.0, 10.0], "y_hat": [11.0, 13.0, 10.0], "step": [1, 2, 8], "scale": 1.0}
    )
    out = summarize(frame, 8)
    assert out["overall"]["mae"] == pytest.approx(4 / 3)
    assert out["buckets"]["day_1"]["mae"] == pytest.approx(1.0)
    assert out["buckets"]["days_1_7"]["wape"] == pytest.approx(4 / 20)
    assert out["buckets"]["days_1_8"]["n"] == 3
    assert set(out["overall"]) == {"mae", "rmse", "wape", "mase", "bias", "n"}


def test_unknown_days_are_not_scored():
    frame = pd.DataFrame(
        {
            "y": [10.0, 10.0, 100.0],
            "y_hat": [11.0, 13.0, 10.0],
            "step": [1, 2, 1],
            "scale": 1.0,
            "is_unknown": [False, False, True],
        }
    )
    out = summarize(frame, 2)
    assert out["overall"]["n"] == 2 and out["overall"]["mae"] == pytest.approx(2.0)
    assert out["buckets"]["day_1"]["n"] == 1


def test_seasonal_scale_skips_differences_with_an_unknown_day():
    df = pd.DataFrame(
        {
            "unique_id": ["a"] * 9,
            "ds": pd.date_range("2024-01-01", periods=9),
            "y": [1, 2, 3, 4, 5, 6, 7, 3, 2],
            # day 9's value is a fill (last week's): |2-2| = 0 would understate the noise
            "is_unknown": [False] * 8 + [True],
        }
    )
    assert seasonal_scale(df) == pytest.approx(2.0)
    assert seasonal_scale(df.drop(columns=["is_unknown"])) == pytest.approx(1.0)
