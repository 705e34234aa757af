import json

import pytest
from sales_forecast.contract import ContractError, load_contract, parse_contract

RETAIL_COLUMNS = [
    "date",
    "store_id",
    "item_id",
    "sales",
    "price",
    "on_promo",
    "is_holiday",
    "temperature",
]
TAKEAWAY_COLUMNS = [
    "date",
    "Total",
    "tavg",
    "tmin",
    "tmax",
    "prcp",
    "wspd",
    "pres",
    "is_holiday",
    "holiday_name",
    "is_school_break",
    "dinner_impact_score",
    "importance_score",
    "is_evening",
    "is_weekend",
    "is_home",
    "is_delhi",
    "is_t20i",
    "is_cricket_day",
]


def test_builtin_retail_contract():
    c = load_contract("retail")
    assert c.column_names == RETAIL_COLUMNS
    assert c.series_keys == ("store_id", "item_id")
    assert [x.name for x in c.by_role("known")] == ["price", "on_promo", "is_holiday"]
    assert [x.name for x in c.by_role("observed")] == ["temperature"]


def test_builtin_takeaway_contract_is_single_series():
    c = load_contract("takeaway")
    assert c.column_names == TAKEAWAY_COLUMNS
    assert c.series_keys == ()
    assert c.target == "Total"
    assert c.column("holiday_name").type == "STRING"


def test_schema_fields_for_bigquery():
    c = load_contract("retail")
    typed = c.bigquery_schema_fields()
    assert typed[0] == {"name": "date", "type": "DATE", "mode": "REQUIRED"}
    assert {"name": "price", "type": "FLOAT64", "mode": "NULLABLE"} in typed
    staged = c.bigquery_schema_fields(all_strings=True)
    assert {f["type"] for f in staged} == {"STRING"}
    assert [f["name"] for f in staged] == RETAIL_COLUMNS


def test_trainer_json_roundtrips_through_json():
    c = load_contract("retail")
    data = json.loads(json.dumps(c.to_trainer_json()))
    assert data["target"] == "sales"
    assert data["series_keys"] == ["store_id", "item_id"]
    price = next(col for col in data["columns"] if col["name"] == "price")
    assert price == {"name": "price", "type": "FLOAT64", "role": "known", "future_fill": "last"}


def test_contract_file_path(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "name": "mine",
                "date_column": "day",
                "target": "units",
                "series_keys": ["shop"],
                "columns": [
                    {"name": "day", "type": "DATE", "role": "date"},
                    {"name": "shop", "type": "STRING", "role": "key"},
                    {"name": "units", "type": "INT64", "role": "target"},
                ],
            }
        )
    )
    c = load_contract(str(path))
    assert c.name == "mine" and c.date_column == "day"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target": "nope"}, "target column 'nope' is not among the columns"),
        ({"series_keys": ["units"]}, "must have role 'key'"),
        ({"columns": [{"name": "day", "type": "DATE", "role": "date"}]}, "target column"),
        ({"columns": [{"name": "day", "type": "TEXT", "role": "date"}]}, "has type 'TEXT'"),
        ({"columns": [{"name": "series_id", "type": "STRING", "role": "key"}]}, "reserved"),
        ({"columns": [{"name": "bad name", "type": "STRING", "role": "key"}]}, "identifier"),
        (
            {
                "columns": [
                    {"name": "p", "type": "FLOAT64", "role": "known", "future_fill": "weekend"}
                ]
            },
            "needs a BOOL column",
        ),
    ],
)
def test_invalid_contracts_are_rejected_with_a_reason(change, message):
    base = {
        "name": "x",
        "date_column": "day",
        "target": "units",
        "series_keys": [],
        "columns": [
            {"name": "day", "type": "DATE", "role": "date"},
            {"name": "units", "type": "FLOAT64", "role": "target"},
        ],
    }
    with pytest.raises(ContractError, match=message):
        parse_contract({**base, **change})


def test_unknown_dataset_name():
    with pytest.raises(ContractError, match="neither a built-in contract"):
        load_contract("no-such-dataset")
