"""The serving image's entrypoint, without Docker: its exact requirements in a fresh venv.

What ``serving/Dockerfile`` does, step by step: a Python 3.11 venv gets
``pip install -r serving/requirements.txt -c constraints.txt`` and nothing else,
``sf_contract/``, ``trainer/`` and ``serving/`` are copied into an app folder, and
``python -m serving`` starts there with the environment Vertex AI sets (``AIP_HTTP_PORT``,
``AIP_HEALTH_ROUTE``, ``AIP_PREDICT_ROUTE``, ``AIP_STORAGE_URI``). Health and predict are then
called over HTTP.

The venv is kept in ``.venv-serving-image/`` and reused while the requirements' hash is the
same (the first run downloads and installs them: a few minutes; later runs take seconds).
Deselect with ``-m "not image"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-serving-image"
REQUIREMENTS = ("serving/requirements.txt", "trainer/requirements.txt", "constraints.txt")
INSTALL_TIMEOUT_S = 1800
START_TIMEOUT_S = 120

pytestmark = pytest.mark.image


def _requirements_hash() -> str:
    digest = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    for name in REQUIREMENTS:
        digest.update(name.encode() + b"\0" + (REPO / name).read_bytes())
    return digest.hexdigest()


def image_venv() -> Path:
    """The venv with exactly the image's requirements (rebuilt when they change)."""
    stamp = VENV / ".requirements.sha256"
    want = _requirements_hash()
    python = VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return python
    # From scratch, never on top of an older set: a leftover package could hide a missing pin.
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-r",
            str(REPO / "serving" / "requirements.txt"),
            "-c",
            str(REPO / "constraints.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if install.returncode != 0:
        shutil.rmtree(VENV, ignore_errors=True)
        pytest.fail(f"installing serving/requirements.txt failed:\n{install.stderr[-3000:]}")
    stamp.write_text(want)
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_image_entrypoint_serves_a_model_folder(
    model_a: Path, helpers: Any, tmp_path: Path
) -> None:
    python = image_venv()
    # The image carries no Airflow side: prove the app needs none of it.
    probe = subprocess.run(
        [str(python), "-c", "import airflow"], capture_output=True, text=True, check=False
    )
    assert probe.returncode != 0

    app_dir = tmp_path / "app"  # the image's /app
    for package in ("sf_contract", "trainer", "serving"):
        shutil.copytree(
            REPO / package, app_dir / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    model = helpers.copy_model(model_a, tmp_path / "bucket" / "model")
    helpers.write_manifest(model)  # as the GCP promotion writes it

    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": "/health",
        "AIP_PREDICT_ROUTE": "/predict",
        "AIP_STORAGE_URI": str(model),
        "SF_MODEL_VERSION": "42",
    }
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(python), "-m", "serving"], cwd=app_dir, env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready in time:\n{log.read_text()[-3000:]}"
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        # AIP_HEALTH_ROUTE is set, as on Vertex: the health route reports readiness.
        assert health.json()["status"] == "ready"
        assert health.json()["model"]["sha256_verified"] is True

        body = {
            "instances": [
                {"store_id": "S1", "item_id": "A", "horizon": 7},
                {
                    "store_id": "S2",
                    "item_id": "A",
                    "horizon": 3,
                    "future": [{"date": "2024-07-01", "on_promo": True}],
                },
            ],
            "parameters": {"level": 95},
        }
        response = httpx.post(f"{base}/predict", json=body, timeout=30)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model_version"] == "42"

        # The image's libraries give the very numbers this environment's Forecaster gives.
        import pandas as pd

        from trainer.model import Forecaster

        fc = Forecaster.load(str(model_a))
        expected_plain = fc.predict(7, levels=[95], series_ids=["S1|A"])
        future = pd.DataFrame(
            {"series_id": ["S2|A"], "date": [pd.Timestamp("2024-07-01")], "on_promo": [True]}
        )
        expected_future = fc.predict(3, future_df=future, levels=[95], series_ids=["S2|A"])
        for pred, expected in zip(
            answer["predictions"], (expected_plain, expected_future), strict=True
        ):
            np.testing.assert_array_equal(
                [p["forecast"] for p in pred["forecasts"]], expected["forecast"].to_numpy()
            )
            np.testing.assert_array_equal(
                [p["upper"] for p in pred["forecasts"]], expected["upper_95"].to_numpy()
            )

        bad = httpx.post(f"{base}/predict", json={"instances": [{"store_id": "S1"}]}, timeout=10)
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "instances[0].item_id"
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert (
            'sales_forecast_model_info{mode="storage",model="sales_forecast",version="42"} 1.0'
            in metrics
        )
        assert json.loads(httpx.get(f"{base}/openapi.json", timeout=10).text)["paths"]["/predict"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # A clean shutdown on SIGTERM (uvicorn re-raises the signal once it has shut down).
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()[-3000:]
    assert "Application shutdown complete" in log.read_text()
