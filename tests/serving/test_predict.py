"""The API's forecasts equal the trainer's own ``predict`` for the same model and inputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from trainer.predict import run_predict

LEVELS = [80, 95]


def _trainer_predict(model_dir: Path, tmp_path: Path, **kwargs: Any) -> pd.DataFrame:
    """Run the trainer's predict command and read back the rows it wrote."""
    out = tmp_path / f"forecasts-{len(list(tmp_path.glob('forecasts-*')))}.parquet"
    run_predict(
        model_dir=str(model_dir),
        output_uri=str(out),
        run_id="r",
        model_version="1",
        levels=LEVELS,
        **kwargs,
    )
    frame = pd.read_parquet(out)
    frame["date"] = pd.to_datetime(frame["date"])  # written as calendar dates
    return frame.sort_values(["series_id", "date"]).reset_index(drop=True)


def _api_frame(body: dict[str, Any], keys: list[str]) -> pd.DataFrame:
    rows = []
    for pred in body["predictions"]:
        for point in pred["forecasts"]:
            row = {"series_id": pred["series_id"], **{k: pred[k] for k in keys}}
            row["date"] = pd.Timestamp(point["date"])
            row["forecast"] = point["forecast"]
            for lv, band in point["intervals"].items():
                row[f"lower_{lv}"] = np.nan if band["lower"] is None else band["lower"]
                row[f"upper_{lv}"] = np.nan if band["upper"] is None else band["upper"]
            rows.append(row)
    return pd.DataFrame(rows).sort_values(["series_id", "date"]).reset_index(drop=True)


def _assert_same(api: pd.DataFrame, trainer: pd.DataFrame) -> None:
    columns = ["series_id", "date", "forecast"] + [
        f"{side}_{lv}" for lv in LEVELS for side in ("lower", "upper")
    ]
    assert len(api) == len(trainer)
    for col in columns:
        left, right = api[col].to_numpy(), trainer[col].to_numpy()
        if col in ("series_id", "date"):
            assert (left == right).all(), col
        else:
            # Exactly equal: the same computation, floats carried losslessly through JSON.
            np.testing.assert_array_equal(left.astype(float), right.astype(float), err_msg=col)


def _series(helpers: Any) -> list[dict[str, str]]:
    return [
        {"store_id": s, "item_id": i}
        for s, i in (("S1", "A"), ("S1", "B"), ("S2", "A"), ("S2", "C"))
    ]


@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("horizon", [1, 3, 7])
def test_plain_forecasts_equal_trainer_predict(
    model_a: Path,
    registry: Any,
    client_for: Any,
    helpers: Any,
    tmp_path: Path,
    cache: bool,
    horizon: int,
) -> None:
    registry.promote(model_a)
    client = client_for(cache=cache)
    trainer = _trainer_predict(model_a, tmp_path, cutoff_date=helpers.END.date(), horizon=horizon)
    instances = [{**s, "horizon": horizon} for s in _series(helpers)]
    response = client.post(
        "/predict", json={"instances": instances, "parameters": {"levels": LEVELS}}
    )
    assert response.status_code == 200, response.text
    _assert_same(_api_frame(response.json(), ["store_id", "item_id"]), trainer)


