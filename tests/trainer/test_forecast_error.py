"""The simulated weather forecast error of backtests (``--weather-noise``)."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sf_contract import Contract
from trainer.backtest import run_backtest
from trainer.config import LGBMParams, TrainerConfig
from trainer.errors import TrainerError
from trainer.forecast_error import (
    AR_PHI,
    add_forecast_error,
    anomaly_std,
    lead_time_factor,
    parse_noise,
)
from trainer.panel import prepare_panel

CUTOFF = pd.Timestamp("2024-06-02")

CONTRACT = Contract.from_dict(
    {
        "name": "rentals",
        "date_column": "date",
        "target": "rented",
        "series_keys": ["store_id"],
        "columns": [
            {"name": "date", "type": "DATE", "role": "date"},
            {"name": "store_id", "type": "STRING", "role": "key"},
            {"name": "rented", "type": "FLOAT64", "role": "target"},
            {"name": "temp", "type": "FLOAT64", "role": "forecast"},
            {"name": "rain_mm", "type": "FLOAT64", "role": "forecast"},
            {"name": "visitors", "type": "INT64", "role": "forecast"},
            {"name": "storm_warning", "type": "BOOL", "role": "forecast", "future_fill": "false"},
        ],
    }
)


def _panel(n_days: int = 400, stores: tuple[str, ...] = ("S1", "S2"), seed: int = 0):
    """Daily rentals driven by temperature and rain (weather that matters for the target)."""
    rng = np.random.default_rng(seed)
    frames = []
    for store in stores:
        dates = pd.date_range(end=CUTOFF + pd.Timedelta(days=28), periods=n_days, freq="D")
        doy = dates.dayofyear.to_numpy()
        temp = 12 + 10 * np.sin(2 * np.pi * (doy - 100) / 365) + rng.normal(0, 3, n_days)
        rain = np.where(rng.random(n_days) < 0.3, rng.gamma(0.8, 8, n_days), 0.0)
        rented = 200 + 8 * temp - 6 * rain + rng.normal(0, 5, n_days)
        frames.append(
            pd.DataFrame(
                {
                    "date": dates,
                    "store_id": store,
                    "rented": np.clip(rented, 0, None).round(),
                    "temp": temp.round(1),
                    "rain_mm": rain.round(1),
                    "visitors": rng.poisson(50, n_days).astype("int64"),
                    "storm_warning": rng.random(n_days) < 0.05,
                }
            )
        )
    return prepare_panel(pd.concat(frames, ignore_index=True), CONTRACT)


def _split(panel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return panel[panel["date"] <= CUTOFF], panel[panel["date"] > CUTOFF]


def _noisy(noise: float, seed: int = 0, panel: pd.DataFrame | None = None):
    history, future = _split(_panel() if panel is None else panel)
    return add_forecast_error(
        future,
        history,
        CONTRACT.forecast_columns,
        date_column="date",
        cutoff=CUTOFF,
        noise=noise,
        seed=seed,
    )


def test_zero_noise_leaves_the_values_unchanged():
    panel = _panel()
    _, future = _split(panel)
    out, applied = _noisy(0.0, panel=panel)
    pd.testing.assert_frame_equal(out, future)
    assert applied.noise == 0


def test_the_same_seed_gives_the_same_error_and_another_seed_another():
    a, _ = _noisy(0.5, seed=3)
    b, _ = _noisy(0.5, seed=3)
    c, _ = _noisy(0.5, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["temp"], c["temp"])


def test_the_error_is_sized_by_the_column_spread_and_only_touches_numeric_columns():
    panel = _panel()
    history, future = _split(panel)
    out, applied = _noisy(0.5, panel=panel)
    assert applied.columns["temp"] == pytest.approx(0.5 * anomaly_std(history, "temp", "date"))
    # Weather around its seasonal level varies by ~3 degrees: the season is not error.
    assert 1.0 < applied.columns["temp"] < 2.5
    assert applied.perfect == ["storm_warning"]
    assert (out["storm_warning"].to_numpy() == future["storm_warning"].to_numpy()).all()
    # The actuals and keys are not touched.
    for col in ("rented", "store_id", "date"):
        assert (out[col].to_numpy() == future[col].to_numpy()).all()


def test_the_error_grows_with_the_lead_time():
    assert lead_time_factor([1, 7, 28]) == pytest.approx([np.sqrt(1 / 7), 1.0, 2.0])
    # Many series of the same weather, so the spread per lead day is measured, not guessed.
    panel = _panel(stores=tuple(f"S{i}" for i in range(60)), n_days=120)
    _, future = _split(panel)
    out, _ = _noisy(0.5, panel=panel)
    error = (out["temp"] - future["temp"]).to_numpy()
    lead = (future["date"] - CUTOFF).dt.days.to_numpy()
    early, late = error[lead <= 3].std(), error[lead >= 22].std()
    assert late > 2 * early
    assert abs(error.mean()) < 0.3 * error.std()  # zero-mean


def test_the_error_is_correlated_from_one_day_to_the_next():
    panel = _panel(stores=tuple(f"S{i}" for i in range(60)), n_days=120)
    _, future = _split(panel)
    out, _ = _noisy(0.5, panel=panel)
    frame = future.assign(
        e=(out["temp"] - future["temp"])
        / lead_time_factor((future["date"] - CUTOFF).dt.days.to_numpy())
    )
    pivot = frame.pivot(index="date", columns="store_id", values="e")
    lag1 = np.corrcoef(pivot.iloc[:-1].to_numpy().ravel(), pivot.iloc[1:].to_numpy().ravel())[0, 1]
    assert lag1 == pytest.approx(AR_PHI, abs=0.15)


def test_values_stay_valid_non_negative_rain_whole_counts_within_the_observed_range():
    panel = _panel()
    history, _ = _split(panel)
    out, _ = _noisy(3.0, panel=panel)  # a huge error: clipping must hold
    assert (out["rain_mm"] >= 0).all()
    assert out["rain_mm"].max() <= history["rain_mm"].max()
    assert out["temp"].min() >= history["temp"].min()
    assert out["visitors"].dtype.name in ("Int64", "int64")
    assert (out["visitors"].astype(float) % 1 == 0).all()
    # Written with one decimal, like the history.
    assert np.allclose(out["temp"], out["temp"].round(1))


def test_an_amount_often_nothing_gets_a_mean_one_factor_and_dry_days_stay_dry():
    panel = _panel(stores=tuple(f"S{i}" for i in range(60)), n_days=120)
    _, future = _split(panel)
    out, applied = _noisy(0.5, panel=panel)
    assert applied.multiplicative == ("rain_mm",) and applied.columns["rain_mm"] == 0.5
    dry = future["rain_mm"].to_numpy() == 0
    assert (out["rain_mm"].to_numpy()[dry] == 0).all()
    # An additive error clipped at 0 would add rain on dry days; the factor keeps the total.
    wet = ~dry
    ratio = out["rain_mm"].to_numpy()[wet].sum() / future["rain_mm"].to_numpy()[wet].sum()
    assert ratio == pytest.approx(1.0, abs=0.15)
    assert not np.allclose(out["rain_mm"].to_numpy()[wet], future["rain_mm"].to_numpy()[wet])
    assert "rain_mm x0.5" in applied.summary()


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "lots"])
def test_bad_noise_values_are_a_clear_error(bad):
    with pytest.raises(TrainerError, match="weather noise must be"):
        parse_noise(bad)


def _backtest(tmp_path: Path, noise: float, name: str) -> dict:
    panel = _panel(n_days=200)
    config = TrainerConfig(
        horizon=14,
        params=LGBMParams(n_estimators=150, learning_rate=0.1, num_leaves=7, min_child_samples=5),
        num_threads=1,
    )
    run_backtest(
        panel=panel,
        contract=CONTRACT,
        cutoff_date=dt.date(2024, 6, 30),
        horizon=14,
        n_windows=2,
        challenger=config,
        champion=None,
        output_dir=str(tmp_path / name),
        coverage=False,
        weather_noise=noise,
        weather_noise_seed=1,
    )
    return json.loads((tmp_path / name / "backtest.json").read_text())


def test_backtest_with_weather_noise_scores_differently_and_says_so(tmp_path: Path, caplog):
    perfect = _backtest(tmp_path, 0.0, "perfect")
    assert perfect["perfect_forecast_columns"] == ["temp", "rain_mm", "visitors", "storm_warning"]
    assert perfect["weather_noise"]["noise"] == 0
    with caplog.at_level("WARNING", logger="trainer.backtest"):
        noisy = _backtest(tmp_path, 1.0, "noisy")
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "simulated forecast error" in said and "perfect forecast" in said  # storm_warning
    assert noisy["perfect_forecast_columns"] == ["storm_warning"]
    doc = noisy["weather_noise"]
    assert doc["noise"] == 1.0 and doc["seed"] == 1
    assert doc["columns"] == ["temp", "rain_mm", "visitors"]
    assert [w["cutoff"] for w in doc["windows"]] == [
        "2024-06-02",
        "2024-06-16",
    ]
    wape = {
        name: doc_["methods"]["challenger"]["overall"]["wape"]
        for name, doc_ in (("perfect", perfect), ("noisy", noisy))
    }
    # Rentals follow the weather: a forecast error in it makes the forecasts worse.
    assert wape["noisy"] > wape["perfect"]
    # The baseline does not read the weather, and the actuals scored are the same.
    base = [d["methods"]["seasonal_naive"]["overall"]["wape"] for d in (perfect, noisy)]
    assert base[0] == base[1]
    # Reproducible.
    again = _backtest(tmp_path, 1.0, "again")
    assert again["methods"]["challenger"]["overall"] == noisy["methods"]["challenger"]["overall"]
