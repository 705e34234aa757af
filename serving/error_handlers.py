"""Every error as ``{"error": "<one line>", "detail": [{"field", "message"}]}``, never a trace.

pydantic's validation errors are merged to one entry per field (a union's failed attempts say
which types would do); :class:`RequestError` names its own field; :class:`ModelNotReady` is a
503 with ``Retry-After``; Starlette's own errors (404, 405, 413, 400) keep their status.
"""

from __future__ import annotations

__all__ = ["add_error_handlers", "field_errors", "json_error"]

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.errors import ModelNotReady, RequestError

_MAX_DETAILS = 20
_VALID_TYPE = re.compile(r"^Input should be a valid (\w+)")
# pydantic puts the union member it tried into an error's location; callers want the field.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|constrained-\w+|function-\w+.*|\w+\[.*\])$")


def json_error(
    status: int,
    error: str,
    detail: Sequence[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error body of the app."""
    return JSONResponse(
        status_code=status,
        content={"error": error, "detail": list(detail)},
        headers=headers or None,
    )


def _field_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    # A body field is named by its path in the body, a query parameter by its name.
    if parts and parts[0] in ("body", "query"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def field_errors(errors: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
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


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = field_errors(exc.errors())
    first = detail[0] if detail else {"field": "body", "message": "invalid"}
    return json_error(422, f"invalid request: {first['field']}: {first['message']}", detail)


async def _bad_request(request: Request, exc: RequestError) -> JSONResponse:
    return json_error(
        exc.status,
        f"invalid request: {exc.field}: {exc.message}",
        [{"field": exc.field, "message": exc.message}],
    )


async def _not_ready(request: Request, exc: ModelNotReady) -> JSONResponse:
    message = request.app.state.settings.redact(f"no model to serve: {exc}")
    return json_error(503, message, headers={"Retry-After": "5"})


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else "error"
    field: list[dict[str, str]] = []
    if exc.status_code == 413:
        field = [{"field": "body", "message": detail}]
    elif exc.status_code == 400:
        # FastAPI's answer to a body it cannot decode (e.g. not UTF-8).
        detail = "the body is not valid JSON text (UTF-8)"
        field = [{"field": "body", "message": detail}]
    return json_error(exc.status_code, detail, field, headers=dict(exc.headers or {}))


def add_error_handlers(app: FastAPI) -> None:
    """Install the handlers that give every known error the app's JSON shape."""
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(RequestError)(_bad_request)
    app.exception_handler(ModelNotReady)(_not_ready)
    app.exception_handler(StarletteHTTPException)(_http)
