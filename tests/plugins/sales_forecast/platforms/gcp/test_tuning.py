"""``tune`` on GCP: the Vertex AI tuning job built from the one spec, in the real API types."""

from __future__ import annotations

import json

import pytest
from google.cloud import aiplatform_v1
from sales_forecast import config, steps, tuning
from sales_forecast.platforms.gcp.trainer_jobs import custom_job_body
from sales_forecast.platforms.gcp.tuning import hpt_job_body, sdk_parameter_spec, trial_job

from tests._support.gcp import DAGS, PARENT, RUN_DIR, RUN_ID, render, set_variables

PARAMS = {"trials": 12, "parallel_trials": 3, "metric": "mae", "trial_timeout_s": 900}


@pytest.fixture
def hpt_dag(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    set_variables(monkeypatch)
    monkeypatch.setenv("SF_PLATFORM", "gcp")
    config.get_settings.cache_clear()
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        config.get_settings.cache_clear()
    assert bag.import_errors == {}
    return bag.dags["sales_forecast_hpt"]


@pytest.fixture
def run(hpt_dag):
    return render(hpt_dag.get_task("tune"), params=PARAMS)["sf"]


def test_the_hpt_job_body_is_a_real_hyperparameter_tuning_job(run):
    body = hpt_job_body(run, run.settings, run.ctx.tuning)
    job = aiplatform_v1.CreateHyperparameterTuningJobRequest(
        parent=PARENT, hyperparameter_tuning_job=body
    ).hyperparameter_tuning_job
    assert (job.max_trial_count, job.parallel_trial_count) == (12, 3)
    assert job.max_failed_trial_count == 12  # a failed trial does not stop the study
    assert job.display_name == tuning.study_name(run.run_key)
    (metric,) = job.study_spec.metrics
    assert metric.metric_id == "mae"
    assert metric.goal == aiplatform_v1.StudySpec.MetricSpec.GoalType.MINIMIZE
    params = {p.parameter_id: p for p in job.study_spec.parameters}
    assert set(params) == {p.name for p in tuning.SPEC}
    lr = params["learning_rate"]
    assert (lr.double_value_spec.min_value, lr.double_value_spec.max_value) == (0.01, 0.2)
    assert lr.scale_type == aiplatform_v1.StudySpec.ParameterSpec.ScaleType.UNIT_LOG_SCALE
    depth = params["max_depth"].integer_value_spec
    assert (depth.min_value, depth.max_value) == (-1, 15)
    # Each trial: the daily train job's worker pool on the trainer image.
    (pool,) = job.trial_job_spec.worker_pool_specs
    daily_pool = custom_job_body(run, trial_job(run, run.settings, run.ctx.tuning))["job_spec"][
        "worker_pool_specs"
    ][0]
    assert pool == aiplatform_v1.WorkerPoolSpec(daily_pool)
    assert pool.container_spec.image_uri.endswith("/trainer:1.2.0")
    args = list(pool.container_spec.args)
    assert args[0] == "train" and "--model-dir" not in args  # AIP_MODEL_DIR is the trial's
    assert args[-2:] == ["--hpt-metric-name", "mae"]
    assert args[args.index("--data-uri") + 1].startswith("bq://")
    prefix = job.trial_job_spec.base_output_directory.output_uri_prefix
    assert prefix == f"{RUN_DIR}/tuning/"
    assert job.trial_job_spec.scheduling.timeout.total_seconds() == 900
    assert {e.name: e.value for e in pool.container_spec.env}["SF_RUN_ID"] == RUN_ID
    assert job.labels["sf_task"] == "tune"


def test_the_operator_gets_the_same_spec_through_the_sdk(hpt_dag):
    task = hpt_dag.get_task("tune")
    run = render(task, params=PARAMS)["sf"]
    body = hpt_job_body(run, run.settings, run.ctx.tuning)
    assert task.display_name == body["display_name"]
    assert task.metric_spec == {"mae": "minimize"}
    assert (task.max_trial_count, task.parallel_trial_count) == (12, 3)
    assert task.worker_pool_specs == body["trial_job_spec"]["worker_pool_specs"]
    assert task.base_output_dir == f"{RUN_DIR}/tuning/"
    assert task.timeout == 900
    # The SDK's parameter specs are the study spec's parameters, field for field.
    from_sdk = [spec._to_parameter_spec(name) for name, spec in sdk_parameter_spec().items()]
    wanted = aiplatform_v1.StudySpec(body["study_spec"]).parameters
    assert [aiplatform_v1.StudySpec.ParameterSpec.to_dict(p) for p in from_sdk] == [
        aiplatform_v1.StudySpec.ParameterSpec.to_dict(p) for p in wanted
    ]


def test_a_finished_job_is_recorded_and_pick_best_reads_its_best_trial(hpt_dag, gcs):
    task = hpt_dag.get_task("tune")
    context = render(task, params=PARAMS)
    run = context["sf"]
    trial = {
        "id": "7",
        "state": "SUCCEEDED",
        "parameters": [
            {"parameterId": p.name, "value": 0.05 if p.kind == "float" else 40.0}
            for p in tuning.SPEC
        ],
        "finalMeasurement": {"metrics": [{"metricId": "mae", "value": 1.5}]},
    }
    failed = {**trial, "id": "8", "state": "INFEASIBLE"}
    job = {"name": f"{PARENT}/hyperparameterTuningJobs/9", "trials": [trial, failed]}
    out = task._record(run, job)
    assert out["trials"] == 2
    doc = json.loads(gcs.get(f"{RUN_DIR}/tuning/trials.json"))
    assert doc["platform"] == "vertex"
    best = steps.pick_best(run.ctx, run.platform, run.settings)
    assert best["trial"] == "7" and best["value"] == 1.5
    assert best["params"]["num_leaves"] == 40 and best["params"]["learning_rate"] == 0.05
    assert json.loads(gcs.get(f"{RUN_DIR}/tuning/best.json")) == best
    # The retrain is the train job with those params as flags.
    job = steps.plan_retrain(run.ctx, run.platform, run.settings)
    assert job.command == "train"
    assert job.args[job.args.index("--num_leaves") + 1] == "40"
    assert job.args[job.args.index("--model-dir") + 1] == f"{RUN_DIR}/model"
    assert job.state["tuning"]["study"].endswith("/9")


def test_the_registered_model_names_the_study_that_produced_its_params(run):
    from sales_forecast.platforms.gcp.register import model_upload_body

    record = {"study": "sf-hpt-x", "trial": "7", "metric": "mae", "value": 1.5, "params": {}}
    body = model_upload_body(run, tuning=record)
    model = aiplatform_v1.Model(body)
    assert model.labels["sf_study"] == "sf-hpt-x"
    assert '"trial": "7"' in model.version_description
    assert "sf_study" not in aiplatform_v1.Model(model_upload_body(run)).labels


def test_a_daily_run_reuses_the_params_of_the_newest_tuned_vertex_model(monkeypatch, gcs, models):
    from types import SimpleNamespace

    from tests._support.gcp import load_gcp_dag

    set_variables(monkeypatch)
    dag = load_gcp_dag(monkeypatch)
    root = "gs://acme-sf/models/sales_forecast/"
    tuned = {p.name: (0.05 if p.kind == "float" else 40) for p in tuning.SPEC}
    models.list_model_versions.return_value = [
        SimpleNamespace(
            name=f"{PARENT}/models/777@1", version_id="1", artifact_uri=f"{root}a/", labels={}
        ),
        SimpleNamespace(
            name=f"{PARENT}/models/777@2",
            version_id="2",
            artifact_uri=f"{root}b/",
            labels={"sf_study": "9"},
        ),
    ]
    gcs.put(f"{root}b/params.json", {"params": {**tuned, "min_child_samples": 20}})
    # On (the default): the newest tuned version's params.
    run = render(dag.get_task("train"))["sf"]
    job = steps.plan_train(run.ctx, run.platform, run.settings)
    assert job.args[job.args.index("--num_leaves") + 1] == "40"
    assert job.state["tuning"] == {"study": "9", "params": tuned, "from": "2"}
    # Off: the settings' recipe.
    run = render(dag.get_task("train"), params={"use_tuned_params": False})["sf"]
    assert "--num_leaves" not in steps.plan_train(run.ctx, run.platform, run.settings).args
