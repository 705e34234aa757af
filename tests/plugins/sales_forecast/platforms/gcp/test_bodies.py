"""Every request body the gcp platform sends, converted into the real API message types.

proto-plus rejects unknown field names, so a misspelt field fails here instead of on Vertex AI
or Cloud Run. The bodies are built exactly as the operators build them: from a rendered run and
the steps' own trainer jobs.
"""

from __future__ import annotations

import pytest
from google.cloud import aiplatform_v1, run_v2
from sales_forecast import steps
from sales_forecast.decisions import ForecastModel
from sales_forecast.platforms.base import ModelVersion
from sales_forecast.platforms.gcp.deploy import deployed_model_body, endpoint_body
from sales_forecast.platforms.gcp.load import MALFORMED_SCHEMA, staging_schema_fields
from sales_forecast.platforms.gcp.register import model_upload_body
from sales_forecast.platforms.gcp.trainer_jobs import (
    cloud_run_job_body,
    cloud_run_overrides,
    custom_job_body,
)
from sales_forecast.platforms.gcp.warehouse import query_config, split_statements_verbatim

from tests._support.gcp import PARENT, RUN_DIR, RUN_ID, load_gcp_dag, render, set_variables

CHAMPION = "gs://acme-sf/models/sales_forecast/v1/"


@pytest.fixture
def run(monkeypatch):
    set_variables(monkeypatch)
    dag = load_gcp_dag(monkeypatch)
    return render(dag.get_task("train"), params={"future_uri": "gs://fut-bucket/future.csv"})["sf"]


def job_for(run, command: str) -> steps.TrainerJob:
    paths = steps.trainer_paths(run.ctx, run.platform)
    if command == "train":
        return steps.preview_job("train", run.ctx, paths, run.settings)
    if command == "backtest":
        champion = ModelVersion(name="m", version="1", uri=CHAMPION, run_id="v1")
        return steps.backtest_job(run.ctx, paths, run.settings, champion)
    return steps.forecast_job(run.ctx, paths, ForecastModel(f"{RUN_DIR}/model", "candidate:x", ""))


def test_the_check_is_real():
    with pytest.raises(ValueError, match="Unknown field"):
        aiplatform_v1.CustomJob({"job_spec": {"worker_pool_spec": []}})
    with pytest.raises(ValueError, match="Unknown field"):
        run_v2.RunJobRequest.Overrides({"container_overrides": [{"arg": ["x"]}]})


@pytest.mark.parametrize("command", ["train", "backtest", "predict"])
def test_custom_job(run, command):
    job = job_for(run, command)
    args = [job.command, *job.args]
    body = custom_job_body(run, job, try_number=1)
    request = aiplatform_v1.CreateCustomJobRequest(parent=PARENT, custom_job=body)
    custom_job = request.custom_job
    assert custom_job.display_name.startswith(f"sf-{command}-scheduled__2025-04-01")
    (pool,) = custom_job.job_spec.worker_pool_specs
    assert pool.machine_spec.machine_type == "n2-standard-8"
    assert pool.replica_count == 1
    assert (pool.disk_spec.boot_disk_type, pool.disk_spec.boot_disk_size_gb) == ("pd-ssd", 100)
    assert pool.container_spec.image_uri.endswith("/trainer:1.2.0")
    assert list(pool.container_spec.command) == ["python", "-m", "trainer"]
    assert list(pool.container_spec.args) == args and args[0] == command
    assert {e.name: e.value for e in pool.container_spec.env}["SF_RUN_ID"] == RUN_ID
    assert custom_job.job_spec.base_output_directory.output_uri_prefix == RUN_DIR
    assert custom_job.job_spec.service_account.startswith("sf-jobs@")
    assert custom_job.job_spec.scheduling.timeout.total_seconds() == 6 * 3600
    assert custom_job.labels["sf_task"] == command
    assert custom_job.labels["sf_try"] == "1"
    if command == "backtest":
        assert args[-2:] == ["--champion-model-dir", CHAMPION]
    if command == "predict":
        assert args[-2:] == ["--future-uri", "gs://fut-bucket/future.csv"]


