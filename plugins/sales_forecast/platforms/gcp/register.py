"""``register`` on GCP: the run's model promoted to a stable folder, uploaded as a new version.

The decision (skip unless ``enable_deploy`` and the gate passed; which files and records) is the
steps' shared :func:`~sales_forecast.steps.registration`; this module adds what only GCP does:
the copy to ``gs://<bucket>/models/<model_name>/<run_key>/`` with a ``manifest.json`` of sha256
sums (the serving app checks them), and the provider's ``UploadModelOperator``.

The copy never holds a model in the worker: each file is copied server-side, then its sha256
is computed by streaming the promoted copy (the bytes the serving app will verify).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.google.cloud.hooks.vertex_ai.model_service import ModelServiceHook
from airflow.providers.google.cloud.operators.vertex_ai.model_service import UploadModelOperator

from sales_forecast import steps
from sales_forecast.config import Settings
from sales_forecast.errors import ConfigError, SkipStep
from sales_forecast.platforms.gcp.registry import find_production_model
from sales_forecast.platforms.gcp.run import GcpRun, RunResolvingMixin
from sales_forecast.platforms.gcp.storage import GcsStore, label_value, split_gs_prefix
from sf_contract.files import MANIFEST_FILE, dumps

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "RegisterModelOperator",
    "model_labels",
    "model_upload_body",
    "promote",
    "served_version",
    "serving_env",
    "sha256_manifest",
]

log = logging.getLogger(__name__)


def sha256_manifest(sums: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    """``manifest.json`` of a promoted model folder: the sha256 (hex) of every other file.

    The serving app verifies these before it loads anything from ``AIP_STORAGE_URI``.
    """
    return {
        "files": dict(sorted(sums.items())),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def served_version(run: GcpRun) -> str:
    """What the serving container reports as its version (``SF_MODEL_VERSION``).

    Vertex assigns the version id only when the upload completes, and a version's container
    spec is immutable, so the id itself cannot be passed in. The run key can: it names exactly
    one version (``execute`` registers one version per promoted folder, whose last segment it
    is).
    """
    return f"run:{run.run_key}"


def serving_env(run: GcpRun) -> list[dict[str, str]]:
    """The serving container's environment on Vertex AI."""
    return [
        {"name": "SF_MODEL_NAME", "value": run.cfg.model_name},
        {"name": "SF_MODEL_VERSION", "value": served_version(run)},
        # promote() always writes manifest.json: a folder without one is not ours.
        {"name": "SF_SERVING_REQUIRE_MANIFEST", "value": "true"},
    ]


def model_labels(run: GcpRun, **extra: str) -> dict[str, str]:
    return {
        "app": "sales-forecast",
        "sf_run": label_value(run.run_key),
        "sf_dataset": label_value(run.contract.name),
        **{k: label_value(v) for k, v in extra.items()},
    }


