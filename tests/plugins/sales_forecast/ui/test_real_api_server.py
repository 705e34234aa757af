"""The view under a real Airflow API server, on a free loopback port, over a seeded warehouse.

What only a real server shows: the plugin is loaded from the plugins folder, its UI entry is in
``GET /api/v2/plugins`` (what the UI builds its navigation from), the app is mounted at
``/sales-forecasts``, and it accepts exactly Airflow's own login: a token from ``/auth/token``,
as a Bearer header or as the UI's ``_token`` cookie.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[4]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _token(base: str) -> str:
    req = urllib.request.Request(
        base + "/auth/token",
        data=json.dumps({"username": "admin", "password": "pw"}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(json.loads(resp.read())["access_token"])


def test_view_in_a_real_api_server(tmp_path, settings, monitored):
    home = tmp_path / "airflow"
    home.mkdir()
    (home / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "pw"}')
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "SF_"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "no-dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-" + "x" * 48,
        "AIRFLOW__API__SECRET_KEY": "test-secret-key",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}",
        "SF_PLATFORM": "local",
        "SF_DATA_ROOT": str(settings.data_root),
    }
    subprocess.run([BIN / "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    log = open(tmp_path / "api-server.log", "w")
    proc = subprocess.Popen(
        [BIN / "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _get_or_none(base + "/api/v2/monitor/health") != 200:
            assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "api-server did not start"
            time.sleep(1)
        token = _token(base)
        bearer = {"Authorization": f"Bearer {token}"}

        status, body = _get(base + "/api/v2/plugins", bearer)
        assert status == 200
        (plugin,) = [p for p in json.loads(body)["plugins"] if p["name"] == "sales_forecasts_view"]
        (view,) = plugin["external_views"]
        assert view["name"] == "Sales forecasts" and view["href"] == "/sales-forecasts/"
        assert view["url_route"] == "sales-forecasts" and view["category"] == "browse"

        assert _get(base + "/sales-forecasts/api/view")[0] == 401
        assert _get(base + "/sales-forecasts/")[0] == 401
        status, body = _get(base + "/sales-forecasts/api/view", bearer)
        assert status == 200
        assert [f["forecast"] for f in json.loads(body)["forecast"]] == [15.0, 15.0, 15.0]
        status, body = _get(base + "/sales-forecasts/api/drift", bearer)
        assert json.loads(body)["n_drifted"] == 1
        status, body = _get(base + "/sales-forecasts/", {"Cookie": f"_token={token}"})
        assert status == 200 and b"<title>Sales forecasts</title>" in body
        # Without the slash the UI's own catch-all answers (its index page, not ours): the
        # entry's href must keep the slash.
        status, body = _get(base + "/sales-forecasts", {"Cookie": f"_token={token}"})
        assert b"<title>Sales forecasts</title>" not in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url)[0]
    except OSError:
        return None
