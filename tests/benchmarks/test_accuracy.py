"""benchmarks/accuracy.py's weather variants: the data each method is given."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location(
        "bench_accuracy", REPO / "benchmarks" / "accuracy.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_accuracy"] = module
    spec.loader.exec_module(module)
    return module


def test_takeaway_future_weather_is_the_weather_the_generator_drew(accuracy):
    from datagen import generate_takeaway

    weather = accuracy.takeaway_future_weather(11, "2024-03-31", 14)
    assert len(weather) == 14
    assert weather["date"].iloc[0] == pd.Timestamp("2024-04-01")
    # The generator's history is drawn from the same streams: a longer history's last days
    # are the shorter run's future weather (weather draws do not depend on the cut).
    longer = generate_takeaway(end="2024-04-14", future_days=0, seed=11).history
    tail = longer[longer["date"] > "2024-03-31"].reset_index(drop=True)
    cols = ["tavg", "tmin", "tmax", "prcp", "wspd", "pres"]
    assert np.allclose(weather[cols].to_numpy(), tail[cols].to_numpy())


def _seoul(accuracy):
    if not accuracy.DEFAULT_SEOUL.exists():
        pytest.skip(f"{accuracy.DEFAULT_SEOUL} is not here")
    return accuracy.load_seoul(
        accuracy.DEFAULT_SEOUL, 28, accuracy.SEOUL_WEATHER_COVARIATES, name="seoul_weather"
    )


def test_seoul_weather_gives_the_held_out_weather_and_noise_moves_only_the_weather(accuracy):
    ds = _seoul(accuracy)
    assert [c.name for c in ds.contract.forecast_columns] == list(accuracy.SEOUL_WEATHER)
    assert ds.future is not None and len(ds.future) == 28
    assert set(accuracy.SEOUL_WEATHER) <= set(ds.future.columns)
    # is_open is the availability: given for the held-out days, and its closed days are 0
    # for every method (known_closures), ours or not.
    assert ds.contract.availability_column.name == "is_open"
    shut = ds.future.loc[~ds.future["is_open"], "date"]
    assert len(shut) == 3
    flat = pd.DataFrame({"series_id": "total", "date": ds.future["date"], "y_hat": 5.0})
    zeroed = accuracy.known_closures(ds, flat)
    assert (zeroed.loc[zeroed["date"].isin(shut), "y_hat"] == 0).all()
    assert (zeroed.loc[~zeroed["date"].isin(shut), "y_hat"] == 5.0).all()
    noisy = accuracy.with_weather_noise(ds, 0.5)
    assert noisy.name == "seoul_weather_noisy"
    assert list(noisy.future.columns) == list(ds.future.columns)
    assert (noisy.future["is_holiday"] == ds.future["is_holiday"]).all()
    assert not np.allclose(noisy.future["temp_mean"], ds.future["temp_mean"])
    assert (noisy.future[["rainfall_mm", "snowfall_cm", "humidity"]] >= 0).all().all()
    pd.testing.assert_frame_equal(noisy.actuals, ds.actuals)
    again = accuracy.with_weather_noise(ds, 0.5)
    pd.testing.assert_frame_equal(again.future, noisy.future)
