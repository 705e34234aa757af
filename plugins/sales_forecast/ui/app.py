"""The view's FastAPI app: JSON routes and one self-contained HTML page.

Airflow's API server mounts it at ``/sales-forecasts`` (see ``plugins/forecasts_view.py``). A
plugin's app is open to anyone unless it says otherwise, so the app depends on
``requires_authenticated()`` for every route: a request without an Airflow token (the
``Authorization: Bearer`` header, or the UI's ``_token`` cookie the iframe sends) gets 401.
There are no OpenAPI or docs routes, which would bypass that dependency.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and the
# dependency they name is local to create_app.
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from sales_forecast.config import Settings, get_settings
from sales_forecast.contract import available_contracts
from sales_forecast.errors import ConfigError
from sales_forecast.ui.data import ForecastsData, ViewError
from sf_contract.schema import ContractError

__all__ = ["URL_PREFIX", "create_app", "page_html"]

log = logging.getLogger(__name__)

URL_PREFIX = "/sales-forecasts"

# Opens the data of one dataset for one request (tests pass their own).
DataOpener = Callable[[Settings, str], AbstractContextManager[ForecastsData]]


@cache
def page_html() -> str:
    """The view's page: HTML, CSS and script in one file, nothing fetched from elsewhere."""
    return resources.files("sales_forecast.ui").joinpath("page.html").read_text("utf-8")


def _default_opener(settings: Settings, dataset: str) -> AbstractContextManager[ForecastsData]:
    from sales_forecast.ui.backends import open_data

    return open_data(settings, dataset)


def _default_auth() -> Callable[..., Any]:
    from airflow.api_fastapi.core_api.security import requires_authenticated

    return requires_authenticated()


def create_app(
    opener: DataOpener = _default_opener,
    settings: Callable[[], Settings] = get_settings,
    auth: Callable[..., Any] | None = None,
) -> FastAPI:
    """The app; ``auth`` is the dependency every route needs (Airflow's by default)."""
    app = FastAPI(
        title="Sales forecasts",
        dependencies=[Depends(auth or _default_auth())],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def data(dataset: str | None = None) -> Iterator[ForecastsData]:
        cfg = settings()
        with opener(cfg, dataset or cfg.default_dataset) as d:
            yield d

    Data = Annotated[ForecastsData, Depends(data)]

    @app.exception_handler(ViewError)
    def _view_error(request: Request, exc: ViewError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ContractError)
    def _contract_error(request: Request, exc: ContractError) -> JSONResponse:
        return JSONResponse({"detail": f"unknown dataset: {exc}"}, status_code=404)

    @app.exception_handler(ConfigError)
    def _config_error(request: Request, exc: ConfigError) -> JSONResponse:
        log.error("sales forecasts view: %s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html())

    @app.get("/api/datasets")
    def datasets() -> dict[str, Any]:
        cfg = settings()
        return {
            "platform": cfg.platform,
            "default": cfg.default_dataset,
            "datasets": available_contracts(cfg),
        }

    @app.get("/api/series")
    def series(
        d: Data,
        q: str = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        return d.series(q, limit)

    @app.get("/api/view")
    def view(
        d: Data,
        series: Annotated[str | None, Query(description="a series id; empty: the total")] = None,
        days: Annotated[int, Query(ge=7, le=3660)] = 120,
    ) -> dict[str, Any]:
        series_id = series or None
        return {**d.view(series_id, days), "group": d.group_of(series_id)}

    @app.get("/api/accuracy")
    def accuracy(
        d: Data,
        group: str = "total",
        horizon_day: Annotated[int, Query(ge=0, le=366)] = 0,
    ) -> dict[str, Any]:
        return d.accuracy(group, horizon_day)

    @app.get("/api/drift")
    def drift(d: Data, monitor_date: date | None = None) -> dict[str, Any]:
        return d.drift(monitor_date)

    @app.get("/api/registry")
    def registry(d: Data) -> dict[str, Any]:
        return d.registry()

    return app
