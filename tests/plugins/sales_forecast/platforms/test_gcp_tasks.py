"""The DAG on the gcp platform: the intended provider operators, rendered at run time.

Nothing here reaches GCP: the DAG is parsed as the dag-processor does, and each task's
templates are rendered with the context the task runner gives it (Variables as ``AIRFLOW_VAR_*``).
"""

from __future__ import annotations

import time
from unittest import mock

import pytest
from sales_forecast.contract import load_contract
from sales_forecast.platforms import gcp
from sales_forecast.sqlrender import TableNames, render_sql

from tests.gcp.helpers import DATASET, RUN_DIR, RUN_ID, RUN_KEY, load_gcp_dag, render, set_variables


@pytest.fixture
def dag(monkeypatch):
    set_variables(monkeypatch)
    return load_gcp_dag(monkeypatch)


def test_parses_without_connections_variables_or_gcp_calls(monkeypatch):
    from airflow.sdk import BaseHook

    set_variables(monkeypatch)
    with (
        mock.patch.object(BaseHook, "get_connection") as get_conn,
        mock.patch("airflow.sdk.execution_time.context._get_variable") as get_var,
        mock.patch("airflow.sdk.Variable.get") as variable_get,
        mock.patch("google.auth.default") as adc,
    ):
        start = time.monotonic()
        dag = load_gcp_dag(monkeypatch)
        elapsed = time.monotonic() - start
    assert get_conn.call_count == 0 and adc.call_count == 0
    assert get_var.call_count == 0 and variable_get.call_count == 0
    # The Vertex AI SDK under the provider is slow to import; Composer's default budget is 30 s.
    assert elapsed < 30
    assert [t.task_id for t in dag.topological_sort()] == [
        "load_to_staging",
        "validate",
        "build_features",
        "train",
        "backtest_and_gate",
        "forecast",
        "register",
        "deploy",
    ]


def test_every_task_is_the_intended_provider_operator(dag):
    from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator
    from airflow.providers.google.cloud.operators.vertex_ai.custom_job import (
        CreateCustomJobOperator,
    )
    from airflow.providers.google.cloud.operators.vertex_ai.endpoint_service import (
        DeployModelOperator,
    )
    from airflow.providers.google.cloud.operators.vertex_ai.model_service import (
        UploadModelOperator,
    )
    from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator

    expected = {
        "load_to_staging": GCSToBigQueryOperator,
        "validate": BigQueryInsertJobOperator,
        "build_features": BigQueryInsertJobOperator,
        "train": CreateCustomJobOperator,
        "backtest_and_gate": CreateCustomJobOperator,
        "forecast": CreateCustomJobOperator,
        "register": UploadModelOperator,
        "deploy": DeployModelOperator,
    }
    for task_id, cls in expected.items():
        assert isinstance(dag.get_task(task_id), cls), task_id
    # Long jobs wait in the triggerer, not in a worker slot.
    assert all(dag.get_task(t).deferrable for t in ("train", "backtest_and_gate", "forecast"))
    assert all(t.retries >= 1 for t in dag.tasks)


def test_nothing_gcp_specific_is_fixed_at_parse_time(dag):
    # Parse-time values are templates: the project etc. are only known once a task renders.
    load = dag.get_task("load_to_staging")
    assert load.project_id == "{{ sf.cfg.project }}"
    assert load.destination_project_dataset_table == "{{ sf.table_id('staging') }}"
    assert dag.get_task("train").custom_job == {}
    assert {"project_id", "location"} <= set(load.template_fields)
    assert "location" in dag.get_task("validate").template_fields


