"""The daily DAG's tasks on GCP: Google provider operators, subclassed where they must be.

Imported only by :func:`sales_forecast.platforms.gcp_tasks.build_gcp_tasks`, i.e. only when
``SF_PLATFORM=gcp`` (the provider pulls in the Vertex AI SDK).

Why subclasses: every GCP value (project, bucket, images, ...) and every per-run value (run id,
cutoff, URIs, the contract chosen by the ``dataset`` param) is known only when the task runs.
:class:`_SfRunMixin` resolves them when the task renders its templates and exposes them as
``sf`` (a :class:`~sales_forecast.platforms.gcp.GcpRun`), so templated fields read
``{{ sf.cfg.project }}``. Fields the operators do not template, or whose shape depends on the run
(the custom job's container ``args``, worker pool specs, ``schema_fields``, the model body), are
built from ``sf`` right after rendering, or in ``execute`` when they need a lookup (champion
model, gate). ``location``/``project_id`` are added to ``template_fields`` where the provider
leaves them out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from typing import Any, ClassVar

from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator
from airflow.providers.google.cloud.operators.cloud_run import CloudRunExecuteJobOperator
from airflow.providers.google.cloud.operators.vertex_ai.custom_job import CreateCustomJobOperator
from airflow.providers.google.cloud.operators.vertex_ai.endpoint_service import (
    DeployModelOperator,
)
from airflow.providers.google.cloud.operators.vertex_ai.model_service import UploadModelOperator
from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    TaskDeferred,
)

from sales_forecast import steps
from sales_forecast.config import Settings
from sales_forecast.contract import ContractError, load_contract
from sales_forecast.platforms import gcp
from sales_forecast.platforms.gcp import GcpRun

__all__ = [
    "SfBigQuerySqlOperator",
    "SfDeployModelOperator",
    "SfGcsToBigQueryOperator",
    "SfTrainerJobOperator",
    "SfUploadModelOperator",
    "resolve_run",
]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the run, resolved at run time


def resolve_run(task: Any, context: Any, jinja_env: Any, settings: Settings) -> GcpRun:
    """Config, run context and contract for this task run, rendered with the task's templates.

    Mirrors ``dag_factory.run_step``: string params are rendered once more (an ``input_uri``
    like ``gs://bucket/drops/{{ ds }}/sales.csv``), then ``steps.make_run_context`` applies the
    same date/cutoff/param rules as the local platform.
    """
    dag_run = context["dag_run"]
    when = context.get("logical_date") or dag_run.run_after
    tctx = dict(context)
    tctx.setdefault("ds", when.strftime("%Y-%m-%d"))
    tctx.setdefault("ds_nodash", when.strftime("%Y%m%d"))

    def render(value: Any) -> Any:
        if not isinstance(value, str) or "{" not in value:
            return value
        return task.render_template(value, tctx, jinja_env)

    params = {k: render(v) for k, v in dict(context["params"]).items()}
    runner = params.get("runner") or (getattr(dag_run, "conf", None) or {}).get("runner")
    cfg = gcp.resolve_config(settings, render, runner=runner)
    ctx = steps.make_run_context(
        run_id=dag_run.run_id,
        logical_date=when,
        params=params,
        settings=settings,
        runs_root=f"gs://{cfg.bucket}/runs",
    )
    try:
        contract = load_contract(ctx.dataset)
    except ContractError as exc:
        raise steps.DataError(str(exc)) from None
    # Each contract gets its own tables and parent model, exactly as on the local platform.
    suffix = settings.namespace(contract.name)
    if suffix:
        cfg = dataclasses.replace(
            cfg,
            bq_dataset=cfg.bq_dataset + suffix,
            model_name=cfg.model_name + suffix,
            endpoint_display_name=cfg.endpoint_display_name + suffix,
        )
    return GcpRun(cfg=cfg, ctx=ctx, contract=contract, settings=settings)


class _SfRunMixin:
    """Resolve ``sf`` before the operator's own templates render; build run-shaped fields after.

    A bad param or a missing setting fails the task without retries, like a ``DataError``
    locally: retrying does not fix configuration.
    """

    sf_settings: Settings

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        if jinja_env is None:
            jinja_env = self.get_template_env()  # type: ignore[attr-defined]
        try:
            run = resolve_run(self, context, jinja_env, self.sf_settings)
        except (steps.DataError, gcp.ConfigError) as exc:
            raise AirflowFailException(str(exc)) from None
        context["sf"] = run
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        self.sf_after_render(run)

    def sf_after_render(self, run: GcpRun) -> None:
        """Fill the fields whose shape depends on the run (see the subclasses)."""


# ---------------------------------------------------------------- small GCS / BigQuery helpers


def _gcs(conn_id: str) -> GCSHook:
    return GCSHook(gcp_conn_id=conn_id)


def _read_json(hook: GCSHook, uri: str) -> Any:
    from google.api_core.exceptions import NotFound

    bucket, name = gcp.split_gs_uri(uri)
    try:
        return json.loads(hook.download(bucket_name=bucket, object_name=name))
    except NotFound:
        raise FileNotFoundError(f"{uri} not found") from None


def _write_json(hook: GCSHook, uri: str, data: Any) -> None:
    bucket, name = gcp.split_gs_uri(uri)
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    hook.upload(bucket_name=bucket, object_name=name, data=text, mime_type="application/json")


def _gcs_exists(hook: GCSHook, uri: str) -> bool:
    bucket, name = gcp.split_gs_uri(uri)
    return hook.exists(bucket_name=bucket, object_name=name)


def _bq_hook(conn_id: str, run: GcpRun) -> BigQueryHook:
    return BigQueryHook(gcp_conn_id=conn_id, location=run.cfg.bq_location, use_legacy_sql=False)


def _query_config(sql: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    query: dict[str, Any] = {"query": sql, "useLegacySql": False}
    qp = gcp.query_parameters(sql, params or {})
    if qp:
        query["parameterMode"] = "NAMED"
        query["queryParameters"] = qp
    return {"query": query}


def _query(hook: BigQueryHook, run: GcpRun, sql: str, **params: Any) -> list[dict[str, Any]]:
    """A small read query (the checks after a SQL step); rows as dicts."""
    from google.cloud import bigquery

    client = hook.get_client(project_id=run.cfg.project, location=run.cfg.bq_location)
    job_config = bigquery.QueryJobConfig.from_api_repr(_query_config(sql, params))
    return [dict(row.items()) for row in client.query(sql, job_config=job_config).result()]


def _run_statements(hook: BigQueryHook, run: GcpRun, sql: str, **params: Any) -> None:
    for stmt in gcp.split_statements_verbatim(sql):
        hook.insert_job(
            configuration=_query_config(stmt, params),
            project_id=run.cfg.project,
            location=run.cfg.bq_location,
        )


def _unwrapped(method: Any) -> Any:
    # Operators wrap `execute` in a guard that warns when it is not called by the task runner;
    # the delegate below *is* this task's work, so call the undecorated function.
    return getattr(method, "__wrapped__", method)


# ---------------------------------------------------------------- load_to_staging


class SfGcsToBigQueryOperator(_SfRunMixin, GCSToBigQueryOperator):
    """CSV in GCS -> the all-STRING ``staging`` table, after the same checks as locally.

    Before the load job: the header is checked against the contract (a positional load would
    silently put reordered columns in the wrong place), the file is re-written next to the run
    with each record's line number and source in front and the columns in the contract's order
    (BigQuery cannot number lines; validate.sql reports them), malformed lines go to
    ``staging_malformed``, the dataset and the accumulating tables are created if missing, and
    the contract is written where the trainer reads it.
    """

    template_fields = (*GCSToBigQueryOperator.template_fields, "project_id", "location")

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            bucket="{{ sf.cfg.bucket }}",
            source_objects=["{{ sf.staging_object }}"],
            destination_project_dataset_table="{{ sf.table_id('staging') }}",
            project_id="{{ sf.cfg.project }}",
            location="{{ sf.cfg.bq_location }}",
            schema_fields=None,  # the run's contract decides: see sf_after_render
            source_format="CSV",
            skip_leading_rows=1,
            write_disposition="WRITE_TRUNCATE",
            create_disposition="CREATE_IF_NEEDED",
            autodetect=False,
            allow_quoted_newlines=True,
            field_delimiter=",",
            quote_character='"',
            encoding="UTF-8",
            max_bad_records=0,  # the re-written file is well-formed; any bad record is a bug
            gcp_conn_id=settings.gcp_conn_id,
            deferrable=False,  # a load of a daily file takes seconds
            **kwargs,
        )
        self.sf_settings = settings

    def sf_after_render(self, run: GcpRun) -> None:
        self.schema_fields = gcp.staging_schema_fields(run.contract)

    def execute(self, context: Any) -> dict[str, Any]:
        run: GcpRun = context["sf"]
        gcs = _gcs(self.gcp_conn_id)
        if not gcs.get_conn().bucket(run.cfg.bucket).exists():
            raise AirflowFailException(
                f"bucket gs://{run.cfg.bucket} not found: create it (docs/gcp.md) or fix the "
                "Airflow Variable sf_gcp_bucket"
            )
        contract = run.contract
        _write_json(gcs, run.contract_uri, contract.to_trainer_json())
        _write_json(gcs, f"{run.run_dir}/run.json", run.ctx.to_dict())
        try:
            numbered = self._stage_file(gcs, run)
        except steps.DataError as exc:
            raise AirflowFailException(str(exc)) from None

        bq = _bq_hook(self.gcp_conn_id, run)
        bq.create_empty_dataset(
            dataset_id=run.cfg.bq_dataset,
            project_id=run.cfg.project,
            location=run.cfg.bq_location,
            exists_ok=True,
        )
        _run_statements(bq, run, run.sql("create_tables"))
        self._replace_malformed(gcs, bq, run, numbered.malformed)
        super().execute(context)
        self.log.info(
            "loaded %s rows from %s into %s (%s malformed lines set aside)",
            numbered.rows,
            run.input_uri,
            run.table_id("staging"),
            len(numbered.malformed),
        )
        return {
            "table": run.table_id("staging"),
            "rows": numbered.rows,
            "malformed": len(numbered.malformed),
            "input_uri": run.input_uri,
        }

    def _stage_file(self, gcs: GCSHook, run: GcpRun) -> gcp.NumberedCsv:
        bucket, name = gcp.split_gs_uri(run.input_uri)
        if not gcs.exists(bucket_name=bucket, object_name=name):
            raise steps.DataError(f"{run.input_uri}: input file not found")
        with tempfile.TemporaryDirectory(prefix="sf-load-") as tmp:
            src, dst = os.path.join(tmp, "input.csv"), os.path.join(tmp, "numbered.csv")
            gcs.download(bucket_name=bucket, object_name=name, filename=src)
            try:
                header = steps.read_csv_header(src)
            except steps.DataError as exc:  # same checks and words as locally, about the gs:// URI
                raise steps.DataError(str(exc).replace(src, run.input_uri)) from None
            steps.check_header(header, run.contract, run.input_uri)
            with (
                open(src, encoding="utf-8-sig", errors="replace", newline="") as fin,
                open(dst, "w", encoding="utf-8", newline="") as fout,
            ):
                numbered = gcp.number_csv(
                    fin, fout, header=header, contract=run.contract, source_uri=run.input_uri
                )
            gcs.upload(
                bucket_name=run.cfg.bucket,
                object_name=run.staging_object,
                filename=dst,
                mime_type="text/csv",
            )
        return numbered

    def _replace_malformed(
        self, gcs: GCSHook, bq: BigQueryHook, run: GcpRun, malformed: list[dict[str, Any]]
    ) -> None:
        table = run.table_id("staging_malformed")
        if not malformed:
            bq.insert_job(
                configuration=_query_config(f"TRUNCATE TABLE `{table}`"),
                project_id=run.cfg.project,
                location=run.cfg.bq_location,
            )
            return
        bucket, name = gcp.split_gs_uri(run.malformed_uri)
        data = "".join(json.dumps(m) + "\n" for m in malformed)
        gcs.upload(bucket_name=bucket, object_name=name, data=data, mime_type="application/json")
        project, dataset, table_name = table.split(".")
        bq.insert_job(
            configuration={
                "load": {
                    "sourceUris": [run.malformed_uri],
                    "sourceFormat": "NEWLINE_DELIMITED_JSON",
                    "destinationTable": {
                        "projectId": project,
                        "datasetId": dataset,
                        "tableId": table_name,
                    },
                    "schema": {"fields": gcp.MALFORMED_SCHEMA},
                    "writeDisposition": "WRITE_TRUNCATE",
                    "createDisposition": "CREATE_IF_NEEDED",
                }
            },
            project_id=run.cfg.project,
            location=run.cfg.bq_location,
        )


# ---------------------------------------------------------------- validate, build_features


class SfBigQuerySqlOperator(_SfRunMixin, BigQueryInsertJobOperator):
    """Runs the pipeline's .sql files (rendered for the run's contract), then checks the result.

    Each statement of the scripts is its own query job, in order, with only the ``@params`` it
    uses. Why not one multi-statement script job: BigQuery runs those fine, but the BigQuery
    emulator the tests use drops query parameters in scripts, and one job per statement also
    names the failing statement in the log. Every statement is idempotent (CREATE OR REPLACE,
    MERGE, DELETE-then-INSERT of this run's rows), so a retry simply replays them all.
    ``configuration`` shows the whole script after rendering.
    """

    template_fields = (*BigQueryInsertJobOperator.template_fields, "location", "sql_params")
    checks: ClassVar[tuple[str, ...]] = ("validate", "features")

    def __init__(
        self,
        *,
        settings: Settings,
        scripts: tuple[str, ...],
        sql_params: dict[str, str],
        check: str,
        **kwargs: Any,
    ) -> None:
        if check not in self.checks:
            raise ValueError(f"check must be one of {self.checks}")
        super().__init__(
            configuration={},  # the run's contract decides the SQL: see sf_after_render
            project_id="{{ sf.cfg.project }}",
            location="{{ sf.cfg.bq_location }}",
            gcp_conn_id=settings.gcp_conn_id,
            deferrable=False,
            durable=False,  # several jobs per try: a retry re-runs them all (they are idempotent)
            force_rerun=True,
            **kwargs,
        )
        self.sf_settings = settings
        self.scripts = tuple(scripts)
        self.sql_params = dict(sql_params)
        self.check = check
        self.statements: list[str] = []

    def sf_after_render(self, run: GcpRun) -> None:
        self.statements = [
            stmt for name in self.scripts for stmt in gcp.split_statements_verbatim(run.sql(name))
        ]
        # What the UI's "Rendered Template" shows; execute sends it statement by statement.
        script = ";\n\n".join(self.statements) + ";"
        self.configuration = _query_config(script, self.sql_params)

    def execute(self, context: Any) -> dict[str, Any]:
        run: GcpRun = context["sf"]
        for i, stmt in enumerate(self.statements, start=1):
            self.configuration = _query_config(stmt, self.sql_params)
            self.job_id = None  # a fresh job id for every statement
            self.log.info(
                "statement %s of %s (%s)", i, len(self.statements), "+".join(self.scripts)
            )
            super().execute(context)
        hook = _bq_hook(self.gcp_conn_id, run)
        try:
            if self.check == "validate":
                return self._check_validate(hook, run)
            return self._check_features(hook, run)
        except steps.DataError as exc:
            raise AirflowFailException(str(exc)) from None

    def _check_validate(self, hook: BigQueryHook, run: GcpRun) -> dict[str, Any]:
        t = run.tables
        (stats,) = _query(
            hook,
            run,
            f"SELECT COUNT(*) AS staged, COUNTIF(reject_reason IS NOT NULL) AS rejected "
            f"FROM {t.staging_checked}",
        )
        (mal,) = _query(hook, run, f"SELECT COUNT(*) AS n FROM {t.staging_malformed}")
        examples = _query(
            hook,
            run,
            f"SELECT source_row, reason FROM {t.rejected_rows} "
            "WHERE run_id = @run_id ORDER BY source_row LIMIT 5",
            run_id=run.run_id,
        )
        summary, where = gcp.validation_summary(
            staged=int(stats["staged"]),
            rejected=int(stats["rejected"]),
            malformed=int(mal["n"]),
            examples=examples,
            input_uri=run.input_uri,
            run_id=run.run_id,
            max_reject_fraction=self.sf_settings.max_reject_fraction,
        )
        if summary["rejected"]:
            self.log.warning(
                "%s rows quarantined in rejected_rows; first: %s", summary["rejected"], where
            )
        self.log.info("validation: %s", summary)
        return summary

    def _check_features(self, hook: BigQueryHook, run: GcpRun) -> dict[str, Any]:
        d = f"`{run.contract.date_column}`"
        (stats,) = _query(
            hook,
            run,
            f"SELECT COUNT(*) AS rows_total, COUNTIF({d} <= @cutoff) AS rows_in_window, "
            f"COUNT(DISTINCT IF({d} <= @cutoff, series_id, NULL)) AS series, "
            f"MIN({d}) AS first_date, MAX(IF({d} <= @cutoff, {d}, NULL)) AS last_date "
            f"FROM {run.tables.daily_sales_features}",
            cutoff=run.ctx.cutoff_date,
        )
        out = gcp.build_features_summary(
            stats, run.ctx.cutoff_date, run.table_id("daily_sales_features")
        )
        last = stats["last_date"]
        if last is not None and (run.ctx.cutoff_date - last).days > 7:
            self.log.warning(
                "data is stale: its last day %s is %s days before the cutoff %s; forecasts "
                "start after %s",
                last,
                (run.ctx.cutoff_date - last).days,
                run.ctx.cutoff_date,
                last,
            )
        self.log.info("daily_sales_features: %s", out)
        return out


# ---------------------------------------------------------------- train, backtest, forecast


class SfTrainerJobOperator(_SfRunMixin, CreateCustomJobOperator):
    """One trainer command as a Vertex AI custom job (deferrable), or on Cloud Run.

    The custom job body (worker pool spec, container ``args``, env) is built from the run after
    rendering; ``backtest`` adds the production model found in the Model Registry and
    ``forecast`` picks the model the gate chose, both at execute time. With the runner
    ``cloud_run`` (setting ``gcp_runner`` or a run's conf ``{"runner": "cloud_run"}``) the same
    args go to a ``CloudRunExecuteJobOperator`` as container overrides, on a Cloud Run job that is
    created, or updated to the configured trainer image, first.
    """

    template_fields = (*CreateCustomJobOperator.template_fields, "cloud_run_overrides")
    commands: ClassVar[tuple[str, ...]] = ("train", "backtest", "predict")

    def __init__(self, *, settings: Settings, command: str, **kwargs: Any) -> None:
        if command not in self.commands:
            raise ValueError(f"command must be one of {self.commands}")
        super().__init__(
            project_id="{{ sf.cfg.project }}",
            region="{{ sf.cfg.region }}",
            custom_job={},  # built from the run: see sf_after_render / execute
            gcp_conn_id=settings.gcp_conn_id,
            deferrable=settings.gcp_deferrable,
            poll_interval=30,
            **kwargs,
        )
        self.sf_settings = settings
        self.command = command
        self.cloud_run_overrides: dict[str, Any] = {}

    # -- bodies
    def _args(self, run: GcpRun, state: dict[str, Any]) -> list[str]:
        if self.command == "train":
            return gcp.train_args(run)
        if self.command == "backtest":
            return gcp.backtest_args(run, state.get("champion_dir"))
        return gcp.predict_args(
            run,
            state.get("model_dir", run.model_dir),
            state.get("model_version", f"candidate:{run.run_key}"),
        )

    def _set_bodies(self, run: GcpRun, state: dict[str, Any]) -> None:
        args = self._args(run, state)
        self.custom_job = gcp.custom_job_body(run, self.command, args)
        self.cloud_run_overrides = gcp.cloud_run_overrides(run, self.command, args)

    def sf_after_render(self, run: GcpRun) -> None:
        self._set_bodies(run, {})

    # -- before the job: lookups that decide the args
    def _prepare(self, run: GcpRun) -> dict[str, Any]:
        if self.command == "train":
            return {}
        from airflow.providers.google.cloud.hooks.vertex_ai.model_service import (
            ModelServiceHook,
        )

        _, champion = gcp.find_production_model(
            ModelServiceHook(gcp_conn_id=self.gcp_conn_id), run.cfg
        )
        from_this_run = champion is not None and _same_dir(champion.uri, run.promoted_dir)
        if self.command == "backtest":
            state: dict[str, Any] = {"champion_version": champion.version if champion else None}
            if champion is None:
                self.log.info("no production model yet: the gate compares with the baseline")
            elif from_this_run:
                # A re-run of the run that produced the production model: comparing it with
                # itself is meaningless; the gate compares against the baseline only.
                self.log.info("production v%s came from this very run", champion.version)
            else:
                state["champion_dir"] = champion.uri
            return state
        # forecast: the best model's forecasts, as locally
        gcs = _gcs(self.gcp_conn_id)
        gate = _read_json(gcs, run.gate_uri)
        if gate["passed"] or champion is None:
            state = {"model_dir": run.model_dir, "model_version": f"candidate:{run.run_key}"}
        else:
            state = {"model_dir": champion.uri, "model_version": champion.version}
        if run.ctx.future_uri and not _gcs_exists(gcs, run.ctx.future_uri):
            raise AirflowFailException(f"{run.ctx.future_uri}: future covariates file not found")
        return state

    # -- the job
    def execute(self, context: Any) -> Any:
        run: GcpRun = context["sf"]
        try:
            state = self._prepare(run)
        except steps.DataError as exc:
            raise AirflowFailException(str(exc)) from None
        self._set_bodies(run, state)
        if run.cfg.runner == "cloud_run":
            return self._execute_cloud_run(context, run, state)
        self.log.info("trainer %s args: %s", self.command, self.custom_job["job_spec"])
        try:
            super().execute(context)
        except TaskDeferred as deferred:
            raise _with_state(deferred, "execute_complete", state) from None
        return self._finish(context, run, state)

    def execute_complete(
        self, context: Any, event: dict[str, Any], sf_state: dict[str, Any] | None = None
    ) -> Any:
        super().execute_complete(context, event)
        return self._finish(context, context["sf"], sf_state or {})

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

    def _execute_cloud_run(self, context: Any, run: GcpRun, state: dict[str, Any]) -> Any:
        self._ensure_cloud_run_job(run)
        delegate = self._cloud_run_operator(run)
        self.log.info(
            "trainer %s on Cloud Run job %s: %s",
            self.command,
            run.cfg.cloud_run_job,
            self.cloud_run_overrides,
        )
        try:
            _unwrapped(CloudRunExecuteJobOperator.execute)(delegate, context)
        except TaskDeferred as deferred:
            raise _with_state(deferred, "execute_complete_cloud_run", state) from None
        return self._finish(context, run, state)

    def execute_complete_cloud_run(
        self, context: Any, event: dict[str, Any], sf_state: dict[str, Any] | None = None
    ) -> Any:
        run: GcpRun = context["sf"]
        self._cloud_run_operator(run).execute_complete(context, event)
        return self._finish(context, run, sf_state or {})

    def _ensure_cloud_run_job(self, run: GcpRun) -> None:
        """Create the Cloud Run job from the trainer image, or update it to the configured one."""
        from airflow.providers.google.cloud.hooks.cloud_run import CloudRunHook
        from google.api_core.exceptions import AlreadyExists, NotFound

        hook = CloudRunHook(gcp_conn_id=self.gcp_conn_id)
        cfg = run.cfg
        body = gcp.cloud_run_job_body(cfg)
        where = {"job_name": cfg.cloud_run_job, "region": cfg.region, "project_id": cfg.project}
        try:
            job = hook.get_job(**where)
        except NotFound:
            self.log.info("creating Cloud Run job %s from %s", cfg.cloud_run_job, cfg.trainer_image)
            try:
                hook.create_job(job=body, **where)
            except AlreadyExists:  # another run created it a moment ago
                pass
            return
        containers = list(job.template.template.containers)
        image = containers[0].image if containers else None
        account = job.template.template.service_account
        if image != cfg.trainer_image or (cfg.service_account and account != cfg.service_account):
            self.log.info(
                "updating Cloud Run job %s: image %s -> %s",
                cfg.cloud_run_job,
                image,
                cfg.trainer_image,
            )
            hook.update_job(job=body, **where)

    # -- after the job: read what it wrote, as the local steps do
    def _finish(self, context: Any, run: GcpRun, state: dict[str, Any]) -> dict[str, Any]:
        gcs = _gcs(self.gcp_conn_id)
        if self.command == "train":
            metrics = _read_json(gcs, f"{run.model_dir}/metrics.json")
            return {"model_dir": run.model_dir, "metrics": metrics}
        if self.command == "backtest":
            gate = _read_json(gcs, run.gate_uri)
            gate["champion_version"] = state.get("champion_version")
            _write_json(gcs, run.gate_uri, gate)
            self.log.info(
                "gate %s on %s: challenger=%s baseline=%s champion=%s (%s)",
                "PASSED" if gate["passed"] else "FAILED",
                gate.get("metric"),
                gate.get("challenger"),
                gate.get("baseline"),
                gate.get("champion"),
                gate.get("reason"),
            )
            return gate
        hook = _bq_hook(self.gcp_conn_id, run)
        (stats,) = _query(
            hook,
            run,
            "SELECT COUNT(*) AS rows_written, COUNT(DISTINCT series_id) AS series, "
            "MIN(date) AS first_date, MAX(date) AS last_date "
            f"FROM {run.tables.daily_sales_forecasts} WHERE run_id = @run_id",
            run_id=run.run_id,
        )
        out = gcp.forecast_summary(
            stats,
            run.ctx.horizon,
            state.get("model_version", ""),
            run.table_id("daily_sales_forecasts"),
        )
        self.log.info("forecasts: %s", out)
        return out


def _with_state(deferred: TaskDeferred, method: str, state: dict[str, Any]) -> TaskDeferred:
    # What execute decided (champion version, chosen model) must survive the deferral: the task
    # resumes in a new process.
    return TaskDeferred(
        trigger=deferred.trigger,
        method_name=method,
        kwargs={**(deferred.kwargs or {}), "sf_state": state},
        timeout=deferred.timeout,
    )


def _same_dir(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


# ---------------------------------------------------------------- register


class SfUploadModelOperator(_SfRunMixin, UploadModelOperator):
    """Registers the run's model as a new version of the parent model, gated like locally.

    Skipped unless the run has ``enable_deploy`` and its ``gate.json`` passed. The run's model is
    first copied to the promoted folder ``gs://<bucket>/models/<model_name>/<run_key>/`` with a
    ``manifest.json`` of sha256 sums (the serving app checks them), and that folder is the
    version's ``artifact_uri``. Registering the same run twice returns the existing version.
    """

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            project_id="{{ sf.cfg.project }}",
            region="{{ sf.cfg.region }}",
            model={},  # built from the run: see sf_after_render / execute
            gcp_conn_id=settings.gcp_conn_id,
            **kwargs,
        )
        self.sf_settings = settings

    def sf_after_render(self, run: GcpRun) -> None:
        self.model = gcp.model_upload_body(run)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.providers.google.cloud.hooks.vertex_ai.model_service import (
            ModelServiceHook,
        )

        run: GcpRun = context["sf"]
        gcs = _gcs(self.gcp_conn_id)
        gate = _read_json(gcs, run.gate_uri)
        if not run.ctx.enable_deploy:
            raise AirflowSkipException(
                "enable_deploy is false for this run: the model is not registered"
            )
        if not gate["passed"]:
            raise AirflowSkipException(f"the quality gate did not pass: {gate.get('reason')}")
        try:
            run.cfg.require("serving_image")
        except gcp.ConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        metrics = _read_json(gcs, f"{run.model_dir}/metrics.json")
        self._promote(gcs, run)

        hook = ModelServiceHook(gcp_conn_id=self.gcp_conn_id)
        model_id, _ = gcp.find_production_model(hook, run.cfg)
        if model_id:
            for version in hook.list_model_versions(
                project_id=run.cfg.project, region=run.cfg.region, model_id=model_id
            ):
                if _same_dir(version.artifact_uri, run.promoted_dir):
                    self.log.info(
                        "run %s is already registered as version %s", run.run_id, version.version_id
                    )
                    out = self._result(run, version.name, str(version.version_id))
                    context["ti"].xcom_push(key="model_id", value=model_id)
                    return out
        self.parent_model = model_id  # None: the first version creates the parent model
        self.model = gcp.model_upload_body(run, gate=gate, metrics=metrics)
        response = super().execute(context)
        out = self._result(run, response["model"], str(response["model_version_id"]))
        self.log.info("registered %s version %s at %s", out["model"], out["version"], out["uri"])
        return out

    @staticmethod
    def _result(run: GcpRun, model: str, version: str) -> dict[str, Any]:
        return {
            "model": model.split("@")[0],
            "model_id": model.split("@")[0].rpartition("/")[-1],
            "version": version,
            "uri": run.promoted_dir,
        }

    def _promote(self, gcs: GCSHook, run: GcpRun) -> None:
        """Copy the run's model folder to the promoted folder, then its manifest (last)."""
        src_bucket, src_prefix = gcp.split_gs_prefix(run.model_dir)
        dst_bucket, dst_prefix = gcp.split_gs_prefix(run.promoted_dir)
        names = [n for n in gcs.list(src_bucket, prefix=f"{src_prefix}/") if not n.endswith("/")]
        if not names:
            raise AirflowException(f"no model files in {run.model_dir}")
        files: dict[str, bytes] = {}
        for name in names:
            rel = name[len(src_prefix) + 1 :]
            data = gcs.download(bucket_name=src_bucket, object_name=name)
            gcs.upload(bucket_name=dst_bucket, object_name=f"{dst_prefix}/{rel}", data=data)
            files[rel] = data
        manifest = gcp.sha256_manifest(files, run_id=run.run_id, source=run.model_dir)
        _write_json(gcs, f"{run.promoted_dir}manifest.json", manifest)
        self.log.info("promoted %s files to %s", len(files), run.promoted_dir)


# ---------------------------------------------------------------- deploy


class SfDeployModelOperator(_SfRunMixin, DeployModelOperator):
    """Deploys the version ``register`` created: find-or-create the endpoint, deploy, promote.

    The endpoint is found by display name (created when missing). The new version gets all the
    traffic; once it serves, the ``production`` alias moves to it and the endpoint's previous
    deployments are undeployed (they would keep their nodes, and their cost, at 0% traffic).
    """

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            project_id="{{ sf.cfg.project }}",
            region="{{ sf.cfg.region }}",
            endpoint_id="",  # found or created at execute time
            deployed_model={},  # built from the run: see sf_after_render / execute
            traffic_split={"0": 100},  # "0": the model being deployed
            gcp_conn_id=settings.gcp_conn_id,
            **kwargs,
        )
        self.sf_settings = settings

    def sf_after_render(self, run: GcpRun) -> None:
        # The model comes from `register`; the resources from the configuration.
        self.deployed_model = gcp.deployed_model_body(run.cfg, model="", version="")

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.providers.google.cloud.hooks.vertex_ai.endpoint_service import (
            EndpointServiceHook,
        )
        from airflow.providers.google.cloud.hooks.vertex_ai.model_service import (
            ModelServiceHook,
        )

        run: GcpRun = context["sf"]
        if not run.ctx.enable_deploy:
            raise AirflowSkipException("enable_deploy is false for this run")
        registered = context["ti"].xcom_pull(task_ids="register")
        if not registered:
            raise AirflowSkipException("no model version was registered by this run")
        cfg = run.cfg
        endpoints = EndpointServiceHook(gcp_conn_id=self.gcp_conn_id)
        endpoint = self._find_or_create_endpoint(endpoints, cfg)
        self.endpoint_id = endpoint.name.rpartition("/")[-1]
        model, version = registered["model"], str(registered["version"])
        previous = list(endpoint.deployed_models)
        same = [d for d in previous if d.model == model and str(d.model_version_id) == version]
        if same:
            deployed_id = same[0].id
            self.log.info(
                "version %s already deployed on %s as %s", version, endpoint.name, deployed_id
            )
        else:
            self.deployed_model = gcp.deployed_model_body(cfg, model, version)
            response = super().execute(context)
            deployed_id = response["deployed_model"]["id"]
        previous_version = gcp.move_alias(
            ModelServiceHook(gcp_conn_id=self.gcp_conn_id), cfg, registered["model_id"], version
        )
        for old in previous:
            if old.id != deployed_id:
                self.log.info("undeploying %s (%s) from %s", old.id, old.model, endpoint.name)
                op = endpoints.undeploy_model(
                    project_id=cfg.project,
                    region=cfg.region,
                    endpoint=self.endpoint_id,
                    deployed_model_id=old.id,
                )
                endpoints.wait_for_operation(operation=op, timeout=self.timeout)
        result = {
            "endpoint": endpoint.name,
            "model": model,
            "version": version,
            "deployed_model_id": deployed_id,
            "previous_version": previous_version,
            "uri": registered.get("uri"),
        }
        self.log.info("deployed: %s", result)
        return result

    def _find_or_create_endpoint(self, hook: Any, cfg: gcp.GcpConfig) -> Any:
        found = list(
            hook.list_endpoints(
                project_id=cfg.project,
                region=cfg.region,
                filter=f'display_name="{cfg.endpoint_display_name}"',
            )
        )
        if found:
            return min(found, key=lambda e: (str(getattr(e, "create_time", "")), e.name))
        self.log.info("creating endpoint %s", cfg.endpoint_display_name)
        operation = hook.create_endpoint(
            project_id=cfg.project, region=cfg.region, endpoint=gcp.endpoint_body(cfg)
        )
        return hook.wait_for_operation(operation=operation, timeout=self.timeout)
