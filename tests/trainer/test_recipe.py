import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sf_contract import Contract
from trainer.backtest import load_params
from trainer.config import LGBMParams, TrainerConfig, lgbm_kwargs
from trainer.errors import TrainerError
from trainer.metrics import wape
from trainer.model import Forecaster
from trainer.panel import prepare_panel
from trainer.recipe import (
    PANEL,
    RECIPES,
    SMALL,
    SMALL_MAX_ROWS,
    DataShape,
    choose_recipe,
    data_shape,
    resolve,
    resolve_recipe,
)

SHOP = Contract.from_dict(
    {
        "name": "shop",
        "date_column": "date",
        "target": "sales",
        "series_keys": [],
        "columns": [
            {"name": "date", "type": "DATE", "role": "date"},
            {"name": "sales", "type": "FLOAT64", "role": "target"},
            {"name": "event", "type": "BOOL", "role": "known", "future_fill": "false"},
        ],
    }
)


def growing_shop(seed: int, n: int = 800, h: int = 28) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One shop's daily sales growing 22% a year, a weekly pattern, +50% on known event days,
    gamma noise (CV 0.2); returns (history, the next ``h`` days with their true mean)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end="2024-06-30", periods=n + h)
    weekly = np.array([0.85, 0.9, 0.95, 1.0, 1.1, 1.3, 0.9])[dates.dayofweek]
    event = rng.random(n + h) < 0.06
    mean = 200 * np.exp(0.2 * np.arange(n + h) / 365.0) * weekly * (1 + 0.5 * event)
    sales = rng.gamma(25.0, mean / 25.0).round(1)
    df = pd.DataFrame({"date": dates, "sales": sales, "event": event, "mean": mean})
    return df.iloc[:n].drop(columns="mean"), df.iloc[n:]


def test_the_shape_chooses_the_recipe():
    assert choose_recipe(DataShape(n_series=1, train_rows=730))[0] == SMALL
    assert choose_recipe(DataShape(n_series=3, train_rows=2_190))[0] == SMALL
    assert choose_recipe(DataShape(n_series=100, train_rows=73_000))[0] == PANEL
    assert choose_recipe(DataShape(n_series=7, train_rows=SMALL_MAX_ROWS))[0] == PANEL
    name, why = choose_recipe(DataShape(n_series=1, train_rows=730))
    assert "1 series" in why and "730 training rows" in why


def test_data_shape_counts_the_training_window(retail_panel, retail_contract, small_config):
    panel = prepare_panel(retail_panel, retail_contract)
    assert data_shape(panel, retail_contract, replace(small_config, train_window_days=0)) == (
        DataShape(n_series=6, train_rows=len(panel))
    )
    # 60 days of each of the five 200-day series, 40 of the newcomer.
    windowed = data_shape(panel, retail_contract, replace(small_config, train_window_days=60))
    assert windowed == DataShape(n_series=6, train_rows=5 * 60 + 40)


def test_unset_knobs_come_from_the_recipe_and_given_ones_win():
    config = TrainerConfig(params=LGBMParams(num_leaves=31))
    resolved, info = resolve(config, DataShape(n_series=1, train_rows=700))
    small = RECIPES[SMALL]
    assert resolved.recipe == SMALL and info["name"] == SMALL
    assert resolved.params.num_leaves == 31 and info["given"] == ["num_leaves"]
    assert resolved.params.n_estimators == small.params["n_estimators"]
    assert resolved.params.learning_rate == small.params["learning_rate"]
    assert resolved.features.level_trend is True
    assert lgbm_kwargs(resolved)["num_leaves"] == 31
    # Resolved is final: a smaller calibration panel keeps the same recipe.
    again, _ = resolve(resolved, DataShape(n_series=500, train_rows=10**6))
    assert again == resolved
    # A forced recipe ignores the shape; a given feature knob wins too.
    forced = replace(config, recipe=PANEL, features=replace(config.features, level_trend=True))
    panel, info = resolve(forced, DataShape(n_series=1, train_rows=700))
    assert panel.params.n_estimators == RECIPES[PANEL].params["n_estimators"]
    assert panel.features.level_trend is True and "features.level_trend" in info["given"]


def test_an_unresolved_or_unknown_recipe_is_refused():
    with pytest.raises(TrainerError, match="resolve the recipe"):
        lgbm_kwargs(TrainerConfig())
    with pytest.raises(TrainerError, match="recipe must be one of"):
        TrainerConfig(recipe="tiny").validate()


def test_a_params_json_from_before_recipes_refits_as_the_panel_recipe(tmp_path):
    old = TrainerConfig().to_dict()
    del old["recipe"], old["features"]["level_trend"]
    old["params"].update(n_estimators=400, learning_rate=0.08, num_leaves=15, min_child_samples=20)
    (tmp_path / "params.json").write_text(json.dumps(old))
    config = load_params(str(tmp_path))
    resolved, info = resolve(config, DataShape(n_series=1, train_rows=700))
    assert resolved.recipe == PANEL and resolved.features.level_trend is False
    assert info["reason"] == "set in the trainer config"


def test_the_fit_records_its_recipe(tmp_path, takeaway_panel, takeaway_contract, small_config):
    fc = Forecaster.fit(takeaway_panel, takeaway_contract, small_config, intervals=False)
    assert fc.recipe["name"] == SMALL and fc.recipe["n_series"] == 1
    # small_config gives trees, leaves and rows per leaf; the recipe filled in the rest.
    assert fc.recipe["given"] == ["min_child_samples", "n_estimators", "num_leaves"]
    assert fc.config.params.learning_rate == RECIPES[SMALL].params["learning_rate"]
    assert fc.config.recipe == SMALL and fc.spec.features.level_trend is True
    fc.save(str(tmp_path / "m"))
    doc = json.loads((tmp_path / "m" / "forecaster.json").read_text())
    assert doc["training"]["recipe"]["name"] == SMALL
    assert Forecaster.load(str(tmp_path / "m")).recipe == fc.recipe


def test_resolve_recipe_logs_the_choice(takeaway_panel, takeaway_contract, caplog):
    panel = prepare_panel(takeaway_panel, takeaway_contract)
    with caplog.at_level("INFO", logger="trainer.recipe"):
        resolve_recipe(TrainerConfig(), panel, takeaway_contract)
    assert "recipe small (1 series, 150 training rows" in caplog.text


def _oracle_ratio(recipe: str, seeds: range) -> float:
    errors = oracle = 0.0
    for seed in seeds:
        history, ahead = growing_shop(seed)
        config = TrainerConfig(horizon=28, recipe=recipe, num_threads=1)
        fc = Forecaster.fit(history, SHOP, config, intervals=False)
        forecast = fc.predict(28, future_df=ahead[["date", "event"]], levels=[])["forecast"]
        y = ahead["sales"].to_numpy()
        errors += wape(y, forecast.to_numpy()) * y.sum()
        oracle += wape(y, ahead["mean"].to_numpy()) * y.sum()
    return errors / oracle


def test_a_growing_single_series_is_forecast_near_its_true_mean():
    # The auto recipe (small, for one series) lands within 10% of the oracle's WAPE; the panel
    # recipe, fit to the noise of 730 rows and blind to the trend, does not (~1.2x).
    assert _oracle_ratio("auto", range(3)) <= 1.10
    assert _oracle_ratio(PANEL, range(3)) > 1.10
