"""Tests for the seeded single-series takeaway generator."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datagen import TAKEAWAY_COLUMNS, TAKEAWAY_FUTURE_COLUMNS, generate_takeaway
from datagen.__main__ import main
from datagen.takeaway import TakeawayPanel, indian_holidays, write_takeaway_csv

PARAMS = {"start": "2023-01-01", "end": "2025-10-31", "future_days": 28, "seed": 11}
WEATHER = ["tavg", "tmin", "tmax", "prcp", "wspd", "pres"]
CRICKET_FLAGS = ["is_evening", "is_home", "is_delhi", "is_t20i"]
BOOLS = ["is_holiday", "is_school_break", "is_weekend", "is_cricket_day", *CRICKET_FLAGS]


@pytest.fixture(scope="module")
def panel() -> TakeawayPanel:
    return generate_takeaway(**PARAMS)


def _write(tmp_path: Path, name: str, **kwargs: object) -> dict[str, bytes]:
    out = {k: tmp_path / f"{name}_{k}.csv" for k in ("history", "future", "actuals", "truth")}
    write_takeaway_csv(
        out["history"],
        future_path=out["future"],
        actuals_path=out["actuals"],
        truth_path=out["truth"],
        **kwargs,  # type: ignore[arg-type]
    )
    return {k: p.read_bytes() for k, p in out.items()}


def test_determinism(tmp_path: Path) -> None:
    first = _write(tmp_path, "a", **PARAMS)
    assert first == _write(tmp_path, "b", **PARAMS)
    other = _write(tmp_path, "c", **{**PARAMS, "seed": 12})
    assert other["history"] != first["history"]


def test_history_and_future_prefix_do_not_depend_on_future_days() -> None:
    short = generate_takeaway(**{**PARAMS, "future_days": 5})
    long = generate_takeaway(**{**PARAMS, "future_days": 60})
    pd.testing.assert_frame_equal(short.history, long.history)
    pd.testing.assert_frame_equal(short.future_actuals, long.future_actuals.iloc[:5])
    pd.testing.assert_frame_equal(short.future, long.future.iloc[:5])


def test_columns_and_dtypes(panel: TakeawayPanel) -> None:
    h = panel.history
    assert list(h.columns) == TAKEAWAY_COLUMNS
    assert list(panel.future.columns) == TAKEAWAY_FUTURE_COLUMNS
    assert list(panel.future_actuals.columns) == ["date", "Total"]
    assert list(panel.truth.columns) == ["date", "expected"]
    assert pd.api.types.is_datetime64_any_dtype(h["date"])
    for col in ["Total", *WEATHER, "dinner_impact_score", "importance_score"]:
        assert pd.api.types.is_float_dtype(h[col]), col
    for col in BOOLS:
        assert pd.api.types.is_bool_dtype(h[col]), col
    # One row per day, no gaps.
    expected_days = pd.date_range(PARAMS["start"], PARAMS["end"])
    assert h["date"].tolist() == expected_days.tolist()


def test_csv_text_format(tmp_path: Path) -> None:
    files = _write(tmp_path, "fmt", **PARAMS)
    lines = files["history"].decode().split("\n")
    assert lines[0] == ",".join(TAKEAWAY_COLUMNS)
    assert lines[-1] == ""
    b = "(true|false)"
    num1 = r"-?\d+\.\d"
    row = re.compile(
        r"\d{4}-\d{2}-\d{2},\d+\.\d{2}"
        + rf",{num1}" * 6
        + rf",{b},[A-Za-z /-]*,{b},\d+\.\d,\d+\.\d"
        + rf",{b}" * 6
    )
    bad = [line for line in lines[1:-1] if not row.fullmatch(line)]
    assert not bad, bad[:3]
    future_header = files["future"].decode().split("\n")[0]
    assert future_header == ",".join(TAKEAWAY_FUTURE_COLUMNS)


def test_future_has_no_target_and_no_weather(panel: TakeawayPanel) -> None:
    f = panel.future
    assert "Total" not in f.columns
    assert not set(WEATHER) & set(f.columns)
    start = pd.Timestamp(PARAMS["end"]) + pd.Timedelta(days=1)
    assert f["date"].tolist() == pd.date_range(start, periods=PARAMS["future_days"]).tolist()
    assert panel.future_actuals["date"].tolist() == f["date"].tolist()


def test_totals_non_negative_and_close_to_expected(panel: TakeawayPanel) -> None:
    h = panel.history
    assert (h["Total"] >= 0).all()
    assert (panel.truth["expected"] >= 0).all()
    assert len(panel.truth) == len(h) + PARAMS["future_days"]
    hist_truth = panel.truth.iloc[: len(h)]
    assert h["Total"].mean() == pytest.approx(hist_truth["expected"].mean(), rel=0.03)


def test_weather_is_plausible(panel: TakeawayPanel) -> None:
    h = panel.history
    assert (h["tmin"] <= h["tavg"]).all() and (h["tavg"] <= h["tmax"]).all()
    assert (h["prcp"] >= 0).all() and (h["wspd"] >= 0).all()
    assert h["pres"].between(980, 1040).all()
    month = h["date"].dt.month
    assert h.loc[month == 5, "tavg"].mean() > h.loc[month == 1, "tavg"].mean() + 12
    monsoon = h.loc[month.isin([7, 8]), "prcp"].mean()
    dry = h.loc[month.isin([11, 12, 1, 2]), "prcp"].mean()
    assert monsoon > 5 * dry


def test_holidays(panel: TakeawayPanel) -> None:
    h = panel.history
    assert ((h["holiday_name"] != "") == h["is_holiday"]).all()
    named = dict(zip(h["date"].dt.strftime("%Y-%m-%d"), h["holiday_name"], strict=True))
    assert named["2023-01-26"] == "Republic Day"
    assert named["2024-03-25"] == "Holi"
    assert named["2023-11-12"] == "Diwali"
    assert named["2024-08-15"] == "Independence Day"
    assert named["2025-10-02"] == "Dussehra / Gandhi Jayanti"
    hol = indian_holidays("2024-01-01", "2024-12-31")
    assert "Good Friday" in set(hol["name"])
    assert hol.loc[hol["name"] == "Good Friday", "date"].iloc[0] == pd.Timestamp("2024-03-29")
    # Holi is a stay-at-home festival in this model.
    holi = h.loc[h["holiday_name"] == "Holi", "Total"].mean()
    assert holi < 0.7 * h["Total"].mean()


def test_school_breaks_and_weekend(panel: TakeawayPanel) -> None:
    h = panel.history.set_index("date")
    assert h.loc["2024-01-01":"2024-01-15", "is_school_break"].all()
    assert h.loc["2024-05-15":"2024-06-30", "is_school_break"].all()
    assert not h.loc["2024-02-01":"2024-02-28", "is_school_break"].any()
    assert (h["is_weekend"] == (h.index.dayofweek >= 5)).all()


def test_cricket_columns_consistent(panel: TakeawayPanel) -> None:
    h = panel.history
    off = h[~h["is_cricket_day"]]
    assert (off[["dinner_impact_score", "importance_score"]] == 0).all().all()
    assert not off[CRICKET_FLAGS].any().any()
    on = h[h["is_cricket_day"]]
    assert len(on) > 100
    assert (on["importance_score"] > 0).all()
    for col in ("dinner_impact_score", "importance_score"):
        assert h[col].between(0, 10).all()
    assert (~h["is_delhi"] | h["is_home"]).all()  # Delhi matches are home matches
    assert on["is_t20i"].any() and on["is_delhi"].any() and (~on["is_evening"]).any()
    # Known in advance: the same columns appear, consistently, in the future frame.
    assert panel.future["is_cricket_day"].dtype == bool


def test_evening_cricket_lifts_orders(panel: TakeawayPanel) -> None:
    h = panel.history.copy()
    # Compare within weekday and year so the weekly profile and growth do not leak in.
    group = [h["date"].dt.dayofweek, h["date"].dt.year]
    h["rel"] = h["Total"] / h.groupby(group)["Total"].transform("mean")
    quiet = ~h["is_holiday"]
    evening = h["is_cricket_day"] & h["is_evening"] & (h["dinner_impact_score"] >= 6) & quiet
    none = ~h["is_cricket_day"] & quiet
    assert h.loc[evening, "rel"].mean() > 1.05 * h.loc[none, "rel"].mean()


def test_matches_table(panel: TakeawayPanel) -> None:
    m = panel.matches
    assert m["date"].is_unique
    assert set(m["competition"]) >= {"IPL", "bilateral"}
    assert not m.loc[m["competition"] == "IPL", "is_t20i"].any()
    flagged = panel.history.loc[panel.history["is_cricket_day"], "date"]
    assert set(flagged) <= set(m["date"])


def test_cli(tmp_path: Path) -> None:
    out, fut = tmp_path / "t.csv", tmp_path / "f.csv"
    args = ["takeaway", "--out", str(out), "--future-out", str(fut), "--end", "2023-06-30"]
    assert main(args) == 0
    api = _write(tmp_path, "api", start="2023-01-01", end="2023-06-30")
    assert out.read_bytes() == api["history"]
    assert fut.read_bytes() == api["future"]
    back = pd.read_csv(out, keep_default_na=False)
    assert list(back.columns) == TAKEAWAY_COLUMNS
    assert len(back) == 181
    assert np.isfinite(back["Total"]).all()
