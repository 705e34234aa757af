"""Forecast accuracy metrics and the per-horizon-bucket summary written to ``metrics.json``.

Definitions (``e = forecast - actual``):

- ``mae``  = mean |e|
- ``rmse`` = sqrt(mean e^2)
- ``wape`` = sum |e| / sum |actual|                    (scale-free; NaN if all actuals are 0)
- ``bias`` = sum e / sum |actual|                      (signed: > 0 means over-forecasting)
- ``mase`` = sum |e| / sum scale                       (scale = in-sample seasonal-naive MAE,
  season 7, of the training data behind each row; pooled so that all-zero series do not
  divide by zero)

Unknown days (``is_unknown``: the day's row was quarantined, its panel value a fill) are no
actuals: :func:`summarize` does not score rows flagged so, and :func:`seasonal_scale` leaves
out differences that touch one.
"""

from __future__ import annotations

__all__ = [
    "bias",
    "bucket_names",
    "mae",
    "mase",
    "rmse",
    "seasonal_scale",
    "summarize",
    "wape",
]

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

ArrayLike = npt.ArrayLike

# The panel's flag of days whose sales are unknown (trainer.panel.UNKNOWN).
UNKNOWN = "is_unknown"


def _pair(y: ArrayLike, y_hat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y, dtype=float)
    f = np.asarray(y_hat, dtype=float)
    if a.shape != f.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {f.shape}")
    return a, f


def mae(y: ArrayLike, y_hat: ArrayLike) -> float:
    a, f = _pair(y, y_hat)
    return float(np.mean(np.abs(f - a))) if a.size else float("nan")


def rmse(y: ArrayLike, y_hat: ArrayLike) -> float:
    a, f = _pair(y, y_hat)
    return float(np.sqrt(np.mean((f - a) ** 2))) if a.size else float("nan")


def wape(y: ArrayLike, y_hat: ArrayLike) -> float:
    a, f = _pair(y, y_hat)
    denom = np.sum(np.abs(a))
    return float(np.sum(np.abs(f - a)) / denom) if denom > 0 else float("nan")


def bias(y: ArrayLike, y_hat: ArrayLike) -> float:
    a, f = _pair(y, y_hat)
    denom = np.sum(np.abs(a))
    return float(np.sum(f - a) / denom) if denom > 0 else float("nan")


def mase(y: ArrayLike, y_hat: ArrayLike, scale: float | ArrayLike) -> float:
    """Mean absolute error over the seasonal-naive in-sample MAE (scalar or one per row)."""
    a, f = _pair(y, y_hat)
    s = np.broadcast_to(np.asarray(scale, dtype=float), a.shape)
    denom = np.sum(s)
    return float(np.sum(np.abs(f - a)) / denom) if denom > 0 else float("nan")


def seasonal_scale(
    history: pd.DataFrame,
    *,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    season: int = 7,
    unknown_col: str = UNKNOWN,
) -> float:
    """Pooled in-sample MAE of the seasonal-naive forecast: mean |y_t - y_{t-season}|.

    ``history`` is contiguous daily rows per series. Where it has ``unknown_col``, a
    difference with an unknown day at either end is left out.
    """
    ordered = history.sort_values([id_col, time_col])
    values = ordered[target_col]
    if unknown_col in ordered.columns:
        values = values.where(~ordered[unknown_col].eq(True).to_numpy())
    diffs = values.groupby(ordered[id_col], sort=False, observed=True).diff(season)
    diffs = diffs.dropna()
    return float(diffs.abs().mean()) if len(diffs) else float("nan")


def bucket_names(horizon: int) -> list[tuple[str, int]]:
    """(name, last step) of each cumulative horizon bucket: day 1, days 1-7, days 1-H."""
    buckets = [("day_1", 1)]
    if horizon > 7:
        buckets.append(("days_1_7", 7))
    if horizon > 1:
        buckets.append((f"days_1_{horizon}", horizon))
    return buckets


def _scores(frame: pd.DataFrame, y: str, y_hat: str, scale: str | None) -> dict[str, Any]:
    a = frame[y].to_numpy(dtype=float)
    f = frame[y_hat].to_numpy(dtype=float)
    out: dict[str, Any] = {
        "mae": mae(a, f),
        "rmse": rmse(a, f),
        "wape": wape(a, f),
        "mase": mase(a, f, frame[scale].to_numpy(dtype=float)) if scale else float("nan"),
        "bias": bias(a, f),
        "n": len(frame),
    }
    return out


def summarize(
    frame: pd.DataFrame,
    horizon: int,
    *,
    y: str = "y",
    y_hat: str = "y_hat",
    step: str = "step",
    scale: str | None = "scale",
    buckets: Sequence[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """Metrics overall and per cumulative horizon bucket for an evaluation frame.

    ``frame`` has one row per (series, day, window) with the actual, the forecast, the step
    ahead (1 = first forecast day) and the MASE scale of the row's training window. Rows
    flagged ``is_unknown`` (when the frame has that column) are not scored.
    """
    if UNKNOWN in frame.columns:
        frame = frame[~frame[UNKNOWN].eq(True).to_numpy()]
    out: dict[str, Any] = {"overall": _scores(frame, y, y_hat, scale), "buckets": {}}
    for name, last in buckets or bucket_names(horizon):
        out["buckets"][name] = _scores(frame.loc[frame[step] <= last], y, y_hat, scale)
    return out
