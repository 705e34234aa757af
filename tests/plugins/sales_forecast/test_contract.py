"""Finding and reading a contract on the Airflow side (names, the contracts folder, files, errors).

The contract's rules themselves are tested with their parser, in tests/sf_contract/test_schema.py.
"""

import json
import re

import pytest
from sales_forecast.config import Settings
from sales_forecast.contract import (
    BUILTIN_CONTRACTS,
    CONTRACTS_DIR,
    available_contracts,
    contract_path,
    load_contract,
    load_contract_file,
)

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
    "is_available",
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
    assert [x.name for x in c.by_role("forecast")] == ["temperature"]
    # Optional: a retail file without it loads, and every day counts as available.
    assert c.availability_column is not None and c.availability_column.name == "is_available"
    assert not c.availability_column.required
    assert c.column("temperature").future_fill == "climatology"


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
    c = load_contract_file(str(path))
    assert c.name == "mine" and c.date_column == "day"
    assert load_contract_file(path) == c


def test_a_dataset_param_is_never_a_path(tmp_path):
    # The same file that load_contract_file reads is refused as a run's `dataset`.
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(MINE))
    with pytest.raises(ContractError, match="is not a contract name") as err:
        load_contract(str(path), Settings())
    assert "available: retail, takeaway" in str(err.value)


def test_unknown_dataset_name():
    with pytest.raises(ContractError, match="'no_such_dataset' is not a known contract"):
        load_contract("no_such_dataset", Settings())
    with pytest.raises(ContractError, match="'no-such-dataset' is not a contract name"):
        load_contract("no-such-dataset", Settings())


def test_the_default_settings_are_used_when_none_are_given(settings, tmp_path, monkeypatch):
    from sales_forecast import config

    (tmp_path / "mine.yaml").write_text(json.dumps(MINE))
    monkeypatch.setenv("SF_CONTRACTS_DIR", str(tmp_path))
    config.get_settings.cache_clear()
    assert load_contract("mine").name == "mine"
    assert load_contract("retail").name == "retail"


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


def _folder(tmp_path, files):
    folder = tmp_path / "contracts"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return Settings(contracts_dir=folder)


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_a_contract_from_the_contracts_folder(tmp_path, suffix):
    cfg = _folder(tmp_path, {f"mine{suffix}": json.dumps(MINE)})  # JSON is YAML too
    c = load_contract("mine", cfg)
    assert c.name == "mine" and c.source == str(tmp_path / "contracts" / f"mine{suffix}")
    assert available_contracts(cfg) == ["retail", "takeaway", "mine"]


def test_the_folder_is_listed_in_the_error(tmp_path):
    cfg = _folder(
        tmp_path,
        {"a_one.yaml": "", "b_two.json": "", "bad name.yaml": "", "notes.txt": "", "3x.yaml": ""},
    )
    with pytest.raises(ContractError) as err:
        load_contract("../a_one", cfg)
    message = str(err.value)
    assert "available: retail, takeaway, a_one, b_two" in message
    assert "bad name" not in message and "notes" not in message and "3x" not in message
    assert str(tmp_path / "contracts") in message  # says where own contracts go


def test_shipped_names_win_over_the_folder(tmp_path):
    cfg = _folder(tmp_path, {"retail.yaml": json.dumps({**MINE, "name": "retail"})})
    assert load_contract("retail", cfg).column_names == RETAIL_COLUMNS
    assert contract_path("retail", cfg) == CONTRACTS_DIR / "retail.yaml"


def test_the_contract_must_carry_its_file_name(tmp_path):
    # Otherwise mine.yaml could say `name: retail` and write into the retail tables and model.
    cfg = _folder(tmp_path, {"mine.yaml": json.dumps({**MINE, "name": "retail"})})
    with pytest.raises(ContractError, match="the contract's name is 'retail', but the file is"):
        load_contract("mine", cfg)


