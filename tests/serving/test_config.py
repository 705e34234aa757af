"""Settings come from Vertex's AIP_* variables and our SF_* ones, read when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.config import DEFAULT_DATA_ROOT, Settings


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in (
        "AIP_HTTP_PORT",
        "AIP_HEALTH_ROUTE",
        "AIP_PREDICT_ROUTE",
        "AIP_STORAGE_URI",
        "SF_DATA_ROOT",
        "SF_MODEL_NAME",
        "SF_SERVING_ALIAS",
        "SF_SERVING_HOST",
        "SF_SERVING_HEALTH_MODE",
        "AIP_ENDPOINT_ID",
        "AIP_DEPLOYED_MODEL_ID",
        "SF_MODEL_VERSION",
        "SF_SERVING_REQUIRE_MANIFEST",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(env: Any) -> None:
    s = Settings()
    assert (s.port, s.host, s.health_route, s.predict_route) == (
        8080,
        "127.0.0.1",
        "/health",
        "/predict",
    )
    assert s.mode == "registry" and s.alias == "production" and s.model_name == "sales_forecast"
    assert s.registry_path == DEFAULT_DATA_ROOT / "models" / "sales_forecast" / "registry.json"
    assert s.health_is_readiness is False


def test_vertex_variables(env: Any) -> None:
    env.setenv("AIP_HTTP_PORT", "9000")
    env.setenv("AIP_HEALTH_ROUTE", "/v1/health")
    env.setenv("AIP_PREDICT_ROUTE", "/v1/endpoints/1/deployedModels/2:predict")
    env.setenv("AIP_STORAGE_URI", "gs://bucket/model")
    s = Settings()
    assert s.port == 9000 and s.health_route == "/v1/health"
    assert s.predict_route.endswith(":predict")
    assert s.mode == "storage" and s.storage_uri == "gs://bucket/model"
    assert s.health_is_readiness is True  # Vertex judges readiness by its health route
    assert s.endpoint_id is None and s.deployed_model_id is None
    assert s.require_manifest is False  # off unless asked (a local folder may have none)


def test_what_vertex_and_the_gcp_register_step_set(env: Any) -> None:
    env.setenv("AIP_STORAGE_URI", "gs://caip-tenant/model")
    env.setenv("AIP_ENDPOINT_ID", "9")
    env.setenv("AIP_DEPLOYED_MODEL_ID", "123")
    env.setenv("SF_MODEL_VERSION", "run:scheduled__2025-04-01T00_00_00_00_00")
    env.setenv("SF_SERVING_REQUIRE_MANIFEST", "true")
    s = Settings()
    assert (s.endpoint_id, s.deployed_model_id) == ("9", "123")
    assert s.model_version == "run:scheduled__2025-04-01T00_00_00_00_00"
    assert s.require_manifest is True


def test_local_registry_variables(env: Any, tmp_path: Path) -> None:
    env.setenv("SF_DATA_ROOT", str(tmp_path))
    env.setenv("SF_MODEL_NAME", "sales_forecast_takeaway")
    env.setenv("SF_SERVING_ALIAS", "staging")
    env.setenv("SF_SERVING_HEALTH_MODE", "ready")
    s = Settings()
    assert s.registry_path == tmp_path / "models" / "sales_forecast_takeaway" / "registry.json"
    assert s.alias == "staging" and s.health_is_readiness is True


@pytest.mark.parametrize(
    ("name", "value"),
    [("AIP_HTTP_PORT", "http"), ("AIP_HTTP_PORT", "70000"), ("AIP_PREDICT_ROUTE", "predict")],
)
def test_bad_values_are_refused(env: Any, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ValueError):
        Settings()


def test_main_reports_bad_settings_in_one_line(env: Any, capsys: Any) -> None:
    from serving.__main__ import main

    env.setenv("AIP_HTTP_PORT", "nope")
    assert main() == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid serving settings:") and "AIP_HTTP_PORT" in err


def test_importing_the_app_loads_nothing() -> None:
    import subprocess
    import sys

    code = (
        "import sys, serving.app, serving.client, serving.config;"
        "bad = [m for m in ('trainer.model', 'lightgbm', 'mlforecast', 'airflow', 'sales_forecast')"
        " if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=repo
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_max_model_age_days(env: Any) -> None:
    env.delenv("SF_MAX_MODEL_AGE_DAYS", raising=False)
    assert Settings().max_model_age_days == 14  # the Airflow side's default too
    env.setenv("SF_MAX_MODEL_AGE_DAYS", "30")
    assert Settings().max_model_age_days == 30
    env.setenv("SF_MAX_MODEL_AGE_DAYS", "0")
    with pytest.raises(ValueError, match="SF_MAX_MODEL_AGE_DAYS"):
        Settings()
