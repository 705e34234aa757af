"""Availability: closed or out-of-stock days teach no demand, are not scored, and forecast as 0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sf_contract import Column, Contract
from trainer.availability import unavailable, zero_unavailable_days
from trainer.errors import TrainerError
from trainer.evaluation import evaluate_methods, evaluation_cutoffs
from trainer.model import Forecaster
from trainer.panel import UNKNOWN, prepare_panel

from .conftest import RETAIL_CONTRACT, make_retail_panel

CONTRACT = Contract.from_dict(
    {
        **RETAIL_CONTRACT,
        "columns": [
            *RETAIL_CONTRACT["columns"],
            {"name": "in_stock", "type": "BOOL", "role": "availability"},
        ],
    }
)


def _panel(
    closed_sales: float | None = 0.0, flagged: bool = True, last: int = 4
) -> tuple[pd.DataFrame, pd.Series]:
    """The seeded retail panel with S1|A closed for 5 days up to ``last`` days before its end
    (sales ``closed_sales``).

    ``flagged`` False: the same zeros without the availability column saying why (the old
    reading: demand was zero).
    """
    panel = make_retail_panel()
    end = panel["date"].max()
    closed = (panel["series_id"] == "S1|A") & panel["date"].between(
        end - pd.Timedelta(days=last + 4), end - pd.Timedelta(days=last)
    )
    if closed_sales is not None:
        panel.loc[closed, "sales"] = closed_sales
    if flagged:
        panel["in_stock"] = ~closed
    return panel, closed


@pytest.fixture(scope="module")
def config():
    from trainer.config import LGBMParams, TrainerConfig

    return TrainerConfig(
        horizon=7,
        params=LGBMParams(n_estimators=30, num_leaves=7, min_child_samples=5),
        interval_windows=2,
        num_threads=1,
        seed=0,
    )


def test_the_rule_reads_bools_quantities_text_and_missing_values():
    flag = Column("open", "BOOL", "availability")
    values = pd.Series([True, False, None, "false", "yes", np.nan], dtype=object)
    got = unavailable(values, flag, "x")
    assert got.tolist() == [False, True, False, True, False, False]
    stock = Column("on_hand", "FLOAT64", "availability")
    got = unavailable(pd.Series([0.0, 3.0, -1.0, np.nan]), stock, "x")
    assert got.tolist() == [True, False, True, False]
    with pytest.raises(TrainerError, match="availability column 'open' has value 'maybe'"):
        unavailable(pd.Series(["maybe"], dtype=object), flag, "data")


def test_unavailable_days_are_unknown_days_of_the_panel():
    panel, closed = _panel()
    prepared = prepare_panel(panel, CONTRACT)
    flags = prepared.set_index(["series_id", "date"])[UNKNOWN]
    marked = panel.loc[closed].set_index(["series_id", "date"]).index
    assert flags.loc[marked].all()
    assert int(flags.sum()) == int(closed.sum())
    # Their target is filled for features from the open days (last week's value), not kept 0.
    assert (prepared.loc[prepared[UNKNOWN], "sales"] > 0).all()


def test_a_closed_days_zero_does_not_lower_the_next_forecasts(config):
    # Closed for the last five days: the days the next forecasts lean on most.
    zeros, _ = _panel(closed_sales=0.0, last=0)
    other, _ = _panel(closed_sales=55.0, last=0)
    unflagged, _ = _panel(closed_sales=0.0, flagged=False, last=0)
    a = Forecaster.fit(zeros, CONTRACT, config).predict(7, series_ids=["S1|A"])
    b = Forecaster.fit(other, CONTRACT, config).predict(7, series_ids=["S1|A"])
    c = Forecaster.fit(unflagged, CONTRACT, config).predict(7, series_ids=["S1|A"])
    # What sold on an unavailable day is no input at all: 0 or 55, the forecasts are the same.
    np.testing.assert_allclose(a["forecast"], b["forecast"])
    # Read as demand, the same zeros pull the forecasts down.
    assert c["forecast"].sum() < 0.9 * a["forecast"].sum()


def test_unavailable_days_are_not_scored():
    panel, closed = _panel(closed_sales=0.0)
    prepared = prepare_panel(panel, CONTRACT)
    cuts = evaluation_cutoffs(prepared["date"].min(), prepared["date"].max(), 7, 2)
    methods = {"naive": None}
    got = evaluate_methods(prepared, CONTRACT, cuts, 7, methods)["naive"]
    keys = set(zip(got["series_id"], got["date"], strict=True))
    shut = set(zip(panel.loc[closed, "series_id"], panel.loc[closed, "date"], strict=True))
    assert shut and not keys & shut


def test_known_closed_forecast_days_are_zero_with_a_zero_interval(config):
    panel, _ = _panel()
    fc = Forecaster.fit(panel, CONTRACT, config)
    first = pd.Timestamp(fc.last_date) + pd.Timedelta(days=1)
    future = pd.DataFrame(
        {
            "store_id": ["S1", "S2"],
            "item_id": ["A", "A"],
            "date": pd.to_datetime([first + pd.Timedelta(days=2), first]),
            "in_stock": [False, True],
        }
    )
    res = fc.forecast(7, future_df=future)
    frame = res.frame
    assert res.unavailable_days == 1
    shut = (frame["series_id"] == "S1|A") & (frame["date"] == first + pd.Timedelta(days=2))
    values = [c for c in frame.columns if c == "forecast" or c.startswith(("lower_", "upper_"))]
    assert (frame.loc[shut, values] == 0.0).all(axis=None)
    # The other days of that series, and the other series' days, are forecast as usual.
    rest = frame[(frame["series_id"] == "S1|A") & ~shut]
    assert (rest["forecast"] > 0).all() and (rest["upper_95"] > 0).all()
    plain = fc.predict(7)
    np.testing.assert_allclose(frame.loc[~shut, "forecast"], plain.loc[~shut, "forecast"])


def test_zeroing_needs_a_column_a_future_and_a_match():
    frame = pd.DataFrame(
        {"series_id": ["a"], "date": pd.to_datetime(["2024-01-02"]), "forecast": [3.0]}
    )
    future = pd.DataFrame({"date": pd.to_datetime(["2024-01-02"]), "in_stock": [False]})
    ids = pd.Series(["a"])
    out, n = zero_unavailable_days(frame, future, CONTRACT, ids)
    assert n == 1 and out["forecast"].tolist() == [0.0]
    assert frame["forecast"].tolist() == [3.0]  # the input is not modified
    assert zero_unavailable_days(frame, None, CONTRACT, None)[1] == 0
    assert zero_unavailable_days(frame, future, CONTRACT, pd.Series(["b"]))[1] == 0
    plain = Contract.from_dict(RETAIL_CONTRACT)
    assert zero_unavailable_days(frame, future, plain, ids)[1] == 0


def test_new_history_with_a_closed_day_does_not_teach_zero_demand(config):
    panel, _ = _panel(closed_sales=None, flagged=True)
    end = panel["date"].max()
    train = panel[panel["date"] <= end - pd.Timedelta(days=3)]
    newer = panel[(panel["date"] > end - pd.Timedelta(days=3)) & (panel["series_id"] == "S1|A")]
    fc = Forecaster.fit(train, CONTRACT, config)
    closed = newer.assign(sales=0.0, in_stock=False)
    busy = newer.assign(sales=80.0, in_stock=False)
    a = fc.predict(7, new_history=closed, series_ids=["S1|A"])
    b = fc.predict(7, new_history=busy, series_ids=["S1|A"])
    np.testing.assert_allclose(a["forecast"], b["forecast"])


@pytest.mark.parametrize("with_model", [True, False])
def test_predict_zeroes_closed_days_for_models_and_seasonal_naive(
    tmp_path, config, duckdb_writer, with_model
):
    import json

    from trainer.predict import run_predict

    panel, _ = _panel()
    end = panel["date"].max()
    data = duckdb_writer(panel, tmp_path / "w.duckdb")
    first = end + pd.Timedelta(days=1)
    future = tmp_path / "future.csv"
    future.write_text(
        "store_id,item_id,date,in_stock\n"
        f"S1,A,{(first + pd.Timedelta(days=1)).date()},false\n"
        f"S2,A,{first.date()},true\n"
    )
    kwargs: dict = {"seasonal_naive": True, "contract": CONTRACT}
    if with_model:
        model = tmp_path / "model"
        Forecaster.fit(panel, CONTRACT, config).save(str(model))
        kwargs = {"model_dir": str(model), "model_version": "m1"}
    out = tmp_path / "forecast.parquet"
    run_predict(
        cutoff_date=end.date(),
        output_uri=str(out),
        run_id="r1",
        data_uri=data,
        future_uri=str(future),
        horizon=7,
        **kwargs,
    )
    frame = pd.read_parquet(out)
    meta = json.loads((tmp_path / "forecast_meta.json").read_text())
    assert meta["unavailable_days"] == 1
    shut = (frame["series_id"] == "S1|A") & (
        pd.to_datetime(frame["date"]) == first + pd.Timedelta(days=1)
    )
    assert shut.sum() == 1
    assert (frame.loc[shut, ["forecast", "lower_80", "upper_80", "lower_95", "upper_95"]] == 0).all(
        axis=None
    )
    assert (frame.loc[~shut & (frame["series_id"] == "S1|A"), "forecast"] > 0).all()
