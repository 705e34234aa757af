"""Render the pipeline's SQL files.

The ``.sql`` files under ``sql/`` are Jinja templates written once, in BigQuery's dialect. The
GCP platform sends them to BigQuery as rendered; the local platform transpiles them to DuckDB
with sqlglot, so both run the same statements.

The tokens the SQL shares with the trainer and the server (boolean spellings, the date
pattern, the series-id rule) come from :mod:`sf_contract.constants`, and a fill constant is
the contract's own typed value, so the warehouse and the trainer cannot read them differently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sf_contract.constants import (
    BOOL_FALSE,
    BOOL_TRUE,
    DATE_PATTERN,
    FLOAT_PATTERN,
    INT_PATTERN,
    KEY_SEPARATOR,
    SINGLE_SERIES_ID,
)
from sf_contract.schema import Column, Contract

__all__ = [
    "TableNames",
    "fill_literal",
    "regex_literal",
    "render_sql",
    "string_literal",
    "to_duckdb",
]

SQL_DIR = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class TableNames:
    """The pipeline's tables, fully qualified and quoted for BigQuery (backticks).

    One field per table, so a misspelt table is an AttributeError where it is written rather
    than a query against a table that does not exist.
    """

    prefix: str  # "project.dataset" on BigQuery, "dataset" in DuckDB
    staging: str = field(init=False)
    staging_malformed: str = field(init=False)
    staging_checked: str = field(init=False)
    rejected_rows: str = field(init=False)
    sales_history: str = field(init=False)
    daily_sales_features: str = field(init=False)
    backtest_results: str = field(init=False)
    daily_sales_forecasts: str = field(init=False)

    def __post_init__(self) -> None:
        for table in fields(self):
            if table.name != "prefix":
                object.__setattr__(self, table.name, f"`{self.prefix}.{table.name}`")


def _q(name: str) -> str:
    return f"`{name}`"


def string_literal(text: str) -> str:
    """``text`` as a BigQuery string literal (backslash escapes, which sqlglot turns into
    DuckDB's quoting)."""
    escaped = (
        str(text)
        .replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f"'{escaped}'"


def regex_literal(pattern: str) -> str:
    """``pattern`` as a BigQuery raw string literal (``r'...'``), backslashes kept as written."""
    if "'" in pattern or "\n" in pattern:
        raise ValueError(f"pattern {pattern!r} cannot be a raw string literal")
    return f"r'{pattern}'"


def fill_literal(col: Column) -> str:
    """The constant a ``zero``/``false``/``value:<x>`` rule fills with, as a typed SQL literal.

    The value is the contract's own (:meth:`Column.fill_value`), parsed once by the shared
    scalar rule: ``value:yes`` on a BOOL is TRUE here as in the trainer, where a SQL cast would
    have its own idea of which spellings are booleans.
    """
    value = col.fill_value()
    if value is None:
        raise ValueError(f"column {col.name!r}: future_fill {col.future_fill!r} has no constant")
    if col.type == "BOOL":
        return "TRUE" if value else "FALSE"
    if col.type == "INT64" and isinstance(value, int | float):
        return str(int(value))
    if col.type == "FLOAT64" and isinstance(value, int | float):
        return repr(float(value))
    if col.type == "DATE" and isinstance(value, dt.date):
        return f"DATE {string_literal(value.isoformat())}"
    if col.type == "STRING":
        return string_literal(str(value))
    raise ValueError(f"column {col.name!r}: no {col.type} literal for {value!r}")


def render_sql(name: str, contract: Contract, tables: TableNames, **params: Any) -> str:
    """Render ``sql/<name>.sql`` (BigQuery dialect) for a contract."""
    import jinja2  # local import: keep DAG parsing light

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(SQL_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["q"] = _q
    env.filters["lit"] = string_literal
    env.filters["regex"] = regex_literal
    env.filters["fill_literal"] = fill_literal
    # Globals, not render arguments: the macros in _macros.sql are imported without the
    # render context and still need them.
    env.globals.update(
        BOOL_TRUE=BOOL_TRUE,
        BOOL_FALSE=BOOL_FALSE,
        DATE_PATTERN=DATE_PATTERN,
        FLOAT_PATTERN=FLOAT_PATTERN,
        INT_PATTERN=INT_PATTERN,
        SINGLE_SERIES_ID=SINGLE_SERIES_ID,
        KEY_SEPARATOR=KEY_SEPARATOR,
    )
    keys = list(contract.series_keys)
    return env.get_template(f"{name}.sql").render(
        c=contract,
        t=tables,
        keys=keys,
        date=contract.date_column,
        target=contract.target,
        columns=list(contract.columns),
        value_columns=[c for c in contract.columns if c.role not in ("date", "key")],
        **params,
    )


def to_duckdb(sql: str) -> list[str]:
    """Transpile a BigQuery script into DuckDB statements."""
    import sqlglot

    return [s for s in sqlglot.transpile(sql, read="bigquery", write="duckdb") if s.strip()]
