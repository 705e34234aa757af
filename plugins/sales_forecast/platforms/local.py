"""The local platform: a DuckDB file, real subprocesses, a folder registry. Nothing is mocked."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sales_forecast.config import Settings
from sales_forecast.csv_checks import check_header
from sales_forecast.errors import ConfigError, DataError
from sales_forecast.platforms.base import (
    Deployer,
    JobRunner,
    ModelPublisher,
    ModelRegistry,
    ModelVersion,
    ObjectStore,
    Platform,
    StagingLoad,
    StagingLoader,
    Warehouse,
)
from sales_forecast.sources import (
    PARQUET_SUFFIXES,
    SourceColumn,
    SourceKind,
    StagedColumn,
    source_kind,
)
from sales_forecast.sqlrender import TableNames, render_sql, to_duckdb
from sf_contract.constants import PRODUCTION_ALIAS, USER_ERROR_EXIT
from sf_contract.files import (
    FileFormatError,
    RegistryEntry,
    RegistryIndex,
    dumps,
    empty_registry,
    parse_registry,
    registry_index_path,
)
from sf_contract.schema import Contract

__all__ = [
    "DuckDBWarehouse",
    "LocalDeployer",
    "LocalModelRegistry",
    "LocalStore",
    "SubprocessJobRunner",
    "build_local_platform",
    "duckdb_connect",
    "sha256_file",
]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def duckdb_connect(
    path: Path, read_only: bool = False, wait_s: float = 60.0, memory_limit: str | None = None
) -> Iterator[Any]:
    """Open the DuckDB file, waiting while another process holds the write lock.

    DuckDB allows one writing process per file; under a real scheduler tasks, the serving app
    and the trainer are separate processes, so each opens late, closes early, and waits briefly.
    ``memory_limit`` ("50%", "8GB") caps DuckDB's memory; beyond it DuckDB spills to disk.
    """
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            config: dict[str, str | bool | int | float | list[str]] = (
                {"memory_limit": memory_limit} if memory_limit else {}
            )
            con = duckdb.connect(str(path), read_only=read_only, config=config)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        yield con
    finally:
        con.close()


class LocalStore(ObjectStore):
    """Files through fsspec: local paths (and any URI fsspec knows, for tests and tools)."""

    def exists(self, uri: str) -> bool:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return bool(fs.isfile(path))

    def read_bytes(self, uri: str, limit: int | None = None) -> bytes:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        with fs.open(path, "rb") as fh:
            return bytes(fh.read() if limit is None else fh.read(limit))

    def write_text(self, uri: str, text: str) -> None:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(path, "w", encoding="utf-8") as fh:
            fh.write(text)


def _ident(name: str) -> str:
    """A DuckDB quoted identifier (names are checked identifiers already; quotes doubled anyway)."""
    return '"' + name.replace('"', '""') + '"'


def duckdb_errors() -> tuple[type[Exception], ...]:
    """What DuckDB raises for a file it cannot read (IO, a bad Parquet footer, a mismatch)."""
    import duckdb

    return (
        duckdb.IOException,
        duckdb.InvalidInputException,
        duckdb.BinderException,
        duckdb.ConversionException,
        duckdb.NotImplementedException,
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def parquet_files(uri: str) -> list[str]:
    """The Parquet files a local input names: the file itself, or a folder's (recursively,
    in name order); a DataError when there are none."""
    if source_kind(uri) is not SourceKind.PARQUET:
        raise DataError(f"{uri}: not a Parquet file or folder")
    path = Path(uri.removeprefix("file://")).expanduser()
    if path.is_dir():
        files = sorted(
            str(p)
            for p in path.rglob("*")
            if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIXES)
        )
        if not files:
            raise DataError(
                f"{uri}: the folder holds no Parquet files (*{', *'.join(PARQUET_SUFFIXES)})"
            )
        return files
    if not path.is_file():
        raise DataError(f"{uri}: input file not found")
    return [str(path)]


class DuckDBWarehouse(Warehouse, StagingLoader):
    def __init__(
        self,
        path: Path,
        dataset: str,
        memory_limit: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.dataset = dataset
        self.tables = TableNames(dataset, run_id)
        self.memory_limit = memory_limit

    def _connect(self) -> contextlib.AbstractContextManager[Any]:
        return duckdb_connect(self.path, memory_limit=self.memory_limit)

    def _table(self, table: str) -> str:
        """A table as DuckDB SQL spells it: ``"dataset"."name"``."""
        return f"{_ident(self.dataset)}.{_ident(self.tables.name(table))}"

    def load_csv_to_staging(
        self, uri: str, header: Sequence[str], contract: Contract
    ) -> StagingLoad:
        staging = self._table("staging")
        # The file's header names (``Units Sold``) are free text and never reach SQL: read_csv
        # takes its column names from ``columns``, by position, so the file's i-th column is
        # read straight into the contract name of its header. check_header has already made
        # the header exactly the contract's; checked again here because the map relies on it.
        check_header(list(header), contract, uri)
        columns = {contract.column_for_header(h).name: "VARCHAR" for h in header}
        with self._connect() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.dataset)}")
            con.execute("BEGIN")
            # Explicit columns, every one VARCHAR: typing happens in validate.sql, where a bad
            # value becomes a quarantine row with a reason instead of a failed or lossy load.
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE _raw AS
                SELECT row_number() OVER () AS _i, *
                FROM read_csv(?, header = true, auto_detect = false, delim = ',', quote = '"',
                              escape = '"', columns = ?, store_rejects = true,
                              rejects_table = '_rejects', rejects_scan = '_reject_scans')
                """,
                [uri, columns],
            )
            rejects = con.execute("SELECT line FROM _rejects ORDER BY line").fetchall()
            # Rows after a skipped malformed line shift by one: map the i-th accepted row back
            # to its real line number (line 1 is the header).
            thresholds = [int(line) - j for j, (line, *_rest) in enumerate(rejects, start=1)]
            con.execute("CREATE OR REPLACE TEMP TABLE _thresholds (t BIGINT)")
            if thresholds:
                con.executemany("INSERT INTO _thresholds VALUES (?)", [[t] for t in thresholds])
            # A column the file leaves out (``required: false``) is NULL on every row.
            select_cols = ", ".join(
                _ident(c) if c in columns else f"CAST(NULL AS VARCHAR) AS {_ident(c)}"
                for c in contract.column_names
            )
            con.execute(
                f"""
                CREATE OR REPLACE TABLE {staging} AS
                SELECT _i + 1 + (SELECT count(*) FROM _thresholds WHERE _raw._i >= t)
                         AS _source_row,
                       ? AS _source_file, {select_cols}
                FROM _raw ORDER BY _i
                """,
                [uri],
            )
            con.execute(
                f"""
                CREATE OR REPLACE TABLE {self._table("staging_malformed")} AS
                SELECT CAST(line AS BIGINT) AS source_row,
                       'malformed CSV line (' || lower(CAST(error_type AS VARCHAR)) || '): '
                         || split_part(error_message, chr(10), 1) AS reason,
                       csv_line AS raw_line
                FROM _rejects
                """
            )
            rows = con.execute(f"SELECT count(*) FROM {staging}").fetchone()[0]
            con.execute("COMMIT")
        return StagingLoad(
            table=f"{self.dataset}.{self.tables.name('staging')}",
            rows=int(rows),
            malformed=len(rejects),
        )

    def describe_source(self, uri: str) -> list[SourceColumn]:
        files = parquet_files(uri)
        with self._connect() as con:
            try:
                # union_by_name: a folder's files may order their columns differently; a column
                # one file lacks is NULL there (quarantined), one it adds is an unknown column.
                rows = con.execute(
                    "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [files]
                ).fetchall()
            except duckdb_errors() as exc:
                raise DataError(f"{uri}: not readable as Parquet ({_first_line(exc)})") from None
        return [SourceColumn(name=str(r[0]), type=str(r[1])) for r in rows]

    def load_table_to_staging(
        self, uri: str, staged: Sequence[StagedColumn], contract: Contract
    ) -> StagingLoad:
        files = parquet_files(uri)
        # The source's own names (free text, "Units Sold") never reach SQL: the columns are
        # renamed by position to the contract's names, and read_parquet's file name and row
        # number, appended after them, get names of ours.
        # The header check made the source's columns exactly the contract's: one name each.
        present = [s for s in staged if s.kind != "absent"]
        aliases = [s.name for s in sorted(present, key=lambda s: s.position)]
        # read_parquet appends file_row_number, then filename (DuckDB's order; the tests
        # would see rows numbered wrongly if it changed).
        alias_sql = ", ".join(_ident(a) for a in [*aliases, "_sf_row", "_sf_file"])
        script = to_duckdb(
            render_sql("stage_table", contract, self.tables, {"staged": staged, "bq_table": None})
        )
        with self._connect() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.dataset)}")
            con.execute("BEGIN")
            try:
                # Rows are numbered 1.. across the files in name order, and each keeps the
                # input's URI as its source (what the quarantine and a rerun key on).
                con.execute(
                    f"""
                    CREATE OR REPLACE TEMP TABLE _typed_source AS
                    SELECT row_number() OVER (ORDER BY _sf_file, _sf_row) AS _source_row,
                           CAST(? AS VARCHAR) AS _source_file, *
                    FROM read_parquet(?, filename = true, file_row_number = true,
                                      union_by_name = true)
                         AS _src({alias_sql})
                    """,
                    [uri, files],
                )
                for stmt in script:
                    con.execute(stmt)
                con.execute(
                    f"CREATE OR REPLACE TABLE {self._table('staging_malformed')} "
                    "(source_row BIGINT, reason VARCHAR, raw_line VARCHAR)"
                )
                rows = con.execute(f"SELECT count(*) FROM {self._table('staging')}").fetchone()[0]
                con.execute("COMMIT")
            except duckdb_errors() as exc:
                con.execute("ROLLBACK")
                raise DataError(f"{uri}: not readable as Parquet ({_first_line(exc)})") from None
        return StagingLoad(
            table=f"{self.dataset}.{self.tables.name('staging')}", rows=int(rows), malformed=0
        )

    def run_script(
        self,
        name: str,
        contract: Contract,
        *,
        render: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        statements = to_duckdb(render_sql(name, contract, self.tables, render))
        with self._connect() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.dataset)}")
            con.execute("BEGIN")
            try:
                for stmt in statements:
                    used = {k: v for k, v in params.items() if f"${k}" in stmt}
                    con.execute(stmt, used or None)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        (stmt,) = to_duckdb(sql)
        with self._connect() as con:
            cur = con.execute(stmt, {k: v for k, v in params.items() if f"${k}" in stmt} or None)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def table_exists(self, table: str) -> bool:
        # DuckDB SQL as written (no transpile: BigQuery's INFORMATION_SCHEMA is another thing).
        with self._connect() as con:
            (n,) = con.execute(
                "SELECT COUNT(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                [self.dataset, self.tables.name(table)],
            ).fetchone()
        return bool(n)

    def table_columns(self, table: str) -> list[str]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                "ORDER BY column_index",
                [self.dataset, self.tables.name(table)],
            ).fetchall()
        return [str(r[0]) for r in rows]

    def table_uri(self, table: str) -> str:
        return f"duckdb://{self.path}?table={self.dataset}.{self.tables.name(table)}"


