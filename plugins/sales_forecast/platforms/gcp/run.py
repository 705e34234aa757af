"""One task run on GCP: its settings, context, contract and platform, resolved at run time.

Every GCP value (project, bucket, images, ...) and every per-run value (run id, cut-off, URIs,
the contract chosen by the ``dataset`` param) is known only when the task runs. The operators
resolve them when they render their templates (:class:`RunResolvingMixin`), so the UI's
"Rendered Template" view shows the real values, and templates read ``{{ sf.cfg.project }}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sales_forecast.config import Settings
from sales_forecast.errors import ConfigError, DataError
from sales_forecast.platforms.base import Platform
from sales_forecast.platforms.gcp.config import GcpConfig, resolve_config
from sales_forecast.platforms.gcp.registry import VertexModelRegistry
from sales_forecast.platforms.gcp.storage import GcsStore, split_gs_uri
from sales_forecast.platforms.gcp.warehouse import BigQueryWarehouse
from sales_forecast.run_context import RunContext, make_run_context, render_params
from sales_forecast.sqlrender import TableNames
from sf_contract.schema import Contract, ContractError

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["GcpRun", "RunResolvingMixin", "gcp_platform", "promoted_dir", "resolve_gcp_run"]


@dataclass(frozen=True)
class GcpRun:
    """Everything one task run needs: config, the run's context, its contract and platform.

    Available to templates as ``sf`` (e.g. ``{{ sf.cfg.project }}``, ``{{ sf.run_key }}``).
    """

    cfg: GcpConfig
    ctx: RunContext
    contract: Contract
    platform: Platform = field(repr=False)
    settings: Settings = field(repr=False)

    # -- the run
    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    @property
    def run_key(self) -> str:
        return self.ctx.run_key

    @property
    def cutoff_iso(self) -> str:
        return self.ctx.cutoff_iso

    @property
    def input_uri(self) -> str:
        return self.ctx.input_uri

    # -- BigQuery
    @property
    def warehouse(self) -> BigQueryWarehouse:
        wh = self.platform.warehouse
        if not isinstance(wh, BigQueryWarehouse):  # only for the type checker
            raise TypeError("the gcp platform's warehouse is BigQuery")
        return wh

    @property
    def dataset_ref(self) -> str:
        return f"{self.cfg.project}.{self.cfg.bq_dataset}"

    @property
    def tables(self) -> TableNames:
        return self.warehouse.tables

    def table_id(self, table: str) -> str:
        return self.warehouse.table_id(table)

    def table_uri(self, table: str) -> str:
        return self.warehouse.table_uri(table)

    def sql(self, name: str) -> str:
        return self.warehouse.script(name, self.contract)

    # -- GCS
    @property
    def run_dir(self) -> str:
        return self.ctx.run_dir  # gs://<bucket>/runs/<run_key>

    @property
    def model_dir(self) -> str:
        return self.ctx.model_dir

    @property
    def backtest_dir(self) -> str:
        return self.ctx.backtest_dir

    @property
    def gate_uri(self) -> str:
        return self.ctx.gate_uri

    @property
    def contract_uri(self) -> str:
        return self.ctx.contract_uri

    @property
    def staging_csv_uri(self) -> str:
        """The input re-written with line numbers: what the BigQuery load job reads."""
        return f"{self.run_dir}/staging/input.csv"

    @property
    def staging_object(self) -> str:
        return split_gs_uri(self.staging_csv_uri)[1]

    @property
    def malformed_uri(self) -> str:
        return f"{self.run_dir}/staging/malformed.jsonl"

    @property
    def promoted_dir(self) -> str:
        """Where ``register`` copies the model: stable, never pruned with the run folders."""
        return promoted_dir(self.cfg, self.run_key)

    def job_name(self, command: str) -> str:
        return f"{command}-{self.run_key}"


def promoted_dir(cfg: GcpConfig, run_key: str) -> str:
    return f"gs://{cfg.bucket}/models/{cfg.model_name}/{run_key}/"


def gcp_platform(cfg: GcpConfig, run_id: str | None = None) -> Platform:
    """GCS, BigQuery and the Vertex AI Model Registry behind the steps' interfaces.

    No loader, runner, publisher or deployer: on GCP those are provider operators (the
    GCS->BigQuery load, deferrable Vertex AI / Cloud Run jobs, the model upload and the endpoint
    deploy) that call the steps' plan/finish halves around their own API call.
    """
    return Platform(
        store=GcsStore(cfg.conn_id),
        warehouse=BigQueryWarehouse(
            conn_id=cfg.conn_id,
            project=cfg.project,
            location=cfg.bq_location,
            dataset=cfg.bq_dataset,
            run_id=run_id,
        ),
        registry=VertexModelRegistry(
            conn_id=cfg.conn_id,
            project=cfg.project,
            region=cfg.region,
            model_name=cfg.model_name,
            promoted_root=f"gs://{cfg.bucket}/models/{cfg.model_name}/",
        ),
    )


def resolve_gcp_run(
    settings: Settings,
    context: Mapping[str, Any],
    render: Callable[[str, dict[str, Any]], Any],
) -> GcpRun:
    """Config, run context, contract and platform for this task run.

    The params get the same rendering and checks as on the local platform
    (:func:`sales_forecast.run_context.render_params`, ``make_run_context``); the settings are
    rendered with the same task context, so Airflow Variables are read now.
    """
    from sales_forecast.steps import load_run_contract

    run_id, when, params = render_params(context, render)
    template_context = dict(context)

    def render_setting(value: str) -> object:
        return render(value, template_context) if "{" in value else value

    dag_run = context["dag_run"]
    runner = params.get("runner") or (getattr(dag_run, "conf", None) or {}).get("runner")
    cfg = resolve_config(settings, render_setting, runner=runner)
    ctx = make_run_context(
        run_id=run_id,
        logical_date=when,
        params=params,
        settings=settings,
        runs_root=f"gs://{cfg.bucket}/runs",
    )
    contract = load_run_contract(ctx)
    # Each contract gets its own tables and parent model, exactly as on the local platform.
    suffix = settings.namespace(contract.name)
    if suffix:
        cfg = dataclasses.replace(
            cfg,
            bq_dataset=cfg.bq_dataset + suffix,
            model_name=cfg.model_name + suffix,
            endpoint_display_name=cfg.endpoint_display_name + suffix,
        )
    return GcpRun(
        cfg=cfg,
        ctx=ctx,
        contract=contract,
        platform=gcp_platform(cfg, ctx.run_id),
        settings=settings,
    )


class RunResolvingMixin:
    """Resolve ``sf`` before the operator's own templates render; build run-shaped fields after.

    A bad param or a missing setting fails the task without retries, like a ``DataError``
    locally: retrying does not fix configuration.
    """

    sf_settings: Settings

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        if jinja_env is None:
            jinja_env = self.get_template_env()  # type: ignore[attr-defined]

        def render(value: str, ctx: dict[str, Any]) -> Any:
            return self.render_template(value, ctx, jinja_env)  # type: ignore[attr-defined]

        try:
            run = resolve_gcp_run(self.sf_settings, context, render)
        except (DataError, ConfigError, ContractError) as exc:
            raise AirflowFailException(str(exc)) from None
        context["sf"] = run  # type: ignore[typeddict-unknown-key]
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        self.after_render(run)

    def after_render(self, run: GcpRun) -> None:
        """Fill the fields whose shape depends on the run (see the subclasses)."""
