"""The text-to-value rule (``sf_contract.scalars``) and the series-id rule."""

import datetime as dt
import math

import numpy as np
import pytest

from sf_contract.constants import BOOL_FALSE, BOOL_TRUE, KEY_SEPARATOR, SINGLE_SERIES_ID
from sf_contract.scalars import (
    ScalarError,
    bool_spellings,
    check_key_part,
    key_text,
    parse_bool,
    parse_date,
    parse_scalar,
    series_id,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01", dt.date(2024, 1, 1)),
        (" 2024-02-29 ", dt.date(2024, 2, 29)),
        ("1999-12-31\n", dt.date(1999, 12, 31)),
    ],
)
def test_parse_date_accepts_iso_calendar_dates(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # date.fromisoformat accepts both of these on Python 3.11; the SQL and the server do not.
        ("20240101", "is not a YYYY-MM-DD date"),
        ("2024-W01-1", "is not a YYYY-MM-DD date"),
        ("2024-1-1", "is not a YYYY-MM-DD date"),
        ("01/04/2024", "is not a YYYY-MM-DD date"),
        ("2024-01-01T00:00:00", "is not a YYYY-MM-DD date"),
        ("2024-01-01 00:00", "is not a YYYY-MM-DD date"),
        ("", "is not a YYYY-MM-DD date"),
        ("２０２４-01-01", "is not a YYYY-MM-DD date"),  # full-width digits
        ("2024-02-30", "is not a valid calendar date"),
        ("2023-02-29", "is not a valid calendar date"),
        ("2024-13-01", "is not a valid calendar date"),
        ("0000-01-01", "is not a valid calendar date"),
    ],
)
def test_parse_date_rejects_everything_else(text, message):
    with pytest.raises(ScalarError, match=message):
        parse_date(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[(t, True) for t in BOOL_TRUE],
        *[(t, False) for t in BOOL_FALSE],
        ("TRUE", True),
        (" Yes ", True),
        ("N", False),
        ("False\t", False),
    ],
)
def test_parse_bool_tokens_any_case(text, expected):
    assert parse_bool(text) is expected


@pytest.mark.parametrize("text", ["", "maybe", "2", "-1", "on", "off", "tru", "none", "0.0"])
def test_parse_bool_rejects_other_text(text):
    with pytest.raises(ScalarError, match="is not a boolean"):
        parse_bool(text)


def test_bool_spellings_name_every_token_parse_bool_reads():
    """The words a message uses are the tokens themselves, so they cannot drift apart."""
    words = bool_spellings()
    listed_true, _, rest = words.partition(" or ")
    listed_false = rest.partition(",")[0]
    assert listed_true.split("/") == list(BOOL_TRUE)
    assert listed_false.split("/") == list(BOOL_FALSE)
    assert all(parse_bool(t) is True for t in listed_true.split("/"))
    assert all(parse_bool(t) is False for t in listed_false.split("/"))
    with pytest.raises(ScalarError) as err:
        parse_bool("maybe")
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("text", "ctype", "expected"),
    [
        ("1.5", "FLOAT64", 1.5),
        (" -2 ", "FLOAT64", -2.0),
        ("1e3", "FLOAT64", 1000.0),
        ("+.5", "FLOAT64", 0.5),
        ("3.", "FLOAT64", 3.0),
        ("2.5E-2", "FLOAT64", 0.025),
        ("7", "INT64", 7),
        ("-7", "INT64", -7),
        ("+0012", "INT64", 12),
        ("9223372036854775807", "INT64", 2**63 - 1),
        ("-9223372036854775808", "INT64", -(2**63)),
        ("000000000000000000000000001", "INT64", 1),
        ("yes", "BOOL", True),
        ("F", "BOOL", False),
        ("2024-03-01", "DATE", dt.date(2024, 3, 1)),
        ("anything at all", "STRING", "anything at all"),
        ("  kept as written ", "STRING", "  kept as written "),
        ("", "STRING", ""),
    ],
)
def test_parse_scalar_by_type(text, ctype, expected):
    value = parse_scalar(text, ctype)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "ctype", "message"),
    [
        ("abc", "FLOAT64", "is not a finite number"),
        ("", "FLOAT64", "is not a finite number"),
        ("nan", "FLOAT64", "is not a finite number"),
        ("-inf", "FLOAT64", "is not a finite number"),
        ("Infinity", "FLOAT64", "is not a finite number"),
        ("1e999", "FLOAT64", "is not a finite number"),  # overflows to inf
        ("1_000", "FLOAT64", "is not a finite number"),  # float() would accept it
        ("٣", "FLOAT64", "is not a finite number"),  # a non-ASCII digit float() would accept
        ("1,5", "FLOAT64", "is not a finite number"),
        ("1.5", "INT64", "is not a whole number"),
        ("1e3", "INT64", "is not a whole number"),
        ("1_000", "INT64", "is not a whole number"),  # int() would accept it
        ("٣", "INT64", "is not a whole number"),
        ("", "INT64", "is not a whole number"),
        ("9223372036854775808", "INT64", "in the INT64 range"),
        ("-9223372036854775809", "INT64", "in the INT64 range"),
        ("9" * 5000, "INT64", "in the INT64 range"),
        ("maybe", "BOOL", "is not a boolean"),
        ("20240101", "DATE", "is not a YYYY-MM-DD date"),
        ("2024-W01-1", "DATE", "is not a YYYY-MM-DD date"),
    ],
)
def test_parse_scalar_rejects_what_the_sql_rejects(text, ctype, message):
    with pytest.raises(ScalarError, match=message):
        parse_scalar(text, ctype)


