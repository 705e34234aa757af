"""Tables and files behind one small interface: DuckDB, BigQuery, Parquet/CSV, any fsspec URI.

Table URIs:

- ``duckdb:///abs/path/warehouse.duckdb?table=name`` (read-only reads, retried while a writer
  holds the file lock; connections are closed as soon as the statement is done),
- ``bq://project.dataset.table`` (``BIGQUERY_EMULATOR_HOST`` switches to an emulator),
- ``/local/or/gs://path/file.parquet`` or ``.csv``.

Files and folders are plain fsspec paths (local, ``gs://``, ``memory://`` in tests).
"""

from __future__ import annotations

__all__ = [
    "TableURI",
    "duckdb_connect",
    "fetch_dir",
    "is_local",
    "join_uri",
    "open_file",
    "parse_table_uri",
    "publish_dir",
    "read_json",
    "read_table",
    "sql_types_for",
    "write_json",
    "write_table",
]

import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import fsspec
import numpy as np
import pandas as pd

from trainer.errors import TrainerError

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_BQ_TABLE = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
LOCK_TIMEOUT_S = 30.0


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
        if not table or not _IDENT.match(table):
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


# --------------------------------------------------------------------------- files


def is_local(uri: str) -> bool:
    """True for plain paths and ``file://`` URIs."""
    protocol = fsspec.utils.get_protocol(uri)
    return protocol in ("file", "local")


