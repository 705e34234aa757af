"""BigQuery as the platform's warehouse: the same ``.sql`` files and checks as DuckDB locally.

``run_script`` sends each statement of a rendered script as its own query job, in order, with
only the ``@params`` it uses. Why not one multi-statement script job: BigQuery runs those fine,
but the BigQuery emulator the tests use drops query parameters in scripts, and one job per
statement also names the failing statement in the log. Every statement is idempotent (CREATE OR
REPLACE, MERGE, DELETE-then-INSERT of this run's rows), so a retry simply replays them all.

Scripts are rendered with the ``bigquery`` switch on (BigQuery-only clauses such as the features
table's partitioning; the local platform leaves it off and transpiles the rest to DuckDB).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, cast

from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

from sales_forecast.errors import ConfigError
from sales_forecast.platforms.base import Warehouse
from sales_forecast.sqlrender import TableNames, render_sql
from sf_contract.schema import Contract

__all__ = [
    "BigQueryWarehouse",
    "query_config",
    "query_parameters",
    "split_statements_verbatim",
]

log = logging.getLogger(__name__)


def split_statements_verbatim(sql: str) -> list[str]:
    """Split a BigQuery script into its statements, keeping each statement's text as written.

    What BigQuery runs must be the .sql file's own text, not sqlglot's regeneration of it.
    Semicolons inside strings and comments do not split.
    """
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.tokens import TokenType

    tokens = Dialect.get_or_raise("bigquery").tokenize(sql)
    statements: list[str] = []
    start, has_code = 0, False
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            if has_code:
                statements.append(sql[start : tok.start].strip())
            start, has_code = tok.end + 1, False
        else:
            has_code = True
    if has_code:
        statements.append(sql[start:].strip())
    return statements


def query_parameters(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """BigQuery ``queryParameters`` for the named ``@params`` a statement actually uses."""
    out = []
    for name, value in params.items():
        if not re.search(rf"@{re.escape(name)}\b", sql):
            continue
        if isinstance(value, bool):
            kind, text = "BOOL", "true" if value else "false"
        elif isinstance(value, int):
            kind, text = "INT64", str(value)
        elif isinstance(value, float):
            kind, text = "FLOAT64", repr(value)
        elif hasattr(value, "isoformat") and not isinstance(value, str):
            kind, text = "DATE", value.isoformat()
        else:
            kind, text = "STRING", str(value)
        out.append(
            {"name": name, "parameterType": {"type": kind}, "parameterValue": {"value": text}}
        )
    return out


def query_config(sql: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A query job's ``configuration`` (standard SQL, named parameters)."""
    query: dict[str, Any] = {"query": sql, "useLegacySql": False}
    qp = query_parameters(sql, params or {})
    if qp:
        query["parameterMode"] = "NAMED"
        query["queryParameters"] = qp
    return {"query": query}


