"""Instances checked against a model's contract: keys, horizon, row columns, values and days."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from serving.errors import RequestError
from serving.requests import InstanceParser, parse_value
from serving.schemas import Instance
from sf_contract.constants import BOOL_FALSE, BOOL_TRUE
from sf_contract.scalars import bool_spellings
from sf_contract.schema import parse_contract

CONTRACT = parse_contract(
    {
        "name": "ints",
        "date_column": "day",
        "target": "units",
        "series_keys": ["store"],
        "columns": [
            {"name": "day", "type": "DATE", "role": "date"},
            {"name": "store", "type": "INT64", "role": "key"},
            {"name": "units", "type": "FLOAT64", "role": "target"},
            {"name": "promo", "type": "BOOL", "role": "known", "future_fill": "false"},
            {"name": "temp", "type": "FLOAT64", "role": "observed"},
        ],
    }
)
LAST = dt.date(2024, 6, 30)


def _parser() -> InstanceParser:
    return InstanceParser(CONTRACT, [{"store": 7}, {"store": 8}], [LAST, LAST], max_horizon=3)


def _parse(instance: dict[str, Any]) -> Any:
    return _parser().parse(0, Instance.model_validate(instance))


@pytest.mark.parametrize("key", [7, "7"])
def test_a_key_as_number_or_text_names_the_same_series(key: Any) -> None:
    parsed = _parse({"store": key})
    assert (parsed.series, parsed.horizon, parsed.plain) == (0, 3, True)


@pytest.mark.parametrize("text", ["20240701", "2024-W27-1", " 2024-07-01", "2024-07-01\n"])
def test_dates_are_strictly_yyyy_mm_dd(text: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_value("f", "DATE", text)
    assert "expected a date as YYYY-MM-DD" in err.value.message


def test_an_impossible_date_is_named_as_such() -> None:
    with pytest.raises(RequestError) as err:
        parse_value("f", "DATE", "2024-02-30")
    assert err.value.message == "not a valid date: '2024-02-30'"
    assert parse_value("f", "DATE", "2024-02-29") == dt.date(2024, 2, 29)


@pytest.mark.parametrize(
    ("ctype", "value", "words"),
    [
        ("INT64", 2.5, "expected an integer"),
        ("FLOAT64", "1.5", "expected a number"),
        ("FLOAT64", True, "expected a number"),
        ("STRING", 3, "expected a string"),
    ],
)
def test_values_keep_their_json_type(ctype: str, value: Any, words: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_value("f", ctype, value)
    assert words in err.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        *[(t, True) for t in BOOL_TRUE],
        *[(t, False) for t in BOOL_FALSE],
        *[(t.upper(), True) for t in BOOL_TRUE],
        (" Yes\t", True),
        (" n ", False),
        (1, True),  # a number reads as its text, as "1" in a CSV file
        (0, False),
    ],
)
def test_a_bool_takes_json_booleans_and_the_csv_spellings(value: Any, expected: bool) -> None:
    assert parse_value("f", "BOOL", value) is expected


@pytest.mark.parametrize("value", ["maybe", "", "on", "2", 2, -1, 1.0, 0.0, 0.5])
def test_any_other_bool_value_lists_the_accepted_spellings(value: Any) -> None:
    with pytest.raises(RequestError) as err:
        parse_value("f", "BOOL", value)
    assert err.value.message == (
        "expected true or false, or a text or number a CSV file reads as a boolean "
        f"({bool_spellings()}), got {value!r}"
    )


@pytest.mark.parametrize("horizon", [0, -1, 4])
def test_a_horizon_out_of_range_states_the_range(horizon: int) -> None:
    with pytest.raises(RequestError) as err:
        _parse({"store": 7, "horizon": horizon})
    assert err.value.field == "instances[0].horizon"
    assert err.value.message == f"must be 1..3 days (the model's trained horizon), got {horizon}"


@pytest.mark.parametrize("horizon", [1, 3])
def test_a_horizon_in_range_is_kept(horizon: int) -> None:
    assert _parse({"store": 7, "horizon": horizon}).horizon == horizon


def test_rows_keep_model_inputs_and_history_newer_than_the_model() -> None:
    parsed = _parse(
        {
            "store": 8,
            "history": [
                {"day": "2024-06-30", "units": 1.0},
                {"day": "2024-07-01", "units": 2, "temp": 20.5},
            ],
            "future": [{"day": "2024-07-02", "promo": True, "temp": None}],
        }
    )
    assert parsed.series == 1 and not parsed.plain
    # The day the model already has is dropped; the observed-only column is no model input.
    assert parsed.history == [{"day": dt.date(2024, 7, 1), "units": 2.0}]
    # The forecast days start after the newest actual.
    assert parsed.future == [{"day": dt.date(2024, 7, 2), "promo": True}]


def test_an_unknown_series_names_the_model_version_and_its_training_end() -> None:
    parser = InstanceParser(
        CONTRACT, [{"store": 7}], [LAST], max_horizon=3, version="4", train_end=LAST
    )
    with pytest.raises(RequestError) as err:
        parser.parse(2, Instance.model_validate({"store": 9}))
    assert err.value.field == "instances[2]" and err.value.status == 422
    assert err.value.message == (
        "unknown series: store=9 is not in model version 4 (trained on data up to "
        "2024-06-30); a new series is served after the next training run that includes it; "
        "see GET /series for the 1 series this model knows"
    )


@pytest.mark.parametrize("key", ["7|8", "|", "7|"])
def test_a_key_holding_the_series_id_separator_names_the_field(key: str) -> None:
    with pytest.raises(RequestError) as err:
        _parse({"store": key})
    assert err.value.field == "instances[0].store" and err.value.status == 422
    assert err.value.message.startswith("not a valid series key value:")
    assert f"{key!r} contains '|'" in err.value.message


def test_a_key_series_id_refuses_is_a_request_error(monkeypatch: Any) -> None:
    """Whatever sf_contract's series_id refuses (ScalarError) is a 422 on that key, not a 500."""
    import serving.requests as requests_module
    from sf_contract.scalars import ScalarError

    def refuse(parts: Any) -> str:
        raise ScalarError(f"{parts[0]!r} is not a usable key")

    monkeypatch.setattr(requests_module, "series_id", refuse)
    with pytest.raises(RequestError) as err:
        _parse({"store": 7})
    assert err.value.field == "instances[0].store"
    assert "not a valid series key value: 7 is not a usable key" in err.value.message
