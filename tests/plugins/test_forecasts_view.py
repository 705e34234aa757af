"""The Airflow plugin file plugins/forecasts_view.py: what Airflow's plugin manager sees.

A UI entry that fails the API's validation is silently dropped from ``GET /api/v2/plugins``
(and so from the UI's navigation), so the entry is checked with Airflow's own serializers, and
the plugin manager is run over the real plugins/ folder in a fresh interpreter. The plugin file
is imported by every Airflow process, tasks included: it must not build the app there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"


def test_plugin_declares_the_app_and_a_browse_entry():
    import forecasts_view
    from fastapi import FastAPI
    from sales_forecast.ui.app import URL_PREFIX

    plugin = forecasts_view.SalesForecastsViewPlugin
    assert plugin.name == "sales_forecasts_view"
    (app,) = plugin.fastapi_apps
    assert isinstance(app["app"], FastAPI)
    assert app["url_prefix"] == URL_PREFIX == forecasts_view.URL_PREFIX
    # Prefixes Airflow keeps for itself.
    assert not any(
        URL_PREFIX.startswith(p) for p in ("/api/v2", "/ui", "/execution", "/auth", "/pluginsv2")
    )
    (view,) = plugin.external_views
    assert view["href"] == URL_PREFIX + "/" and view["category"] == "browse"
    assert plugin.fastapi_apps is plugin.fastapi_apps  # built once


def test_entry_passes_the_plugins_api_validation():
    import forecasts_view
    from airflow.api_fastapi.core_api.datamodels.plugins import (
        ExternalViewResponse,
        FastAPIAppResponse,
    )

    (view,) = forecasts_view.SalesForecastsViewPlugin.external_views
    parsed = ExternalViewResponse.model_validate(view)
    assert parsed.destination == "nav" and parsed.url_route == "sales-forecasts"
    (app,) = forecasts_view.SalesForecastsViewPlugin.fastapi_apps
    FastAPIAppResponse.model_validate({**app, "app": "fastapi.applications.FastAPI"})


PROBE = r"""
import json, sys
from airflow import plugins_manager as core
from airflow.sdk import plugins_manager as sdk

# The task runner's loader first: it must not build the app (FastAPI, the auth dependency).
sdk_plugins, sdk_errors = sdk._get_plugins()
task_side = {
    "names": [p.name for p in sdk_plugins],
    "errors": sdk_errors,
    "app_built": "sales_forecast.ui.app" in sys.modules,
}
plugins, errors = core._get_plugins()
from airflow.api_fastapi.core_api.datamodels.plugins import PluginCollectionResponse
info = core.get_plugin_info()
api = PluginCollectionResponse(plugins=info, total_entries=len(info)).model_dump(mode="json")
print(json.dumps({"task_side": task_side, "errors": errors, "api": api,
                  "fastapi": [a["url_prefix"] for a in core.get_fastapi_plugins()[0]]}))
"""


def test_plugin_manager_lists_the_view(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(REPO)]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["task_side"] == {"names": ["sales_forecasts_view"], "errors": {}, "app_built": False}
    assert out["errors"] == {}
    (plugin,) = [p for p in out["api"]["plugins"] if p["name"] == "sales_forecasts_view"]
    assert plugin["source"] == "$PLUGINS_FOLDER/forecasts_view.py"
    assert [v["name"] for v in plugin["external_views"]] == ["Sales forecasts"]
    assert plugin["external_views"][0]["href"] == "/sales-forecasts/"
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/sales-forecasts"
    assert out["fastapi"] == ["/sales-forecasts"]
