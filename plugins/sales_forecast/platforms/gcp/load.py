"""``load_to_staging`` on GCP: the CSV in GCS, numbered, loaded by ``GCSToBigQueryOperator``.

Before the load job, the steps' shared :func:`~sales_forecast.steps.prepare_staging` writes the
run's files, checks the header against the contract (a positional load would silently put
reordered columns in the wrong place) and creates the tables. Then the file is re-written next
to the run with each record's line number and source in front and the columns in the contract's
order (BigQuery cannot number lines; validate.sql reports them), and malformed lines go to
``staging_malformed``, as the local loader's rejects table does.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator

from sales_forecast import steps
from sales_forecast.config import Settings
from sales_forecast.errors import ConfigError, DataError
from sales_forecast.platforms.base import StagingLoad, StagingLoader
from sales_forecast.platforms.gcp.run import GcpRun, RunResolvingMixin
from sales_forecast.platforms.gcp.storage import GcsStore, split_gs_uri
from sales_forecast.sources import (
    PARQUET_SUFFIXES,
    SourceColumn,
    SourceKind,
    StagedColumn,
    parse_bq_uri,
    source_kind,
)
from sf_contract.schema import Contract, ContractError

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "MALFORMED_SCHEMA",
    "SOURCE_COLUMNS",
    "BigQueryStagingLoader",
    "GcsToStagingOperator",
    "NumberedCsv",
    "number_csv",
    "parquet_load_config",
    "staging_schema_fields",
]

log = logging.getLogger(__name__)

# Columns the load step adds in front of the contract's (validate.sql reads them).
SOURCE_COLUMNS = ("_source_row", "_source_file")


def staging_schema_fields(contract: Contract) -> list[dict[str, str]]:
    """The staging table's ``schema_fields``: line number and file, then every column as STRING.

    The columns are in the contract's order because :func:`number_csv` writes them in that order
    whatever the input's order was (a positional load would otherwise mis-assign them).
    """
    return [
        {"name": "_source_row", "type": "INT64", "mode": "REQUIRED"},
        {"name": "_source_file", "type": "STRING", "mode": "REQUIRED"},
        *contract.bigquery_schema_fields(all_strings=True),
    ]


@dataclass
class NumberedCsv:
    rows: int = 0
    malformed: list[dict[str, Any]] = field(default_factory=list)


def number_csv(
    src: IO[str], dst: IO[str], *, header: Sequence[str], contract: Contract, source_uri: str
) -> NumberedCsv:
    """Copy a CSV, prefixing every record with its line number and source, columns reordered.

    Why: a BigQuery load job neither keeps the file's order nor can tell a record's line number,
    and the quarantine reports ``<file> line N: <reason>`` exactly as the local platform does.
    Records whose field count is wrong (or that are not UTF-8) are returned in ``malformed``
    with a reason instead of being written, like the local loader's rejects table.
    ``src`` must be opened with ``newline=""`` and ``errors="replace"``.

    ``header`` is the file's own (trimmed) header, already checked against the contract; a
    column the contract reads from another header name (``Units Sold`` for ``sales``) is
    written under its contract name, so the load job and the SQL only see contract names.
    """
    # strict: a stray quote is an error for that record, not a silent merge of the lines.
    reader = csv.reader(src, strict=True)
    writer = csv.writer(dst, lineterminator="\n")
    columns = contract.column_names
    position = {name: i for i, name in enumerate(header)}
    missing = [c.label for c in contract.columns if c.required and c.csv_header not in position]
    if missing:
        raise DataError(f"{source_uri}: line 1 (header): missing columns [{', '.join(missing)}]")
    # -1: a column the file leaves out (``required: false``), written empty (NULL once loaded).
    order = [position.get(c.csv_header, -1) for c in contract.columns]
    writer.writerow([*SOURCE_COLUMNS, *columns])
    out = NumberedCsv()
    next(reader, None)  # the header, already checked against the contract
    prev_end = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line, prev_end = prev_end + 1, reader.line_num
            out.malformed.append(_malformed(line, "bad quoting", str(exc), ""))
            continue
        line, prev_end = prev_end + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line
        raw = _raw(record)
        if any("\ufffd" in value for value in record):
            out.malformed.append(_malformed(line, "invalid unicode", "not UTF-8 text", raw))
        elif len(record) != len(header):
            kind = "too many columns" if len(record) > len(header) else "missing columns"
            detail = f"expected {len(header)} fields, found {len(record)}"
            out.malformed.append(_malformed(line, kind, detail, raw))
        else:
            writer.writerow([line, source_uri, *(record[i] if i >= 0 else "" for i in order)])
            out.rows += 1
    return out


def _raw(record: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(record)
    return buf.getvalue()


def _malformed(line: int, kind: str, detail: str, raw: str) -> dict[str, Any]:
    # Same wording as the local loader: "malformed CSV line (<error type>): <detail>".
    return {"source_row": line, "reason": f"malformed CSV line ({kind}): {detail}", "raw_line": raw}


MALFORMED_SCHEMA = [
    {"name": "source_row", "type": "INT64", "mode": "NULLABLE"},
    {"name": "reason", "type": "STRING", "mode": "NULLABLE"},
    {"name": "raw_line", "type": "STRING", "mode": "NULLABLE"},
]


class GcsToStagingOperator(RunResolvingMixin, GCSToBigQueryOperator):
    """CSV in GCS -> the all-STRING ``staging`` table, after the same checks as locally."""

    template_fields = (*GCSToBigQueryOperator.template_fields, "project_id", "location")

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            bucket="{{ sf.cfg.bucket }}",
            source_objects=["{{ sf.staging_object }}"],
            destination_project_dataset_table="{{ sf.table_id('staging') }}",
            project_id="{{ sf.cfg.project }}",
            location="{{ sf.cfg.bq_location }}",
            schema_fields=None,  # the run's contract decides: see after_render
            source_format="CSV",
            skip_leading_rows=1,
            write_disposition="WRITE_TRUNCATE",
            create_disposition="CREATE_IF_NEEDED",
            autodetect=False,
            allow_quoted_newlines=True,
            field_delimiter=",",
            quote_character='"',
            encoding="UTF-8",
            max_bad_records=0,  # the re-written file is well-formed; any bad record is a bug
            gcp_conn_id=settings.gcp_conn_id,
            deferrable=False,  # a load of a daily file takes seconds
            **kwargs,
        )
        self.sf_settings = settings

    def after_render(self, run: GcpRun) -> None:
        self.schema_fields = staging_schema_fields(run.contract)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        store = run.platform.store
        if not isinstance(store, GcsStore):  # only for the type checker
            raise TypeError("the gcp platform's store is GCS")
        try:
            # Lists one object: the bucket role objectAdmin allows it (buckets.get it lacks).
            store.check_bucket(run.cfg.bucket)
            run.warehouse.ensure_dataset()
            loader = BigQueryStagingLoader(run, self, context)
            load = steps.load_source(run.ctx, run.platform, loader)
        except (DataError, ConfigError, ContractError) as exc:
            raise AirflowFailException(str(exc)) from None
        return steps.staging_summary(run.ctx, load)


class BigQueryStagingLoader(StagingLoader):
    """The GCP staging loads. A CSV: the numbered copy, then the operator's own load job. A
    typed source: a BigQuery table read by ``stage_table.sql``, or Parquet in GCS loaded as it
    is into ``staging_source`` and read the same way.

    The SQL names a typed source's columns, so they must be plain identifiers here (a view
    can rename them); the local loader renames by position and has no such limit.
    """

    source_names_must_be_identifiers = True

    def __init__(self, run: GcpRun, operator: GCSToBigQueryOperator, context: Context) -> None:
        self.run = run
        self.operator = operator
        self.context = context

    @property
    def _gcs(self) -> GCSHook:
        store = self.run.platform.store
        if not isinstance(store, GcsStore):  # only for the type checker
            raise TypeError("the gcp platform's store is GCS")
        return store.hook

    def load_csv_to_staging(
        self, uri: str, header: Sequence[str], contract: Contract
    ) -> StagingLoad:
        numbered = _stage_file(self._gcs, self.run, list(header), contract)
        _replace_malformed(self._gcs, self.run, numbered.malformed)
        GCSToBigQueryOperator.execute(self.operator, self.context)
        return StagingLoad(
            table=self.run.table_id("staging"),
            rows=numbered.rows,
            malformed=len(numbered.malformed),
        )

    def _source_table(self, uri: str) -> str:
        """The table a typed source is read from (a Parquet input is loaded first)."""
        if source_kind(uri) is SourceKind.BIGQUERY:
            return parse_bq_uri(uri).table_id
        return self.run.table_id("staging_source")

    def describe_source(self, uri: str) -> list[SourceColumn]:
        from google.api_core.exceptions import BadRequest, Forbidden, NotFound

        if source_kind(uri) is SourceKind.PARQUET:
            self._load_parquet(uri)
        table_id = self._source_table(uri)
        client = self.run.warehouse.hook.get_client(
            project_id=self.run.cfg.project, location=self.run.cfg.bq_location
        )
        try:
            table = client.get_table(table_id)
        except NotFound:
            raise DataError(f"{uri}: BigQuery table {table_id} not found") from None
        except Forbidden as exc:
            raise ConfigError(
                f"{uri}: cannot read BigQuery table {table_id} ({exc}): grant the Composer "
                "service account roles/bigquery.dataViewer on it"
            ) from None
        except BadRequest as exc:
            raise DataError(f"{uri}: cannot read BigQuery table {table_id} ({exc})") from None
        return [
            SourceColumn(name=f.name, type="ARRAY" if f.mode == "REPEATED" else str(f.field_type))
            for f in table.schema
        ]

    def load_table_to_staging(
        self, uri: str, staged: Sequence[StagedColumn], contract: Contract
    ) -> StagingLoad:
        wh = self.run.warehouse
        wh.run_script(
            "stage_table",
            contract,
            render={"staged": list(staged), "bq_table": self._source_table(uri), "source_uri": uri},
        )
        wh.run_statement(f"TRUNCATE TABLE `{self.run.table_id('staging_malformed')}`")
        (row,) = wh.query(f"SELECT COUNT(*) AS n FROM `{self.run.table_id('staging')}`")
        return StagingLoad(table=self.run.table_id("staging"), rows=int(row["n"]), malformed=0)

    def _load_parquet(self, uri: str) -> None:
        """A Parquet file, or a folder's Parquet files, into ``staging_source`` as they are."""
        bucket, name = split_gs_uri(uri)
        if name.endswith("/"):
            objects = sorted(
                o
                for o in self._gcs.list(bucket_name=bucket, prefix=name)
                if o.lower().endswith(PARQUET_SUFFIXES)
            )
            if not objects:
                raise DataError(
                    f"{uri}: the folder holds no Parquet files (*{', *'.join(PARQUET_SUFFIXES)})"
                )
            uris = [f"gs://{bucket}/{o}" for o in objects]
        else:
            if not self._gcs.exists(bucket_name=bucket, object_name=name):
                raise DataError(f"{uri}: input file not found")
            uris = [uri]
        project, dataset, table = self.run.table_id("staging_source").split(".")
        self.run.warehouse.hook.insert_job(
            configuration=parquet_load_config(uris, project, dataset, table),
            project_id=self.run.cfg.project,
            location=self.run.cfg.bq_location,
        )


