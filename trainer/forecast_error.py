"""A realistic forecast error for the held-out days of ``forecast`` columns (weather).

A backtest knows the actual weather of the days it holds out; given as is, it is a perfect
forecast, and the backtest's accuracy is better than any live run's. :func:`add_forecast_error`
replaces those actual values by what a weather forecast made at the window's cut-off could
have said: the actual plus an error that

- is zero-mean and seeded (the same seed and cut-off give the same errors);
- has a size of ``noise`` x the column's standard deviation over the training days around its
  seasonal level (:func:`anomaly_std`: the spread of each day's value around the centred
  31-day mean of its series, i.e. what a forecast can get wrong; the season itself is known
  to any forecaster), so one number fits temperature in degrees and rainfall in mm, and a
  temperature's yearly swing does not make its forecast look worse than it is;
- grows with the lead time ``h`` (days after the cut-off) as ``sqrt(h / 7)``
  (:func:`lead_time_factor`): 0.38 of that size on day 1, 1.0 on day 7, 2.0 on day 28, the
  shape of a forecast's error variance growing about linearly with the lead time;
- is correlated from one day to the next (an AR(1) with :data:`AR_PHI` = 0.7): a forecast
  that has a warm spell wrong has it wrong for several days, not one day in two;
- stays a value the column can take: clipped to the range the column took on the training
  days (no negative rainfall, no humidity above its observed maximum) and rounded to as many
  decimals as the training values have (an ``INT64`` column stays whole).

An amount that is often nothing (rainfall, snowfall: at least :data:`FLOOR_SHARE` of the
training days at its minimum, which is >= 0) gets a multiplicative error instead: its amount
above that minimum times ``exp(s e - s^2 / 2)``, with ``s = noise x sqrt(h / 7)`` and ``e`` the
same AR(1) (a mean-one factor: 0.5 is about +-50% of the amount at 7 days). An additive error
clipped at 0 would not be zero-mean there: it would forecast rain on most dry days (every
positive draw survives the clip, no negative one does), e.g. 3 mm a day over a dry November.
So a dry day stays dry (the forecast knows whether it rains, and gets how much wrong), which
is kinder to the forecast than a real one, whose false alarms and misses it leaves out.

Only numeric forecast columns get an error; a ``BOOL`` or ``STRING`` forecast column keeps its
actual values (and stays a perfect forecast). ``noise = 0`` returns the values unchanged.
"""

from __future__ import annotations

__all__ = [
    "AR_PHI",
    "ForecastError",
    "add_forecast_error",
    "anomaly_std",
    "describe",
    "lead_time_factor",
    "noisy_columns",
    "parse_noise",
]

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sf_contract import Column
from trainer.errors import TrainerError

# Day-to-day correlation of the error: a forecast's misses come in spells of a few days.
AR_PHI = 0.7
# The lead time at which the error's size is noise x the column's standard deviation.
REFERENCE_LEAD_DAYS = 7
_NUMERIC = ("FLOAT64", "INT64")
# The window of a column's seasonal level, whose spread around it sizes the error.
LEVEL_WINDOW_DAYS = 31
# A column at its (non-negative) minimum on at least this share of training days is an amount
# that is often nothing (rain, snow): its error is multiplicative.
FLOOR_SHARE = 0.2


def parse_noise(value: object) -> float:
    """``value`` as a noise size: a finite number >= 0, else a :class:`TrainerError`."""
    try:
        noise = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TrainerError(f"weather noise must be a number >= 0, got {value!r}") from None
    if not math.isfinite(noise) or noise < 0:
        raise TrainerError(f"weather noise must be a finite number >= 0, got {value!r}")
    return noise


def lead_time_factor(lead_days: np.ndarray | Sequence[int]) -> np.ndarray:
    """How much larger the error is ``lead_days`` after the cut-off than at 7 days."""
    lead = np.asarray(lead_days, dtype=np.float64)
    if (lead < 1).any():
        raise TrainerError("forecast error lead times start at day 1 after the cut-off")
    return np.sqrt(lead / REFERENCE_LEAD_DAYS)


