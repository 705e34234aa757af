"""The DAG on the gcp platform: the intended operators, rendered at run time.

Nothing here reaches GCP: the DAG is parsed as the dag-processor does, and each task's
templates are rendered with the context the task runner gives it (Variables as ``AIRFLOW_VAR_*``).
validate and build_features run the shared steps on BigQuery, with the hook mocked.
"""

from __future__ import annotations

import time
from datetime import date
from unittest import mock

import pytest
from sales_forecast.contract import load_contract
from sales_forecast.platforms.gcp.warehouse import split_statements_verbatim
from sales_forecast.sqlrender import TableNames, render_sql

from tests._support.gcp import (
    DATASET,
    RUN_DIR,
    RUN_ID,
    RUN_KEY,
    load_gcp_dag,
    render,
    set_variables,
    task_context,
)

TASK_IDS = [
    "load_to_staging",
    "validate",
    "build_features",
    "train",
    "backtest_and_gate",
    "forecast",
    "merge_history",
    "register",
    "deploy",
]


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
    assert [t.task_id for t in dag.topological_sort()] == TASK_IDS


def test_every_task_is_the_intended_operator(dag):
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
    from airflow.providers.standard.operators.python import PythonOperator
    from sales_forecast.tasks import run_step

    expected = {
        "load_to_staging": GCSToBigQueryOperator,
        "validate": PythonOperator,
        "build_features": PythonOperator,
        "train": CreateCustomJobOperator,
        "backtest_and_gate": CreateCustomJobOperator,
        "forecast": CreateCustomJobOperator,
        "register": UploadModelOperator,
        "deploy": DeployModelOperator,
    }
    for task_id, cls in expected.items():
        assert isinstance(dag.get_task(task_id), cls), task_id
    # The SQL steps are the shared steps, exactly as locally.
    for task_id in ("validate", "build_features"):
        task = dag.get_task(task_id)
        assert task.python_callable is run_step and task.op_kwargs == {"step": task_id}
    # Long jobs wait in the triggerer, not in a worker slot.
    assert all(dag.get_task(t).deferrable for t in ("train", "backtest_and_gate", "forecast"))
    assert [dag.get_task(t).step for t in ("train", "backtest_and_gate", "forecast")] == [
        "train",
        "backtest_and_gate",
        "forecast",
    ]
    assert all(t.retries >= 1 for t in dag.tasks)


def test_nothing_gcp_specific_is_fixed_at_parse_time(dag):
    # Parse-time values are templates: the project etc. are only known once a task renders.
    load = dag.get_task("load_to_staging")
    assert load.project_id == "{{ sf.cfg.project }}"
    assert load.destination_project_dataset_table == "{{ sf.table_id('staging') }}"
    assert load.schema_fields is None
    assert {"project_id", "location"} <= set(load.template_fields)
    for task_id in ("train", "backtest_and_gate", "forecast"):
        task = dag.get_task(task_id)
        assert task.custom_job == {} and task.cloud_run_overrides == {}
        assert task.project_id == "{{ sf.cfg.project }}"
    assert dag.get_task("register").model == {}
    assert dag.get_task("deploy").deployed_model == {}
    assert dag.get_task("deploy").endpoint_id == ""


# ---------------------------------------------------------------- validate, build_features


def run_python_task(task, params=None):
    """Run a task as the task runner does: a copy locked for execution, rendered, executed."""
    task = task.prepare_for_execution()
    context = task_context(task, params)
    task.render_template_fields(context)
    return task.execute(context)


