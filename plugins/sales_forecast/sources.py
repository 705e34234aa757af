"""What an ``input_uri`` names: a CSV file, a Parquet file or folder, or a BigQuery table.

Every kind goes through the same contract, validation and quarantine: the loaders turn each
into the all-STRING ``staging`` table that validate.sql types, so a Parquet ``DATE`` or a
BigQuery ``FLOAT64`` is checked by the very rules a CSV's text is. The kind is decided here,
once, from the URI alone (the check of which URIs a run may read is ``run_context``'s).

For the typed sources, :func:`staged_columns` decides how each column becomes text: a DATE is
written in the contract's ``date_format`` (so it reads back as the same day), a timestamp at
midnight is its day and any other timestamp stays a timestamp's text (quarantined: "not a valid
DATE", nothing silently truncated), everything else is its value cast to STRING. Nested and
binary columns cannot be a contract's scalar and fail the load with a message naming them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sales_forecast.csv_checks import check_header
from sales_forecast.errors import DataError
from sf_contract.schema import Contract, ContractError, check_identifier

__all__ = [
    "PARQUET_SUFFIXES",
    "BigQueryTable",
    "SourceColumn",
    "SourceKind",
    "StagedColumn",
    "parse_bq_uri",
    "row_word",
    "source_kind",
    "staged_columns",
]

PARQUET_SUFFIXES = (".parquet", ".pq")
BQ_SCHEME = "bq://"
# A project id (the legacy "domain.com:project" form too), a dataset and a table name:
# nothing that could close a backtick-quoted name (the SQL quotes them anyway).
_BQ_URI = re.compile(
    r"bq://(?P<project>(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9])"
    r"\.(?P<dataset>[A-Za-z_][A-Za-z0-9_]{0,1023})\.(?P<table>[A-Za-z0-9_][A-Za-z0-9_-]{0,1023})"
)


class SourceKind(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    BIGQUERY = "bigquery"


def source_kind(uri: str) -> SourceKind:
    """The kind of input ``uri`` names, from its spelling alone.

    ``bq://project.dataset.table`` is a BigQuery table; a name ending in ``.parquet`` / ``.pq``
    or in ``/`` (a folder of Parquet files) is Parquet; anything else is read as a CSV. A local
    folder named without the trailing ``/`` is found by the input check, which knows the disk.
    """
    if uri.lower().startswith(BQ_SCHEME):
        return SourceKind.BIGQUERY
    if uri.endswith("/") or uri.lower().endswith(PARQUET_SUFFIXES):
        return SourceKind.PARQUET
    return SourceKind.CSV


def row_word(uri: str) -> str:
    """How messages name a source row: a CSV's line number (the header is line 1), or a
    typed source's row number (1 is its first row, counted across a folder's files in name
    order)."""
    return "line" if source_kind(uri) is SourceKind.CSV else "row"


@dataclass(frozen=True)
class BigQueryTable:
    project: str
    dataset: str
    table: str

    @property
    def table_id(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


def parse_bq_uri(uri: str) -> BigQueryTable:
    """``bq://project.dataset.table`` as its three parts, or a DataError saying the form."""
    match = _BQ_URI.fullmatch(uri)
    if match is None:
        raise DataError(
            f"input {uri[:200]!r} is not a BigQuery table URI: write bq://<project>.<dataset>."
            "<table> (project ids: lower-case letters, digits, hyphens; datasets: letters, "
            "digits, underscores; tables: letters, digits, underscores, hyphens)"
        )
    return BigQueryTable(match["project"], match["dataset"], match["table"])


@dataclass(frozen=True)
class SourceColumn:
    """A typed source's column as the source describes it (DuckDB's or BigQuery's type name)."""

    name: str
    type: str


@dataclass(frozen=True)
class StagedColumn:
    """How one contract column is read from a typed source."""

    name: str  # the contract's column name (an identifier)
    source: str  # the source's own column name (the contract's header for it)
    position: int  # its place among the source's columns; -1 when the source lacks it
    # "date", "timestamp" or "text": how it becomes STRING (stage_table.sql); "absent": a
    # column the contract lets a source leave out (``required: false``), NULL on every row.
    kind: str


_NESTED = re.compile(r"(\[\]|\bSTRUCT\b|\bMAP\b|\bUNION\b|\bLIST\b|\bRECORD\b|\bARRAY\b)", re.I)
_BINARY = {"BLOB", "BYTEA", "BINARY", "VARBINARY", "BYTES", "GEOGRAPHY", "GEOMETRY", "JSON"}
_TIMESTAMPS = re.compile(r"^(TIMESTAMP|DATETIME)", re.I)  # TIMESTAMP_NS, ... WITH TIME ZONE


def _kind(column: SourceColumn, where: str) -> str:
    type_name = column.type.strip().upper()
    if _NESTED.search(type_name) or type_name in _BINARY:
        raise DataError(
            f"{where}: column {column.name[:128]!r} has type {type_name[:60]}, which no contract "
            "column can hold (a contract's columns are dates, text, numbers and booleans): "
            "select plain columns in a view or export"
        )
    if type_name == "DATE":
        return "date"
    if _TIMESTAMPS.match(type_name):
        return "timestamp"
    return "text"


def staged_columns(
    columns: Sequence[SourceColumn],
    contract: Contract,
    uri: str,
    *,
    identifiers_only: bool = False,
) -> list[StagedColumn]:
    """Map a typed source's columns onto the contract, after the CSV header's own check.

    The source's column names play the header's part: exactly the contract's header names,
    any order, case-sensitive. ``identifiers_only`` (BigQuery, where the SQL must name the
    source's columns) refuses a header that is not a plain identifier instead of quoting it.
    Returned in the contract's column order.
    """
    names = [c.name.strip() for c in columns]
    check_header(names, contract, uri, where="columns")
    by_name = {name: (i, col) for i, (name, col) in enumerate(zip(names, columns, strict=True))}
    staged = []
    for col in contract.columns:
        if col.csv_header not in by_name:  # check_header let only optional columns be absent
            staged.append(StagedColumn(name=col.name, source="", position=-1, kind="absent"))
            continue
        position, source = by_name[col.csv_header]
        if identifiers_only:
            try:
                check_identifier(source.name, "source column")
            except ContractError as exc:
                raise DataError(
                    f"{uri}: {exc}; a BigQuery input's columns are named in SQL, so give them "
                    "plain names (a view that renames them) or use a CSV export"
                ) from None
        staged.append(
            StagedColumn(
                name=col.name, source=source.name, position=position, kind=_kind(source, uri)
            )
        )
    return staged