def parquet_load_config(uris: list[str], project: str, dataset: str, table: str) -> dict[str, Any]:
    """The load job of a Parquet input: its own schema, replacing the run's source table."""
    return {
        "load": {
            "sourceUris": uris,
            "sourceFormat": "PARQUET",
            "destinationTable": {"projectId": project, "datasetId": dataset, "tableId": table},
            "writeDisposition": "WRITE_TRUNCATE",
            "createDisposition": "CREATE_IF_NEEDED",
            # Parquet LISTs as BigQuery arrays: still refused by name (sources.staged_columns).
            "parquetOptions": {"enableListInference": True},
        }
    }


def _stage_file(gcs: GCSHook, run: GcpRun, header: list[str], contract: Contract) -> NumberedCsv:
    bucket, name = split_gs_uri(run.input_uri)
    with tempfile.TemporaryDirectory(prefix="sf-load-") as tmp:
        src, dst = os.path.join(tmp, "input.csv"), os.path.join(tmp, "numbered.csv")
        gcs.download(bucket_name=bucket, object_name=name, filename=src)
        with (
            open(src, encoding="utf-8-sig", errors="replace", newline="") as fin,
            open(dst, "w", encoding="utf-8", newline="") as fout,
        ):
            numbered = number_csv(
                fin, fout, header=header, contract=contract, source_uri=run.input_uri
            )
        gcs.upload(
            bucket_name=run.cfg.bucket,
            object_name=run.staging_object,
            filename=dst,
            mime_type="text/csv",
        )
    return numbered


def _replace_malformed(gcs: GCSHook, run: GcpRun, malformed: list[dict[str, Any]]) -> None:
    wh = run.warehouse
    table = run.table_id("staging_malformed")
    if not malformed:
        wh.run_statement(f"TRUNCATE TABLE `{table}`")
        return
    bucket, name = split_gs_uri(run.malformed_uri)
    data = "".join(json.dumps(m) + "\n" for m in malformed)
    gcs.upload(bucket_name=bucket, object_name=name, data=data, mime_type="application/json")
    project, dataset, table_name = table.split(".")
    wh.hook.insert_job(
        configuration={
            "load": {
                "sourceUris": [run.malformed_uri],
                "sourceFormat": "NEWLINE_DELIMITED_JSON",
                "destinationTable": {
                    "projectId": project,
                    "datasetId": dataset,
                    "tableId": table_name,
                },
                "schema": {"fields": MALFORMED_SCHEMA},
                "writeDisposition": "WRITE_TRUNCATE",
                "createDisposition": "CREATE_IF_NEEDED",
            }
        },
        project_id=run.cfg.project,
        location=run.cfg.bq_location,
    )
