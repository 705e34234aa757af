"""``train`` / ``backtest_and_gate`` / ``forecast`` on GCP: what the operator plans and submits.

Champion lookup for the gate, the model the forecast uses (with the ``train_end`` guard), the
future file check, the Cloud Run variant, the planned job in the rendered fields and carried
through a deferral; and what a retry does with the jobs earlier tries started, trainer exit
code 2, the deferral timeout and Cloud Run job drift. The Model Registry and the job APIs are
mocked at their hooks (Cloud Run's executions and tasks at the client library), GCS is in memory.
"""

from __future__ import annotations

import json
import logging
import shlex
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import aiplatform_v1, run_v2
from sales_forecast.steps import TrainerJob

from tests._support.gcp import DATASET, PARENT, RUN_DIR, RUN_ID, RUN_KEY, render, task_context

PROMOTED = f"gs://acme-sf/models/sales_forecast/{RUN_KEY}/"
PRODUCTION = "gs://acme-sf/models/sales_forecast/older_run/"
CUTOFF = "2025-03-31"  # the run of 2025-04-01 uses data up to the day before
IMAGE = "<your-registry>/acme-forecast/sf/trainer:1.2.0"
VERTEX_DONE = {"status": "success", "message": "done", "custom_job": {}}
# CustomJob.error.message of a replica that exited non-zero (the wording Vertex AI uses).
VERTEX_EXIT = (
    "The replica workerpool0-0 exited with a non-zero status of {code}. Termination reason: "
    "Error. \nTraceback (most recent call last):\n  ...\nDataError: no rows before the cut-off"
)
JOB_TIMEOUT = timedelta(seconds=6 * 3600 + 30 * 60)  # trainer_timeout_s + DEFER_MARGIN_S
CLOUD_RUN_JOB = f"{PARENT}/jobs/sales-forecast-trainer"


def submitted_args(vertex_jobs) -> list[str]:
    job = vertex_jobs.create_custom_job.call_args.kwargs["custom_job"]
    return job["job_spec"]["worker_pool_specs"][0]["container_spec"]["args"]


def rendered_args(task) -> list[str]:
    return task.custom_job["job_spec"]["worker_pool_specs"][0]["container_spec"]["args"]


def defer(task, context):
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as info:
        task.execute(context)
    return info.value


def render_try(task, try_number: int, max_tries: int, **kwargs):
    """Render as try ``try_number`` (``max_tries``: what Airflow stored, 2 + clears)."""
    context = task_context(task, kwargs.get("params"), kwargs.get("conf"))
    context["ti"] = SimpleNamespace(
        try_number=try_number, max_tries=max_tries, xcom_push=lambda **kw: None
    )
    task.render_template_fields(context)
    return context


def render_resumed(task, deferred):
    """Render as the task runner does before it resumes a deferred task."""
    context = task_context(task)
    context["ti"] = SimpleNamespace(
        try_number=1,
        max_tries=2,
        xcom_push=lambda **kw: None,
        _ti_context_from_server=SimpleNamespace(
            next_method=deferred.method_name,
            next_kwargs=json.loads(json.dumps(deferred.kwargs)),
        ),
    )
    task.render_template_fields(context)
    return context


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
    body = custom_job_body(run, job, try_number=3)
    assert len(body["display_name"]) == 128 and body["display_name"].startswith("sf-train-k")
    assert "service_account" not in body["job_spec"]
    assert body["labels"] == {
        "app": "sales-forecast",
        "sf_run": RUN_KEY.lower(),
        "sf_dataset": "retail",
        "sf_task": "train",
        "sf_try": "3",
    }
    assert "service_account" not in cloud_run_job_body(run.cfg)["template"]["template"]
    assert cloud_run_env(run, job) == {
        "PYTHONUNBUFFERED": "1",
        "SF_RUN_ID": RUN_ID,
        "CLOUD_ML_JOB_ID": job.job_name,
        "AIP_MODEL_DIR": "gs://m/",
    }
    assert cloud_run_env(run, job, try_number=2)["SF_AIRFLOW_TRY"] == "2"


