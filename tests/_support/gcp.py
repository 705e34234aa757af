"""Shared by the GCP tests (unit and emulator): the gcp DAG, a task context like the task
runner's, the Variables a Composer user sets, and an in-memory GCS.

A plain module, not a conftest: the unit tests import it without pulling in tests/gcp (whose
conftest starts emulators).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = [
    "DATASET",
    "PARENT",
    "RUN_DIR",
    "RUN_ID",
    "RUN_KEY",
    "VARIABLES",
    "WHEN",
    "FakeGCS",
    "load_gcp_dag",
    "render",
    "set_variables",
    "task_context",
    "variables_renderer",
]

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
RUN_ID = "scheduled__2025-04-01T00:00:00+00:00"
RUN_KEY = "scheduled__2025-04-01T00_00_00_00_00"
WHEN = datetime(2025, 4, 1, tzinfo=UTC)

# What a Composer user sets as Airflow Variables (here: AIRFLOW_VAR_* environment variables).
VARIABLES = {
    "SF_GCP_PROJECT": "acme-forecast",
    "SF_GCP_INPUT_URI": "gs://acme-drops/drops/{{ ds }}/sales.csv",
    "SF_GCP_REGION": "europe-west4",
    "SF_GCP_BUCKET": "acme-sf",
    "SF_GCP_BQ_DATASET": "sales_fc",
    "SF_GCP_BQ_LOCATION": "EU",
    "SF_GCP_TRAINER_IMAGE": "<your-registry>/acme-forecast/sf/trainer:1.2.0",
    "SF_GCP_SERVING_IMAGE": "<your-registry>/acme-forecast/sf/serving:1.2.0",
    "SF_GCP_SERVICE_ACCOUNT": "sf-jobs@acme-forecast.iam.gserviceaccount.com",
    "SF_GCP_TRAIN_MACHINE_TYPE": "n2-standard-8",
    "SF_GCP_DEPLOY_MACHINE_TYPE": "n2-standard-2",
    "SF_GCP_DEPLOY_MIN_REPLICAS": "1",
    "SF_GCP_DEPLOY_MAX_REPLICAS": "3",
    "SF_GCP_ENDPOINT_DISPLAY_NAME": "sales-forecast-eu",
}
RUN_DIR = f"gs://acme-sf/runs/{RUN_KEY}"
DATASET = "acme-forecast.sales_fc"
PARENT = "projects/acme-forecast/locations/europe-west4"  # Vertex AI resources of the project


def set_variables(monkeypatch: Any, **overrides: str | None) -> None:
    for key, value in {**VARIABLES, **overrides}.items():
        if value is None:
            monkeypatch.delenv(f"AIRFLOW_VAR_{key}", raising=False)
        else:
            monkeypatch.setenv(f"AIRFLOW_VAR_{key}", value)


def load_gcp_dag(monkeypatch: Any) -> Any:
    """Parse dags/ with SF_PLATFORM=gcp (fresh settings) and return the sales_forecast DAG.

    SF_PLATFORM stays set for the test: the PythonOperator tasks read the settings when they run.
    """
    from airflow.dag_processing.dagbag import DagBag
    from sales_forecast import config

    monkeypatch.setenv("SF_PLATFORM", "gcp")
    config.get_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        config.get_settings.cache_clear()
    if bag.import_errors:
        raise RuntimeError(f"the DAG does not parse: {bag.import_errors}")
    return bag.dags["sales_forecast"]


def task_context(
    task: Any, params: dict[str, Any] | None = None, conf: dict | None = None
) -> dict[str, Any]:
    """The template context keys the operators use, as the task runner builds them."""
    from airflow.sdk.execution_time.context import VariableAccessor

    merged = {k: task.dag.params[k] for k in task.dag.params}
    merged.update(conf or {})
    merged.update(params or {})
    return {
        "dag_run": SimpleNamespace(
            run_id=RUN_ID, run_after=WHEN, logical_date=WHEN, conf=dict(conf or {})
        ),
        "logical_date": WHEN,
        "ds": WHEN.strftime("%Y-%m-%d"),
        "ds_nodash": WHEN.strftime("%Y%m%d"),
        "run_id": RUN_ID,
        "params": merged,
        "var": {"value": VariableAccessor(False), "json": VariableAccessor(True)},
        "task": task,
        "ti": SimpleNamespace(xcom_push=lambda **kw: None, xcom_pull=lambda **kw: None),
    }


def render(task: Any, params: dict[str, Any] | None = None, conf: dict | None = None) -> dict:
    context = task_context(task, params, conf)
    task.render_template_fields(context)
    return context


def variables_renderer(values: dict[str, str]) -> Any:
    """Render a settings template the way a task does, with ``values`` as Airflow Variables."""
    import jinja2

    class Var:
        value = values  # `var.value.get(key, default)` in the template

    return lambda template: jinja2.Template(template).render(var=Var)


class FakeGCS:
    """The GCSHook calls the gcp platform makes, on a dict of (bucket, name) -> bytes."""

    def __init__(self, buckets: tuple[str, ...] = ("acme-sf",)) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.buckets = set(buckets)
        # How each object was read or copied: (api, "bucket/name"), e.g. ("download", ...) for
        # a whole object read into memory, ("stream", ...) for a chunked read.
        self.calls: list[tuple[str, str]] = []
        # JSON API methods answered 403 Forbidden, e.g. {"storage.buckets.get"}: an identity
        # with roles/storage.objectAdmin on the bucket lacks storage.buckets.get.
        self.denied: set[str] = set()

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return bucket, name

    def put(self, uri: str, data: bytes | str | dict) -> None:
        if isinstance(data, dict):
            data = json.dumps(data)
        self.objects[self._split(uri)] = data.encode() if isinstance(data, str) else data

    def get(self, uri: str) -> bytes:
        return self.objects[self._split(uri)]

    def download(self, bucket_name: str, object_name: str, filename: str | None = None) -> Any:
        from google.api_core.exceptions import NotFound

        if (bucket_name, object_name) not in self.objects:
            raise NotFound(f"{bucket_name}/{object_name}")
        data = self.objects[(bucket_name, object_name)]
        self.calls.append(("download" if filename is None else "download_file", object_name))
        if filename is None:
            return data
        Path(filename).write_bytes(data)
        return filename

    def upload(
        self,
        bucket_name: str,
        object_name: str,
        filename: str | None = None,
        data: bytes | str | None = None,
        mime_type: str | None = None,
    ) -> None:
        if filename is not None:
            data = Path(filename).read_bytes()
        self.objects[(bucket_name, object_name)] = data.encode() if isinstance(data, str) else data

    def exists(self, bucket_name: str, object_name: str) -> bool:
        return (bucket_name, object_name) in self.objects

    def list(self, bucket_name: str, prefix: str = "") -> list[str]:
        return sorted(n for b, n in self.objects if b == bucket_name and n.startswith(prefix))

    def rewrite(
        self,
        source_bucket: str,
        source_object: str,
        destination_bucket: str,
        destination_object: str | None = None,
        **kwargs: Any,
    ) -> None:
        """A server-side copy: no bytes pass through the caller."""
        from google.api_core.exceptions import NotFound

        if (source_bucket, source_object) not in self.objects:
            raise NotFound(f"{source_bucket}/{source_object}")
        self.calls.append(("rewrite", source_object))
        dest = (destination_bucket, destination_object or source_object)
        self.objects[dest] = self.objects[(source_bucket, source_object)]

    def get_conn(self) -> Any:
        """The ``storage.Client`` calls made outside the hook: buckets, blobs, listings."""
        return _FakeClient(self)

    def _deny(self, method: str) -> None:
        from google.api_core.exceptions import Forbidden

        if method in self.denied:
            raise Forbidden(f"caller does not have {method} access")


class _FakeClient:
    def __init__(self, gcs: FakeGCS) -> None:
        self.gcs = gcs

    def bucket(self, name: str, user_project: str | None = None) -> Any:
        gcs = self.gcs

        def exists(**kwargs: Any) -> bool:
            gcs._deny("storage.buckets.get")
            return name in gcs.buckets

        return SimpleNamespace(
            name=name, exists=exists, blob=lambda blob_name, **kw: _FakeBlob(gcs, name, blob_name)
        )

    def list_blobs(
        self, bucket_or_name: Any, max_results: int | None = None, prefix: str = "", **kwargs: Any
    ) -> Any:
        from google.api_core.exceptions import NotFound

        name = getattr(bucket_or_name, "name", bucket_or_name)
        self.gcs._deny("storage.objects.list")
        if name not in self.gcs.buckets:
            raise NotFound(f"b/{name}: The specified bucket does not exist.")
        names = self.gcs.list(name, prefix=prefix or "")[:max_results]
        return iter([SimpleNamespace(name=n) for n in names])


class _FakeBlob:
    # Small, so a streamed read of a test file really arrives in several pieces.
    CHUNK = 4

    def __init__(self, gcs: FakeGCS, bucket: str, name: str) -> None:
        self.gcs, self.bucket_name, self.name = gcs, bucket, name

    def _data(self) -> bytes:
        from google.api_core.exceptions import NotFound

        self.gcs._deny("storage.objects.get")
        if (self.bucket_name, self.name) not in self.gcs.objects:
            raise NotFound(f"{self.bucket_name}/{self.name}")
        return self.gcs.objects[(self.bucket_name, self.name)]

    def download_as_bytes(
        self, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        from google.api_core.exceptions import RequestRangeNotSatisfiable

        data = self._data()
        if start is None and end is None:
            self.gcs.calls.append(("download", self.name))
            return data
        self.gcs.calls.append((f"range:{start}-{end}", self.name))
        if not data:  # GCS answers 416 to any range of an empty object
            raise RequestRangeNotSatisfiable(f"{self.bucket_name}/{self.name}")
        return data[start or 0 : None if end is None else end + 1]

    def download_to_file(self, file_obj: Any, **kwargs: Any) -> None:
        data = self._data()
        self.gcs.calls.append(("stream", self.name))
        for i in range(0, len(data), self.CHUNK):
            file_obj.write(data[i : i + self.CHUNK])
