"""The HTTP routes on an ``APIRouter``, and what they depend on.

Paths come from the settings (Vertex AI renames the predict and health routes through
``AIP_PREDICT_ROUTE`` / ``AIP_HEALTH_ROUTE``), so the router is built per app by
:func:`build_router`. The store, settings and metrics are the app's (``app.state``), reached
through ``Annotated[..., Depends()]`` parameters as in the FastAPI template. ``/docs`` is a
page rendered here from the app's own OpenAPI schema (:mod:`serving.docs_page`): FastAPI's
default loads Swagger UI from a CDN, which a machine without internet access cannot reach.
"""

from __future__ import annotations

__all__ = ["MetricsDep", "SettingsDep", "StoreDep", "build_router"]

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from serving.config import SERIES_ROUTE, Settings
from serving.docs_page import render_docs
from serving.metrics import ServingMetrics
from serving.model_store import ModelStore
from serving.schemas import (
    SERIES_LIMIT_DEFAULT,
    SERIES_LIMIT_MAX,
    ErrorResponse,
    LiveResponse,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
    SeriesPage,
    in_range,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not UTF-8 JSON"},
    413: {"model": ErrorResponse, "description": "Body larger than SF_SERVING_MAX_BODY_BYTES"},
    422: {"model": ErrorResponse, "description": "A field is invalid; `detail` names it"},
    503: {"model": ErrorResponse, "description": "No verified model is loaded"},
}
_SERIES_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "offset or limit out of range; `detail` says"},
    503: _ERRORS[503],
}
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ReadyResponse, "description": "No verified model is loaded"}
}
_PREDICT_DESCRIPTION = (
    "Each instance names a series by the model's key columns (none for a "
    "single-series model) and may carry `horizon` (default and maximum: the trained "
    "horizon), `future` covariates for its forecast days and `history` actuals newer "
    "than the training data. `lower`/`upper` are the `parameters.level` interval "
    "(default 80%); `parameters.levels` adds `intervals` per level. GET /series lists the "
    "series the model knows."
)
_SERIES_DESCRIPTION = (
    "The series the loaded model knows, sorted by `series_id`, `limit` at a time: each with "
    "the model's key columns (what a /predict instance names it by; none for a single-series "
    "model), its `series_id` and the last day of its data. Follow `next_offset` (null on the "
    "last page); `model_version` says which model the page is from (a page is from one model, "
    "even while a new version is swapped in)."
)
# The offset's upper end is the loaded model's number of series: checked (and said) per request.
OffsetQuery = Annotated[
    int,
    Query(description="The first series to list (0 .. total).", json_schema_extra={"minimum": 0}),
]
LimitQuery = Annotated[
    int,
    Query(ge=1, le=SERIES_LIMIT_MAX, description=f"Series per page (1..{SERIES_LIMIT_MAX})."),
    in_range(1, SERIES_LIMIT_MAX),
]


# async: a plain function dependency would cost a worker-thread hop on every request.
async def _store(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.store
    return store


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _metrics(request: Request) -> ServingMetrics:
    metrics: ServingMetrics = request.app.state.metrics
    return metrics


StoreDep = Annotated[ModelStore, Depends(_store)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[ServingMetrics, Depends(_metrics)]


def live() -> dict[str, str]:
    return {"status": "alive"}


def ready(store: StoreDep) -> JSONResponse:
    status = store.status()
    settings = store.settings
    model = status["model"]
    if model is not None:
        model = {k: settings.redact(v) if isinstance(v, str) else v for k, v in model.items()}
    body = {
        "status": "ready" if status["ready"] else "not_ready",
        "reason": settings.redact(status["reason"]),
        "model": model,
        "last_error": settings.redact(status["last_error"]),
    }
    return JSONResponse(status_code=200 if status["ready"] else 503, content=body)


async def series(
    store: StoreDep, offset: OffsetQuery = 0, limit: LimitQuery = SERIES_LIMIT_DEFAULT
) -> JSONResponse:
    model = store.require()  # once: the whole page is from this model, swap or not
    return JSONResponse(
        model.predictor.series_page(offset, limit), headers={"X-Model-Version": model.version}
    )


async def docs(request: Request) -> HTMLResponse:
    # Rendered once per served version: only the example (the model's own series) changes.
    model = request.app.state.store.current
    version = model.version if model is not None else None
    cached: tuple[str | None, str] | None = getattr(request.app.state, "docs_html", None)
    if cached is None or cached[0] != version:
        cached = (version, render_docs(request.app.openapi(), request.app.openapi_url))
        request.app.state.docs_html = cached
    return HTMLResponse(cached[1])


async def predict(
    body: PredictRequest, store: StoreDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    # Taken here, not in a dependency: a request that is invalid *and* finds no model is a
    # 422 (the body is validated first), and this request keeps this model even if a swap
    # happens now.
    model = store.require()
    content, stats = await run_in_threadpool(
        model.predictor.predict,
        body,
        max_instances=settings.max_instances,
        max_series_repeats=settings.max_series_repeats,
    )
    metrics.request_done(len(body.instances), stats)
    return Response(
        content, media_type="application/json", headers={"X-Model-Version": model.version}
    )


def build_router(settings: Settings) -> APIRouter:
    """The routes at the paths ``settings`` names."""
    router = APIRouter()
    router.add_api_route(
        "/live", live, methods=["GET"], response_model=LiveResponse, summary="Liveness: up"
    )
    router.add_api_route(
        "/ready",
        ready,
        methods=["GET"],
        response_model=ReadyResponse,
        responses=_NOT_READY,
        summary="Readiness: a verified model is loaded",
    )
    if settings.health_route not in ("/live", "/ready"):
        if settings.health_is_readiness:
            router.add_api_route(
                settings.health_route,
                ready,
                methods=["GET"],
                response_model=ReadyResponse,
                responses=_NOT_READY,
                summary="Health (readiness: AIP_HEALTH_ROUTE is set)",
            )
        else:
            router.add_api_route(
                settings.health_route,
                live,
                methods=["GET"],
                response_model=LiveResponse,
                summary="Health (liveness; /ready for readiness)",
            )
    router.add_api_route(
        settings.predict_route,
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        responses=_ERRORS,
        summary="Forecast the instances' series",
        description=_PREDICT_DESCRIPTION,
    )
    router.add_api_route(
        SERIES_ROUTE,
        series,
        methods=["GET"],
        response_model=SeriesPage,
        responses=_SERIES_ERRORS,
        summary="The series the model knows, paged",
        description=_SERIES_DESCRIPTION,
    )
    router.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    return router