def model_upload_body(
    run: GcpRun,
    *,
    gate: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    tuning: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Vertex AI ``Model`` to upload: the promoted folder served by the serving image.

    ``artifact_uri`` is the promoted models folder (Vertex sets ``AIP_STORAGE_URI`` to a copy of
    it), never the run-scoped folder, which may be pruned. No version alias here: ``deploy``
    moves ``production`` once the version actually serves.
    """
    cfg = run.cfg
    gate = gate or {}
    description = f"run {run.run_id}, cutoff {run.cutoff_iso}, dataset {run.contract.name}"
    if gate:
        description += (
            f"; gate {gate.get('metric')}: challenger={gate.get('challenger')} "
            f"baseline={gate.get('baseline')} champion={gate.get('champion')}"
        )
    if metrics:
        description += "; metrics " + json.dumps(metrics, sort_keys=True, default=str)
    # A Vertex AI study is its job's resource name: the label keeps the job id (63 chars max).
    study = str(tuning.get("study") or "").rpartition("/")[-1] if tuning else ""
    if tuning:
        # The study that produced the params: a label (searchable) and the full record.
        description += "; tuning " + json.dumps(dict(tuning), sort_keys=True, default=str)
    return {
        "display_name": cfg.model_name,
        "description": f"Daily sales forecaster ({run.contract.name} contract)",
        "version_description": description[:4000],
        "artifact_uri": run.promoted_dir,
        "container_spec": {
            "image_uri": cfg.serving_image,
            "predict_route": cfg.predict_route,
            "health_route": cfg.health_route,
            "ports": [{"container_port": cfg.serving_port}],
            "env": serving_env(run),
        },
        "labels": model_labels(run, **({"sf_study": study} if study else {})),
    }


def _same_dir(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def promote(store: GcsStore, run: GcpRun) -> dict[str, str]:
    """Copy the run's model folder to the promoted folder, then its manifest (last).

    One object at a time, server-side (``rewrite``: any size, any location); each sha256 is
    streamed from the promoted copy. Returns the sums written to the manifest.
    """
    gcs = store.hook
    src_bucket, src_prefix = split_gs_prefix(run.model_dir)
    names = [n for n in gcs.list(src_bucket, prefix=f"{src_prefix}/") if not n.endswith("/")]
    if not names:
        raise RuntimeError(f"no model files in {run.model_dir}")
    sums: dict[str, str] = {}
    for name in names:
        rel = name[len(src_prefix) + 1 :]
        if rel == MANIFEST_FILE:
            # The promoted folder's manifest is written below; a copy of another would be
            # overwritten anyway, and listing itself would make the serving app refuse it.
            log.warning("ignoring %s/%s: register writes the manifest", run.model_dir, rel)
            continue
        dst = f"{run.promoted_dir}{rel}"
        store.copy(f"gs://{src_bucket}/{name}", dst)
        sums[rel] = store.sha256(dst)
    manifest = sha256_manifest(sums, run_id=run.run_id, source=run.model_dir)
    store.write_text(f"{run.promoted_dir}{MANIFEST_FILE}", dumps(manifest))
    log.info("promoted %s files to %s", len(sums), run.promoted_dir)
    return sums


class RegisterModelOperator(RunResolvingMixin, UploadModelOperator):
    """Registers the run's model as a new version of the parent model, gated like locally.

    Registering the same run twice returns the existing version.
    """

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(
            project_id="{{ sf.cfg.project }}",
            region="{{ sf.cfg.region }}",
            model={},  # built from the run: see after_render / execute
            gcp_conn_id=settings.gcp_conn_id,
            **kwargs,
        )
        self.sf_settings = settings

    def after_render(self, run: GcpRun) -> None:
        self.model = model_upload_body(run)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        run: GcpRun = context["sf"]  # type: ignore[typeddict-item]
        try:
            reg = steps.registration(run.ctx, run.platform)
            run.cfg.require("serving_image")
        except SkipStep as exc:
            raise AirflowSkipException(str(exc)) from None
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        store = run.platform.store
        if not isinstance(store, GcsStore):  # only for the type checker
            raise TypeError("the gcp platform's store is GCS")
        promote(store, run)

        hook = ModelServiceHook(gcp_conn_id=self.gcp_conn_id)
        model_id, _ = find_production_model(
            hook, run.cfg.project, run.cfg.region, run.cfg.model_name
        )
        if model_id:
            for version in hook.list_model_versions(
                project_id=run.cfg.project, region=run.cfg.region, model_id=model_id
            ):
                if _same_dir(version.artifact_uri, run.promoted_dir):
                    log.info(
                        "run %s is already registered as version %s", run.run_id, version.version_id
                    )
                    return self._result(run, version.name, str(version.version_id))
        self.parent_model = model_id  # None: the first version creates the parent model
        self.model = model_upload_body(run, gate=reg.gate, metrics=reg.metrics, tuning=reg.tuning)
        response = super().execute(context)
        out = self._result(run, response["model"], str(response["model_version_id"]))
        log.info("registered %s version %s at %s", out["model"], out["version"], out["uri"])
        steps.relabel_forecasts(run.ctx, run.platform, out["version"])
        return out

    @staticmethod
    def _result(run: GcpRun, model: str, version: str) -> dict[str, Any]:
        return {
            "model": model.split("@")[0],
            "model_id": model.split("@")[0].rpartition("/")[-1],
            "version": version,
            "uri": run.promoted_dir,
        }
