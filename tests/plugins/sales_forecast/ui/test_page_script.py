"""The page's script, run in Node against the real app over the seeded warehouse.

Node is not a browser (no layout, no CSS); the real-browser test is not part of the suite yet
(see README). What this catches: a script error, a route the page calls wrongly, a chart that
draws nothing. Skipped where Node is not installed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sales_forecast.ui.app import URL_PREFIX, create_app

HERE = Path(__file__).resolve().parent
PAGE = HERE.parents[3] / "plugins" / "sales_forecast" / "ui" / "page.html"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


@pytest.fixture
def base_url(settings, monitored):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from fastapi import FastAPI

    # Mounted as Airflow's API server mounts a plugin's app.
    app = FastAPI()
    app.mount(URL_PREFIX, create_app(auth=lambda: None))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("opened_at", ["/sales-forecasts/", "/sales-forecasts"])
def test_page_script_draws_the_view(base_url, opened_at):
    proc = subprocess.run(
        [NODE, str(HERE / "page_harness.js"), str(PAGE), base_url + opened_at],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "fatal" not in out, out.get("fatal")
    assert out["errors"] == []
    first = out["first"]
    # The total: one history line, the forecast line and both bands.
    assert first["chart"] == {
        "history_lines": 1, "forecast_lines": 1, "band80": 1, "band95": 1,
        "circles": 0, "texts": first["chart"]["texts"],
    }  # fmt: skip
    assert first["title"] == "History and forecast: all series (total)"
    assert "latest run <b>r2</b>" in first["run"] and "sums of the series" in first["run"]
    assert "seasonal naive WAPE" in first["accuracy"]
    assert first["acc_chart"]["circles"] == 4  # 2 monitoring days x (model, naive)
    assert first["acc_table"].count("<tr") == 3 and "2025-01-12" in first["acc_table"]
    assert "price" in first["drift"] and 'class="drifted"' in first["drift"]
    assert first["drift_date"] == "(2025-01-12: 1 of 3 drifted)"
    assert 'class="tag">production' in first["registry"]
    assert 'value="retail" selected' in first["dataset_options"]
    assert "S02|I001" in first["series_options"] and first["status"] == "3 series match"
    picked = out["picked"]
    assert picked["title"] == "History and forecast: S01|I002"
    # The unknown day on the 5th splits the history line in two.
    assert picked["chart"]["history_lines"] == 2 and picked["chart"]["band80"] == 1
    assert picked["acc_group"] == "(group: S01)"
    assert "S01|I001" not in out["searched"]["series_options"]
    assert out["searched"]["status"] == "1 series match"
    assert all(r.startswith("/sales-forecasts/api/") for r in out["requests"])
