"""Requests -> forecasts for one loaded model, through the trainer's public ``Forecaster`` API.

Two paths give the same numbers (``tests/serving/test_predict.py`` compares them with the
trainer's own ``predict``):

* **plain instances** (no ``future``, no new ``history``) are read from the model's base
  forecast (:mod:`serving.base_forecasts`), computed once when the model is loaded.
* **instances with future covariates or new actuals** go to ``Forecaster.forecast``: one
  call per horizon for the whole request (``series_ids=[...]``, the instances' rows
  concatenated), not one call per instance. A series asked for twice in one request (two
  what-if scenarios) is split into a second call, since one call holds one state per series.

Requests are checked first (:mod:`serving.requests`); the answer is assembled as JSON text
(:mod:`serving.encoding`). Everything here is synchronous CPU work; the app runs it in a
worker thread.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_LEVEL",
    "PredictStats",
    "Predictor",
    "quiet_expected_warnings",
]

import collections
import datetime as dt
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from serving.base_forecasts import BaseForecasts
from serving.encoding import (
    SeriesForecast,
    dumps,
    finite_or_none,
    plain_value,
    predict_body,
    prediction_heads,
    series_points,
)
from serving.errors import RequestError
from serving.requests import InstanceParser, ParsedInstance
from serving.schemas import MIN_HORIZON, Parameters, PredictRequest, range_words

if TYPE_CHECKING:
    from trainer.model import Forecaster

DEFAULT_LEVEL = 80


def quiet_expected_warnings() -> None:
    """Silence, process-wide, the warning mlforecast gives for every step of a forecast.

    Short series have null lags by design (LightGBM handles them). The trainer hides the
    warning with ``warnings.catch_warnings``, which is not thread-safe (it leaks once forecasts
    run in worker threads) and resets the warnings machinery on every call; one filter set
    once is quieter and measurably cheaper (docs/serving.md).
    """
    warnings.filterwarnings("ignore", message="Found null values", category=UserWarning)


@dataclass
class PredictStats:
    """What one request cost, for the metrics."""

    cached: int = 0
    computed: int = 0
    forecaster_calls: int = 0


class Predictor:
    """Validates requests against one model's contract and answers them."""

    def __init__(
        self,
        forecaster: Forecaster,
        *,
        version: str,
        train_end: dt.date | None = None,
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
        # A request's rows may also say a day is unavailable (closed, out of stock): a future
        # day so marked is forecast as 0, a history day so marked is no actual of demand.
        available = [] if contract.availability_column is None else [contract.availability_column]
        self.known: list[str] = [c.name for c in contract.future_columns + available]
        self._panel_extra = [
            c.name for c in contract.future_columns + contract.static_columns + available
        ]
        self.max_horizon = int(forecaster.config.horizon)
        state = forecaster.series
        self.series_ids: list[str] = state["series_id"].astype(str).tolist()
        # Column by column: a single-series model has no key columns (and one series).
        columns = {k: state[k].tolist() for k in self.keys}
        self.key_values: list[dict[str, Any]] = [
            {k: plain_value(columns[k][s]) for k in self.keys} for s in range(len(self.series_ids))
        ]
        self._heads = prediction_heads(self.key_values, self.series_ids)
        self.last_dates: list[dt.date] = [
            pd.Timestamp(d).date() for d in state["last_date"].tolist()
        ]
        # The model's last training day (metadata.json's train_end when the store read one),
        # else the latest last day of its series.
        self.train_end: dt.date | None = train_end or (
            max(self.last_dates) if self.last_dates else None
        )
        self._parser = InstanceParser(
            contract,
            self.key_values,
            self.last_dates,
            self.max_horizon,
            version=version,
            train_end=self.train_end,
        )
        # GET /series: every series' entry, sorted by id, built once (a page is a slice). The
        # keys come first and win: a key column the contract happens to call last_date must
        # still name its series.
        self._series_entries: list[dict[str, Any]] = []
        for s in sorted(range(len(self.series_ids)), key=self.series_ids.__getitem__):
            entry = {**self.key_values[s], "series_id": self.series_ids[s]}
            entry.setdefault("last_date", self.last_dates[s].isoformat())
            self._series_entries.append(entry)
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
            "max_horizon": self.max_horizon,
            "default_levels": self.default_levels,
            "cache": self.base is not None,
        }

    def series_page(self, offset: int, limit: int) -> dict[str, Any]:
        """``limit`` series from ``offset`` on (GET /series); the offset's range is this
        model's, so it is checked here (:class:`RequestError` naming ``offset``)."""
        total = len(self._series_entries)
        if not 0 <= offset <= total:
            raise RequestError(
                "offset",
                f"{range_words(0, total)} (model version {self.version} knows {total} "
                f"series), got {offset}",
            )
        end = offset + limit
        return {
            "model_version": self.version,
            "total": total,
            "offset": offset,
            "limit": limit,
            "series": self._series_entries[offset:end],
            "next_offset": end if end < total else None,
        }

    def example_request(self) -> dict[str, Any]:
        """A request this model answers: its first series (and a second one with a future row
        on its first forecast day), for the API reference's example."""
        instances: list[dict[str, Any]] = []
        for s in range(min(2, len(self.series_ids))):
            inst: dict[str, Any] = {**self.key_values[s], "horizon": min(7, self.max_horizon)}
            if s == 1:
                first = self.last_dates[s] + dt.timedelta(days=1)
                inst["future"] = [{self.date_column: first.isoformat()}]
            instances.append(inst)
        return {"instances": instances, "parameters": {"level": 80}}

    # ------------------------------------------------------------------ predict

    def predict(
        self, request: PredictRequest, *, max_instances: int, max_series_repeats: int = 4
    ) -> tuple[bytes, PredictStats]:
        """The JSON response body for ``request``; :class:`RequestError` for a bad request.

        A series may come with history/future at most ``max_series_repeats`` times: each
        repeat costs one more forecaster call, so that is the request's work budget."""
        n = len(request.instances)
        if n > max_instances:
            raise RequestError(
                "instances", f"{n} instances; at most {max_instances} per request", status=422
            )
        params = request.parameters or Parameters()
        main = params.level
        extra = sorted(set(params.levels)) if params.levels else None
        levels = sorted({main, *(extra or [])})
        if params.horizon is not None and not MIN_HORIZON <= params.horizon <= self.max_horizon:
            raise RequestError(
                "parameters.horizon",
                f"{range_words(MIN_HORIZON, self.max_horizon)} days (the model's trained "
                f"horizon), got {params.horizon}",
            )
        parsed = [
            self._parser.parse(i, inst, params.horizon) for i, inst in enumerate(request.instances)
        ]

        seen: collections.Counter[int] = collections.Counter()
        for p in parsed:
            if p.plain:
                continue  # answered from the base forecast: no forecaster call
            seen[p.series] += 1
            if seen[p.series] > max_series_repeats:
                raise RequestError(
                    f"instances[{p.index}]",
                    f"series {self.series_ids[p.series]} comes with history/future more than "
                    f"{max_series_repeats} times in this request (each is one more model run); "
                    "send the rest in another request",
                    status=422,
                )
        stats = PredictStats()
        forecasts: list[SeriesForecast | None] = [None] * n
        texts: list[str | None] = [None] * n  # "forecasts" as JSON text (cached path)
        to_compute = parsed
        if self.base is not None:
            to_compute = [p for p in parsed if not p.plain]
            plain = [p for p in parsed if p.plain]
            if plain:
                snap = self.base.snapshot(levels)
                for p in plain:
                    if extra is None:
                        texts[p.index] = self.base.forecasts_json(snap, p.series, p.horizon, main)
                    else:
                        forecasts[p.index] = self.base.series_forecast(snap, p.series, p.horizon)
                stats.cached = len(plain)
        if to_compute:
            self._compute(to_compute, levels, forecasts, stats)
            stats.computed = len(to_compute)

        parts = []
        for p in parsed:
            text = texts[p.index]
            if text is None:
                forecast = forecasts[p.index]
                if forecast is None:  # every instance is either cached or computed above
                    raise RuntimeError(f"instance {p.index} was neither cached nor computed")
                text = dumps(series_points(forecast, main, extra))
            parts.append(self._heads[p.series] + text + "}")
        return predict_body(parts, self.version), stats

    def _compute(
        self,
        parsed: list[ParsedInstance],
        levels: list[int],
        forecasts: list[SeriesForecast | None],
        stats: PredictStats,
    ) -> None:
        by_horizon: dict[int, list[ParsedInstance]] = collections.defaultdict(list)
        for p in parsed:
            by_horizon[p.horizon].append(p)
        for horizon, group in sorted(by_horizon.items()):
            # One call per horizon; a series asked for again goes to the next round.
            rounds: list[list[ParsedInstance]] = []
            for p in group:
                for rnd in rounds:
                    if all(q.series != p.series for q in rnd):
                        rnd.append(p)
                        break
                else:
                    rounds.append([p])
            for rnd in rounds:
                self._forecast(rnd, horizon, levels, forecasts)
                stats.forecaster_calls += 1

    def _forecast(
        self,
        parsed: list[ParsedInstance],
        horizon: int,
        levels: list[int],
        forecasts: list[SeriesForecast | None],
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
                finite_or_none(frame[f"lower_{lv}"].tolist()),
                finite_or_none(frame[f"upper_{lv}"].tolist()),
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
            forecasts[p.index] = SeriesForecast(
                dates=dates[lo:hi],
                point=values[lo:hi],
                bounds={lv: (b[0][lo:hi], b[1][lo:hi]) for lv, b in bounds.items()},
            )

    def _rows(self, p: ParsedInstance, rows: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        ident = {"series_id": self.series_ids[p.series], **self.key_values[p.series]}
        for row in rows:
            yield {**ident, **row}

    def _frame(self, rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
        # The shape the trainer's read_future_csv gives: Python values in object columns
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