def test_only_trainer_steps_are_trainer_jobs():
    from sales_forecast.config import Settings
    from sales_forecast.platforms.gcp.trainer_jobs import TrainerJobOperator

    with pytest.raises(ValueError, match="step must be one of"):
        TrainerJobOperator(task_id="x", settings=Settings(), step="register")


def test_the_boot_disk_comes_from_the_variables(monkeypatch):
    from tests._support.gcp import load_gcp_dag, set_variables

    set_variables(
        monkeypatch,
        SF_GCP_TRAIN_MACHINE_TYPE="n4-standard-8",
        SF_GCP_TRAIN_BOOT_DISK_TYPE="hyperdisk-balanced",
        SF_GCP_TRAIN_BOOT_DISK_SIZE_GB="200",
    )
    task = load_gcp_dag(monkeypatch).get_task("train")
    render(task)
    (pool,) = task.custom_job["job_spec"]["worker_pool_specs"]
    assert pool["machine_spec"] == {"machine_type": "n4-standard-8"}
    assert pool["disk_spec"] == {"boot_disk_type": "hyperdisk-balanced", "boot_disk_size_gb": 200}


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
    # The task resumes in another process: only the trigger kwargs (JSON) carry over, and the
    # task runner renders before it resumes. The rendered view still shows what ran.
    task._job = None
    context = render_resumed(task, deferred)
    assert rendered_args(task)[-2:] == ["--champion-model-dir", PRODUCTION]
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


# ---------------------------------------------------------------- what the UI shows


def test_the_rendered_job_is_the_one_submitted(dag, gcs, models, vertex_jobs, caplog):
    # Rendering happens in the worker, before execute: the real plan, not a preview.
    put_gate(gcs, False)
    put_production_metadata(gcs, "2025-03-01")
    backtest = dag.get_task("backtest_and_gate")
    render(backtest)
    assert rendered_args(backtest)[-2:] == ["--champion-model-dir", PRODUCTION]
    forecast = dag.get_task("forecast")
    context = render(forecast)
    assert arg(rendered_args(forecast), "--model-dir") == PRODUCTION
    assert arg(rendered_args(forecast), "--model-version") == "3"
    rendered = json.loads(json.dumps(forecast.custom_job))
    models.reset_mock()
    with caplog.at_level(logging.INFO, logger="sales_forecast.platforms.gcp.trainer_jobs"):
        defer(forecast, context)
    models.get_model.assert_not_called()  # planned once, at render
    submitted = vertex_jobs.create_custom_job.call_args.kwargs["custom_job"]
    assert submitted == rendered
    args = submitted["job_spec"]["worker_pool_specs"][0]["container_spec"]["args"]
    assert shlex.join(args) in caplog.text  # the exact command line, in the task log


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
    with pytest.raises(AirflowFailException, match="future covariates file not found"):
        render(task, params={"future_uri": "gs://drops/future.csv"})
    vertex_jobs.create_custom_job.assert_not_called()


def test_forecast_passes_an_existing_future_file(dag, gcs, models, vertex_jobs):
    put_gate(gcs, True)
    gcs.put("gs://drops/future.csv", "date,store_id\n")
    task = dag.get_task("forecast")
    defer(task, render(task, params={"future_uri": "gs://drops/future.csv"}))
    assert submitted_args(vertex_jobs)[-2:] == ["--future-uri", "gs://drops/future.csv"]


def test_forecast_checks_every_series_and_day_was_written(dag, gcs, bq, models):
    put_gate(gcs, True)
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


# ---------------------------------------------------------------- deferral timeout


def test_a_deferred_vertex_job_times_out_after_the_job_timeout_plus_a_margin(dag, gcs, vertex_jobs):
    task = dag.get_task("train")
    deferred = defer(task, render(task))
    assert deferred.timeout == JOB_TIMEOUT
    spec = vertex_jobs.create_custom_job.call_args.kwargs["custom_job"]["job_spec"]
    assert spec["scheduling"] == {"timeout": {"seconds": 6 * 3600}}  # the job's own


# ---------------------------------------------------------------- exit code 2 on Vertex AI


