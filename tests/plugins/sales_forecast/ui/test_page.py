"""The view's HTML page: served, complete, and self-contained (nothing from the internet)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient
from sales_forecast.ui.app import create_app, page_html

# The SVG namespace is an identifier the script passes to createElementNS, never fetched.
SVG_NS = "http://www.w3.org/2000/svg"


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("src", "href", "action", "srcset", "poster", "data") and value:
                self.refs.append((tag, name, value))


def test_page_is_served_as_html(settings):
    r = TestClient(create_app(auth=lambda: None)).get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<title>Sales forecasts</title>" in r.text


def test_page_references_no_external_url():
    html = page_html()
    parser = _Collect()
    parser.feed(html)
    assert parser.refs == []  # no script src, stylesheet link, image or form target at all
    assert "link" not in parser.tags and "iframe" not in parser.tags
    assert len([t for t in parser.tags if t == "script"]) == 1  # the inline one
    without_ns = html.replace(SVG_NS, "")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", without_ns, re.I)
    assert "@import" not in html and "url(" not in html


def test_page_has_every_part_of_the_view():
    parser = _Collect()
    parser.feed(page_html())
    for part in ("dataset", "search", "series-list", "chart", "accuracy", "drift", "registry"):
        assert part in parser.ids
    html = page_html()
    # The script calls only the app's own, relative routes.
    calls = set(re.findall(r'api\("([a-z]+)"', html))
    assert calls == {"datasets", "series", "view", "accuracy", "drift", "registry"}
    assert "fetch(API + path" in html
