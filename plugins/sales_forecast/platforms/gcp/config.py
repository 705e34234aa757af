"""The GCP settings of one task run: every ``gcp_*`` template rendered, then checked.

Each setting is declared once, in :data:`sales_forecast.config.GCP_VARIABLES` (its Airflow
Variable and default); this module renders them all at run time, never at parse time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sales_forecast.config import GCP_VARIABLES, Settings
from sales_forecast.errors import ConfigError

__all__ = ["RUNNERS", "GcpConfig", "how_to_set", "resolve_config"]

RUNNERS = ("vertex", "cloud_run")
# Settings that are whole numbers of at least 1.
_POSITIVE_INTS = ("deploy_min_replicas", "deploy_max_replicas", "train_boot_disk_size_gb")
# Required for every task; the serving image only where it is used (register).
_REQUIRED = ("project", "region", "bucket", "bq_dataset", "bq_location", "trainer_image")


@dataclass(frozen=True)
class GcpConfig:
    """The GCP settings of one task run, every template rendered."""

    project: str
    region: str
    bucket: str
    bq_dataset: str
    bq_location: str
    trainer_image: str
    serving_image: str
    service_account: str
    train_machine_type: str
    train_boot_disk_type: str
    train_boot_disk_size_gb: int
    deploy_machine_type: str
    deploy_min_replicas: int
    deploy_max_replicas: int
    endpoint_display_name: str
    model_name: str
    runner: str
    cloud_run_job: str
    cloud_run_cpu: str
    cloud_run_memory: str
    serving_port: int = 8080
    predict_route: str = "/predict"
    health_route: str = "/health"
    job_timeout_s: int = 6 * 3600
    conn_id: str = "google_cloud_default"

    def require(self, *names: str) -> None:
        """Raise :class:`ConfigError` naming every empty setting among ``names``."""
        missing = [n for n in names if not str(getattr(self, n)).strip()]
        if missing:
            raise ConfigError(
                "GCP settings not configured: " + "; ".join(how_to_set(f"gcp_{n}") for n in missing)
            )


def how_to_set(setting: str) -> str:
    var = GCP_VARIABLES[setting][0]
    return (
        f"{setting.removeprefix('gcp_')}: set the Airflow Variable {var} (or the environment "
        f"variable AIRFLOW_VAR_{var.upper()} / SF_{setting.upper()})"
    )


def _positive_int(setting: str, raw: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{how_to_set(setting)} to a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{how_to_set(setting)} to at least 1, got {value}")
    return value


def resolve_config(
    settings: Settings, render: Callable[[str], object], runner: str | None = None
) -> GcpConfig:
    """Render every ``gcp_*`` setting with the task's template context and check it.

    ``render`` is the operator's own template renderer, so ``{{ var.value.get(...) }}`` reads
    Airflow Variables now, at run time. ``runner`` is the run's conf override, if any.
    """
    raw = {
        name.removeprefix("gcp_"): str(render(getattr(settings, name)) or "").strip()
        for name in GCP_VARIABLES
    }
    bucket = raw["bucket"].removeprefix("gs://").strip("/")
    if "/" in bucket:
        raise ConfigError(f"{how_to_set('gcp_bucket')} to a bucket name, got {bucket!r}")
    raw["bucket"] = bucket
    chosen = (runner or raw["runner"] or "vertex").strip().lower().replace("-", "_")
    if chosen not in RUNNERS:
        raise ConfigError(
            f"runner {chosen!r} is not one of {RUNNERS}: fix the run's conf 'runner' or "
            + how_to_set("gcp_runner")
        )
    raw["runner"] = chosen
    ints = {name: _positive_int(f"gcp_{name}", raw.pop(name)) for name in _POSITIVE_INTS}
    fields: dict[str, Any] = {**raw, **ints}
    cfg = GcpConfig(
        **fields,
        model_name=settings.model_name,
        serving_port=settings.gcp_serving_port,
        predict_route=settings.gcp_predict_route,
        health_route=settings.gcp_health_route,
        job_timeout_s=settings.trainer_timeout_s,
        conn_id=settings.gcp_conn_id,
    )
    cfg.require(*_REQUIRED)
    if cfg.deploy_max_replicas < cfg.deploy_min_replicas:
        raise ConfigError(
            f"deploy_max_replicas ({cfg.deploy_max_replicas}) is below deploy_min_replicas "
            f"({cfg.deploy_min_replicas})"
        )
    return cfg
