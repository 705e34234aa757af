"""The small interfaces the pipeline steps talk to.

A platform is a bundle of four objects: a warehouse, a job runner for the trainer image, a model
registry and a deployer. The steps in :mod:`sales_forecast.steps` only see these interfaces, so
the same logic runs on the local platform (DuckDB, subprocesses, folders) and on GCP.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sales_forecast.contract import Contract
from sales_forecast.sqlrender import TableNames

__all__ = [
    "Deployer",
    "JobRunner",
    "ModelRegistry",
    "ModelVersion",
    "Platform",
    "StagingLoad",
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


class Warehouse(ABC):
    """Where staging, history, features, forecasts and quarantine tables live."""

    tables: TableNames

    @abstractmethod
    def load_csv_to_staging(
        self, uri: str, header: Sequence[str], contract: Contract
    ) -> StagingLoad:
        """Replace the staging table with the CSV at ``uri``, every column as STRING."""

    @abstractmethod
    def run_script(self, name: str, contract: Contract, **params: Any) -> None:
        """Run ``sql/<name>.sql`` (one transaction where the engine allows it)."""

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
    run_id: str
    metrics: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    aliases: tuple[str, ...] = ()
    created_at: str = ""


class ModelRegistry(ABC):
    @abstractmethod
    def get_by_alias(self, alias: str) -> ModelVersion | None: ...

    @abstractmethod
    def register(
        self, source_dir: str, *, run_id: str, metrics: dict[str, Any], extra: dict[str, Any]
    ) -> ModelVersion:
        """Copy a run's model into the promoted folder and record a new version.

        Registering the same run twice returns the existing version (no duplicates).
        """

    @abstractmethod
    def set_alias(self, alias: str, version: str) -> ModelVersion: ...

    @abstractmethod
    def list_versions(self) -> list[ModelVersion]: ...


class Deployer(ABC):
    @abstractmethod
    def deploy(self, version: ModelVersion) -> dict[str, Any]:
        """Make ``version`` the one the endpoint serves; return a description of the result."""


@dataclass
class Platform:
    warehouse: Warehouse
    runner: JobRunner
    registry: ModelRegistry
    deployer: Deployer
    runs_root: str  # run-scoped artifacts live under <runs_root>/<run id>/
