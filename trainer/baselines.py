"""Baselines the model has to beat, and the forecast of series no model knows.

:func:`seasonal_naive` is the gate's baseline (point forecasts only);
:func:`seasonal_naive_forecast` is what ``predict`` writes for a series no given model knows
(or for every series with ``--seasonal-naive``): the same point forecast plus empirical
prediction intervals, so every forecast row has an interval.
"""

from __future__ import annotations

__all__ = [
    "ERROR_WEEKS",
    "SEASONAL_NAIVE_VERSION",
    "seasonal_naive",
    "seasonal_naive_forecast",
    "seasonal_naive_history_days",
]

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

# The model_version of rows forecast by seasonal naive: the forecasts table, the trainer and
# the Airflow side spell it the same way (the one definition is in sf_contract).
from sf_contract.constants import SEASONAL_NAIVE_VERSION

# Weeks of recent errors an empirical interval is the quantiles of: 8 weeks = 56 errors per
# step, enough for a 95% interval's 2.5% tail without reaching back past a season change.
ERROR_WEEKS = 8


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


def seasonal_naive_history_days(horizon: int, *, season: int = 7, weeks: int = ERROR_WEEKS) -> int:
    """Days of recent history :func:`seasonal_naive_forecast` uses: ``weeks`` of errors at the
    longest lag the horizon needs (``ceil(horizon / season)`` seasons) plus that lag."""
    return season * (weeks + math.ceil(int(horizon) / season))