def test_load_to_staging_renders_contract_schema_and_run_paths(dag):
    task = dag.get_task("load_to_staging")
    context = render(task, params={"input_uri": "gs://drops/{{ ds }}/sales.csv"})
    run = context["sf"]
    assert run.input_uri == "gs://drops/2025-04-01/sales.csv"  # the param, rendered again
    assert task.bucket == "acme-sf"
    assert task.source_objects == [f"runs/{RUN_KEY}/staging/input.csv"]
    assert task.destination_project_dataset_table == f"{DATASET}.staging"
    assert (task.project_id, task.location) == ("acme-forecast", "EU")
    contract = load_contract("retail")
    assert task.schema_fields == [
        {"name": "_source_row", "type": "INT64", "mode": "REQUIRED"},
        {"name": "_source_file", "type": "STRING", "mode": "REQUIRED"},
        *({"name": c, "type": "STRING", "mode": "NULLABLE"} for c in contract.column_names),
    ]
    assert (task.write_disposition, task.skip_leading_rows, task.autodetect) == (
        "WRITE_TRUNCATE",
        1,
        False,
    )
    assert task.allow_quoted_newlines and task.max_bad_records == 0


def test_schema_follows_the_runs_dataset_param(dag):
    task = dag.get_task("load_to_staging")
    render(task, params={"dataset": "takeaway"})
    names = [f["name"] for f in task.schema_fields]
    assert names[:4] == ["_source_row", "_source_file", "date", "Total"]
    assert {f["type"] for f in task.schema_fields[2:]} == {"STRING"}


def test_sql_steps_render_the_same_sql_files_with_run_parameters(dag):
    tables = TableNames(DATASET)
    contract = load_contract("retail")
    validate = dag.get_task("validate")
    render(validate, params={"input_uri": "gs://drops/{{ ds }}/sales.csv"})
    expected = [
        *gcp.split_statements_verbatim(render_sql("validate", contract, tables)),
        *gcp.split_statements_verbatim(render_sql("quarantine", contract, tables)),
    ]
    assert validate.statements == expected
    assert f"CREATE OR REPLACE TABLE `{DATASET}.staging_checked`" in expected[0]
    query = validate.configuration["query"]
    assert query["useLegacySql"] is False
    assert query["queryParameters"] == [
        {
            "name": "run_id",
            "parameterType": {"type": "STRING"},
            "parameterValue": {"value": RUN_ID},
        },
        {
            "name": "source_file",
            "parameterType": {"type": "STRING"},
            "parameterValue": {"value": "gs://drops/2025-04-01/sales.csv"},
        },
    ]
    assert f"`{DATASET}.staging_checked`" in query["query"]
    assert (validate.project_id, validate.location) == ("acme-forecast", "EU")

    features = dag.get_task("build_features")
    render(features)
    assert features.statements == [
        *gcp.split_statements_verbatim(render_sql("merge_history", contract, tables)),
        *gcp.split_statements_verbatim(render_sql("features", contract, tables)),
    ]
    assert [p["name"] for p in features.configuration["query"]["queryParameters"]] == ["run_id"]


def test_trainer_jobs_get_per_run_args_image_and_machine(dag):
    common = [
        "--data-uri",
        f"bq://{DATASET}.daily_sales_features",
        "--contract",
        f"{RUN_DIR}/contract.json",
        "--cutoff-date",
        "2025-03-31",
        "--horizon",
        "14",
    ]
    expected_args = {
        "train": ["train", *common, "--model-dir", f"{RUN_DIR}/model"],
        "backtest_and_gate": [
            "backtest",
            *common,
            "--model-dir",
            f"{RUN_DIR}/model",
            "--n-windows",
            "2",
            "--metric",
            "wape",
            "--min-improvement",
            "0.0",
            "--output-dir",
            f"{RUN_DIR}/backtest",
            "--results-uri",
            f"bq://{DATASET}.backtest_results",
            "--run-id",
            RUN_ID,
        ],
        "forecast": [
            "predict",
            "--model-dir",
            f"{RUN_DIR}/model",
            "--data-uri",
            f"bq://{DATASET}.daily_sales_features",
            "--cutoff-date",
            "2025-03-31",
            "--horizon",
            "14",
            "--output-uri",
            f"bq://{DATASET}.daily_sales_forecasts",
            "--run-id",
            RUN_ID,
            "--model-version",
            f"candidate:{RUN_KEY}",
            "--meta-uri",
            f"{RUN_DIR}/forecast/forecast_meta.json",
            "--future-uri",
            "gs://drops/2025-04-01/future.csv",
        ],
    }
    for task_id, args in expected_args.items():
        task = dag.get_task(task_id)
        render(task, params={"horizon": 14, "future_uri": "gs://drops/{{ ds }}/future.csv"})
        assert (task.project_id, task.region) == ("acme-forecast", "europe-west4")
        spec = task.custom_job["job_spec"]
        (pool,) = spec["worker_pool_specs"]
        container = pool["container_spec"]
        assert container["image_uri"] == "<your-registry>/acme-forecast/sf/trainer:1.2.0"
        assert container["command"] == ["python", "-m", "trainer"]
        assert container["args"] == args, task_id
        assert {"name": "SF_RUN_ID", "value": RUN_ID} in container["env"]
        assert pool["machine_spec"] == {"machine_type": "n2-standard-8"}
        assert spec["service_account"] == "sf-jobs@acme-forecast.iam.gserviceaccount.com"
        # AIP_MODEL_DIR = <base_output_directory>/model: the run's folder, as locally.
        assert spec["base_output_directory"] == {"output_uri_prefix": RUN_DIR}
        assert task.custom_job["labels"]["sf_run"] == RUN_KEY.lower()
        # The Cloud Run variant gets the very same args.
        (override,) = task.cloud_run_overrides["container_overrides"]
        assert override["args"] == args


