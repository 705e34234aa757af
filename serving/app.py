"""The FastAPI app: Vertex AI's custom-container contract over the trainer's ``Forecaster``.

Routes (``AIP_*`` variables rename the first two):

* ``POST /predict`` -- ``{"instances": [...], "parameters": {...}}`` -> ``{"predictions": [...],
  "model_version": ...}``; see :mod:`serving.schemas` and docs/serving.md.
* ``GET /health`` -- the health route: liveness ("up") by default; readiness when
  ``AIP_HEALTH_ROUTE`` is set, because Vertex AI sends traffic, and judges a deployment, by it.
* ``GET /live`` (always 200) and ``GET /ready`` (200 with a verified model loaded, else 503).
* ``GET /metrics`` (Prometheus), ``GET /openapi.json``, ``GET /docs``.

Nothing is loaded at import: :func:`create_app` builds the app and its lifespan loads the
model (and, in registry mode, starts following the alias).
"""

from __future__ import annotations

__all__ = ["create_app"]

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import __version__
from serving.config import Settings, get_settings
from serving.errors import ModelNotReady, RequestError
from serving.metrics import LATENCY_BUCKETS, ServingMetrics
from serving.model_store import ModelStore
from serving.predictor import quiet_expected_warnings
from serving.schemas import (
    ErrorResponse,
    LiveResponse,
    PredictRequest,
    PredictResponse,
    ReadyResponse,
)

log = logging.getLogger(__name__)

_ERRORS = {
    400: {"model": ErrorResponse, "description": "The body is not UTF-8 JSON"},
    413: {"model": ErrorResponse, "description": "Body larger than SF_SERVING_MAX_BODY_BYTES"},
    422: {"model": ErrorResponse, "description": "A field is invalid; `detail` names it"},
    503: {"model": ErrorResponse, "description": "No verified model is loaded"},
}
_MAX_DETAILS = 20
_VALID_TYPE = re.compile(r"^Input should be a valid (\w+)")
# pydantic puts the union member it tried into an error's location; callers want the field.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|constrained-\w+|function-\w+.*|\w+\[.*\])$")


def _json_error(
    status: int, error: str, detail: Sequence[dict[str, str]] = (), **headers: str
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": error, "detail": list(detail)},
        headers=headers or None,
    )