def _local_path(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def join_uri(base: str, *parts: str) -> str:
    """Join path parts onto a local path or URI without mangling ``gs://``."""
    if is_local(base):
        return os.path.join(_local_path(base), *parts)
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


@contextlib.contextmanager
def open_file(uri: str, mode: str = "rb") -> Iterator[IO[Any]]:
    """Open a local path or any fsspec URI; a missing file is a clear :class:`TrainerError`."""
    try:
        with fsspec.open(uri, mode) as handle:
            yield handle
    except FileNotFoundError:
        raise TrainerError(f"file not found: {uri}") from None


def read_json(uri: str) -> Any:
    with open_file(uri, "r") as handle:
        return json.load(handle)


def write_json(data: Any, uri: str) -> None:
    """Write JSON (NaN/inf become null); local files are replaced atomically."""
    text = json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n"
    if is_local(uri):
        path = _local_path(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
        return
    with fsspec.open(uri, "w") as handle:
        handle.write(text)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat()
    return value


def publish_dir(local_dir: str, target_uri: str) -> None:
    """Copy a finished folder to its destination.

    Locally the folder is first copied next to the target and then swapped in with renames, so
    a crash never leaves a half-written model where a reader expects a whole one. Remote
    destinations (``gs://``; the Vertex ``AIP_MODEL_DIR``) get every file uploaded.
    """
    if is_local(target_uri):
        target = os.path.abspath(_local_path(target_uri))
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=parent)
        shutil.copytree(local_dir, staging, dirs_exist_ok=True)
        backup = None
        if os.path.exists(target):
            backup = f"{target}.old-{uuid.uuid4().hex[:8]}"
            os.replace(target, backup)
        os.replace(staging, target)
        if backup:
            shutil.rmtree(backup, ignore_errors=True)
        return
    fs, root = fsspec.core.url_to_fs(target_uri)
    for dirpath, _, filenames in os.walk(local_dir):
        for name in filenames:
            src = os.path.join(dirpath, name)
            rel = os.path.relpath(src, local_dir).replace(os.sep, "/")
            fs.put_file(src, f"{root.rstrip('/')}/{rel}")


@contextlib.contextmanager
def fetch_dir(uri: str) -> Iterator[str]:
    """Yield a local folder holding the contents of ``uri`` (downloaded if remote)."""
    if is_local(uri):
        path = _local_path(uri)
        if not os.path.isdir(path):
            raise TrainerError(f"model folder not found: {uri}")
        yield path
        return
    fs, root = fsspec.core.url_to_fs(uri)
    root = root.rstrip("/")
    files = [f for f in fs.find(root) if not f.endswith("/")]
    if not files:
        raise TrainerError(f"model folder not found or empty: {uri}")
    with tempfile.TemporaryDirectory(prefix="trainer-model-") as tmp:
        for remote in files:
            rel = remote[len(root) :].lstrip("/")
            dest = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            fs.get_file(remote, dest)
        yield tmp


# --------------------------------------------------------------------------- duckdb


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
    return ".".join(f'"{part}"' for part in identifier.split("."))


def _where(
    date_column: str | None,
    cutoff: dt.date | None,
    since: dt.date | None,
    quote: Any,
    param: Any,
    cast: bool = True,
) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if not date_column:
        return "", []
    col = f"CAST({quote(date_column)} AS DATE)" if cast else quote(date_column)
    if date_column and cutoff is not None:
        clauses.append(f"{col} <= {param('cutoff')}")
        args.append(("cutoff", cutoff))
    if date_column and since is not None:
        clauses.append(f"{col} >= {param('since')}")
        args.append(("since", since))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _arrow_to_pandas(table: Any, compact: bool) -> pd.DataFrame:
    if not compact:
        return table.to_pandas()
    # Strings as categoricals: a 30M-row panel repeats each key thousands of times, and one
    # Python string object per cell would cost several GB.
    return table.to_pandas(strings_to_categorical=True, self_destruct=True)


def _read_duckdb(
    loc: TableURI,
    date_column: str | None,
    cutoff: dt.date | None,
    columns: Sequence[str] | None = None,
    since: dt.date | None = None,
    compact: bool = False,
) -> pd.DataFrame:
    import duckdb

    assert loc.table is not None
    with duckdb_connect(loc.location, read_only=True) as con:
        try:
            names = [r[0] for r in con.execute(f"DESCRIBE {_quote(loc.table)}").fetchall()]
        except duckdb.CatalogException:
            raise TrainerError(f"table '{loc.table}' not found in {loc.location}") from None
        pick = names if columns is None else [c for c in names if c in set(columns)]
        where, args = _where(date_column, cutoff, since, _quote, lambda _n: "?")
        sql = f"SELECT {', '.join(_quote(c) for c in pick)} FROM {_quote(loc.table)}{where}"
        try:
            if not compact:
                return con.execute(sql, [v for _, v in args]).df()
            table = con.sql(sql, params=[v for _, v in args]).to_arrow_table()
            return _arrow_to_pandas(table, compact)
        except duckdb.BinderException as exc:
            raise TrainerError(f"cannot read {loc}: {exc}") from None


_DUCKDB_TYPES = {"STRING": "VARCHAR", "FLOAT64": "DOUBLE", "INT64": "BIGINT", "BOOL": "BOOLEAN"}


def _write_duckdb(
    df: pd.DataFrame, loc: TableURI, replace_where: Mapping[str, Any], types: Mapping[str, str]
) -> None:
    import duckdb

    assert loc.table is not None
    cols = ", ".join(f"{_quote(c)} {_DUCKDB_TYPES.get(types[c], types[c])}" for c in df.columns)
    with duckdb_connect(loc.location, read_only=False) as con:
        con.register("_trainer_new_rows", df)
        try:
            if "." in loc.table:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(loc.table.split('.')[0])}")
            con.execute(f"CREATE TABLE IF NOT EXISTS {_quote(loc.table)} ({cols})")
            # A table made by an older version lacks the newer columns (e.g. cutoff_date):
            # add them (NULL in the old rows) instead of failing on every write.
            for c in df.columns:
                kind = _DUCKDB_TYPES.get(types[c], types[c])
                con.execute(
                    f"ALTER TABLE {_quote(loc.table)} ADD COLUMN IF NOT EXISTS {_quote(c)} {kind}"
                )
            # One transaction: readers see either the old rows of this run or the new ones.
            con.execute("BEGIN TRANSACTION")
            if replace_where:
                cond = " AND ".join(f"{_quote(k)} = ?" for k in replace_where)
                con.execute(
                    f"DELETE FROM {_quote(loc.table)} WHERE {cond}", list(replace_where.values())
                )
            con.execute(f"INSERT INTO {_quote(loc.table)} BY NAME SELECT * FROM _trainer_new_rows")
            con.execute("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise TrainerError(f"cannot write {loc}: {exc}") from None
        finally:
            con.unregister("_trainer_new_rows")


# --------------------------------------------------------------------------- bigquery


def _bq_client(project: str) -> tuple[Any, bool]:
    """A BigQuery client, pointed at ``BIGQUERY_EMULATOR_HOST`` when that is set."""
    from google.cloud import bigquery

    host = os.environ.get("BIGQUERY_EMULATOR_HOST")
    if host:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        endpoint = host if host.startswith("http") else f"http://{host}"
        client = bigquery.Client(
            project=project,
            client_options=ClientOptions(api_endpoint=endpoint),
            credentials=AnonymousCredentials(),
        )
        return client, True
    return bigquery.Client(project=project), False


def _read_bigquery(
    loc: TableURI,
    date_column: str | None,
    cutoff: dt.date | None,
    columns: Sequence[str] | None = None,
    since: dt.date | None = None,
    compact: bool = False,
) -> pd.DataFrame:
    from google.cloud import bigquery

    project = loc.location.split(".", 1)[0]
    client, emulator = _bq_client(project)
    table_ref = client.get_table(loc.location) if columns is not None else None
    pick = "*"
    if table_ref is not None:
        wanted = set(columns or ())
        pick = ", ".join(f"`{f.name}`" for f in table_ref.schema if f.name in wanted)
    # The date column is a DATE in BigQuery: no CAST, so partition pruning still applies.
    where, args = _where(
        date_column, cutoff, since, lambda c: f"`{c}`", lambda n: f"@{n}", cast=False
    )
    sql = f"SELECT {pick} FROM `{loc.location}`{where}"
    params = [bigquery.ScalarQueryParameter(name, "DATE", value) for name, value in args]
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params))
    # The Storage API is much faster for big panels; emulators do not implement it.
    table = job.result().to_arrow(create_bqstorage_client=not emulator)
    return _arrow_to_pandas(table, compact)


