"""The model's plain forecast of every series, computed once per model and sliced per request.

A recursive forecast of ``h`` days is the first ``h`` days of a longer one, each series is
forecast independently of the others and each interval level independently of the others, so
a slice of this forecast *is* ``Forecaster.forecast(h, series_ids=[s], levels=[l])``. Each day
is kept as JSON text as well, so a ~0.6 s forecaster call becomes a join of strings
(docs/serving.md has the figures).
"""

from __future__ import annotations

__all__ = ["EXTRA_LEVELS_KEPT", "BaseForecasts", "LevelSnapshot"]

import collections
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from serving.encoding import Bound, SeriesForecast, finite_or_none, json_list, point_json

if TYPE_CHECKING:
    from trainer.model import Forecaster

# Levels outside the model's defaults that stay precomputed; older ones are dropped first.
EXTRA_LEVELS_KEPT = 8

# Per series: its lower bounds and its upper bounds, one per day.
_LevelBounds = tuple[list[list[Bound]], list[list[Bound]]]


@dataclass(frozen=True)
class LevelSnapshot:
    """The bounds and prebuilt JSON days of some levels, as they were when it was taken."""

    bounds: dict[int, _LevelBounds]
    fragments: dict[int, list[list[str]]]


class BaseForecasts:
    """The model's forecast of every series for its whole horizon, computed once per model.

    Default levels are computed at load; other levels are added on first use (a few are
    kept). Lists are never mutated after they are published, so threads read them freely.
    """

    def __init__(
        self,
        forecaster: Forecaster,
        series_index: dict[str, int],
        horizon: int,
        levels: Sequence[int],
        slots: threading.BoundedSemaphore,
    ) -> None:
        self._fc = forecaster
        self._index = series_index
        self.horizon = horizon
        self.default_levels = tuple(sorted(set(levels)))
        self._slots = slots
        self._lock = threading.Lock()
        n = len(series_index)
        self.dates: list[list[str]] = [[] for _ in range(n)]
        self.point: list[list[float]] = [[] for _ in range(n)]
        self._bounds: collections.OrderedDict[int, _LevelBounds] = collections.OrderedDict()
        # Per level and series, each day's point already as JSON text: formatting floats is
        # most of a big answer's cost, and a cached answer is then a join of strings.
        self._fragments: dict[int, list[list[str]]] = {}
        self._compute(self.default_levels, first=True)

    def _compute(self, levels: Sequence[int], *, first: bool = False) -> None:
        with self._slots:
            frame = self._fc.forecast(self.horizon, levels=list(levels)).frame
        h = self.horizon
        sids = frame["series_id"].astype(str).to_numpy()[::h]
        order = [self._index[sid] for sid in sids]
        point = frame["forecast"].to_numpy(dtype=float)
        if not np.isfinite(point).all():
            raise RuntimeError("the model's base forecast has non-finite values")
        if first:
            dates = frame["date"].dt.strftime("%Y-%m-%d").tolist()
            values = point.tolist()
            for k, s in enumerate(order):
                self.dates[s] = dates[k * h : (k + 1) * h]
                self.point[s] = values[k * h : (k + 1) * h]
        n = len(self._index)
        for lv in levels:
            lower = finite_or_none(frame[f"lower_{lv}"].tolist())
            upper = finite_or_none(frame[f"upper_{lv}"].tolist())
            lows: list[list[Bound]] = [[] for _ in range(n)]
            highs: list[list[Bound]] = [[] for _ in range(n)]
            for k, s in enumerate(order):
                lows[s] = lower[k * h : (k + 1) * h]
                highs[s] = upper[k * h : (k + 1) * h]
            self._bounds[lv] = (lows, highs)
            self._fragments[lv] = [
                [
                    point_json(d, f, lo, hi)
                    for d, f, lo, hi in zip(
                        self.dates[s], self.point[s], lows[s], highs[s], strict=True
                    )
                ]
                for s in range(n)
            ]

    def snapshot(self, levels: Sequence[int]) -> LevelSnapshot:
        """Bounds and prebuilt points for ``levels`` (computed now if missing).

        The caller keeps the snapshot: a level evicted meanwhile by another request stays
        readable through it.
        """
        if all(lv in self.default_levels for lv in levels):
            # Default levels are never evicted: no lock on the hot path.
            return LevelSnapshot(
                {lv: self._bounds[lv] for lv in levels},
                {lv: self._fragments[lv] for lv in levels},
            )
        with self._lock:
            missing = [lv for lv in levels if lv not in self._bounds]
            if missing:
                self._compute(missing)
            for lv in levels:
                self._bounds.move_to_end(lv)
            extra = [lv for lv in self._bounds if lv not in self.default_levels]
            for lv in extra[: max(0, len(extra) - EXTRA_LEVELS_KEPT)]:
                self._bounds.pop(lv)
                self._fragments.pop(lv)
            return LevelSnapshot(
                {lv: self._bounds[lv] for lv in levels},
                {lv: self._fragments[lv] for lv in levels},
            )

    def forecasts_json(self, snap: LevelSnapshot, series: int, horizon: int, level: int) -> str:
        """The ``forecasts`` list of one series at one level, as JSON text."""
        return json_list(snap.fragments[level][series][:horizon])

    def series_forecast(self, snap: LevelSnapshot, series: int, horizon: int) -> SeriesForecast:
        """The first ``horizon`` days of one series at the snapshot's levels."""
        return SeriesForecast(
            dates=self.dates[series][:horizon],
            point=self.point[series][:horizon],
            bounds={
                lv: (lo[series][:horizon], hi[series][:horizon])
                for lv, (lo, hi) in snap.bounds.items()
            },
        )
