"""Requests -> forecasts for one loaded model, through the trainer's public ``Forecaster`` API.

Two paths give the same numbers (``tests/serving/test_predict.py`` compares them with the
trainer's own ``predict``):

* **plain instances** (no ``future``, no new ``history``) are read from the model's base
  forecast, computed once when the model is loaded: every series, the trained horizon, the
  default interval levels (others are added on first use). A recursive forecast of ``h`` days
  is the first ``h`` days of a longer one and each series is forecast independently, so a
  slice of the base forecast *is* ``Forecaster.forecast(h, series_ids=[s])``. Each day is
  kept as JSON text, so a ~0.6 s forecaster call becomes a join of strings (docs/serving.md
  has the figures).
* **instances with future covariates or new actuals** go to ``Forecaster.forecast``: one
  call per horizon for the whole request (``series_ids=[...]``, the instances' rows
  concatenated), not one call per instance. A series asked for twice in one request (two
  what-if scenarios) is split into a second call, since one call holds one state per series.

Everything here is synchronous CPU work; the app runs it in a worker thread.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_LEVEL",
    "BaseForecasts",
    "PredictStats",
    "Predictor",
    "quiet_expected_warnings",
]

import collections
import datetime as dt
import itertools
import json
import math
import re
import threading
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from serving.errors import RequestError
from serving.schemas import Instance, Parameters, PredictRequest

DEFAULT_LEVEL = 80
# Levels outside the model's defaults that stay precomputed; older ones are dropped first.
_EXTRA_LEVELS_KEPT = 8
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ONE_DAY = dt.timedelta(days=1)


def quiet_expected_warnings() -> None:
    """Silence, process-wide, the warning mlforecast gives for every step of a forecast.

    Short series have null lags by design (LightGBM handles them). The trainer hides the
    warning with ``warnings.catch_warnings``, which is not thread-safe (it leaks once forecasts
    run in worker threads) and resets the warnings machinery on every call; one filter set
    once is quieter and measurably cheaper (docs/serving.md).
    """
    warnings.filterwarnings("ignore", message="Found null values", category=UserWarning)


def _key_text(value: Any) -> str:
    # The trainer names series by key text; integers must not pick up a ".0" on the way.
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _py(value: Any) -> Any:
    """A numpy scalar as the plain Python value JSON understands."""
    return value.item() if hasattr(value, "item") else value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dumps(value: Any) -> str:
    # allow_nan=False: NaN/inf are not JSON; the callers turn them into null first.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _finite_or_none(values: Iterable[float]) -> list[float | None]:
    # NaN marks "no interval" (a series too short for conformal calibration).
    return [v if math.isfinite(v) else None for v in values]


@dataclass
class PredictStats:
    """What one request cost, for the metrics."""

    cached: int = 0
    computed: int = 0
    forecaster_calls: int = 0


@dataclass
class _Parsed:
    index: int
    series: int
    horizon: int
    future: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def plain(self) -> bool:
        return not self.future and not self.history


@dataclass(frozen=True)
class _LevelView:
    bounds: dict[int, tuple[list[list], list[list]]]
    fragments: dict[int, list[list[str]]]


@dataclass
class _Block:
    """``horizon`` days of one series: dates, point forecast and bounds per level."""

    dates: list[str]
    point: list[float]
    bounds: dict[int, tuple[list[float | None], list[float | None]]]


class BaseForecasts:
    """The model's forecast of every series for its whole horizon, computed once per model.

    Default levels are computed at load; other levels are added on first use (a few are
    kept). Lists are never mutated after they are published, so threads read them freely.
    """

    def __init__(
        self,
        forecaster: Any,
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
        self._bounds: collections.OrderedDict[int, tuple[list[list], list[list]]] = (
            collections.OrderedDict()
        )
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
            lower = _finite_or_none(frame[f"lower_{lv}"].tolist())
            upper = _finite_or_none(frame[f"upper_{lv}"].tolist())
            lows: list[list] = [[] for _ in range(n)]
            highs: list[list] = [[] for _ in range(n)]
            for k, s in enumerate(order):
                lows[s] = lower[k * h : (k + 1) * h]
                highs[s] = upper[k * h : (k + 1) * h]
            self._bounds[lv] = (lows, highs)
            self._fragments[lv] = [
                [
                    _dumps({"date": d, "forecast": f, "lower": lo, "upper": hi})
                    for d, f, lo, hi in zip(
                        self.dates[s], self.point[s], lows[s], highs[s], strict=True
                    )
                ]
                for s in range(n)
            ]

    def snapshot(self, levels: Sequence[int]) -> _LevelView:
        """Bounds and prebuilt points for ``levels`` (computed now if missing).

        The caller keeps the snapshot: a level evicted meanwhile by another request stays
        readable through it.
        """
        if all(lv in self.default_levels for lv in levels):
            # Default levels are never evicted: no lock on the hot path.
            return _LevelView(
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
            for lv in extra[: max(0, len(extra) - _EXTRA_LEVELS_KEPT)]:
                self._bounds.pop(lv)
                self._fragments.pop(lv)
            return _LevelView(
                {lv: self._bounds[lv] for lv in levels},
                {lv: self._fragments[lv] for lv in levels},
            )

    def forecasts_json(self, view: _LevelView, series: int, horizon: int, level: int) -> str:
        """The ``forecasts`` list of one series at one level, as JSON text."""
        return "[" + ",".join(view.fragments[level][series][:horizon]) + "]"

    def block(self, view: _LevelView, series: int, horizon: int) -> _Block:
        return _Block(
            dates=self.dates[series][:horizon],
            point=self.point[series][:horizon],
            bounds={
                lv: (lo[series][:horizon], hi[series][:horizon])
                for lv, (lo, hi) in view.bounds.items()
            },
        )


class Predictor:
    """Validates requests against one model's contract and answers them."""

    def __init__(
        self,
        forecaster: Any,
        *,
        version: str,
        cache: bool = True,
        max_concurrent_forecasts: int = 2,
    ) -> None:
        self.forecaster = forecaster
        self.version = version
        contract = forecaster.contract
        self.contract = contract
        self.keys: list[str] = list(contract.series_keys)
        self.date_column: str = contract.date_column
        self.target: str = contract.target
        self.columns = {c.name: c for c in contract.columns}
        self.known: list[str] = [c.name for c in contract.known_columns]
        self._panel_extra = [c.name for c in contract.known_columns + contract.static_columns]
        self.max_horizon = int(forecaster.config.horizon)
        state = forecaster.series
        self.series_ids: list[str] = state["series_id"].astype(str).tolist()
        # Column by column: a single-series model has no key columns (and one series).
        columns = {k: state[k].tolist() for k in self.keys}
        self.key_values: list[dict[str, Any]] = [
            {k: _py(columns[k][s]) for k in self.keys} for s in range(len(self.series_ids))
        ]
        # Each prediction's JSON up to its forecasts: '{"store_id":"S1",...,"forecasts":'.
        self._heads = [
            _dumps({**kv, "series_id": sid})[:-1] + ',"forecasts":'
            for kv, sid in zip(self.key_values, self.series_ids, strict=True)
        ]
        self._lookup: dict[tuple[str, ...], int] = {
            tuple(_key_text(v) for v in kv.values()): s for s, kv in enumerate(self.key_values)
        }
        self.last_dates: list[dt.date] = [
            pd.Timestamp(d).date() for d in state["last_date"].tolist()
        ]
        self.default_levels = sorted({DEFAULT_LEVEL, *map(int, forecaster.config.levels)})
        self._slots = threading.BoundedSemaphore(max_concurrent_forecasts)
        index = {sid: s for s, sid in enumerate(self.series_ids)}
        # Computing the base forecast is also the load-time check that the model forecasts.
        self.base = (
            BaseForecasts(forecaster, index, self.max_horizon, self.default_levels, self._slots)
            if cache
            else None
        )
        if self.base is None:
            with self._slots:
                forecaster.forecast(1, series_ids=self.series_ids[:1])

    # ------------------------------------------------------------------ facts

    def describe(self) -> dict[str, Any]:
        """What /ready reports about the model's contract."""
        return {
            "contract": self.contract.name,
            "series_keys": self.keys,
            "date_column": self.date_column,
            "target": self.target,
            "known_columns": self.known,
            "n_series": len(self.series_ids),
            "training_end": max(self.last_dates).isoformat() if self.last_dates else None,
            "max_horizon": self.max_horizon,
            "default_levels": self.default_levels,
            "cache": self.base is not None,
        }

    # ------------------------------------------------------------------ predict

    def predict(self, request: PredictRequest, *, max_instances: int) -> tuple[bytes, PredictStats]:
        """The JSON response body for ``request``; :class:`RequestError` for a bad request."""
        n = len(request.instances)
        if n > max_instances:
            raise RequestError(
                "instances", f"{n} instances; at most {max_instances} per request", status=422
            )
        params = request.parameters or Parameters()
        main = params.level
        extra = sorted(set(params.levels)) if params.levels else None
        levels = sorted({main, *(extra or [])})
        parsed = [self._parse(i, inst) for i, inst in enumerate(request.instances)]

        stats = PredictStats()
        blocks: list[_Block | None] = [None] * n
        texts: list[str | None] = [None] * n  # "forecasts" as JSON text (cached path)
        to_compute = parsed
        if self.base is not None:
            to_compute = [p for p in parsed if not p.plain]
            plain = [p for p in parsed if p.plain]
            if plain:
                view = self.base.snapshot(levels)
                for p in plain:
                    if extra is None:
                        texts[p.index] = self.base.forecasts_json(view, p.series, p.horizon, main)
                    else:
                        blocks[p.index] = self.base.block(view, p.series, p.horizon)
                stats.cached = len(plain)
        if to_compute:
            self._compute(to_compute, levels, blocks, stats)
            stats.computed = len(to_compute)

        # The answer is assembled as text: the same JSON json.dumps would write for
        # {"predictions": [{<keys>, "series_id", "forecasts"}], "model_version"}.
        parts = []
        for p in parsed:
            text = texts[p.index]
            if text is None:
                block = blocks[p.index]
                assert block is not None
                text = _dumps(_points(block, main, extra))
            parts.append(self._heads[p.series] + text + "}")
        body = '{"predictions":[' + ",".join(parts) + '],"model_version":' + _dumps(self.version)
        return (body + "}").encode(), stats

    def _compute(
        self,
        parsed: list[_Parsed],
        levels: list[int],
        blocks: list[_Block | None],
        stats: PredictStats,
    ) -> None:
        by_horizon: dict[int, list[_Parsed]] = collections.defaultdict(list)
        for p in parsed:
            by_horizon[p.horizon].append(p)
        for horizon, group in sorted(by_horizon.items()):
            # One call per horizon; a series asked for again goes to the next round.
            rounds: list[list[_Parsed]] = []
            for p in group:
                for rnd in rounds:
                    if all(q.series != p.series for q in rnd):
                        rnd.append(p)
                        break
                else:
                    rounds.append([p])
            for rnd in rounds:
                self._forecast(rnd, horizon, levels, blocks)
                stats.forecaster_calls += 1

    def _forecast(
        self, parsed: list[_Parsed], horizon: int, levels: list[int], blocks: list[_Block | None]
    ) -> None:
        from trainer.errors import TrainerError

        future = [r for p in parsed for r in self._rows(p, p.future)]
        history = [r for p in parsed for r in self._rows(p, p.history)]
        future_df = self._frame(future, self.known) if future else None
        history_df = self._frame(history, [self.target, *self._panel_extra]) if history else None
        sids = [self.series_ids[p.series] for p in parsed]
        try:
            with self._slots:
                frame = self.forecaster.forecast(
                    horizon,
                    future_df=future_df,
                    new_history=history_df,
                    levels=levels,
                    series_ids=sids,
                ).frame
        except TrainerError as exc:
            # The request was checked above; what is left is the trainer's own word on it.
            raise RequestError("instances", str(exc)) from None
        h = horizon
        order = {sid: k for k, sid in enumerate(frame["series_id"].astype(str).to_numpy()[::h])}
        dates = frame["date"].dt.strftime("%Y-%m-%d").tolist()
        point = frame["forecast"].to_numpy(dtype=float)
        bounds = {
            lv: (
                _finite_or_none(frame[f"lower_{lv}"].tolist()),
                _finite_or_none(frame[f"upper_{lv}"].tolist()),
            )
            for lv in levels
        }
        values = point.tolist()
        for p in parsed:
            k = order[self.series_ids[p.series]]
            lo, hi = k * h, (k + 1) * h
            if not np.isfinite(point[lo:hi]).all():
                raise RequestError(
                    f"instances[{p.index}]",
                    "its history/future values give a non-finite forecast; check their scale",
                )
            blocks[p.index] = _Block(
                dates=dates[lo:hi],
                point=values[lo:hi],
                bounds={lv: (b[0][lo:hi], b[1][lo:hi]) for lv, b in bounds.items()},
            )

    def _rows(self, p: _Parsed, rows: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        ident = {"series_id": self.series_ids[p.series], **self.key_values[p.series]}
        for row in rows:
            yield {**ident, **row}

    def _frame(self, rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
        # The shape trainer.features.read_future_csv gives: Python values in object columns
        # (None = missing, filled by the column's rule), dates as datetime64[ns].
        frame = pd.DataFrame(
            {
                name: pd.Series([r.get(name) for r in rows], dtype=object)
                for name in ["series_id", *self.keys, *columns]
            }
        )
        frame[self.date_column] = pd.to_datetime([r[self.date_column] for r in rows]).astype(
            "datetime64[ns]"
        )
        return frame

    # ------------------------------------------------------------------ validation

    def _parse(self, i: int, inst: Instance) -> _Parsed:
        where = f"instances[{i}]"
        given = inst.model_extra or {}
        unknown = [k for k in given if k not in self.keys]
        if unknown:
            keys = self.keys or "none (a single-series model)"
            raise RequestError(
                f"{where}.{unknown[0]}",
                f"unknown field; an instance has horizon, future, history and the series "
                f"keys, which for this model are {keys}",
            )
        missing = [k for k in self.keys if k not in given]
        if missing:
            raise RequestError(f"{where}.{missing[0]}", "required: a series key of this model")
        key = tuple(_key_text(given[k]) for k in self.keys)
        series = self._lookup.get(key)
        if series is None:
            named = ", ".join(f"{k}={_short(given[k])}" for k in self.keys)
            raise RequestError(
                where, f"unknown series ({named}); the model has {len(self.series_ids)} series"
            )
        horizon = self.max_horizon if inst.horizon is None else inst.horizon
        if horizon > self.max_horizon:
            raise RequestError(
                f"{where}.horizon",
                f"{horizon} is more than the model's trained horizon of {self.max_horizon} days",
            )
        history, last = self._parse_history(where, series, inst.history or [])
        future = self._parse_future(where, inst.future or [], last, horizon)
        return _Parsed(i, series, horizon, future, history)

    def _parse_history(
        self, where: str, series: int, rows: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dt.date]:
        last = self.last_dates[series]
        if not rows:
            return [], last
        parsed = [
            self._row(f"{where}.history[{j}]", row, history=True) for j, row in enumerate(rows)
        ]
        dated = sorted((r[self.date_column], j) for j, r in enumerate(parsed))
        for (d1, _), (d2, j2) in itertools.pairwise(dated):
            if d1 == d2:
                raise RequestError(
                    f"{where}.history[{j2}].{self.date_column}", f"{d2} appears twice"
                )
            if d2 - d1 != _ONE_DAY:
                raise RequestError(
                    f"{where}.history",
                    f"days {d1 + _ONE_DAY} .. {d2 - _ONE_DAY} are missing; history must be "
                    "consecutive days",
                )
        first, newest = dated[0][0], dated[-1][0]
        if newest <= last:
            return [], last  # nothing newer than the model: the forecaster would ignore it
        if first > last + _ONE_DAY:
            raise RequestError(
                f"{where}.history",
                f"starts on {first} but the model's data for this series ends on {last}; "
                f"send the days from {last + _ONE_DAY} on",
            )
        newer = [parsed[j] for d, j in dated if d > last]
        return newer, newest

    def _parse_future(
        self, where: str, rows: list[dict[str, Any]], last: dt.date, horizon: int
    ) -> list[dict[str, Any]]:
        start, end = last + _ONE_DAY, last + dt.timedelta(days=horizon)
        seen: set[dt.date] = set()
        out = []
        for j, row in enumerate(rows):
            at = f"{where}.future[{j}]"
            parsed = self._row(at, row, history=False)
            day = parsed[self.date_column]
            if not start <= day <= end:
                raise RequestError(
                    f"{at}.{self.date_column}",
                    f"{day} is outside this instance's forecast days {start} .. {end}",
                )
            if day in seen:
                raise RequestError(f"{at}.{self.date_column}", f"{day} appears twice")
            seen.add(day)
            out.append(parsed)
        return out

    def _row(self, where: str, row: dict[str, Any], *, history: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in row.items():
            at = f"{where}.{name}"
            col = self.columns.get(name)
            if col is None:
                columns = sorted(self.columns)
                raise RequestError(
                    at, f"unknown column; contract '{self.contract.name}' has {columns}"
                )
            if col.role == "key":
                raise RequestError(at, "series keys go on the instance, not in its rows")
            if col.role == "target" and not history:
                raise RequestError(at, "the target is what is forecast; send actuals in history")
            parsed = _value(at, col.type, value)
            # Observed-only and static columns are accepted (a row of the panel as it is) but
            # are not model inputs for future days, as in the trainer's future file.
            if col.role in ("observed", "static") or parsed is None:
                continue
            out[name] = parsed
        if self.date_column not in out:
            raise RequestError(f"{where}.{self.date_column}", "required: the day of this row")
        if history and self.target not in out:
            raise RequestError(f"{where}.{self.target}", "required: the actual value of that day")
        return out


def _value(where: str, ctype: str, value: Any) -> Any:
    """A JSON value checked against a contract type (the types read_future_csv produces)."""
    if value is None:
        return None
    if ctype == "DATE":
        if not isinstance(value, str) or not _DATE_RE.match(value):
            raise RequestError(where, f"expected a date as YYYY-MM-DD, got {_short(value)}")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise RequestError(where, f"not a valid date: {_short(value)}") from None
    if ctype in ("FLOAT64", "INT64"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(where, f"expected a number, got {_short(value)}")
        if not math.isfinite(value):
            raise RequestError(where, "expected a finite number")
        if ctype == "INT64":
            if isinstance(value, float) and not value.is_integer():
                raise RequestError(where, f"expected an integer, got {_short(value)}")
            return int(value)
        return float(value)
    if ctype == "BOOL":
        if not isinstance(value, bool):
            raise RequestError(where, f"expected true or false, got {_short(value)}")
        return value
    if not isinstance(value, str):
        raise RequestError(where, f"expected a string, got {_short(value)}")
    return value


def _points(block: _Block, main: int, extra: list[int] | None) -> list[dict[str, Any]]:
    lows, highs = block.bounds[main]
    if extra is None:
        return [
            {"date": d, "forecast": f, "lower": lo, "upper": hi}
            for d, f, lo, hi in zip(block.dates, block.point, lows, highs, strict=True)
        ]
    out = []
    for k, (d, f, lo, hi) in enumerate(zip(block.dates, block.point, lows, highs, strict=True)):
        intervals = {
            str(lv): {"lower": block.bounds[lv][0][k], "upper": block.bounds[lv][1][k]}
            for lv in extra
        }
        out.append({"date": d, "forecast": f, "lower": lo, "upper": hi, "intervals": intervals})
    return out
