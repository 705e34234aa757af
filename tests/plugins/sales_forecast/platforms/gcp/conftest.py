"""The gcp DAG parsed as the dag-processor does, and the Google APIs mocked at their hooks.

GCS is an in-memory :class:`~tests._support.gcp.FakeGCS`; BigQuery records the jobs it is sent
and answers queries from a function; Vertex AI hooks are ``MagicMock``s. (BigQuery and GCS run
for real against emulators in tests/gcp.)
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from tests._support.gcp import PARENT, FakeGCS, load_gcp_dag, set_variables

GCP = "sales_forecast.platforms.gcp"
# Where each module looks its hook up (names bound at import, so patched where used).
MODEL_HOOKS = (
    f"{GCP}.registry.ModelServiceHook",
    f"{GCP}.register.ModelServiceHook",
    f"{GCP}.deploy.ModelServiceHook",
    "airflow.providers.google.cloud.operators.vertex_ai.model_service.ModelServiceHook",
)
ENDPOINT_HOOKS = (
    f"{GCP}.deploy.EndpointServiceHook",
    "airflow.providers.google.cloud.operators.vertex_ai.endpoint_service.EndpointServiceHook",
)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """No cached gcp settings leak into the next test (the tasks read them when they run)."""
    from sales_forecast import config

    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


@pytest.fixture(autouse=True)
def no_registered_models() -> Iterator[mock.MagicMock]:
    """An empty Model Registry, unless a test's ``models`` fixture (patched inside it) says more.

    The daily train task looks up the newest tuned version when it renders (use_tuned_params
    is on by default): without this, a test that never thought of the registry would call it.
    """
    hook = mock.MagicMock()
    hook.list_models.return_value = []
    with mock.patch(f"{GCP}.registry.ModelServiceHook", return_value=hook):
        yield hook


@pytest.fixture
def dag(monkeypatch: pytest.MonkeyPatch) -> Any:
    set_variables(monkeypatch)
    return load_gcp_dag(monkeypatch)


@pytest.fixture
def gcs() -> Iterator[FakeGCS]:
    fake = FakeGCS()
    with mock.patch(f"{GCP}.storage.GCSHook", return_value=fake):
        yield fake


class FakeBigQuery:
    """The BigQueryHook calls the warehouse makes: jobs are recorded, queries answered.

    ``answer(sql, params)`` returns the rows of a query (``params``: name -> value as sent).
    """

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []  # insert_job kwargs, in order
        self.queries: list[tuple[str, dict[str, Any]]] = []
        self.answer: Callable[[str, dict[str, Any]], list[dict[str, Any]]] = lambda sql, p: []
        self.datasets: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []  # BigQueryHook(...) kwargs
        # Datasets that exist, (project, dataset) -> location; none unless a test adds one.
        self.existing: dict[tuple[str, str], str] = {}
        self.lookups: list[dict[str, Any]] = []  # get_dataset kwargs
        self.errors: dict[str, Exception] = {}  # hook method name -> the error it raises

    def insert_job(self, **kwargs: Any) -> None:
        self.jobs.append(kwargs)

    def create_empty_dataset(self, **kwargs: Any) -> None:
        if "create_empty_dataset" in self.errors:
            raise self.errors["create_empty_dataset"]
        self.datasets.append(kwargs)
        self.existing[(kwargs["project_id"], kwargs["dataset_id"])] = kwargs["location"]

    def get_dataset(self, *, dataset_id: str, project_id: str) -> Any:
        from google.api_core.exceptions import NotFound

        self.lookups.append({"dataset_id": dataset_id, "project_id": project_id})
        if "get_dataset" in self.errors:
            raise self.errors["get_dataset"]
        if (project_id, dataset_id) not in self.existing:
            raise NotFound(f"Not found: Dataset {project_id}:{dataset_id}")
        return SimpleNamespace(
            dataset_id=dataset_id, location=self.existing[(project_id, dataset_id)]
        )

    def table_exists(self, *, project_id: str, dataset_id: str, table_id: str) -> bool:
        # The run's staging tables exist until merge_history drops them.
        dropped = any(
            f"DROP TABLE IF EXISTS `{project_id}.{dataset_id}.{table_id}`" in s
            for s in self.statements
        )
        return table_id.startswith("staging") and not dropped

    @property
    def statements(self) -> list[str]:
        return [
            j["configuration"]["query"]["query"] for j in self.jobs if "query" in j["configuration"]
        ]

    def get_client(self, project_id: str, location: str) -> Any:
        def query(sql: str, job_config: Any) -> Any:
            params = {p.name: p.value for p in job_config.query_parameters}
            self.queries.append((sql, params))
            rows = self.answer(sql, params)
            return SimpleNamespace(result=lambda: [SimpleNamespace(items=r.items) for r in rows])

        def get_table(table_id: str) -> Any:
            # The columns the table was created with (create_tables.sql's DDL as sent).
            create = f"CREATE TABLE IF NOT EXISTS `{table_id}` ("
            ddl = next((s for s in self.statements if create in s), "")
            names = re.findall(r"^\s+`([^`]+)` ", ddl.split(create, 1)[-1], flags=re.M)
            return SimpleNamespace(schema=[SimpleNamespace(name=n) for n in names])

        return SimpleNamespace(
            query=query, get_table=get_table, project=project_id, location=location
        )


@pytest.fixture
def bq() -> Iterator[FakeBigQuery]:
    fake = FakeBigQuery()

    def hook(**kwargs: Any) -> FakeBigQuery:
        fake.created.append(kwargs)
        return fake

    with mock.patch(f"{GCP}.warehouse.BigQueryHook", side_effect=hook):
        yield fake


@pytest.fixture
def models() -> Iterator[mock.MagicMock]:
    """ModelServiceHook with a parent model 777 whose `production` version is 3 (another run)."""
    hook = mock.MagicMock()
    hook.list_models.return_value = [SimpleNamespace(name=f"{PARENT}/models/777", create_time="1")]
    hook.get_model.return_value = SimpleNamespace(
        name=f"{PARENT}/models/777@3",
        version_id="3",
        artifact_uri="gs://acme-sf/models/sales_forecast/older_run/",
        version_aliases=["production"],
    )
    hook.list_model_versions.return_value = []
    with patch_all(MODEL_HOOKS, hook):
        yield hook


@pytest.fixture
def endpoints() -> Iterator[mock.MagicMock]:
    from google.cloud import aiplatform_v1

    hook = mock.MagicMock()
    hook.wait_for_operation.return_value = aiplatform_v1.DeployModelResponse(
        deployed_model=aiplatform_v1.DeployedModel(id="new1")
    )
    hook.extract_deployed_model_id.return_value = "new1"
    with patch_all(ENDPOINT_HOOKS, hook):
        yield hook


@pytest.fixture
def vertex_jobs() -> Iterator[mock.MagicMock]:
    """CustomJobHook: creates job 42; no earlier job of the run unless a test lists some."""
    hook = mock.MagicMock()
    hook.create_custom_job.return_value = SimpleNamespace(name=f"{PARENT}/customJobs/42")
    hook.extract_custom_job_id.return_value = "42"
    hook.list_custom_jobs.return_value = []
    with mock.patch(
        "airflow.providers.google.cloud.operators.vertex_ai.custom_job.CustomJobHook",
        return_value=hook,
    ):
        yield hook


CLOUD_RUN_HOOKS = (
    "airflow.providers.google.cloud.hooks.cloud_run.CloudRunHook",
    "airflow.providers.google.cloud.operators.cloud_run.CloudRunHook",
)


class FakeCloudRunApi:
    """``run_v2.ExecutionsClient`` and ``TasksClient`` (the provider's hook has neither).

    ``executions``: the job's executions (``run_v2.Execution``), newest first; a cancelled one
    completes at once. ``tasks``: execution name -> its ``run_v2.Task`` list.
    """

    def __init__(self) -> None:
        self.executions: list[Any] = []
        self.tasks: dict[str, list[Any]] = {}
        self.listed: list[Any] = []  # list_executions requests
        self.cancelled: list[str] = []

    def list_executions(self, request: Any = None, **kwargs: Any) -> list[Any]:
        self.listed.append(request)
        return list(self.executions)

    def cancel_execution(self, name: str, **kwargs: Any) -> None:
        self.cancelled.append(name)
        for e in self.executions:
            if e.name == name:
                e.completion_time = {"seconds": 1_700_000_000}
                e.cancelled_count = e.task_count

    def get_execution(self, name: str, **kwargs: Any) -> Any:
        return next(e for e in self.executions if e.name == name)

    def list_tasks(self, parent: str, **kwargs: Any) -> list[Any]:
        return list(self.tasks.get(parent, []))


@pytest.fixture
def cloud_run() -> Iterator[SimpleNamespace]:
    """``hook``: the provider's CloudRunHook (a MagicMock); ``api``: :class:`FakeCloudRunApi`."""
    hook = mock.MagicMock()
    api = FakeCloudRunApi()
    with contextlib.ExitStack() as stack:
        stack.enter_context(patch_all(CLOUD_RUN_HOOKS, hook))
        for client in ("ExecutionsClient", "TasksClient"):
            stack.enter_context(mock.patch(f"google.cloud.run_v2.{client}", return_value=api))
        yield SimpleNamespace(hook=hook, api=api)


def patch_all(targets: tuple[str, ...], hook: Any) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    for target in targets:
        stack.enter_context(mock.patch(target, return_value=hook))
    return stack
