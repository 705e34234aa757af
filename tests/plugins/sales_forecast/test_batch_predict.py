"""The batch DAG's decisions: the params checked, the local job's arguments, the Vertex job.

What the GCP half proves: the operator takes the kwargs, and the job they describe converts
into the real ``aiplatform_v1.BatchPredictionJob`` type. Not that Vertex AI runs it (no GCP here).
"""

from __future__ import annotations

import json
from unittest import mock

import pytest
from sales_forecast.batch_predict import (
    batch_request,
    local_batch_args,
    vertex_batch_job,
    vertex_batch_kwargs,
)
from sales_forecast.errors import DataError

LOCAL = {"model": "production", "input_uri": "/d/in.jsonl", "output_uri": "/d/out.jsonl"}


def test_a_local_request_and_its_arguments():
    req = batch_request({**LOCAL, "horizon": 14}, "manual__1", "local")
    assert (req.alias, req.version, req.horizon) == ("production", None, 14)
    assert local_batch_args(req) == [
        "--input", "/d/in.jsonl", "--output", "/d/out.jsonl", "--batch-id", "manual__1",
        "--alias", "production", "--horizon", "14",
    ]  # fmt: skip
    pinned = batch_request({**LOCAL, "model": "3", "horizon": None}, "r", "local")
    assert pinned.version == "3" and "--version" in local_batch_args(pinned)
    assert "--horizon" not in local_batch_args(pinned)


@pytest.mark.parametrize(
    ("change", "platform", "message"),
    [
        ({"input_uri": ""}, "local", "input_uri is empty"),
        ({"output_uri": " "}, "local", "output_uri is empty"),
        ({"model": "prod uction"}, "local", "model alias 'prod uction' is not a valid name"),
        ({"model": "x'; DROP"}, "local", "is not a valid name"),
        ({"horizon": "two"}, "local", "not a whole number"),
        ({"horizon": 0}, "local", r"horizon must be 1\.\.366"),
        ({"input_uri": "https://x/in.jsonl"}, "local", "locally use a file path or duckdb://"),
        ({}, "gcp", "on GCP use gs://"),
        ({"input_uri": "gs://b/in.jsonl"}, "gcp", "output_uri '/d/out.jsonl': on GCP"),
    ],
)
def test_bad_params_are_clear_errors(change, platform, message):
    with pytest.raises(DataError, match=message):
        batch_request({**LOCAL, **change}, "r", platform)


@pytest.mark.parametrize(
    ("source", "dest"),
    [("gs://b/in/*.jsonl", "gs://b/out/"), ("bq://p.ds.instances", "bq://p.ds")],
)
def test_the_vertex_job_is_a_valid_batch_prediction_job(source, dest):
    from airflow.providers.google.cloud.operators.vertex_ai.batch_prediction_job import (
        CreateBatchPredictionJobOperator,
    )
    from google.cloud import aiplatform_v1

    req = batch_request(
        {"model": "3", "input_uri": source, "output_uri": dest, "horizon": 7}, "manual__X", "gcp"
    )
    resource = "projects/p/locations/europe-west4/models/123@3"
    kwargs = vertex_batch_kwargs(
        req,
        project="p",
        region="europe-west4",
        model_resource=resource,
        machine_type="n1-standard-4",
    )
    op = CreateBatchPredictionJobOperator(task_id="b", **kwargs)
    assert op.model_name == resource
    job = aiplatform_v1.BatchPredictionJob.from_json(json.dumps(vertex_batch_job(kwargs)))
    assert job.model == resource
    assert job.model_parameters["horizon"] == 7
    assert job.dedicated_resources.machine_spec.machine_type == "n1-standard-4"
    if source.startswith("bq://"):
        assert job.input_config.instances_format == "bigquery"
        assert job.input_config.bigquery_source.input_uri == source
        assert job.output_config.bigquery_destination.output_uri == dest
    else:
        assert list(job.input_config.gcs_source.uris) == [source]
        assert job.output_config.gcs_destination.output_uri_prefix == dest
    assert job.labels["sales_forecast_batch"] == "manual__x"


def test_the_gcp_operator_picks_the_registered_version_at_run_time(monkeypatch):
    from types import SimpleNamespace

    from airflow.providers.google.cloud.operators.vertex_ai.batch_prediction_job import (
        CreateBatchPredictionJobOperator,
    )
    from sales_forecast import config
    from sales_forecast.platforms.gcp import batch

    monkeypatch.setenv("SF_PLATFORM", "gcp")
    # The settings as resolve_config renders them from the Airflow Variables (tested there).
    cfg = SimpleNamespace(
        project="p", region="us-central1", model_name="sales_forecast",
        deploy_machine_type="n1-standard-4",
    )  # fmt: skip
    monkeypatch.setattr(batch, "resolve_config", lambda settings, render: cfg)
    config.get_settings.cache_clear()
    try:
        settings = config.get_settings()
        op = batch.VertexBatchPredictionOperator(task_id="batch_predict", settings=settings)
        parent = mock.Mock()
        parent.name = "projects/p/locations/us-central1/models/777"
        parent.create_time = "1"
        hook = mock.Mock()
        hook.list_models.return_value = [parent]
        context = {
            "params": {
                "model": "production",
                "input_uri": "gs://b/i.jsonl",
                "output_uri": "gs://b/o/",
            },
            "run_id": "manual__2025-01-01",
        }
        with (
            mock.patch(
                "airflow.providers.google.cloud.hooks.vertex_ai.model_service.ModelServiceHook",
                return_value=hook,
            ),
            mock.patch.object(
                CreateBatchPredictionJobOperator, "execute", return_value="job"
            ) as run,
        ):
            assert op.execute(context) == "job"
        run.assert_called_once()
        assert op.model_name == "projects/p/locations/us-central1/models/777@production"
        assert op.gcs_source == ["gs://b/i.jsonl"] and op.gcs_destination_prefix == "gs://b/o/"
        assert op.project_id == "p" and op.region == "us-central1"
    finally:
        config.get_settings.cache_clear()
