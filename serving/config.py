"""Every setting of the serving app in one object, read from the environment.

Vertex AI's custom-container contract comes first (``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE``,
``AIP_PREDICT_ROUTE``, ``AIP_STORAGE_URI``); everything of ours is prefixed ``SF_``.

Two ways to find the model:

* ``AIP_STORAGE_URI`` set (Vertex AI, or any ``gs://`` / local model folder): serve that folder,
  checked against its sha256 manifest. One model for the life of the process (Vertex deploys a
  new container per model version).
* unset: serve the local registry's alias (``SF_DATA_ROOT``/models/``SF_MODEL_NAME``, alias
  ``SF_SERVING_ALIAS``) and follow it: a newly promoted version is loaded aside and swapped in
  without a restart.
"""

from __future__ import annotations

__all__ = ["DEFAULT_DATA_ROOT", "SERIES_ROUTE", "Settings", "get_settings"]

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sf_contract.constants import PRODUCTION_ALIAS
from sf_contract.files import registry_index_path

# The repository's .local folder, where `make demo` writes the registry. In the image there is
# no repository; there AIP_STORAGE_URI is the normal mode.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1] / ".local"
# The series the loaded model knows, paged. Not renamed by an AIP_* variable: Vertex AI routes
# only the predict and health routes through an Endpoint; this one is for callers of the
# container itself (and is named by the unknown-series error).
SERIES_ROUTE = "/series"


def _env(name: str, field: str) -> AliasChoices:
    # The environment variable, or the field name for Settings(...) in code and tests.
    return AliasChoices(name, field)


