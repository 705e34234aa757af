"""``run_predict`` composing a model, a fallback model and seasonal naive."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainer.predict as predict_module
from trainer.baselines import (
    SEASONAL_NAIVE_VERSION,
    seasonal_naive_forecast,
    seasonal_naive_history_days,
)
from trainer.errors import TrainerError
from trainer.model import Forecaster
from trainer.predict import run_predict

TRAIN_END = pd.Timestamp("2024-06-23")
CUTOFF = dt.date(2024, 6, 30)
PRIMARY = ["S1|A", "S1|B", "S2|A"]
NEW = "S2|B"  # in the data, unknown to the primary
NEWCOMER = "S2|C"  # 40 days old, unknown to both models


@pytest.fixture(scope="module")
def setup(tmp_path_factory, retail_contract, small_config, panel_factory, duckdb_writer):
    root = tmp_path_factory.mktemp("compose")
    panel = panel_factory()
    upto = panel[panel["date"] <= TRAIN_END]
    dirs = {}
    for name, ids in (("primary", PRIMARY), ("fallback", ["S1|A", NEW])):
        fc = Forecaster.fit(upto[upto["series_id"].isin(ids)], retail_contract, small_config)
        dirs[name] = str(root / name)
        fc.save(dirs[name])
    four = panel[panel["series_id"].isin([*PRIMARY, NEW])]
    five = panel[panel["series_id"].isin([*PRIMARY, NEW, NEWCOMER])]
    return {
        "root": root,
        "panel": panel,
        "four": four,
        "data4": duckdb_writer(four, root / "four.duckdb"),
        "data5": duckdb_writer(five, root / "five.duckdb"),
        "data6": duckdb_writer(panel, root / "six.duckdb"),
        **dirs,
    }


def _run(setup, tmp_path: Path, **kwargs):
    out = tmp_path / "forecast.parquet"
    args = {
        "cutoff_date": CUTOFF,
        "output_uri": str(out),
        "run_id": "r1",
        "model_dir": setup["primary"],
        "model_version": "p1",
        **kwargs,
    }
    summary = run_predict(**args)
    frame = pd.read_parquet(out)
    meta = json.loads((tmp_path / "forecast_meta.json").read_text())
    assert meta["n_rows"] == len(frame) == summary["n_rows"]
    return frame, meta


def _labels(frame: pd.DataFrame) -> dict[str, str]:
    labels = frame.groupby("series_id")["model_version"].unique()
    assert labels.map(len).eq(1).all()
    return {sid: versions[0] for sid, versions in labels.items()}


def _intervals_ok(frame: pd.DataFrame, levels=(80, 95)) -> None:
    for lv in levels:
        lo, hi = frame[f"lower_{lv}"], frame[f"upper_{lv}"]
        assert lo.notna().all() and hi.notna().all()
        assert (lo >= 0).all()
        assert (lo <= frame["forecast"] + 1e-9).all() and (frame["forecast"] <= hi + 1e-9).all()


def test_a_series_the_model_does_not_know_gets_seasonal_naive(setup, tmp_path, retail_contract):
    frame, meta = _run(setup, tmp_path, data_uri=setup["data4"])
    assert len(frame) == 4 * 7 and frame["date"].min() == dt.date(2024, 7, 1)
    assert _labels(frame) == {**dict.fromkeys(PRIMARY, "p1"), NEW: SEASONAL_NAIVE_VERSION}
    _intervals_ok(frame)
    assert meta["models"] == {"p1": 3, SEASONAL_NAIVE_VERSION: 1}
    assert meta["series_seasonal_naive"] == 1 and meta["n_series"] == 4
    assert meta["series_without_intervals"] == 0
    assert meta["history_rows_applied"] == 3 * 7
    assert any(NEW in note and "seasonal naive" in note for note in meta["notes"])
    # The naive rows are seasonal_naive_forecast of the series' own recent history.
    new = setup["four"][setup["four"]["series_id"] == NEW]
    expected = seasonal_naive_forecast(new, 7, (80, 95), target_col="sales")
    got = frame[frame["series_id"] == NEW].reset_index(drop=True)
    np.testing.assert_allclose(got["forecast"], expected["forecast"])
    np.testing.assert_allclose(got["upper_95"], expected["upper_95"])
    assert set(got["store_id"]) == {"S2"} and set(got["item_id"]) == {"B"}


def test_the_fallback_model_forecasts_what_it_knows(setup, tmp_path):
    frame, meta = _run(
        setup,
        tmp_path,
        data_uri=setup["data5"],
        fallback_model_dir=setup["fallback"],
        fallback_model_version="f1",
    )
    assert len(frame) == 5 * 7
    # S1|A is known to both: the primary's. The newcomer is known to neither.
    assert _labels(frame) == {
        **dict.fromkeys(PRIMARY, "p1"),
        NEW: "f1",
        NEWCOMER: SEASONAL_NAIVE_VERSION,
    }
    _intervals_ok(frame)
    assert meta["models"] == {"p1": 3, "f1": 1, SEASONAL_NAIVE_VERSION: 1}
    assert meta["fallback_model_version"] == "f1" and meta["series_seasonal_naive"] == 1
    assert meta["fallback_training_end"] == "2024-06-23"
    assert meta["history_rows_applied"] == 4 * 7


def test_future_rows_go_to_the_model_that_forecasts_the_series(setup, tmp_path):
    future = tmp_path / "future.csv"
    future.write_text(
        "store_id,item_id,date,on_promo\n"
        "S1,A,2024-07-01,true\n"  # the primary's
        "S2,B,2024-07-01,true\n"  # the fallback's
        "S2,C,2024-07-01,true\n"  # seasonal naive: ignored
    )
    frame, meta = _run(
        setup,
        tmp_path,
        data_uri=setup["data5"],
        future_uri=str(future),
        fallback_model_dir=setup["fallback"],
        fallback_model_version="f1",
    )
    assert len(frame) == 5 * 7
    assert meta["ignored_future_rows"] == 1
    # 4 model series x 7 days, one given each for the primary and the fallback.
    assert meta["filled_values"]["on_promo"] == 4 * 7 - 2
    future.write_text("store_id,item_id,date,on_promo\nS9,A,2024-07-01,true\n")
    with pytest.raises(TrainerError, match="does not know"):
        _run(setup, tmp_path, data_uri=setup["data5"], future_uri=str(future))


def test_seasonal_naive_for_every_series_reads_only_recent_rows(
    setup, tmp_path, retail_contract, monkeypatch
):
    calls = []
    real = predict_module.load_panel

    def spy(uri, contract, cutoff, since=None):
        calls.append((cutoff, since))
        return real(uri, contract, cutoff, since=since)

    monkeypatch.setattr(predict_module, "load_panel", spy)
    frame, meta = _run(
        setup,
        tmp_path,
        model_dir=None,
        model_version=None,
        seasonal_naive=True,
        contract=retail_contract,
        data_uri=setup["data6"],
    )
    assert len(frame) == 6 * 28  # no model: TrainerConfig's default horizon
    assert set(frame["model_version"]) == {SEASONAL_NAIVE_VERSION}
    _intervals_ok(frame)
    assert meta["models"] == {SEASONAL_NAIVE_VERSION: 6} and meta["series_seasonal_naive"] == 6
    assert meta["model_version"] == SEASONAL_NAIVE_VERSION and meta["model_dir"] is None
    days = seasonal_naive_history_days(28)
    assert days == 7 * (8 + 4)
    assert calls == [(CUTOFF, CUTOFF - dt.timedelta(days=days - 1))]


def test_reads_since_the_model_and_older_rows_only_for_naive_series(setup, tmp_path, monkeypatch):
    calls = []
    real = predict_module.load_panel

    def spy(uri, contract, cutoff, since=None):
        calls.append((cutoff, since))
        return real(uri, contract, cutoff, since=since)

    monkeypatch.setattr(predict_module, "load_panel", spy)
    _run(setup, tmp_path, data_uri=setup["data4"])
    first = (CUTOFF, dt.date(2024, 6, 24))
    # S2|B is older than the rows read for the model: its recent weeks are read once more.
    older = (dt.date(2024, 6, 23), CUTOFF - dt.timedelta(days=seasonal_naive_history_days(7) - 1))
    assert calls == [first, older]
    calls.clear()
    # Every series known: one read, from the model's training end.
    _run(
        setup,
        tmp_path,
        data_uri=setup["data4"],
        fallback_model_dir=setup["fallback"],
        fallback_model_version="f1",
    )
    assert calls == [first]


def test_stale_data_still_forecasts_every_series(
    setup, tmp_path, retail_contract, panel_factory, duckdb_writer
):
    """A panel that ends before the cut-off: the naive window is counted from its last day."""
    stale = panel_factory(end=pd.Timestamp("2024-06-09"))
    uri = duckdb_writer(stale, tmp_path / "stale.duckdb")
    frame, _ = _run(
        setup,
        tmp_path,
        model_dir=None,
        model_version=None,
        seasonal_naive=True,
        contract=retail_contract,
        data_uri=uri,
        horizon=7,
    )
    assert frame["series_id"].nunique() == 6 and frame["date"].min() == dt.date(2024, 6, 10)
    expected = seasonal_naive_forecast(stale, 7, (80, 95), target_col="sales")
    np.testing.assert_allclose(frame["upper_80"], expected["upper_80"])


def test_horizon_beyond_the_calibration_counts_series_without_intervals(setup, tmp_path):
    frame, meta = _run(setup, tmp_path, data_uri=setup["data4"], horizon=10)
    model_rows = frame[frame["model_version"] == "p1"]
    naive_rows = frame[frame["model_version"] == SEASONAL_NAIVE_VERSION]
    assert model_rows["lower_80"].isna().all()
    _intervals_ok(naive_rows)
    assert meta["series_without_intervals"] == 3
    assert any("calibrated for 7 days" in note for note in meta["notes"])


def test_without_data_only_the_models_series(setup, tmp_path):
    frame, meta = _run(setup, tmp_path)
    assert sorted(frame["series_id"].unique()) == PRIMARY
    assert meta["models"] == {"p1": 3} and meta["series_seasonal_naive"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fallback_model_dir": "x"}, "go together"),
        ({"fallback_model_version": "f"}, "go together"),
        ({"seasonal_naive": True}, "uses no model"),
        ({"model_version": SEASONAL_NAIVE_VERSION}, "reserved"),
        ({"fallback_model_dir": "x", "fallback_model_version": "p1"}, "must differ"),
        ({"model_dir": None, "model_version": None}, "AIP_MODEL_DIR"),
        ({"model_dir": None, "model_version": None, "seasonal_naive": True}, "--contract"),
    ],
)
def test_bad_combinations_fail_before_any_work(setup, tmp_path, kwargs, message):
    with pytest.raises(TrainerError, match=message):
        _run(setup, tmp_path, data_uri=setup["data4"], **kwargs)
    assert not (tmp_path / "forecast.parquet").exists()


def test_fallback_with_another_contract_is_refused(
    setup, tmp_path, takeaway_panel, takeaway_contract, small_config
):
    other = tmp_path / "takeaway"
    Forecaster.fit(takeaway_panel, takeaway_contract, small_config, intervals=False).save(
        str(other)
    )
    with pytest.raises(TrainerError, match="contract differs"):
        _run(
            setup,
            tmp_path,
            data_uri=setup["data4"],
            fallback_model_dir=str(other),
            fallback_model_version="f1",
        )


def test_a_fallback_with_a_newer_column_gets_it(
    setup, tmp_path, retail_contract, small_config, duckdb_writer
):
    """The fallback (this run's model) may know a column added after the primary was trained:
    the one read carries both models' columns."""
    from dataclasses import replace

    from sf_contract import Column

    newer = replace(
        retail_contract,
        columns=(*retail_contract.columns, Column("discount", "FLOAT64", "known", "zero")),
    )
    panel = setup["four"].assign(discount=0.1)
    fc = Forecaster.fit(
        panel[(panel["date"] <= TRAIN_END) & panel["series_id"].isin(["S1|A", NEW])],
        newer,
        small_config,
        intervals=False,
    )
    fc.save(str(tmp_path / "newer"))
    frame, meta = _run(
        setup,
        tmp_path,
        data_uri=duckdb_writer(panel, tmp_path / "newer.duckdb"),
        fallback_model_dir=str(tmp_path / "newer"),
        fallback_model_version="f2",
    )
    assert _labels(frame)[NEW] == "f2" and meta["models"] == {"p1": 3, "f2": 1}
    assert meta["filled_values"]["discount"] == 7
    clash = replace(
        retail_contract,
        columns=tuple(
            replace(c, future_fill="zero") if c.name == "price" else c
            for c in retail_contract.columns
        ),
    )
    Forecaster.fit(
        setup["four"][setup["four"]["date"] <= TRAIN_END], clash, small_config, intervals=False
    ).save(str(tmp_path / "clash"))
    with pytest.raises(TrainerError, match=r"defines \['price'\] differently"):
        _run(
            setup,
            tmp_path,
            data_uri=setup["data4"],
            fallback_model_dir=str(tmp_path / "clash"),
            fallback_model_version="f3",
        )
