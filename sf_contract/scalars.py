"""The one rule for turning a text value into a contract type, and a key into series-id text.

validate.sql applies the same rules in SQL (its tokens come from :mod:`sf_contract.constants`);
the trainer applies them to future files and fill constants, the server to request values.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence

from sf_contract.constants import (
    BOOL_FALSE,
    BOOL_TRUE,
    DATE_FORMAT,
    DATE_PATTERN,
    FLOAT_PATTERN,
    INT_PATTERN,
    KEY_SEPARATOR,
    SINGLE_SERIES_ID,
)

__all__ = [
    "ScalarError",
    "check_key_part",
    "key_text",
    "parse_bool",
    "parse_date",
    "parse_scalar",
    "series_id",
]

# validate.sql checks text against the same patterns. ASCII: Python's \d also matches other
# scripts' digits, and int()/float() also take "1_000" (float() "nan" and "infinity" too).
_DATE_RE = re.compile(DATE_PATTERN, re.ASCII)
_INT_RE = re.compile(INT_PATTERN, re.ASCII)
_FLOAT_RE = re.compile(FLOAT_PATTERN, re.ASCII)
_INT64_RANGE = range(-(2**63), 2**63)


class ScalarError(ValueError):
    """A text value is not a valid value of its column's type."""


def parse_date(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` calendar date; anything else (``20240101``, ``2024-W01-1``) is an error."""
    value = str(text).strip()
    if not _DATE_RE.match(value):
        raise ScalarError(f"{text!r} is not a {DATE_FORMAT} date")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ScalarError(f"{text!r} is not a valid calendar date") from None


def parse_bool(text: str) -> bool:
    """``true/t/1/yes/y`` or ``false/f/0/no/n``, any case."""
    low = str(text).strip().lower()
    if low in BOOL_TRUE:
        return True
    if low in BOOL_FALSE:
        return False
    raise ScalarError(f"{text!r} is not a boolean (use true or false)")


def parse_scalar(
    text: str, column_type: str, where: str | None = None
) -> float | int | bool | dt.date | str:
    """``text`` as a value of ``column_type``; :class:`ScalarError` (naming ``where``) if not."""
    value = str(text).strip()
    try:
        if column_type == "FLOAT64":
            number = float(value) if _FLOAT_RE.match(value) else math.nan
            if not math.isfinite(number):
                raise ScalarError(f"{text!r} is not a finite number")
            return number
        if column_type == "INT64":
            # The length check first: int() refuses text of more than 4300 digits.
            digits = value.lstrip("+-").lstrip("0")
            if not _INT_RE.match(value) or len(digits) > 19 or int(value) not in _INT64_RANGE:
                raise ScalarError(f"{text!r} is not a whole number in the INT64 range")
            return int(value)
        if column_type == "BOOL":
            return parse_bool(value)
        if column_type == "DATE":
            return parse_date(value)
    except ScalarError as exc:
        if where is None:
            raise
        raise ScalarError(f"{where}: cannot parse {text!r} as {column_type} ({exc})") from None
    return str(text)


def key_text(value: object) -> str:
    """A key value as it appears in a series id.

    The warehouse casts keys to STRING; a key read back as a float must not pick up a ``.0``.
    """
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    # numpy floats are not ``float`` subclasses in every version; they all have is_integer.
    is_integer = getattr(value, "is_integer", None)
    if not isinstance(value, (int, str)) and callable(is_integer):
        try:
            if is_integer():
                return str(int(value))  # type: ignore[call-overload]
        except (TypeError, ValueError, OverflowError):
            pass
    return str(value)


def check_key_part(text: str) -> str:
    """``text`` (a :func:`key_text`) when it can be part of a series id, else ScalarError.

    Key values are joined with :data:`KEY_SEPARATOR` without escaping, so a value holding the
    separator would let two different keys share one id: (``S01``, ``I001|Z``) and
    (``S01|I001``, ``Z``) are both ``S01|I001|Z``, and their histories would merge. validate.sql
    rejects such rows with the same rule.
    """
    if KEY_SEPARATOR in text:
        shown = repr(text) if len(text) <= 60 else repr(text[:57]) + "..."
        raise ScalarError(
            f"key value {shown} contains {KEY_SEPARATOR!r}, the character that joins key "
            "values into a series id; two different keys could get the same id. "
            f"Remove {KEY_SEPARATOR!r} from key values"
        )
    return text


def series_id(parts: Sequence[object]) -> str:
    """The series id of one row: its key values joined, or the single series' id.

    :class:`ScalarError` when a key value contains :data:`KEY_SEPARATOR`
    (see :func:`check_key_part`): an id always stands for exactly one key tuple.
    """
    if not parts:
        return SINGLE_SERIES_ID
    return KEY_SEPARATOR.join(check_key_part(key_text(p)) for p in parts)
