"""Batch prediction: a registered model over a file or table of instances, on either platform.

The decisions are made once here: which model (a registry alias or a version), where the
instances come from and where the forecasts go (checked like the daily DAG's inputs), and the
job's arguments. Locally the serving image's ``python -m serving.batch`` runs as a subprocess
(the same predictor as the online endpoint, in chunks); on GCP ``CreateBatchPredictionJobOperator``
runs a Vertex AI batch prediction job on the registered model (the serving container again),
reading JSONL from GCS or a BigQuery table and writing to GCS or BigQuery.
"""

from __future__ import annotations

__all__ = [
    "BatchRequest",
    "batch_params",
    "batch_request",
    "local_batch_args",
    "run_local_batch",
    "vertex_batch_job",
    "vertex_batch_kwargs",
]

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sales_forecast.errors import DataError
from sf_contract.constants import PRODUCTION_ALIAS
from sf_contract.schema import ContractError, check_identifier

if TYPE_CHECKING:
    from sales_forecast.config import Settings

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^[0-9]{1,10}$")
_MAX_HORIZON = 366


@dataclass(frozen=True)
class BatchRequest:
    """One batch job, checked: the model, the instances, the output and the default horizon."""

    alias: str | None  # a registry alias, or None when ``version`` names the model
    version: str | None
    input_uri: str
    output_uri: str
    horizon: int | None
    batch_id: str

    @property
    def model_label(self) -> str:
        return f"version {self.version}" if self.version else f"alias {self.alias}"


def batch_params(settings: Settings) -> dict[str, Any]:
    """The batch DAG's Params: the trigger form, and what a scheduled run uses."""
    from airflow.sdk import Param

    return {
        "model": Param(
            PRODUCTION_ALIAS,
            type="string",
            title="Model",
            description="a registry alias (production) or a version number (3)",
        ),
        "input_uri": Param(
            "",
            type="string",
            title="Instances",
            description="the online endpoint's instances: a .jsonl file (one per line) or a "
            "table (a .parquet / .csv file or duckdb:// locally; gs://.../*.jsonl or "
            "bq://project.dataset.table on GCP), one row per instance",
        ),
        "output_uri": Param(
            "",
            type="string",
            title="Output",
            description="a .jsonl file (Vertex's {instance, prediction} lines) or a table "
            "(one row per series and day); on GCP a gs:// prefix or bq://project.dataset",
        ),
        "horizon": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Horizon",
            description="days for instances that give none (empty: the model's horizon)",
        ),
    }


def batch_request(params: dict[str, Any], run_key: str, platform: str) -> BatchRequest:
    """Check the run's params; :class:`DataError` (no retry) names the bad one."""
    model = str(params.get("model") or PRODUCTION_ALIAS).strip()
    alias = version = None
    if _VERSION.fullmatch(model):
        version = model
    else:
        try:
            alias = check_identifier(model, "model alias")
        except ContractError as exc:
            raise DataError(f"{exc} (or give a version number)") from None
    input_uri = str(params.get("input_uri") or "").strip()
    output_uri = str(params.get("output_uri") or "").strip()
    if not input_uri:
        raise DataError("input_uri is empty: name the file or table of instances to forecast")
    if not output_uri:
        raise DataError("output_uri is empty: name where the forecasts go")
    if platform == "gcp":
        if not input_uri.startswith(("gs://", "bq://")):
            raise DataError(f"input_uri {input_uri!r}: on GCP use gs://.../*.jsonl or bq://...")
        if not output_uri.startswith(("gs://", "bq://")):
            raise DataError(f"output_uri {output_uri!r}: on GCP use a gs:// prefix or bq://...")
    elif "://" in input_uri.split("?")[0] and not input_uri.startswith(("duckdb://", "file://")):
        raise DataError(f"input_uri {input_uri!r}: locally use a file path or duckdb://")
    raw_horizon = params.get("horizon")
    horizon = None
    if raw_horizon not in (None, ""):
        try:
            horizon = int(str(raw_horizon))
        except ValueError:
            raise DataError(f"horizon {raw_horizon!r} is not a whole number of days") from None
        if not 1 <= horizon <= _MAX_HORIZON:
            raise DataError(f"horizon must be 1..{_MAX_HORIZON} days, got {horizon}")
    return BatchRequest(alias, version, input_uri, output_uri, horizon, batch_id=run_key)


def local_batch_args(req: BatchRequest) -> list[str]:
    """``python -m serving.batch`` arguments for ``req``."""
    args = ["--input", req.input_uri, "--output", req.output_uri, "--batch-id", req.batch_id]
    args += ["--version", req.version] if req.version else ["--alias", str(req.alias)]
    if req.horizon:
        args += ["--horizon", str(req.horizon)]
    return args