def _field_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _field_errors(errors: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """pydantic's errors as ``{"field", "message"}``, one per field (union attempts merged)."""
    merged: dict[str, list[str]] = {}
    for err in errors:
        loc = list(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "json_invalid":
            position = loc[1] if len(loc) > 1 else "?"
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            merged.setdefault("body", []).append(f"invalid JSON at character {position}: {reason}")
            continue
        # Drop the union members pydantic names in the location (after field or dict key).
        loc = [p for i, p in enumerate(loc) if not (i > 1 and _UNION_TAG.match(str(p)))]
        field = _field_path(loc)
        message = "unknown field" if kind == "extra_forbidden" else str(err.get("msg", "invalid"))
        if kind == "missing":
            message = "required"
        messages = merged.setdefault(field, [])
        if message not in messages:
            messages.append(message)
    out = []
    for field, messages in list(merged.items())[:_MAX_DETAILS]:
        kinds = [m.group(1) for m in map(_VALID_TYPE.match, messages) if m]
        if len(messages) > 1 and len(kinds) == len(messages):
            # One failed attempt per union member: say which types would do.
            message = f"wrong type: expected {' or '.join(kinds)}"
        else:
            message = "; ".join(messages)
        out.append({"field": field, "message": message})
    return out


class BodyLimitMiddleware:
    """413 for bodies over the limit: by Content-Length up front, and counted as they stream
    (a chunked body has no Content-Length)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    bad = [{"field": "Content-Length", "message": "not an integer"}]
                    await _json_error(400, "invalid Content-Length header", bad)(
                        scope, receive, send
                    )
                    return
                if declared > limit:
                    response = _json_error(
                        413,
                        f"request body of {declared} bytes is over the limit of {limit} bytes",
                        [{"field": "body", "message": f"at most {limit} bytes"}],
                    )
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises an HTTPException raised while it reads the body.
                    raise HTTPException(413, f"request body is over the limit of {limit} bytes")
            return message

        await self.app(scope, limited, send)


class CatchAllMiddleware:
    """A generic 500 (logged, no internals in the answer) for any unexpected exception."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await _json_error(500, "internal server error")(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app (cheap: the model is loaded by the lifespan, not here)."""
    settings = settings or get_settings()
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry)
    store = ModelStore(settings, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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

    app = FastAPI(
        title="Sales forecast serving",
        version=__version__,
        description=(
            "Daily sales forecasts from the model the trainer built, in Vertex AI's "
            "custom-container format. See docs/serving.md."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics

    # ---------------------------------------------------------------- errors

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _field_errors(exc.errors())
        first = detail[0] if detail else {"field": "body", "message": "invalid"}
        return _json_error(422, f"invalid request: {first['field']}: {first['message']}", detail)

    @app.exception_handler(RequestError)
    async def _bad_request(request: Request, exc: RequestError) -> JSONResponse:
        return _json_error(
            exc.status,
            f"invalid request: {exc.field}: {exc.message}",
            [{"field": exc.field, "message": exc.message}],
        )

    @app.exception_handler(ModelNotReady)
    async def _not_ready(request: Request, exc: ModelNotReady) -> JSONResponse:
        return _json_error(503, f"no model to serve: {exc}", **{"Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        field: list[dict[str, str]] = []
        if exc.status_code == 413:
            field = [{"field": "body", "message": detail}]
        elif exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (e.g. not UTF-8).
            detail = "the body is not valid JSON text (UTF-8)"
            field = [{"field": "body", "message": detail}]
        return _json_error(exc.status_code, detail, field, **(exc.headers or {}))

    # ---------------------------------------------------------------- routes

    def live() -> dict[str, str]:
        return {"status": "alive"}

    def ready() -> JSONResponse:
        status = store.status()
        body = {
            "status": "ready" if status["ready"] else "not_ready",
            "reason": status["reason"],
            "model": status["model"],
            "last_error": status["last_error"],
        }
        return JSONResponse(status_code=200 if status["ready"] else 503, content=body)

    not_ready = {503: {"model": ReadyResponse, "description": "No verified model is loaded"}}
    app.add_api_route(
        "/live", live, methods=["GET"], response_model=LiveResponse, summary="Liveness: up"
    )
    app.add_api_route(
        "/ready",
        ready,
        methods=["GET"],
        response_model=ReadyResponse,
        responses=not_ready,
        summary="Readiness: a verified model is loaded",
    )
    if settings.health_route not in ("/live", "/ready"):
        if settings.health_is_readiness:
            app.add_api_route(
                settings.health_route,
                ready,
                methods=["GET"],
                response_model=ReadyResponse,
                responses=not_ready,
                summary="Health (readiness: AIP_HEALTH_ROUTE is set)",
            )
        else:
            app.add_api_route(
                settings.health_route,
                live,
                methods=["GET"],
                response_model=LiveResponse,
                summary="Health (liveness; /ready for readiness)",
            )

    async def predict(body: PredictRequest) -> Response:
        model = store.require()  # this request keeps this model even if a swap happens now
        content, stats = await run_in_threadpool(
            model.predictor.predict, body, max_instances=settings.max_instances
        )
        metrics.request_done(len(body.instances), stats)
        return Response(
            content, media_type="application/json", headers={"X-Model-Version": model.version}
        )

    app.add_api_route(
        settings.predict_route,
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        responses=_ERRORS,
        summary="Forecast the instances' series",
        description=(
            "Each instance names a series by the model's key columns (none for a "
            "single-series model) and may carry `horizon` (default and maximum: the trained "
            "horizon), `future` covariates for its forecast days and `history` actuals newer "
            "than the training data. `lower`/`upper` are the `parameters.level` interval "
            "(default 80%); `parameters.levels` adds `intervals` per level."
        ),
    )

    # ---------------------------------------------------------------- middleware, metrics

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
