"""Serving under hostile requests: a work budget, the rules a file's rows get, no server paths
in answers, and an API example the served model answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

S1A = {"store_id": "S1", "item_id": "A"}
ROW = {"date": "2024-07-01", "sales": 3.0}


def _post(client: Any, *instances: dict[str, Any]) -> Any:
    return client.post("/predict", json={"instances": list(instances)})


def test_a_series_repeated_with_history_beyond_the_budget_is_refused(served: Any) -> None:
    # 1000 instances over 3 series, each with a history row, cost 334 forecaster runs before.
    many = [{**S1A, "history": [ROW]} for _ in range(5)]
    response = _post(served, *many)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["field"] == "instances[4]"
    assert "more than 4 times" in detail["message"] and "S1|A" in detail["message"]
    assert _post(served, *many[:4]).status_code == 200
    # Plain instances come from the base forecast: no forecaster run, no limit but the count.
    assert _post(served, *[S1A] * 50).status_code == 200


def test_the_budget_is_a_setting(client_for: Any, registry: Any, model_a: Path) -> None:
    registry.promote(model_a)
    client = client_for(max_series_repeats=1)
    assert _post(client, {**S1A, "history": [ROW]}, {**S1A, "history": [ROW]}).status_code == 422


def test_negative_sales_in_history_are_refused_as_a_files_rows_are(served: Any) -> None:
    response = _post(served, {**S1A, "history": [{**ROW, "sales": -100}]})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["field"] == "instances[0].history[0].sales"
    assert "cannot be negative" in detail["message"]


def test_not_ready_answers_do_not_spell_out_server_paths(
    client_for: Any, make_settings: Any, tmp_path: Path
) -> None:
    client = client_for()
    root = str(make_settings().data_root)
    for response in (client.get("/ready"), _post(client, S1A)):
        assert response.status_code == 503
        assert root not in response.text and str(tmp_path) not in response.text
        assert "$SF_DATA_ROOT" in response.text


def test_ready_names_the_model_folder_without_the_servers_layout(
    served: Any, registry: Any
) -> None:
    body = served.get("/ready").json()
    assert body["model"]["uri"].startswith("$SF_DATA_ROOT/models/")
    assert str(registry.data_root) not in served.get("/ready").text


def test_the_published_example_is_a_request_the_served_model_answers(served: Any) -> None:
    schema = served.get("/openapi.json").json()
    (example,) = schema["components"]["schemas"]["PredictRequest"]["examples"]
    assert example["instances"][0] == {**S1A, "horizon": 7}
    assert example["instances"][1]["future"] == [{"date": "2024-07-01"}]
    response = served.post("/predict", json=example)
    assert response.status_code == 200, response.text
    assert "S1" in served.get("/docs").text
