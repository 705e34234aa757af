"""The target transform: each series divided by its level x weekday profile before fitting.

mlforecast calls this module's kind of object a target transform (``target_transforms.py``
upstream); it is fit on the training rows only, so no target after a row's day is read.
"""

from __future__ import annotations

__all__ = ["SeasonalScaler"]

from typing import Any

import numpy as np
import pandas as pd
from mlforecast.target_transforms import BaseTargetTransform


class SeasonalScaler(BaseTargetTransform):
    """mlforecast target transform: divide each series by its level x weekday profile.

    Fitted on the training rows only (the last ``window`` days of each series, 0 = all):
    ``level`` = mean target, floored at ``floor`` so near-empty series are not blown up;
    ``profile[d]`` = mean on weekday ``d`` / level, shrunk towards the panel's profile by
    ``kappa`` units of sales (a series selling 3 a day has a noisy profile; one selling 300
    has its own). Trees then learn dynamics shared across series of any size, and an effect
    seen on some weekdays only (a month that just started lower) carries to the others.
    Forecasts are multiplied back by the same numbers; new actuals (``update``) are divided by
    them, so a model moved forward with new history keeps its scale.

    Saved models pickle this class; see :mod:`trainer.features` for the path older ones use.
    """

    def __init__(self, window: int = 364, weekly: bool = True, kappa: float = 100.0,
                 floor: float = 1.0, log: bool = False, trend: bool = False) -> None:  # fmt: skip
        self.window = int(window)
        self.weekly = bool(weekly)
        self.kappa = float(kappa)
        self.floor = float(floor)
        self.log = bool(log)
        self.trend = bool(trend)
        # True once prefit: mlforecast's later fit_transform then keeps these numbers.
        self.frozen_ = False

    # mlforecast's BaseTargetTransform protocol ------------------------------------------
    def set_column_names(self, id_col: str, time_col: str, target_col: str) -> None:
        self.id_col, self.time_col, self.target_col = id_col, time_col, target_col

    @staticmethod
    def stack(transforms: Any) -> Any:
        return transforms[0]

    def fit_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        if not self.frozen_:
            self._fit_stats(df)
        return self._divide(df)

    def prefit(
        self, df: pd.DataFrame, *, id_col: str, time_col: str, target_col: str
    ) -> SeasonalScaler:
        """Fit on ``df`` now and keep these numbers when mlforecast later calls fit_transform.

        Lets the trees learn from a window or a sample of the panel while every series keeps
        the scale of its own full recent history.
        """
        self.set_column_names(id_col, time_col, target_col)
        self._fit_stats(df)
        self.frozen_ = True
        return self

    def _fit_stats(self, df: pd.DataFrame) -> None:
        codes, uniques = pd.factorize(df[self.id_col], sort=False)
        times = df[self.time_col].to_numpy(dtype="datetime64[ns]")
        y = df[self.target_col].to_numpy(dtype=np.float64)
        n = len(uniques)
        last = pd.Series(times).groupby(codes).max().to_numpy(dtype="datetime64[ns]")
        keep = np.ones(len(df), dtype=bool)
        if self.window > 0:
            keep = (last[codes] - times) < np.timedelta64(self.window, "D")
        dow = ((times.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(np.int64)
        c, d, v = codes[keep], dow[keep], np.nan_to_num(y[keep])
        sums = np.zeros((n, 7))
        counts = np.zeros((n, 7))
        np.add.at(sums, (c, d), v)
        np.add.at(counts, (c, d), 1.0)
        level = sums.sum(axis=1) / np.maximum(counts.sum(axis=1), 1.0)
        profile = np.ones((n, 7))
        if self.weekly:
            panel = sums.sum(axis=0) / np.maximum(counts.sum(axis=0), 1.0)
            panel = panel / panel.mean() if panel.mean() > 0 else np.ones(7)
            panel = np.where(counts.sum(axis=0) > 0, panel, 1.0)
            weight = counts * level[:, None]  # expected units sold on that weekday
            own = sums / np.maximum(weight, 1e-12)
            profile = (weight * own + self.kappa * panel[None, :]) / (weight + self.kappa)
            profile = profile / profile.mean(axis=1, keepdims=True)
        self.ids_ = pd.Index(np.asarray(uniques, dtype=object).astype(str), dtype=object)
        self.level_ = np.maximum(level, self.floor)
        self.profile_ = profile
        day_last = last.astype("datetime64[D]").astype(np.int64)
        self.growth_ = np.zeros(n)
        # The level is the window's mean: under steady growth, the level at its middle day.
        span = self.window if self.window > 0 else 0
        self.anchor_ = day_last - (span - 1) / 2.0 if span else day_last.astype(np.float64)
        if self.trend and span:
            self.growth_ = _yearly_growth(codes, day_last, times, y, n, span, self.floor)

    def update(self, df: pd.DataFrame) -> pd.DataFrame:
        return self._divide(df)

    def inverse_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        scale = self.scale(df[self.id_col], df[self.time_col])
        out = df.copy(deep=False)
        for col in df.columns:
            if col not in (self.id_col, self.time_col):
                values = df[col].to_numpy(dtype=np.float64)
                if self.log:
                    values = np.expm1(values)
                out[col] = values * scale
        return out

    # helpers ----------------------------------------------------------------------------
    def scale(self, ids: Any, times: Any) -> np.ndarray:
        """The divisor of each (series, day); 1.0 for a series the scaler never saw."""
        idx = self.ids_.get_indexer(pd.Index(ids))
        days = np.asarray(times, dtype="datetime64[D]").astype(np.int64)
        dow = (days + 3) % 7
        known = idx >= 0
        out = np.ones(len(idx))
        k = idx[known]
        out[known] = self.level_[k] * self.profile_[k, dow[known]]
        growth = getattr(self, "growth_", None)  # absent in models pickled before the trend
        if growth is not None and growth.any():
            out[known] *= np.exp(growth[k] * (days[known] - self.anchor_[k]))
        return out

    def _divide(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy(deep=False)
        scale = self.scale(df[self.id_col], df[self.time_col])
        values = df[self.target_col].to_numpy(dtype=np.float64) / scale
        if self.log:
            # log1p of a value that is ~1 on a typical day: multiplicative effects (promotion
            # lift, a month's level) become additive, and the forecast is a median, which is
            # what minimises absolute error (WAPE).
            values = np.log1p(np.maximum(values, 0.0))
        out[self.target_col] = values
        return out


# Most growth a year-over-year trend may carry (x1.5 or /1.5 a year): beyond that the ratio of
# two years says more about a launch or a break than about a trend to extrapolate.
_MAX_YEARLY_GROWTH = float(np.log(1.5))


def _yearly_growth(
    codes: np.ndarray,
    day_last: np.ndarray,
    times: np.ndarray,
    y: np.ndarray,
    n: int,
    span: int,
    floor: float,
) -> np.ndarray:
    """Per series: log growth per day, from the mean of its last ``span`` days over the mean of
    the ``span`` days before them; 0 for a series without two complete spans.

    Comparing whole years leaves the yearly season out of the trend (a trend fit over one year
    of a seasonal series would mostly measure the season).
    """
    days = times.astype("datetime64[D]").astype(np.int64)
    age = day_last[codes] - days
    v = np.nan_to_num(y)
    sums, counts = np.zeros((n, 2)), np.zeros((n, 2))
    for k in (0, 1):
        part = (age >= k * span) & (age < (k + 1) * span)
        np.add.at(sums[:, k], codes[part], v[part])
        np.add.at(counts[:, k], codes[part], 1.0)
    mean = sums / np.maximum(counts, 1.0)
    full = (counts >= 0.9 * span).all(axis=1) & (mean > floor).all(axis=1)
    growth = np.zeros(n)
    ratio = np.log(mean[full, 0] / mean[full, 1])
    growth[full] = np.clip(ratio, -_MAX_YEARLY_GROWTH, _MAX_YEARLY_GROWTH) / span
    return growth