class SubprocessJobRunner(JobRunner):
    """Runs the trainer entrypoint as a subprocess with the environment Vertex AI would set.

    ``module``: another image's entrypoint run the same way (``serving.batch``, whose
    ``command`` is empty).
    """

    def __init__(self, python: str, src: Path, timeout_s: int, module: str = "trainer") -> None:
        self.python = python
        self.src = Path(src)
        self.timeout_s = timeout_s
        self.module = module

    def run(
        self, command: str, args: Sequence[str], *, env: Mapping[str, str], job_name: str
    ) -> None:
        cmd = [self.python, "-m", self.module, *([command] if command else []), *args]
        full_env = {
            **os.environ,
            "PYTHONPATH": str(self.src),
            "CLOUD_ML_JOB_ID": job_name,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        log.info("running job %s: %s", job_name, " ".join(cmd))
        proc = subprocess.Popen(
            cmd,
            cwd=self.src,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        tail: list[str] = []
        if proc.stdout is None:  # cannot happen with stdout=PIPE; keeps the type checker honest
            raise RuntimeError(f"job {job_name}: no output pipe")
        for line in proc.stdout:
            log.info("[%s] %s", command or self.module, line.rstrip())
            tail = [*tail[-19:], line.rstrip()]
        try:
            code = proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise RuntimeError(f"job {job_name} timed out after {self.timeout_s} s") from None
        if code != 0:
            detail = "\n".join(tail[-8:])
            what = f"{self.module} {command}".strip()
            if code == USER_ERROR_EXIT:
                # The trainer's documented "a mistake the caller can fix": no retry helps.
                last = next((t for t in reversed(tail) if t.strip()), "")
                raise DataError(
                    f"{what} rejected its input: {last}\n(job {job_name}, exit {code})\n{detail}"
                )
            raise RuntimeError(f"job {job_name} ({what}) failed, exit {code}:\n{detail}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _study_of(entry: dict[str, Any]) -> str:
    """The tuning study recorded with a version (``register``'s ``tuning`` extra), or ""."""
    record = entry.get("tuning")
    return str(record.get("study") or "") if isinstance(record, dict) else ""


class LocalModelRegistry(ModelRegistry, ModelPublisher):
    """A versioned folder registry with aliases, mirroring Vertex AI Model Registry semantics.

    ``<root>/<name>/registry.json`` is the index; ``<root>/<name>/<version>/`` holds the files.
    The index is replaced atomically (write a temp file, then rename), so a reader never sees a
    half-written record and a crash leaves the previous state intact.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = Path(root) / name
        self.name = name
        self.index_path = Path(registry_index_path(root, name))

    def _read(self) -> RegistryIndex:
        if not self.index_path.exists():
            return empty_registry(self.name)
        try:
            return parse_registry(self.index_path.read_bytes(), str(self.index_path))
        except FileFormatError as exc:
            # Never overwrite a damaged index: it is the only record of what was promoted.
            # Retrying does not repair it either: fail the task at once, saying what to do.
            raise ConfigError(f"{exc}; restore it from a backup or move it away") from None

    def _write(self, index: RegistryIndex) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_text(dumps(index))
        os.replace(tmp, self.index_path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[RegistryIndex]:
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = self._read()
            yield index
            self._write(index)

    def _version(self, index: RegistryIndex, entry: RegistryEntry) -> ModelVersion:
        aliases = tuple(sorted(a for a, v in index["aliases"].items() if v == entry["version"]))
        return ModelVersion(
            name=self.name,
            version=entry["version"],
            uri=entry["uri"],
            run_id=entry["run_id"],
            metrics=entry.get("metrics", {}),
            files=entry.get("files", {}),
            aliases=aliases,
            created_at=entry.get("created_at", ""),
            study=_study_of(dict(entry)),
        )

    def list_versions(self) -> list[ModelVersion]:
        index = self._read()
        return [self._version(index, e) for e in index["versions"]]

    def get(self, version: str) -> ModelVersion:
        index = self._read()
        for e in index["versions"]:
            if e["version"] == version:
                return self._version(index, e)
        raise KeyError(f"model {self.name} has no version {version!r}")

    def get_by_alias(self, alias: str) -> ModelVersion | None:
        index = self._read()
        version = index["aliases"].get(alias)
        return None if version is None else self.get(version)

    def verify(self, version: ModelVersion) -> None:
        """Raise if the promoted files differ from the sha256 recorded at registration."""
        actual = _hash_tree(Path(version.uri))
        if actual != version.files:
            changed = sorted(set(actual.items()) ^ set(version.files.items()))
            raise RuntimeError(
                f"model {self.name} v{version.version}: files differ from the registry record "
                f"({', '.join(sorted({k for k, _ in changed}))}); refusing to use it"
            )

    def register(
        self, source_dir: str, *, run_id: str, metrics: dict[str, Any], extra: dict[str, Any]
    ) -> ModelVersion:
        src = Path(source_dir)
        if not src.is_dir() or not any(src.iterdir()):
            raise FileNotFoundError(f"no model files in {src}")
        with self._locked() as index:
            for e in index["versions"]:
                if e["run_id"] == run_id:
                    log.info("run %s is already registered as version %s", run_id, e["version"])
                    return self._version(index, e)
            version = str(1 + max((int(e["version"]) for e in index["versions"]), default=0))
            dest = self.root / version
            tmp = self.root / f".{version}.{uuid.uuid4().hex}.tmp"
            shutil.copytree(src, tmp)
            files = _hash_tree(tmp)
            if dest.exists():  # a crash between copy and index write left an orphan folder
                shutil.rmtree(dest)
            os.replace(tmp, dest)
            entry: RegistryEntry = {
                "version": version,
                "uri": str(dest),
                "run_id": run_id,
                "metrics": metrics,
                "files": files,
                "created_at": _now(),
                **extra,  # type: ignore[typeddict-item]
            }
            index["versions"].append(entry)
            index["events"].append({"at": _now(), "event": "register", "version": version})
            return self._version(index, entry)

    def set_alias(self, alias: str, version: str) -> ModelVersion:
        with self._locked() as index:
            if not any(e["version"] == version for e in index["versions"]):
                raise KeyError(f"model {self.name} has no version {version!r}")
            previous = index["aliases"].get(alias)
            index["aliases"][alias] = version
            index["events"].append(
                {
                    "at": _now(),
                    "event": "alias",
                    "alias": alias,
                    "version": version,
                    "previous": previous,
                }
            )
        return self.get(version)


class LocalDeployer(Deployer):
    """Local "deploy" = move the registry's ``production`` alias after checking the files.

    The local serving app serves that alias and picks the new version up without a restart.
    """

    def __init__(self, registry: LocalModelRegistry, alias: str = PRODUCTION_ALIAS) -> None:
        self.registry = registry
        self.alias = alias

    def deploy(self, version: ModelVersion) -> dict[str, Any]:
        self.registry.verify(version)
        previous = self.registry.get_by_alias(self.alias)
        self.registry.set_alias(self.alias, version.version)
        return {
            "endpoint": f"local registry alias '{self.alias}'",
            "model": version.name,
            "version": version.version,
            "previous_version": previous.version if previous else None,
            "uri": version.uri,
        }


def build_local_platform(
    settings: Settings, contract_name: str | None = None, run_id: str | None = None
) -> Platform:
    """The local platform for one dataset contract (and one run's staging tables)."""
    suffix = settings.namespace(contract_name or settings.default_dataset)
    registry = LocalModelRegistry(settings.models_root, settings.model_name + suffix)
    warehouse = DuckDBWarehouse(
        settings.warehouse_path,
        settings.dataset + suffix,
        settings.duckdb_memory_limit,
        run_id=run_id,
    )
    return Platform(
        store=LocalStore(),
        warehouse=warehouse,
        registry=registry,
        loader=warehouse,
        runner=SubprocessJobRunner(
            settings.trainer_python, settings.trainer_src, settings.trainer_timeout_s
        ),
        publisher=registry,
        deployer=LocalDeployer(registry),
    )
