"""The HTTP surface: routes, request/response shapes, every kind of bad request, metrics."""

from __future__ import annotations

from typing import Any

import pytest

S1A = {"store_id": "S1", "item_id": "A"}


def _predict(client: Any, *instances: dict[str, Any], **body: Any) -> Any:
    return client.post("/predict", json={"instances": list(instances), **body})


def _error(response: Any, status: int, field: str) -> str:
    """Assert a clean JSON error naming ``field``; return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    fields = [d["field"] for d in body["detail"]]
    assert field in fields, body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["detail"][fields.index(field)]["message"]


# ---------------------------------------------------------------- health, readiness


def test_live_ready_and_health(served: Any) -> None:
    assert served.get("/live").json() == {"status": "alive"}
    # AIP_HEALTH_ROUTE unset: /health is liveness.
    assert served.get("/health").json() == {"status": "alive"}
    ready = served.get("/ready")
    assert ready.status_code == 200
    model = ready.json()["model"]
    assert model["version"] == "1"
    assert model["sha256_verified"] is True
    assert model["series_keys"] == ["store_id", "item_id"]
    assert model["max_horizon"] == 7
    assert model["n_series"] == 4


def test_not_ready_without_a_registry(client_for: Any) -> None:
    client = client_for()
    assert client.get("/live").status_code == 200
    assert client.get("/health").status_code == 200  # up, even with nothing to serve
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert "no model registry" in ready.json()["reason"]
    response = _predict(client, S1A)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "no model to serve" in response.json()["error"]


def test_vertex_health_route_reports_readiness(
    client_for: Any, registry: Any, model_a: Any
) -> None:
    # Vertex sets AIP_HEALTH_ROUTE: that route then says "ready", not merely "up".
    client = client_for(health_route_env="/healthz", predict_route="/v1/predict")
    assert client.get("/healthz").status_code == 503
    assert client.get("/live").status_code == 200
    registry.promote(model_a)
    client2 = client_for(health_route_env="/healthz", predict_route="/v1/predict")
    assert client2.get("/healthz").json()["status"] == "ready"
    assert client2.post("/v1/predict", json={"instances": [S1A]}).status_code == 200
    assert client2.post("/predict", json={"instances": [S1A]}).status_code == 404


# ---------------------------------------------------------------- predict


def test_predict_shape(served: Any) -> None:
    response = _predict(served, {**S1A, "horizon": 3}, {"store_id": "S2", "item_id": "C"})
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "1"
    body = response.json()
    assert body["model_version"] == "1"
    first, second = body["predictions"]
    assert first["store_id"] == "S1" and first["item_id"] == "A"
    assert first["series_id"] == "S1|A"
    assert [p["date"] for p in first["forecasts"]] == ["2024-07-01", "2024-07-02", "2024-07-03"]
    for point in first["forecasts"]:
        assert set(point) == {"date", "forecast", "lower", "upper"}
        assert 0 <= point["lower"] <= point["forecast"] <= point["upper"]
    # The default horizon is the model's.
    assert len(second["forecasts"]) == 7
    for point in second["forecasts"]:
        assert (point["lower"] is None) == (point["upper"] is None)


def test_a_default_horizon_for_the_instances_that_give_none(served: Any) -> None:
    body = _predict(served, S1A, {**S1A, "horizon": 2}, parameters={"horizon": 3}).json()
    first, second = body["predictions"]
    assert len(first["forecasts"]) == 3 and len(second["forecasts"]) == 2  # its own wins
    message = _error(_predict(served, S1A, parameters={"horizon": 60}), 422, "parameters.horizon")
    assert "must be 1..7 days" in message or "1..7" in message


def test_levels(served: Any) -> None:
    narrow = _predict(served, S1A, parameters={"level": 50}).json()["predictions"][0]
    wide = _predict(served, S1A, parameters={"level": 95, "levels": [50, 95]}).json()
    point = wide["predictions"][0]["forecasts"][0]
    assert set(point["intervals"]) == {"50", "95"}
    assert point["intervals"]["95"] == {"lower": point["lower"], "upper": point["upper"]}
    assert point["intervals"]["50"]["lower"] == narrow["forecasts"][0]["lower"]
    assert point["lower"] <= point["intervals"]["50"]["lower"]


def test_future_and_history_change_the_forecast(served: Any, retail_panel: Any) -> None:
    plain = _predict(served, {**S1A, "horizon": 3}).json()["predictions"][0]["forecasts"]
    promo = [{"date": f"2024-07-0{d}", "on_promo": True, "price": 1.0} for d in (1, 2, 3)]
    with_future = _predict(served, {**S1A, "horizon": 3, "future": promo}).json()
    assert with_future["predictions"][0]["forecasts"] != plain
    rows = retail_panel[(retail_panel.store_id == "S1") & (retail_panel.item_id == "A")]
    newer = rows[rows.date > "2024-06-30"]
    history = [
        {"date": d.strftime("%Y-%m-%d"), "sales": s, "price": p, "on_promo": bool(o)}
        for d, s, p, o in zip(newer.date, newer.sales, newer.price, newer.on_promo, strict=True)
    ]
    moved = _predict(served, {**S1A, "horizon": 2, "history": history}).json()
    # Five newer actuals: the forecast starts the day after the last one.
    assert [p["date"] for p in moved["predictions"][0]["forecasts"]] == [
        "2024-07-06",
        "2024-07-07",
    ]


def test_history_not_newer_than_the_model_is_ignored(served: Any) -> None:
    old = [{"date": "2024-06-29", "sales": 1.0}, {"date": "2024-06-30", "sales": 2.0}]
    plain = _predict(served, S1A).json()
    assert _predict(served, {**S1A, "history": old}).json() == plain


# ---------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("instance", "field", "words"),
    [
        ({"store_id": "S9", "item_id": "A"}, "instances[0]", "unknown series"),
        ({**S1A, "horizon": 8}, "instances[0].horizon", "must be 1..7 days (the model's"),
        ({**S1A, "horizon": 0}, "instances[0].horizon", "must be 1..7 days (the model's"),
        ({**S1A, "horizon": -3}, "instances[0].horizon", "must be 1..7 days"),
        ({**S1A, "horizon": "7"}, "instances[0].horizon", "valid integer"),
        ({**S1A, "horizon": 2.5}, "instances[0].horizon", "valid integer"),
        ({"store_id": "S1"}, "instances[0].item_id", "required"),
        ({**S1A, "colour": "red"}, "instances[0].colour", "unknown field"),
        ({**S1A, "store_id": ["S1"]}, "instances[0].store_id", "wrong type"),
        (
            {**S1A, "future": [{"date": "2024-7-01"}]},
            "instances[0].future[0].date",
            "YYYY-MM-DD",
        ),
        (
            {**S1A, "future": [{"date": "2024-02-30"}]},
            "instances[0].future[0].date",
            "not a valid date",
        ),
        (
            {**S1A, "future": [{"date": "2024-07-01", "price": "cheap"}]},
            "instances[0].future[0].price",
            "expected a number",
        ),
        (
            {**S1A, "future": [{"date": "2024-07-01", "on_promo": 2}]},
            "instances[0].future[0].on_promo",
            "true/t/1/yes/y or false/f/0/no/n, any case",
        ),
        (
            {**S1A, "history": [{"date": "2024-07-01", "sales": 1, "on_promo": "maybe"}]},
            "instances[0].history[0].on_promo",
            "true/t/1/yes/y or false/f/0/no/n, any case",
        ),
        (
            {**S1A, "future": [{"date": "2024-07-01", "price": {"x": 1}}]},
            "instances[0].future[0].price",
            "wrong type",
        ),
        (
            {**S1A, "future": [{"date": "2024-07-01", "discount": 0.1}]},
            "instances[0].future[0].discount",
            "unknown column",
        ),
        (
            {**S1A, "future": [{"date": "2024-07-01", "sales": 3}]},
            "instances[0].future[0].sales",
            "target",
        ),
        (
            {**S1A, "future": [{"date": "2024-07-01", "store_id": "S1"}]},
            "instances[0].future[0].store_id",
            "series keys go on the instance",
        ),
        ({**S1A, "future": [{"price": 2.0}]}, "instances[0].future[0].date", "required"),
        (
            {**S1A, "horizon": 2, "future": [{"date": "2024-07-03"}]},
            "instances[0].future[0].date",
            "outside this instance's forecast days 2024-07-01 .. 2024-07-02",
        ),
        (
            {**S1A, "future": [{"date": "2024-07-01"}, {"date": "2024-07-01"}]},
            "instances[0].future[1].date",
            "appears twice",
        ),
        (
            {**S1A, "history": [{"date": "2024-07-01"}]},
            "instances[0].history[0].sales",
            "required",
        ),
        (
            {**S1A, "history": [{"date": "2024-07-02", "sales": 1.0}]},
            "instances[0].history",
            "send the days from 2024-07-01 on",
        ),
        (
            {
                **S1A,
                "history": [{"date": "2024-07-01", "sales": 1}, {"date": "2024-07-03", "sales": 1}],
            },
            "instances[0].history",
            "consecutive days",
        ),
        (
            {
                **S1A,
                "history": [{"date": "2024-07-01", "sales": 1}, {"date": "2024-07-01", "sales": 2}],
            },
            "instances[0].history[1].date",
            "appears twice",
        ),
    ],
)
def test_bad_instances_name_the_field(
    served: Any, instance: dict[str, Any], field: str, words: str
) -> None:
    message = _error(_predict(served, instance), 422, field)
    assert words in message


@pytest.mark.parametrize(
    ("parameters", "field", "message"),
    [
        ({"level": 100}, "parameters.level", "must be 1..99, got 100"),
        ({"level": 0}, "parameters.level", "must be 1..99, got 0"),
        ({"levels": [80, -5]}, "parameters.levels[1]", "must be 1..99, got -5"),
    ],
)
def test_level_errors_state_the_range(
    served: Any, parameters: dict[str, Any], field: str, message: str
) -> None:
    response = _predict(served, S1A, parameters=parameters)
    assert _error(response, 422, field) == message
    assert response.json()["error"] == f"invalid request: {field}: {message}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"instances": []}, "instances"),
        ({}, "instances"),
        ({"instances": {"store_id": "S1"}}, "instances"),
        ({"instances": [S1A], "extra": 1}, "extra"),
        ({"instances": [S1A], "parameters": {"level": 100}}, "parameters.level"),
        ({"instances": [S1A], "parameters": {"levels": [0]}}, "parameters.levels[0]"),
        ({"instances": [S1A], "parameters": {"confidence": 0.9}}, "parameters.confidence"),
        ([1, 2], "body"),
    ],
)
def test_bad_bodies_name_the_field(served: Any, body: Any, field: str) -> None:
    _error(served.post("/predict", json=body), 422, field)


def test_invalid_json(served: Any) -> None:
    response = served.post(
        "/predict", content=b'{"instances": [', headers={"content-type": "application/json"}
    )
    assert "invalid JSON" in _error(response, 422, "body")


def test_too_many_instances(client_for: Any, registry: Any, model_a: Any) -> None:
    registry.promote(model_a)
    client = client_for(max_instances=3)
    assert _predict(client, *[S1A] * 3).status_code == 200
    assert "at most 3" in _error(_predict(client, *[S1A] * 4), 422, "instances")


def test_unknown_route_is_json_404(served: Any) -> None:
    response = served.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"
    assert served.get("/predict").status_code == 405


# ---------------------------------------------------------------- batching


def test_one_forecaster_call_per_horizon(served: Any, monkeypatch: Any) -> None:
    predictor = served.app.state.store.current.predictor
    calls: list[dict[str, Any]] = []
    original = predictor.forecaster.forecast

    def spy(horizon: int, **kwargs: Any) -> Any:
        calls.append({"horizon": horizon, "series_ids": kwargs.get("series_ids")})
        return original(horizon, **kwargs)

    monkeypatch.setattr(predictor.forecaster, "forecast", spy)
    future = [{"date": "2024-07-01", "on_promo": True}]
    instances = [
        {"store_id": s, "item_id": i, "horizon": 5, "future": future}
        for s, i in [("S1", "A"), ("S1", "B"), ("S2", "A"), ("S2", "C")]
    ]
    instances.append({**S1A, "horizon": 3, "future": future})  # another horizon
    instances.append({**S1A, "horizon": 5, "future": [{"date": "2024-07-02"}]})  # again
    instances.append({"store_id": "S2", "item_id": "A"})  # plain: the precomputed forecast
    response = _predict(served, *instances)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 7
    assert sorted((c["horizon"], len(c["series_ids"])) for c in calls) == [(3, 1), (5, 1), (5, 4)]


# ---------------------------------------------------------------- metrics, schema


def test_metrics(served: Any) -> None:
    _predict(served, S1A)
    _predict(served, {"store_id": "S9", "item_id": "A"})
    text = served.get("/metrics").text
    assert (
        'sales_forecast_model_info{mode="registry",model="sales_forecast",version="1"} 1.0' in text
    )
    assert "sales_forecast_model_loaded 1.0" in text
    assert 'http_requests_total{handler="/predict",method="POST",status="200"} 1.0' in text
    assert 'http_requests_total{handler="/predict",method="POST",status="422"} 1.0' in text
    assert 'http_request_duration_seconds_bucket{handler="/predict",le="0.005"' in text
    assert 'sales_forecast_instances_answered_total{path="cache"} 1.0' in text


def test_openapi_schema(served: Any) -> None:
    schema = served.get("/openapi.json").json()
    predict = schema["paths"]["/predict"]["post"]
    assert {"200", "413", "422", "503"} <= set(predict["responses"])
    assert "/metrics" not in schema["paths"]
    assert "/docs" not in schema["paths"]
    series = schema["paths"]["/series"]["get"]
    ok = series["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/SeriesPage"}
    assert {"422", "503"} <= set(series["responses"])
    params = {p["name"]: p["schema"] for p in series["parameters"]}
    limit = params["limit"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 1000, 100)
    assert params["offset"]["minimum"] == 0 and params["offset"]["default"] == 0
    page = schema["components"]["schemas"]["SeriesPage"]["properties"]
    assert set(page) == {"model_version", "total", "offset", "limit", "series", "next_offset"}


def test_docs_page_works_offline(served: Any) -> None:
    """/docs needs nothing from outside the app (FastAPI's loads Swagger UI from a CDN)."""
    import re

    response = served.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script" not in page.lower()
    assert not re.search(r"https?://", page), re.search(r".{40}https?://.{40}", page)
    # Every reference is an anchor on the page or a path of the app itself.
    refs = re.findall(r"""(?:href|src|action)\s*=\s*["']?([^"'\s>]+)""", page, re.IGNORECASE)
    refs += re.findall(r"url\(([^)]*)\)", page)
    assert refs and all(r.startswith(("#", "/")) and not r.startswith("//") for r in refs), refs
    assert 'href="/openapi.json"' in page
    # It documents the routes and their rules, from the schema itself.
    for text in ("/predict", "/series", "/ready", "offset", "1..1000", "1..99", "S01"):
        assert text in page, text
    # ReDoc loads its script from a CDN as well: not served.
    assert served.get("/redoc").status_code == 404


# ---------------------------------------------------------------- series the model cannot serve


def test_a_new_series_is_a_422_that_says_why_and_when(served: Any) -> None:
    response = _predict(served, S1A, {"store_id": "S1", "item_id": "NEW"})
    message = _error(response, 422, "instances[1]")
    assert message.startswith("unknown series: store_id='S1', item_id='NEW' is not in model")
    assert "model version 1 (trained on data up to 2024-06-30)" in message
    assert "served after the next training run that includes it" in message
    assert message.endswith("see GET /series for the 4 series this model knows")
    assert message in response.json()["error"]


def test_a_key_holding_the_separator_is_a_422_on_that_field(served: Any) -> None:
    response = _predict(served, {"store_id": "S01|X", "item_id": "A"})
    message = _error(response, 422, "instances[0].store_id")
    assert "'S01|X' contains '|'" in message
    # The field that holds it is named, whichever key it is.
    response = _predict(served, {"store_id": "S1", "item_id": "A|B"})
    assert "'|'" in _error(response, 422, "instances[0].item_id")


# ---------------------------------------------------------------- the series the model knows


def _all_series(client: Any, limit: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every page from offset 0, following next_offset: (the series, each page's body)."""
    pages, offset = [], 0
    while offset is not None:
        response = client.get("/series", params={"offset": offset, "limit": limit})
        assert response.status_code == 200, response.text
        assert response.headers["x-model-version"] == response.json()["model_version"]
        pages.append(response.json())
        offset = pages[-1]["next_offset"]
    return [s for page in pages for s in page["series"]], pages


def test_series_lists_every_series_the_model_serves_in_pages(served: Any) -> None:
    listed, pages = _all_series(served, limit=3)
    assert [(p["offset"], p["limit"], p["total"], p["next_offset"]) for p in pages] == [
        (0, 3, 4, 3),
        (3, 3, 4, None),
    ]
    assert listed == [
        {"store_id": s, "item_id": i, "series_id": f"{s}|{i}", "last_date": "2024-06-30"}
        for s, i in [("S1", "A"), ("S1", "B"), ("S2", "A"), ("S2", "C")]
    ]
    # What is listed is what /predict takes: the keys name the series, and its forecast
    # starts the day after last_date.
    keys = [{"store_id": s["store_id"], "item_id": s["item_id"]} for s in listed]
    answer = _predict(served, *[{**k, "horizon": 1} for k in keys])
    assert answer.status_code == 200
    assert [p["series_id"] for p in answer.json()["predictions"]] == [
        s["series_id"] for s in listed
    ]
    assert {p["forecasts"][0]["date"] for p in answer.json()["predictions"]} == {"2024-07-01"}
    # Default page: 100 series.
    default = served.get("/series").json()
    assert (default["offset"], default["limit"], default["next_offset"]) == (0, 100, None)
    assert default["series"] == listed


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("offset=-1", "offset", "must be 0..4 (model version 1 knows 4 series), got -1"),
        ("offset=5", "offset", "must be 0..4 (model version 1 knows 4 series), got 5"),
        ("limit=0", "limit", "must be 1..1000, got 0"),
        ("limit=1001", "limit", "must be 1..1000, got 1001"),
        ("limit=ten", "limit", "valid integer"),
    ],
)
def test_series_paging_errors_state_the_range(
    served: Any, query: str, field: str, message: str
) -> None:
    assert message in _error(served.get(f"/series?{query}"), 422, field)


def test_series_of_a_single_series_model(
    registry: Any, takeaway_model: Any, client_for: Any
) -> None:
    registry.promote(takeaway_model)
    client = client_for()
    page = client.get("/series").json()
    assert (page["total"], page["next_offset"]) == (1, None)
    # No key columns: the one series by the id /predict answers with.
    assert page["series"] == [{"series_id": "total", "last_date": "2024-06-30"}]
    prediction = _predict(client, {"horizon": 1}).json()["predictions"][0]
    assert prediction["series_id"] == "total"


def test_series_without_a_model_is_a_503(client_for: Any) -> None:
    response = client_for().get("/series")
    assert response.status_code == 503
    assert "no model to serve" in response.json()["error"]


def test_series_follows_the_model_being_served(
    registry: Any, model_a: Any, helpers: Any, tmp_path: Any, client_for: Any
) -> None:
    """A swap to a version with other series changes the listing (and its version) at once."""
    registry.promote(model_a)
    client = client_for()
    assert client.get("/series").json()["total"] == 4
    panel = helpers.make_retail_panel()
    fewer = panel[panel["store_id"] == "S1"]
    other = helpers.fit_and_save(
        fewer, helpers.RETAIL_CONTRACT, helpers.small_config(), tmp_path / "s1-only"
    )
    registry.promote(other)
    assert client.app.state.store.refresh() is True
    page = client.get("/series")
    assert page.headers["x-model-version"] == page.json()["model_version"] == "2"
    assert [s["series_id"] for s in page.json()["series"]] == ["S1|A", "S1|B"]
    assert "for the 2 series this model knows" in _error(
        _predict(client, {"store_id": "S2", "item_id": "A"}), 422, "instances[0]"
    )


# ---------------------------------------------------------------- booleans as the CSV spells them


@pytest.mark.parametrize(
    ("spelled", "as_json"),
    [
        ("yes", True),
        (" Y ", True),
        ("TRUE", True),
        (1, True),
        ("n", False),
        ("0", False),
        (0, False),
    ],
)
def test_a_bool_spelled_as_in_the_csv_reaches_the_model_as_the_boolean(
    served: Any, monkeypatch: Any, spelled: Any, as_json: bool
) -> None:
    predictor = served.app.state.store.current.predictor
    seen: list[Any] = []
    original = predictor.forecaster.forecast

    def spy(horizon: int, **kwargs: Any) -> Any:
        seen.append(kwargs["future_df"]["on_promo"].tolist())
        return original(horizon, **kwargs)

    monkeypatch.setattr(predictor.forecaster, "forecast", spy)

    def forecasts(value: Any) -> Any:
        future = [{"date": "2024-07-01", "on_promo": value, "price": 2.0}]
        response = _predict(served, {**S1A, "horizon": 2, "future": future})
        assert response.status_code == 200, response.text
        return response.json()["predictions"][0]["forecasts"]

    assert forecasts(spelled) == forecasts(as_json)
    assert seen == [[as_json], [as_json]]
    assert all(type(v) is bool for v in seen[0])