class Settings(BaseSettings):
    """The serving app's configuration (environment variables in brackets)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    # ---- Vertex AI custom-container contract
    port: int = Field(8080, ge=1, le=65535, validation_alias=_env("AIP_HTTP_PORT", "port"))
    health_route_env: str | None = Field(
        None, validation_alias=_env("AIP_HEALTH_ROUTE", "health_route_env")
    )
    predict_route: str = Field(
        "/predict", validation_alias=_env("AIP_PREDICT_ROUTE", "predict_route")
    )
    storage_uri: str | None = Field(None, validation_alias=_env("AIP_STORAGE_URI", "storage_uri"))
    # Set by Vertex AI on a deployed model (reported by /ready): with them,
    # `gcloud ai endpoints describe <endpoint_id>` names the registry version
    # (deployedModels[id=<deployed_model_id>].modelVersionId).
    endpoint_id: str | None = Field(None, validation_alias=_env("AIP_ENDPOINT_ID", "endpoint_id"))
    deployed_model_id: str | None = Field(
        None, validation_alias=_env("AIP_DEPLOYED_MODEL_ID", "deployed_model_id")
    )

    # ---- local registry mode (used when AIP_STORAGE_URI is unset)
    data_root: Path = Field(DEFAULT_DATA_ROOT, validation_alias=_env("SF_DATA_ROOT", "data_root"))
    model_name: str = Field("sales_forecast", validation_alias=_env("SF_MODEL_NAME", "model_name"))
    alias: str = Field(PRODUCTION_ALIAS, validation_alias=_env("SF_SERVING_ALIAS", "alias"))
    # Seconds between looks at registry.json (a stat; the file is read only when it changed).
    # 0 turns the hot swap off.
    poll_interval_s: float = Field(
        2.0, ge=0, validation_alias=_env("SF_SERVING_POLL_S", "poll_interval_s")
    )

    # A model whose training data ends more than this many days before today (UTC) is reported
    # `stale` by /ready (and logged once); it keeps serving. The Airflow side flags a stale
    # production model with the same variable and default.
    max_model_age_days: int = Field(
        14, ge=1, validation_alias=_env("SF_MAX_MODEL_AGE_DAYS", "max_model_age_days")
    )

    # ---- storage mode
    # The version reported for an AIP_STORAGE_URI model; unset -> a digest of its files. The
    # GCP register step sets `run:<run key>` (Vertex assigns the version id only after the
    # container spec, which is immutable, is uploaded; the run names exactly one version).
    model_version: str | None = Field(
        None, validation_alias=_env("SF_MODEL_VERSION", "model_version")
    )
    # Refuse a model folder that carries no sha256 manifest (default: hash it and log the sums).
    # The GCP register step sets it to true in the container it uploads (it always writes one).
    require_manifest: bool = Field(
        False, validation_alias=_env("SF_SERVING_REQUIRE_MANIFEST", "require_manifest")
    )

    # ---- server
    # Loopback unless told otherwise; the image sets 0.0.0.0 (Vertex needs it).
    host: str = Field("127.0.0.1", validation_alias=_env("SF_SERVING_HOST", "host"))
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", validation_alias=_env("SF_SERVING_LOG_LEVEL", "log_level")
    )
    # One line per request costs CPU at hundreds of requests/s and is what /metrics counts
    # anyway; turn it on when debugging.
    access_log: bool = Field(False, validation_alias=_env("SF_SERVING_ACCESS_LOG", "access_log"))
    # What the health route reports: "live" (up) or "ready" (a verified model is loaded).
    # Unset: "ready" when AIP_HEALTH_ROUTE is set (Vertex routes traffic and judges a
    # deployment by it), "live" otherwise. /live and /ready always exist.
    health_mode: Literal["live", "ready"] | None = Field(
        None, validation_alias=_env("SF_SERVING_HEALTH_MODE", "health_mode")
    )

    # ---- limits
    max_instances: int = Field(
        1000, ge=1, validation_alias=_env("SF_SERVING_MAX_INSTANCES", "max_instances")
    )
    # Vertex AI online prediction caps requests at 1.5 MB; a little more leaves room for
    # local callers without letting a client exhaust memory.
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        validation_alias=_env("SF_SERVING_MAX_BODY_BYTES", "max_body_bytes"),
    )
    # How often one series may appear with history/future in one request: each repeat is one
    # more forecaster call (a round), so 1000 instances over 3 series would be 334 calls.
    max_series_repeats: int = Field(
        4, ge=1, validation_alias=_env("SF_SERVING_MAX_SERIES_REPEATS", "max_series_repeats")
    )
    # Forecaster calls (requests with history/future) running at once; more only thrash 2 cores.
    max_concurrent_forecasts: int = Field(
        2,
        ge=1,
        validation_alias=_env("SF_SERVING_MAX_CONCURRENT_FORECASTS", "max_concurrent_forecasts"),
    )
    # Precompute each model's plain forecast (no history/future) at load and answer plain
    # instances from it; results are identical (tests/serving/test_predict.py and
    # test_encoding.py prove it).
    cache: bool = Field(True, validation_alias=_env("SF_SERVING_CACHE", "cache"))

    @field_validator("predict_route", "health_route_env")
    @classmethod
    def _route(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"a route must start with '/', got {value!r}")
        return value

    @property
    def health_route(self) -> str:
        return self.health_route_env or "/health"

    @property
    def health_is_readiness(self) -> bool:
        if self.health_mode is not None:
            return self.health_mode == "ready"
        return self.health_route_env is not None

    @property
    def registry_path(self) -> Path:
        """The local registry's index, where the Airflow side writes it."""
        return Path(registry_index_path(Path(self.data_root) / "models", self.model_name))

    @property
    def mode(self) -> Literal["storage", "registry"]:
        return "storage" if self.storage_uri else "registry"

    def redact(self, text: str | None) -> str | None:
        """``text`` as a client may see it: the server's data folder named, not spelled out
        (a path in a 503 or /ready body tells a caller how the server's disk is laid out)."""
        if text is None:
            return None
        root = Path(self.data_root)
        for spelling in {str(root.resolve()), str(root)}:
            if spelling not in ("", ".", "/"):
                text = text.replace(spelling, "$SF_DATA_ROOT")
        return text


def get_settings() -> Settings:
    """Settings from the current environment (read when called, never at import)."""
    return Settings()
