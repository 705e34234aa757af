"""``deploy`` on GCP: the version ``register`` created, on an endpoint found or created.

The skip rule is the shared :func:`~sales_forecast.decisions.deploy_skip_reason`. The new
version takes the traffic of this model's earlier versions (all of it on an endpoint of its
own); once it serves, the ``production`` alias moves to it and those earlier versions are
undeployed (they would keep their nodes, and their cost, at 0% traffic). Deployments of other
models on a shared endpoint keep their traffic share and stay deployed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.google.cloud.hooks.vertex_ai.endpoint_service import EndpointServiceHook
from airflow.providers.google.cloud.hooks.vertex_ai.model_service import ModelServiceHook
from airflow.providers.google.cloud.operators.vertex_ai.endpoint_service import (
    DeployModelOperator,
)

from sales_forecast import decisions, steps
from sales_forecast.config import Settings
from sales_forecast.platforms.gcp.config import GcpConfig
from sales_forecast.platforms.gcp.run import GcpRun, RunResolvingMixin
from sf_contract.constants import PRODUCTION_ALIAS

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "DeployToEndpointOperator",
    "deployed_model_body",
    "endpoint_body",
    "move_alias",
    "same_model",
    "traffic_split",
]

log = logging.getLogger(__name__)


def endpoint_body(cfg: GcpConfig) -> dict[str, Any]:
    return {
        "display_name": cfg.endpoint_display_name,
        "description": f"Online forecasts of {cfg.model_name}",
        "labels": {"app": "sales-forecast"},
    }


def deployed_model_body(cfg: GcpConfig, model: str, version: str) -> dict[str, Any]:
    """The ``DeployedModel``: ``model`` is the parent model's resource name.

    Before ``register`` has run (the rendered view) ``model`` is empty: only the resources show.
    """
    body: dict[str, Any] = {
        "model": f"{model}@{version}" if model else "",
        "display_name": f"{cfg.model_name}-v{version}" if model else cfg.model_name,
        "dedicated_resources": {
            "machine_spec": {"machine_type": cfg.deploy_machine_type},
            "min_replica_count": cfg.deploy_min_replicas,
            "max_replica_count": cfg.deploy_max_replicas,
        },
    }
    if cfg.service_account:
        body["service_account"] = cfg.service_account
    return body


def same_model(deployed_model: str, model: str) -> bool:
    """Whether a ``DeployedModel.model`` is a version of the parent ``model`` (its resource
    name, as the API returns it; a ``@version`` suffix is ignored)."""
    return deployed_model.split("@")[0] == model.split("@")[0]


def traffic_split(endpoint: Any, model: str) -> dict[str, int]:
    """The split to deploy a new version of ``model`` with: other models keep their shares,
    the new version (``"0"``) gets the rest (the share ``model``'s versions had; all of it on
    an endpoint of its own)."""
    ours = {d.id for d in getattr(endpoint, "deployed_models", ()) if same_model(d.model, model)}
    split = {
        str(k): int(v)
        for k, v in dict(getattr(endpoint, "traffic_split", None) or {}).items()
        if k not in ours and int(v) > 0
    }
    rest = 100 - sum(split.values())
    if rest > 0:
        split["0"] = rest
    return split


def move_alias(
    hook: ModelServiceHook,
    cfg: GcpConfig,
    model_id: str,
    version: str,
    alias: str = PRODUCTION_ALIAS,
) -> str | None:
    """Point ``alias`` at ``model_id@version``; return the version that held it before."""
    from google.api_core.exceptions import GoogleAPICallError, NotFound

    try:
        previous = str(
            hook.get_model(
                project_id=cfg.project, region=cfg.region, model_id=f"{model_id}@{alias}"
            ).version_id
        )
    except NotFound:
        previous = None
    if previous == version:
        return previous
    try:
        hook.add_version_aliases(
            project_id=cfg.project,
            region=cfg.region,
            model_id=f"{model_id}@{version}",
            version_aliases=[alias],
        )
    except GoogleAPICallError:
        if previous is None:
            raise
        # An alias names one version; should the API refuse to take it over, release it from the
        # previous holder first (a moment without the alias beats two versions claiming it).
        hook.delete_version_aliases(
            project_id=cfg.project,
            region=cfg.region,
            model_id=f"{model_id}@{previous}",
            version_aliases=[alias],
        )
        hook.add_version_aliases(
            project_id=cfg.project,
            region=cfg.region,
            model_id=f"{model_id}@{version}",
            version_aliases=[alias],
        )
    return previous


class DeployToEndpointOperator(RunResolvingMixin, DeployModelOperator):
    """Deploys the version ``register`` created: find-or-create the endpoint, deploy, promote.

    The endpoint is found by display name (created when missing). The new version takes the
    traffic of the model's earlier versions; once it serves, the ``production`` alias moves to
    it and the model's other versions on the endpoint are undeployed (they would keep their
    nodes, and their cost, at 0% traffic). Other models' deployments are left as they are.
    """

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            project_id="{{ sf.cfg.project }}",
            region="{{ sf.cfg.region }}",
            endpoint_id="",  # found or created at execute time
            deployed_model={},  # built from the run: see after_render / execute
            traffic_split={"0": 100},  # "0": the model being deployed
            gcp_conn_id=settings.gcp_conn_id,
            **kwargs,
        )
        self.sf_settings = settings

    def after_render(self, run: GcpRun) -> None:
        # The model comes from `register`; the resources from the configuration.
        self.deployed_model = deployed_model_body(run.cfg, model="", version="")

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        pulled = context["ti"].xcom_pull(task_ids="register") if run.ctx.enable_deploy else None
        reason = decisions.deploy_skip_reason(run.ctx.enable_deploy, bool(pulled))
        if reason:
            steps.log_run_summary(run.ctx, run.platform, f"nothing deployed: {reason}")
            raise AirflowSkipException(reason)
        registered: dict[str, Any] = dict(pulled or {})
        cfg = run.cfg
        endpoints = EndpointServiceHook(gcp_conn_id=self.gcp_conn_id)
        endpoint = self._find_or_create_endpoint(endpoints, cfg)
        self.endpoint_id = endpoint.name.rpartition("/")[-1]
        model, version = registered["model"], str(registered["version"])
        deployed = list(endpoint.deployed_models)
        same = [
            d for d in deployed if same_model(d.model, model) and str(d.model_version_id) == version
        ]
        if same:
            deployed_id = same[0].id
            log.info("version %s already deployed on %s as %s", version, endpoint.name, deployed_id)
        else:
            self.deployed_model = deployed_model_body(cfg, model, version)
            self.traffic_split = traffic_split(endpoint, model)
            if "0" not in self.traffic_split:
                log.warning(
                    "%s: other models hold all of the endpoint's traffic (%s); version %s is "
                    "deployed with none: change the split in the console or use an endpoint of "
                    "its own (sf_gcp_endpoint_display_name)",
                    endpoint.name,
                    self.traffic_split,
                    version,
                )
            response = super().execute(context)
            deployed_id = response["deployed_model"]["id"]
        previous_version = move_alias(
            ModelServiceHook(gcp_conn_id=self.gcp_conn_id), cfg, registered["model_id"], version
        )
        for old in deployed:
            if old.id == deployed_id:
                continue
            if not same_model(old.model, model):
                log.info(
                    "leaving %s (%s) on %s: not a version of %s",
                    old.id,
                    old.model,
                    endpoint.name,
                    model,
                )
                continue
            log.info(
                "undeploying %s (%s version %s) from %s",
                old.id,
                old.model,
                old.model_version_id,
                endpoint.name,
            )
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
        log.info("deployed: %s", result)
        steps.log_run_summary(run.ctx, run.platform, f"deployed v{version}")
        return result

    def _find_or_create_endpoint(self, hook: EndpointServiceHook, cfg: GcpConfig) -> Any:
        found = list(
            hook.list_endpoints(
                project_id=cfg.project,
                region=cfg.region,
                filter=f'display_name="{cfg.endpoint_display_name}"',
            )
        )
        if found:
            return min(found, key=lambda e: (str(getattr(e, "create_time", "")), e.name))
        log.info("creating endpoint %s", cfg.endpoint_display_name)
        operation = hook.create_endpoint(
            project_id=cfg.project, region=cfg.region, endpoint=endpoint_body(cfg)
        )
        return hook.wait_for_operation(operation=operation, timeout=self.timeout)
