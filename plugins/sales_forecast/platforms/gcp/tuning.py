"""``tune`` on GCP: a Vertex AI hyperparameter tuning job over the trainer image.

The job searches :data:`sales_forecast.tuning.SPEC` (the local study's spec). Each trial is
the daily ``train`` job's worker pool (``trainer_jobs.custom_job_body``) with the run's train
arguments, no ``--model-dir`` (Vertex gives each trial its own ``AIP_MODEL_DIR`` under
``<run>/tuning/``), ``--hpt-metric-name``, and the trial's params appended by Vertex as
``--<name>=<value>``. The finished job, as the provider returns it, is written to
``<run>/tuning/trials.json``; the shared ``pick_best`` step reads the best trial from it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.google.cloud.operators.vertex_ai.hyperparameter_tuning_job import (
    CreateHyperparameterTuningJobOperator,
)

from sales_forecast import steps, tuning
from sales_forecast.config import Settings
from sales_forecast.errors import DataError
from sales_forecast.platforms.gcp.run import GcpRun, RunResolvingMixin
from sales_forecast.platforms.gcp.trainer_jobs import custom_job_body
from sales_forecast.steps import TrainerJob

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["TuneJobOperator", "hpt_job_body", "sdk_parameter_spec", "trial_job"]

log = logging.getLogger(__name__)


def trial_job(run: GcpRun, settings: Settings, req: tuning.TuningRequest) -> TrainerJob:
    """Every trial's trainer job (Vertex appends the tuned flags to its args)."""
    base = steps.tuning_train_args(run.ctx, run.platform, settings)
    args = tuning.trial_args(base, {}, req.metric, model_dir=None)
    return TrainerJob(command="train", args=args, env={}, job_name=f"hpt-{run.run_key}")


def _worker_pool_specs(run: GcpRun, job: TrainerJob) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = custom_job_body(run, job)["job_spec"]["worker_pool_specs"]
    return specs


def hpt_job_body(
    run: GcpRun,
    settings: Settings,
    req: tuning.TuningRequest,
    spec: Sequence[tuning.ParamSpec] = tuning.SPEC,
) -> dict[str, Any]:
    """The ``HyperparameterTuningJob`` (aiplatform_v1) this run submits, as a dict."""
    job = trial_job(run, settings, req)
    trial_spec: dict[str, Any] = {
        "worker_pool_specs": _worker_pool_specs(run, job),
        "base_output_directory": {"output_uri_prefix": f"{run.ctx.tuning_dir}/"},
        "scheduling": {"timeout": {"seconds": req.trial_timeout_s}},
    }
    if run.cfg.service_account:
        trial_spec["service_account"] = run.cfg.service_account
    return {
        "display_name": tuning.study_name(run.run_key),
        "study_spec": tuning.vertex_study_spec(req.metric, spec),
        "max_trial_count": req.trials,
        "parallel_trial_count": req.parallel_trials,
        # A failed trial is recorded and the study goes on (as locally).
        "max_failed_trial_count": req.trials,
        "trial_job_spec": trial_spec,
        "labels": custom_job_body(run, job)["labels"] | {"sf_task": "tune"},
    }


def sdk_parameter_spec(spec: Sequence[tuning.ParamSpec] = tuning.SPEC) -> dict[str, Any]:
    """The spec as the provider operator takes it (the Vertex AI SDK's parameter specs)."""
    from google.cloud.aiplatform import hyperparameter_tuning as hpt

    out: dict[str, Any] = {}
    for p in spec:
        scale = "log" if p.log else "linear"
        if p.kind == "int":
            out[p.name] = hpt.IntegerParameterSpec(min=int(p.low), max=int(p.high), scale=scale)
        else:
            out[p.name] = hpt.DoubleParameterSpec(min=p.low, max=p.high, scale=scale)
    return out


class TuneJobOperator(RunResolvingMixin, CreateHyperparameterTuningJobOperator):
    """The tuning DAG's ``tune`` task on Vertex AI: the job built from the shared spec."""

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            project_id="{{ sf.cfg.project }}",
            region="{{ sf.cfg.region }}",
            display_name="sf-hpt",  # the run's study name: see after_render
            metric_spec={},
            parameter_spec={},
            max_trial_count=1,
            parallel_trial_count=1,
            worker_pool_specs=[],
            gcp_conn_id=settings.gcp_conn_id,
            deferrable=settings.gcp_deferrable,
            poll_interval=60,
            **kwargs,
        )
        self.sf_settings = settings

    def after_render(self, run: GcpRun) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        try:
            req = steps.tuning_request(run.ctx)
        except DataError as exc:
            raise AirflowFailException(str(exc)) from None
        body = hpt_job_body(run, self.sf_settings, req)
        self.display_name = body["display_name"]
        self.metric_spec = tuning.vertex_metric_spec(req.metric)
        self.parameter_spec = sdk_parameter_spec()
        self.max_trial_count = body["max_trial_count"]
        self.parallel_trial_count = body["parallel_trial_count"]
        self.max_failed_trial_count = body["max_failed_trial_count"]
        self.worker_pool_specs = body["trial_job_spec"]["worker_pool_specs"]
        self.base_output_dir = body["trial_job_spec"]["base_output_directory"]["output_uri_prefix"]
        self.hyperparameter_tuning_job_labels = body["labels"]
        self.custom_job_labels = body["labels"]
        self.service_account = run.cfg.service_account or None
        self.timeout = req.trial_timeout_s  # per trial's custom job

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        try:
            steps.prepare_tuning(run.ctx, run.platform)
        except DataError as exc:
            raise AirflowFailException(str(exc)) from None
        job = super().execute(context)  # defers when deferrable (execute_complete follows)
        return self._record(run, job)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        job = super().execute_complete(context, event)
        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        return self._record(run, job)

    @staticmethod
    def _record(run: GcpRun, job: dict[str, Any]) -> dict[str, Any]:
        uri = f"{run.ctx.tuning_dir}/{tuning.TRIALS_FILE}"
        steps.write_json(run.platform, uri, {**job, "platform": "vertex"})
        trials = job.get("trials") or []
        log.info("tuning job %s: %d trials, written to %s", job.get("name"), len(trials), uri)
        return {"job": job.get("name"), "trials": len(trials), "trials_uri": uri}