def anomaly_std(history: pd.DataFrame, column: str, date_column: str) -> float:
    """The standard deviation of ``column`` around its seasonal level on the training days.

    The level is each series' centred :data:`LEVEL_WINDOW_DAYS`-day mean; the deviations of
    every series are pooled. NaN when fewer than two values are known.
    """
    values = pd.to_numeric(history[column], errors="coerce")
    frame = pd.DataFrame(
        {"id": history["series_id"].astype(str).to_numpy(), "d": history[date_column].to_numpy()}
    ).assign(v=values.to_numpy(dtype=np.float64))
    frame = frame.sort_values(["id", "d"], kind="stable")
    level = frame.groupby("id", sort=False)["v"].transform(
        lambda v: v.rolling(LEVEL_WINDOW_DAYS, center=True, min_periods=1).mean()
    )
    deviations = (frame["v"] - level).dropna()
    return float(deviations.std(ddof=0)) if len(deviations) > 1 else float("nan")


def noisy_columns(columns: Sequence[Column]) -> list[str]:
    """The forecast columns an error applies to: the numeric ones."""
    return [c.name for c in columns if c.type in _NUMERIC]


def describe(noise: float, seed: int, columns: Sequence[Column]) -> dict[str, Any]:
    """The error's settings, for a report (sizes in each column's standard deviations)."""
    noisy = noisy_columns(columns) if noise > 0 else []
    return {
        "noise": noise,
        "seed": seed,
        "relative_to": "each column's standard deviation over the training days around its "
        f"centred {LEVEL_WINDOW_DAYS}-day mean",
        "lead_time_growth": f"sqrt(h / {REFERENCE_LEAD_DAYS})",
        "ar1_phi": AR_PHI,
        "clipped_to": "the column's range over the training days",
        "amounts_often_nothing": f"columns at their minimum >= 0 on >= {FLOOR_SHARE:.0%} of "
        "training days (rain, snow): their amount above it x exp(s e - s^2 / 2), "
        "s = noise x sqrt(h / 7)",
        "columns": noisy,
        "perfect_forecast_columns": [c.name for c in columns if c.name not in noisy],
    }


@dataclass(frozen=True)
class ForecastError:
    """The error applied: its settings and, per column, its size at 7 days ahead."""

    noise: float
    seed: int
    columns: dict[str, float]  # column -> error std at 7 days ahead, in the column's units
    perfect: list[str]  # forecast columns given their actual values (non-numeric ones)
    multiplicative: tuple[str, ...] = ()  # amounts often nothing: columns[c] is a log-sd

    def error_std_at_7_days(self) -> dict[str, float]:
        """Each column's error size 7 days ahead: its standard deviation in the column's units,
        or for an amount often nothing (:attr:`multiplicative`) the log-sd of its factor."""
        return {k: round(v, 6) for k, v in self.columns.items()}

    def summary(self) -> str:
        """``temp 1.53, rain_mm x0.5``: the sizes at 7 days, a factor's log-sd marked x."""
        return ", ".join(
            f"{k} x{v:.3g}" if k in self.multiplicative else f"{k} {v:.3g}"
            for k, v in self.columns.items()
        )


