"""The one rule for turning a text value into a contract type, and a key into series-id text.

validate.sql applies the same rules in SQL (its tokens come from :mod:`sf_contract.constants`);
the trainer applies them to future files and fill constants, the server to request values.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sf_contract.constants import (
    BOOL_FALSE,
    BOOL_TRUE,
    DATE_FORMAT,
    DATE_FORMAT_FIELDS,
    DATE_FORMAT_SEPARATORS,
    DATE_PATTERN,
    FLOAT_PATTERN,
    INT_PATTERN,
    KEY_SEPARATOR,
    SINGLE_SERIES_ID,
)

__all__ = [
    "DateFormat",
    "ScalarError",
    "bool_spellings",
    "check_key_part",
    "compile_date_format",
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


@dataclass(frozen=True)
class DateFormat:
    """A contract's ``date_format`` as regular expressions both engines and Python read alike.

    ``pattern`` matches the whole (trimmed) text, one group per field; ``field_pattern`` is
    the same expression with only one field captured (BigQuery's REGEXP_EXTRACT returns the
    one group). The expressions use ``[0-9]`` and plain literals only, which RE2 (BigQuery,
    DuckDB) and Python's ``re`` read the same way. ``%Y`` is four digits; ``%m`` and ``%d``
    one or two (``1/2/2025`` and ``01/02/2025``), except next to another field without a
    separator (``%Y%m%d``), where only two digits keep the text unambiguous.
    """

    text: str
    fields: tuple[str, ...]  # "Y", "m", "d" in the order they appear
    parts: tuple[str, ...]  # the regex of each field and literal, in order
    field_index: tuple[int, ...]  # where each field's regex is in ``parts``

    @property
    def pattern(self) -> str:
        return self._joined(set(self.fields))

    def field_pattern(self, field: str) -> str:
        """The whole-text regex with only ``field`` (``Y``, ``m`` or ``d``) captured."""
        if field not in self.fields:
            raise KeyError(field)
        return self._joined({field})

    def _joined(self, captured: set[str]) -> str:
        parts = list(self.parts)
        for field, i in zip(self.fields, self.field_index, strict=True):
            if field in captured:
                parts[i] = f"({parts[i]})"
        return "^" + "".join(parts) + "$"


def _format_error(fmt: str, why: str) -> ValueError:
    allowed = " ".join(DATE_FORMAT_FIELDS)
    seps = " ".join(repr(c) for c in DATE_FORMAT_SEPARATORS)
    return ValueError(
        f"date_format {fmt!r}: {why}; use {allowed}, each once, separated by any of {seps}"
        ", e.g. %d/%m/%Y"
    )


@functools.lru_cache(maxsize=64)
def compile_date_format(fmt: str) -> DateFormat:
    """``fmt`` (e.g. ``%d/%m/%Y``) compiled; ValueError, saying what is allowed, otherwise.

    A deliberately small strftime subset: the same text must mean the same date in BigQuery,
    DuckDB and Python, and locale-dependent or ambiguous directives (``%b``, ``%y``) do not.
    """
    if not isinstance(fmt, str) or not fmt:
        raise _format_error(str(fmt), "it must be a non-empty text")
    if len(fmt) > 32:
        raise _format_error(fmt[:32] + "...", "it is longer than 32 characters")
    tokens: list[str] = []  # "%Y" / "%m" / "%d" or one separator character
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            directive = fmt[i : i + 2]
            if directive not in DATE_FORMAT_FIELDS:
                hint = " (two-digit years are ambiguous: use %Y)" if directive == "%y" else ""
                raise _format_error(fmt, f"{directive!r} is not supported{hint}")
            tokens.append(directive)
            i += 2
            continue
        if fmt[i] not in DATE_FORMAT_SEPARATORS:
            raise _format_error(fmt, f"{fmt[i]!r} is neither a field nor a separator")
        tokens.append(fmt[i])
        i += 1
    for directive in DATE_FORMAT_FIELDS:
        count = tokens.count(directive)
        if count != 1:
            why = "is missing" if count == 0 else "appears more than once"
            raise _format_error(fmt, f"{directive} {why}")
    if tokens[0] not in DATE_FORMAT_FIELDS or tokens[-1] not in DATE_FORMAT_FIELDS:
        # Values are trimmed before they are read: a leading or trailing separator (a space)
        # could never match.
        raise _format_error(fmt, "it must start and end with a field")
    parts: list[str] = []
    fields: list[str] = []
    index: list[int] = []
    for n, token in enumerate(tokens):
        if token in DATE_FORMAT_FIELDS:
            field = token[1]
            neighbours = tokens[max(n - 1, 0) : n] + tokens[n + 1 : n + 2]
            fixed = any(t in DATE_FORMAT_FIELDS for t in neighbours)
            width = "{4}" if field == "Y" else "{2}" if fixed else "{1,2}"
            fields.append(field)
            index.append(len(parts))
            parts.append(f"[0-9]{width}")
        else:
            # A character class, not a backslash escape: RE2 and re agree on "[.]".
            parts.append("[.]" if token == "." else token)
    return DateFormat(text=fmt, fields=tuple(fields), parts=tuple(parts), field_index=tuple(index))


def parse_date(text: str, fmt: str | None = None) -> dt.date:
    """A calendar date: ``YYYY-MM-DD`` by default, else in a contract's ``date_format``.

    Without ``fmt`` anything but ISO (``20240101``, ``2024-W01-1``) is an error; with it, the
    text must match :func:`compile_date_format`'s expression and be a real day.
    """
    value = str(text).strip()
    if fmt is None:
        if not _DATE_RE.match(value):
            raise ScalarError(f"{text!r} is not a {DATE_FORMAT} date")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ScalarError(f"{text!r} is not a valid calendar date") from None
    compiled = compile_date_format(fmt)
    match = re.fullmatch(compiled.pattern, value)
    if match is None:
        raise ScalarError(f"{text!r} is not a date in the format {fmt}")
    parts = dict(zip(compiled.fields, (int(g) for g in match.groups()), strict=True))
    try:
        return dt.date(parts["Y"], parts["m"], parts["d"])
    except ValueError:
        raise ScalarError(f"{text!r} is not a valid calendar date") from None


def bool_spellings() -> str:
    """The text :func:`parse_bool` reads, in words, for messages that say what is accepted."""
    return f"{'/'.join(BOOL_TRUE)} or {'/'.join(BOOL_FALSE)}, any case"


def parse_bool(text: str) -> bool:
    """``true/t/1/yes/y`` or ``false/f/0/no/n``, any case, trimmed."""
    low = str(text).strip().lower()
    if low in BOOL_TRUE:
        return True
    if low in BOOL_FALSE:
        return False
    raise ScalarError(f"{text!r} is not a boolean (use {bool_spellings()})")


def parse_scalar(
    text: str, column_type: str, where: str | None = None, date_format: str | None = None
) -> float | int | bool | dt.date | str:
    """``text`` as a value of ``column_type``; :class:`ScalarError` (naming ``where``) if not.

    ``date_format`` is a contract's format for DATE text read from its CSV files
    (:func:`parse_date`); ``None`` is ``YYYY-MM-DD``.
    """
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
            return parse_date(value, date_format)
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
