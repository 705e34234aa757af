"""The Predictor against a stand-in forecaster: what it does with the public API's answers."""

from __future__ import annotations

import json
import types
from typing import Any

import numpy as np
import pandas as pd
import pytest

from serving.errors import RequestError
from serving.predictor import Predictor
from serving.schemas import PredictRequest
from sf_contract.schema import Contract

CONTRACT = Contract.from_dict(
    {
        "name": "ints",
        "date_column": "day",
        "target": "units",
        "series_keys": ["store"],
        "columns": [
            {"name": "day", "type": "DATE", "role": "date"},
            {"name": "store", "type": "INT64", "role": "key"},
            {"name": "units", "type": "FLOAT64", "role": "target"},
        ],
    }
)


class StubForecaster:
    """``Forecaster``'s public surface: two series, one without intervals (NaN bounds)."""

    contract = CONTRACT
    config = types.SimpleNamespace(horizon=3, levels=(80,))

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @property
    def series(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "series_id": ["7", "8"],
                "store": np.array([7, 8], dtype=np.int64),
                "last_date": pd.to_datetime(["2024-06-30", "2024-06-29"]),
            }
        )

    def forecast(
        self, horizon: int, future_df=None, new_history=None, levels=None, series_ids=None
    ):
        self.calls.append({"horizon": horizon, "series_ids": series_ids, "levels": levels})
        rows = []
        for sid, last in (("7", "2024-06-30"), ("8", "2024-06-29")):
            if series_ids is not None and sid not in series_ids:
                continue
            for step in range(1, horizon + 1):
                row = {
                    "series_id": sid,
                    "store": int(sid),
                    "date": pd.Timestamp(last) + pd.Timedelta(days=step),
                    "forecast": 10.0 * step + (0.5 if sid == "8" else 0.0),
                }
                for lv in levels or []:
                    row[f"lower_{lv}"] = np.nan if sid == "8" else row["forecast"] - lv / 10
                    row[f"upper_{lv}"] = np.nan if sid == "8" else row["forecast"] + lv / 10
                rows.append(row)
        return types.SimpleNamespace(frame=pd.DataFrame(rows))


def _answer(predictor: Predictor, body: dict[str, Any]) -> dict[str, Any]:
    content, _ = predictor.predict(PredictRequest.model_validate(body), max_instances=100)
    return json.loads(content)


def test_integer_keys_null_intervals_and_per_series_dates() -> None:
    stub = StubForecaster()
    predictor = Predictor(stub, version="v")
    assert stub.calls == [{"horizon": 3, "series_ids": None, "levels": [80]}]  # the base
    body = {"instances": [{"store": 7, "horizon": 2}, {"store": 8}], "parameters": {"level": 80}}
    first, second = _answer(predictor, body)["predictions"]
    assert first["store"] == 7 and first["series_id"] == "7"  # INT64 key echoed as a number
    assert first["forecasts"] == [
        {"date": "2024-07-01", "forecast": 10.0, "lower": 2.0, "upper": 18.0},
        {"date": "2024-07-02", "forecast": 20.0, "lower": 12.0, "upper": 28.0},
    ]
    # Each series starts the day after its own last day; NaN bounds are JSON null.
    assert second["forecasts"][0] == {
        "date": "2024-06-30",
        "forecast": 10.5,
        "lower": None,
        "upper": None,
    }
    assert len(stub.calls) == 1  # answered from the base forecast


def test_a_key_sent_as_text_names_the_same_series() -> None:
    predictor = Predictor(StubForecaster(), version="v")
    assert _answer(predictor, {"instances": [{"store": "7"}]})["predictions"][0]["store"] == 7


def test_without_cache_every_instance_goes_to_the_forecaster_once_per_horizon() -> None:
    stub = StubForecaster()
    predictor = Predictor(stub, version="v", cache=False)
    stub.calls.clear()
    body = {"instances": [{"store": 7, "horizon": 2}, {"store": 8, "horizon": 2}, {"store": 7}]}
    answer = _answer(predictor, body)
    assert [len(p["forecasts"]) for p in answer["predictions"]] == [2, 2, 3]
    assert sorted((c["horizon"], tuple(c["series_ids"])) for c in stub.calls) == [
        (2, ("7", "8")),
        (3, ("7",)),
    ]


class UnsortedStub(StubForecaster):
    """The same series, held in the other order: the listing must not depend on it."""

    @property
    def series(self) -> pd.DataFrame:
        return super().series.iloc[::-1].reset_index(drop=True)


def test_series_pages_are_sorted_by_id_with_keys_and_last_days() -> None:
    predictor = Predictor(UnsortedStub(), version="v")
    seven = {"store": 7, "series_id": "7", "last_date": "2024-06-30"}
    eight = {"store": 8, "series_id": "8", "last_date": "2024-06-29"}
    assert predictor.series_page(0, 1) == {
        "model_version": "v",
        "total": 2,
        "offset": 0,
        "limit": 1,
        "series": [seven],  # the INT64 key as a number, as /predict echoes it
        "next_offset": 1,
    }
    assert predictor.series_page(1, 1)["series"] == [eight]
    assert predictor.series_page(1, 1)["next_offset"] is None
    assert predictor.series_page(0, 10)["series"] == [seven, eight]
    # The end itself is a valid (empty) page.
    assert predictor.series_page(2, 10)["series"] == []


@pytest.mark.parametrize("offset", [-1, 3, 10**20])
def test_a_series_offset_outside_the_model_states_its_range(offset: int) -> None:
    predictor = Predictor(StubForecaster(), version="v")
    with pytest.raises(RequestError) as err:
        predictor.series_page(offset, 10)
    assert err.value.field == "offset" and err.value.status == 422
    assert err.value.message == f"must be 0..2 (model version v knows 2 series), got {offset}"
