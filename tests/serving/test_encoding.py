"""The hand-assembled answer is the very JSON ``json.dumps`` writes for the same answer."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from serving.encoding import (
    SeriesForecast,
    dumps,
    finite_or_none,
    json_list,
    point_json,
    predict_body,
    prediction_heads,
    series_points,
)


def test_pieces_join_into_what_json_dumps_writes() -> None:
    keys = [{"store": 7}, {"store": 8}]
    heads = prediction_heads(keys, ["7", "8"])
    lows, highs = finite_or_none([1.0, math.nan]), finite_or_none([3.0, math.inf])
    forecast = SeriesForecast(
        dates=["2024-07-01", "2024-07-02"],
        point=[2.0, 2.5],
        bounds={80: (lows, highs), 95: ([0.5, None], [3.5, None])},
    )
    cached = json_list([point_json("2024-07-01", 2.0, 1.0, 3.0)])
    parts = [
        heads[0] + cached + "}",
        heads[1] + dumps(series_points(forecast, 80, [95])) + "}",
    ]
    expected = {
        "predictions": [
            {
                "store": 7,
                "series_id": "7",
                "forecasts": [{"date": "2024-07-01", "forecast": 2.0, "lower": 1.0, "upper": 3.0}],
            },
            {
                "store": 8,
                "series_id": "8",
                "forecasts": [
                    {
                        "date": "2024-07-01",
                        "forecast": 2.0,
                        "lower": 1.0,
                        "upper": 3.0,
                        "intervals": {"95": {"lower": 0.5, "upper": 3.5}},
                    },
                    {
                        "date": "2024-07-02",
                        "forecast": 2.5,
                        "lower": None,
                        "upper": None,
                        "intervals": {"95": {"lower": None, "upper": None}},
                    },
                ],
            },
        ],
        "model_version": "v1",
    }
    assert predict_body(parts, "v1") == json.dumps(expected, separators=(",", ":")).encode()


def test_non_finite_values_are_never_written() -> None:
    with pytest.raises(ValueError):
        dumps({"forecast": math.nan})


@pytest.mark.parametrize("parameters", [None, {"level": 95}, {"level": 60}])
def test_cached_answers_are_byte_identical_to_computed_ones(
    model_a: Path, registry: Any, client_for: Any, parameters: dict[str, Any] | None
) -> None:
    registry.promote(model_a)
    cached, computed = client_for(cache=True), client_for(cache=False)
    instances = [
        {"store_id": s, "item_id": i, "horizon": h}
        for (s, i), h in zip(
            [("S1", "A"), ("S2", "C"), ("S1", "B"), ("S1", "A"), ("S2", "A")],
            [7, 2, 1, 7, 5],
            strict=True,
        )
    ]
    body: dict[str, Any] = {"instances": instances}
    if parameters:
        body["parameters"] = parameters
    first = cached.post("/predict", json=body)
    second = computed.post("/predict", json=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
