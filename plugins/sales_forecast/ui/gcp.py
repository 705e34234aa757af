"""The view's GCP backend: BigQuery query jobs and the Vertex AI Model Registry, read-only.

Queries go as the DAG's warehouse sends them (standard SQL, typed named parameters: see
:func:`sales_forecast.platforms.gcp.warehouse.query_config`). The ``gcp_*`` settings are read
as the API server can: a fixed value, or the Airflow Variable their default template names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sales_forecast.config import GCP_VARIABLES, Settings
from sales_forecast.platforms.base import ModelRegistry
from sales_forecast.ui.data import Dialect, ForecastsData, ViewError
from sf_contract.schema import Contract

__all__ = ["BigQuerySession", "airflow_variable", "gcp_data", "gcp_value"]

VariableGet = Callable[[str, str], str]


class BigQuerySession:
    """Read-only queries on one dataset through a ``google.cloud.bigquery.Client``."""

    def __init__(self, client: Any, project: str, dataset: str) -> None:
        self.client = client
        self.dialect = Dialect("bigquery", f"{project}.{dataset}")

    def tables(self) -> set[str]:
        sql = f"SELECT table_name FROM {self.dialect.table('INFORMATION_SCHEMA.TABLES')}"
        return {str(r["table_name"]) for r in self.rows(sql, {})}

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        from google.cloud import bigquery

        from sales_forecast.platforms.gcp.warehouse import query_config

        config = bigquery.QueryJobConfig.from_api_repr(query_config(sql, params))
        return [dict(r.items()) for r in self.client.query(sql, job_config=config).result()]


def gcp_value(settings: Settings, setting: str, variable_get: VariableGet) -> str:
    """A ``gcp_*`` setting outside a task: its fixed value, or its Airflow Variable.

    In a task the setting's default template is rendered with the task's context; the API
    server has none, so the Variable the template names is read directly. A setting given a
    fixed value (``SF_GCP_PROJECT=my-project``) is used as it is.
    """
    value = str(getattr(settings, setting))
    var, default = GCP_VARIABLES[setting]
    if "{{" not in value:
        return value.strip()
    if value != Settings.model_fields[setting].default:
        raise ViewError(
            f"{setting}: the view reads only a fixed value or the Airflow Variable {var}, "
            f"not the template {value!r}"
        )
    found = str(variable_get(var, default or "")).strip()
    if not found:
        raise ViewError(f"GCP not configured for the view: set the Airflow Variable {var}")
    return found


def airflow_variable(name: str, default: str) -> str:
    # The API server's Variable (metadata database and secrets backends, read directly):
    # the Task SDK's airflow.sdk.Variable talks to a task supervisor, which is not there.
    from airflow.models import Variable

    return str(Variable.get(name, default_var=default))  # noqa: AIR311


@contextlib.contextmanager
def gcp_data(
    settings: Settings, contract: Contract, suffix: str, variable_get: VariableGet
) -> Iterator[ForecastsData]:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    project = gcp_value(settings, "gcp_project", variable_get)
    dataset = gcp_value(settings, "gcp_bq_dataset", variable_get) + suffix
    location = gcp_value(settings, "gcp_bq_location", variable_get)
    region = gcp_value(settings, "gcp_region", variable_get)
    bucket = gcp_value(settings, "gcp_bucket", variable_get).removeprefix("gs://").strip("/")
    model_name = settings.model_name + suffix

    def registry() -> ModelRegistry:
        from sales_forecast.platforms.gcp.registry import VertexModelRegistry

        return VertexModelRegistry(
            conn_id=settings.gcp_conn_id,
            project=project,
            region=region,
            model_name=model_name,
            promoted_root=f"gs://{bucket}/models/{model_name}/",
        )

    hook = BigQueryHook(gcp_conn_id=settings.gcp_conn_id, location=location)
    client = hook.get_client(project_id=project, location=location)
    try:
        yield ForecastsData(BigQuerySession(client, project, dataset), contract, registry)
    finally:
        client.close()
