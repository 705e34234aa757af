"""The small interfaces the pipeline steps talk to.

A platform is a bundle of objects: an object store, a warehouse and a model registry on every
platform, plus a staging loader, a job runner, a model publisher and a deployer where the
platform runs those as plain Python. The steps in :mod:`sales_forecast.steps` only see these
interfaces, so the same logic runs on the local platform (files, DuckDB, subprocesses,
folders) and on GCP (GCS, BigQuery, Vertex AI). There the trainer jobs, the model upload and
the endpoint deploy are provider operators wrapped around the steps' ``plan_*``/``finish_*``
halves (loader, runner, publisher and deployer are then ``None``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sales_forecast.sources import SourceColumn, StagedColumn
from sales_forecast.sqlrender import TableNames
from sf_contract.schema import Contract

__all__ = [
    "Deployer",
    "JobRunner",
    "ModelPublisher",
    "ModelRegistry",
    "ModelVersion",
    "ObjectStore",
    "Platform",
    "StagingLoad",
    "StagingLoader",
    "Warehouse",
]


@dataclass(frozen=True)
class StagingLoad:
    table: str
    rows: int
    # CSV lines the loader could not even split into the contract's columns (wrong field count,
    # broken quoting). They are kept in the staging_malformed table and quarantined like any
    # other rejected row.
    malformed: int = 0


class ObjectStore(ABC):
    """Where inputs and a run's files live: local paths, or ``gs://`` URIs."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether ``uri`` names an existing file (a folder is not one)."""

    @abstractmethod
    def read_bytes(self, uri: str, limit: int | None = None) -> bytes:
        """The file's bytes (the first ``limit`` of them); FileNotFoundError when missing."""

    @abstractmethod
    def write_text(self, uri: str, text: str) -> None:
        """Replace the file with ``text`` (UTF-8), creating folders as needed."""


class StagingLoader(ABC):
    # Whether a typed source's column names must be plain identifiers: true where the SQL
    # names them (BigQuery); the local loader renames the columns by position instead.
    source_names_must_be_identifiers: bool = False

    @abstractmethod
    def load_csv_to_staging(
        self, uri: str, header: Sequence[str], contract: Contract
    ) -> StagingLoad:
        """Replace the staging table with the CSV at ``uri``, every column as STRING."""

    @abstractmethod
    def describe_source(self, uri: str) -> list[SourceColumn]:
        """A typed source's columns (a Parquet file or folder, a BigQuery table), in order.

        A DataError when it does not exist or cannot be read as that kind of source.
        """

    @abstractmethod
    def load_table_to_staging(
        self, uri: str, staged: Sequence[StagedColumn], contract: Contract
    ) -> StagingLoad:
        """Replace the staging table with a typed source's rows, every column as STRING
        (``sql/stage_table.sql``: the rule of how a typed value becomes text is written once)."""


class Warehouse(ABC):
    """Where staging, history, features, forecasts and quarantine tables live."""

    tables: TableNames

    @abstractmethod
    def run_script(
        self,
        name: str,
        contract: Contract,
        *,
        render: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        """Run ``sql/<name>.sql`` (one transaction where the engine allows it).

        ``render`` holds template variables (which parts of the script exist); ``params`` are
        bound as query parameters (``@name``), never pasted into the SQL text.
        """

    @abstractmethod
    def table_exists(self, table: str) -> bool:
        """Whether one of :class:`TableNames`' tables (by field name) exists."""

    @abstractmethod
    def table_columns(self, table: str) -> list[str]:
        """The column names of one of :class:`TableNames`' tables (by field name), as stored."""

    @abstractmethod
    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Run a small read query written in BigQuery's dialect and return its rows."""

    @abstractmethod
    def table_uri(self, table: str) -> str:
        """A URI the trainer understands for a table (``duckdb://...`` or ``bq://...``)."""


class JobRunner(ABC):
    """Runs the trainer image's entrypoint (``python -m trainer <command> ...``)."""

    @abstractmethod
    def run(
        self, command: str, args: Sequence[str], *, env: Mapping[str, str], job_name: str
    ) -> None:
        """Run one job to completion; raise with the job's own error output on failure."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    uri: str  # the promoted, stable folder: never a run-scoped one
    run_id: str  # the run that registered it (on Vertex AI: that run's key)
    metrics: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    aliases: tuple[str, ...] = ()
    created_at: str = ""
    # The tuning study that produced its LightGBM params ("": the settings' params).
    study: str = ""


class ModelRegistry(ABC):
    """Looking models up: which version holds an alias, which versions exist."""

    @abstractmethod
    def get_by_alias(self, alias: str) -> ModelVersion | None: ...

    @abstractmethod
    def list_versions(self) -> list[ModelVersion]: ...


class ModelPublisher(ABC):
    @abstractmethod
    def register(
        self, source_dir: str, *, run_id: str, metrics: dict[str, Any], extra: dict[str, Any]
    ) -> ModelVersion:
        """Copy a run's model into the promoted folder and record a new version.

        Registering the same run twice returns the existing version (no duplicates).
        """


class Deployer(ABC):
    @abstractmethod
    def deploy(self, version: ModelVersion) -> dict[str, Any]:
        """Make ``version`` the one the endpoint serves; return a description of the result."""


@dataclass
class Platform:
    store: ObjectStore
    warehouse: Warehouse
    registry: ModelRegistry
    loader: StagingLoader | None = None
    runner: JobRunner | None = None
    publisher: ModelPublisher | None = None
    deployer: Deployer | None = None
