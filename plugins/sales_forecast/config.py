"""One typed settings object for the whole Airflow side.

Every value comes from an environment variable prefixed ``SF_`` (e.g. ``SF_PLATFORM=gcp``,
``SF_DATA_ROOT=/data/forecast``). ``SF_PLATFORM`` picks the implementations (``local`` when
unset); nothing else in the code asks where it runs.

The ``gcp_*`` settings are different: their defaults are Jinja templates that read Airflow
Variables (``sf_gcp_project``, ...) when a task runs, never when the DAG file is parsed. On Cloud
Composer that means an Airflow Variable, an ``AIRFLOW_VAR_SF_GCP_*`` environment variable or a
Secret Manager secret; an ``SF_GCP_*`` environment variable replaces the template with a fixed
value (or another template). See docs/gcp.md for the list.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GCP_VARIABLES", "REPO_ROOT", "Settings", "get_settings"]

# plugins/sales_forecast/config.py -> the repository root (holds trainer/, data/, dags/).
REPO_ROOT = Path(__file__).resolve().parents[2]

# GCP setting -> (Airflow Variable that holds it, default when the Variable is not set; None: the
# value is required and a task that needs it fails with the names to set).
GCP_VARIABLES: dict[str, tuple[str, str | None]] = {
    "gcp_project": ("sf_gcp_project", None),
    "gcp_region": ("sf_gcp_region", "us-central1"),
    "gcp_bucket": ("sf_gcp_bucket", None),
    "gcp_bq_dataset": ("sf_gcp_bq_dataset", "sales_forecast"),
    "gcp_bq_location": ("sf_gcp_bq_location", "US"),
    "gcp_trainer_image": ("sf_gcp_trainer_image", None),
    "gcp_serving_image": ("sf_gcp_serving_image", None),
    "gcp_service_account": ("sf_gcp_service_account", ""),
    "gcp_train_machine_type": ("sf_gcp_train_machine_type", "n1-standard-4"),
    "gcp_deploy_machine_type": ("sf_gcp_deploy_machine_type", "n1-standard-2"),
    "gcp_deploy_min_replicas": ("sf_gcp_deploy_min_replicas", "1"),
    "gcp_deploy_max_replicas": ("sf_gcp_deploy_max_replicas", "1"),
    "gcp_endpoint_display_name": ("sf_gcp_endpoint_display_name", "sales-forecast"),
    "gcp_runner": ("sf_gcp_runner", "vertex"),
    "gcp_cloud_run_job": ("sf_gcp_cloud_run_job", "sales-forecast-trainer"),
    "gcp_cloud_run_cpu": ("sf_gcp_cloud_run_cpu", "2"),
    "gcp_cloud_run_memory": ("sf_gcp_cloud_run_memory", "8Gi"),
}


def _from_variable(setting: str) -> str:
    """The Jinja template that reads a GCP setting's Airflow Variable when a task renders it."""
    var, default = GCP_VARIABLES[setting]
    fallback = repr("" if default is None else default)
    return "{{ var.value.get('" + var + "', " + fallback + ") }}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SF_", extra="ignore")

    platform: Literal["local", "gcp"] = "local"

    # Where everything the local platform writes lives: warehouse, run folders, model registry.
    data_root: Path = Field(default=REPO_ROOT / ".local")
    # Warehouse dataset (a BigQuery dataset on GCP, a DuckDB schema locally).
    dataset: str = "sales_forecast"
    model_name: str = "sales_forecast"

    default_input_uri: str = str(REPO_ROOT / "data" / "demo" / "retail_sales.csv")
    default_dataset: str = "retail"
    default_horizon: int = 28
    # A run fails instead of quarantining when more than this share of its rows is rejected:
    # a file that is mostly wrong is a wrong file, not a few bad rows.
    max_reject_fraction: float = 0.2
    backtest_windows: int = 2
    # DuckDB's cap for the SQL steps (it spills to disk beyond it): "50%" of RAM or e.g. "8GB".
    # DuckDB's own default is 80%, which leaves too little for Airflow and the trainer beside it.
    duckdb_memory_limit: str = "50%"
    gate_metric: Literal["wape", "mae", "rmse", "mase"] = "wape"
    gate_min_improvement: float = 0.0

    # Local job runner: the trainer entrypoint runs as `python -m trainer` from this source tree,
    # exactly as the container's ENTRYPOINT would run it.
    trainer_python: str = sys.executable
    trainer_src: Path = Field(default=REPO_ROOT)
    trainer_timeout_s: int = 6 * 3600

    # ---- GCP (SF_PLATFORM=gcp). Templates rendered at run time; see GCP_VARIABLES above.
    gcp_project: str = _from_variable("gcp_project")
    gcp_region: str = _from_variable("gcp_region")  # Vertex AI and Cloud Run
    gcp_bucket: str = _from_variable("gcp_bucket")  # runs/ and models/ live here
    gcp_bq_dataset: str = _from_variable("gcp_bq_dataset")
    gcp_bq_location: str = _from_variable("gcp_bq_location")  # the dataset's location
    # Full image references, e.g. <your-registry>/<project>/<repo>/trainer:<tag>
    gcp_trainer_image: str = _from_variable("gcp_trainer_image")
    gcp_serving_image: str = _from_variable("gcp_serving_image")
    # The identity jobs and the endpoint run as (empty: the project's default one).
    gcp_service_account: str = _from_variable("gcp_service_account")
    gcp_train_machine_type: str = _from_variable("gcp_train_machine_type")
    gcp_deploy_machine_type: str = _from_variable("gcp_deploy_machine_type")
    gcp_deploy_min_replicas: str = _from_variable("gcp_deploy_min_replicas")
    gcp_deploy_max_replicas: str = _from_variable("gcp_deploy_max_replicas")
    gcp_endpoint_display_name: str = _from_variable("gcp_endpoint_display_name")
    # Where train/backtest/forecast run: vertex (custom job) or cloud_run; a run's conf
    # {"runner": "cloud_run"} overrides it for that run.
    gcp_runner: str = _from_variable("gcp_runner")
    gcp_cloud_run_job: str = _from_variable("gcp_cloud_run_job")
    gcp_cloud_run_cpu: str = _from_variable("gcp_cloud_run_cpu")
    gcp_cloud_run_memory: str = _from_variable("gcp_cloud_run_memory")
    # The serving image's contract with Vertex AI (it reads AIP_HTTP_PORT, AIP_PREDICT_ROUTE and
    # AIP_HEALTH_ROUTE, which Vertex sets from these).
    gcp_serving_port: int = 8080
    gcp_predict_route: str = "/predict"
    gcp_health_route: str = "/health"
    gcp_conn_id: str = "google_cloud_default"
    # Vertex AI / Cloud Run jobs wait in the triggerer instead of holding a worker slot.
    gcp_deferrable: bool = True

    def namespace(self, contract_name: str) -> str:
        """The suffix that keeps each dataset contract's tables and models apart.

        The default contract uses the configured names as they are; any other contract gets
        ``_<name>`` appended to the warehouse dataset and the model name, so a takeaway run never
        merges into retail history nor competes with the retail production model.
        """
        return "" if contract_name == self.default_dataset else f"_{contract_name}"

    @property
    def warehouse_path(self) -> Path:
        return self.data_root / "warehouse.duckdb"

    @property
    def runs_root(self) -> Path:
        return self.data_root / "runs"

    @property
    def models_root(self) -> Path:
        return self.data_root / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
