"""Derived covariate features: days since / until an event flag, a value vs its recent mean.

They are computed from known-in-advance columns only, never from the target, and the same way
for training rows and forecast days (:func:`add_derived_features`); the forecaster keeps the
end of history (:func:`covariate_tail`) so the first forecast days see the last events.
"""

from __future__ import annotations

__all__ = [
    "EVENT_MAX_RATE",
    "REL_WINDOW",
    "SINCE_CAP",
    "TAIL_DAYS",
    "UNTIL_CAP",
    "add_derived_features",
    "covariate_tail",
]

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from trainer.columns import ID, TIME

if TYPE_CHECKING:
    from trainer.feature_spec import FeatureSpec

# Derived covariate features look this many days back / ahead.
SINCE_CAP = 28
UNTIL_CAP = 7
REL_WINDOW = 28
TAIL_DAYS = REL_WINDOW
# A flag counts as an event (gets since/until features) when it is on for at most this share
# of training days: promotions and holidays qualify, is_weekend does not.
EVENT_MAX_RATE = 0.2


def _group_bounds(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by series: each row's series start and end (exclusive) positions."""
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    sizes = ends - starts
    return np.repeat(starts, sizes), np.repeat(ends, sizes)


def add_derived_features(frame: pd.DataFrame, spec: FeatureSpec) -> None:
    """Add the spec's derived covariate features to ``frame`` in place.

    ``frame`` is sorted by series and day with consecutive days (the daily panel, or a tail of
    it followed by the forecast days). ``until`` looks ahead: where a series' known values end
    before the look-ahead does, the value is unknown (NaN) unless an event was found first.
    Everything is computed from known-in-advance columns, never from the target.
    """
    if not spec.derived:
        return
    ids = frame[ID].to_numpy()
    starts, ends = _group_bounds(ids)
    pos = np.arange(len(frame), dtype=np.int64)
    for feat in spec.derived:
        values = frame[feat.source].to_numpy(dtype=np.float64)
        if feat.kind == "since":
            on = np.where(values > 0.5, pos, -1)
            last_on = pd.Series(on).groupby(starts).cummax().to_numpy()
            out = np.where(last_on >= starts, pos - last_on, SINCE_CAP).astype(np.float64)
            frame[feat.name] = np.minimum(out, SINCE_CAP)
        elif feat.kind == "until":
            big = np.iinfo(np.int64).max
            on = np.where(values > 0.5, pos, big)
            rev = pd.Series(on[::-1]).groupby(starts[::-1]).cummin().to_numpy()[::-1]
            ahead = np.where(rev < ends, rev - pos, -1).astype(np.float64)
            # No event within reach: "at least UNTIL_CAP" if the known days reach that far.
            reach = (ends - 1 - pos) >= UNTIL_CAP
            out = np.where(
                ahead >= 0, np.minimum(ahead, UNTIL_CAP), np.where(reach, UNTIL_CAP, np.nan)
            )
            frame[feat.name] = out
        elif feat.kind.startswith("share"):
            # Share of the previous w days (not today) the flag was on.
            w = int(feat.kind[len("share") :])
            frame[feat.name] = _window_mean((values > 0.5).astype(np.float64), pos, starts, w, 1)
        else:  # rel: today's value over its mean of the last REL_WINDOW days (today included)
            mean = _window_mean(values, pos, starts, REL_WINDOW, 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                frame[feat.name] = np.where(mean > 0, values / mean, np.nan)


def _window_mean(
    values: np.ndarray, pos: np.ndarray, starts: np.ndarray, window: int, skip: int
) -> np.ndarray:
    """Per row: mean of the series' values over days ``t-skip-window+1 .. t-skip`` (NaN-aware,
    clipped at the series start; NaN where no day is available)."""
    clean = np.nan_to_num(values)
    present = (~np.isnan(values)).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(clean)])
    ccount = np.concatenate([[0.0], np.cumsum(present)])
    hi = np.maximum(pos + 1 - skip, starts)
    lo = np.maximum(hi - window, starts)
    total = csum[hi] - csum[lo]
    count = ccount[hi] - ccount[lo]
    return np.asarray(np.where(count > 0, total / np.maximum(count, 1.0), np.nan))


def covariate_tail(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame | None:
    """The last :data:`TAIL_DAYS` days of each series' derived-feature sources (model frame).

    The forecaster keeps it so derived features of the first forecast days (days since the
    last promotion, price vs its trailing mean) see the end of history.
    """
    sources = sorted({d.source for d in spec.derived})
    if not sources:
        return None
    last = frame.groupby(ID, sort=False, observed=True)[TIME].transform("max")
    keep = frame[TIME] > last - pd.Timedelta(days=TAIL_DAYS)
    return frame.loc[keep, [ID, TIME, *sources]].reset_index(drop=True)
