"""Baselines the model has to beat."""

from __future__ import annotations

__all__ = ["seasonal_naive"]

import numpy as np
import pandas as pd


def seasonal_naive(
    history: pd.DataFrame,
    horizon: int,
    *,
    season: int = 7,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> pd.DataFrame:
    """Repeat each series' last ``season`` days: day ``T+k`` gets ``y[T+k-season*ceil(k/season)]``.

    Series with fewer than ``season`` days get the naive forecast (their last value
    repeated), so every series always gets a forecast.

    Returns ``id_col, time_col, step, y_hat`` with one row per series and day.
    """
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    ordered = history.sort_values([id_col, time_col], kind="stable")
    tails = ordered.groupby(id_col, sort=True, observed=True).tail(season)
    grouped = tails.groupby(id_col, sort=True, observed=True)
    counts = grouped.size().to_numpy()
    uids = grouped.size().index
    last_dates = pd.DatetimeIndex(grouped[time_col].last().to_numpy())
    if not len(counts):
        return pd.DataFrame(columns=[id_col, time_col, "step", "y_hat"])
    values = tails.sort_values([id_col, time_col], kind="stable")[target_col].to_numpy(float)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    steps = np.arange(1, horizon + 1)
    # Row i, step k: the value `season` days before day T+k, counted from the tail's start.
    offsets = np.where(
        (counts == season)[:, None],
        (steps[None, :] - 1) % season,
        (counts - 1)[:, None],
    )
    y_hat = values[starts[:, None] + offsets]
    n = len(counts)
    return pd.DataFrame(
        {
            id_col: np.repeat(np.asarray(uids), horizon),
            time_col: (
                np.repeat(last_dates.to_numpy(), horizon)
                + np.tile(pd.to_timedelta(steps, unit="D").to_numpy(), n)
            ),
            "step": np.tile(steps, n),
            "y_hat": y_hat.ravel(),
        }
    )
