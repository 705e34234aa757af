"""The client CLI: the same body to a local server or to a Vertex AI Endpoint."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from serving import client as cli


def test_build_body() -> None:
    body = cli.build_body(
        ["store_id=S1,item_id=A", "store_id=7, item_id=B"], horizon=3, level=90, levels=[50]
    )
    assert body == {
        "instances": [
            {"store_id": "S1", "item_id": "A", "horizon": 3},
            {"store_id": 7, "item_id": "B", "horizon": 3},
        ],
        "parameters": {"level": 90, "levels": [50]},
    }
    with pytest.raises(ValueError, match="key=value"):
        cli.build_body(["store_id"])


def test_local_server(served: Any, capsys: Any) -> None:
    code = cli.main(
        ["--url", "http://testserver", "--instance", "store_id=S1,item_id=A", "--horizon", "2"],
        client=served,
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_version"] == "1"
    assert len(out["predictions"][0]["forecasts"]) == 2


def test_local_server_error_and_body_file(served: Any, tmp_path: Path, capsys: Any) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"instances": [{"store_id": "S9", "item_id": "A"}]}))
    code = cli.main(["--url", "http://testserver", "--body", str(request)], client=served)
    assert code == 1
    err = capsys.readouterr().err
    assert "unknown series" in err and "HTTP 422" in err


def test_unreachable_server(capsys: Any) -> None:
    code = cli.main(["--url", "http://127.0.0.1:9", "--instance", "store_id=S1", "--timeout", "2"])
    assert code == 1
    assert "cannot reach http://127.0.0.1:9/predict" in capsys.readouterr().err


@pytest.fixture()
def fake_aiplatform(monkeypatch: pytest.MonkeyPatch) -> mock.MagicMock:
    """google.cloud.aiplatform replaced at the SDK boundary."""
    import google.cloud

    fake = mock.MagicMock(name="aiplatform")
    monkeypatch.setitem(sys.modules, "google.cloud.aiplatform", fake)
    monkeypatch.setattr(google.cloud, "aiplatform", fake, raising=False)
    return fake


def test_vertex_endpoint_predict(fake_aiplatform: mock.MagicMock, capsys: Any) -> None:
    endpoint = fake_aiplatform.Endpoint.return_value
    endpoint.predict.return_value = types.SimpleNamespace(
        predictions=[{"store_id": "S1", "forecasts": []}],
        model_version_id="3",
        deployed_model_id="dm-1",
    )
    code = cli.main(
        [
            "--endpoint",
            "123",
            "--project",
            "proj",
            "--region",
            "europe-west1",
            "--instance",
            "store_id=S1,item_id=A",
            "--level",
            "95",
        ]
    )
    assert code == 0
    fake_aiplatform.Endpoint.assert_called_once_with("123", project="proj", location="europe-west1")
    endpoint.predict.assert_called_once_with(
        instances=[{"store_id": "S1", "item_id": "A"}], parameters={"level": 95}, timeout=30.0
    )
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "predictions": [{"store_id": "S1", "forecasts": []}],
        "model_version": "3",
        "deployed_model_id": "dm-1",
    }


def test_vertex_endpoint_raw_predict(fake_aiplatform: mock.MagicMock, capsys: Any) -> None:
    endpoint = fake_aiplatform.Endpoint.return_value
    endpoint.raw_predict.return_value = mock.Mock(
        status_code=200, json=lambda: {"predictions": [], "model_version": "3"}
    )
    body = {"instances": [{"store_id": "S1", "item_id": "A"}]}
    out = cli.predict_vertex("projects/p/locations/r/endpoints/1", body, raw=True)
    assert out == {"predictions": [], "model_version": "3"}
    endpoint.raw_predict.assert_called_once_with(
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        timeout=None,
    )