def test_trainer_exit_code_2_fails_without_retries(dag, gcs, vertex_jobs):
    from airflow.sdk.exceptions import AirflowFailException

    task = dag.get_task("train")
    context = render(task)
    deferred = defer(task, context)
    event = {"status": "error", "message": VERTEX_EXIT.format(code=2)}
    with pytest.raises(
        AirflowFailException, match="trainer train rejected its input .*status of 2"
    ):
        task.execute_complete(context, event, **deferred.kwargs)


@pytest.mark.parametrize(
    "message",
    [
        VERTEX_EXIT.format(code=1),  # a crash: retried
        VERTEX_EXIT.format(code=137),  # killed (out of memory): retried
        "503 failed to connect to all addresses",  # a polling error: retried
        "The CustomJob has been cancelled.",
    ],
)
def test_other_trainer_failures_are_retried(dag, gcs, vertex_jobs, message):
    from airflow.sdk.exceptions import AirflowFailException

    task = dag.get_task("train")
    context = render(task)
    deferred = defer(task, context)
    with pytest.raises(RuntimeError) as info:
        task.execute_complete(context, {"status": "error", "message": message}, **deferred.kwargs)
    assert not isinstance(info.value, AirflowFailException)


def test_trainer_exit_code_2_fails_without_retries_in_sync_mode(dag, gcs, vertex_jobs):
    from airflow.sdk.exceptions import AirflowFailException

    task = dag.get_task("train")
    task.deferrable = False
    context = render(task)
    vertex_jobs.wait_for_custom_job.side_effect = RuntimeError(VERTEX_EXIT.format(code=2))
    with pytest.raises(AirflowFailException, match="rejected its input"):
        task.execute(context)
    vertex_jobs.wait_for_custom_job.side_effect = RuntimeError(VERTEX_EXIT.format(code=1))
    with pytest.raises(RuntimeError, match="status of 1") as info:
        task.execute(context)
    assert not isinstance(info.value, AirflowFailException)


def test_vertex_exit_codes_are_read_from_the_error_message():
    from sales_forecast.platforms.gcp.trainer_jobs import vertex_exit_codes

    assert vertex_exit_codes(VERTEX_EXIT.format(code=2)) == [2]
    two = "The replica workerpool0-0 exited with a non-zero status of 2. The replica " + (
        "workerpool1-0 exited with a non-zero status of 1. Termination reason: Error."
    )
    assert vertex_exit_codes(two) == [2, 1]
    assert vertex_exit_codes("Internal error occurred") == []


# ---------------------------------------------------------------- retries: earlier jobs


def vertex_job(job_id, state, args, *, tried="1", run_id=RUN_ID, image=IMAGE, created=100):
    return aiplatform_v1.CustomJob(
        name=f"{PARENT}/customJobs/{job_id}",
        display_name="sf-x",
        state=state,
        labels={"sf_try": tried},
        create_time={"seconds": created},
        job_spec={
            "worker_pool_specs": [
                {
                    "container_spec": {
                        "image_uri": image,
                        "args": args,
                        "env": [{"name": "SF_RUN_ID", "value": run_id}],
                    }
                }
            ]
        },
    )


S = aiplatform_v1.JobState


def planned_args(dag, task_id="train") -> list[str]:
    task = dag.get_task(task_id)
    render(task)
    return list(rendered_args(task))


def test_a_retry_looks_up_this_run_and_steps_earlier_jobs(dag, gcs, vertex_jobs):
    task = dag.get_task("train")
    defer(task, render_try(task, 2, 2))
    kwargs = vertex_jobs.list_custom_jobs.call_args.kwargs
    assert kwargs["project_id"] == "acme-forecast" and kwargs["region"] == "europe-west4"
    assert kwargs["filter"] == (
        f'display_name="sf-train-{RUN_KEY}" AND labels.sf_run="{RUN_KEY.lower()}"'
    )
    assert task.custom_job["labels"]["sf_try"] == "2"


