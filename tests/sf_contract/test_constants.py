"""The tokens every side spells the same way (``sf_contract.constants``)."""

import re

import pytest

from sf_contract import constants
from sf_contract.constants import (
    BOOL_FALSE,
    BOOL_TRUE,
    COLUMN_TYPES,
    DATE_FORMAT,
    DATE_PATTERN,
    FILL_RULES,
    FLOAT_PATTERN,
    INT_PATTERN,
    KEY_SEPARATOR,
    METRICS,
    PANEL_COLUMNS,
    PRODUCTION_ALIAS,
    RESERVED_COLUMNS,
    ROLES,
    SINGLE_SERIES_ID,
)
from sf_contract.scalars import parse_scalar
from sf_contract.schema import parse_contract


def test_every_exported_name_exists():
    assert sorted(constants.__all__) == constants.__all__
    for name in constants.__all__:
        assert hasattr(constants, name), name


def test_the_vocabularies():
    assert COLUMN_TYPES == ("DATE", "STRING", "INT64", "FLOAT64", "BOOL")
    assert ROLES == (
        "date",
        "key",
        "target",
        "known",
        "forecast",
        "observed",
        "static",
        "availability",
    )
    # FILL_RULES once lacked weekend (commit 86d4ac0 added the rule and missed the tuple).
    assert FILL_RULES == ("last", "zero", "false", "weekend", "value:<x>", "climatology")
    assert METRICS == ("wape", "mae", "rmse", "mase")
    assert PRODUCTION_ALIAS == "production"


def test_panel_columns_are_reserved():
    assert PANEL_COLUMNS == ("series_id", "is_gap_filled", "is_unknown")
    assert set(PANEL_COLUMNS) <= RESERVED_COLUMNS
    assert {"run_id", "model_version", "_source_row", "_source_file"} <= RESERVED_COLUMNS
    assert all(name == name.lower() for name in RESERVED_COLUMNS)


def test_series_id_tokens():
    assert SINGLE_SERIES_ID == "total"
    assert KEY_SEPARATOR == "|"


def test_boolean_tokens_are_lower_case_trimmed_and_disjoint():
    assert BOOL_TRUE == ("true", "t", "1", "yes", "y")
    assert BOOL_FALSE == ("false", "f", "0", "no", "n")
    assert not set(BOOL_TRUE) & set(BOOL_FALSE)
    for token in BOOL_TRUE + BOOL_FALSE:
        assert token == token.strip().lower() and "'" not in token


@pytest.mark.parametrize(
    ("text", "matches"),
    [("2024-01-31", True), ("20240131", False), ("2024-W01-1", False), ("2024-1-31", False)],
)
def test_date_pattern_is_the_date_format(text, matches):
    assert DATE_FORMAT == "YYYY-MM-DD"
    assert len(DATE_FORMAT) == 10 and bool(re.match(DATE_PATTERN, text)) is matches


@pytest.mark.parametrize("ctype", COLUMN_TYPES)
def test_every_column_type_has_a_scalar_rule(ctype):
    sample = {"DATE": "2024-01-01", "STRING": "s", "INT64": "1", "FLOAT64": "1", "BOOL": "t"}
    assert parse_scalar(sample[ctype], ctype) is not None


@pytest.mark.parametrize("rule", FILL_RULES)
def test_every_fill_rule_is_accepted_on_a_column_of_its_kind(rule):
    # climatology is a numeric forecast column's (the day's usual value); the others a flag's.
    numeric = rule == "climatology"
    rule = rule.replace("<x>", "true")
    column = (
        {"name": "flag", "type": "FLOAT64", "role": "forecast", "future_fill": rule}
        if numeric
        else {"name": "flag", "type": "BOOL", "role": "known", "future_fill": rule}
    )
    data = {
        "name": "x",
        "date_column": "day",
        "target": "units",
        "columns": [
            {"name": "day", "type": "DATE"},
            {"name": "units", "type": "FLOAT64"},
            column,
        ],
    }
    assert parse_contract(data).column("flag").future_fill == rule


@pytest.mark.parametrize("role", ROLES)
def test_every_role_is_accepted(role):
    columns = [{"name": "day", "type": "DATE"}, {"name": "units", "type": "FLOAT64"}]
    keys = []
    if role not in ("date", "target"):
        ctype = "BOOL" if role == "availability" else "STRING"
        columns.append({"name": "c", "type": ctype, "role": role})
        keys = ["c"] if role == "key" else []
    data = {"name": "x", "date_column": "day", "target": "units", "series_keys": keys}
    assert parse_contract({**data, "columns": columns}).by_role(role)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (INT_PATTERN, "-12", True),
        (INT_PATTERN, "+0", True),
        (INT_PATTERN, "1.0", False),
        (INT_PATTERN, "1_000", False),
        (INT_PATTERN, "0x1F", False),
        (FLOAT_PATTERN, "-1.5e-3", True),
        (FLOAT_PATTERN, ".5", True),
        (FLOAT_PATTERN, "5.", True),
        (FLOAT_PATTERN, ".", False),
        (FLOAT_PATTERN, "nan", False),
        (FLOAT_PATTERN, "inf", False),
        (FLOAT_PATTERN, "1_000.5", False),
        (FLOAT_PATTERN, "1e", False),
    ],
)
def test_number_patterns(pattern, text, matches):
    # SQL (RE2) reads these patterns too: nothing Python-only in them.
    assert "(?" not in pattern and "\\d" not in pattern
    assert bool(re.match(pattern, text)) is matches
