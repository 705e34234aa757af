import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Airflow must never write to ~/airflow from the tests; give it a throwaway home.
os.environ.setdefault("AIRFLOW_HOME", str(REPO / ".airflow-test"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Local settings whose data root is a fresh temporary folder."""
    from sales_forecast import config

    monkeypatch.setenv("SF_PLATFORM", "local")
    monkeypatch.setenv("SF_DATA_ROOT", str(tmp_path / "data"))
    config.get_settings.cache_clear()
    yield config.get_settings()
    config.get_settings.cache_clear()
