"""Every route of the view answers only an authenticated Airflow user (Airflow's own check).

A plugin's FastAPI app is open to anyone by default; the app depends on
``requires_authenticated()``. Tokens here are real JWTs signed by Airflow's simple auth manager;
only the revoked-token lookup (a metadata-database table this test has no database for) is
replaced.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sales_forecast.ui.app import create_app

ROUTES = [
    "/",
    "/api/datasets",
    "/api/series",
    "/api/view",
    "/api/accuracy",
    "/api/drift",
    "/api/registry",
]


@pytest.fixture
def token(monkeypatch) -> str:
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "sales-forecasts-view-test-" + "k" * 48)
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken

    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti: False))
    manager = create_auth_manager()
    return manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app())  # Airflow's requires_authenticated()


@pytest.mark.parametrize("route", ROUTES)
def test_without_a_token_every_route_is_401(client, route):
    r = client.get(route)
    assert r.status_code == 401
    assert r.json() == {"detail": "Not authenticated"}


def test_a_forged_token_is_refused(client, token):
    r = client.get("/api/datasets", headers={"Authorization": "Bearer " + token[:-4] + "AAAA"})
    assert r.status_code in (401, 403)


@pytest.mark.parametrize("route", ROUTES)
def test_an_airflow_token_opens_every_route(client, token, route, warehouse):
    r = client.get(route, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text


def test_the_ui_cookie_is_enough(client, token, warehouse):
    # Inside the Airflow UI the page is in an iframe: its requests carry the _token cookie.
    client.cookies.set("_token", token)
    assert client.get("/api/view").status_code == 200


def test_no_docs_routes_bypass_the_check(client):
    for route in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(route).status_code in (401, 404)