def run_local_batch(req: BatchRequest, settings: Settings) -> None:
    """Run the serving image's batch entrypoint on the local registry, as a subprocess."""
    from sales_forecast.platforms.local import SubprocessJobRunner

    runner = SubprocessJobRunner(
        python=settings.trainer_python,
        src=settings.trainer_src,
        timeout_s=settings.trainer_timeout_s,
        module="serving.batch",
    )
    log.info("batch prediction with %s: %s -> %s", req.model_label, req.input_uri, req.output_uri)
    runner.run(
        "",
        local_batch_args(req),
        env={"SF_DATA_ROOT": str(settings.data_root), "SF_MODEL_NAME": settings.model_name},
        job_name=f"batch-{req.batch_id}",
    )


def vertex_batch_kwargs(
    req: BatchRequest, *, project: str, region: str, model_resource: str, machine_type: str
) -> dict[str, Any]:
    """``CreateBatchPredictionJobOperator`` keyword arguments for ``req`` on ``model_resource``
    (``projects/<p>/locations/<r>/models/<id>@<version or alias>``)."""
    kwargs: dict[str, Any] = {
        "project_id": project,
        "region": region,
        "job_display_name": f"sales-forecast-batch-{req.batch_id}"[:128],
        "model_name": model_resource,
        "machine_type": machine_type,
        "starting_replica_count": 1,
        "max_replica_count": 1,
        "labels": {"sales_forecast_batch": re.sub(r"[^a-z0-9_-]", "-", req.batch_id.lower())[:63]},
    }
    if req.horizon:
        kwargs["model_parameters"] = {"horizon": req.horizon}
    if req.input_uri.startswith("bq://"):
        kwargs["instances_format"] = "bigquery"
        kwargs["bigquery_source"] = "bq://" + req.input_uri.removeprefix("bq://")
    else:
        kwargs["instances_format"] = "jsonl"
        kwargs["gcs_source"] = [req.input_uri]
    if req.output_uri.startswith("bq://"):
        kwargs["predictions_format"] = "bigquery"
        kwargs["bigquery_destination_prefix"] = req.output_uri
    else:
        kwargs["predictions_format"] = "jsonl"
        kwargs["gcs_destination_prefix"] = req.output_uri
    return kwargs


def vertex_batch_job(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``BatchPredictionJob`` the operator's kwargs ask Vertex AI for (the REST shape),
    so a test can check it against ``aiplatform_v1.BatchPredictionJob``."""
    input_config: dict[str, Any] = {"instancesFormat": kwargs["instances_format"]}
    if "bigquery_source" in kwargs:
        input_config["bigquerySource"] = {"inputUri": kwargs["bigquery_source"]}
    else:
        input_config["gcsSource"] = {"uris": list(kwargs["gcs_source"])}
    output_config: dict[str, Any] = {"predictionsFormat": kwargs["predictions_format"]}
    if "bigquery_destination_prefix" in kwargs:
        output_config["bigqueryDestination"] = {"outputUri": kwargs["bigquery_destination_prefix"]}
    else:
        output_config["gcsDestination"] = {"outputUriPrefix": kwargs["gcs_destination_prefix"]}
    job: dict[str, Any] = {
        "displayName": kwargs["job_display_name"],
        "model": kwargs["model_name"],
        "inputConfig": input_config,
        "outputConfig": output_config,
        "dedicatedResources": {
            "machineSpec": {"machineType": kwargs["machine_type"]},
            "startingReplicaCount": kwargs["starting_replica_count"],
            "maxReplicaCount": kwargs["max_replica_count"],
        },
        "labels": dict(kwargs["labels"]),
    }
    if "model_parameters" in kwargs:
        job["modelParameters"] = dict(kwargs["model_parameters"])
    return job


def _request(context: dict[str, Any], settings: Settings) -> BatchRequest:
    from sales_forecast.run_context import run_key

    return batch_request(
        dict(context["params"]), run_key(str(context["run_id"])), settings.platform
    )


def local_batch_task(**context: Any) -> dict[str, Any]:
    """The local DAG task: check the params, run the batch; a bad input fails without retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from sales_forecast.config import get_settings

    settings = get_settings()
    try:
        req = _request(context, settings)
        run_local_batch(req, settings)
    except DataError as exc:
        raise AirflowFailException(str(exc)) from None
    return {"model": req.model_label, "input_uri": req.input_uri, "output_uri": req.output_uri}


def batch_task(settings: Settings) -> Any:
    """The DAG's one task for the configured platform (call inside a ``with DAG``)."""
    if settings.platform == "gcp":
        from sales_forecast.platforms.gcp.batch import VertexBatchPredictionOperator

        return VertexBatchPredictionOperator(task_id="batch_predict", settings=settings)
    from airflow.providers.standard.operators.python import PythonOperator

    return PythonOperator(task_id="batch_predict", python_callable=local_batch_task)
