"""The predict answer as hand-assembled JSON text.

``json.dumps`` of the whole answer would format every float of every request again; most of a
big answer's cost is exactly that. So the answer is built from pieces formatted once: each
prediction's head (``{"store_id":"S1",...,"forecasts":``) when the model is loaded, each
cached day's point when its level is computed. The pieces join into the very bytes
``json.dumps(answer, separators=(",", ":"))`` would write (``tests/serving/test_encoding.py``
compares cached and computed answers byte for byte).
"""

from __future__ import annotations

__all__ = [
    "Bound",
    "SeriesForecast",
    "dumps",
    "finite_or_none",
    "json_list",
    "plain_value",
    "point_json",
    "prediction_heads",
    "predict_body",
    "series_points",
]

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# A bound of a prediction interval; None where the series has no interval (JSON null).
Bound = float | None


@dataclass
class SeriesForecast:
    """``horizon`` days of one series: dates, point forecast and bounds per level."""

    dates: list[str]
    point: list[float]
    bounds: dict[int, tuple[list[Bound], list[Bound]]]


def dumps(value: Any) -> str:
    """Compact JSON; NaN/inf are not JSON, so the callers turn them into null first."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def finite_or_none(values: Iterable[float]) -> list[Bound]:
    """Bounds with NaN as None: NaN marks "no interval" (a series too short to calibrate)."""
    return [v if math.isfinite(v) else None for v in values]


def plain_value(value: Any) -> Any:
    """A numpy scalar as the plain Python value JSON understands."""
    return value.item() if hasattr(value, "item") else value


def point_json(date: str, forecast: float, lower: Bound, upper: Bound) -> str:
    """One forecast day without extra intervals, as JSON text."""
    return dumps({"date": date, "forecast": forecast, "lower": lower, "upper": upper})


def json_list(fragments: Iterable[str]) -> str:
    """A JSON list of already-encoded items."""
    return "[" + ",".join(fragments) + "]"


def prediction_heads(key_values: Sequence[dict[str, Any]], series_ids: Sequence[str]) -> list[str]:
    """Each series' prediction up to its forecasts: ``{"store_id":"S1",...,"forecasts":``."""
    return [
        dumps({**kv, "series_id": sid})[:-1] + ',"forecasts":'
        for kv, sid in zip(key_values, series_ids, strict=True)
    ]


def series_points(
    forecast: SeriesForecast, main: int, extra: list[int] | None
) -> list[dict[str, Any]]:
    """The ``forecasts`` list of one prediction: ``main`` as lower/upper, ``extra`` levels
    (when asked for) under ``intervals``."""
    lows, highs = forecast.bounds[main]
    days = zip(forecast.dates, forecast.point, lows, highs, strict=True)
    if extra is None:
        return [{"date": d, "forecast": f, "lower": lo, "upper": hi} for d, f, lo, hi in days]
    out = []
    for k, (d, f, lo, hi) in enumerate(days):
        intervals = {
            str(lv): {"lower": forecast.bounds[lv][0][k], "upper": forecast.bounds[lv][1][k]}
            for lv in extra
        }
        out.append({"date": d, "forecast": f, "lower": lo, "upper": hi, "intervals": intervals})
    return out


def predict_body(predictions: Iterable[str], version: str) -> bytes:
    """``{"predictions": [...], "model_version": ...}`` from encoded predictions."""
    return (
        '{"predictions":' + json_list(predictions) + ',"model_version":' + dumps(version) + "}"
    ).encode()
