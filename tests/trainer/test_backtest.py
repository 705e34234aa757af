import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from trainer.backtest import load_artifact, run_backtest
from trainer.evaluation import evaluate_methods, evaluation_cutoffs
from trainer.model import Forecaster
from trainer.panel import prepare_panel

END = pd.Timestamp("2024-06-30")
DAY = pd.Timedelta(days=1)


@pytest.fixture()
def fit_spy(monkeypatch):
    """Every ``Forecaster.fit``: (min_child_samples of its config, last training day)."""
    seen: list[tuple[int, str]] = []
    original = Forecaster.fit.__func__

    def spy(cls, df, contract, config, **kwargs):
        seen.append((config.params.min_child_samples, str(pd.to_datetime(df["date"]).max().date())))
        return original(cls, df, contract, config, **kwargs)

    monkeypatch.setattr(Forecaster, "fit", classmethod(spy))
    return seen


def _production(panel, contract, config, path: Path) -> Forecaster:
    """A model trained on ``panel``, saved and loaded back as the backtest loads production."""
    Forecaster.fit(panel, contract, config, intervals=False).save(str(path))
    return load_artifact(str(path))


def test_changed_recipe_is_refit_on_the_same_windows(
    fit_spy, retail_panel, retail_contract, small_config, tmp_path: Path
):
    panel = prepare_panel(retail_panel, retail_contract)
    champion = small_config.with_params(min_child_samples=6)
    out = run_backtest(
        panel=panel,
        contract=retail_contract,
        cutoff_date=dt.date(2024, 6, 30),
        horizon=7,
        n_windows=2,
        challenger=small_config,
        champion=champion,
        output_dir=str(tmp_path / "bt"),
        results_uri=f"duckdb://{tmp_path}/wh.duckdb?table=backtest_results",
        run_id="run-1",
        coverage=False,  # interval calibration fits would show up in the spy
    )
    challenger_windows = sorted(d for leaf, d in fit_spy if leaf == 5)
    champion_windows = sorted(d for leaf, d in fit_spy if leaf == 6)
    assert challenger_windows == champion_windows == ["2024-06-16", "2024-06-23"]
    gate = json.loads((tmp_path / "bt" / "gate.json").read_text())
    assert gate == json.loads(json.dumps(out["gate"]))
    assert gate["recipe_changed"] is True and gate["champion_mode"] == "recipe"
    assert gate["champion"] == gate["champion_recipe"] is not None
    assert gate["champion_artifact"] is None and gate["champion_train_end"] is None
    report = json.loads((tmp_path / "bt" / "backtest.json").read_text())
    assert set(report["methods"]) == {"challenger", "seasonal_naive", "champion"}
    assert [w["cutoff"] for w in report["windows"]] == ["2024-06-16", "2024-06-23"]
    for method in report["methods"].values():
        assert method["overall"]["n"] == 2 * 6 * 7
        assert set(method["buckets"]) == {"day_1", "days_1_7"}

    # Results are replaced per run id, never appended.
    run_backtest(
        panel=panel,
        contract=retail_contract,
        cutoff_date=dt.date(2024, 6, 30),
        horizon=7,
        n_windows=1,
        challenger=small_config,
        champion=None,
        output_dir=str(tmp_path / "bt"),
        results_uri=f"duckdb://{tmp_path}/wh.duckdb?table=backtest_results",
        run_id="run-1",
    )
    con = duckdb.connect(f"{tmp_path}/wh.duckdb", read_only=True)
    try:
        methods = sorted(
            r[0] for r in con.execute("SELECT method FROM backtest_results").fetchall()
        )
    finally:
        con.close()
    assert methods == ["challenger", "seasonal_naive"]


def test_same_recipe_on_seven_more_days_replaces_production(
    fit_spy, retail_panel, retail_contract, small_config, tmp_path: Path
):
    full = prepare_panel(retail_panel, retail_contract)
    old = full[full["date"] <= END - 7 * DAY]
    common = {"contract": retail_contract, "horizon": 7, "n_windows": 2, "coverage": False}
    # Run 1: nothing in production yet; its model (trained on all of its days) is promoted.
    first = run_backtest(
        panel=old,
        cutoff_date=(END - 7 * DAY).date(),
        challenger=small_config,
        champion=None,
        output_dir=str(tmp_path / "bt1"),
        **common,
    )["gate"]
    assert first["passed"] and first["champion_mode"] == "none"
    assert first["reason"].startswith("promoted: there is no model in production yet")
    production = _production(old, retail_contract, small_config, tmp_path / "prod")
    fit_spy.clear()
    # Run 2: the same recipe with 7 more days. A refit of production's recipe would tie
    # with the challenger exactly and never pass a strictly-lower gate.
    second = run_backtest(
        panel=full,
        cutoff_date=END.date(),
        challenger=replace(small_config, seed=3, num_threads=2),  # not a recipe change
        champion=small_config,
        champion_artifact=production,
        output_dir=str(tmp_path / "bt2"),
        **common,
    )
    gate = second["gate"]
    assert gate["passed"] is True, gate["reason"]
    assert gate["recipe_changed"] is False and gate["champion_mode"] == "artifact"
    assert gate["champion_train_end"] == "2024-06-23" and gate["champion_recipe"] is None
    assert gate["champion"] == gate["champion_artifact"]
    assert gate["reason"].startswith(
        "promoted: same recipe on newer data, and no worse than production (WAPE "
    )
    # Production trained up to the last window's cut-off forecasts it like the challenger.
    assert gate["challenger_on_artifact_rows"] == pytest.approx(gate["champion_artifact"])
    assert "champion" not in second["backtest"]["methods"]
    assert second["backtest"]["methods"]["champion_artifact"]["n_windows"] == 1
    assert len(fit_spy) == 2  # the challenger's two windows: production's recipe is not refit


