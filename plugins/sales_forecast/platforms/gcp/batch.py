"""The batch DAG's GCP task: a Vertex AI batch prediction job on a registered model version."""

from __future__ import annotations

__all__ = ["VertexBatchPredictionOperator", "model_resource"]

from typing import TYPE_CHECKING, Any

from airflow.providers.google.cloud.operators.vertex_ai.batch_prediction_job import (
    CreateBatchPredictionJobOperator,
)

from sales_forecast.batch_predict import BatchRequest, batch_request, vertex_batch_kwargs
from sales_forecast.config import Settings
from sales_forecast.errors import ConfigError, DataError
from sales_forecast.platforms.gcp.config import resolve_config
from sales_forecast.platforms.gcp.registry import find_production_model

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.vertex_ai.model_service import ModelServiceHook
    from airflow.sdk import Context


def model_resource(
    hook: ModelServiceHook, req: BatchRequest, *, project: str, region: str, model_name: str
) -> str:
    """``projects/.../models/<id>@<version or alias>`` of the registered model ``req`` names."""
    model_id, _ = find_production_model(hook, project, region, model_name)
    if model_id is None:
        raise DataError(f"no model {model_name!r} in the Vertex AI Model Registry of {project}")
    ref = req.version or req.alias
    return f"projects/{project}/locations/{region}/models/{model_id}@{ref}"


class VertexBatchPredictionOperator(CreateBatchPredictionJobOperator):
    """``CreateBatchPredictionJobOperator`` whose job is decided at run time from the params
    (:func:`sales_forecast.batch_predict.vertex_batch_kwargs`): the model version, the source
    and destination, the default horizon."""

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            region="",
            project_id="",
            job_display_name="",
            model_name="",
            gcp_conn_id=settings.gcp_conn_id,
            **kwargs,
        )
        self.sf_settings = settings

    def execute(self, context: Context) -> Any:
        from airflow.providers.google.cloud.hooks.vertex_ai.model_service import ModelServiceHook
        from airflow.sdk.exceptions import AirflowFailException

        from sales_forecast.run_context import run_key

        settings = self.sf_settings
        try:
            # Airflow Variables in the settings (``{{ var.value.sf_gcp_project }}``) read now.
            cfg = resolve_config(
                settings, lambda v: self.render_template(v, context) if "{" in v else v
            )
            req = batch_request(dict(context["params"]), run_key(str(context["run_id"])), "gcp")
            hook = ModelServiceHook(gcp_conn_id=self.gcp_conn_id)
            resource = model_resource(
                hook, req, project=cfg.project, region=cfg.region, model_name=cfg.model_name
            )
        except (DataError, ConfigError) as exc:
            raise AirflowFailException(str(exc)) from None
        kwargs = vertex_batch_kwargs(
            req,
            project=cfg.project,
            region=cfg.region,
            model_resource=resource,
            machine_type=cfg.deploy_machine_type,
        )
        for name, value in kwargs.items():
            setattr(self, name, value)
        return super().execute(context)
