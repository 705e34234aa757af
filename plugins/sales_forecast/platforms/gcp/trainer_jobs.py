"""``train``, ``backtest_and_gate`` and ``forecast`` on GCP: the trainer image as a job.

A Vertex AI custom job (deferrable ``CreateCustomJobOperator``), or with the runner
``cloud_run`` (setting ``gcp_runner`` or a run's conf ``{"runner": "cloud_run"}``) an execution
of a Cloud Run job that is created, or updated to the configured trainer image, first. What the
job runs is the steps' shared plan (:data:`sales_forecast.steps.TRAINER_JOBS`): the same
``python -m trainer <command>`` arguments as the local subprocess, with ``bq://`` tables and
``gs://`` run folders. After the job the same ``finish_*`` reads what it wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.providers.google.cloud.operators.cloud_run import CloudRunExecuteJobOperator
from airflow.providers.google.cloud.operators.vertex_ai.custom_job import CreateCustomJobOperator

from sales_forecast import steps
from sales_forecast.config import Settings
from sales_forecast.errors import DataError
from sales_forecast.platforms.gcp.config import GcpConfig
from sales_forecast.platforms.gcp.run import GcpRun, RunResolvingMixin
from sales_forecast.platforms.gcp.storage import label_value
from sales_forecast.steps import TrainerJob

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "CLOUD_RUN_CONTAINER",
    "TRAINER_COMMAND",
    "TrainerJobOperator",
    "cloud_run_env",
    "cloud_run_job_body",
    "cloud_run_overrides",
    "custom_job_body",
]

log = logging.getLogger(__name__)

# The trainer image's entrypoint, spelled out so the job does not depend on the Dockerfile's
# ENTRYPOINT/CMD split: the job's args are then exactly the local runner's.
TRAINER_COMMAND = ("python", "-m", "trainer")
CLOUD_RUN_CONTAINER = "trainer"


def _labels(run: GcpRun, **extra: str) -> dict[str, str]:
    return {
        "app": "sales-forecast",
        "sf_run": label_value(run.run_key),
        "sf_dataset": label_value(run.contract.name),
        **{k: label_value(v) for k, v in extra.items()},
    }


def custom_job_body(run: GcpRun, job: TrainerJob) -> dict[str, Any]:
    """A Vertex AI ``CustomJob`` running the trainer image with the job's args.

    ``base_output_directory`` is the run folder, so Vertex sets ``AIP_MODEL_DIR`` to
    ``<run_dir>/model/`` and ``AIP_CHECKPOINT_DIR`` to ``<run_dir>/checkpoints/``: the values the
    local runner sets from ``job.env`` (the args also name the folders explicitly).
    """
    cfg = run.cfg
    job_spec: dict[str, Any] = {
        "worker_pool_specs": [
            {
                "machine_spec": {"machine_type": cfg.train_machine_type},
                "replica_count": 1,
                "disk_spec": {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": 100},
                "container_spec": {
                    "image_uri": cfg.trainer_image,
                    "command": list(TRAINER_COMMAND),
                    "args": [job.command, *job.args],
                    "env": [
                        {"name": "PYTHONUNBUFFERED", "value": "1"},
                        {"name": "SF_RUN_ID", "value": run.run_id},
                    ],
                },
            }
        ],
        "base_output_directory": {"output_uri_prefix": run.run_dir},
        "scheduling": {"timeout": {"seconds": cfg.job_timeout_s}},
    }
    if cfg.service_account:
        job_spec["service_account"] = cfg.service_account
    return {
        "display_name": f"sf-{job.job_name}"[:128],
        "labels": _labels(run, sf_task=job.command),
        "job_spec": job_spec,
    }


def cloud_run_env(run: GcpRun, job: TrainerJob) -> dict[str, str]:
    """What Vertex AI would set, set by hand: Cloud Run knows nothing about ``AIP_*``."""
    return {
        "PYTHONUNBUFFERED": "1",
        "SF_RUN_ID": run.run_id,
        "CLOUD_ML_JOB_ID": job.job_name,
        **job.env,
    }


def cloud_run_overrides(run: GcpRun, job: TrainerJob) -> dict[str, Any]:
    """``RunJobRequest.overrides``: this run's args and env on the shared trainer job."""
    return {
        "container_overrides": [
            {
                "name": CLOUD_RUN_CONTAINER,
                "args": [job.command, *job.args],
                "env": [{"name": k, "value": v} for k, v in cloud_run_env(run, job).items()],
            }
        ],
        "task_count": 1,
        "timeout": {"seconds": run.cfg.job_timeout_s},
    }


