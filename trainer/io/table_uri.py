"""Table URIs (``duckdb://``, ``bq://``, Parquet / CSV paths) and the pieces of a table read
that every warehouse shares."""

from __future__ import annotations

__all__ = ["TableURI", "arrow_to_pandas", "date_filter", "parse_table_uri"]

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from trainer.errors import TrainerError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_BQ_TABLE = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class TableURI:
    """A parsed table location: ``kind`` is duckdb, bigquery, parquet or csv."""

    kind: str
    location: str
    table: str | None = None

    def __str__(self) -> str:
        if self.kind == "duckdb":
            return f"duckdb://{self.location}?table={self.table}"
        if self.kind == "bigquery":
            return f"bq://{self.location}"
        return self.location


def parse_table_uri(uri: str) -> TableURI:
    """Parse a table URI; anything unsupported is a :class:`TrainerError` naming the forms."""
    if not uri or not isinstance(uri, str):
        raise TrainerError("empty table URI")
    if uri.startswith("duckdb://"):
        parts = urlsplit(uri)
        path = parts.netloc + parts.path
        table = (parse_qs(parts.query).get("table") or [""])[0]
        if not path:
            raise TrainerError(f"bad URI {uri!r}: no database file (duckdb:///abs/path.duckdb)")
        if not table or not _IDENT.fullmatch(table):
            raise TrainerError(f"bad URI {uri!r}: needs ?table=<name> with a plain table name")
        return TableURI("duckdb", path, table)
    if uri.startswith("bq://"):
        location = uri[len("bq://") :]
        if not _BQ_TABLE.match(location):
            raise TrainerError(f"bad URI {uri!r}: expected bq://project.dataset.table")
        return TableURI("bigquery", location)
    lowered = uri.lower().split("?", 1)[0]
    if lowered.endswith(".parquet"):
        return TableURI("parquet", uri)
    if lowered.endswith((".csv", ".csv.gz")):
        return TableURI("csv", uri)
    raise TrainerError(
        f"unsupported table URI {uri!r}: use duckdb:///path.duckdb?table=name, "
        "bq://project.dataset.table, or a .parquet / .csv path"
    )


def date_filter(
    date_column: str | None,
    cutoff: dt.date | None,
    since: dt.date | None,
    quote: Callable[[str], str],
    param: Callable[[str], str],
    cast: bool = True,
) -> tuple[str, list[tuple[str, dt.date]]]:
    """``WHERE`` clause keeping ``since <= date_column <= cutoff`` and its ``(name, value)``
    parameters, in the warehouse's quoting (``quote``) and placeholder (``param``) style."""
    if not date_column:
        return "", []
    clauses: list[str] = []
    args: list[tuple[str, dt.date]] = []
    col = f"CAST({quote(date_column)} AS DATE)" if cast else quote(date_column)
    if cutoff is not None:
        clauses.append(f"{col} <= {param('cutoff')}")
        args.append(("cutoff", cutoff))
    if since is not None:
        clauses.append(f"{col} >= {param('since')}")
        args.append(("since", since))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def arrow_to_pandas(table: Any, compact: bool) -> pd.DataFrame:
    """An Arrow result as a DataFrame (``compact``: strings as categoricals)."""
    if not compact:
        return table.to_pandas()
    # Strings as categoricals: a 30M-row panel repeats each key thousands of times, and one
    # Python string object per cell would cost several GB.
    return table.to_pandas(strings_to_categorical=True, self_destruct=True)
