"""The view's JSON routes on a small seeded warehouse (the local platform, read-only)."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest
from fastapi.testclient import TestClient
from sales_forecast.ui.app import create_app
from sales_forecast.ui.data import NO_MONITORING


def _no_auth() -> None:
    """Stands in for Airflow's dependency here; test_auth.py checks the real one."""


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(auth=_no_auth))


def test_series_search_is_case_insensitive_and_counts_every_match(client, warehouse):
    body = client.get("/api/series", params={"q": "s01"}).json()
    assert [s["series_id"] for s in body["series"]] == ["S01|I001", "S01|I002"]
    assert body["series"][0] == {"series_id": "S01|I001", "store_id": "S01", "item_id": "I001"}
    assert body["total"] == 2 and body["keys"] == ["store_id", "item_id"]
    limited = client.get("/api/series", params={"limit": 1}).json()
    assert len(limited["series"]) == 1 and limited["total"] == 3
    # A search text is a value, never SQL.
    assert client.get("/api/series", params={"q": "' OR 1=1 --"}).json()["total"] == 0


def test_one_series_history_and_latest_forecasts(client, warehouse):
    body = client.get("/api/view", params={"series": "S01|I002", "days": 7}).json()
    assert body["available"] and body["group"] == "S01" and body["target"] == "sales"
    assert [h["date"] for h in body["history"]] == [f"2025-01-{d:02d}" for d in range(4, 11)]
    values = {h["date"]: h["value"] for h in body["history"]}
    assert values["2025-01-05"] is None  # an unknown day is a gap, not a zero
    assert values["2025-01-10"] == 20.0
    assert body["run"]["run_id"] == "r2" and body["run"]["cutoff_date"] == "2025-01-10"
    assert body["run"]["model_versions"] == ["1"]
    assert body["forecast"][0] == {
        "date": "2025-01-11",
        "model_version": "1",
        "forecast": 5.0,
        "lower_80": 4.0,
        "upper_80": 6.0,
        "lower_95": 3.0,
        "upper_95": 7.0,
    }
    assert len(body["forecast"]) == 3


def test_total_sums_every_series(client, warehouse):
    body = client.get("/api/view", params={"days": 7}).json()
    assert body["total"] and body["group"] == "total"
    by_day = {h["date"]: h for h in body["history"]}
    assert by_day["2025-01-10"]["value"] == 10 + 20 + 10
    # The unknown day of one series is left out of the sum, and counted.
    assert by_day["2025-01-05"]["value"] == 5 + 10
    assert by_day["2025-01-05"]["unknown_series"] == 1
    assert [f["forecast"] for f in body["forecast"]] == [15.0, 15.0, 15.0]
    assert body["forecast"][0]["lower_80"] == 12.0 and body["forecast"][0]["upper_95"] == 21.0
    assert body["bands"] == "sum_of_series_bounds"
    assert body["run"]["model_versions"] == ["1", "2"]


def test_unknown_series_and_dataset_are_clear_errors(client, warehouse):
    r = client.get("/api/view", params={"series": "S09|I999"})
    assert r.status_code == 404 and "S09|I999" in r.json()["detail"]
    r = client.get("/api/view", params={"dataset": "nope"})
    assert r.status_code == 404 and "unknown dataset" in r.json()["detail"]
    r = client.get("/api/view", params={"dataset": "../etc"})
    assert r.status_code == 404
    assert client.get("/api/view", params={"days": 1}).status_code == 422


def test_before_a_monitoring_run_the_view_says_so(client, warehouse):
    for path in ("/api/accuracy", "/api/drift"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.json()["available"] is False and r.json()["message"] == NO_MONITORING


def test_accuracy_over_time_and_by_horizon(client, monitored):
    body = client.get("/api/accuracy", params={"group": "S01"}).json()
    assert body["available"] and body["groups"] == ["S01", "S02", "total"]
    assert [r["monitor_date"] for r in body["rows"]] == ["2025-01-11", "2025-01-12"]
    assert [r["wape"] for r in body["rows"]] == pytest.approx([0.2, 0.3])
    assert [r["horizon_day"] for r in body["by_horizon"]] == [1, 2]
    assert {r["monitor_date"] for r in body["by_horizon"]} == {"2025-01-12"}
    day2 = client.get("/api/accuracy", params={"group": "total", "horizon_day": 2}).json()
    assert [r["wape"] for r in day2["rows"]] == pytest.approx([0.22, 0.32])
    # A metric that could not be computed (NaN in the table) is null in JSON.
    s02 = client.get("/api/accuracy", params={"group": "S02"}).json()
    assert {r["mase"] for r in s02["rows"]} == {None}
    none = client.get("/api/accuracy", params={"group": "S77"}).json()
    assert none["available"] and none["rows"] == [] and "S77" in none["message"]


def test_drift_report_of_the_latest_day_drifted_first(client, monitored):
    body = client.get("/api/drift").json()
    assert body["monitor_date"] == "2025-01-12" and body["dates"] == ["2025-01-12", "2025-01-11"]
    assert [r["feature"] for r in body["rows"]] == ["price", "temperature", "sales"]
    assert body["rows"][0]["drifted"] is True and body["n_drifted"] == 1
    older = client.get("/api/drift", params={"monitor_date": "2025-01-11"}).json()
    assert [r["feature"] for r in older["rows"]] == ["sales"]
    assert client.get("/api/drift", params={"monitor_date": "yesterday"}).status_code == 422


def test_registry_versions_and_production(client, warehouse):
    body = client.get("/api/registry").json()
    assert body["production"] == "1"
    assert [v["version"] for v in body["versions"]] == ["2", "1"]
    v1 = body["versions"][1]
    assert v1["aliases"] == ["production"] and v1["run_id"] == "r1"
    assert v1["backtest"] == {"bias": 0.01, "mase": 0.9, "n": 30, "wape": 0.31}
    assert v1["baseline"] == {"wape": 0.5}


def test_no_warehouse_yet_answers_and_creates_nothing(client, settings):
    for path in ("/api/series", "/api/view", "/api/accuracy", "/api/drift", "/api/registry"):
        r = client.get(path)
        assert r.status_code == 200, path
    assert client.get("/api/view").json()["available"] is False
    assert client.get("/api/registry").json() == {"production": None, "versions": []}
    assert not settings.data_root.exists()


def test_other_contracts_read_their_own_dataset(client, settings, warehouse):
    # takeaway reads sales_forecast_takeaway, which does not exist: nothing of retail shows.
    body = client.get("/api/series", params={"dataset": "takeaway"}).json()
    assert body == {"available": False, "message": body["message"], "series": [], "total": 0}


def test_reading_leaves_the_file_free_for_a_writer(client, warehouse):
    for path in ("/api/series", "/api/view", "/api/registry"):
        assert client.get(path).status_code == 200
    # A writer opens at once: no read-only connection is left open after a request.
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE sales_forecast.written_after (x INT)")


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS sales_forecast.lock_holder (x INT)")
print("locked", flush=True)
time.sleep(30)
"""


def test_a_locked_warehouse_is_503_not_a_wait(client, warehouse):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        started = time.monotonic()
        r = client.get("/api/view")
        elapsed = time.monotonic() - started
        assert r.status_code == 503
        assert "being written by a running task" in r.json()["detail"]
        assert elapsed < 10
    finally:
        proc.kill()
        proc.wait()
    assert client.get("/api/view").status_code == 200