_BQ_TYPES = {"VARCHAR": "STRING", "DOUBLE": "FLOAT64", "BIGINT": "INT64", "BOOLEAN": "BOOL"}


def _write_bigquery(
    df: pd.DataFrame, loc: TableURI, replace_where: Mapping[str, Any], types: Mapping[str, str]
) -> None:
    from google.cloud import bigquery

    project, dataset, table = loc.location.split(".")
    client, emulator = _bq_client(project)
    schema = [bigquery.SchemaField(c, _BQ_TYPES.get(types[c], types[c])) for c in df.columns]
    out = df.copy()
    for col in df.columns:
        if types[col] == "DATE":
            out[col] = pd.to_datetime(out[col]).dt.date
        elif types[col] == "TIMESTAMP":
            out[col] = pd.to_datetime(out[col], utc=True)
    current = client.create_table(bigquery.Table(loc.location, schema=schema), exists_ok=True)
    have = {f.name for f in current.schema}
    added = [f for f in schema if f.name not in have]
    if added:
        # A table made by an older version lacks the newer columns: add them (NULLABLE).
        current.schema = [*current.schema, *added]
        client.update_table(current, ["schema"])
    # Load into a staging table first, then swap this run's rows in one statement, so a
    # crash mid-way never leaves the target with half a run.
    staging = f"{project}.{dataset}._staging_{table}_{uuid.uuid4().hex[:12]}"
    job_config = bigquery.LoadJobConfig(schema=schema, write_disposition="WRITE_TRUNCATE")
    client.load_table_from_dataframe(out, staging, job_config=job_config).result()
    try:
        cols = ", ".join(f"`{c}`" for c in df.columns)
        params = [
            bigquery.ScalarQueryParameter(f"p{i}", _bq_param_type(v), v)
            for i, v in enumerate(replace_where.values())
        ]
        cond = " AND ".join(f"`{k}` = @p{i}" for i, k in enumerate(replace_where)) or "FALSE"
        delete = f"DELETE FROM `{loc.location}` WHERE {cond}"
        insert = f"INSERT INTO `{loc.location}` ({cols}) SELECT {cols} FROM `{staging}`"
        job_config_q = bigquery.QueryJobConfig(query_parameters=params)
        if emulator:
            # Emulators do not run multi-statement transactions; two statements are the
            # closest they get.
            client.query(delete, job_config=job_config_q).result()
            client.query(insert).result()
        else:
            script = f"BEGIN TRANSACTION;\n{delete};\n{insert};\nCOMMIT TRANSACTION;"
            client.query(script, job_config=job_config_q).result()
    finally:
        client.delete_table(staging, not_found_ok=True)


def _bq_param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP"
    if isinstance(value, dt.date):
        return "DATE"
    return "STRING"


# --------------------------------------------------------------------------- public API


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
        df = _read_duckdb(loc, date_column, cutoff, columns, since, compact)
    elif loc.kind == "bigquery":
        df = _read_bigquery(loc, date_column, cutoff, columns, since, compact)
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
        _write_duckdb(df, loc, replace_where, types)
    elif loc.kind == "bigquery":
        _write_bigquery(df, loc, replace_where, types)
    else:
        out = df.copy()
        for col in date_columns:
            out[col] = pd.to_datetime(out[col]).dt.date
        target = loc.location
        local = is_local(target)
        if local:
            target = os.path.abspath(_local_path(target))
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