def test_model_upload(run):
    gate = {"passed": True, "metric": "wape", "challenger": 0.1, "baseline": 0.2}
    body = model_upload_body(run, gate=gate, metrics={"wape": 0.1})
    request = aiplatform_v1.UploadModelRequest(
        parent=PARENT, parent_model=f"{PARENT}/models/123", model=body
    )
    model = request.model
    assert (
        model.artifact_uri
        == "gs://acme-sf/models/sales_forecast/scheduled__2025-04-01T00_00_00_00_00/"
    )
    assert model.container_spec.image_uri.endswith("/serving:1.2.0")
    assert model.container_spec.predict_route == "/predict"
    assert model.container_spec.health_route == "/health"
    assert [p.container_port for p in model.container_spec.ports] == [8080]
    assert "challenger=0.1" in model.version_description
    assert list(model.version_aliases) == []
    assert model.labels["sf_dataset"] == "retail"


def test_endpoint_and_deployed_model(run):
    endpoint = aiplatform_v1.CreateEndpointRequest(
        parent=PARENT, endpoint=endpoint_body(run.cfg)
    ).endpoint
    assert endpoint.display_name == "sales-forecast-eu"
    body = deployed_model_body(run.cfg, f"{PARENT}/models/123", "4")
    request = aiplatform_v1.DeployModelRequest(
        endpoint=f"{PARENT}/endpoints/9", deployed_model=body, traffic_split={"0": 100}
    )
    deployed = request.deployed_model
    assert deployed.model == f"{PARENT}/models/123@4"
    resources = deployed.dedicated_resources
    assert resources.machine_spec.machine_type == "n2-standard-2"
    assert (resources.min_replica_count, resources.max_replica_count) == (1, 3)
    assert deployed.service_account.startswith("sf-jobs@")
    assert dict(request.traffic_split) == {"0": 100}


def test_cloud_run_job_and_overrides(run):
    job = run_v2.CreateJobRequest(
        parent=PARENT, job_id=run.cfg.cloud_run_job, job=cloud_run_job_body(run.cfg)
    ).job
    (container,) = job.template.template.containers
    assert container.name == "trainer" and container.image.endswith("/trainer:1.2.0")
    assert list(container.command) == ["python", "-m", "trainer"]
    assert dict(container.resources.limits) == {"cpu": "2", "memory": "8Gi"}
    assert job.template.template.max_retries == 0
    assert job.template.template.service_account.startswith("sf-jobs@")

    train = job_for(run, "train")
    request = run_v2.RunJobRequest(
        name=f"{PARENT}/jobs/{run.cfg.cloud_run_job}",
        overrides=cloud_run_overrides(run, train, try_number=2),
    )
    (override,) = request.overrides.container_overrides
    assert override.name == "trainer" and list(override.args) == ["train", *train.args]
    env = {e.name: e.value for e in override.env}
    # Vertex AI sets these itself; on Cloud Run the job gets them from the overrides.
    assert env["AIP_MODEL_DIR"] == f"{RUN_DIR}/model/"
    assert env["AIP_CHECKPOINT_DIR"] == f"{RUN_DIR}/checkpoints/"
    assert env["CLOUD_ML_JOB_ID"].startswith("train-")
    assert env["SF_AIRFLOW_TRY"] == "2"  # how a retry tells its own series' executions
    assert request.overrides.task_count == 1
    assert request.overrides.timeout.total_seconds() == 6 * 3600


def test_bigquery_job_configurations(run):
    from google.cloud import bigquery

    # quarantine's INSERT of the rejected staged rows names @run_id, not @source_file.
    (stmt,) = [
        s
        for s in split_statements_verbatim(run.sql("quarantine"))
        if s.startswith("INSERT") and "rejected_rows" in s and "@source_file" not in s
    ]
    assert "@run_id" in stmt and "@source_file" not in stmt
    config = bigquery.QueryJobConfig.from_api_repr(
        query_config(stmt, {"run_id": RUN_ID, "source_file": "gs://x"})
    )
    assert [p.name for p in config.query_parameters] == ["run_id"]  # only what it uses
    assert config.use_legacy_sql is False
    load = bigquery.LoadJobConfig.from_api_repr(
        {
            "load": {
                "schema": {"fields": staging_schema_fields(run.contract)},
                "sourceFormat": "CSV",
                "skipLeadingRows": 1,
                "writeDisposition": "WRITE_TRUNCATE",
            }
        }
    )
    assert [f.name for f in load.schema][:3] == ["_source_row", "_source_file", "date"]
    malformed = bigquery.LoadJobConfig.from_api_repr(
        {"load": {"schema": {"fields": MALFORMED_SCHEMA}}}
    )
    assert [f.name for f in malformed.schema] == ["source_row", "reason", "raw_line"]
