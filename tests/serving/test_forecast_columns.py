"""The serving API with a forecast column (weather) and an availability column in requests.

A single-series model whose sales follow the temperature (a ``forecast`` column: observed in
history, given as a forecast for the coming days) and whose shop closes now and then (an
``availability`` column): a request's ``future`` carries both, its ``history`` may carry both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from .conftest import END, fit_and_save, small_config

CONTRACT: dict[str, Any] = {
    "name": "kiosk",
    "date_column": "date",
    "target": "sold",
    "series_keys": [],
    "columns": [
        {"name": "date", "type": "DATE", "role": "date"},
        {"name": "sold", "type": "FLOAT64", "role": "target"},
        {"name": "temp", "type": "FLOAT64", "role": "forecast"},
        {"name": "open", "type": "BOOL", "role": "availability"},
    ],
}


def kiosk_panel(seed: int = 3, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=END + pd.Timedelta(days=5), periods=n, freq="D")
    temp = 18 + 8 * rng.standard_normal(n)
    open_ = rng.random(n) > 0.05
    sold = np.where(open_, np.clip(40 + 3.0 * (temp - 18) + rng.normal(0, 2, n), 0, None), 0.0)
    return pd.DataFrame({"date": dates, "sold": sold.round(1), "temp": temp, "open": open_})


@pytest.fixture(scope="module")
def kiosk_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kiosk") / "model"
    config = small_config(n_estimators=60)
    return fit_and_save(kiosk_panel(), CONTRACT, config, path)


@pytest.fixture()
def kiosk(client_for: Any, registry: Any, kiosk_model: Path) -> Any:
    registry.promote(kiosk_model)
    return client_for()


def _forecasts(client: Any, instance: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/predict", json={"instances": [instance]})
    assert response.status_code == 200, response.text
    return list(response.json()["predictions"][0]["forecasts"])


def _days(*temps: float, closed: int | None = None) -> list[dict[str, Any]]:
    start = END + pd.Timedelta(days=1)
    rows: list[dict[str, Any]] = []
    for k, t in enumerate(temps):
        row: dict[str, Any] = {"date": (start + pd.Timedelta(days=k)).strftime("%Y-%m-%d")}
        row["temp"] = t
        if closed == k:
            row["open"] = False
        rows.append(row)
    return rows


def test_the_weather_forecast_in_future_moves_the_forecast(kiosk: Any) -> None:
    cold = _forecasts(kiosk, {"horizon": 3, "future": _days(5.0, 5.0, 5.0)})
    hot = _forecasts(kiosk, {"horizon": 3, "future": _days(32.0, 32.0, 32.0)})
    assert all(h["forecast"] > c["forecast"] + 10 for h, c in zip(hot, cold, strict=True))
    # Without a weather forecast the climatology fills it: a forecast, never an error or NaN.
    plain = _forecasts(kiosk, {"horizon": 3})
    days = zip(cold, plain, hot, strict=True)
    assert all(c["forecast"] < p["forecast"] < h["forecast"] for c, p, h in days)


def test_a_day_marked_closed_in_future_is_zero_with_a_zero_interval(kiosk: Any) -> None:
    got = _forecasts(kiosk, {"horizon": 3, "future": _days(20.0, 20.0, 20.0, closed=1)})
    assert got[1]["forecast"] == 0.0 and got[1]["lower"] == 0.0 and got[1]["upper"] == 0.0
    assert got[0]["forecast"] > 0 and got[2]["forecast"] > 0


def test_a_closed_day_in_history_is_no_lesson_about_demand(kiosk: Any) -> None:
    panel = kiosk_panel()
    newer = panel[panel["date"] > END].head(3)
    history = [
        {"date": d.strftime("%Y-%m-%d"), "sold": float(s), "temp": float(t), "open": True}
        for d, s, t in zip(newer["date"], newer["sold"], newer["temp"], strict=True)
    ]
    closed_zero = [*history[:2], {**history[2], "sold": 0.0, "open": False}]
    closed_busy = [*history[:2], {**history[2], "sold": 500.0, "open": False}]
    a = _forecasts(kiosk, {"horizon": 3, "history": closed_zero})
    b = _forecasts(kiosk, {"horizon": 3, "history": closed_busy})
    assert [p["forecast"] for p in a] == [p["forecast"] for p in b]


def test_an_availability_value_that_is_no_bool_names_its_field(kiosk: Any) -> None:
    rows = [{"date": (END + pd.Timedelta(days=1)).strftime("%Y-%m-%d"), "open": "maybe"}]
    response = kiosk.post("/predict", json={"instances": [{"horizon": 2, "future": rows}]})
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["detail"]]
    assert "instances[0].future[0].open" in fields
