"""ASGI middleware around the app: the body size limit and the catch-all 500."""

from __future__ import annotations

__all__ = ["BodyLimitMiddleware", "CatchAllMiddleware"]

import logging

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.error_handlers import json_error

log = logging.getLogger(__name__)


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
                    await json_error(400, "invalid Content-Length header", bad)(
                        scope, receive, send
                    )
                    return
                if declared > limit:
                    response = json_error(
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
            await json_error(500, "internal server error")(scope, receive, send)
