"""``train``, ``backtest_and_gate`` and ``forecast`` on GCP: the trainer image as a job.

A Vertex AI custom job (deferrable ``CreateCustomJobOperator``), or with the runner
``cloud_run`` (setting ``gcp_runner`` or a run's conf ``{"runner": "cloud_run"}``) an execution
of a Cloud Run job that is created, or updated to the configured spec, first. What the job runs
is the steps' shared plan (:data:`sales_forecast.steps.TRAINER_JOBS`): the same
``python -m trainer <command>`` arguments as the local subprocess, with ``bq://`` tables and
``gs://`` run folders. After the job the same ``finish_*`` reads what it wrote.

Retries and timeouts (docs/gcp.md, "Retries and timeouts"):

* The job is planned when the task renders, in the worker, so "Rendered Template" shows the job
  that is submitted (a resumed task shows the job it deferred on).
* Before submitting, the task looks for the jobs earlier tries started for the same run and
  step (:func:`previous_job_decision`). One of this series of tries (since the last clear) with
  the same image and args is used: finished with success, its outputs are read without a new
  job; still running on Vertex AI, the task waits on it again. Any other job of this run and
  step still running is cancelled, and the task waits until it stopped: two jobs would write
  the same ``runs/<key>/`` folder.
* Exit code 2 (:data:`sf_contract.constants.USER_ERROR_EXIT`) fails the task without retries,
  as a ``DataError`` does locally; any other failure is retried.
* A deferral times out after the job's own timeout plus :data:`DEFER_MARGIN_S`.
"""

from __future__ import annotations

import logging
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
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
from sf_contract.constants import USER_ERROR_EXIT

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "CLOUD_RUN_CONTAINER",
    "DEFER_MARGIN_S",
    "TRAINER_COMMAND",
    "PreviousJob",
    "TrainerJobOperator",
    "cloud_run_env",
    "cloud_run_job_body",
    "cloud_run_job_drift",
    "cloud_run_overrides",
    "custom_job_body",
    "previous_job_decision",
    "vertex_exit_codes",
]

log = logging.getLogger(__name__)

# The trainer image's entrypoint, spelled out so the job does not depend on the Dockerfile's
# ENTRYPOINT/CMD split: the job's args are then exactly the local runner's.
TRAINER_COMMAND = ("python", "-m", "trainer")
CLOUD_RUN_CONTAINER = "trainer"
# A deferred trainer task fails (and is retried) this long after the job's own timeout: by then
# the job has ended whatever happened, so only a missing or stuck triggerer can get here.
DEFER_MARGIN_S = 30 * 60
# How long a try waits for the earlier job it cancelled to stop before it gives up (retryable).
STOP_WAIT_S = 15 * 60
# Cloud Run keeps every execution of the shared job: look at this many, newest first.
MAX_EXECUTIONS_SCANNED = 1000
# The Cloud Run override env var that carries the Airflow try (executions take no labels).
TRY_ENV = "SF_AIRFLOW_TRY"

# Vertex AI's CustomJob.error.message for a container that exited non-zero, e.g.
# "The replica workerpool0-0 exited with a non-zero status of 2. Termination reason: Error."
_VERTEX_EXIT = re.compile(r"The replica (\S+) exited with a non-zero status of (-?\d+)")

# Vertex AI JobState names -> what an earlier job means for this try.
_VERTEX_STATES = {
    "JOB_STATE_QUEUED": "running",
    "JOB_STATE_PENDING": "running",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_PAUSED": "active",  # may resume and write: cancel, never wait on it
    "JOB_STATE_CANCELLING": "stopping",
    "JOB_STATE_SUCCEEDED": "succeeded",
}
_LIVE = ("running", "active", "stopping")


def _labels(run: GcpRun, **extra: str) -> dict[str, str]:
    return {
        "app": "sales-forecast",
        "sf_run": label_value(run.run_key),
        "sf_dataset": label_value(run.contract.name),
        **{k: label_value(v) for k, v in extra.items()},
    }


def _display_name(job: TrainerJob) -> str:
    return f"sf-{job.job_name}"[:128]


