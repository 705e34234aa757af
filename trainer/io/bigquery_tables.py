"""BigQuery tables (``BIGQUERY_EMULATOR_HOST`` switches to an emulator): a date-filtered read
through the Storage Read API, and a write that swaps one run's rows in one transaction."""

from __future__ import annotations

__all__ = ["bq_client", "read_bigquery", "write_bigquery"]

import datetime as dt
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from trainer.errors import TrainerError
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
    """See :func:`trainer.io.tables.read_table`.

    One query job (the date filter as DATE parameters) whose result is downloaded with the
    BigQuery Storage Read API (``create_bqstorage_client``: a read session on the job's
    destination table, Arrow streams), which a 30M-row panel needs; emulators have no Storage
    API, so there the rows come through the REST API. A missing table or column and a missing
    read-session permission are :class:`TrainerError`: retrying the job cannot fix them.
    """
    from google.api_core.exceptions import BadRequest, NotFound, PermissionDenied
    from google.cloud import bigquery

    project = loc.location.split(".", 1)[0]
    client, emulator = bq_client(project)
    try:
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
        rows = job.result()
    except NotFound as exc:
        raise TrainerError(f"cannot read {loc}: not found ({exc.message})") from None
    except BadRequest as exc:
        raise TrainerError(f"cannot read {loc}: {exc.message}") from None
    try:
        table = rows.to_arrow(create_bqstorage_client=not emulator)
    except PermissionDenied as exc:
        raise TrainerError(
            f"cannot read {loc} with the BigQuery Storage Read API ({exc.message}): grant the "
            f"jobs' service account roles/bigquery.readSessionUser on project {project} and "
            "enable bigquerystorage.googleapis.com"
        ) from None
    return arrow_to_pandas(table, compact)


_BQ_TYPES = {"VARCHAR": "STRING", "DOUBLE": "FLOAT64", "BIGINT": "INT64", "BOOLEAN": "BOOL"}
# A staging table left behind by a crash between the load and the swap expires on its own.
STAGING_TTL = dt.timedelta(days=1)


def write_bigquery(
    df: pd.DataFrame, loc: TableURI, replace_where: Mapping[str, Any], types: Mapping[str, str]
) -> None:
    """See :func:`trainer.io.tables.write_table` (``types``: its ``sql_types_for``).

    The client calls, in order: create the target if missing (and add the columns an older
    table lacks); create a staging table next to it that expires after :data:`STAGING_TTL`;
    load the frame into it; one multi-statement transaction ``BEGIN TRANSACTION; DELETE this
    run's rows; INSERT the staged rows; COMMIT TRANSACTION`` (readers see the old rows of the
    run or the new ones, never half); drop the staging table, also when a step failed.
    """
    from google.api_core.exceptions import NotFound
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
    try:
        current = client.create_table(bigquery.Table(loc.location, schema=schema), exists_ok=True)
    except NotFound as exc:  # the dataset: the DAG creates it before any trainer job
        raise TrainerError(f"cannot write {loc}: {exc.message}") from None
    have = {f.name for f in current.schema}
    added = [f for f in schema if f.name not in have]
    if added:
        # A table made by an older version lacks the newer columns: add them (NULLABLE).
        current.schema = [*current.schema, *added]
        client.update_table(current, ["schema"])
    staging = f"{project}.{dataset}._staging_{table}_{uuid.uuid4().hex[:12]}"
    staged = bigquery.Table(staging, schema=schema)
    staged.expires = dt.datetime.now(dt.UTC) + STAGING_TTL
    client.create_table(staged)
    try:
        job_config = bigquery.LoadJobConfig(schema=schema, write_disposition="WRITE_APPEND")
        client.load_table_from_dataframe(out, staging, job_config=job_config).result()
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
