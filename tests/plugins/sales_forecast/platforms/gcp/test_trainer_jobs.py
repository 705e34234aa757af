"""``train`` / ``backtest_and_gate`` / ``forecast`` on GCP: what the operator decides at execute.

Champion lookup for the gate, the model the forecast uses (with the ``train_end`` guard), the
future file check, the Cloud Run variant, and the planned job carried through a deferral.
The Model Registry and the job APIs are mocked at their hooks, GCS is in memory.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import run_v2
from sales_forecast.steps import TrainerJob

from tests._support.gcp import DATASET, PARENT, RUN_DIR, RUN_ID, RUN_KEY, render

PROMOTED = f"gs://acme-sf/models/sales_forecast/{RUN_KEY}/"
PRODUCTION = "gs://acme-sf/models/sales_forecast/older_run/"
CUTOFF = "2025-03-31"  # the run of 2025-04-01 uses data up to the day before
CLOUD_RUN_HOOKS = (
    "airflow.providers.google.cloud.hooks.cloud_run.CloudRunHook",
    "airflow.providers.google.cloud.operators.cloud_run.CloudRunHook",
)
VERTEX_DONE = {"status": "success", "message": "done", "custom_job": {}}


def submitted_args(vertex_jobs) -> list[str]:
    job = vertex_jobs.create_custom_job.call_args.kwargs["custom_job"]
    return job["job_spec"]["worker_pool_specs"][0]["container_spec"]["args"]


def defer(task, context):
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as info:
        task.execute(context)
    return info.value


def put_gate(gcs, passed: bool, **extra) -> None:
    gate = {"passed": passed, "metric": "wape", "reason": "test", **extra}
    gcs.put(f"{RUN_DIR}/backtest/gate.json", gate)


def put_production_metadata(gcs, train_end: str) -> None:
    gcs.put(f"{PRODUCTION}metadata.json", {"train_end": train_end, "n_series": 2})


def arg(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


# ---------------------------------------------------------------- bodies


def test_bodies_carry_the_job_and_leave_out_an_unset_service_account(dag):
    import dataclasses

    from sales_forecast.platforms.gcp.trainer_jobs import (
        cloud_run_env,
        cloud_run_job_body,
        custom_job_body,
    )

    run = render(dag.get_task("train"))["sf"]
    run = dataclasses.replace(run, cfg=dataclasses.replace(run.cfg, service_account=""))
    job = TrainerJob("train", ["--x", "1"], {"AIP_MODEL_DIR": "gs://m/"}, "train-" + "k" * 200)
    body = custom_job_body(run, job)
    assert len(body["display_name"]) == 128 and body["display_name"].startswith("sf-train-k")
    assert "service_account" not in body["job_spec"]
    assert body["labels"] == {
        "app": "sales-forecast",
        "sf_run": RUN_KEY.lower(),
        "sf_dataset": "retail",
        "sf_task": "train",
    }
    assert "service_account" not in cloud_run_job_body(run.cfg)["template"]["template"]
    assert cloud_run_env(run, job) == {
        "PYTHONUNBUFFERED": "1",
        "SF_RUN_ID": RUN_ID,
        "CLOUD_ML_JOB_ID": job.job_name,
        "AIP_MODEL_DIR": "gs://m/",
    }


def test_only_trainer_steps_are_trainer_jobs():
    from sales_forecast.config import Settings
    from sales_forecast.platforms.gcp.trainer_jobs import TrainerJobOperator

    with pytest.raises(ValueError, match="step must be one of"):
        TrainerJobOperator(task_id="x", settings=Settings(), step="register")


# ---------------------------------------------------------------- backtest_and_gate


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
    assert args[-2:] == ["--champion-model-dir", PRODUCTION]
    # What execute decided survives the deferral (the task resumes in another process).
    assert deferred.method_name == "execute_complete"
    assert deferred.kwargs["trainer_job"]["state"]["champion_version"] == "3"

    put_gate(gcs, True)
    gate = task.execute_complete(context, VERTEX_DONE, **deferred.kwargs)
    assert gate["champion_version"] == "3"
    assert json.loads(gcs.get(f"{RUN_DIR}/backtest/gate.json"))["champion_version"] == "3"


def test_backtest_never_compares_a_model_with_itself(dag, gcs, models, vertex_jobs):
    models.get_model.return_value = SimpleNamespace(
        name=f"{PARENT}/models/777@5", version_id="5", artifact_uri=PROMOTED
    )
    task = dag.get_task("backtest_and_gate")
    defer(task, render(task))
    assert "--champion-model-dir" not in submitted_args(vertex_jobs)


def test_backtest_without_any_registered_model(dag, gcs, models, vertex_jobs):
    models.list_models.return_value = []
    task = dag.get_task("backtest_and_gate")
    deferred = defer(task, render(task))
    assert "--champion-model-dir" not in submitted_args(vertex_jobs)
    assert deferred.kwargs["trainer_job"]["state"] == {"champion_version": None}


def test_backtest_while_no_version_holds_the_alias(dag, gcs, models, vertex_jobs):
    models.get_model.side_effect = NotFound("no production yet")
    task = dag.get_task("backtest_and_gate")
    deferred = defer(task, render(task))
    assert "--champion-model-dir" not in submitted_args(vertex_jobs)
    assert deferred.kwargs["trainer_job"]["state"] == {"champion_version": None}


def test_the_planned_job_is_used_after_the_deferral_even_if_the_registry_moved(
    dag, gcs, models, vertex_jobs
):
    task = dag.get_task("backtest_and_gate")
    context = render(task)
    deferred = defer(task, context)
    # Another run deploys version 9 while this job runs: the gate still compared with v3.
    models.reset_mock()
    models.get_model.return_value = SimpleNamespace(
        name=f"{PARENT}/models/777@9", version_id="9", artifact_uri="gs://acme-sf/models/x/new/"
    )
    put_gate(gcs, False)
    # The task resumes in another process: only the trigger kwargs (JSON) carry over.
    task._job = None
    context = render(task)
    gate = task.execute_complete(context, VERTEX_DONE, **json.loads(json.dumps(deferred.kwargs)))
    assert gate["champion_version"] == "3"
    models.get_model.assert_not_called()


def test_a_deferral_without_the_job_plans_it_again(dag, gcs, models, vertex_jobs):
    # A trigger event from before the job travelled with the deferral: plan again on resume.
    task = dag.get_task("backtest_and_gate")
    context = render(task)
    put_gate(gcs, True)
    gate = task.execute_complete(context, VERTEX_DONE)
    assert gate["champion_version"] == "3"


# ---------------------------------------------------------------- forecast


@pytest.mark.parametrize(
    ("passed", "model_dir", "version"),
    [
        (True, f"{RUN_DIR}/model", f"candidate:{RUN_KEY}"),
        (False, PRODUCTION, "3"),
    ],
)
def test_forecast_uses_the_model_the_gate_chose(
    dag, gcs, models, vertex_jobs, passed, model_dir, version
):
    put_gate(gcs, passed)
    put_production_metadata(gcs, "2025-03-01")
    task = dag.get_task("forecast")
    defer(task, render(task))
    args = submitted_args(vertex_jobs)
    assert arg(args, "--model-dir") == model_dir
    assert arg(args, "--model-version") == version


@pytest.mark.parametrize(
    ("train_end", "model_dir", "version"),
    [
        # A backfill: production saw data after this run's cut-off; using it would leak the
        # future into the forecast (and the trainer refuses it). The run's own model forecasts.
        ("2025-04-15", f"{RUN_DIR}/model", f"candidate:{RUN_KEY}"),
        ("2025-04-01", f"{RUN_DIR}/model", f"candidate:{RUN_KEY}"),
        # Unknown: counts as too new.
        ("", f"{RUN_DIR}/model", f"candidate:{RUN_KEY}"),
        # Trained up to the cut-off at most: production keeps forecasting.
        (CUTOFF, PRODUCTION, "3"),
        ("2025-01-31", PRODUCTION, "3"),
    ],
)
def test_forecast_never_uses_a_production_model_trained_after_the_cutoff(
    dag, gcs, models, vertex_jobs, train_end, model_dir, version
):
    put_gate(gcs, False, reason="worse than production", beats_baseline=True)
    put_production_metadata(gcs, train_end)
    task = dag.get_task("forecast")
    context = render(task)
    assert context["sf"].cutoff_iso == CUTOFF
    deferred = defer(task, context)
    args = submitted_args(vertex_jobs)
    assert arg(args, "--model-dir") == model_dir
    assert arg(args, "--model-version") == version
    assert arg(args, "--cutoff-date") == CUTOFF
    assert deferred.kwargs["trainer_job"]["state"]["model_version"] == version


def test_forecast_fails_fast_on_a_missing_future_file(dag, gcs, models, vertex_jobs):
    from airflow.sdk.exceptions import AirflowFailException

    put_gate(gcs, True)
    task = dag.get_task("forecast")
    context = render(task, params={"future_uri": "gs://drops/future.csv"})
    with pytest.raises(AirflowFailException, match="future covariates file not found"):
        task.execute(context)
    vertex_jobs.create_custom_job.assert_not_called()


def test_forecast_passes_an_existing_future_file(dag, gcs, models, vertex_jobs):
    put_gate(gcs, True)
    gcs.put("gs://drops/future.csv", "date,store_id\n")
    task = dag.get_task("forecast")
    defer(task, render(task, params={"future_uri": "gs://drops/future.csv"}))
    assert submitted_args(vertex_jobs)[-2:] == ["--future-uri", "gs://drops/future.csv"]


def test_forecast_checks_every_series_and_day_was_written(dag, gcs, bq, models):
    task = dag.get_task("forecast")
    context = render(task, params={"horizon": 7})
    stats = {"model_version": "3", "rows": 13, "series": 2, "first_date": None, "last_date": None}

    def answer(sql, params):
        if "daily_sales_features" in sql:
            return [{"n": 2}]  # the series the features hold
        return [dict(stats)]

    bq.answer = answer
    job = TrainerJob("predict", [], {}, "predict-x", state={"model_version": "3"})
    with pytest.raises(RuntimeError, match="some series or days are missing"):
        task._finish(context["sf"], job)
    stats["rows"] = 14
    out = task._finish(context["sf"], job)
    assert out["model_version"] == "3" and out["table"].endswith(".daily_sales_forecasts")
    assert out["series_by_model"] == {"3": 2}
    forecasts = [(q, p) for q, p in bq.queries if "daily_sales_forecasts" in q]
    assert f"FROM {DATASET}.daily_sales_forecasts" in forecasts[-1][0].replace("`", "")
    assert forecasts[-1][1] == {"run_id": RUN_ID}


def test_forecast_reports_the_model_the_plan_chose_after_the_deferral(
    dag, gcs, models, vertex_jobs, bq
):
    put_gate(gcs, False)
    put_production_metadata(gcs, "2025-03-01")
    task = dag.get_task("forecast")
    context = render(task, params={"horizon": 7})
    deferred = defer(task, context)
    models.get_model.side_effect = NotFound("production was retired meanwhile")
    bq.answer = lambda sql, params: (
        [{"n": 2}]
        if "daily_sales_features" in sql
        else [{"model_version": "3", "rows": 14, "series": 2}]
    )
    out = task.execute_complete(context, VERTEX_DONE, **deferred.kwargs)
    assert out["model_version"] == "3"


# ---------------------------------------------------------------- train


def test_train_reads_the_metrics_the_job_wrote(dag, gcs, vertex_jobs):
    task = dag.get_task("train")
    context = render(task)
    deferred = defer(task, context)
    assert deferred.kwargs["trainer_job"]["env"]["AIP_MODEL_DIR"] == f"{RUN_DIR}/model/"
    gcs.put(f"{RUN_DIR}/model/metrics.json", {"wape": 0.12})
    out = task.execute_complete(context, VERTEX_DONE, **deferred.kwargs)
    assert out == {"model_dir": f"{RUN_DIR}/model", "metrics": {"wape": 0.12}}


# ---------------------------------------------------------------- Cloud Run


def cloud_run(hook):
    import contextlib

    stack = contextlib.ExitStack()
    for target in CLOUD_RUN_HOOKS:
        stack.enter_context(mock.patch(target, return_value=hook))
    return stack


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
    with cloud_run(hook):
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
        assert deferred.kwargs["trainer_job"]["command"] == "train"

        gcs.put(f"{RUN_DIR}/model/metrics.json", {"wape": 0.12})
        event = {"status": RunJobStatus.SUCCESS.value, "job_name": "sales-forecast-trainer"}
        out = task.execute_complete_cloud_run(context, event, **deferred.kwargs)
    assert out == {"model_dir": f"{RUN_DIR}/model", "metrics": {"wape": 0.12}}


def test_cloud_run_job_is_updated_to_the_configured_image(dag, gcs):
    hook = mock.MagicMock()
    hook.get_job.return_value = run_v2.Job(
        template={"template": {"containers": [{"image": "old:1"}]}}
    )
    task = dag.get_task("train")
    run = render(task, conf={"runner": "cloud_run"})["sf"]
    with mock.patch(CLOUD_RUN_HOOKS[0], return_value=hook):
        task._ensure_cloud_run_job(run)
    hook.update_job.assert_called_once()
    hook.create_job.assert_not_called()


def test_cloud_run_job_already_on_the_image_is_left_alone(dag, gcs):
    hook = mock.MagicMock()
    hook.get_job.return_value = run_v2.Job(
        template={
            "template": {
                "containers": [{"image": "<your-registry>/acme-forecast/sf/trainer:1.2.0"}],
                "service_account": "sf-jobs@acme-forecast.iam.gserviceaccount.com",
            }
        }
    )
    task = dag.get_task("train")
    run = render(task, conf={"runner": "cloud_run"})["sf"]
    with mock.patch(CLOUD_RUN_HOOKS[0], return_value=hook):
        task._ensure_cloud_run_job(run)
    hook.update_job.assert_not_called()
    hook.create_job.assert_not_called()
