"""The API reference at ``/docs``: one HTML page rendered from the app's own OpenAPI schema.

FastAPI's default ``/docs`` (Swagger UI) and ``/redoc`` load their JavaScript and styles from a
CDN: on a machine without internet access, or behind a proxy that blocks it, they are a blank
page. This page needs nothing but itself: inline CSS, no JavaScript, and no link that leaves
the app (``#`` anchors and the schema's own URL). It shows every route with its parameters,
request body, responses and examples, then every schema with its fields, types, ranges,
defaults and descriptions. What it shows is the schema ``/openapi.json`` serves, so it cannot
drift from the app.
"""

from __future__ import annotations

__all__ = ["render_docs"]

import html
import json
import re
from collections.abc import Mapping
from typing import Any

_METHODS = ("get", "post", "put", "patch", "delete")
# Markdown `code` and the docstrings' reStructuredText ``code``.
_CODE = re.compile(r"``([^`]+)``|`([^`]+)`")
_NOT_ANCHOR = re.compile(r"[^A-Za-z0-9_-]+")

_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem 2rem;
  color: #1b1f24; }
h1 small { font-weight: normal; color: #57606a; font-size: 60%; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.5rem; }
section { border: 1px solid #d0d7de; border-radius: 6px; padding: .2rem 1rem 1rem;
  margin: 1rem 0; }
h3 code { font-size: 105%; }
.method { display: inline-block; min-width: 4rem; text-align: center; border-radius: 4px;
  color: #fff; font-size: 80%; padding: .1rem .4rem; margin-right: .4rem; }
.get { background: #0969da; } .post { background: #1a7f37; } .put, .patch { background: #9a6700; }
.delete { background: #cf222e; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font-family: ui-monospace, monospace; font-size: 90%; background: #f6f8fa; }
pre { padding: .6rem; overflow-x: auto; border-radius: 4px; }
.required { color: #cf222e; font-size: 80%; }
.muted { color: #57606a; }
"""


def _text(value: object) -> str:
    """Schema prose as HTML: escaped, with `code` spans kept as code."""
    return _CODE.sub(lambda m: f"<code>{m[1] or m[2]}</code>", html.escape(str(value)))


def _anchor(kind: str, *names: str) -> str:
    return kind + "-" + "-".join(_NOT_ANCHOR.sub("-", n).strip("-") for n in names)


def _json(value: object) -> str:
    return html.escape(json.dumps(value, indent=2, ensure_ascii=False))


def _number(value: object) -> str:
    # pydantic writes a float bound (99.0) for an int field's le=99.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _limits(schema: Mapping[str, Any]) -> list[str]:
    """A schema's constraints in words: ``1..99``, ``at most 256 characters``, ..."""
    out = []
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        out.append(f"{_number(low)}..{_number(high)}")
    elif low is not None:
        out.append(f"at least {_number(low)}")
    elif high is not None:
        out.append(f"at most {_number(high)}")
    if "exclusiveMinimum" in schema:
        out.append(f"more than {_number(schema['exclusiveMinimum'])}")
    if "exclusiveMaximum" in schema:
        out.append(f"less than {_number(schema['exclusiveMaximum'])}")
    for key, bound, one, many in (
        ("minLength", "at least", "character", "characters"),
        ("maxLength", "at most", "character", "characters"),
        ("minItems", "at least", "item", "items"),
        ("maxItems", "at most", "item", "items"),
        ("minProperties", "at least", "entry", "entries"),
        ("maxProperties", "at most", "entry", "entries"),
    ):
        if key in schema:
            n = schema[key]
            out.append(f"{bound} {n} {one if n == 1 else many}")
    if "pattern" in schema:
        out.append(f"matching <code>{html.escape(str(schema['pattern']))}</code>")
    return out


def _type(schema: Mapping[str, Any] | None) -> str:
    """A schema's type as HTML: ``integer, 1..99``, ``array of <a>Instance</a>``, ..."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#{_anchor("schema", name)}">{html.escape(name)}</a>'
    for key, joiner in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        if key in schema:
            return joiner.join(_type(member) for member in schema[key])
    if "const" in schema:
        return f"<code>{_json(schema['const'])}</code>"
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{_json(v)}</code>" for v in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(map(str, kind))
    words = html.escape(str(kind))
    if kind == "array":
        words = f"array of {_grouped(schema.get('items'))}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        words = f"object of {_grouped(schema['additionalProperties'])}"
    notes = _limits(schema)
    if "format" in schema:
        notes.insert(0, html.escape(str(schema["format"])))
    return words + (f" ({', '.join(notes)})" if notes else "")


def _grouped(schema: Mapping[str, Any] | None) -> str:
    """:func:`_type` in brackets when it is a union: ``array of [a or b]`` reads one way."""
    words = _type(schema)
    return f"[{words}]" if " or " in words or " and " in words else words


def _default(schema: Mapping[str, Any]) -> str:
    return f"<code>{_json(schema['default'])}</code>" if "default" in schema else ""


def _table(head: list[str], rows: list[list[str]]) -> str:
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _examples(holder: Mapping[str, Any]) -> str:
    examples = holder.get("examples")
    found: list[object] = []
    if isinstance(examples, Mapping):  # OpenAPI's named examples
        found = [e.get("value") for e in examples.values() if isinstance(e, Mapping)]
    elif isinstance(examples, list):  # JSON Schema's list
        found = list(examples)
    if "example" in holder:
        found.append(holder["example"])
    return "".join(f"<p class=muted>Example</p><pre>{_json(e)}</pre>" for e in found)


def _operation(path: str, method: str, op: Mapping[str, Any]) -> str:
    parts = [
        f'<section id="{_anchor("op", method, path)}">',
        f'<h3><span class="method {method}">{method.upper()}</span>'
        f"<code>{html.escape(path)}</code> {_text(op.get('summary', ''))}</h3>",
    ]
    if op.get("description"):
        parts.append(f"<p>{_text(op['description'])}</p>")
    params = op.get("parameters") or []
    if params:
        rows = []
        for p in params:
            schema = p.get("schema") or {}
            required = " <span class=required>required</span>" if p.get("required") else ""
            rows.append(
                [
                    f"<code>{html.escape(p['name'])}</code>{required}",
                    html.escape(p.get("in", "")),
                    _type(schema),
                    _default(schema),
                    _text(p.get("description") or schema.get("description", "")),
                ]
            )
        parts.append("<h4>Parameters</h4>")
        parts.append(_table(["name", "in", "type", "default", "description"], rows))
    body = op.get("requestBody")
    if body:
        parts.append("<h4>Request body</h4>")
        for media, content in (body.get("content") or {}).items():
            required = " (required)" if body.get("required") else ""
            parts.append(
                f"<p><code>{html.escape(media)}</code>{required}: "
                f"{_type(content.get('schema'))}</p>{_examples(content)}"
            )
    rows = []
    for status, answer in (op.get("responses") or {}).items():
        schemas = [
            f"<code>{html.escape(media)}</code> {_type(c.get('schema'))}"
            for media, c in (answer.get("content") or {}).items()
        ]
        rows.append(
            [
                f"<b>{html.escape(str(status))}</b>",
                _text(answer.get("description", "")),
                "<br>".join(schemas),
            ]
        )
    if rows:
        parts.append("<h4>Responses</h4>" + _table(["status", "when", "body"], rows))
    parts.append("</section>")
    return "\n".join(parts)


def _schema(name: str, schema: Mapping[str, Any]) -> str:
    parts = [f'<section id="{_anchor("schema", name)}">', f"<h3>{html.escape(name)}</h3>"]
    if schema.get("description"):
        parts.append(f"<p>{_text(schema['description'])}</p>")
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    rows = [
        [
            f"<code>{html.escape(field)}</code>"
            + (" <span class=required>required</span>" if field in required else ""),
            _type(sub),
            _default(sub),
            _text(sub.get("description", "")),
        ]
        for field, sub in props.items()
    ]
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping) and props:
        rows.append(["<i>any other field</i>", _type(extra), "", "see the description above"])
    elif extra is False:
        parts.append("<p class=muted>No other fields are accepted.</p>")
    if rows:
        parts.append(_table(["field", "type", "default", "description"], rows))
    elif not props:
        parts.append(f"<p>{_type(schema)}</p>")
    parts.append(_examples(schema))
    parts.append("</section>")
    return "\n".join(parts)


def render_docs(openapi: Mapping[str, Any], openapi_url: str | None = "/openapi.json") -> str:
    """The whole page for an OpenAPI document (FastAPI's ``app.openapi()``)."""
    info = openapi.get("info") or {}
    title = html.escape(str(info.get("title", "API")))
    operations = [
        (path, method, op)
        for path, item in (openapi.get("paths") or {}).items()
        for method, op in item.items()
        if method in _METHODS
    ]
    toc = "".join(
        f'<li><a href="#{_anchor("op", m, p)}"><code>{m.upper()} {html.escape(p)}</code></a> '
        f"{_text(op.get('summary', ''))}</li>"
        for p, m, op in operations
    )
    schemas: Mapping[str, Any] = (openapi.get("components") or {}).get("schemas") or {}
    source = (
        f' The machine-readable schema: <a href="{html.escape(openapi_url)}">'
        f"{html.escape(openapi_url)}</a>."
        if openapi_url
        else ""
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}</title><style>{_CSS}</style></head><body>",
            f"<h1>{title} <small>{html.escape(str(info.get('version', '')))}</small></h1>",
            f"<p>{_text(info.get('description', ''))}{source}</p>",
            f"<h2>Routes</h2><ul>{toc}</ul>",
            *(_operation(p, m, op) for p, m, op in operations),
            "<h2>Schemas</h2>",
            *(_schema(name, schema) for name, schema in sorted(schemas.items())),
            "</body></html>",
        ]
    )
