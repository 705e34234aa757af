"""The view's local backend: the DuckDB warehouse file and the folder registry, read-only.

DuckDB lets one process write a file and nobody else open it meanwhile, so a reader that held
the file open would make a running task wait. The view opens it read-only for one request and
closes it at once; a request that finds it locked waits briefly, then answers 503
(:class:`~sales_forecast.ui.data.WarehouseBusy`) rather than queueing behind the writer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sales_forecast.config import Settings
from sales_forecast.platforms.base import ModelRegistry
from sales_forecast.ui.data import Dialect, ForecastsData, WarehouseBusy
from sf_contract.schema import Contract

__all__ = ["LOCK_WAIT_S", "DuckDBSession", "duckdb_session", "local_data"]

# How long a request waits for a writer to let go of the DuckDB file before answering 503
# (the DAG's own tasks wait up to a minute; a page should not).
LOCK_WAIT_S = 1.5


class DuckDBSession:
    """One read-only DuckDB connection (the caller closes it)."""

    def __init__(self, con: Any, dataset: str) -> None:
        self.con = con
        self.dialect = Dialect("duckdb", dataset)

    def tables(self) -> set[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [self.dialect.prefix],
        ).fetchall()
        return {str(r[0]) for r in rows}

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, dict(params) or None)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@contextlib.contextmanager
def duckdb_session(
    path: Path, dataset: str, wait_s: float = LOCK_WAIT_S
) -> Iterator[DuckDBSession]:
    """A read-only session on the warehouse file, or :class:`WarehouseBusy` while it is locked."""
    import duckdb

    from sales_forecast.platforms.local import duckdb_connect

    with contextlib.ExitStack() as stack:
        try:
            # duckdb_connect retries a lock error until wait_s has passed, then re-raises it.
            con = stack.enter_context(duckdb_connect(path, read_only=True, wait_s=wait_s))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise WarehouseBusy(
                f"the warehouse {path.name} is being written by a running task; "
                "try again in a few seconds"
            ) from None
        yield DuckDBSession(con, dataset)


class _EmptySession:
    """A warehouse that has no tables yet (no file: nothing has run)."""

    def __init__(self, dataset: str) -> None:
        self.dialect = Dialect("duckdb", dataset)

    def tables(self) -> set[str]:
        return set()

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        raise AssertionError("no table to query")  # every caller checks tables() first


@contextlib.contextmanager
def local_data(settings: Settings, contract: Contract, suffix: str) -> Iterator[ForecastsData]:
    from sales_forecast.platforms.local import LocalModelRegistry

    def registry() -> ModelRegistry:
        return LocalModelRegistry(settings.models_root, settings.model_name + suffix)

    dataset = settings.dataset + suffix
    db = settings.warehouse_path
    if not db.exists():
        # Never create the file or its folder: a reader must not leave anything behind.
        yield ForecastsData(_EmptySession(dataset), contract, registry)
        return
    with duckdb_session(db, dataset) as session:
        yield ForecastsData(session, contract, registry)
