"""The middleware around the app: the body size limit (declared or streamed), the generic 500."""

from __future__ import annotations

import json
from typing import Any

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


def test_body_too_large(client_for: Any, registry: Any, model_a: Any) -> None:
    registry.promote(model_a)
    client = client_for(max_body_bytes=2048)
    big = {"instances": [S1A] * 200}
    _error(client.post("/predict", json=big), 413, "body")

    # No Content-Length (chunked): the limit is counted as the body streams in.
    def chunks() -> Any:
        data = json.dumps(big).encode()
        for i in range(0, len(data), 512):
            yield data[i : i + 512]

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    _error(response, 413, "body")
    assert _predict(client, S1A).status_code == 200  # small bodies still pass


def test_unexpected_errors_are_a_generic_500(served: Any, monkeypatch: Any, caplog: Any) -> None:
    model = served.app.state.store.current

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(model.predictor, "predict", boom)
    response = _predict(served, S1A)
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error", "detail": []}
    assert "secret" not in response.text
    assert "secret internals" in caplog.text  # logged for the operator