def test_a_retry_waits_on_the_job_the_previous_try_left_running(dag, gcs, vertex_jobs):
    args = planned_args(dag)
    vertex_jobs.list_custom_jobs.return_value = [vertex_job(7, S.JOB_STATE_RUNNING, args)]
    task = dag.get_task("train")
    deferred = defer(task, render_try(task, 2, 2))
    vertex_jobs.create_custom_job.assert_not_called()
    vertex_jobs.cancel_custom_job.assert_not_called()
    assert deferred.trigger.custom_job_id == "7" and deferred.method_name == "execute_complete"
    assert deferred.timeout == JOB_TIMEOUT
    assert deferred.kwargs["trainer_job"]["command"] == "train"


def test_a_retry_waits_on_the_running_job_in_sync_mode_too(dag, gcs, vertex_jobs):
    args = planned_args(dag)
    vertex_jobs.list_custom_jobs.return_value = [vertex_job(7, S.JOB_STATE_PENDING, args)]
    task = dag.get_task("train")
    task.deferrable = False
    context = render_try(task, 2, 2)
    gcs.put(f"{RUN_DIR}/model/metrics.json", {"wape": 0.1})
    assert task.execute(context)["metrics"] == {"wape": 0.1}
    assert vertex_jobs.wait_for_custom_job.call_args.kwargs["custom_job_id"] == "7"
    vertex_jobs.create_custom_job.assert_not_called()


def test_a_retry_reuses_the_job_that_already_succeeded(dag, gcs, vertex_jobs):
    # E.g. the job finished but reading its metrics failed: no second paid job.
    args = planned_args(dag)
    vertex_jobs.list_custom_jobs.return_value = [
        vertex_job(6, S.JOB_STATE_FAILED, args, created=50),
        vertex_job(7, S.JOB_STATE_SUCCEEDED, args, tried="2", created=90),
    ]
    gcs.put(f"{RUN_DIR}/model/metrics.json", {"wape": 0.12})
    task = dag.get_task("train")
    out = task.execute(render_try(task, 3, 2))
    assert out == {"model_dir": f"{RUN_DIR}/model", "metrics": {"wape": 0.12}}
    vertex_jobs.create_custom_job.assert_not_called()


@pytest.mark.parametrize(
    ("previous", "why"),
    [
        # Started before the task was cleared (try 1 of 3; after the clear max_tries is 3 + 2).
        ({"state": S.JOB_STATE_RUNNING, "tried": "1"}, "before a clear"),
        # The registry moved between the tries: the plan is another job now.
        ({"state": S.JOB_STATE_RUNNING, "args": ["train", "--other"]}, "other args"),
        ({"state": S.JOB_STATE_QUEUED, "image": "trainer:old"}, "other image"),
        ({"state": S.JOB_STATE_PAUSED}, "paused: could resume and write"),
    ],
)
def test_a_live_job_that_is_not_this_one_is_cancelled_before_a_new_one(
    dag, gcs, vertex_jobs, previous, why
):
    args = planned_args(dag)
    old = vertex_job(
        7,
        previous["state"],
        previous.get("args", args),
        tried=previous.get("tried", "3"),
        image=previous.get("image", IMAGE),
    )
    vertex_jobs.list_custom_jobs.return_value = [old]
    vertex_jobs.get_custom_job.return_value = aiplatform_v1.CustomJob(state=S.JOB_STATE_CANCELLED)
    task = dag.get_task("train")
    max_tries = 5 if why == "before a clear" else 2  # tries 4.. are the series after the clear
    defer(task, render_try(task, 4 if why == "before a clear" else 3, max_tries))
    vertex_jobs.cancel_custom_job.assert_called_once_with(
        project_id="acme-forecast", region="europe-west4", custom_job="7"
    )
    get = vertex_jobs.get_custom_job.call_args.kwargs
    assert get["custom_job"] == "7"
    vertex_jobs.create_custom_job.assert_called_once()


def test_a_succeeded_job_from_before_a_clear_is_not_reused(dag, gcs, vertex_jobs):
    args = planned_args(dag)
    vertex_jobs.list_custom_jobs.return_value = [vertex_job(7, S.JOB_STATE_SUCCEEDED, args)]
    task = dag.get_task("train")
    defer(task, render_try(task, 4, 5))  # cleared after try 3: a fresh job is asked for
    vertex_jobs.create_custom_job.assert_called_once()
    vertex_jobs.cancel_custom_job.assert_not_called()


