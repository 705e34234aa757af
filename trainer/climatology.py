"""A forecast column's usual value for a day: the fill of forecast days nobody gave it for.

A ``forecast`` column (weather, a footfall estimate) is observed after the day, and a user may
give it for the coming days from a forecast. Where no forecast was given, the ``climatology``
rule fills it with what the column usually is at that time of year, moved to the series' own
level: the series' mean over its last :data:`RECENT_DAYS` days, plus how much the column's
day-of-year profile (all series, all years of training, smoothed over +-:data:`SMOOTH_DAYS`
days) changes from those recent days to the forecast day. With less than a year of training
days there is no profile and the fill is the recent mean. Never NaN: a series without any value
falls back to the column's training mean.
"""

from __future__ import annotations

__all__ = [
    "PROFILE_DAYS",
    "RECENT_DAYS",
    "SMOOTH_DAYS",
    "climatology_fill",
    "day_of_year_profile",
    "recent_column",
    "recent_means",
]

import numpy as np
import pandas as pd

PROFILE_DAYS = 366
RECENT_DAYS = 28
SMOOTH_DAYS = 7
# A profile needs every time of year: at least this many training days between first and last.
MIN_SPAN_DAYS = 365


def recent_column(name: str) -> str:
    """The series-state column holding a forecast column's recent mean."""
    return f"{name}__recent"


def _doy(days: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Day of year, 0..365 (a leap year's days after February shift by one: within the
    smoothing, that is noise)."""
    index = pd.DatetimeIndex(days)
    return np.asarray(index.dayofyear.to_numpy() - 1, dtype=np.int64)


def day_of_year_profile(dates: pd.Series, values: pd.Series) -> tuple[float, ...]:
    """The column's mean for each day of the year, smoothed, or ``()`` without a full year."""
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    when = pd.DatetimeIndex(pd.to_datetime(dates))
    ok = ~np.isnan(numeric)
    if not ok.any() or (when[ok].max() - when[ok].min()).days < MIN_SPAN_DAYS:
        return ()
    doy = _doy(when[ok])
    total = np.bincount(doy, weights=numeric[ok], minlength=PROFILE_DAYS)
    count = np.bincount(doy, minlength=PROFILE_DAYS).astype(float)
    # Circular smoothing: 31 December's neighbours are in January.
    kernel = np.ones(2 * SMOOTH_DAYS + 1)
    pad = SMOOTH_DAYS
    total_s = np.convolve(np.r_[total[-pad:], total, total[:pad]], kernel, mode="valid")
    count_s = np.convolve(np.r_[count[-pad:], count, count[:pad]], kernel, mode="valid")
    if (count_s == 0).any():
        return ()
    return tuple(float(v) for v in total_s / count_s)


def recent_means(panel: pd.DataFrame, date: str, column: str) -> pd.Series:
    """Per series: the column's mean over the series' last :data:`RECENT_DAYS` days."""
    last = panel.groupby("series_id", observed=True)[date].transform("max")
    recent = panel[panel[date] > last - pd.Timedelta(days=RECENT_DAYS)]
    values = pd.to_numeric(recent[column], errors="coerce")
    return values.groupby(recent["series_id"], observed=True).mean()


def climatology_fill(
    profile: tuple[float, ...],
    recent: pd.Series,
    last_dates: pd.Series,
    days: pd.Series,
    fallback: float,
) -> pd.Series:
    """Each forecast day's usual value (one row per cell: the series' recent mean, its last
    training day and the day to fill)."""
    base = pd.to_numeric(recent, errors="coerce").to_numpy(dtype=float)
    base = np.where(np.isnan(base), fallback, base)
    if profile:
        prof = np.asarray(profile, dtype=float)
        ends = pd.DatetimeIndex(pd.to_datetime(last_dates))
        # The profile's mean over the recent window: what the recent mean is "usually".
        offsets = np.arange(RECENT_DAYS)
        window = (_doy(ends)[:, None] - offsets[None, :]) % PROFILE_DAYS
        usual_now = prof[window].mean(axis=1)
        base = base + prof[_doy(pd.DatetimeIndex(pd.to_datetime(days)))] - usual_now
    return pd.Series(base, dtype=object)
