import numpy as np
import pandas as pd

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