def test_jobs_of_another_run_are_left_alone(dag, gcs, vertex_jobs):
    # A long run id can share the label and the truncated display name with another run.
    args = planned_args(dag)
    other = vertex_job(7, S.JOB_STATE_RUNNING, args, run_id="manual__other")
    vertex_jobs.list_custom_jobs.return_value = [other]
    task = dag.get_task("train")
    defer(task, render_try(task, 2, 2))
    vertex_jobs.cancel_custom_job.assert_not_called()
    vertex_jobs.create_custom_job.assert_called_once()


def test_a_job_that_will_not_stop_fails_the_try_retryably(dag, gcs, vertex_jobs, monkeypatch):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
    from sales_forecast.platforms.gcp import trainer_jobs

    monkeypatch.setattr(trainer_jobs, "STOP_WAIT_S", 0)
    monkeypatch.setattr(trainer_jobs.TrainerJobOperator, "stop_poll_s", 0)
    vertex_jobs.list_custom_jobs.return_value = [
        vertex_job(7, S.JOB_STATE_RUNNING, ["train", "--other"])
    ]
    vertex_jobs.get_custom_job.return_value = aiplatform_v1.CustomJob(state=S.JOB_STATE_CANCELLING)
    task = dag.get_task("train")
    context = render_try(task, 2, 2)
    with pytest.raises(AirflowException, match="still running after cancelling") as info:
        task.execute(context)
    assert not isinstance(info.value, AirflowFailException)
    vertex_jobs.create_custom_job.assert_not_called()


@pytest.mark.parametrize(
    ("jobs", "can_reattach", "use", "stop"),
    [
        ([], True, None, []),
        ([("a", "running", 1, "same")], True, "a", []),
        ([("a", "running", 1, "same")], False, None, ["a"]),
        ([("a", "succeeded", 1, "same"), ("b", "running", 2, "same")], True, "b", []),
        ([("a", "succeeded", 2, "same"), ("b", "running", 0, "same")], True, "a", ["b"]),
        ([("a", "stopping", 1, "same")], True, None, ["a"]),
        ([("a", "finished", 1, "same")], True, None, []),
        ([("a", "running", None, "same")], True, None, ["a"]),  # no try label: not this series
        ([("a", "running", 1, "other")], True, None, ["a"]),
    ],
)
def test_previous_job_decision(jobs, can_reattach, use, stop):
    from sales_forecast.platforms.gcp.trainer_jobs import PreviousJob, previous_job_decision

    previous = [
        PreviousJob(name, state, tried, ("img", spec), created=i)
        for i, (name, state, tried, spec) in enumerate(jobs)
    ]
    chosen, stopping = previous_job_decision(
        previous, spec=("img", "same"), first_try=1, try_number=2, can_reattach=can_reattach
    )
    assert (chosen.name if chosen else None) == use
    assert [p.name for p in stopping] == stop


# ---------------------------------------------------------------- Cloud Run


def execution(name, args, *, done, ok=True, tried="1", run_id=RUN_ID, step="train"):
    env = {"SF_RUN_ID": run_id, "CLOUD_ML_JOB_ID": f"{step}-{RUN_KEY}", "SF_AIRFLOW_TRY": tried}
    return run_v2.Execution(
        name=f"{CLOUD_RUN_JOB}/executions/{name}",
        task_count=1,
        succeeded_count=1 if done and ok else 0,
        failed_count=0 if ok else 1,
        completion_time={"seconds": 200} if done else None,
        create_time={"seconds": 100},
        template={
            "containers": [
                {
                    "name": "trainer",
                    "image": IMAGE,
                    "args": args,
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                }
            ]
        },
    )


def run_operation(cloud_run):
    operation = mock.MagicMock()
    operation.metadata.log_uri = ""
    operation.metadata.name = f"{CLOUD_RUN_JOB}/executions/sales-forecast-trainer-new"
    operation.operation.name = "operations/1"
    cloud_run.hook.execute_job.return_value = operation
    return operation


