"""What the gcp operators decide at execute time, with the Google APIs mocked at the hook.

Champion lookup for the gate, the model the forecast uses, the Cloud Run variant, the deploy
gate on ``register``/``deploy``, promotion to the stable models folder and the endpoint.
(BigQuery and GCS run for real against emulators in tests/gcp.)
"""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace
from unittest import mock

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import aiplatform_v1, run_v2

from tests.gcp.helpers import RUN_DIR, RUN_ID, RUN_KEY, load_gcp_dag, render, set_variables

PARENT = "projects/acme-forecast/locations/europe-west4"
PROMOTED = f"gs://acme-sf/models/sales_forecast/{RUN_KEY}/"
OPS = "sales_forecast.platforms.gcp_operators"
MODEL_HOOKS = (
    "airflow.providers.google.cloud.hooks.vertex_ai.model_service.ModelServiceHook",
    "airflow.providers.google.cloud.operators.vertex_ai.model_service.ModelServiceHook",
)
ENDPOINT_HOOKS = (
    "airflow.providers.google.cloud.hooks.vertex_ai.endpoint_service.EndpointServiceHook",
    "airflow.providers.google.cloud.operators.vertex_ai.endpoint_service.EndpointServiceHook",
)


class FakeGCS:
    """The few GCSHook calls the operators make, on a dict of (bucket, name) -> bytes."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put(self, uri: str, data: bytes | str | dict) -> None:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if isinstance(data, dict):
            data = json.dumps(data)
        self.objects[(bucket, name)] = data.encode() if isinstance(data, str) else data

    def get(self, uri: str) -> bytes:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return self.objects[(bucket, name)]

    def download(self, bucket_name, object_name, filename=None):
        if (bucket_name, object_name) not in self.objects:
            raise NotFound(f"{bucket_name}/{object_name}")
        return self.objects[(bucket_name, object_name)]

    def upload(self, bucket_name, object_name, filename=None, data=None, mime_type=None):
        self.objects[(bucket_name, object_name)] = data.encode() if isinstance(data, str) else data

    def exists(self, bucket_name, object_name):
        return (bucket_name, object_name) in self.objects

    def list(self, bucket_name, prefix=""):
        return sorted(n for b, n in self.objects if b == bucket_name and n.startswith(prefix))


@pytest.fixture
def dag(monkeypatch):
    set_variables(monkeypatch)
    return load_gcp_dag(monkeypatch)


@pytest.fixture
def gcs():
    fake = FakeGCS()
    with mock.patch(f"{OPS}.GCSHook", return_value=fake):
        yield fake


@pytest.fixture
def models():
    """ModelServiceHook with a parent model 777 whose `production` version is 3 (another run)."""
    hook = mock.MagicMock()
    hook.list_models.return_value = [SimpleNamespace(name=f"{PARENT}/models/777", create_time="1")]
    hook.get_model.return_value = SimpleNamespace(
        version_id="3", artifact_uri="gs://acme-sf/models/sales_forecast/older_run/"
    )
    hook.list_model_versions.return_value = []
    with (
        mock.patch(MODEL_HOOKS[0], return_value=hook),
        mock.patch(MODEL_HOOKS[1], return_value=hook),
    ):
        yield hook


@pytest.fixture
def vertex_jobs():
    hook = mock.MagicMock()
    hook.create_custom_job.return_value = SimpleNamespace(name=f"{PARENT}/customJobs/42")
    hook.extract_custom_job_id.return_value = "42"
    with mock.patch(
        "airflow.providers.google.cloud.operators.vertex_ai.custom_job.CustomJobHook",
        return_value=hook,
    ):
        yield hook


def submitted_args(vertex_jobs) -> list[str]:
    job = vertex_jobs.create_custom_job.call_args.kwargs["custom_job"]
    return job["job_spec"]["worker_pool_specs"][0]["container_spec"]["args"]


def defer(task, context):
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as info:
        task.execute(context)
    return info.value


# ---------------------------------------------------------------- backtest, forecast, train


def test_backtest_compares_with_the_production_model_of_an_earlier_run(
    dag, gcs, models, vertex_jobs
):
    task = dag.get_task("backtest_and_gate")
    context = render(task)
    deferred = defer(task, context)
    models.get_model.assert_called_once_with(
        project_id="acme-forecast", region="europe-west4", model_id="777@production"
    )
    args = submitted_args(vertex_jobs)
    assert args[-2:] == ["--champion-model-dir", "gs://acme-sf/models/sales_forecast/older_run/"]
    # What execute decided survives the deferral (the task resumes in another process).
    assert deferred.method_name == "execute_complete"
    assert deferred.kwargs["sf_state"]["champion_version"] == "3"

    gcs.put(f"{RUN_DIR}/backtest/gate.json", {"passed": True, "metric": "wape"})
    event = {"status": "success", "message": "done", "custom_job": {}}
    gate = task.execute_complete(context, event, sf_state=deferred.kwargs["sf_state"])
    assert gate["champion_version"] == "3"
    assert json.loads(gcs.get(f"{RUN_DIR}/backtest/gate.json"))["champion_version"] == "3"


def test_backtest_never_compares_a_model_with_itself(dag, gcs, models, vertex_jobs):
    models.get_model.return_value = SimpleNamespace(version_id="5", artifact_uri=PROMOTED)
    task = dag.get_task("backtest_and_gate")
    defer(task, render(task))
    assert "--champion-model-dir" not in submitted_args(vertex_jobs)


def test_backtest_without_any_registered_model(dag, gcs, models, vertex_jobs):
    models.list_models.return_value = []
    task = dag.get_task("backtest_and_gate")
    deferred = defer(task, render(task))
    assert "--champion-model-dir" not in submitted_args(vertex_jobs)
    assert deferred.kwargs["sf_state"] == {"champion_version": None}


@pytest.mark.parametrize(
    ("passed", "model_dir", "version"),
    [
        (True, f"{RUN_DIR}/model", f"candidate:{RUN_KEY}"),
        (False, "gs://acme-sf/models/sales_forecast/older_run/", "3"),
    ],
)
def test_forecast_uses_the_model_the_gate_chose(
    dag, gcs, models, vertex_jobs, passed, model_dir, version
):
    gcs.put(f"{RUN_DIR}/backtest/gate.json", {"passed": passed})
    task = dag.get_task("forecast")
    defer(task, render(task))
    args = submitted_args(vertex_jobs)
    assert args[args.index("--model-dir") + 1] == model_dir
    assert args[args.index("--model-version") + 1] == version


def test_forecast_fails_fast_on_a_missing_future_file(dag, gcs, models, vertex_jobs):
    from airflow.sdk.exceptions import AirflowFailException

    gcs.put(f"{RUN_DIR}/backtest/gate.json", {"passed": True})
    task = dag.get_task("forecast")
    context = render(task, params={"future_uri": "gs://drops/future.csv"})
    with pytest.raises(AirflowFailException, match="future covariates file not found"):
        task.execute(context)
    vertex_jobs.create_custom_job.assert_not_called()


def test_forecast_checks_every_series_and_day_was_written(dag, gcs):
    task = dag.get_task("forecast")
    context = render(task, params={"horizon": 7})
    stats = {"rows_written": 13, "series": 2, "first_date": None, "last_date": None}
    with mock.patch(f"{OPS}._query", return_value=[stats]), mock.patch(f"{OPS}.BigQueryHook"):
        with pytest.raises(RuntimeError, match="some series or days are missing"):
            task._finish(context, context["sf"], {"model_version": "3"})
        stats["rows_written"] = 14
        out = task._finish(context, context["sf"], {"model_version": "3"})
    assert out["model_version"] == "3" and out["table"].endswith(".daily_sales_forecasts")


def test_cloud_run_runner_creates_the_job_and_runs_it_with_overrides(dag, gcs):
    from airflow.providers.google.cloud.triggers.cloud_run import RunJobStatus

    hook = mock.MagicMock()
    hook.get_job.side_effect = [NotFound("no job"), run_v2.Job(name="j")]
    operation = mock.MagicMock()
    operation.metadata.log_uri = ""
    operation.operation.name = "operations/1"
    hook.execute_job.return_value = operation
    task = dag.get_task("train")
    context = render(task, conf={"runner": "cloud_run"})
    with (
        mock.patch(
            "airflow.providers.google.cloud.hooks.cloud_run.CloudRunHook", return_value=hook
        ),
        mock.patch(
            "airflow.providers.google.cloud.operators.cloud_run.CloudRunHook", return_value=hook
        ),
    ):
        deferred = defer(task, context)
        create = hook.create_job.call_args.kwargs
        assert create["job_name"] == "sales-forecast-trainer"
        assert create["job"]["template"]["template"]["containers"][0]["image"].endswith(
            "/trainer:1.2.0"
        )
        run = hook.execute_job.call_args.kwargs
        assert run["job_name"] == "sales-forecast-trainer" and run["region"] == "europe-west4"
        (override,) = run["overrides"]["container_overrides"]
        assert override["args"][:1] == ["train"]
        assert {"name": "AIP_MODEL_DIR", "value": f"{RUN_DIR}/model/"} in override["env"]
        assert deferred.method_name == "execute_complete_cloud_run"

        gcs.put(f"{RUN_DIR}/model/metrics.json", {"wape": 0.12})
        event = {"status": RunJobStatus.SUCCESS.value, "job_name": "sales-forecast-trainer"}
        out = task.execute_complete_cloud_run(context, event, sf_state={})
    assert out == {"model_dir": f"{RUN_DIR}/model", "metrics": {"wape": 0.12}}


def test_cloud_run_job_is_updated_to_the_configured_image(dag, gcs):
    hook = mock.MagicMock()
    hook.get_job.return_value = run_v2.Job(
        template={"template": {"containers": [{"image": "old:1"}]}}
    )
    task = dag.get_task("train")
    run = render(task, conf={"runner": "cloud_run"})["sf"]
    with mock.patch(
        "airflow.providers.google.cloud.hooks.cloud_run.CloudRunHook", return_value=hook
    ):
        task._ensure_cloud_run_job(run)
    hook.update_job.assert_called_once()
    hook.create_job.assert_not_called()


# ---------------------------------------------------------------- register


def test_register_is_skipped_unless_enabled_and_passed(dag, gcs, models):
    from airflow.sdk.exceptions import AirflowSkipException

    task = dag.get_task("register")
    gcs.put(f"{RUN_DIR}/backtest/gate.json", {"passed": True})
    with pytest.raises(AirflowSkipException, match="enable_deploy is false"):
        task.execute(render(task))
    gcs.put(f"{RUN_DIR}/backtest/gate.json", {"passed": False, "reason": "worse than naive"})
    with pytest.raises(AirflowSkipException, match="gate did not pass: worse than naive"):
        task.execute(render(task, params={"enable_deploy": True}))
    models.upload_model.assert_not_called()


def model_files(gcs: FakeGCS) -> dict[str, bytes]:
    files = {
        "forecaster.json": b'{"a": 1}',
        "mlforecast/models.pkl": b"\x00\x01",
        "metrics.json": b"{}",
    }
    for rel, data in files.items():
        gcs.put(f"{RUN_DIR}/model/{rel}", data)
    gcs.put(f"{RUN_DIR}/backtest/gate.json", {"passed": True, "metric": "wape"})
    return files


def test_register_promotes_the_model_and_adds_a_version(dag, gcs, models):
    files = model_files(gcs)
    models.get_model.side_effect = NotFound("no production yet")
    models.wait_for_operation.return_value = aiplatform_v1.UploadModelResponse(
        model=f"{PARENT}/models/777", model_version_id="2"
    )
    models.extract_model_id.return_value = "777"
    task = dag.get_task("register")
    out = task.execute(render(task, params={"enable_deploy": True}))

    # The promoted folder holds the same bytes and a manifest of their sha256.
    for rel, data in files.items():
        assert gcs.get(f"{PROMOTED}{rel}") == data
    manifest = json.loads(gcs.get(f"{PROMOTED}manifest.json"))
    assert manifest["files"] == {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()}
    assert manifest["run_id"] == RUN_ID

    upload = models.upload_model.call_args.kwargs
    assert upload["parent_model"] == "777"  # a new version of the same model
    assert upload["model"]["artifact_uri"] == PROMOTED
    assert upload["model"]["container_spec"]["image_uri"].endswith("/serving:1.2.0")
    assert out == {
        "model": f"{PARENT}/models/777",
        "model_id": "777",
        "version": "2",
        "uri": PROMOTED,
    }


def test_registering_a_run_twice_returns_its_version(dag, gcs, models):
    model_files(gcs)
    models.list_model_versions.return_value = [
        SimpleNamespace(name=f"{PARENT}/models/777@4", version_id="4", artifact_uri=PROMOTED)
    ]
    task = dag.get_task("register")
    out = task.execute(render(task, params={"enable_deploy": True}))
    models.upload_model.assert_not_called()
    assert out["version"] == "4" and out["model_id"] == "777"


# ---------------------------------------------------------------- deploy


def endpoint(deployed=()):
    return SimpleNamespace(name=f"{PARENT}/endpoints/9", deployed_models=list(deployed))


@pytest.fixture
def endpoints():
    hook = mock.MagicMock()
    hook.wait_for_operation.return_value = aiplatform_v1.DeployModelResponse(
        deployed_model=aiplatform_v1.DeployedModel(id="new1")
    )
    hook.extract_deployed_model_id.return_value = "new1"
    with (
        mock.patch(ENDPOINT_HOOKS[0], return_value=hook),
        mock.patch(ENDPOINT_HOOKS[1], return_value=hook),
    ):
        yield hook


REGISTERED = {"model": f"{PARENT}/models/777", "model_id": "777", "version": "2", "uri": PROMOTED}


def deploy_context(dag, registered=REGISTERED, **params):
    task = dag.get_task("deploy")
    context = render(task, params=params)
    context["ti"] = SimpleNamespace(
        xcom_pull=lambda task_ids, **kw: registered if task_ids == "register" else None,
        xcom_push=lambda **kw: None,
    )
    return task, context


def test_deploy_is_skipped_unless_enabled_and_registered(dag, endpoints, models):
    from airflow.sdk.exceptions import AirflowSkipException

    task, context = deploy_context(dag)
    with pytest.raises(AirflowSkipException, match="enable_deploy is false"):
        task.execute(context)
    task, context = deploy_context(dag, registered=None, enable_deploy=True)
    with pytest.raises(AirflowSkipException, match="no model version was registered"):
        task.execute(context)
    endpoints.deploy_model.assert_not_called()


def test_deploy_reuses_the_endpoint_moves_the_alias_and_retires_the_old_model(
    dag, endpoints, models
):
    old = SimpleNamespace(id="old1", model=f"{PARENT}/models/777", model_version_id="1")
    endpoints.list_endpoints.return_value = [endpoint([old])]
    models.get_model.return_value = SimpleNamespace(version_id="1", artifact_uri="gs://x/")
    task, context = deploy_context(dag, enable_deploy=True)
    out = task.execute(context)

    assert endpoints.list_endpoints.call_args.kwargs["filter"] == (
        'display_name="sales-forecast-eu"'
    )
    endpoints.create_endpoint.assert_not_called()
    deploy = endpoints.deploy_model.call_args.kwargs
    assert deploy["endpoint"] == "9"
    assert deploy["deployed_model"]["model"] == f"{PARENT}/models/777@2"
    assert deploy["deployed_model"]["dedicated_resources"]["max_replica_count"] == 3
    assert deploy["traffic_split"] == {"0": 100}
    models.add_version_aliases.assert_called_once_with(
        project_id="acme-forecast",
        region="europe-west4",
        model_id="777@2",
        version_aliases=["production"],
    )
    assert endpoints.undeploy_model.call_args.kwargs["deployed_model_id"] == "old1"
    assert out["previous_version"] == "1" and out["deployed_model_id"] == "new1"


def test_deploy_creates_the_endpoint_the_first_time(dag, endpoints, models):
    endpoints.list_endpoints.return_value = []
    created = endpoint()
    endpoints.wait_for_operation.side_effect = [
        created,
        aiplatform_v1.DeployModelResponse(deployed_model=aiplatform_v1.DeployedModel(id="n")),
    ]
    models.get_model.side_effect = NotFound("no production yet")
    task, context = deploy_context(dag, enable_deploy=True)
    out = task.execute(context)
    body = endpoints.create_endpoint.call_args.kwargs["endpoint"]
    assert body["display_name"] == "sales-forecast-eu"
    assert out["endpoint"] == created.name and out["previous_version"] is None
    endpoints.undeploy_model.assert_not_called()