@pytest.mark.parametrize("cache", [True, False])
def test_forecasts_with_history_and_future_equal_trainer_predict(
    model_a: Path,
    registry: Any,
    client_for: Any,
    helpers: Any,
    retail_panel: pd.DataFrame,
    tmp_path: Path,
    cache: bool,
) -> None:
    """New actuals (5 days after the model's end) and known covariates for some days."""
    registry.promote(model_a)
    client = client_for(cache=cache)
    cutoff = helpers.END + pd.Timedelta(days=helpers.NEWER_DAYS)
    panel_uri = tmp_path / "panel.parquet"
    retail_panel.to_parquet(panel_uri, index=False)
    # Future covariates: a promotion and a price cut on some days, blanks filled by rules.
    first = cutoff + pd.Timedelta(days=1)
    future = pd.DataFrame(
        [
            ("S1", "A", first, "1.99", "true", ""),
            ("S1", "A", first + pd.Timedelta(days=2), "", "true", "true"),
            ("S2", "A", first + pd.Timedelta(days=1), "2.10", "", ""),
            ("S2", "C", first + pd.Timedelta(days=6), "3.00", "false", "true"),
        ],
        columns=["store_id", "item_id", "date", "price", "on_promo", "is_holiday"],
    )
    future["date"] = future["date"].dt.strftime("%Y-%m-%d")
    future_uri = tmp_path / "future.csv"
    future.to_csv(future_uri, index=False)
    trainer = _trainer_predict(
        model_a,
        tmp_path,
        cutoff_date=cutoff.date(),
        horizon=7,
        data_uri=str(panel_uri),
        future_uri=str(future_uri),
    )

    instances = []
    for s in _series(helpers):
        rows = retail_panel[
            (retail_panel.store_id == s["store_id"]) & (retail_panel.item_id == s["item_id"])
        ]
        newer = rows[rows.date > helpers.END]
        history = [
            {
                "date": d.strftime("%Y-%m-%d"),
                "sales": float(v),
                "price": float(p),
                "on_promo": bool(o),
                "is_holiday": bool(h),
                "temperature": float(t),  # observed-only: accepted, not a model input
            }
            for d, v, p, o, h, t in newer[
                ["date", "sales", "price", "on_promo", "is_holiday", "temperature"]
            ].itertuples(index=False)
        ]
        mine = future[(future.store_id == s["store_id"]) & (future.item_id == s["item_id"])]
        rows_future = []
        for _, r in mine.iterrows():
            row: dict[str, Any] = {"date": r["date"]}
            if r["price"]:
                row["price"] = float(r["price"])
            if r["on_promo"]:
                row["on_promo"] = r["on_promo"] == "true"
            if r["is_holiday"]:
                row["is_holiday"] = r["is_holiday"] == "true"
            rows_future.append(row)
        instances.append({**s, "horizon": 7, "history": history, "future": rows_future})
    response = client.post(
        "/predict", json={"instances": instances, "parameters": {"levels": LEVELS}}
    )
    assert response.status_code == 200, response.text
    api = _api_frame(response.json(), ["store_id", "item_id"])
    assert api["date"].min() == first
    _assert_same(api, trainer)


def test_single_series_model_equals_trainer_predict(
    takeaway_model: Path,
    registry: Any,
    client_for: Any,
    helpers: Any,
    tmp_path: Path,
) -> None:
    registry.promote(takeaway_model)
    client = client_for()
    first = (helpers.END + pd.Timedelta(days=1)).date()
    future = pd.DataFrame(
        {"date": [first.isoformat()], "holiday_name": ["first"], "is_weekend": ["false"]}
    )
    future_uri = tmp_path / "future.csv"
    future.to_csv(future_uri, index=False)
    trainer = _trainer_predict(
        takeaway_model,
        tmp_path,
        cutoff_date=helpers.END.date(),
        horizon=5,
        future_uri=str(future_uri),
    )
    instance = {
        "horizon": 5,
        "future": [{"date": first.isoformat(), "holiday_name": "first", "is_weekend": False}],
    }
    response = client.post(
        "/predict", json={"instances": [instance], "parameters": {"levels": LEVELS}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["predictions"][0]) == {"series_id", "forecasts"}  # no keys to echo
    _assert_same(_api_frame(body, []), trainer)
    # A key sent to a single-series model is an unknown field.
    bad = client.post("/predict", json={"instances": [{"store_id": "S1"}]})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "instances[0].store_id"


def test_model_dates_are_calendar_days(served: Any, helpers: Any) -> None:
    body = served.post("/predict", json={"instances": [{"store_id": "S1", "item_id": "A"}]}).json()
    dates = [p["date"] for p in body["predictions"][0]["forecasts"]]
    start = helpers.END.date() + dt.timedelta(days=1)
    assert dates == [(start + dt.timedelta(days=k)).isoformat() for k in range(7)]