def test_parse_scalar_names_where_the_value_came_from():
    with pytest.raises(ScalarError) as err:
        parse_scalar("maybe", "BOOL", where="future.csv line 3, column on_promo")
    assert str(err.value) == (
        "future.csv line 3, column on_promo: cannot parse 'maybe' as BOOL "
        "('maybe' is not a boolean (use true/t/1/yes/y or false/f/0/no/n, any case))"
    )


def test_scalar_error_is_a_value_error():
    assert issubclass(ScalarError, ValueError)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (3.0, "3"),
        (-2.0, "-2"),
        (3.5, "3.5"),
        ("03", "03"),
        ("S01", "S01"),
        (np.float64(7.0), "7"),
        (np.float32(7.0), "7"),
        (np.int64(12), "12"),
        (np.float64(1.25), "1.25"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (None, "None"),
    ],
)
def test_key_text_drops_the_point_zero_of_integral_floats(value, text):
    assert key_text(value) == text


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((), SINGLE_SERIES_ID),
        ([], "total"),
        (["S01"], "S01"),
        (["S01", "I001"], "S01|I001"),
        ([7.0, 3], "7|3"),
        (("a", np.float64(2.0), "c"), KEY_SEPARATOR.join(["a", "2", "c"])),
    ],
)
def test_series_id_joins_keys_or_names_the_single_series(parts, expected):
    assert series_id(parts) == expected


@pytest.mark.parametrize(
    "parts",
    [
        ["S01", "I001|Z"],
        ["S01|I001", "Z"],
        ["|"],
        ["a|"],
        [f"x{KEY_SEPARATOR}y"],
        ("S01", "I001", "||"),
    ],
)
def test_series_id_refuses_key_values_that_contain_the_separator(parts):
    with pytest.raises(ScalarError, match=r"contains '\|', the character that joins key values"):
        series_id(parts)


def test_two_different_keys_never_share_a_series_id():
    # Review D4: without the check, both were "S01|I001|Z" and their histories merged.
    ids = set()
    for parts in (["S01", "I001|Z"], ["S01|I001", "Z"], ["S01", "I001"], ["S01", "Z"]):
        try:
            ids.add(series_id(parts))
        except ScalarError:
            continue
    assert ids == {"S01|I001", "S01|Z"}


def test_check_key_part_names_the_value_and_cuts_long_ones_short():
    assert check_key_part("S01") == "S01"
    with pytest.raises(ScalarError, match=r"key value 'aaa.*\.\.\. contains") as err:
        check_key_part("a" * 500 + "|")
    assert len(str(err.value)) < 250


