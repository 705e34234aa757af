"""The precomputed base forecast: sliced per request, extra levels added on use and bounded."""

from __future__ import annotations

import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.base_forecasts import EXTRA_LEVELS_KEPT, BaseForecasts


class LevelStub:
    """A forecaster whose bounds are ``forecast -/+ level``, for two series of 3 days."""

    def __init__(self) -> None:
        self.levels_asked: list[list[int]] = []

    def forecast(self, horizon: int, levels: list[int]) -> Any:
        self.levels_asked.append(levels)
        rows = []
        for sid in ("a", "b"):
            for step in range(1, horizon + 1):
                f = 10.0 * step
                day = pd.Timestamp("2024-06-30") + pd.Timedelta(days=step)
                row: dict[str, Any] = {"series_id": sid, "date": day, "forecast": f}
                for lv in levels:
                    row[f"lower_{lv}"], row[f"upper_{lv}"] = f - lv, f + lv
                rows.append(row)
        return types.SimpleNamespace(frame=pd.DataFrame(rows))


def _base(stub: LevelStub) -> BaseForecasts:
    slots = threading.BoundedSemaphore(1)
    return BaseForecasts(stub, {"a": 0, "b": 1}, 3, [80, 95], slots)  # type: ignore[arg-type]


def test_a_snapshot_stays_readable_after_its_level_is_evicted() -> None:
    stub = LevelStub()
    base = _base(stub)
    assert stub.levels_asked == [[80, 95]]
    snap = base.snapshot([50])
    for lv in range(51, 52 + EXTRA_LEVELS_KEPT):
        base.snapshot([lv])
    assert 50 not in base._bounds  # evicted: the oldest extra level goes first
    forecast = base.series_forecast(snap, 1, 2)
    assert forecast.point == [10.0, 20.0]
    assert forecast.bounds[50] == ([-40.0, -30.0], [60.0, 70.0])
    assert base.forecasts_json(snap, 0, 1, 50).startswith('[{"date":')


def test_levels_outside_the_defaults_are_computed_and_kept_bounded(
    model_a: Path, registry: Any, client_for: Any
) -> None:
    registry.promote(model_a)
    client = client_for()
    base = client.app.state.store.current.predictor.base
    direct = client.app.state.store.current.predictor.forecaster
    for level in range(50, 62):  # more than the extra levels kept
        body = client.post(
            "/predict",
            json={
                "instances": [{"store_id": "S1", "item_id": "B"}],
                "parameters": {"level": level},
            },
        ).json()
        expected = direct.predict(7, levels=[level], series_ids=["S1|B"])
        lower = [p["lower"] for p in body["predictions"][0]["forecasts"]]
        np.testing.assert_array_equal(lower, expected[f"lower_{level}"].to_numpy())
    assert len(base._bounds) <= len(base.default_levels) + 8