def test_cloud_run_runner_creates_the_job_and_runs_it_with_overrides(dag, gcs, cloud_run):
    from airflow.providers.google.cloud.triggers.cloud_run import RunJobStatus

    hook = cloud_run.hook
    hook.get_job.side_effect = [NotFound("no job"), run_v2.Job(name="j")]
    run_operation(cloud_run)
    task = dag.get_task("train")
    context = render(task, conf={"runner": "cloud_run"})
    deferred = defer(task, context)
    create = hook.create_job.call_args.kwargs
    assert create["job_name"] == "sales-forecast-trainer"
    assert create["job"]["template"]["template"]["containers"][0]["image"] == IMAGE
    run = hook.execute_job.call_args.kwargs
    assert run["job_name"] == "sales-forecast-trainer" and run["region"] == "europe-west4"
    (override,) = run["overrides"]["container_overrides"]
    assert override["args"][:1] == ["train"]
    assert {"name": "AIP_MODEL_DIR", "value": f"{RUN_DIR}/model/"} in override["env"]
    assert {"name": "SF_AIRFLOW_TRY", "value": "1"} in override["env"]
    assert deferred.method_name == "execute_complete_cloud_run"
    assert deferred.kwargs["trainer_job"]["command"] == "train"
    assert deferred.timeout == JOB_TIMEOUT
    assert cloud_run.api.listed == [{"parent": CLOUD_RUN_JOB, "page_size": 100}]

    gcs.put(f"{RUN_DIR}/model/metrics.json", {"wape": 0.12})
    event = {"status": RunJobStatus.SUCCESS.value, "job_name": "sales-forecast-trainer"}
    out = task.execute_complete_cloud_run(context, event, **deferred.kwargs)
    assert out == {"model_dir": f"{RUN_DIR}/model", "metrics": {"wape": 0.12}}


def test_cloud_run_retry_reuses_the_execution_that_succeeded(dag, gcs, cloud_run):
    hook = cloud_run.hook
    hook.get_job.return_value = run_v2.Job()
    task = dag.get_task("train")
    context = render_try(task, 2, 2, conf={"runner": "cloud_run"})
    args = task.cloud_run_overrides["container_overrides"][0]["args"]
    cloud_run.api.executions = [
        execution("e2", args, done=True),
        execution("e1", args, done=True, ok=False),
        execution("x", args, done=False, run_id="manual__other"),  # another run's: untouched
    ]
    gcs.put(f"{RUN_DIR}/model/metrics.json", {"wape": 0.12})
    assert task.execute(context)["metrics"] == {"wape": 0.12}
    hook.execute_job.assert_not_called()
    assert cloud_run.api.cancelled == []


def test_cloud_run_retry_cancels_the_running_execution_first(dag, gcs, cloud_run):
    hook = cloud_run.hook
    hook.get_job.return_value = run_v2.Job()
    run_operation(cloud_run)
    task = dag.get_task("train")
    context = render_try(task, 2, 2, conf={"runner": "cloud_run"})
    args = task.cloud_run_overrides["container_overrides"][0]["args"]
    cloud_run.api.executions = [execution("e1", args, done=False)]
    defer(task, context)
    # The provider's trigger follows the run operation, which cannot be found again: cancel.
    assert cloud_run.api.cancelled == [f"{CLOUD_RUN_JOB}/executions/e1"]
    hook.execute_job.assert_called_once()


@pytest.mark.parametrize(("exit_code", "fails_for_good"), [(2, True), (1, False)])
def test_cloud_run_exit_code_2_fails_without_retries(
    dag, gcs, cloud_run, exit_code, fails_for_good
):
    from airflow.providers.google.cloud.triggers.cloud_run import RunJobStatus
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    cloud_run.hook.get_job.return_value = run_v2.Job()
    run_operation(cloud_run)
    task = dag.get_task("train")
    context = render(task, conf={"runner": "cloud_run"})
    deferred = defer(task, context)
    name = f"{CLOUD_RUN_JOB}/executions/sales-forecast-trainer-abc12"
    message = "The container exited with an error."
    cloud_run.api.tasks[name] = [
        run_v2.Task(
            name=f"{name}/tasks/sales-forecast-trainer-abc12-task0",
            last_attempt_result={"status": {"code": 2, "message": message}, "exit_code": exit_code},
        )
    ]
    event = {
        "status": RunJobStatus.FAIL.value,
        "operation_error_code": 2,
        "operation_error_message": (
            f"Task sales-forecast-trainer-abc12-task0 failed with message: {message}"
        ),
        "job_name": "sales-forecast-trainer",
        "execution_name": "sales-forecast-trainer-abc12",
    }
    with pytest.raises(AirflowException) as info:
        task.execute_complete_cloud_run(context, event, **deferred.kwargs)
    assert isinstance(info.value, AirflowFailException) is fails_for_good
    if fails_for_good:
        assert "trainer train rejected its input" in str(info.value)


