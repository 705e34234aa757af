"""Reading and writing tables by URI, whatever holds them: DuckDB, BigQuery, Parquet / CSV.

Writes replace the rows of their run (``replace_where``), so re-running a run never appends
duplicates; reads push the date filter into the warehouse.
"""

from __future__ import annotations

__all__ = ["read_table", "sql_types_for", "write_table"]

import datetime as dt
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import fsspec
import numpy as np
import pandas as pd

from trainer.errors import TrainerError
from trainer.io import bigquery_tables, duckdb_tables
from trainer.io.files import is_local, local_path, open_file
from trainer.io.table_uri import parse_table_uri


def read_table(
    uri: str,
    *,
    date_column: str | None = None,
    cutoff: dt.date | None = None,
    columns: Sequence[str] | None = None,
    since: dt.date | None = None,
    compact: bool = False,
) -> pd.DataFrame:
    """Read a table, keeping only rows with ``since <= date_column <= cutoff`` when given.

    For DuckDB and BigQuery the date filter is pushed into the query, so a backfill never even
    loads rows from after its own date. ``columns``: read only these (those that exist).
    ``compact``: strings come back as categoricals (what a 30M-row panel needs to fit).
    """
    loc = parse_table_uri(uri)
    if loc.kind == "duckdb":
        df = duckdb_tables.read_duckdb(loc, date_column, cutoff, columns, since, compact)
    elif loc.kind == "bigquery":
        df = bigquery_tables.read_bigquery(loc, date_column, cutoff, columns, since, compact)
    else:
        try:
            with open_file(loc.location, "rb") as handle:
                if loc.kind == "parquet":
                    df = pd.read_parquet(handle)
                else:
                    compression = "gzip" if loc.location.lower().endswith(".gz") else None
                    df = pd.read_csv(handle, compression=compression)
        except (ValueError, OSError) as exc:
            if isinstance(exc, TrainerError):
                raise
            raise TrainerError(f"cannot read {uri}: {exc}") from None
        if columns is not None:
            df = df[[c for c in df.columns if c in set(columns)]]
        if (cutoff is not None or since is not None) and date_column:
            if date_column not in df.columns:
                raise TrainerError(f"{uri} has no column '{date_column}'")
            dates = pd.to_datetime(df[date_column], errors="coerce")
            if dates.isna().any():
                row = int(np.flatnonzero(dates.isna())[0])
                raise TrainerError(
                    f"{uri}: row {row + 1}: cannot parse {df[date_column].iloc[row]!r} as a date"
                )
            keep = np.ones(len(df), dtype=bool)
            if cutoff is not None:
                keep &= (dates <= pd.Timestamp(cutoff)).to_numpy()
            if since is not None:
                keep &= (dates >= pd.Timestamp(since)).to_numpy()
            df = df.loc[keep].reset_index(drop=True)
    return df


def sql_types_for(df: pd.DataFrame, *, date_columns: Sequence[str] = ()) -> dict[str, str]:
    """Warehouse types for a frame (``date_columns`` are calendar dates, not timestamps)."""
    types: dict[str, str] = {}
    for col in df.columns:
        dtype = df[col].dtype
        if col in date_columns:
            types[col] = "DATE"
        elif pd.api.types.is_bool_dtype(dtype):
            types[col] = "BOOLEAN"
        elif pd.api.types.is_integer_dtype(dtype):
            types[col] = "BIGINT"
        elif pd.api.types.is_float_dtype(dtype):
            types[col] = "DOUBLE"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            types[col] = "TIMESTAMP"
        else:
            types[col] = "VARCHAR"
    return types


def write_table(
    df: pd.DataFrame,
    uri: str,
    *,
    replace_where: Mapping[str, Any] | None = None,
    date_columns: Sequence[str] = (),
) -> None:
    """Write ``df`` to a table, replacing the rows that match ``replace_where`` (e.g. a run id).

    Re-running a run therefore replaces what it wrote instead of appending duplicates. Files
    (Parquet / CSV) hold exactly one output and are replaced whole.
    """
    loc = parse_table_uri(uri)
    types = sql_types_for(df, date_columns=date_columns)
    replace_where = dict(replace_where or {})
    if loc.kind == "duckdb":
        duckdb_tables.write_duckdb(df, loc, replace_where, types)
    elif loc.kind == "bigquery":
        bigquery_tables.write_bigquery(df, loc, replace_where, types)
    else:
        out = df.copy()
        for col in date_columns:
            out[col] = pd.to_datetime(out[col]).dt.date
        target = loc.location
        local = is_local(target)
        if local:
            target = os.path.abspath(local_path(target))
            os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}" if local else target
        compression = "gzip" if target.lower().endswith(".gz") else None
        with fsspec.open(tmp, "wb", compression=compression) as handle:
            if loc.kind == "parquet":
                out.to_parquet(handle, index=False)
            else:
                handle.write(out.to_csv(index=False).encode())
        if local:
            os.replace(tmp, target)
