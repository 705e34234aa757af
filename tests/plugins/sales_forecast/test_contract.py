"""Finding and reading a contract on the Airflow side (built-in names, files, YAML/JSON errors).

The contract's rules themselves are tested with their parser, in tests/sf_contract/test_schema.py.
"""

import json
import re

import pytest
from sales_forecast.contract import BUILTIN_CONTRACTS, CONTRACTS_DIR, load_contract

from sf_contract.schema import ContractError

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


def test_unknown_dataset_name():
    with pytest.raises(ContractError, match="neither a built-in contract"):
        load_contract("no-such-dataset")


def test_builtin_names_are_the_shipped_files():
    assert sorted(BUILTIN_CONTRACTS) == sorted(p.stem for p in CONTRACTS_DIR.glob("*.yaml"))


MINE = {
    "name": "mine",
    "date_column": "day",
    "target": "units",
    "columns": [
        {"name": "day", "type": "DATE", "role": "date"},
        {"name": "units", "type": "INT64", "role": "target"},
    ],
}


def test_yaml_contract_file_path_with_home_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ndate_column: day\ntarget: units\ncolumns:\n"
        "  - {name: day, type: DATE, role: date}\n"
        "  - {name: units, type: INT64, role: target}\n"
        "  - {name: flag, type: BOOL, role: known, future_fill: false}\n"
    )
    c = load_contract("~/mine.yaml")
    assert c.name == "mine" and c.source == str(path)
    assert c.column("flag").future_fill == "false"  # YAML's boolean false is the rule name


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".json", "{not json"),
        (".json", ""),
        (".yaml", "name: [unclosed"),
        (".yml", "columns:\n  - {name: day\n"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path, suffix, text):
    path = tmp_path / f"mine{suffix}"
    path.write_text(text)
    with pytest.raises(ContractError, match="not valid YAML/JSON") as err:
        load_contract(str(path))
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("suffix", "text"),
    [(".json", "[1, 2]"), (".yaml", "- a\n- b\n"), (".yaml", "")],
)
def test_a_file_that_is_not_a_mapping(tmp_path, suffix, text):
    path = tmp_path / f"mine{suffix}"
    path.write_text(text)
    with pytest.raises(ContractError, match=f"{re.escape(str(path))}: a contract is a mapping"):
        load_contract(str(path))


def test_rule_errors_name_the_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**MINE, "target": "nope"}))
    with pytest.raises(ContractError, match=f"^{re.escape(str(path))}: target column 'nope'"):
        load_contract(str(path))


def test_a_folder_is_not_a_contract_file(tmp_path):
    with pytest.raises(ContractError, match="neither a built-in contract"):
        load_contract(str(tmp_path))