def test_the_separator_is_the_shared_constant():
    import sf_contract.scalars as scalars
    from sf_contract import constants

    assert scalars.KEY_SEPARATOR is constants.KEY_SEPARATOR


# ------------------------------------------------------------------- a contract's date_format


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("01/02/2025", "%d/%m/%Y", dt.date(2025, 2, 1)),
        ("1/2/2025", "%d/%m/%Y", dt.date(2025, 2, 1)),  # one-digit day and month
        (" 31/10/2025 ", "%d/%m/%Y", dt.date(2025, 10, 31)),
        ("29/02/2024", "%d/%m/%Y", dt.date(2024, 2, 29)),
        ("02/01/2025", "%m/%d/%Y", dt.date(2025, 2, 1)),
        ("20250201", "%Y%m%d", dt.date(2025, 2, 1)),
        ("01.02.2025", "%d.%m.%Y", dt.date(2025, 2, 1)),
        ("2025-2-1", "%Y-%m-%d", dt.date(2025, 2, 1)),  # a declared format takes one digit too
    ],
)
def test_parse_date_in_a_contracts_format(text, fmt, expected):
    assert parse_date(text, fmt) == expected
    assert parse_scalar(text, "DATE", date_format=fmt) == expected


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("31/02/2025", "%d/%m/%Y", "is not a valid calendar date"),
        ("29/02/2025", "%d/%m/%Y", "is not a valid calendar date"),
        ("00/01/2025", "%d/%m/%Y", "is not a valid calendar date"),
        ("01/13/2025", "%d/%m/%Y", "is not a valid calendar date"),
        ("01/02/0000", "%d/%m/%Y", "is not a valid calendar date"),
        ("2025-10-31", "%d/%m/%Y", "is not a date in the format %d/%m/%Y"),
        ("01/02/25", "%d/%m/%Y", "is not a date in the format %d/%m/%Y"),
        ("001/02/2025", "%d/%m/%Y", "is not a date in the format"),
        ("01-02-2025", "%d/%m/%Y", "is not a date in the format"),
        ("1x02x2025", "%d.%m.%Y", "is not a date in the format"),  # "." is a dot, not any char
        ("٠١/٠٢/٢٠٢٥", "%d/%m/%Y", "is not a date in the format"),  # other scripts' digits
        ("2025021", "%Y%m%d", "is not a date in the format"),  # no separator: two digits each
        ("", "%d/%m/%Y", "is not a date in the format"),
    ],
)
def test_parse_date_in_a_format_rejects_everything_else(text, fmt, message):
    with pytest.raises(ScalarError, match=message):
        parse_date(text, fmt)


def test_a_format_is_compiled_to_expressions_re2_and_re_read_alike():
    from sf_contract.scalars import compile_date_format

    f = compile_date_format("%d.%m.%Y")
    assert f.pattern == r"^([0-9]{1,2})[.]([0-9]{1,2})[.]([0-9]{4})$"
    assert f.field_pattern("Y") == r"^[0-9]{1,2}[.][0-9]{1,2}[.]([0-9]{4})$"
    assert f.fields == ("d", "m", "Y")
    assert compile_date_format("%Y%m%d").pattern == r"^([0-9]{4})([0-9]{2})([0-9]{2})$"
    with pytest.raises(ValueError, match="'%y' is not supported"):
        compile_date_format("%d/%m/%y")


def test_without_a_format_dates_stay_iso():
    assert parse_scalar("2025-02-01", "DATE") == dt.date(2025, 2, 1)
    with pytest.raises(ScalarError, match="is not a YYYY-MM-DD date"):
        parse_scalar("01/02/2025", "DATE")


@pytest.mark.parametrize(("text", "expected"), [("Y", True), ("N", False), (" y ", True)])
def test_y_and_n_are_booleans(text, expected):
    """A point-of-sale export's Y/N promotion flags."""
    assert parse_bool(text) is expected
    assert parse_scalar(text, "BOOL") is expected