def test_cloud_run_exit_code_2_fails_without_retries_in_sync_mode(dag, gcs, cloud_run):
    from airflow.sdk.exceptions import AirflowFailException

    cloud_run.hook.get_job.return_value = run_v2.Job()
    operation = run_operation(cloud_run)
    operation.result.side_effect = RuntimeError("execution failed")
    operation.exception.return_value = "Task ... failed with message: The container exited"
    cloud_run.api.tasks[operation.metadata.name] = [
        run_v2.Task(last_attempt_result={"status": {"code": 2}, "exit_code": 2})
    ]
    task = dag.get_task("train")
    task.deferrable = False
    with pytest.raises(AirflowFailException, match="rejected its input"):
        task.execute(render(task, conf={"runner": "cloud_run"}))


# ---------------------------------------------------------------- Cloud Run job drift


def configured_job(run) -> run_v2.Job:
    from sales_forecast.platforms.gcp.trainer_jobs import cloud_run_job_body

    return run_v2.Job(cloud_run_job_body(run.cfg))


def _set_cpu(job):
    job.template.template.containers[0].resources.limits["cpu"] = "1"


def _set_memory(job):
    job.template.template.containers[0].resources.limits["memory"] = "2Gi"


def _rename(job):
    job.template.template.containers[0].name = "worker"


def _second_container(job):
    job.template.template.containers.append(run_v2.Container(name="sidecar", image="x"))


def _old_image(job):
    job.template.template.containers[0].image = "old:1"


def _short_timeout(job):
    job.template.template.timeout = timedelta(seconds=600)


def _tasks(job):
    job.template.task_count = 3


def _retries(job):
    job.template.template.max_retries = 3


def _account(job):
    job.template.template.service_account = "other@acme-forecast.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    "change",
    [
        _set_cpu,
        _set_memory,
        _rename,
        _second_container,
        _old_image,
        _short_timeout,
        _tasks,
        _retries,
        _account,
    ],
)
def test_cloud_run_job_is_updated_when_any_field_drifted(dag, gcs, cloud_run, change):
    task = dag.get_task("train")
    run = render(task, conf={"runner": "cloud_run"})["sf"]
    job = configured_job(run)
    change(job)
    cloud_run.hook.get_job.return_value = job
    task._ensure_cloud_run_job(run)
    cloud_run.hook.update_job.assert_called_once()
    body = cloud_run.hook.update_job.call_args.kwargs["job"]
    limits = body["template"]["template"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "2", "memory": "8Gi"}
    cloud_run.hook.create_job.assert_not_called()


def test_cloud_run_job_already_configured_is_left_alone(dag, gcs, cloud_run):
    import dataclasses

    task = dag.get_task("train")
    run = render(task, conf={"runner": "cloud_run"})["sf"]
    cloud_run.hook.get_job.return_value = configured_job(run)
    task._ensure_cloud_run_job(run)
    # Without a configured account Cloud Run fills in the default one: not a drift.
    run = dataclasses.replace(run, cfg=dataclasses.replace(run.cfg, service_account=""))
    job = configured_job(run)
    job.template.template.service_account = "123-compute@developer.gserviceaccount.com"
    cloud_run.hook.get_job.return_value = job
    task._ensure_cloud_run_job(run)
    cloud_run.hook.update_job.assert_not_called()
    cloud_run.hook.create_job.assert_not_called()
