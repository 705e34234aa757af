"""The two backends answer alike: DuckDB locally, BigQuery on GCP (queries only).

The BigQuery side is checked without BigQuery: every query is turned into the client's own
``QueryJobConfig`` (as the DAG's warehouse sends it), its named parameters are checked against
the ``@names`` in the text, and the BigQuery SQL is then transpiled by sqlglot and run on the
seeded DuckDB file attached as the "project". Both backends must give the same answers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sales_forecast.contract import load_contract
from sales_forecast.platforms.local import LocalModelRegistry
from sales_forecast.sqlrender import to_duckdb
from sales_forecast.ui.backends import open_data
from sales_forecast.ui.data import ForecastsData, ViewError
from sales_forecast.ui.gcp import BigQuerySession, gcp_value
from sales_forecast.ui.local import duckdb_session

PROJECT = "proj"


class _Job:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def result(self) -> list[dict[str, Any]]:
        return self.rows


class DuckDBAsBigQuery:
    """A ``bigquery.Client`` stand-in: checks each job's configuration, runs it on DuckDB."""

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect()
        self.con.execute(f"ATTACH '{path}' AS {PROJECT} (READ_ONLY)")
        self.jobs: list[tuple[str, Any]] = []
        self.closed = False

    def query(self, sql: str, job_config: Any) -> _Job:
        from google.cloud import bigquery

        assert isinstance(job_config, bigquery.QueryJobConfig)
        assert job_config.use_legacy_sql is False
        params = {p.name: p.value for p in job_config.query_parameters}
        assert set(re.findall(r"@(\w+)", sql)) == set(params), sql
        self.jobs.append((sql, job_config))
        m = re.fullmatch(r"SELECT table_name FROM `(\w+)\.(\w+)\.INFORMATION_SCHEMA\.TABLES`", sql)
        if m:
            rows = self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                "AND schema_name = ?",
                [m[1], m[2]],
            ).fetchall()
            return _Job([{"table_name": r[0]} for r in rows])
        (stmt,) = to_duckdb(sql)
        cur = self.con.execute(stmt, params or None)
        names = [d[0] for d in cur.description]
        return _Job([dict(zip(names, r, strict=True)) for r in cur.fetchall()])

    def close(self) -> None:
        self.closed = True


def _calls(data: ForecastsData) -> dict[str, Any]:
    return {
        "series": data.series("s0", 10),
        "one": data.view("S01|I002", 7),
        "total": data.view(None, 7),
        "accuracy": data.accuracy("S01", 0),
        "accuracy_h2": data.accuracy("total", 2),
        "drift": data.drift(),
    }


def test_bigquery_queries_answer_as_duckdb(settings, monitored):
    contract = load_contract("retail", settings)

    def registry() -> LocalModelRegistry:
        return LocalModelRegistry(settings.models_root, "sales_forecast")

    with duckdb_session(monitored, "sales_forecast") as session:
        local = _calls(ForecastsData(session, contract, registry))
    client = DuckDBAsBigQuery(monitored)
    session_bq = BigQuerySession(client, PROJECT, "sales_forecast")
    bq = _calls(ForecastsData(session_bq, contract, registry))
    assert bq == local
    assert local["total"]["forecast"][0]["forecast"] == 15.0  # the same known answers
    sent = [sql for sql, _ in client.jobs]
    assert all("`proj.sales_forecast." in s for s in sent)
    # Every parameter goes as a typed named parameter, never into the text.
    types = {p.name: p.type_ for _, c in client.jobs for p in c.query_parameters}
    assert types == {
        "q": "STRING",
        "series": "STRING",
        "since": "DATE",
        "run": "STRING",
        "grp": "STRING",
        "h": "INT64",
        "day": "DATE",
    }


def test_bigquery_before_monitoring_reads_only_the_table_list(settings, warehouse):
    contract = load_contract("retail", settings)
    client = DuckDBAsBigQuery(warehouse)
    data = ForecastsData(BigQuerySession(client, PROJECT, "sales_forecast"), contract, list)
    assert data.accuracy()["available"] is False and data.drift()["available"] is False
    assert [sql for sql, _ in client.jobs] == [
        "SELECT table_name FROM `proj.sales_forecast.INFORMATION_SCHEMA.TABLES`"
    ]


def test_gcp_value_reads_the_variable_the_template_names(settings, monkeypatch):
    seen = []

    def variable_get(name: str, default: str) -> str:
        seen.append((name, default))
        return {"sf_gcp_project": "my-project"}.get(name, default)

    assert gcp_value(settings, "gcp_project", variable_get) == "my-project"
    assert gcp_value(settings, "gcp_bq_location", variable_get) == "US"  # the Variable's default
    assert seen == [("sf_gcp_project", ""), ("sf_gcp_bq_location", "US")]
    with pytest.raises(ViewError, match="set the Airflow Variable sf_gcp_bucket"):
        gcp_value(settings, "gcp_bucket", variable_get)
    fixed = settings.model_copy(update={"gcp_project": "fixed-project"})
    assert gcp_value(fixed, "gcp_project", variable_get) == "fixed-project"
    other = settings.model_copy(update={"gcp_project": "{{ var.value.other }}"})
    with pytest.raises(ViewError, match="fixed value or the Airflow Variable sf_gcp_project"):
        gcp_value(other, "gcp_project", variable_get)


def test_open_data_on_gcp_names_the_contracts_dataset_and_model(settings, monitored, monkeypatch):
    from airflow.providers.google.cloud.hooks import bigquery as bq_hooks

    client = DuckDBAsBigQuery(monitored)
    hooks: list[dict[str, Any]] = []

    class FakeHook:
        def __init__(self, **kwargs: Any) -> None:
            hooks.append(kwargs)

        def get_client(self, project_id: str, location: str) -> DuckDBAsBigQuery:
            hooks.append({"project_id": project_id, "location": location})
            return client

    monkeypatch.setattr(bq_hooks, "BigQueryHook", FakeHook)
    gcp = settings.model_copy(update={"platform": "gcp"})
    variables = {"sf_gcp_project": PROJECT, "sf_gcp_bucket": "gs://my-bucket/"}

    def variable_get(name: str, default: str) -> str:
        return variables.get(name, default)

    with open_data(gcp, "retail", variable_get) as data:
        assert data.view(None, 7)["forecast"][0]["forecast"] == 15.0
        registry = data._registry()
    assert client.closed
    assert hooks == [
        {"gcp_conn_id": "google_cloud_default", "location": "US"},
        {"project_id": PROJECT, "location": "US"},
    ]
    assert type(registry).__name__ == "VertexModelRegistry"
    assert registry.model_name == "sales_forecast"
    assert registry.promoted_root == "gs://my-bucket/models/sales_forecast/"
    assert registry.project == PROJECT and registry.region == "us-central1"
    with open_data(gcp, "takeaway", variable_get) as data:
        # Another contract's dataset and model carry its suffix.
        assert data.d.prefix == f"{PROJECT}.sales_forecast_takeaway"
        assert data._registry().model_name == "sales_forecast_takeaway"