def add_forecast_error(
    future: pd.DataFrame,
    history: pd.DataFrame,
    columns: Sequence[Column],
    *,
    date_column: str,
    cutoff: pd.Timestamp,
    noise: float,
    seed: int = 0,
) -> tuple[pd.DataFrame, ForecastError]:
    """``future`` with each numeric forecast column's values moved by a forecast error.

    Args:
        future: the held-out days (``series_id``, ``date_column`` and the columns), all after
            ``cutoff``.
        history: the training days (up to ``cutoff``; ``series_id``, ``date_column``, the
            columns): each column's spread, range and decimals come from here only, so nothing
            after the cut-off sizes the error.
        columns: the contract's forecast columns.
        cutoff: the forecast origin; a row's lead time is its days after it.
        noise: the error's size at 7 days ahead, in the column's standard deviations (>= 0).
        seed: with ``cutoff`` and the column's name, seeds the error: reproducible, different
            per window and per column.

    Returns:
        The new frame (``future`` itself is not modified) and what was applied.
    """
    noise = parse_noise(noise)
    out = future.copy()
    names = noisy_columns(columns)
    numeric = [c for c in columns if c.name in names and c.name in out.columns]
    perfect = [c.name for c in columns if c.name not in names]
    sizes: dict[str, float] = {}
    if noise == 0 or out.empty or not numeric:
        return out, ForecastError(noise, seed, dict.fromkeys(names, 0.0), perfect)
    cutoff = pd.Timestamp(cutoff)
    dates = pd.to_datetime(out[date_column])
    lead = (dates - cutoff).dt.days.to_numpy()
    if (lead < 1).any():
        raise TrainerError(f"the forecast days must all be after the cut-off {cutoff.date()}")
    # Rows in series and date order: the AR(1) runs along each series' consecutive days.
    order = np.lexsort((dates.to_numpy(), out["series_id"].astype(str).to_numpy()))
    series = out["series_id"].astype(str).to_numpy()[order]
    new_series = np.r_[True, series[1:] != series[:-1]]
    gaps = np.r_[1, np.diff(lead[order])]
    # A new series, or a day that does not follow the previous row, starts a new run.
    starts = new_series | (gaps != 1)
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    run_position = np.arange(len(order)) - run_start
    factor = lead_time_factor(lead[order])
    multiplicative: list[str] = []
    for col in numeric:
        past = pd.to_numeric(history[col.name], errors="coerce").dropna()
        floor = float(past.min()) if len(past) else float("nan")
        amount = bool(len(past) and floor >= 0 and (past == floor).mean() >= FLOOR_SHARE)
        size = noise if amount else noise * anomaly_std(history, col.name, date_column)
        sizes[col.name] = size
        if not math.isfinite(size) or size == 0:
            sizes[col.name] = 0.0
            continue
        rng = np.random.default_rng([seed, _stable(col.name), int(cutoff.toordinal())])
        shocks = rng.standard_normal(len(order))
        error = _ar1(shocks, run_position)
        values = pd.to_numeric(out[col.name], errors="coerce").to_numpy(dtype=np.float64)
        if amount:
            multiplicative.append(col.name)
            spread = size * factor
            moved = floor + (values[order] - floor) * np.exp(spread * error - spread**2 / 2)
        else:
            moved = values[order] + size * factor * error
        moved = np.clip(moved, float(past.min()), float(past.max()))
        moved = np.round(moved, 0 if col.type == "INT64" else _decimals(past))
        values[order] = moved  # a missing actual stays missing: the fill rule decides
        if col.type == "INT64":
            out[col.name] = pd.array(np.round(values), dtype="Int64")
        else:
            out[col.name] = values
    return out, ForecastError(noise, seed, sizes, perfect, tuple(multiplicative))


def _ar1(shocks: np.ndarray, run_position: np.ndarray) -> np.ndarray:
    """A unit-variance AR(1) of the shocks along each run of consecutive days.

    A run's first day is its shock (the stationary distribution); each next day keeps
    :data:`AR_PHI` of the day before. One pass per position in a run (at most the horizon),
    each over every series at once.
    """
    error = shocks.copy()
    keep, fresh = AR_PHI, math.sqrt(1 - AR_PHI**2)
    for k in range(1, int(run_position.max(initial=0)) + 1):
        at = np.flatnonzero(run_position == k)
        error[at] = keep * error[at - 1] + fresh * shocks[at]
    return error


def _decimals(values: pd.Series, most: int = 6) -> int:
    """How many decimals the values are written with (at most ``most``)."""
    arr = values.to_numpy(dtype=np.float64)
    for d in range(most + 1):
        if np.allclose(arr, np.round(arr, d), rtol=0, atol=1e-9):
            return d
    return most


def _stable(name: str) -> int:
    # hash() of a string changes from one process to the next; the error must not.
    return zlib.crc32(name.encode("utf-8"))
