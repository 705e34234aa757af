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
        ({**S1A, "horizon": 8}, "instances[0].horizon", "trained horizon of 7"),
        ({**S1A, "horizon": 0}, "instances[0].horizon", "greater than or equal to 1"),
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
            {**S1A, "future": [{"date": "2024-07-01", "on_promo": 1}]},
            "instances[0].future[0].on_promo",
            "true or false",
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
    assert served.get("/docs").status_code == 200


# ---------------------------------------------------------------- series the model cannot serve


def test_a_new_series_is_a_422_that_says_why_and_when(served: Any) -> None:
    response = _predict(served, S1A, {"store_id": "S1", "item_id": "NEW"})
    message = _error(response, 422, "instances[1]")
    assert message.startswith("unknown series: store_id='S1', item_id='NEW' is not in model")
    assert "model version 1 (trained on data up to 2024-06-30, 4 series)" in message
    assert "served after the next training run that includes it" in message
    assert message in response.json()["error"]


def test_a_key_holding_the_separator_is_a_422_on_that_field(served: Any) -> None:
    response = _predict(served, {"store_id": "S01|X", "item_id": "A"})
    message = _error(response, 422, "instances[0].store_id")
    assert "'S01|X' contains '|'" in message
    # The field that holds it is named, whichever key it is.
    response = _predict(served, {"store_id": "S1", "item_id": "A|B"})
    assert "'|'" in _error(response, 422, "instances[0].item_id")
