"""No look-ahead: forecasts depend on actuals up to the cut-off and on known covariates only.

Also the properties the serving app relies on: a short forecast is the start of a longer one,
one series' forecast does not depend on the others, and new history moves the state only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.columns import TIME
from trainer.evaluation import evaluate_methods
from trainer.inputs import load_panel
from trainer.model import Forecaster
from trainer.panel import prepare_panel

CUTOFF = pd.Timestamp("2024-06-16")


def _future(panel: pd.DataFrame, after: pd.Timestamp, days: int) -> pd.DataFrame:
    rows = panel[(panel["date"] > after) & (panel["date"] <= after + pd.Timedelta(days=days))]
    return rows[["store_id", "item_id", "date", "price", "on_promo", "is_holiday"]]


def _scrambled_after(panel: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The same panel with every value after ``cutoff`` replaced by something wild."""
    out = panel.copy()
    later = out["date"] > cutoff
    rng = np.random.default_rng(99)
    out.loc[later, "sales"] = rng.integers(0, 500, int(later.sum())).astype(float)
    out.loc[later, "temperature"] = -40.0
    out.loc[later, "price"] = 99.0
    out.loc[later, "on_promo"] = ~out.loc[later, "on_promo"].astype(bool)
    return out


def test_forecast_ignores_everything_after_the_cutoff(
    tmp_path: Path, retail_panel, retail_contract, small_config, duckdb_writer
):
    """Same table up to the cut-off, anything after it: identical model and forecasts."""
    forecasts = []
    for i, panel in enumerate([retail_panel, _scrambled_after(retail_panel, CUTOFF)]):
        uri = duckdb_writer(panel, tmp_path / f"wh{i}.duckdb")
        train = load_panel(uri, retail_contract, CUTOFF.date())
        fc = Forecaster.fit(train, retail_contract, small_config)
        # The future file holds the real covariates in both cases: only the actuals differ.
        forecasts.append(fc.predict(7, future_df=_future(retail_panel, CUTOFF, 7)))
    pd.testing.assert_frame_equal(forecasts[0], forecasts[1])


def test_backtest_window_forecasts_do_not_see_their_own_actuals(
    retail_panel, retail_contract, small_config
):
    panel = prepare_panel(retail_panel, retail_contract)
    # Alter the target (only) after the cut-off: the forecasts must not move, the truth must.
    altered = panel.copy()
    later = altered["date"] > CUTOFF
    altered.loc[later, "sales"] = altered.loc[later, "sales"] * 3 + 5
    runs = [
        evaluate_methods(p, retail_contract, [CUTOFF], 7, {"m": small_config}, {"m": (80,)})["m"]
        for p in (panel, altered)
    ]
    np.testing.assert_array_equal(runs[0]["y_hat"], runs[1]["y_hat"])
    np.testing.assert_array_equal(runs[0]["upper_80"], runs[1]["upper_80"])
    assert not np.array_equal(runs[0]["y"], runs[1]["y"])


def test_known_covariates_come_from_the_future_frame_only(
    retail_panel, retail_contract, small_config
):
    train = retail_panel[retail_panel["date"] <= CUTOFF]
    fc = Forecaster.fit(train, retail_contract, small_config, intervals=False)
    future = _future(retail_panel, CUTOFF, 7)
    base = fc.predict(7, future_df=future, levels=[])
    # Target and observed-only values in the future frame are never read.
    noisy = future.assign(sales=1e6, temperature=-40.0)
    pd.testing.assert_frame_equal(base, fc.predict(7, future_df=noisy, levels=[]))
    # The known columns are: a promotion on every day changes the forecast.
    promo = fc.predict(7, future_df=future.assign(on_promo=True), levels=[])
    assert not np.allclose(base["forecast"], promo["forecast"])


def test_short_forecast_is_the_start_of_a_long_one_and_series_are_independent(
    retail_panel, retail_contract, small_config
):
    train = retail_panel[retail_panel["date"] <= CUTOFF]
    fc = Forecaster.fit(train, retail_contract, replace(small_config, horizon=14))
    future = _future(retail_panel, CUTOFF, 14)
    long = fc.predict(14, future_df=future)
    short = fc.predict(5, future_df=future)
    head = long.groupby("series_id").head(5).reset_index(drop=True)
    pd.testing.assert_frame_equal(short.drop(columns="step"), head.drop(columns="step"))
    mine = future[(future["store_id"] == "S2") & (future["item_id"] == "A")]
    one = fc.predict(14, future_df=mine, series_ids=["S2|A"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(one, long[long["series_id"] == "S2|A"].reset_index(drop=True))


def test_new_history_moves_the_state_and_leaves_the_model_alone(
    retail_panel, retail_contract, small_config
):
    """Moving a model forward with new actuals keeps derived covariate features consistent."""
    early = retail_panel[retail_panel["date"] <= CUTOFF]
    later = retail_panel[retail_panel["date"] <= CUTOFF + pd.Timedelta(days=7)]
    fc = Forecaster.fit(early, retail_contract, small_config, intervals=False)
    future = _future(retail_panel, CUTOFF + pd.Timedelta(days=7), 7)
    moved = fc.forecast(7, future_df=future, new_history=later, levels=[])
    assert moved.updated_rows == 6 * 7
    assert moved.frame["date"].min() == CUTOFF + pd.Timedelta(days=8)
    # The tail the derived features read moved too: it ends on the new last day.
    tail_end = pd.Timestamp(fc._tail[TIME].max())
    assert tail_end == CUTOFF  # the model itself is unchanged
    assert moved.frame["forecast"].notna().all()