def custom_job_body(run: GcpRun, job: TrainerJob, try_number: int | None = None) -> dict[str, Any]:
    """A Vertex AI ``CustomJob`` running the trainer image with the job's args.

    ``base_output_directory`` is the run folder, so Vertex sets ``AIP_MODEL_DIR`` to
    ``<run_dir>/model/`` and ``AIP_CHECKPOINT_DIR`` to ``<run_dir>/checkpoints/``: the values the
    local runner sets from ``job.env`` (the args also name the folders explicitly). The
    ``sf_try`` label (the Airflow try that submitted it) lets a retry tell its own series'
    jobs from those before a clear.
    """
    cfg = run.cfg
    job_spec: dict[str, Any] = {
        "worker_pool_specs": [
            {
                "machine_spec": {"machine_type": cfg.train_machine_type},
                "replica_count": 1,
                "disk_spec": {
                    "boot_disk_type": cfg.train_boot_disk_type,
                    "boot_disk_size_gb": cfg.train_boot_disk_size_gb,
                },
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
    extra = {"sf_task": job.command}
    if try_number is not None:
        extra["sf_try"] = str(try_number)
    return {
        "display_name": _display_name(job),
        "labels": _labels(run, **extra),
        "job_spec": job_spec,
    }


def cloud_run_env(run: GcpRun, job: TrainerJob, try_number: int | None = None) -> dict[str, str]:
    """What Vertex AI would set, set by hand: Cloud Run knows nothing about ``AIP_*``."""
    env = {
        "PYTHONUNBUFFERED": "1",
        "SF_RUN_ID": run.run_id,
        "CLOUD_ML_JOB_ID": job.job_name,
        **job.env,
    }
    if try_number is not None:
        env[TRY_ENV] = str(try_number)
    return env


def cloud_run_overrides(
    run: GcpRun, job: TrainerJob, try_number: int | None = None
) -> dict[str, Any]:
    """``RunJobRequest.overrides``: this run's args and env on the shared trainer job."""
    return {
        "container_overrides": [
            {
                "name": CLOUD_RUN_CONTAINER,
                "args": [job.command, *job.args],
                "env": [
                    {"name": k, "value": v} for k, v in cloud_run_env(run, job, try_number).items()
                ],
            }
        ],
        "task_count": 1,
        "timeout": {"seconds": run.cfg.job_timeout_s},
    }


def cloud_run_job_body(cfg: GcpConfig) -> dict[str, Any]:
    """The Cloud Run job the ``cloud_run`` runner executes, created/updated from the settings.

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


def cloud_run_job_drift(job: Any, cfg: GcpConfig) -> list[str]:
    """How an existing Cloud Run job (``run_v2.Job``) differs from the configured one.

    Every field the DAG sets is compared, so a changed CPU/memory Variable or a job created
    by hand (another container name, several containers) is brought back to the spec. The
    service account is compared only when one is configured: Cloud Run fills in the default
    account itself.
    """
    from google.cloud import run_v2

    want = run_v2.Job(cloud_run_job_body(cfg))
    have_task, want_task = job.template.template, want.template.template
    diffs: list[str] = []

    def differ(name: str, have: object, wanted: object) -> None:
        if have != wanted:
            diffs.append(f"{name}: {have!r} -> {wanted!r}")

    differ("task_count", job.template.task_count, want.template.task_count)
    differ("max_retries", have_task.max_retries, want_task.max_retries)
    differ("timeout", have_task.timeout, want_task.timeout)
    if cfg.service_account:
        differ("service_account", have_task.service_account, cfg.service_account)
    (wanted,) = want_task.containers
    containers = list(have_task.containers)
    if len(containers) != 1:
        diffs.append(f"containers: {len(containers)} -> 1")
        return diffs
    (have,) = containers
    differ("container name", have.name, wanted.name)
    differ("image", have.image, wanted.image)
    differ("command", list(have.command), list(wanted.command))
    differ("resources.limits", dict(have.resources.limits), dict(wanted.resources.limits))
    return diffs


def vertex_exit_codes(message: str) -> list[int]:
    """The replicas' exit codes in a Vertex AI job error message (empty: not an exit)."""
    return [int(code) for _, code in _VERTEX_EXIT.findall(message or "")]


@dataclass(frozen=True)
class PreviousJob:
    """A trainer job an earlier try started for the same run and step.

    ``name``: the Vertex AI custom job id or the Cloud Run execution's resource name;
    ``state``: ``running`` (can be waited on), ``active`` (must be cancelled), ``stopping``,
    ``succeeded`` or ``finished``; ``spec``: the image and the args it runs.
    """

    name: str
    state: str
    try_number: int | None
    spec: tuple[str, ...]
    created: float = 0.0


def previous_job_decision(
    previous: Iterable[PreviousJob],
    *,
    spec: tuple[str, ...],
    first_try: int,
    try_number: int,
    can_reattach: bool,
) -> tuple[PreviousJob | None, list[PreviousJob]]:
    """The earlier job that stands for this try, and the jobs to stop before going on.

    A job stands for this try only when it runs exactly this spec and was started by a try of
    this series (``first_try`` is the first try since the task was last cleared: a clear asks
    for a fresh job, e.g. after the features changed). Such a job that succeeded is used as
    it is; one still running is waited on when ``can_reattach``. Every other live job of this
    run and step is stopped: it would write the same run folder as the new one.
    """
    jobs = list(previous)
    usable = [
        p
        for p in jobs
        if p.spec == spec
        and p.try_number is not None
        and first_try <= p.try_number <= try_number
        and (p.state == "succeeded" or (can_reattach and p.state == "running"))
    ]
    use = max(usable, key=lambda p: p.created) if usable else None
    stop = [p for p in jobs if p is not use and p.state in _LIVE]
    return use, stop


def _attempt(context: Mapping[str, Any], retries: int) -> tuple[int, int]:
    """This task's try number and the first try of its series (since the last clear).

    Airflow sets ``max_tries = try_number + retries`` when it clears a task, so the series'
    first try is ``max_tries - retries + 1`` (the same rule as its reschedule lookup).
    """
    ti = context.get("ti")
    try_number = getattr(ti, "try_number", None)
    try_number = try_number if isinstance(try_number, int) and try_number > 0 else 1
    max_tries = getattr(ti, "max_tries", None)
    first = max_tries - retries + 1 if isinstance(max_tries, int) else 1
    return try_number, max(1, min(first, try_number))


def _deferred_job(context: Mapping[str, Any]) -> TrainerJob | None:
    """The job a resumed task deferred on (the task runner renders before it resumes)."""
    server = getattr(context.get("ti"), "_ti_context_from_server", None)
    if not getattr(server, "next_method", None):
        return None
    kwargs = getattr(server, "next_kwargs", None)
    if not isinstance(kwargs, dict):
        return None
    try:
        from airflow.sdk.serde import deserialize

        restored = deserialize(kwargs)
        doc = restored.get("trainer_job") if isinstance(restored, dict) else None
        return TrainerJob.from_dict(doc) if isinstance(doc, dict) else None
    except Exception:  # an older deferral's kwargs: plan again, as execute_complete does
        log.warning("could not read the deferred trainer job; planning it again", exc_info=True)
        return None


def _unwrapped(method: Callable[..., Any]) -> Callable[..., Any]:
    # Operators wrap `execute` in a guard that warns when it is not called by the task runner;
    # the delegate below *is* this task's work, so call the undecorated function.
    return getattr(method, "__wrapped__", method)


def _fail_user_error(command: str, detail: str) -> NoReturn:
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(
        f"trainer {command} rejected its input (exit {USER_ERROR_EXIT}: a mistake the caller "
        f"can fix, so no retry): {detail}"
    )


class TrainerJobOperator(RunResolvingMixin, CreateCustomJobOperator):
    """One trainer step as a Vertex AI custom job (deferrable), or on Cloud Run.

    The job is planned when the task renders in the worker (``backtest`` adds the production
    model found in the Model Registry, ``forecast`` the model the gate chose), so the rendered
    ``custom_job`` / ``cloud_run_overrides`` are what ``execute`` submits; the plan is carried
    through the deferral. See the module docstring for retries and timeouts.
    """

    template_fields = (*CreateCustomJobOperator.template_fields, "cloud_run_overrides")
    trainer_steps: ClassVar[tuple[str, ...]] = tuple(steps.TRAINER_JOBS)
    # Seconds between looks at an earlier job this try cancelled.
    stop_poll_s: ClassVar[float] = 10.0

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
            custom_job={},  # built from the run: see after_render
            gcp_conn_id=settings.gcp_conn_id,
            deferrable=settings.gcp_deferrable,
            poll_interval=30,
            **kwargs,
        )
        self.sf_settings = settings
        self.step = step
        self.cloud_run_overrides: dict[str, Any] = dict(cloud_run_overrides or {})
        self._job: TrainerJob | None = None
        self._resuming: TrainerJob | None = None
        self._try: tuple[int, int] = (1, 1)

    # -- the plan, at render time
    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        self._try = _attempt(context, int(self.retries or 0))
        self._resuming = _deferred_job(context)
        super().render_template_fields(context, jinja_env)

    def after_render(self, run: GcpRun) -> None:
        job = self._resuming if self._resuming is not None else self._plan(run)
        self._job = job
        self._set_bodies(run, job)

    def _plan(self, run: GcpRun) -> TrainerJob:
        from airflow.sdk.exceptions import AirflowFailException

        plan, _ = steps.TRAINER_JOBS[self.step]
        try:
            return plan(run.ctx, run.platform, self.sf_settings)
        except DataError as exc:
            raise AirflowFailException(str(exc)) from None

    def _set_bodies(self, run: GcpRun, job: TrainerJob) -> None:
        try_number = self._try[0]
        self.custom_job = custom_job_body(run, job, try_number)
        self.cloud_run_overrides = cloud_run_overrides(run, job, try_number)

    @property
    def _spec_args(self) -> list[str]:
        return list(self.custom_job["job_spec"]["worker_pool_specs"][0]["container_spec"]["args"])

    def _log_submitted(self, where: str, job: TrainerJob) -> None:
        log.info("trainer %s %s: %s", job.command, where, shlex.join(self._spec_args))

    # -- Vertex AI
    def execute(self, context: Context) -> Any:
        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        job = self._job if self._job is not None else self._plan(run)
        self._job = job
        self._set_bodies(run, job)
        if run.cfg.runner == "cloud_run":
            return self._execute_cloud_run(context, run, job)
        use = self._settle_previous_vertex_jobs(run, job)
        if use is not None and use.state == "succeeded":
            log.info("custom job %s of an earlier try already did this: reading it", use.name)
            return self._finish(run, job)
        if use is not None:
            return self._reattach_vertex(context, run, job, use.name)
        self._log_submitted("as a Vertex AI custom job", job)
        log.info("custom job: %s", self.custom_job)
        try:
            super().execute(context)
        except RuntimeError as exc:  # sync mode: the job failed
            self._raise_if_user_error(job.command, str(exc))
            raise
        return self._finish(run, job)

    def _vertex_previous(self, run: GcpRun, job: TrainerJob) -> list[PreviousJob]:
        name = _display_name(job)
        found = self.hook.list_custom_jobs(
            project_id=run.cfg.project,
            region=run.cfg.region,
            page_size=100,
            page_token=None,
            filter=f'display_name="{name}" AND labels.sf_run="{label_value(run.run_key)}"',
            read_mask=None,
        )
        previous = []
        for custom_job in found:
            pools = list(custom_job.job_spec.worker_pool_specs)
            if not pools:
                continue
            container = pools[0].container_spec
            env = {e.name: e.value for e in container.env}
            if env.get("SF_RUN_ID") != run.run_id:  # a label collision of a long run id
                continue
            tried = dict(custom_job.labels).get("sf_try", "")
            created: Any = custom_job.create_time  # proto-plus: a datetime (or None)
            previous.append(
                PreviousJob(
                    name=str(custom_job.name).rpartition("/")[-1],
                    state=_VERTEX_STATES.get(custom_job.state.name, "finished"),
                    try_number=int(tried) if tried.isdigit() else None,
                    spec=(str(container.image_uri), *container.args),
                    created=created.timestamp() if created else 0.0,
                )
            )
        return previous

    def _settle_previous_vertex_jobs(self, run: GcpRun, job: TrainerJob) -> PreviousJob | None:
        try_number, first_try = self._try
        use, stop = previous_job_decision(
            self._vertex_previous(run, job),
            spec=(run.cfg.trainer_image, *self._spec_args),
            first_try=first_try,
            try_number=try_number,
            can_reattach=True,
        )
        where = {"project_id": run.cfg.project, "region": run.cfg.region}
        for p in stop:
            if p.state != "stopping":
                log.warning("cancelling custom job %s of an earlier try (%s)", p.name, p.state)
                self.hook.cancel_custom_job(custom_job=p.name, **where)

        def stopped(name: str) -> bool:
            state = self.hook.get_custom_job(custom_job=name, **where).state.name
            return _VERTEX_STATES.get(state, "finished") not in _LIVE

        self._wait_stopped([p.name for p in stop], stopped)
        return use

    def _wait_stopped(self, names: list[str], stopped: Callable[[str], bool]) -> None:
        from airflow.sdk.exceptions import AirflowException

        deadline = time.monotonic() + STOP_WAIT_S
        waiting = list(names)
        while waiting:
            waiting = [n for n in waiting if not stopped(n)]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise AirflowException(
                    f"earlier trainer jobs still running after cancelling them: {waiting}; "
                    "a new job would write the same run folder"
                )
            time.sleep(self.stop_poll_s)

    def _reattach_vertex(
        self, context: Context, run: GcpRun, job: TrainerJob, custom_job_id: str
    ) -> Any:
        from airflow.providers.google.cloud.links.vertex_ai import VertexAICustomJobLink
        from airflow.providers.google.cloud.triggers.vertex_ai import CustomJobTrigger

        log.info(
            "custom job %s of an earlier try still runs this job: waiting on it", custom_job_id
        )
        self.custom_job_id = custom_job_id
        context["ti"].xcom_push(key="custom_job_id", value=custom_job_id)
        VertexAICustomJobLink.persist(context=context, custom_job_id=custom_job_id)
        if self.deferrable:
            self.defer(
                trigger=CustomJobTrigger(
                    gcp_conn_id=self.gcp_conn_id,
                    project_id=run.cfg.project,
                    location=run.cfg.region,
                    custom_job_id=custom_job_id,
                    poll_interval=self.poll_interval,
                    impersonation_chain=self.impersonation_chain,
                ),
                method_name="execute_complete",
            )
        try:
            self.hook.wait_for_custom_job(
                project_id=run.cfg.project,
                region=run.cfg.region,
                custom_job_id=custom_job_id,
                poll_interval=self.poll_interval,
            )
        except RuntimeError as exc:
            self._raise_if_user_error(job.command, str(exc))
            raise
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
        if timeout is None:
            # The providers defer without a timeout: without a triggerer the task would stay
            # deferred forever. The job itself stops at trainer_timeout_s.
            timeout = timedelta(seconds=self.sf_settings.trainer_timeout_s + DEFER_MARGIN_S)
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def _resumed_job(self, run: GcpRun, trainer_job: dict[str, Any] | None) -> TrainerJob:
        if trainer_job:
            return TrainerJob.from_dict(trainer_job)
        return self._plan(run)

    def execute_complete(
        self, context: Context, event: dict[str, Any], trainer_job: dict[str, Any] | None = None
    ) -> Any:
        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        if event.get("status") == "error":
            self._raise_if_user_error(self._command(trainer_job), str(event.get("message", "")))
        super().execute_complete(context, event)
        return self._finish(run, self._resumed_job(run, trainer_job))

    def _command(self, trainer_job: dict[str, Any] | None) -> str:
        if trainer_job and trainer_job.get("command"):
            return str(trainer_job["command"])
        return self._job.command if self._job is not None else self.step

    def _raise_if_user_error(self, command: str, message: str) -> None:
        codes = vertex_exit_codes(message)
        if codes and all(code == USER_ERROR_EXIT for code in codes):
            _fail_user_error(command, message)

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

    def _cloud_run_clients(self) -> tuple[Any, Any]:
        """Cloud Run's executions and tasks clients (the provider's hook has neither)."""
        from airflow.providers.google.cloud.hooks.cloud_run import CloudRunHook
        from airflow.providers.google.common.consts import CLIENT_INFO
        from google.cloud import run_v2

        hook = CloudRunHook(gcp_conn_id=self.gcp_conn_id)
        credentials, options = hook.get_credentials(), hook.get_client_options()
        return (
            run_v2.ExecutionsClient(
                credentials=credentials, client_info=CLIENT_INFO, client_options=options
            ),
            run_v2.TasksClient(
                credentials=credentials, client_info=CLIENT_INFO, client_options=options
            ),
        )

    def _job_path(self, run: GcpRun) -> str:
        cfg = run.cfg
        return f"projects/{cfg.project}/locations/{cfg.region}/jobs/{cfg.cloud_run_job}"

    def _execute_cloud_run(self, context: Context, run: GcpRun, job: TrainerJob) -> Any:
        from airflow.sdk.exceptions import AirflowException, TaskDeferred

        self._ensure_cloud_run_job(run)
        use = self._settle_previous_executions(run, job)
        if use is not None:
            log.info("execution %s of an earlier try already did this: reading it", use.name)
            return self._finish(run, job)
        delegate = self._cloud_run_operator(run)
        self._log_submitted(f"on Cloud Run job {run.cfg.cloud_run_job}", job)
        log.info("overrides: %s", self.cloud_run_overrides)
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
        except AirflowException:  # sync mode: the execution failed
            metadata = getattr(delegate.operation, "metadata", None)
            self._raise_if_cloud_run_user_error(
                job.command, str(getattr(metadata, "name", "") or "")
            )
            raise
        return self._finish(run, job)

    def execute_complete_cloud_run(
        self, context: Context, event: dict[str, Any], trainer_job: dict[str, Any] | None = None
    ) -> Any:
        from airflow.providers.google.cloud.triggers.cloud_run import RunJobStatus

        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        if event.get("status") == RunJobStatus.FAIL.value and event.get("execution_name"):
            execution = f"{self._job_path(run)}/executions/{event['execution_name']}"
            self._raise_if_cloud_run_user_error(self._command(trainer_job), execution)
        self._cloud_run_operator(run).execute_complete(context, event)
        return self._finish(run, self._resumed_job(run, trainer_job))

    def _raise_if_cloud_run_user_error(self, command: str, execution: str) -> None:
        """Fail without retries when the execution's trainer exited with code 2.

        Cloud Run reports only "Task ... failed with message: The container exited with an
        error." on the execution; the exit code is on its task's last attempt.
        """
        if not execution:
            return
        try:
            _, tasks = self._cloud_run_clients()
            results = [t.last_attempt_result for t in tasks.list_tasks(parent=execution)]
        except Exception:  # the failure stays a retryable one
            log.warning("could not read the exit code of %s", execution, exc_info=True)
            return
        failed = [r for r in results if r.status.code != 0 or r.exit_code != 0]
        if failed and all(r.exit_code == USER_ERROR_EXIT for r in failed):
            detail = "; ".join(r.status.message for r in failed if r.status.message)
            _fail_user_error(command, f"execution {execution}: {detail or 'exit code 2'}")

    def _cloud_run_previous(self, executions: Any, run: GcpRun, job: TrainerJob) -> list[Any]:
        import itertools

        mine = []
        found = executions.list_executions(
            request={"parent": self._job_path(run), "page_size": 100}
        )
        for execution in itertools.islice(found, MAX_EXECUTIONS_SCANNED):
            # Overrides are applied to the execution's template: its env is this run's.
            containers = [
                c for c in execution.template.containers if c.name == CLOUD_RUN_CONTAINER
            ] or list(execution.template.containers)
            if not containers:
                continue
            env = {e.name: e.value for e in containers[0].env}
            if env.get("SF_RUN_ID") != run.run_id or env.get("CLOUD_ML_JOB_ID") != job.job_name:
                continue
            mine.append((execution, containers[0], env))
        return mine

    def _settle_previous_executions(self, run: GcpRun, job: TrainerJob) -> PreviousJob | None:
        """Use, or stop, what earlier tries ran on Cloud Run for this run and step.

        A running execution is cancelled, never waited on: the provider's trigger follows the
        run operation, which cannot be found again from an execution.
        """
        from google.api_core.exceptions import FailedPrecondition, NotFound

        executions, _ = self._cloud_run_clients()
        previous = []
        for execution, container, env in self._cloud_run_previous(executions, run, job):
            done = execution.completion_time is not None
            ok = done and (
                execution.succeeded_count == execution.task_count
                and not execution.failed_count
                and not execution.cancelled_count
            )
            tried = env.get(TRY_ENV, "")
            created: Any = execution.create_time
            previous.append(
                PreviousJob(
                    name=execution.name,
                    state="succeeded" if ok else "finished" if done else "active",
                    try_number=int(tried) if tried.isdigit() else None,
                    spec=(str(container.image), *container.args),
                    created=created.timestamp() if created else 0.0,
                )
            )
        try_number, first_try = self._try
        overrides = self.cloud_run_overrides["container_overrides"][0]
        use, stop = previous_job_decision(
            previous,
            spec=(run.cfg.trainer_image, *overrides["args"]),
            first_try=first_try,
            try_number=try_number,
            can_reattach=False,
        )
        for p in stop:
            log.warning("cancelling Cloud Run execution %s of an earlier try", p.name)
            try:
                executions.cancel_execution(name=p.name)
            except (FailedPrecondition, NotFound):  # finishing or gone already
                pass

        def stopped(name: str) -> bool:
            try:
                return executions.get_execution(name=name).completion_time is not None
            except NotFound:
                return True

        self._wait_stopped([p.name for p in stop], stopped)
        return use

    def _ensure_cloud_run_job(self, run: GcpRun) -> None:
        """Create the Cloud Run job, or update it when any field the DAG sets differs."""
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
        drift = cloud_run_job_drift(job, cfg)
        if drift:
            log.info("updating Cloud Run job %s: %s", cfg.cloud_run_job, "; ".join(drift))
            hook.update_job(job=body, **where)