def cloud_run_job_body(cfg: GcpConfig) -> dict[str, Any]:
    """The Cloud Run job the ``cloud_run`` runner executes, created/updated from the trainer image.

    One job serves train, backtest and forecast: each execution overrides the args.
    """
    task: dict[str, Any] = {
        "containers": [
            {
                "name": CLOUD_RUN_CONTAINER,
                "image": cfg.trainer_image,
                "command": list(TRAINER_COMMAND),
                "resources": {"limits": {"cpu": cfg.cloud_run_cpu, "memory": cfg.cloud_run_memory}},
            }
        ],
        # A failed trainer run is retried by Airflow (which also re-reads its inputs), not here.
        "max_retries": 0,
        "timeout": {"seconds": cfg.job_timeout_s},
    }
    if cfg.service_account:
        task["service_account"] = cfg.service_account
    return {
        "labels": {"app": "sales-forecast"},
        "template": {"task_count": 1, "template": task},
    }


def _unwrapped(method: Callable[..., Any]) -> Callable[..., Any]:
    # Operators wrap `execute` in a guard that warns when it is not called by the task runner;
    # the delegate below *is* this task's work, so call the undecorated function.
    return getattr(method, "__wrapped__", method)


class TrainerJobOperator(RunResolvingMixin, CreateCustomJobOperator):
    """One trainer step as a Vertex AI custom job (deferrable), or on Cloud Run.

    The rendered view shows the step's job before its lookups (``steps.preview_job``);
    ``execute`` plans the real one (``backtest`` adds the production model found in the Model
    Registry, ``forecast`` the model the gate chose) and carries it through the deferral.
    """

    template_fields = (*CreateCustomJobOperator.template_fields, "cloud_run_overrides")
    trainer_steps: ClassVar[tuple[str, ...]] = tuple(steps.TRAINER_JOBS)

    def __init__(
        self,
        *,
        settings: Settings,
        step: str,
        cloud_run_overrides: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if step not in self.trainer_steps:
            raise ValueError(f"step must be one of {self.trainer_steps}")
        super().__init__(
            project_id="{{ sf.cfg.project }}",
            region="{{ sf.cfg.region }}",
            custom_job={},  # built from the run: see after_render / execute
            gcp_conn_id=settings.gcp_conn_id,
            deferrable=settings.gcp_deferrable,
            poll_interval=30,
            **kwargs,
        )
        self.sf_settings = settings
        self.step = step
        self.cloud_run_overrides: dict[str, Any] = dict(cloud_run_overrides or {})
        self._job: TrainerJob | None = None

    def _set_bodies(self, run: GcpRun, job: TrainerJob) -> None:
        self.custom_job = custom_job_body(run, job)
        self.cloud_run_overrides = cloud_run_overrides(run, job)

    def after_render(self, run: GcpRun) -> None:
        paths = steps.trainer_paths(run.ctx, run.platform)
        self._set_bodies(run, steps.preview_job(self.step, run.ctx, paths, self.sf_settings))

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        plan, _ = steps.TRAINER_JOBS[self.step]
        try:
            job = plan(run.ctx, run.platform, self.sf_settings)
        except DataError as exc:
            raise AirflowFailException(str(exc)) from None
        self._job = job
        self._set_bodies(run, job)
        if run.cfg.runner == "cloud_run":
            return self._execute_cloud_run(context, run, job)
        log.info("trainer %s args: %s", job.command, self.custom_job["job_spec"])
        super().execute(context)
        return self._finish(run, job)

    def defer(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: Any = None,
    ) -> NoReturn:
        # The planned job (the champion and the model the gate chose) must survive the
        # deferral: the task resumes in a new process, after the registry may have moved.
        if self._job is not None:
            kwargs = {**(kwargs or {}), "trainer_job": self._job.to_dict()}
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def _resumed_job(self, run: GcpRun, trainer_job: dict[str, Any] | None) -> TrainerJob:
        if trainer_job:
            return TrainerJob.from_dict(trainer_job)
        plan, _ = steps.TRAINER_JOBS[self.step]
        return plan(run.ctx, run.platform, self.sf_settings)

    def execute_complete(
        self, context: Context, event: dict[str, Any], trainer_job: dict[str, Any] | None = None
    ) -> Any:
        super().execute_complete(context, event)
        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        return self._finish(run, self._resumed_job(run, trainer_job))

    def _finish(self, run: GcpRun, job: TrainerJob) -> dict[str, Any]:
        _, finish = steps.TRAINER_JOBS[self.step]
        return finish(run.ctx, run.platform, job)

    # -- Cloud Run
    def _cloud_run_operator(self, run: GcpRun) -> CloudRunExecuteJobOperator:
        return CloudRunExecuteJobOperator(
            task_id=f"{self.task_id}__cloud_run",
            project_id=run.cfg.project,
            region=run.cfg.region,
            job_name=run.cfg.cloud_run_job,
            overrides=self.cloud_run_overrides,
            gcp_conn_id=self.gcp_conn_id,
            deferrable=self.deferrable,
            polling_period_seconds=30,
            timeout_seconds=run.cfg.job_timeout_s,
        )

    def _execute_cloud_run(self, context: Context, run: GcpRun, job: TrainerJob) -> Any:
        from airflow.sdk.exceptions import TaskDeferred

        self._ensure_cloud_run_job(run)
        delegate = self._cloud_run_operator(run)
        log.info(
            "trainer %s on Cloud Run job %s: %s",
            job.command,
            run.cfg.cloud_run_job,
            self.cloud_run_overrides,
        )
        try:
            _unwrapped(CloudRunExecuteJobOperator.execute)(delegate, context)
        except TaskDeferred as deferred:
            # The delegate deferred to its own method; resume in this operator instead.
            self.defer(
                trigger=deferred.trigger,
                method_name="execute_complete_cloud_run",
                kwargs=deferred.kwargs,
                timeout=deferred.timeout,
            )
        return self._finish(run, job)

    def execute_complete_cloud_run(
        self, context: Context, event: dict[str, Any], trainer_job: dict[str, Any] | None = None
    ) -> Any:
        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        self._cloud_run_operator(run).execute_complete(context, event)
        return self._finish(run, self._resumed_job(run, trainer_job))

    def _ensure_cloud_run_job(self, run: GcpRun) -> None:
        """Create the Cloud Run job from the trainer image, or update it to the configured one."""
        from airflow.providers.google.cloud.hooks.cloud_run import CloudRunHook
        from google.api_core.exceptions import AlreadyExists, NotFound

        hook = CloudRunHook(gcp_conn_id=self.gcp_conn_id)
        cfg = run.cfg
        body = cloud_run_job_body(cfg)
        where = {"job_name": cfg.cloud_run_job, "region": cfg.region, "project_id": cfg.project}
        try:
            job = hook.get_job(**where)
        except NotFound:
            log.info("creating Cloud Run job %s from %s", cfg.cloud_run_job, cfg.trainer_image)
            try:
                hook.create_job(job=body, **where)
            except AlreadyExists:  # another run created it a moment ago
                pass
            return
        containers = list(job.template.template.containers)
        image = containers[0].image if containers else None
        account = job.template.template.service_account
        if image != cfg.trainer_image or (cfg.service_account and account != cfg.service_account):
            log.info(
                "updating Cloud Run job %s: image %s -> %s",
                cfg.cloud_run_job,
                image,
                cfg.trainer_image,
            )
            hook.update_job(job=body, **where)
