"""The dataset contract: what an input CSV holds, and every rule a contract must satisfy.

One parser for the whole product: the Airflow side checks a contract with it before it loads a
file, the trainer and the server check the resolved copy they receive with the same rules, so a
contract the trainer would reject never gets as far as the warehouse.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sf_contract.constants import COLUMN_TYPES, FUTURE_ROLES, RESERVED_COLUMNS, ROLES
from sf_contract.scalars import ScalarError, compile_date_format, parse_scalar

__all__ = [
    "IDENTIFIER_PATTERN",
    "Column",
    "Contract",
    "ContractError",
    "by_role",
    "check_identifier",
    "parse_contract",
]

# Every name that becomes part of a warehouse or registry identifier (contract name, column,
# dataset, model name): letters, digits and underscores, not starting with a digit. Names that
# pass need no escaping in BigQuery or DuckDB; they are still quoted wherever SQL is written.
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_NAME_RE = re.compile(IDENTIFIER_PATTERN)
_NUMERIC = ("FLOAT64", "INT64")
# Roles whose columns describe a series or its days, so a missing value is allowed.
_NULLABLE_ROLES = ("known", "forecast", "observed", "static", "availability")
# Roles whose columns every input must have; the others may be left out of a file when the
# contract says ``required: false`` (their values are then missing).
_ALWAYS_REQUIRED_ROLES = ("date", "key", "target")
_TOP_LEVEL = (
    "name",
    "description",
    "date_column",
    "target",
    "series_keys",
    "columns",
    "date_format",
)
# A STRING fill constant is written into every filled day; no real one is longer than this.
MAX_FILL_TEXT = 200
# A column's ``header``: the name its CSV files give it. Free text (spaces, punctuation, any
# script), since it is only ever compared with a file's header in Python and never written into
# SQL; but one line of printable text, of a length a header line can hold.
MAX_HEADER_CHARS = 128
# Control, format (zero-width), surrogate, private-use and unassigned characters, and line or
# paragraph separators: invisible in a message, or splitting a line where a reader would not.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class ContractError(ValueError):
    """The contract itself is invalid (not the data it describes)."""


def check_identifier(name: object, what: str) -> str:
    """``name`` when it is a safe identifier (:data:`IDENTIFIER_PATTERN`), else ContractError.

    The message shows the name with ``repr`` (so a newline or a quote is visible) and says
    what a valid one looks like.
    """
    text = name if isinstance(name, str) else None
    # fullmatch: with match, the pattern's ``$`` also accepts a trailing newline ("x\n").
    if text is None or not _NAME_RE.fullmatch(text):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise ContractError(
            f"{what} {shown} is not a valid name: use letters, digits and underscores "
            "(not starting with a digit, at most 128 characters), e.g. my_shop"
        )
    return text


@dataclass(frozen=True)
class Column:
    """One column: its warehouse type, its role and, for known columns, its fill rule.

    ``header`` is the column's name in the CSV files when it is not ``name`` (``Units Sold``
    for ``sales``): the loaders read that file column into ``name``, and everything after the
    load (SQL, features, models, requests) only ever sees ``name``.
    """

    name: str
    type: str
    role: str
    future_fill: str | None = None
    nullable: bool = True
    header: str | None = None
    # False: an input may leave the column out (every value is then missing); the retail
    # contract's availability column, which most users' files do not have.
    required: bool = True

    @property
    def csv_header(self) -> str:
        """The name this column has in the header of an input CSV."""
        return self.header if self.header is not None else self.name

    @property
    def label(self) -> str:
        """How messages name the column: ``'Units Sold' (sales)``, or ``'sales'``."""
        if self.header is None or self.header == self.name:
            return repr(self.name)
        return f"{self.header!r} ({self.name})"

    def is_available(self, value: object) -> bool:
        """Whether a value of this availability column says the item could be sold that day.

        The one rule (trainer, serving and the future file read it): a missing value is
        available (nothing says otherwise); a BOOL is its truth; a number (a quantity on hand)
        is available when above 0. ``value`` may be a parsed value, a float NaN or a text.
        """
        if value is None or (isinstance(value, float) and value != value):
            return True
        if isinstance(value, str):
            if not value.strip():
                return True
            value = parse_scalar(value, self.type)
        if self.type == "BOOL":
            return bool(value)
        return float(value) > 0  # type: ignore[arg-type]

    def fill_value(self) -> float | int | bool | object | None:
        """The constant a ``zero``/``false``/``value:<x>`` rule fills with.

        ``None`` for ``last``, ``weekend`` and ``climatology``, whose values depend on the series
        or the day.
        """
        rule = self.future_fill or "last"
        if rule in ("last", "weekend", "climatology"):
            return None
        if rule == "zero":
            return 0.0 if self.type in _NUMERIC else False
        if rule == "false":
            return False
        return parse_scalar(rule.split(":", 1)[1], self.type)


@dataclass(frozen=True)
class Contract:
    """Date column, target, series keys and every other column with its type and role."""

    name: str
    date_column: str
    target: str
    series_keys: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str = ""
    # The strftime subset of sf_contract.scalars.compile_date_format; None is YYYY-MM-DD.
    date_format: str | None = None
    # Keys a contract file may carry beyond the schema (kept, and handed on, as they are).
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<contract>") -> Contract:
        return parse_contract(data, source)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def csv_headers(self) -> list[str]:
        """The header names an input CSV must have (any order): each column's ``csv_header``."""
        return [c.csv_header for c in self.columns]

    def column_for_header(self, header: str) -> Column:
        """The column a (trimmed) CSV header name is read into; ContractError if none."""
        for c in self.columns:
            if c.csv_header == header:
                return c
        raise ContractError(f"contract {self.name!r} has no column with the header {header!r}")

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ContractError(f"contract {self.name!r} has no column {name!r}")

    def by_role(self, *roles: str) -> list[Column]:
        return [c for c in self.columns if c.role in roles]

    @property
    def known_columns(self) -> list[Column]:
        return self.by_role("known")

    @property
    def forecast_columns(self) -> list[Column]:
        """Observed after the day, and given for forecast days where a forecast exists."""
        return self.by_role("forecast")

    @property
    def future_columns(self) -> list[Column]:
        """What a future file gives for forecast days: known and forecast columns."""
        return self.by_role(*FUTURE_ROLES)

    @property
    def availability_column(self) -> Column | None:
        """The column saying whether a day could sell (open, in stock), if the contract has one."""
        found = self.by_role("availability")
        return found[0] if found else None

    @property
    def observed_columns(self) -> list[Column]:
        return self.by_role("observed")

    @property
    def static_columns(self) -> list[Column]:
        return self.by_role("static")

    @property
    def covariates(self) -> list[Column]:
        return self.by_role("known", "forecast", "observed", "static")

    def bigquery_schema_fields(self, all_strings: bool = False) -> list[dict[str, str]]:
        """``schema_fields`` for a BigQuery load job.

        Staging loads every column as STRING (``all_strings``) so that a malformed value becomes
        a quarantine row with a reason instead of failing the whole load or, worse, being
        dropped by ``max_bad_records``.
        """
        return [
            {
                "name": c.name,
                "type": "STRING" if all_strings else c.type,
                "mode": "NULLABLE" if (all_strings or c.nullable) else "REQUIRED",
            }
            for c in self.columns
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form handed to the trainer and stored with every model (round-trips)."""
        columns = []
        for c in self.columns:
            item: dict[str, Any] = {"name": c.name, "type": c.type, "role": c.role}
            if c.future_fill is not None:
                item["future_fill"] = c.future_fill
            if c.nullable != (c.role in _NULLABLE_ROLES):
                item["nullable"] = c.nullable
            if c.header is not None:
                item["header"] = c.header
            if not c.required:
                item["required"] = False
            columns.append(item)
        out: dict[str, Any] = {
            **self.extra,
            "name": self.name,
            "date_column": self.date_column,
            "target": self.target,
            "series_keys": list(self.series_keys),
            "columns": columns,
        }
        if self.description:
            out["description"] = self.description
        if self.date_format is not None:
            out["date_format"] = self.date_format
        return out


def _shown(value: object, limit: int = 60) -> str:
    """``repr`` of a contract value, cut short: messages end up in task logs and the UI."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _check_fill_text(constant: str, name: str, source: str) -> None:
    # A constant is pasted into SQL as a literal. STRING constants are the only free text
    # (other types must also pass parse_scalar's strict patterns); the same limits apply to
    # every type so that no value with a newline, NUL or escape is kept, even where
    # parse_scalar would strip it.
    if len(constant) > MAX_FILL_TEXT:
        raise ContractError(
            f"{source}: column {name!r}: the future_fill value: constant is "
            f"{len(constant)} characters long; at most {MAX_FILL_TEXT} are allowed"
        )
    bad = next((c for c in constant if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ContractError(
            f"{source}: column {name!r}: the future_fill value: constant contains the control "
            f"character {bad!r}; use printable text only"
        )


def _fill_rule(raw: object, name: str, ctype: str, role: str, source: str) -> str | None:
    if raw is None:
        # Known columns without a rule carry the series' last value forward: the least
        # surprising choice for prices and flags that rarely change. A numeric forecast
        # column (weather) gets its usual value for the time of year instead.
        if role == "forecast" and ctype in _NUMERIC:
            return "climatology"
        return "last" if role in FUTURE_ROLES else None
    if role not in FUTURE_ROLES:
        raise ContractError(
            f"{source}: future_fill only applies to known and forecast columns ({name!r})"
        )
    # YAML reads an unquoted `false` as a boolean.
    text = "false" if raw is False else str(raw)
    # The rule's name is case-insensitive; a value:<x> constant is kept as written.
    rule = f"value:{text[6:]}" if text.lower().startswith("value:") else text.lower()
    if rule == "last":
        return rule
    if rule == "climatology":
        if ctype not in _NUMERIC:
            raise ContractError(
                f"{source}: column {name!r}: future_fill 'climatology' needs a numeric column"
            )
        return rule
    if rule == "zero":
        if ctype not in (*_NUMERIC, "BOOL"):
            raise ContractError(
                f"{source}: column {name!r}: future_fill 'zero' needs a numeric or BOOL column"
            )
        return rule
    if rule in ("false", "weekend"):
        if ctype != "BOOL":
            what = "false" if rule == "false" else "weekend (Saturday or Sunday)"
            raise ContractError(
                f"{source}: column {name!r}: future_fill {what} needs a BOOL column"
            )
        return rule
    if rule.startswith("value:"):
        constant = rule.split(":", 1)[1]
        _check_fill_text(constant, name, source)
        try:
            parse_scalar(constant, ctype)
        except ScalarError as exc:
            raise ContractError(
                f"{source}: column {name!r}: future_fill {_shown(rule)} is not a {ctype} value "
                f"({exc})"
            ) from None
        return rule
    raise ContractError(
        f"{source}: column {name!r} has future_fill {_shown(text)}; "
        "use last, zero, false, weekend, climatology or value:<x>"
    )


def _header_name(raw: object, name: str, source: str) -> str | None:
    """A column's ``header`` (trimmed), or None when it has none; ContractError if invalid."""
    if raw is None:
        return None
    where = f"{source}: column {name!r}: header"
    if not isinstance(raw, str):
        raise ContractError(f"{where} must be a text (quote it in YAML), got {_shown(raw)}")
    text = raw.strip()
    if not text:
        raise ContractError(f"{where} is empty; leave it out to use the name {name!r}")
    if len(text) > MAX_HEADER_CHARS:
        raise ContractError(
            f"{where} is {len(text)} characters long; at most {MAX_HEADER_CHARS} are allowed"
        )
    bad = next((c for c in text if unicodedata.category(c) in _UNPRINTABLE), None)
    if bad is not None:
        raise ContractError(
            f"{where} {_shown(text)} contains the unprintable character {bad!r} "
            f"(U+{ord(bad):04X}); use printable text only"
        )
    return text


def _parse_column(
    raw: object, *, date_column: str, target: str, keys: tuple[str, ...], source: str
) -> Column:
    if not isinstance(raw, Mapping) or "name" not in raw:
        raise ContractError(f"{source}: every column needs at least a name, got {_shown(raw)}")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ContractError(
            f"{source}: column name {_shown(name)} is not a valid SQL identifier "
            "(letters, digits and underscores, not starting with a digit, at most 128)"
        )
    # Warehouse column names are case-insensitive: Series_ID is series_id.
    if name.lower() in RESERVED_COLUMNS:
        raise ContractError(f"{source}: column name {name!r} is reserved by the pipeline")
    ctype = str(raw.get("type", "")).upper()
    if ctype not in COLUMN_TYPES:
        raise ContractError(
            f"{source}: column {name!r} has type {_shown(ctype)}; use one of {COLUMN_TYPES}"
        )
    role_raw = raw.get("role")
    if role_raw is None:
        # The top-level fields already say which columns are the date, the target and the keys.
        role_raw = {date_column: "date", target: "target"}.get(name)
        if role_raw is None and name in keys:
            role_raw = "key"
    role = str(role_raw or "")
    if role not in ROLES:
        raise ContractError(
            f"{source}: column {name!r} has role {_shown(role)}; use one of {ROLES}"
        )
    fill = _fill_rule(raw.get("future_fill"), name, ctype, role, source)
    nullable_raw = raw.get("nullable", role in _NULLABLE_ROLES)
    if not isinstance(nullable_raw, bool):
        raise ContractError(f"{source}: column {name!r}: nullable must be true or false")
    if role in ("date", "key", "target") and nullable_raw:
        raise ContractError(f"{source}: {role} column {name!r} cannot be nullable")
    header = _header_name(raw.get("header"), name, source)
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise ContractError(f"{source}: column {name!r}: required must be true or false")
    if not required and role in _ALWAYS_REQUIRED_ROLES:
        raise ContractError(f"{source}: the {role} column {name!r} cannot be left out of a file")
    if role == "availability":
        if ctype not in ("BOOL", *_NUMERIC):
            raise ContractError(
                f"{source}: availability column {name!r} must be BOOL (true = could sell) or a "
                f"number (a quantity on hand: available when > 0), got {ctype}"
            )
        if not nullable_raw:
            raise ContractError(
                f"{source}: availability column {name!r} cannot be non-nullable: a missing "
                "value means available"
            )
    return Column(
        name=name,
        type=ctype,
        role=role,
        future_fill=fill,
        nullable=nullable_raw,
        header=header,
        required=required,
    )


def _date_format(raw: object, source: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ContractError(
            f"{source}: date_format must be a text such as '%d/%m/%Y', got {_shown(raw)}"
        )
    try:
        compile_date_format(raw)
    except ValueError as exc:
        raise ContractError(f"{source}: {exc}") from None
    return raw


def parse_contract(data: Mapping[str, Any], source: str = "<contract>") -> Contract:
    """Check a contract mapping (from YAML or JSON) against every rule; return a Contract."""
    if not isinstance(data, Mapping):
        raise ContractError(f"{source}: a contract is a mapping, got {type(data).__name__}")
    for key in ("name", "date_column", "target", "columns"):
        if key not in data:
            raise ContractError(f"{source}: missing required key {key!r}")
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise ContractError(f"{source}: name must be a non-empty string, got {_shown(name)}")
    # The name becomes part of warehouse dataset/schema and model names, pasted into SQL:
    # the identifier rule is what keeps it from being SQL (review D1).
    check_identifier(name, f"{source}: contract name")
    raw_columns = data["columns"]
    if not isinstance(raw_columns, list) or not raw_columns:
        raise ContractError(f"{source}: columns must be a non-empty list")
    raw_keys = data.get("series_keys") or []
    if not isinstance(raw_keys, list):
        raise ContractError(f"{source}: series_keys must be a list of column names")
    keys = tuple(check_identifier(k, f"{source}: series key") for k in raw_keys)
    date_column = check_identifier(data["date_column"], f"{source}: date_column")
    target = check_identifier(data["target"], f"{source}: target")
    columns = tuple(
        _parse_column(c, date_column=date_column, target=target, keys=keys, source=source)
        for c in raw_columns
    )
    # Case-insensitive, as in BigQuery and DuckDB: Price and price cannot share a table.
    lowered = [c.name.lower() for c in columns]
    dupes = sorted({c.name for c in columns if lowered.count(c.name.lower()) > 1})
    if dupes:
        raise ContractError(f"{source}: duplicate column names {dupes}")
    # Headers are matched exactly, but two that differ only in case are one mistake away from
    # each other (and one from a file that spells them the other way).
    seen: dict[str, Column] = {}
    for c in columns:
        other = seen.setdefault(c.csv_header.lower(), c)
        if other is not c:
            raise ContractError(
                f"{source}: columns {other.name!r} and {c.name!r} would both be read from the "
                f"file's column {c.csv_header!r} (headers must differ by more than case)"
            )
    by_name = {c.name: c for c in columns}

    def expect(column: str, role: str) -> Column:
        col = by_name.get(column)
        if col is None:
            raise ContractError(f"{source}: {role} column {column!r} is not among the columns")
        if col.role != role:
            raise ContractError(f"{source}: column {column!r} must have role {role!r}")
        return col

    if expect(date_column, "date").type != "DATE":
        raise ContractError(f"{source}: the date column must have type DATE")
    if expect(target, "target").type not in _NUMERIC:
        raise ContractError(f"{source}: the target must be FLOAT64 or INT64")
    for k in keys:
        expect(k, "key")
    if len(set(keys)) != len(keys):
        raise ContractError(f"{source}: series_keys lists a column twice")
    if len(by_role(columns, "date")) != 1:
        raise ContractError(f"{source}: exactly one column must have role 'date'")
    if len(by_role(columns, "target")) != 1:
        raise ContractError(f"{source}: exactly one column must have role 'target'")
    availability = by_role(columns, "availability")
    if len(availability) > 1:
        raise ContractError(
            f"{source}: {len(availability)} availability columns "
            f"{[c.name for c in availability]}; a contract has at most one (combine them, e.g. "
            "open AND in stock, before the load)"
        )
    extra_keys = [c.name for c in columns if c.role == "key" and c.name not in keys]
    if extra_keys:
        raise ContractError(f"{source}: key columns {extra_keys} are not listed in series_keys")
    return Contract(
        name=name,
        date_column=date_column,
        target=target,
        series_keys=keys,
        columns=columns,
        description=str(data.get("description") or ""),
        date_format=_date_format(data.get("date_format"), source),
        extra={k: v for k, v in data.items() if k not in _TOP_LEVEL},
        source=source,
    )


def by_role(columns: tuple[Column, ...], role: str) -> list[Column]:
    return [c for c in columns if c.role == role]
