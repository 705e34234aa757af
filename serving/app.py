"""The FastAPI app: Vertex AI's custom-container contract over the trainer's ``Forecaster``.

Routes (``AIP_*`` variables rename the first two):

* ``POST /predict`` -- ``{"instances": [...], "parameters": {...}}`` -> ``{"predictions": [...],
  "model_version": ...}``; see :mod:`serving.schemas` and docs/serving.md.
* ``GET /health`` -- the health route: liveness ("up") by default; readiness when
  ``AIP_HEALTH_ROUTE`` is set, because Vertex AI sends traffic, and judges a deployment, by it.
* ``GET /live`` (always 200) and ``GET /ready`` (200 with a verified model loaded, else 503).
* ``GET /series`` -- the series the loaded model knows, paged.
* ``GET /metrics`` (Prometheus), ``GET /openapi.json``, ``GET /docs`` (the API reference as
  one self-contained page: no JavaScript or styles from a CDN, so it works offline).

Nothing is loaded at import: :func:`create_app` builds the app and its lifespan loads the
model (and, in registry mode, starts following the alias). The routes are in
:mod:`serving.routes`, the error answers in :mod:`serving.error_handlers`, the body limit and
the catch-all 500 in :mod:`serving.middleware`.
"""

from __future__ import annotations

__all__ = ["create_app"]

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.concurrency import run_in_threadpool

from serving import __version__
from serving.config import Settings, get_settings
from serving.error_handlers import add_error_handlers
from serving.metrics import LATENCY_BUCKETS, ServingMetrics
from serving.middleware import BodyLimitMiddleware, CatchAllMiddleware
from serving.model_store import ModelStore
from serving.predictor import quiet_expected_warnings
from serving.routes import build_router


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model (in a worker thread) and, in registry mode, follow the alias."""
    settings: Settings = app.state.settings
    store: ModelStore = app.state.store
    quiet_expected_warnings()
    await run_in_threadpool(store.load_initial)
    watcher = None
    if settings.mode == "registry" and settings.poll_interval_s > 0:
        watcher = asyncio.create_task(store.watch())
    try:
        yield
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app (cheap: the model is loaded by the lifespan, not here)."""
    settings = settings or get_settings()
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry)
    app = FastAPI(
        title="Sales forecast serving",
        version=__version__,
        description=(
            "Daily sales forecasts from the model the trainer built, in Vertex AI's "
            "custom-container format. See docs/serving.md."
        ),
        lifespan=lifespan,
        # Both load their JavaScript from a CDN; the router serves a self-contained /docs.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = ModelStore(settings, metrics)
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        # The published example names the served model's own series and days, so it is a
        # request that model answers (a fixed one fails any model whose data ends elsewhere).
        schema = copy.deepcopy(base_openapi())
        model = app.state.store.current
        request = schema.get("components", {}).get("schemas", {}).get("PredictRequest")
        if model is not None and isinstance(request, dict):
            request["examples"] = [model.predictor.example_request()]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.metrics = metrics
    add_error_handlers(app)
    app.include_router(build_router(settings))

    # Innermost first: the catch-all sees handler errors, the instrumentator (outermost)
    # counts every answer, 413s and 500s included.
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    Instrumentator(
        should_group_status_codes=False,
        should_ignore_untemplated=True,  # fuzzed or scanned paths must not add label values
        excluded_handlers=["/metrics"],
        registry=registry,
    ).instrument(
        app,
        latency_lowr_buckets=LATENCY_BUCKETS,
        latency_highr_buckets=LATENCY_BUCKETS,
    ).expose(app, include_in_schema=False)
    return app