def seasonal_naive_forecast(
    panel: pd.DataFrame,
    horizon: int,
    levels: Sequence[int] = (80, 95),
    *,
    target_col: str,
    id_col: str = "series_id",
    time_col: str = "date",
    season: int = 7,
    weeks: int = ERROR_WEEKS,
    unknown_col: str | None = "is_unknown",
) -> pd.DataFrame:
    """Seasonal-naive forecasts with empirical prediction intervals, for every series of
    ``panel`` (daily rows; each series' rows consecutive days).

    Point: :func:`seasonal_naive` (day ``T+k`` repeats the day ``season x w`` days earlier,
    ``w = ceil(k / season)``); a series with fewer than ``season`` days repeats its mean
    instead. Everything is clipped at 0 (sales are never negative).

    Interval for step ``k`` at level ``l``: the point plus the quantiles of the series' own
    errors ``y_t - y_{t - season x w}`` over its last ``n = weeks x season`` days, i.e. of
    exactly the error this forecast makes, measured on the recent past; the quantiles are
    ``1 - u`` and ``u = (1 + l/100) / 2 x (n + 1) / n`` (split-conformal's finite-sample
    correction: without it 56 errors cover about 92% at level 95). Then
    ``lower <= forecast <= upper`` is enforced (a trending series' errors can all have one
    sign) and ``lower`` is clipped at 0. When a series is too short for errors at lag ``w``,
    it uses those of the longest lag it has (a bit narrow for the far steps); with no
    seasonal error at all (``season`` days or fewer), the interval is the point plus the
    quantiles of its values' deviations from their mean (its spread: zero width for a
    single day). Days flagged ``unknown_col`` (when the column exists) are filled values, not
    actuals: no error starts or ends on them.

    Returns ``id_col, time_col, step, forecast`` and ``lower_<l>, upper_<l>`` per level,
    sorted by series and day.
    """
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    levels = sorted({int(lv) for lv in levels})
    if any(not 0 < lv < 100 for lv in levels):
        raise ValueError(f"levels must be between 0 and 100, got {levels}")
    interval_cols = [f"{side}_{lv}" for lv in levels for side in ("lower", "upper")]
    if panel.empty:
        return pd.DataFrame(columns=[id_col, time_col, "step", "forecast", *interval_cols])
    codes, uids = pd.factorize(panel[id_col].astype(str), sort=True)
    days = pd.to_datetime(panel[time_col]).to_numpy(dtype="datetime64[D]").astype(np.int64)
    order = np.lexsort((days, codes))
    codes, days = codes[order], days[order]
    y = panel[target_col].to_numpy(dtype=np.float64)[order]
    actual = y.copy()
    if unknown_col and unknown_col in panel.columns:
        actual[panel[unknown_col].to_numpy(dtype=bool)[order]] = np.nan
    n_series = len(uids)
    counts = np.bincount(codes, minlength=n_series)

    dated = pd.DataFrame({"uid": codes, "ds": days.astype("datetime64[D]"), "y": y})
    naive = seasonal_naive(dated, horizon, season=season, id_col="uid")
    point = naive["y_hat"].to_numpy(dtype=np.float64).reshape(n_series, horizon)
    short = counts < season
    if short.any():
        means = np.bincount(codes, weights=y, minlength=n_series) / np.maximum(counts, 1)
        point[short] = means[short, None]
    point = np.clip(point, 0.0, None)

    # The split-conformal finite-sample correction for a full window's n errors: plain
    # quantiles of 56 errors cover about 92% at 95% (77% at 80%); these cover the level.
    n_errors = weeks * season
    upper_q = [min(1.0, (1 + lv / 100) / 2 * (n_errors + 1) / n_errors) for lv in levels]
    quantiles = [1 - q for q in upper_q] + upper_q
    last_day = np.maximum.reduceat(days, np.flatnonzero(np.r_[True, np.diff(codes) != 0]))
    in_window = days > last_day[codes] - weeks * season
    # Fallback for a series without seasonal errors: deviations from its recent mean.
    recent = pd.Series(actual[in_window])
    recent_codes = codes[in_window]
    centred = recent - recent.groupby(recent_codes).transform("mean")
    spread = _group_quantiles(centred.to_numpy(), recent_codes, n_series, quantiles)

    n_lags = math.ceil(horizon / season)
    tables: list[np.ndarray] = []
    for w in range(1, n_lags + 1):
        lag = season * w
        errors = np.full(len(y), np.nan)
        if len(y) > lag:
            # Consecutive rows of one series are consecutive days, so `lag` rows back is
            # `lag` days back exactly when the series and the day difference agree.
            same = (codes[lag:] == codes[:-lag]) & (days[lag:] - days[:-lag] == lag)
            errors[lag:] = np.where(same, actual[lag:] - actual[:-lag], np.nan)
        errors[~in_window] = np.nan
        table = _group_quantiles(errors, codes, n_series, quantiles)
        if tables:
            # Too short for this lag: the longest lag it has errors for.
            table = np.where(np.isnan(table), tables[-1], table)
        tables.append(table)
    by_lag = np.stack(tables)  # (lag, series, quantile)
    by_lag = np.where(np.isnan(by_lag), spread[None, :, :], by_lag)
    by_lag = np.nan_to_num(by_lag, nan=0.0)  # no actual day at all: a zero-width interval

    steps = np.arange(1, horizon + 1)
    lag_index = (steps - 1) // season  # w - 1
    per_step = by_lag[lag_index].transpose(1, 0, 2)  # (series, step, quantile)
    out = pd.DataFrame(
        {
            id_col: np.repeat(np.asarray(uids, dtype=object), horizon),
            time_col: (
                np.repeat(last_day.astype("datetime64[D]"), horizon)
                + np.tile(steps, n_series).astype("timedelta64[D]")
            ).astype("datetime64[ns]"),
            "step": np.tile(steps, n_series),
            "forecast": point.ravel(),
        }
    )
    flat_point = point.ravel()
    n_levels = len(levels)
    for i, lv in enumerate(levels):
        lower = flat_point + per_step[:, :, i].ravel()
        upper = flat_point + per_step[:, :, n_levels + i].ravel()
        out[f"lower_{lv}"] = np.clip(np.minimum(lower, flat_point), 0.0, None)
        out[f"upper_{lv}"] = np.maximum(upper, flat_point)
    return out


def _group_quantiles(
    values: np.ndarray, groups: np.ndarray, n_groups: int, quantiles: Sequence[float]
) -> np.ndarray:
    """``(n_groups, len(quantiles))`` quantiles of each group's non-missing values (NaN for a
    group without any)."""
    out = np.full((n_groups, len(quantiles)), np.nan)
    ok = ~np.isnan(values)
    if not ok.any() or not len(quantiles):
        return out
    qs = np.asarray(quantiles, dtype=np.float64)
    table = pd.Series(values[ok]).groupby(groups[ok]).quantile(qs).unstack()
    out[table.index.to_numpy()] = table.reindex(columns=qs).to_numpy()
    return out