class BigQueryWarehouse(Warehouse):
    def __init__(
        self,
        *,
        conn_id: str,
        project: str,
        location: str,
        dataset: str,
        run_id: str | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.project = project
        self.location = location
        self.dataset = dataset
        self.dataset_ref = f"{project}.{dataset}"
        self.tables = TableNames(self.dataset_ref, run_id)
        self._hook: BigQueryHook | None = None

    @property
    def hook(self) -> BigQueryHook:
        if self._hook is None:
            self._hook = BigQueryHook(
                gcp_conn_id=self.conn_id, location=self.location, use_legacy_sql=False
            )
        return self._hook

    def table_id(self, table: str) -> str:
        return f"{self.dataset_ref}.{self.tables.name(table)}"

    def table_uri(self, table: str) -> str:
        """The trainer's URI for a table (``bq://project.dataset.table``)."""
        return f"bq://{self.table_id(table)}"

    def script(self, name: str, contract: Contract, render: Mapping[str, Any] | None = None) -> str:
        """``sql/<name>.sql`` rendered for this contract and dataset (BigQuery dialect), with
        the ``bigquery`` switch on."""
        return render_sql(name, contract, self.tables, {"bigquery": True, **(render or {})})

    def run_statement(self, sql: str, **params: Any) -> None:
        config = query_config(sql, params)
        # The log shows exactly what BigQuery was sent: this statement and its parameters.
        log.info(
            "submitting query job:\n%s\nparameters: %s",
            sql,
            {p["name"]: p["parameterValue"] for p in config["query"].get("queryParameters", [])},
        )
        self.hook.insert_job(
            configuration=config,
            project_id=self.project,
            location=self.location,
        )

    def run_script(
        self,
        name: str,
        contract: Contract,
        *,
        render: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        statements = split_statements_verbatim(self.script(name, contract, render))
        for i, stmt in enumerate(statements, start=1):
            log.info("%s.sql: statement %s of %s", name, i, len(statements))
            self.run_statement(stmt, **params)

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        from google.cloud import bigquery

        client = self.hook.get_client(project_id=self.project, location=self.location)
        job_config = cast(
            bigquery.QueryJobConfig,
            bigquery.QueryJobConfig.from_api_repr(query_config(sql, params)),
        )
        return [dict(row.items()) for row in client.query(sql, job_config=job_config).result()]

    def table_exists(self, table: str) -> bool:
        return bool(
            self.hook.table_exists(
                project_id=self.project, dataset_id=self.dataset, table_id=self.tables.name(table)
            )
        )

    def table_columns(self, table: str) -> list[str]:
        client = self.hook.get_client(project_id=self.project, location=self.location)
        return [f.name for f in client.get_table(self.table_id(table)).schema]

    def ensure_dataset(self) -> None:
        """Create the dataset (in the configured location) only when it does not exist yet.

        Looked up first: ``datasets.insert`` needs ``bigquery.datasets.create`` on the project
        even when the dataset exists (``exists_ok`` only forgives a 409), so a dataset-scoped
        ``roles/bigquery.dataEditor`` would get a 403 on every run. Permission problems are a
        :class:`ConfigError` naming the fix: retrying cannot grant a role.
        """
        from google.api_core.exceptions import Forbidden, NotFound

        where = f"{self.project}.{self.dataset}"
        try:
            found = self.hook.get_dataset(dataset_id=self.dataset, project_id=self.project)
        except NotFound:
            found = None
        except Forbidden as exc:
            raise ConfigError(
                f"cannot read the BigQuery dataset {where} ({exc}): grant the Composer "
                "service account roles/bigquery.dataEditor on it (bigquery.datasets.get), or fix "
                "the Airflow Variables sf_gcp_project / sf_gcp_bq_dataset"
            ) from None
        if found is not None:
            have = str(getattr(found, "location", None) or "")
            if have and have.lower() != self.location.lower():
                raise ConfigError(
                    f"the BigQuery dataset {where} is in {have}, not in {self.location}: set the "
                    f"Airflow Variable sf_gcp_bq_location to {have} (jobs run where the dataset is)"
                )
            return
        log.info("BigQuery dataset %s not found: creating it in %s", where, self.location)
        try:
            self.hook.create_empty_dataset(
                dataset_id=self.dataset,
                project_id=self.project,
                location=self.location,
                exists_ok=True,  # another run may create it between the lookup and here
            )
        except Forbidden as exc:
            raise ConfigError(
                f"the BigQuery dataset {where} does not exist and the Composer service account "
                f"may not create it ({exc}; creating needs bigquery.datasets.create on "
                f"project {self.project}): create the dataset first (bq --project_id "
                f"{self.project} mk --location {self.location} --dataset {self.project}:"
                f"{self.dataset}) and grant roles/bigquery.dataEditor on it, or grant "
                "roles/bigquery.dataEditor on the project (docs/gcp.md, IAM roles)"
            ) from None