def test_two_files_for_one_name_are_refused(tmp_path):
    cfg = _folder(tmp_path, {"mine.yaml": json.dumps(MINE), "mine.json": json.dumps(MINE)})
    with pytest.raises(ContractError, match="holds mine.yaml and mine.json; keep only one"):
        load_contract("mine", cfg)
    assert "mine" not in available_contracts(cfg)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text(json.dumps(MINE))
    cfg = _folder(tmp_path, {})
    (tmp_path / "contracts" / "mine.yaml").symlink_to(outside)
    with pytest.raises(ContractError, match="not a regular file inside that folder"):
        load_contract("mine", cfg)


def test_a_folder_named_like_a_contract_is_refused(tmp_path):
    cfg = _folder(tmp_path, {})
    (tmp_path / "contracts" / "mine.yaml").mkdir()
    with pytest.raises(ContractError, match="not a regular file inside that folder"):
        load_contract("mine", cfg)


def test_a_huge_file_is_not_read(tmp_path):
    cfg = _folder(tmp_path, {"mine.yaml": "#" * (2 << 20)})
    with pytest.raises(ContractError, match="a contract file is at most"):
        load_contract("mine", cfg)


def test_yaml_contract_file_path_with_home_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ndate_column: day\ntarget: units\ncolumns:\n"
        "  - {name: day, type: DATE, role: date}\n"
        "  - {name: units, type: INT64, role: target}\n"
        "  - {name: flag, type: BOOL, role: known, future_fill: false}\n"
    )
    c = load_contract_file("~/mine.yaml")
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
        load_contract_file(str(path))
    assert str(path) in str(err.value)


SECRET = "FAKE_API_KEY=abc123-not-a-real-key"


@pytest.mark.parametrize(
    ("suffix", "text", "where"),
    [
        (".yaml", f"name: x\n{SECRET}: [unclosed\n", "line 3, column 1"),
        (".yaml", f"name: x\n  {SECRET}\n: : :\n", "line 3, column 1"),
        (".yaml", f"columns:\n  - {{name: {SECRET}\n", "line 3, column 1"),
        (".yaml", f"a: b\n\t{SECRET}\n", "line 2, column 1"),
        (".yaml", f"x: !!python/object:os.system {SECRET}\n", "line 1, column 4"),
        (".json", f'{{"name": "x",\n {SECRET}}}', "line 2, column 2"),
        (".json", f'{{"name": "{SECRET}', "line 1, column 10"),
    ],
)
def test_syntax_errors_give_the_place_but_never_the_content(tmp_path, suffix, text, where):
    # Review D7 (#34): the YAML error quoted the offending line of whatever file it was.
    cfg = _folder(tmp_path, {f"mine{suffix}": text})
    for load in (
        lambda: load_contract("mine", cfg),
        lambda: load_contract_file(tmp_path / "contracts" / f"mine{suffix}"),
    ):
        with pytest.raises(ContractError) as err:
            load()
        message = str(err.value)
        assert "abc123" not in message and "FAKE_API_KEY" not in message, message
        assert message.endswith(f"syntax error at {where}"), message
        assert f"mine{suffix}: not valid YAML/JSON" in message


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ContractError, match=r"not UTF-8 text \(byte 9\)$"):
        load_contract_file(path)


@pytest.mark.parametrize(
    ("suffix", "text"),
    [(".json", "[1, 2]"), (".yaml", "- a\n- b\n"), (".yaml", "")],
)
def test_a_file_that_is_not_a_mapping(tmp_path, suffix, text):
    path = tmp_path / f"mine{suffix}"
    path.write_text(text)
    with pytest.raises(ContractError, match=f"{re.escape(str(path))}: a contract is a mapping"):
        load_contract_file(str(path))


def test_rule_errors_name_the_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**MINE, "target": "nope"}))
    with pytest.raises(ContractError, match=f"^{re.escape(str(path))}: target column 'nope'"):
        load_contract_file(str(path))


def test_a_folder_is_not_a_contract_file(tmp_path):
    with pytest.raises(ContractError, match="no such contract file"):
        load_contract_file(str(tmp_path))
