from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sf_contract import Contract
from trainer.feature_spec import build_feature_spec
from trainer.fitting import quiet, training_matrix
from trainer.model import Forecaster
from trainer.panel import prepare_panel
from trainer.recipe import resolve_recipe


def test_training_on_a_window_and_a_sample_still_forecasts_every_series(
    retail_panel, retail_contract, small_config
):
    config = replace(small_config, train_window_days=60, max_train_rows=150)
    fc = Forecaster.fit(retail_panel, retail_contract, config, intervals=False)
    assert fc.training["train_start"] == "2024-05-02"
    assert fc.training["sampled_series"] < 6 and fc.training["train_rows"] <= 150 + 60
    frame = fc.predict(7, levels=[])
    assert frame["series_id"].nunique() == 6 and frame["forecast"].notna().all()


def _unknown(panel: pd.DataFrame, rows) -> pd.DataFrame:
    out = panel.copy()
    out["is_unknown"] = False
    out.loc[rows, "is_unknown"] = True
    out.loc[rows, "sales"] = np.nan
    return out


@pytest.mark.parametrize("window", [0, 60])
def test_unknown_days_are_no_training_targets(retail_panel, retail_contract, small_config, window):
    rows = np.random.default_rng(0).choice(len(retail_panel), size=100, replace=False)
    panel = prepare_panel(_unknown(retail_panel, rows), retail_contract)
    config, _ = resolve_recipe(
        replace(small_config, train_window_days=window), panel, retail_contract
    )
    spec = build_feature_spec(panel, retail_contract, config.features)
    with quiet():
        matrix = training_matrix(panel, retail_contract, spec, config)
    used = matrix.rows.iloc[matrix.x.index.to_numpy()]
    assert not used["is_unknown"].any()
    in_window = matrix.rows if not window else matrix.rows[matrix.rows["date"] >= "2024-05-02"]
    n_unknown = int(in_window["is_unknown"].sum())
    assert 0 < n_unknown == matrix.facts["unknown_rows"]
    assert len(matrix.x) == len(matrix.y) == matrix.facts["train_rows"]
    assert len(matrix.x) == len(in_window) - n_unknown
    assert matrix.sample_weight is None or len(matrix.sample_weight) == len(matrix.y)
    if not window:
        # The filled days still feed the lags of the days after them.
        after = panel["is_unknown"].shift(1, fill_value=False) & ~panel["is_unknown"]
        after &= panel["series_id"].eq(panel["series_id"].shift(1))
        assert matrix.x.loc[panel.index[after], "lag1"].notna().all()


def _level_100_panel(seed: int = 1, n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for item, level in [("A", 100.0), ("B", 60.0)]:
        dates = pd.date_range(end="2024-06-30", periods=n)
        weekly = 1 + 0.2 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
        sales = np.round(level * weekly + rng.normal(0, 3, n))
        frames.append(pd.DataFrame({"item_id": item, "date": dates, "sales": sales}))
    return pd.concat(frames, ignore_index=True)


def test_unknown_days_do_not_drag_the_forecast_to_zero(small_config):
    contract = Contract.from_dict(
        {
            "name": "items",
            "date_column": "date",
            "target": "sales",
            "series_keys": ["item_id"],
            "columns": [
                {"name": "date", "type": "DATE", "role": "date"},
                {"name": "item_id", "type": "STRING", "role": "key"},
                {"name": "sales", "type": "FLOAT64", "role": "target"},
            ],
        }
    )
    config = replace(small_config, params=replace(small_config.params, n_estimators=30))
    full = _level_100_panel()
    hit = np.random.default_rng(1).random(len(full)) < 0.10
    unknown = full.assign(sales=full["sales"].where(~hit), is_unknown=hit)
    # What the panel said before: a quarantined day was a zero-sales day.
    zeros = full.assign(sales=full["sales"].where(~hit, 0.0), is_gap_filled=hit)

    def forecast(panel: pd.DataFrame) -> np.ndarray:
        fc = Forecaster.fit(panel, contract, config, intervals=False)
        return fc.predict(7, levels=[])["forecast"].to_numpy()

    reference, with_unknown, with_zeros = forecast(full), forecast(unknown), forecast(zeros)
    off_unknown = np.abs(with_unknown - reference).mean()
    off_zeros = np.abs(with_zeros - reference).mean()
    assert off_unknown < 0.03 * reference.mean()
    assert off_unknown < off_zeros / 3
    assert with_zeros.mean() < 0.95 * reference.mean()  # the bug this guards against
