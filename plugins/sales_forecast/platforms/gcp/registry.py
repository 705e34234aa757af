"""The Vertex AI Model Registry behind the platform's registry interface (lookups only).

Registering a version is :mod:`sales_forecast.platforms.gcp.register` (the provider's
``UploadModelOperator``); moving the production alias is part of deploying
(:mod:`sales_forecast.platforms.gcp.deploy`).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.google.cloud.hooks.vertex_ai.model_service import ModelServiceHook

from sales_forecast.platforms.base import ModelRegistry, ModelVersion
from sf_contract.constants import PRODUCTION_ALIAS

__all__ = ["VertexModelRegistry", "find_production_model"]


def find_production_model(
    hook: ModelServiceHook, project: str, region: str, model_name: str
) -> tuple[str | None, Any | None]:
    """The parent model (by display name) and its ``production`` version, looked up now.

    Returns ``(None, None)`` before the first registration and ``(model_id, None)`` while no
    version holds the alias; the version is the API's ``Model`` message.
    """
    from google.api_core.exceptions import NotFound

    models = list(
        hook.list_models(project_id=project, region=region, filter=f'display_name="{model_name}"')
    )
    if not models:
        return None, None
    # Versions accumulate under one parent; should two parents share the name, the oldest wins
    # (the one every earlier run registered under).
    parent = min(models, key=lambda m: (str(getattr(m, "create_time", "")), m.name))
    model_id = parent.name.rpartition("/")[-1]
    try:
        version = hook.get_model(
            project_id=project, region=region, model_id=f"{model_id}@{PRODUCTION_ALIAS}"
        )
    except NotFound:
        return model_id, None
    return model_id, version


class VertexModelRegistry(ModelRegistry):
    """Versions of one parent model (found by display name) in the Vertex AI Model Registry."""

    def __init__(
        self, *, conn_id: str, project: str, region: str, model_name: str, promoted_root: str
    ) -> None:
        self.conn_id = conn_id
        self.project = project
        self.region = region
        self.model_name = model_name
        self.promoted_root = promoted_root

    @property
    def hook(self) -> ModelServiceHook:
        return ModelServiceHook(gcp_conn_id=self.conn_id)

    def _version(self, model: Any) -> ModelVersion:
        uri = str(model.artifact_uri)
        # The promoted folder is models/<model_name>/<run key>/: the run that registered it.
        run = uri.rstrip("/").rpartition("/")[-1] if uri.startswith(self.promoted_root) else ""
        return ModelVersion(
            name=str(model.name).split("@")[0],
            version=str(model.version_id),
            uri=uri,
            run_id=run,
            aliases=tuple(getattr(model, "version_aliases", ()) or ()),
            # register labels a model whose params came from a study (model_upload_body).
            study=str((dict(getattr(model, "labels", {}) or {})).get("sf_study", "")),
        )

    def get_by_alias(self, alias: str) -> ModelVersion | None:
        if alias != PRODUCTION_ALIAS:
            raise ValueError(f"only the {PRODUCTION_ALIAS!r} alias is looked up on Vertex AI")
        _, version = find_production_model(self.hook, self.project, self.region, self.model_name)
        return None if version is None else self._version(version)

    def list_versions(self) -> list[ModelVersion]:
        hook = self.hook
        model_id, _ = find_production_model(hook, self.project, self.region, self.model_name)
        if model_id is None:
            return []
        versions = hook.list_model_versions(
            project_id=self.project, region=self.region, model_id=model_id
        )
        return [self._version(v) for v in versions]
