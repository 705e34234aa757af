"""The self-contained /docs page: everything in the schema shown, nothing loaded from outside."""

from __future__ import annotations

import re
from typing import Any

from serving.docs_page import render_docs

SCHEMA: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "T <&>", "version": "9.9", "description": "Says `code`."},
    "paths": {
        "/things/{id}": {
            "get": {
                "summary": "One thing",
                "description": "Returns <b>one</b> thing.",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
                    },
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                        },
                    },
                    "422": {"description": "Bad"},
                },
            },
            "post": {
                "summary": "Make one",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/Thing"},
                            "example": {"name": "<x>"},
                        }
                    },
                },
                "responses": {"200": {"description": "Made"}},
            },
        }
    },
    "components": {
        "schemas": {
            "Thing": {
                "type": "object",
                "description": "A ``thing``.",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "maxLength": 1},
                    "tags": {
                        "anyOf": [
                            {
                                "type": "array",
                                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            },
                            {"type": "null"},
                        ],
                        "description": "Tags.",
                    },
                    "level": {"type": "integer", "minimum": 1.0, "maximum": 99.0, "default": 80},
                },
                "additionalProperties": False,
                "examples": [{"name": "a"}],
            }
        }
    },
}


def test_every_route_parameter_and_schema_is_on_the_page() -> None:
    page = render_docs(SCHEMA)
    for text in (
        "<code>GET /things/{id}</code>",
        "<code>POST /things/{id}</code>",
        "One thing",
        "Make one",
        "<code>limit</code>",
        "integer (1..50)",  # a range in words
        "<code>5</code>",  # the default
        "<code>id</code> <span class=required>required</span>",
        '<section id="schema-Thing">',
        "string (at most 1 character)",
        "array of [string or integer] or null",  # a union inside an array reads one way
        "integer (1..99)",  # pydantic's float bounds shown as the integers they are
        "No other fields are accepted.",
        "<code>thing</code>",  # reStructuredText ``code`` from a docstring
        "Says <code>code</code>.",
        '<a href="/openapi.json">',
    ):
        assert text in page, text


def test_links_resolve_on_the_page() -> None:
    page = render_docs(SCHEMA)
    anchors = set(re.findall(r'id="([^"]+)"', page))
    links = re.findall(r'href="#([^"]+)"', page)
    assert links and set(links) <= anchors


def test_schema_text_is_escaped_not_markup() -> None:
    page = render_docs(SCHEMA)
    assert "<b>one</b>" not in page and "&lt;b&gt;one&lt;/b&gt;" in page
    assert "T &lt;&amp;&gt;" in page
    assert "&quot;&lt;x&gt;&quot;" in page  # the example, as JSON text
    assert "<x>" not in page


def test_nothing_is_loaded_from_outside() -> None:
    page = render_docs(SCHEMA, openapi_url=None)
    assert "<script" not in page and "<link" not in page and "src=" not in page
    assert "openapi.json" not in page
    assert not re.search(r"https?://|url\(", page)