def test_register_and_deploy_render_serving_image_routes_and_resources(dag):
    register = dag.get_task("register")
    render(register)
    model = register.model
    assert model["artifact_uri"] == f"gs://acme-sf/models/sales_forecast/{RUN_KEY}/"
    assert not model["artifact_uri"].startswith(RUN_DIR)  # never the run-scoped folder
    assert model["container_spec"]["image_uri"] == "<your-registry>/acme-forecast/sf/serving:1.2.0"
    assert model["container_spec"]["predict_route"] == "/predict"
    assert model["container_spec"]["health_route"] == "/health"
    assert model["container_spec"]["ports"] == [{"container_port": 8080}]
    assert "version_aliases" not in model  # `production` moves only at deploy

    deploy = dag.get_task("deploy")
    render(deploy)
    assert deploy.deployed_model["dedicated_resources"] == {
        "machine_spec": {"machine_type": "n2-standard-2"},
        "min_replica_count": 1,
        "max_replica_count": 3,
    }
    assert deploy.traffic_split == {"0": 100}


def test_runner_comes_from_the_runs_conf(dag):
    task = dag.get_task("train")
    assert render(task)["sf"].cfg.runner == "vertex"
    assert render(task, conf={"runner": "cloud_run"})["sf"].cfg.runner == "cloud_run"


def test_an_sf_gcp_environment_variable_replaces_the_variable(monkeypatch):
    set_variables(monkeypatch, SF_GCP_PROJECT=None)
    monkeypatch.setenv("SF_GCP_PROJECT", "pinned-project")
    dag = load_gcp_dag(monkeypatch)
    task = dag.get_task("validate")
    render(task)
    assert task.project_id == "pinned-project"


@pytest.mark.parametrize(
    ("overrides", "params", "message"),
    [
        ({"SF_GCP_PROJECT": None}, {}, "project: set the Airflow Variable sf_gcp_project"),
        ({"SF_GCP_TRAINER_IMAGE": None}, {}, "AIRFLOW_VAR_SF_GCP_TRAINER_IMAGE"),
        ({"SF_GCP_DEPLOY_MAX_REPLICAS": "many"}, {}, "to a whole number, got 'many'"),
        ({}, {"cutoff_date": "31/03/2025"}, "is not a YYYY-MM-DD date"),
        ({}, {"dataset": "nope"}, "neither a built-in contract"),
        ({}, {"runner": "lambda"}, "runner 'lambda' is not one of"),
    ],
)
def test_bad_configuration_fails_without_retries(monkeypatch, overrides, params, message):
    from airflow.sdk.exceptions import AirflowFailException

    set_variables(monkeypatch, **overrides)
    dag = load_gcp_dag(monkeypatch)
    with pytest.raises(AirflowFailException, match=message):
        render(dag.get_task("train"), params=params)