def test_same_recipe_without_days_after_production_passes_without_refit(
    fit_spy, retail_panel, retail_contract, small_config, tmp_path: Path
):
    full = prepare_panel(retail_panel, retail_contract)
    production = _production(full, retail_contract, small_config, tmp_path / "prod")
    fit_spy.clear()
    gate = run_backtest(
        panel=full,
        contract=retail_contract,
        cutoff_date=END.date(),
        horizon=7,
        n_windows=1,
        challenger=small_config,
        champion=small_config,
        champion_artifact=production,
        output_dir=str(tmp_path / "bt"),
        coverage=False,
    )["gate"]
    assert gate["passed"] and gate["champion_mode"] == "same_recipe"
    assert gate["champion"] is None and gate["champion_train_end"] == "2024-06-30"
    assert "no test day falls after production's last training day (2024-06-30)" in (gate["reason"])
    assert len(fit_spy) == 1


def test_worse_changed_recipe_fails_against_production(
    retail_panel, retail_contract, small_config, tmp_path: Path
):
    full = prepare_panel(retail_panel, retail_contract)
    old = full[full["date"] <= END - 7 * DAY]
    production = _production(old, retail_contract, small_config, tmp_path / "prod")
    worse = small_config.with_params(n_estimators=2, num_leaves=2)
    gate = run_backtest(
        panel=full,
        contract=retail_contract,
        cutoff_date=END.date(),
        horizon=7,
        n_windows=2,
        challenger=worse,
        champion=small_config,
        champion_artifact=production,
        output_dir=str(tmp_path / "bt"),
        coverage=False,
    )["gate"]
    assert gate["passed"] is False, gate["reason"]
    assert gate["recipe_changed"] is True
    assert gate["champion_recipe"] is not None and gate["champion_artifact"] is not None
    assert gate["challenger"] > gate["champion_recipe"]
    if gate["beats_baseline"]:
        assert gate["champion_mode"] == "recipe" and gate["reason"].startswith(
            "kept production: the new model was no better than production's recipe retrained"
        )
    else:
        assert gate["reason"].startswith(
            "kept production: the new model did not beat the seasonal-naive baseline (WAPE "
        )


def test_production_is_scored_as_served_on_the_series_it_knows(
    retail_panel, retail_contract, small_config, tmp_path: Path
):
    full = prepare_panel(retail_panel, retail_contract)
    # Production was trained two weeks before the data's end, before S1|B existed.
    seen = full[(full["date"] <= END - 14 * DAY) & (full["series_id"] != "S1|B")]
    production = _production(seen, retail_contract, small_config, tmp_path / "prod")
    cutoffs = evaluation_cutoffs(full["date"].min(), END, 7, 3)
    evals = evaluate_methods(
        full,
        retail_contract,
        cutoffs,
        7,
        {"challenger": small_config},
        artifacts={"champion_artifact": production},
    )
    served = evals["champion_artifact"]
    # Only the windows at or after its training end, moved forward over the days in between.
    assert sorted(served["cutoff"].unique()) == [END - 14 * DAY, END - 7 * DAY]
    assert set(served["series_id"]) == set(full["series_id"]) - {"S1|B"}
    assert len(served) == 2 * 5 * 7 and served["y_hat"].notna().all()
    assert served["step"].between(1, 7).all()

    out = run_backtest(
        panel=full,
        contract=retail_contract,
        cutoff_date=END.date(),
        horizon=7,
        n_windows=3,
        challenger=small_config,
        champion=small_config,
        champion_artifact=production,
        output_dir=str(tmp_path / "bt"),
        results_uri=f"duckdb://{tmp_path}/wh.duckdb?table=backtest_results",
        run_id="run-2",
        coverage=False,
    )
    gate, report = out["gate"], out["backtest"]
    assert gate["champion_mode"] == "artifact" and gate["champion_train_end"] == "2024-06-16"
    method = report["methods"]["champion_artifact"]
    assert method["n_windows"] == 2 and method["overall"]["n"] == 70
    assert method["n_series_left_out"] == 1 and method["train_end"] == "2024-06-16"
    # The challenger is scored on exactly those rows for the comparison.
    assert method["challenger_same_rows"]["n"] == 70
    assert report["methods"]["challenger"]["overall"]["n"] == 3 * 6 * 7
    con = duckdb.connect(f"{tmp_path}/wh.duckdb", read_only=True)
    try:
        rows = dict(
            con.execute("SELECT method, n_windows FROM backtest_results ORDER BY 1").fetchall()
        )
    finally:
        con.close()
    assert rows == {"challenger": 3, "champion_artifact": 2, "seasonal_naive": 3}