def test_validate_runs_the_shared_step_on_bigquery(dag, bq):
    tables = TableNames(DATASET, RUN_ID)
    contract = load_contract("retail")

    def answer(sql, params):
        if "unplaced" in sql:
            return []  # no series lost rows to unreadable dates
        if "staging_checked" in sql:
            return [{"staged": 10, "rejected": 1}]
        if "staging_malformed" in sql:
            return [{"n": 0}]
        return [{"source_row": 11, "reason": "sales: negative value"}]

    bq.answer = answer
    task = dag.get_task("validate")
    out = run_python_task(task, params={"input_uri": "gs://drops/{{ ds }}/sales.csv"})
    assert out == {"rows": 10, "accepted": 9, "rejected": 1, "reject_fraction": 0.1}

    expected = [
        *split_statements_verbatim(render_sql("validate", contract, tables)),
        *split_statements_verbatim(render_sql("quarantine", contract, tables)),
    ]
    assert bq.statements == expected
    assert f"CREATE OR REPLACE TABLE `{DATASET}.staging_checked__" in expected[0]
    assert {(j["project_id"], j["location"]) for j in bq.jobs} == {("acme-forecast", "EU")}
    assert bq.created[0]["use_legacy_sql"] is False
    queries = [j["configuration"]["query"] for j in bq.jobs]
    assert {q["useLegacySql"] for q in queries} == {False}
    # The statement that copies the rejected rows names both: the run, and the rendered input.
    (insert,) = [
        q
        for q in queries
        if "@source_file" in q["query"] and "INSERT" in q["query"] and "rejected_rows" in q["query"]
    ]
    assert insert["queryParameters"] == [
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
    # The examples of the run's rejects are read with the run id as a parameter.
    assert {"run_id": RUN_ID} in [p for _, p in bq.queries]


def test_validate_fails_without_retries_when_too_much_is_rejected(dag, bq):
    from airflow.sdk.exceptions import AirflowFailException

    bq.answer = lambda sql, params: (
        [{"staged": 2, "rejected": 1}]
        if "staging_checked" in sql
        else [{"n": 0}]
        if "staging_malformed" in sql
        else [{"source_row": 3, "reason": "sales: negative value"}]
    )
    task = dag.get_task("validate")
    with pytest.raises(AirflowFailException, match="1 of 2 rows rejected") as err:
        run_python_task(task, params={"input_uri": "gs://drops/in.csv"})
    assert "gs://drops/in.csv line 3: sales: negative value" in str(err.value)


def test_build_features_runs_the_shared_step_on_bigquery(dag, bq):
    contract = load_contract("retail")
    stats = {
        "rows_total": 40,
        "rows_in_window": 38,
        "series": 2,
        "first_date": date(2025, 1, 1),
        "last_date": date(2025, 3, 31),
    }
    bq.answer = lambda sql, params: [dict(stats)]
    task = dag.get_task("build_features")
    out = run_python_task(task)
    # History is not touched here: the run's rows are read from its own staging table and
    # merged only by merge_history, after the forecast.
    run_tables = TableNames(DATASET, RUN_ID)
    assert bq.statements == split_statements_verbatim(
        render_sql("features", contract, run_tables, {"incoming": True, "bigquery": True})
    )
    assert any("`" + DATASET + ".staging_checked__" in sql for sql in bq.statements)
    sent = {
        p["name"] for j in bq.jobs for p in j["configuration"]["query"].get("queryParameters", [])
    }
    assert sent == {"cutoff"}
    ((_, params),) = bq.queries
    assert params == {"cutoff": date(2025, 3, 31)}
    assert out["table"] == f"bq://{DATASET}.daily_sales_features"
    assert out["last_date"] == "2025-03-31"


# ---------------------------------------------------------------- rendering


def test_trainer_jobs_get_per_run_args_image_and_machine(dag, gcs, models):
    # The jobs are planned when they render: no model registered yet, the gate passed.
    models.list_models.return_value = []
    gcs.put(f"{RUN_DIR}/backtest/gate.json", {"passed": True, "metric": "wape", "reason": "ok"})
    gcs.put("gs://drops/2025-04-01/future.csv", "date,store_id\n")
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
            "--freshness-tolerance",
            "0.02",
            "--output-dir",
            f"{RUN_DIR}/backtest",
            "--results-uri",
            f"bq://{DATASET}.backtest_results",
            "--run-id",
            RUN_ID,
        ],
        "forecast": [
            "predict",
            "--data-uri",
            f"bq://{DATASET}.daily_sales_features",
            "--contract",
            f"{RUN_DIR}/contract.json",
            "--cutoff-date",
            "2025-03-31",
            "--horizon",
            "14",
            "--output-uri",
            f"bq://{DATASET}.daily_sales_forecasts",
            "--run-id",
            RUN_ID,
            "--meta-uri",
            f"{RUN_DIR}/forecast/forecast_meta.json",
            "--model-dir",
            f"{RUN_DIR}/model",
            "--model-version",
            f"candidate:{RUN_KEY}",
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


def test_a_dataset_of_its_own_gets_its_own_tables_and_model(dag):
    task = dag.get_task("train")
    run = render(task, params={"dataset": "takeaway"})["sf"]
    assert run.contract.name == "takeaway"
    suffix = run.settings.namespace("takeaway")
    assert run.cfg.bq_dataset == "sales_fc" + suffix
    assert run.cfg.model_name == "sales_forecast" + suffix
    assert task.custom_job["labels"]["sf_dataset"] == "takeaway"


def test_an_sf_gcp_environment_variable_replaces_the_variable(monkeypatch, bq):
    set_variables(monkeypatch, SF_GCP_PROJECT=None)
    monkeypatch.setenv("SF_GCP_PROJECT", "pinned-project")
    dag = load_gcp_dag(monkeypatch)
    task = dag.get_task("train")
    render(task)
    assert task.project_id == "pinned-project"
    # The Python steps read the same settings when they run.
    bq.answer = lambda sql, params: [
        {"rows_total": 1, "rows_in_window": 1, "series": 1, "first_date": None, "last_date": None}
    ]
    run_python_task(dag.get_task("build_features"))
    assert {j["project_id"] for j in bq.jobs} == {"pinned-project"}


@pytest.mark.parametrize("task_id", ["train", "validate"])
@pytest.mark.parametrize(
    ("overrides", "params", "message"),
    [
        ({"SF_GCP_PROJECT": None}, {}, "project: set the Airflow Variable sf_gcp_project"),
        ({"SF_GCP_TRAINER_IMAGE": None}, {}, "AIRFLOW_VAR_SF_GCP_TRAINER_IMAGE"),
        ({"SF_GCP_DEPLOY_MAX_REPLICAS": "many"}, {}, "to a whole number, got 'many'"),
        ({}, {"cutoff_date": "31/03/2025"}, "is not a YYYY-MM-DD date"),
        ({}, {"dataset": "nope"}, "is not a known contract"),
        ({}, {"runner": "lambda"}, "runner 'lambda' is not one of"),
    ],
)
def test_bad_configuration_fails_without_retries(
    monkeypatch, bq, task_id, overrides, params, message
):
    from airflow.sdk.exceptions import AirflowFailException

    set_variables(monkeypatch, **overrides)
    dag = load_gcp_dag(monkeypatch)
    task = dag.get_task(task_id)
    with pytest.raises(AirflowFailException, match=message):
        if task_id == "validate":
            run_python_task(task, params=params)
        else:
            render(task, params=params)
    assert bq.jobs == []
