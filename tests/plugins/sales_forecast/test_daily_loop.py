"""The daily loop on the local platform, every step for real (DuckDB, trainer subprocesses).

Runs a week apart, as a user's schedule would: the model retrained on newer data replaces
production, a new item is forecast from the day it appears, a deliberately worse recipe does not
replace production, and a model that loses to seasonal naive never writes the forecasts.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sales_forecast import config, steps
from sales_forecast.errors import SkipStep
from sales_forecast.platforms.local import build_local_platform
from sales_forecast.run_context import make_run_context
from sales_forecast.tasks import DailyTasks

pytestmark = pytest.mark.e2e

HORIZON = 7
START = date(2024, 9, 1)
DAY1 = date(2025, 3, 31)  # the first run's cut-off


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    from datagen.retail import generate_retail

    history = generate_retail(
        n_stores=2, n_items=2, start=START.isoformat(), end="2025-04-30", future_days=0, seed=5
    ).history
    history["date"] = pd.to_datetime(history["date"]).dt.date
    return history


def settings_for(root: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> config.Settings:
    monkeypatch.setenv("SF_PLATFORM", "local")
    monkeypatch.setenv("SF_DATA_ROOT", str(root / "data"))
    monkeypatch.setenv("SF_INPUT_ROOTS", json.dumps([str(root)]))
    monkeypatch.setenv("SF_BACKTEST_WINDOWS", "1")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    return config.get_settings()


def run_day(
    settings: config.Settings, root: Path, rows: pd.DataFrame, cutoff: date, **params: object
) -> dict[str, object]:
    """Every step of one daily run, in the DAG's order, as the tasks would call them."""
    path = root / f"sales_{cutoff}.csv"
    rows.to_csv(path, index=False)
    when = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC) + timedelta(days=1)
    ctx = make_run_context(
        run_id=f"scheduled__{when.isoformat()}",
        logical_date=when,
        params={"input_uri": str(path), "horizon": HORIZON, **params},
        settings=settings,
        runs_root=str(settings.runs_root),
    )
    platform = build_local_platform(settings, "retail", ctx.run_id)
    out: dict[str, object] = {}
    for step in DailyTasks._fields:
        try:
            out[step] = steps.STEPS[step](ctx, platform, settings)
        except SkipStep as exc:
            out[step] = f"skipped: {exc}"
    out["gate"] = json.loads(Path(ctx.gate_uri).read_text())
    prod = platform.registry.get_by_alias("production")
    out["production"] = prod.version if prod else None
    out["forecasts"] = platform.warehouse.query(
        f"SELECT series_id, model_version, COUNT(*) AS n, COUNTIF(lower_80 IS NULL) AS no_pi "
        f"FROM {platform.warehouse.tables.daily_sales_forecasts} "
        "WHERE cutoff_date = @c GROUP BY 1, 2 ORDER BY 1",
        c=cutoff,
    )
    return out


