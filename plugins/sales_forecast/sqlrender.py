"""Render the pipeline's SQL files.

The ``.sql`` files under ``sql/`` are Jinja templates written once, in BigQuery's dialect. The
GCP platform sends them to BigQuery as rendered; the local platform transpiles them to DuckDB
with sqlglot, so both run the same statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sales_forecast.contract import Contract

__all__ = ["TableNames", "render_sql", "split_statements", "to_duckdb"]

SQL_DIR = Path(__file__).parent / "sql"

BQ_TYPES = {
    "DATE": "DATE",
    "STRING": "STRING",
    "INT64": "INT64",
    "FLOAT64": "FLOAT64",
    "BOOL": "BOOL",
}


@dataclass(frozen=True)
class TableNames:
    """Fully qualified table names, quoted for BigQuery (backticks)."""

    prefix: str  # "project.dataset" on BigQuery, "dataset" in DuckDB

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return f"`{self.prefix}.{name}`"


def _q(name: str) -> str:
    return f"`{name}`"


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
    keys = list(contract.series_keys)
    return env.get_template(f"{name}.sql").render(
        c=contract,
        t=tables,
        keys=keys,
        date=contract.date_column,
        target=contract.target,
        columns=list(contract.columns),
        value_columns=[c for c in contract.columns if c.role not in ("date", "key")],
        bq_type=BQ_TYPES,
        **params,
    )


def split_statements(sql: str) -> list[str]:
    """Split a script into statements (sqlglot knows where string literals end)."""
    import sqlglot

    return [s.sql(dialect="bigquery") for s in sqlglot.parse(sql, read="bigquery") if s]


def to_duckdb(sql: str) -> list[str]:
    """Transpile a BigQuery script into DuckDB statements."""
    import sqlglot

    return [s for s in sqlglot.transpile(sql, read="bigquery", write="duckdb") if s.strip()]
