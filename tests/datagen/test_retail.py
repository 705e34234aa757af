"""Tests for the seeded retail panel generator (small sizes, fixed seeds)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datagen import RETAIL_COLUMNS, RETAIL_FUTURE_COLUMNS, generate_retail, write_retail_csv
from datagen.__main__ import main
from datagen.retail import RetailPanel, retail_holidays

# Big enough for the statistical checks (several promos and holidays per item), still < 1 s.
PARAMS = {
    "n_stores": 3,
    "n_items": 12,
    "start": "2023-01-01",
    "end": "2024-12-31",
    "future_days": 28,
    "seed": 3,
}
SMALL = {
    "n_stores": 2,
    "n_items": 5,
    "start": "2024-01-01",
    "end": "2024-12-31",
    "future_days": 10,
    "seed": 5,
}


@pytest.fixture(scope="module")
def panel() -> RetailPanel:
    return generate_retail(**PARAMS)


@pytest.fixture(scope="module")
def regular_ids(panel: RetailPanel) -> list[str]:
    """Items with enough volume for per-item statistics."""
    items = panel.items
    return items.loc[~items["is_slow_mover"], "item_id"].tolist()


def _csv_bytes(tmp_path: Path, name: str, **kwargs: object) -> dict[str, bytes]:
    out = {k: tmp_path / f"{name}_{k}.csv" for k in ("history", "future", "actuals", "truth")}
    write_retail_csv(
        out["history"],
        future_path=out["future"],
        actuals_path=out["actuals"],
        truth_path=out["truth"],
        **kwargs,  # type: ignore[arg-type]
    )
    return {k: p.read_bytes() for k, p in out.items()}


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first = _csv_bytes(tmp_path, "a", **SMALL)
    second = _csv_bytes(tmp_path, "b", **SMALL)
    assert first == second


def test_different_seed_differs(tmp_path: Path) -> None:
    first = _csv_bytes(tmp_path, "a", **SMALL)
    other = _csv_bytes(tmp_path, "b", **{**SMALL, "seed": SMALL["seed"] + 1})
    assert first["history"] != other["history"]
    assert first["truth"] != other["truth"]


def test_chunked_and_in_memory_write_identical_bytes(tmp_path: Path) -> None:
    chunked = _csv_bytes(tmp_path, "chunked", **SMALL, chunked=True)
    whole = _csv_bytes(tmp_path, "whole", **SMALL, chunked=False)
    assert chunked == whole


def test_csv_matches_in_memory_frame(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    write_retail_csv(path, **SMALL)
    panel = generate_retail(**SMALL)
    back = pd.read_csv(path, parse_dates=["date"])
    expected = panel.history.copy()
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)


def test_history_does_not_depend_on_future_days() -> None:
    short = generate_retail(**{**SMALL, "future_days": 3})
    long = generate_retail(**{**SMALL, "future_days": 40})
    pd.testing.assert_frame_equal(short.history, long.history)
    n_short = short.future["date"].nunique()
    assert n_short == 3
    # The overlapping future days agree too (prices, promos and sampled sales).
    head = long.future_actuals[long.future_actuals["date"] <= short.future["date"].max()]
    pd.testing.assert_frame_equal(head.reset_index(drop=True), short.future_actuals)


# ---------------------------------------------------------------- schema and formats


def test_columns_and_dtypes(panel: RetailPanel) -> None:
    assert list(panel.history.columns) == RETAIL_COLUMNS
    assert list(panel.future.columns) == RETAIL_FUTURE_COLUMNS
    assert list(panel.future_actuals.columns) == ["date", "store_id", "item_id", "sales"]
    assert list(panel.truth.columns) == ["date", "store_id", "item_id", "expected"]
    h = panel.history
    assert pd.api.types.is_datetime64_any_dtype(h["date"])
    assert pd.api.types.is_integer_dtype(h["sales"])
    assert pd.api.types.is_float_dtype(h["price"])
    assert pd.api.types.is_bool_dtype(h["on_promo"])
    assert pd.api.types.is_bool_dtype(h["is_holiday"])
    assert pd.api.types.is_float_dtype(h["temperature"])
    assert h["date"].min() == pd.Timestamp(PARAMS["start"])
    assert h["date"].max() == pd.Timestamp(PARAMS["end"])
    assert h["store_id"].str.fullmatch(r"S\d{2}").all()
    assert h["item_id"].str.fullmatch(r"I\d{3}").all()


def test_csv_text_format(tmp_path: Path) -> None:
    files = _csv_bytes(tmp_path, "fmt", **SMALL)
    lines = files["history"].decode().split("\n")
    assert lines[0] == ",".join(RETAIL_COLUMNS)
    assert lines[-1] == ""  # trailing newline, no CRLF
    row = re.compile(
        r"\d{4}-\d{2}-\d{2},S\d{2},I\d{3},\d+,\d+\.\d{2},(true|false),(true|false),-?\d+\.\d,"
        r"(true|false)"
    )
    bad = [line for line in lines[1:-1] if not row.fullmatch(line)]
    assert not bad, bad[:3]
    future_lines = files["future"].decode().split("\n")
    assert future_lines[0] == ",".join(RETAIL_FUTURE_COLUMNS)
    frow = re.compile(
        r"\d{4}-\d{2}-\d{2},S\d{2},I\d{3},\d+\.\d{2},(true|false),(true|false),(true|false)"
    )
    assert all(frow.fullmatch(line) for line in future_lines[1:-1])
    assert b"\r" not in files["history"]


def test_ids_widen_for_large_counts() -> None:
    panel = generate_retail(n_stores=1, n_items=1000, start="2024-01-01", end="2024-01-03")
    assert panel.truth["item_id"].str.fullmatch(r"I\d{4}").all()
    assert panel.truth["item_id"].min() == "I0001"
    assert panel.truth["item_id"].max() == "I1000"


# ---------------------------------------------------------------- structural realism


def test_no_negative_sales(panel: RetailPanel) -> None:
    assert (panel.history["sales"] >= 0).all()
    assert (panel.future_actuals["sales"] >= 0).all()


def test_no_rows_before_launch(panel: RetailPanel) -> None:
    launched = panel.items[panel.items["role"] == "launched_mid_history"]
    assert len(launched) >= 1
    assert (launched["launch_date"] > pd.Timestamp(PARAMS["start"])).all()
    first_row = panel.history.groupby("item_id")["date"].min()
    for item_id, launch in zip(launched["item_id"], launched["launch_date"], strict=True):
        assert first_row[item_id] >= launch
        # ...and the item does sell from (about) its launch on.
        assert first_row[item_id] <= launch + pd.Timedelta(days=1)
    merged = panel.history.merge(panel.items[["item_id", "launch_date"]], on="item_id")
    assert (merged["date"] >= merged["launch_date"]).all()


def test_closed_days_are_unavailable_rows_with_zero_sales(panel: RetailPanel) -> None:
    closures = panel.closures
    assert set(closures["reason"]) == {"christmas", "renovation", "stocktake"}
    renovation = closures[closures["reason"] == "renovation"]
    assert renovation["store_id"].nunique() == 1
    assert len(renovation) >= 7
    marked = panel.history.merge(
        closures[["store_id", "date"]], on=["store_id", "date"], how="left", indicator=True
    )
    closed = marked["_merge"] == "both"
    assert closed.any()
    # A closed day is a row with zero sales, flagged unavailable; every other day is available.
    assert (marked.loc[closed, "sales"] == 0).all()
    assert not marked.loc[closed, "is_available"].any()
    assert marked.loc[~closed, "is_available"].all()


def test_dec_25_closed_everywhere(panel: RetailPanel) -> None:
    h = panel.history
    xmas = (h["date"].dt.month == 12) & (h["date"].dt.day == 25)
    assert xmas.any()
    assert not h.loc[xmas, "is_available"].any()
    # Dec 24 and 26 are trading days.
    for day in ("2023-12-24", "2023-12-26", "2024-12-24"):
        assert h.loc[h["date"] == pd.Timestamp(day), "is_available"].all()


def test_holiday_calendar() -> None:
    hol = retail_holidays("2024-01-01", "2024-12-31")
    days = set(hol["date"].dt.strftime("%Y-%m-%d"))
    assert days == {
        "2024-01-01",
        "2024-03-29",  # Good Friday
        "2024-05-01",
        "2024-11-28",  # 4th Thursday of November
        "2024-12-24",
        "2024-12-25",
        "2024-12-26",
        "2024-12-31",
    }


def test_is_holiday_flag_matches_calendar(panel: RetailPanel) -> None:
    hol = retail_holidays(PARAMS["start"], PARAMS["end"])
    flagged = set(panel.history.loc[panel.history["is_holiday"], "date"])
    # Christmas (effect 0: closed) is a holiday too, on rows flagged unavailable.
    assert flagged == set(hol["date"])


def test_pre_holiday_uplift_in_truth(panel: RetailPanel) -> None:
    truth = panel.truth.pivot_table(
        index="date", columns=["store_id", "item_id"], values="expected"
    )
    for thanksgiving in ("2023-11-23", "2024-11-28"):
        day = pd.Timestamp(thanksgiving)
        eve, week_before = day - pd.Timedelta(days=1), day - pd.Timedelta(days=8)
        live = truth.loc[week_before] > 0
        # Median over series so an item that happens to be on promo does not decide it.
        uplift = (truth.loc[eve, live] / truth.loc[week_before, live]).median()
        quiet = (
            truth.loc[day, live] / truth.loc[week_before + pd.Timedelta(days=1), live]
        ).median()
        assert uplift > 1.1, uplift
        assert quiet < 0.9, quiet


# ---------------------------------------------------------------- demand effects


def test_promo_uplift(panel: RetailPanel, regular_ids: list[str]) -> None:
    h = panel.history[panel.history["item_id"].isin(regular_ids)]
    means = h.groupby(["item_id", "on_promo"])["sales"].mean().unstack()
    assert means.notna().all().all()
    assert (means[True] > means[False]).all(), means


def test_promo_lowers_price(panel: RetailPanel) -> None:
    h = panel.history.sort_values(["store_id", "item_id", "date"])
    prev_promo = h.groupby(["store_id", "item_id"])["on_promo"].shift()
    prev_price = h.groupby(["store_id", "item_id"])["price"].shift()
    prev_day = h.groupby(["store_id", "item_id"])["date"].shift()
    consecutive = h["date"] - prev_day == pd.Timedelta(days=1)
    starts = h["on_promo"] & prev_promo.eq(False) & consecutive
    assert starts.sum() > 20
    assert (h.loc[starts, "price"] < prev_price[starts]).all()


def test_post_promo_dip(panel: RetailPanel, regular_ids: list[str]) -> None:
    h = panel.history[panel.history["item_id"].isin(regular_ids)].copy()
    h = h.sort_values(["store_id", "item_id", "date"])
    last_promo = h["date"].where(h["on_promo"])
    h["last_promo"] = last_promo.groupby([h["store_id"], h["item_id"]]).ffill()
    since = (h["date"] - h["last_promo"]).dt.days
    # Normalise by the item/store level so big items do not dominate.
    h["rel"] = h["sales"] / h.groupby(["store_id", "item_id"])["sales"].transform("mean")
    dip = h.loc[since.between(1, 2), "rel"].mean()
    clean = h.loc[~h["on_promo"] & ((since > 10) | since.isna()), "rel"].mean()
    assert dip < 0.9 * clean, (dip, clean)


def test_weekly_seasonality(panel: RetailPanel, regular_ids: list[str]) -> None:
    h = panel.history[panel.history["item_id"].isin(regular_ids)]
    by_dow = h.groupby(h["date"].dt.dayofweek)["sales"].mean()
    assert by_dow[[5, 6]].mean() > 1.1 * by_dow[[0, 1, 2, 3]].mean()
    # Peaks differ between items: not every item peaks on the same day.
    peaks = panel.items["weekend_peak_day"]
    assert peaks.nunique() > 1


def test_slow_movers_have_many_zeros(panel: RetailPanel) -> None:
    slow = panel.items.loc[panel.items["is_slow_mover"], "item_id"]
    assert len(slow) >= 2
    h = panel.history[panel.history["item_id"].isin(slow)]
    stats = h.groupby("item_id")["sales"].agg(mean="mean", zeros=lambda s: (s == 0).mean())
    assert (stats["mean"] < 1.0).all(), stats
    assert (stats["zeros"] > 0.4).all(), stats


def test_trend_both_directions(panel: RetailPanel) -> None:
    trend = panel.items["trend_per_year"]
    assert (trend > 0.05).any() and (trend < -0.05).any()


def test_temperature_yearly_cycle_and_per_store(panel: RetailPanel) -> None:
    temp = panel.history.drop_duplicates(["store_id", "date"]).set_index("date")
    month = temp.index.month
    summer = temp[np.isin(month, [6, 7, 8])].groupby("store_id")["temperature"].mean()
    winter = temp[np.isin(month, [12, 1, 2])].groupby("store_id")["temperature"].mean()
    assert (summer > winter + 8).all()
    per_store = temp.reset_index().pivot(index="date", columns="store_id", values="temperature")
    assert per_store.nunique(axis=1).gt(1).mean() > 0.9


def test_cold_weather_items_follow_temperature(panel: RetailPanel) -> None:
    cold = panel.items.loc[panel.items["role"] == "cold_weather", "item_id"]
    assert len(cold) >= 1
    h = panel.history[panel.history["item_id"].isin(cold)]
    assert h["sales"].corr(h["temperature"]) > 0.2


# ---------------------------------------------------------------- future, actuals, truth


def test_future_covers_every_launched_series_and_day(panel: RetailPanel) -> None:
    f = panel.future
    assert "sales" not in f.columns and "temperature" not in f.columns
    days = pd.date_range(
        pd.Timestamp(PARAMS["end"]) + pd.Timedelta(days=1), periods=PARAMS["future_days"]
    )
    grid = pd.MultiIndex.from_product(
        [days, sorted(panel.history["store_id"].unique()), panel.items["item_id"]],
        names=["date", "store_id", "item_id"],
    ).to_frame(index=False)
    grid = grid.merge(panel.items[["item_id", "launch_date"]], on="item_id")
    grid = grid[grid["date"] >= grid["launch_date"]].drop(columns="launch_date")
    got = f[["date", "store_id", "item_id"]]
    assert len(got) == len(grid)
    assert not got.duplicated().any()
    assert got.merge(grid).shape[0] == len(grid)
    keys = ["date", "store_id", "item_id"]
    pd.testing.assert_frame_equal(panel.future_actuals[keys], f[keys])


def test_truth_grid_and_values(panel: RetailPanel) -> None:
    t = panel.truth
    n_days = (pd.Timestamp(PARAMS["end"]) - pd.Timestamp(PARAMS["start"])).days + 1
    n_days += PARAMS["future_days"]
    assert len(t) == PARAMS["n_stores"] * PARAMS["n_items"] * n_days
    assert (t["expected"] >= 0).all()
    # Closed and pre-launch days have expected 0; every open history row has expected > 0.
    closed = t.merge(panel.closures[["store_id", "date"]], on=["store_id", "date"])
    assert (closed["expected"] == 0).all()
    h = panel.history.merge(t, on=["date", "store_id", "item_id"], how="left")
    assert h["expected"].notna().all()
    assert (h.loc[h["is_available"], "expected"] > 0).all()
    assert (h.loc[~h["is_available"], "expected"] == 0).all()


def test_sales_mean_matches_expected_mean(panel: RetailPanel) -> None:
    h = panel.history.merge(panel.truth, on=["date", "store_id", "item_id"])
    assert h["sales"].mean() == pytest.approx(h["expected"].mean(), rel=0.03)
    f = panel.future_actuals.merge(panel.truth, on=["date", "store_id", "item_id"])
    assert f["sales"].mean() == pytest.approx(f["expected"].mean(), rel=0.08)
    # Per item too (large items only; slow movers are too noisy for a tight bound).
    big = h.groupby("item_id")[["sales", "expected"]].mean()
    big = big[big["expected"] > 2]
    np.testing.assert_allclose(big["sales"], big["expected"], rtol=0.06)


# ---------------------------------------------------------------- CLI


def test_cli_writes_same_bytes_as_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = {k: tmp_path / f"cli_{k}.csv" for k in ("history", "future", "actuals", "truth")}
    code = main(
        [
            "retail",
            "--out",
            str(cli["history"]),
            "--future-out",
            str(cli["future"]),
            "--actuals-out",
            str(cli["actuals"]),
            "--truth-out",
            str(cli["truth"]),
            "--stores",
            str(SMALL["n_stores"]),
            "--items",
            str(SMALL["n_items"]),
            "--start",
            SMALL["start"],
            "--end",
            SMALL["end"],
            "--future-days",
            str(SMALL["future_days"]),
            "--seed",
            str(SMALL["seed"]),
        ]
    )
    assert code == 0
    assert "history=" in capsys.readouterr().out
    api = _csv_bytes(tmp_path, "api", **SMALL)
    assert {k: p.read_bytes() for k, p in cli.items()} == api


def test_the_yearly_stocktake_is_a_known_closure_in_the_future_file() -> None:
    p = generate_retail(
        n_stores=3, n_items=2, start="2024-01-01", end="2025-10-31", future_days=28, seed=7
    )
    stock = p.closures[p.closures["reason"] == "stocktake"]
    # Store s closes on the (s + 1)-th Tuesday of November, every year of the panel.
    days = {(r.store_id, r.date.strftime("%Y-%m-%d")) for r in stock.itertuples()}
    assert {d for d in days if d[1] >= "2025"} == {
        ("S01", "2025-11-04"),
        ("S02", "2025-11-11"),
        ("S03", "2025-11-18"),
    }
    assert all(pd.Timestamp(d).dayofweek == 1 for _, d in days)
    closed = p.future[~p.future["is_available"]]
    named = zip(closed["store_id"], closed["date"].dt.strftime("%Y-%m-%d"), strict=True)
    assert set(named) == {d for d in days if d[1] >= "2025"}
    assert len(closed) == 3 * 2  # every item of the store
    actual = p.future_actuals.merge(closed[["store_id", "item_id", "date"]])
    assert (actual["sales"] == 0).all()
