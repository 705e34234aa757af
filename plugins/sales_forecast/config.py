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

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["GCP_VARIABLES", "INPUT_URI_VARIABLE", "REPO_ROOT", "Settings", "get_settings"]

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
    # Newer machine series (n4, c4, c3, ...) take only Hyperdisk, e.g. hyperdisk-balanced.
    "gcp_train_boot_disk_type": ("sf_gcp_train_boot_disk_type", "pd-ssd"),
    "gcp_train_boot_disk_size_gb": ("sf_gcp_train_boot_disk_size_gb", "100"),
    "gcp_deploy_machine_type": ("sf_gcp_deploy_machine_type", "n1-standard-2"),
    "gcp_deploy_min_replicas": ("sf_gcp_deploy_min_replicas", "1"),
    "gcp_deploy_max_replicas": ("sf_gcp_deploy_max_replicas", "1"),
    "gcp_endpoint_display_name": ("sf_gcp_endpoint_display_name", "sales-forecast"),
    "gcp_runner": ("sf_gcp_runner", "vertex"),
    "gcp_cloud_run_job": ("sf_gcp_cloud_run_job", "sales-forecast-trainer"),
    "gcp_cloud_run_cpu": ("sf_gcp_cloud_run_cpu", "2"),
    "gcp_cloud_run_memory": ("sf_gcp_cloud_run_memory", "8Gi"),
}


# The Airflow Variable with the daily input file on GCP (not a GcpConfig value: a param default).
INPUT_URI_VARIABLE = "sf_gcp_input_uri"


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
    # The trigger form's defaults, which are also what every scheduled run uses.
    default_future_uri: str = ""
    default_dataset: str = "retail"
    default_horizon: int = 28
    # Scheduled runs register and deploy a model that passes the gate (manual runs: the
    # enable_deploy param decides). Off by default: a new model goes live only when asked.
    scheduled_enable_deploy: bool = False
    # A run fails instead of quarantining when more than this share of its rows is rejected:
    # a file that is mostly wrong is a wrong file, not a few bad rows.
    max_reject_fraction: float = 0.2
    backtest_windows: int = 2
    # DuckDB's cap for the SQL steps (it spills to disk beyond it): "50%" of RAM or e.g. "8GB".
    # DuckDB's own default is 80%, which leaves too little for Airflow and the trainer beside it.
    duckdb_memory_limit: str = "50%"
    # A run fails when more than this share of one series' rows in its file is rejected with
    # no day to pin it on (an unreadable date or key): that series' history would get a hole
    # read as a day without sales. Rejected rows whose day is known only mark that day unknown.
    max_series_reject_fraction: float = Field(default=0.02, ge=0.0, le=1.0)
    gate_metric: Literal["wape", "mae", "rmse", "mase"] = "wape"
    # A *changed* recipe must beat the production model by this relative margin (0.02 = 2 %).
    gate_min_improvement: float = Field(default=0.0, ge=0.0, lt=1.0)
    # The *same* recipe retrained on newer data replaces production unless it is worse than the
    # production model (scored as it would serve) by more than this relative margin.
    gate_freshness_tolerance: float = Field(default=0.02, ge=0.0, lt=1.0)
    # A production model whose training data ends more than this many days before a run's
    # cut-off is flagged as stale (run summary, registry view, the serving app's /ready).
    max_model_age_days: int = Field(default=14, ge=1)
    # Contracts a run's `dataset` param may name besides the shipped ones: <name>.yaml/.json
    # files in this folder (empty: only the shipped contracts).
    contracts_dir: Path | None = None
    # Local platform: folders an `input_uri` / `future_uri` may point into (the data root and
    # the repository's data/ folder are always allowed).
    input_roots: list[Path] = Field(default_factory=list)

    # The model's recipe beyond the trainer's defaults: LightGBM parameters by their trainer
    # flag name, e.g. SF_TRAINER_PARAMS='{"num_leaves": 31, "learning_rate": 0.05}'. A changed
    # recipe must beat the production model to replace it (see the gate in docs/).
    trainer_params: dict[str, int | float | str] = Field(default_factory=dict)

    # Local job runner: the trainer entrypoint runs as `python -m trainer` from this source tree,
    # exactly as the container's ENTRYPOINT would run it.
    trainer_python: str = sys.executable
    trainer_src: Path = Field(default=REPO_ROOT)
    trainer_timeout_s: int = 6 * 3600

    # ---- GCP (SF_PLATFORM=gcp). Templates rendered at run time; see GCP_VARIABLES above.
    gcp_project: str = _from_variable("gcp_project")
    # The input_uri param's default on GCP (the demo path means nothing on Composer): the
    # Variable sf_gcp_input_uri, which may itself hold templates, e.g.
    # gs://<bucket>/drops/{{ ds }}/sales.csv. Empty: every run must pass input_uri.
    gcp_input_uri: str = "{{ var.value.get('" + INPUT_URI_VARIABLE + "', '') }}"
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
    gcp_train_boot_disk_type: str = _from_variable("gcp_train_boot_disk_type")
    gcp_train_boot_disk_size_gb: str = _from_variable("gcp_train_boot_disk_size_gb")
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

    @field_validator("dataset", "model_name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        # Both become warehouse and registry names; one rule for every identifier.
        from sf_contract.schema import check_identifier

        return check_identifier(value, "SF_DATASET / SF_MODEL_NAME")

    @field_validator("trainer_params")
    @classmethod
    def _trainer_params(cls, value: dict[str, int | float | str]) -> dict[str, int | float | str]:
        import re

        for name in value:
            # Passed as `--<name> <value>` to the trainer: a flag name, never another option.
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ValueError(f"{name!r} is not a trainer parameter name (e.g. num_leaves)")
        return value

    @field_validator("backtest_windows", "default_horizon", "trainer_timeout_s")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value

    @field_validator("max_reject_fraction")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be in [0, 1]")
        return value

    @property
    def input_uri_default(self) -> str:
        """The trigger form's ``input_uri``: the demo file locally, the Variable on GCP."""
        if self.platform == "gcp" and "default_input_uri" not in self.model_fields_set:
            return self.gcp_input_uri
        return self.default_input_uri

    @property
    def allowed_input_roots(self) -> list[Path]:
        """Local folders a run's input files may come from (resolved, symlinks followed)."""
        roots = [self.data_root, REPO_ROOT / "data", *self.input_roots]
        return [Path(r).expanduser().resolve() for r in roots]

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
