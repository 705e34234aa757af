"""Render the pipeline's SQL files.

The ``.sql`` files under ``sql/`` are Jinja templates written once, in BigQuery's dialect. The
GCP platform sends them to BigQuery as rendered; the local platform transpiles them to DuckDB
with sqlglot, so both run the same statements.

The tokens the SQL shares with the trainer and the server (boolean spellings, the date
pattern, the series-id rule) come from :mod:`sf_contract.constants`, a contract's
``date_format`` becomes the regular expressions of :func:`sf_contract.scalars.compile_date_format`,
and a fill constant is the contract's own typed value, so the warehouse and the trainer cannot
read them differently. A column's CSV ``header`` is never rendered: the loaders map it to the
column's name before any SQL runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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
from sf_contract.scalars import compile_date_format
from sf_contract.schema import Column, Contract, ContractError, check_identifier

__all__ = [
    "RUN_TABLES",
    "TableNames",
    "fill_literal",
    "regex_literal",
    "render_sql",
    "run_suffix",
    "string_literal",
    "to_duckdb",
]

SQL_DIR = Path(__file__).parent / "sql"
# GCP project ids (lower-case letters, digits, hyphens; "domain.com:project" legacy ids too):
# nothing that could close a backtick-quoted name.
_PROJECT_RE = re.compile(r"^([a-z][a-z0-9.-]*:)?[a-z]([a-z0-9-]*[a-z0-9])?$")


# Tables that belong to one run: two overlapping runs (a `dags test` beside the scheduler, a
# backfill, two DAGs on one dataset) each stage, check and merge their own file.
# staging_source: a Parquet input loaded as it is, on BigQuery, before stage_table.sql.
RUN_TABLES: frozenset[str] = frozenset(
    {"staging", "staging_checked", "staging_malformed", "staging_source"}
)


def run_suffix(run_id: str) -> str:
    """The identifier-safe suffix of a run's own tables: readable, and unique per run id."""
    readable = re.sub(r"[^A-Za-z0-9]+", "_", run_id).strip("_")[:48]
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:10]
    return f"{readable}_{digest}" if readable else digest


@dataclass(frozen=True)
class TableNames:
    """The pipeline's tables, fully qualified and quoted for BigQuery (backticks).

    One field per table, so a misspelt table is an AttributeError where it is written rather
    than a query against a table that does not exist. The staging tables (:data:`RUN_TABLES`)
    carry the run's suffix when ``run_id`` is given. Every part of a name has passed
    :func:`sf_contract.schema.check_identifier` (the project id, on BigQuery, its own rule),
    so no quoting inside a name is ever needed; the quotes are still always written.
    """

    prefix: str  # "project.dataset" on BigQuery, "dataset" in DuckDB
    run_id: str | None = None
    staging: str = field(init=False)
    staging_source: str = field(init=False)
    staging_malformed: str = field(init=False)
    staging_checked: str = field(init=False)
    rejected_rows: str = field(init=False)
    unknown_days: str = field(init=False)
    sales_history: str = field(init=False)
    daily_sales_features: str = field(init=False)
    backtest_results: str = field(init=False)
    daily_sales_forecasts: str = field(init=False)
    # The monitoring DAG's tables (written by the trainer's monitor command).
    forecast_accuracy: str = field(init=False)
    drift_report: str = field(init=False)

    def __post_init__(self) -> None:
        *project, dataset = self.prefix.split(".")
        check_identifier(dataset, "warehouse dataset")
        if project and not _PROJECT_RE.match(".".join(project)):
            raise ContractError(f"{'.'.join(project)!r} is not a valid GCP project id")
        for table in fields(self):
            if table.name not in ("prefix", "run_id"):
                object.__setattr__(self, table.name, f"`{self.prefix}.{self.name(table.name)}`")

    def name(self, table: str) -> str:
        """The table's own name (no dataset, no quotes), with the run's suffix if it has one."""
        if table in RUN_TABLES and self.run_id:
            return f"{table}__{run_suffix(self.run_id)}"
        return table


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


def render_sql(
    name: str, contract: Contract, tables: TableNames, render: Mapping[str, Any] | None = None
) -> str:
    """Render ``sql/<name>.sql`` (BigQuery dialect) for a contract.

    ``render`` are the template's own switches (e.g. ``incoming`` in features.sql). Values a
    user chose never go through here: they are query parameters.
    """
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
        DATE_FORMAT=DATE_FORMAT,
        DATE_PATTERN=DATE_PATTERN,
        FLOAT_PATTERN=FLOAT_PATTERN,
        INT_PATTERN=INT_PATTERN,
        SINGLE_SERIES_ID=SINGLE_SERIES_ID,
        KEY_SEPARATOR=KEY_SEPARATOR,
        # A contract's date_format as the regular expressions Python's parse_date uses too.
        compile_date_format=compile_date_format,
    )
    keys = list(contract.series_keys)
    return env.get_template(f"{name}.sql").render(
        c=contract,
        t=tables,
        keys=keys,
        date=contract.date_column,
        date_col=contract.column(contract.date_column),
        target=contract.target,
        columns=list(contract.columns),
        value_columns=[c for c in contract.columns if c.role not in ("date", "key")],
        **dict(render or {}),
    )


def to_duckdb(sql: str) -> list[str]:
    """Transpile a BigQuery script into DuckDB statements.

    An ``ALTER TABLE`` with several actions (``ADD COLUMN a ..., ADD COLUMN b ...``: one
    statement, one job on BigQuery) becomes one statement per action, the only form DuckDB takes.
    """
    import sqlglot
    from sqlglot import exp

    out = []
    for statement in sqlglot.parse(sql, read="bigquery"):
        if statement is None:
            continue
        actions = statement.args.get("actions") if isinstance(statement, exp.Alter) else None
        if actions and len(actions) > 1:
            for action in actions:
                single = statement.copy()
                single.set("actions", [action.copy()])
                out.append(single.sql(dialect="duckdb"))
        else:
            out.append(statement.sql(dialect="duckdb"))
    return [s for s in out if s.strip()]
