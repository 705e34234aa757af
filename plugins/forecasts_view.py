"""Airflow plugin: the "Sales forecasts" view (Browse > Sales forecasts in the Airflow UI).

The one real plugin under ``plugins/``: Airflow's loader imports this file in every component
and every task, so it only declares the plugin; the FastAPI app (FastAPI, Airflow's auth
dependency, the view's code) is built the first time the API server asks for it. The file's
name does not contain ``sales_forecast``, which ``plugins/.airflowignore`` matches as a regexp.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/sales-forecasts"  # the same as sales_forecast.ui.app.URL_PREFIX (a test checks)
NAME = "Sales forecasts"


class _LazyApps:
    """``fastapi_apps``, built on first access: only the API server reads it."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, obj: object, owner: type | None = None) -> list[dict[str, Any]]:
        if self._apps is None:
            from sales_forecast.ui.app import create_app

            self._apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": NAME}]
        return self._apps


class SalesForecastsViewPlugin(AirflowPlugin):
    name = "sales_forecasts_view"
    fastapi_apps = _LazyApps()
    external_views = [
        {
            "name": NAME,
            "href": URL_PREFIX + "/",
            "destination": "nav",
            "category": "browse",
            # Shown inside the UI, in an iframe at /plugin/sales-forecasts.
            "url_route": "sales-forecasts",
        }
    ]