def test_a_week_later_the_fresh_model_replaces_production_and_new_items_are_forecast(
    panel, tmp_path, monkeypatch, caplog
):
    import logging

    settings = settings_for(tmp_path, monkeypatch)
    with caplog.at_level(logging.INFO, logger="sales_forecast.steps"):
        day1 = run_day(settings, tmp_path, panel[panel["date"] <= DAY1], DAY1, enable_deploy=True)
    assert day1["production"] == "1"
    (summary,) = [r.getMessage() for r in caplog.records if "run summary:" in r.getMessage()]
    assert "28 forecast rows for 4 series" in summary and summary.endswith("deployed v1")
    assert "gate PASSED (none): promoted" in summary

    # A week later: the week's rows, and an item launched three days ago.
    week2 = DAY1 + timedelta(days=7)
    new = panel[(panel["date"] > DAY1) & (panel["date"] <= week2)].copy()
    launch = new[(new["store_id"] == "S01") & (new["item_id"] == "I001")].copy()
    launch = launch[launch["date"] > week2 - timedelta(days=3)].assign(item_id="I999")
    day2 = run_day(settings, tmp_path, pd.concat([new, launch]), week2, enable_deploy=True)
    gate = day2["gate"]
    assert gate["passed"], gate["reason"]  # main: a tie with the refit champion, never promoted
    assert gate["recipe_changed"] is False
    assert day2["production"] == "2"
    forecasts = {r["series_id"]: r for r in day2["forecasts"]}
    assert "S01|I999" in forecasts and len(forecasts) == 5  # every series, the new one too
    assert {r["n"] for r in forecasts.values()} == {HORIZON}
    # Made by this run's model, labelled with its registry version once registered.
    assert {r["model_version"] for r in forecasts.values()} == {"2"}
    # Forecasts of different origins (the data's last day) are both kept, for accuracy tracking.
    platform = build_local_platform(settings, "retail")
    origins = platform.warehouse.query(
        f"SELECT cutoff_date, COUNT(*) AS n FROM {platform.warehouse.tables.daily_sales_forecasts} "
        "GROUP BY 1 ORDER BY 1"
    )
    assert [(r["cutoff_date"], r["n"]) for r in origins] == [
        (DAY1, 4 * HORIZON),
        (week2, 5 * HORIZON),
    ]

    # A deliberately worse recipe a week later: gate fails, production stays v2, and every
    # series is still forecast (production for the ones it knows), with intervals.
    week3 = week2 + timedelta(days=7)
    worse = settings_for(
        tmp_path, monkeypatch, SF_TRAINER_PARAMS='{"n_estimators": 2, "num_leaves": 2}'
    )
    rows3 = panel[(panel["date"] > week2) & (panel["date"] <= week3)]
    day3 = run_day(worse, tmp_path, rows3, week3, enable_deploy=True)
    assert day3["gate"]["recipe_changed"] is True
    assert not day3["gate"]["passed"], day3["gate"]["reason"]
    assert day3["production"] == "2"
    assert str(day3["register"]).startswith("skipped: the quality gate did not pass")
    by_series = {r["series_id"]: r for r in day3["forecasts"]}
    assert len(by_series) == 5  # the launched item too (no rows this week: days without sales)
    assert {r["model_version"] for r in by_series.values()} == {"2"}
    assert all(r["no_pi"] == 0 for r in by_series.values())
    summary = day3["forecast"]
    assert summary["production_version"] == "2" and summary["production_age_days"] == 7


def test_with_nothing_in_production_a_model_worse_than_naive_writes_no_forecasts(
    panel, tmp_path, monkeypatch
):
    """The forecast step, for real, after a gate in which the model lost to seasonal naive.

    Which gate a real model gets depends on the data; the decision after it is what is tested
    here, so the gate file says the model lost (test_decisions covers every other case).
    """
    settings = settings_for(tmp_path, monkeypatch)
    path = tmp_path / "sales.csv"
    panel[panel["date"] <= DAY1].to_csv(path, index=False)
    when = datetime(2025, 4, 1, tzinfo=UTC)
    ctx = make_run_context(
        run_id="manual__naive",
        logical_date=when,
        params={"input_uri": str(path), "horizon": HORIZON},
        settings=settings,
        runs_root=str(settings.runs_root),
    )
    platform = build_local_platform(settings, "retail", ctx.run_id)
    for step in ("load_to_staging", "validate", "build_features"):
        steps.STEPS[step](ctx, platform, settings)
    lost = {"passed": False, "metric": "wape", "reason": "challenger 0.61 does not beat 0.43",
            "challenger": 0.61, "baseline": 0.43, "beats_baseline": False}  # fmt: skip
    platform.store.write_text(ctx.gate_uri, json.dumps(lost))
    out = steps.forecast(ctx, platform, settings)  # no model was even trained: none is needed
    assert out["series_by_model"] == {"seasonal_naive": 4}
    wh = platform.warehouse
    (stats,) = wh.query(
        f"SELECT COUNT(*) AS n, COUNTIF(lower_80 IS NULL OR upper_95 IS NULL) AS no_pi, "
        f"COUNTIF(NOT (lower_80 <= forecast AND forecast <= upper_80)) AS outside "
        f"FROM {wh.tables.daily_sales_forecasts} WHERE run_id = @r",
        r=ctx.run_id,
    )
    assert stats == {"n": 4 * HORIZON, "no_pi": 0, "outside": 0}
