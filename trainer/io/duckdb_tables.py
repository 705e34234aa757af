"""DuckDB tables: a file opened with lock retries, read with a date filter, written per run."""

from __future__ import annotations

__all__ = ["LOCK_TIMEOUT_S", "duckdb_connect", "read_duckdb", "write_duckdb"]

import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from trainer.errors import TrainerError
from trainer.io.table_uri import TableURI, arrow_to_pandas, date_filter

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 30.0


@contextlib.contextmanager
def duckdb_connect(
    path: str, *, read_only: bool, timeout_s: float = LOCK_TIMEOUT_S
) -> Iterator[Any]:
    """Open a DuckDB file, retrying while another process holds its lock; always closes.

    DuckDB allows one writer process per file and a read-write connection blocks readers, so
    under a scheduler a short wait is normal, not an error.
    """
    import duckdb

    if read_only and not os.path.exists(path):
        raise TrainerError(f"DuckDB file not found: {path}")
    if not read_only:
        os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            con = duckdb.connect(path, read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise TrainerError(f"cannot open DuckDB file {path}: {exc}") from None
            log.info("DuckDB file %s is locked by another process; retrying", path)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        yield con
    finally:
        con.close()


def _quote(identifier: str) -> str:
    """One identifier (a column, a schema) as a DuckDB quoted identifier.

    An embedded ``"`` is doubled, so a name from a hand-made contract or a DataFrame column
    cannot end the identifier and start SQL; a ``.`` stays part of the name.
    """
    return '"' + identifier.replace('"', '""') + '"'


def _quote_table(table: str) -> str:
    """``table`` or ``schema.table`` (checked by parse_table_uri), each part quoted."""
    return ".".join(_quote(part) for part in table.split("."))


def _table(loc: TableURI) -> str:
    if loc.table is None:  # parse_table_uri never makes one; a hand-built TableURI might
        raise TrainerError(f"{loc}: a DuckDB URI needs ?table=<name>")
    return loc.table


def read_duckdb(
    loc: TableURI,
    date_column: str | None,
    cutoff: dt.date | None,
    columns: Sequence[str] | None = None,
    since: dt.date | None = None,
    compact: bool = False,
) -> pd.DataFrame:
    """See :func:`trainer.io.tables.read_table`."""
    import duckdb

    table = _table(loc)
    with duckdb_connect(loc.location, read_only=True) as con:
        try:
            names = [r[0] for r in con.execute(f"DESCRIBE {_quote_table(table)}").fetchall()]
        except duckdb.CatalogException:
            raise TrainerError(f"table '{table}' not found in {loc.location}") from None
        pick = names if columns is None else [c for c in names if c in set(columns)]
        where, args = date_filter(date_column, cutoff, since, _quote, lambda _n: "?")
        sql = f"SELECT {', '.join(_quote(c) for c in pick)} FROM {_quote_table(table)}{where}"
        try:
            if not compact:
                return con.execute(sql, [v for _, v in args]).df()
            result = con.sql(sql, params=[v for _, v in args]).to_arrow_table()
            return arrow_to_pandas(result, compact)
        except duckdb.BinderException as exc:
            raise TrainerError(f"cannot read {loc}: {exc}") from None


_DUCKDB_TYPES = {"STRING": "VARCHAR", "FLOAT64": "DOUBLE", "INT64": "BIGINT", "BOOL": "BOOLEAN"}


def write_duckdb(
    df: pd.DataFrame, loc: TableURI, replace_where: Mapping[str, Any], types: Mapping[str, str]
) -> None:
    """See :func:`trainer.io.tables.write_table` (``types``: its ``sql_types_for``)."""
    import duckdb

    table = _table(loc)
    cols = ", ".join(f"{_quote(c)} {_DUCKDB_TYPES.get(types[c], types[c])}" for c in df.columns)
    with duckdb_connect(loc.location, read_only=False) as con:
        con.register("_trainer_new_rows", df)
        try:
            if "." in table:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(table.split('.')[0])}")
            con.execute(f"CREATE TABLE IF NOT EXISTS {_quote_table(table)} ({cols})")
            # A table made by an older version lacks the newer columns (e.g. cutoff_date):
            # add them (NULL in the old rows) instead of failing on every write.
            for c in df.columns:
                kind = _DUCKDB_TYPES.get(types[c], types[c])
                con.execute(
                    f"ALTER TABLE {_quote_table(table)} ADD COLUMN IF NOT EXISTS {_quote(c)} {kind}"
                )
            # One transaction: readers see either the old rows of this run or the new ones.
            con.execute("BEGIN TRANSACTION")
            if replace_where:
                cond = " AND ".join(f"{_quote(k)} = ?" for k in replace_where)
                con.execute(
                    f"DELETE FROM {_quote_table(table)} WHERE {cond}", list(replace_where.values())
                )
            con.execute(
                f"INSERT INTO {_quote_table(table)} BY NAME SELECT * FROM _trainer_new_rows"
            )
            con.execute("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise TrainerError(f"cannot write {loc}: {exc}") from None
        finally:
            con.unregister("_trainer_new_rows")
