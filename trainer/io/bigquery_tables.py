"""BigQuery tables (``BIGQUERY_EMULATOR_HOST`` switches to an emulator): a date-filtered read, and
a write that swaps one run's rows in one statement."""

from __future__ import annotations

__all__ = ["bq_client", "read_bigquery", "write_bigquery"]

import datetime as dt
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from trainer.io.table_uri import TableURI, arrow_to_pandas, date_filter


def bq_client(project: str) -> tuple[Any, bool]:
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


def read_bigquery(
    loc: TableURI,
    date_column: str | None,
    cutoff: dt.date | None,
    columns: Sequence[str] | None = None,
    since: dt.date | None = None,
    compact: bool = False,
) -> pd.DataFrame:
    """See :func:`trainer.io.tables.read_table`."""
    from google.cloud import bigquery

    project = loc.location.split(".", 1)[0]
    client, emulator = bq_client(project)
    table_ref = client.get_table(loc.location) if columns is not None else None
    pick = "*"
    if table_ref is not None:
        wanted = set(columns or ())
        pick = ", ".join(f"`{f.name}`" for f in table_ref.schema if f.name in wanted)
    # The date column is a DATE in BigQuery: no CAST, so partition pruning still applies.
    where, args = date_filter(
        date_column, cutoff, since, lambda c: f"`{c}`", lambda n: f"@{n}", cast=False
    )
    sql = f"SELECT {pick} FROM `{loc.location}`{where}"
    params = [bigquery.ScalarQueryParameter(name, "DATE", value) for name, value in args]
    job = client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params))
    # The Storage API is much faster for big panels; emulators do not implement it.
    table = job.result().to_arrow(create_bqstorage_client=not emulator)
    return arrow_to_pandas(table, compact)


_BQ_TYPES = {"VARCHAR": "STRING", "DOUBLE": "FLOAT64", "BIGINT": "INT64", "BOOLEAN": "BOOL"}


def write_bigquery(
    df: pd.DataFrame, loc: TableURI, replace_where: Mapping[str, Any], types: Mapping[str, str]
) -> None:
    """See :func:`trainer.io.tables.write_table` (``types``: its ``sql_types_for``)."""
    from google.cloud import bigquery

    project, dataset, table = loc.location.split(".")
    client, emulator = bq_client(project)
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
