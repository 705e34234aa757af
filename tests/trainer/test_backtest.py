import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from trainer.backtest import evaluate_methods, evaluation_cutoffs, gate_decision, run_backtest
from trainer.errors import TrainerError
from trainer.features import prepare_panel
from trainer.model import Forecaster


@pytest.mark.parametrize(
    ("challenger", "baseline", "champion", "margin", "passed"),
    [
        (0.20, 0.30, None, 0.0, True),  # beats the baseline, no champion
        (0.30, 0.30, None, 0.0, False),  # a tie with the baseline is not a win
        (0.35, 0.30, 0.25, 0.0, False),  # loses to the baseline
        (0.20, 0.30, 0.25, 0.0, True),  # beats both
        (0.25, 0.30, 0.25, 0.0, False),  # equal to the champion: must be strictly lower
        (0.24, 0.30, 0.25, 0.05, False),  # 4 % better but 5 % required
        (0.23, 0.30, 0.25, 0.05, True),  # 8 % better
        (float("nan"), 0.30, None, 0.0, False),
    ],
)
def test_gate_decision(challenger, baseline, champion, margin, passed):
    gate = gate_decision("wape", challenger, baseline, champion, margin)
    assert gate["passed"] is passed
    assert set(gate) == {
        "passed",
        "metric",
        "challenger",
        "baseline",
        "champion",
        "min_improvement",
        "reason",
    }
    assert gate["reason"]


def test_evaluation_cutoffs():
    first, last = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-31")
    cuts = evaluation_cutoffs(first, last, 7, 3)
    assert [c.date().isoformat() for c in cuts] == ["2024-03-10", "2024-03-17", "2024-03-24"]
    assert evaluation_cutoffs(first, last, 7, 2, step=1)[-1] == pd.Timestamp("2024-03-24")
    with pytest.raises(TrainerError, match="not enough history"):
        evaluation_cutoffs(first, pd.Timestamp("2024-01-10"), 7, 1)


def test_backtest_forecasts_do_not_see_past_their_cutoff(
    retail_panel, retail_contract, small_config
):
    panel = prepare_panel(retail_panel, retail_contract)
    cuts = evaluation_cutoffs(panel["date"].min(), panel["date"].max(), 7, 2)
    methods = {"model": small_config, "naive": None}
    a = evaluate_methods(panel, retail_contract, cuts, 7, methods)
    changed = panel.copy()
    later = changed["date"] > cuts[-1]
    changed.loc[later, "sales"] += 1000.0
    b = evaluate_methods(changed, retail_contract, cuts, 7, methods)
    for name in methods:
        pd.testing.assert_series_equal(a[name]["y_hat"], b[name]["y_hat"])
        assert (b[name]["y"] - a[name]["y"]).max() == 1000.0  # only the actuals moved


def test_champion_refit_on_the_same_windows(
    monkeypatch, retail_panel, retail_contract, small_config, tmp_path: Path
):
    seen: list[tuple[int, str]] = []
    original = Forecaster.fit.__func__

    def spy(cls, df, contract, config, **kwargs):
        seen.append((config.seed, str(pd.to_datetime(df["date"]).max().date())))
        return original(cls, df, contract, config, **kwargs)

    monkeypatch.setattr(Forecaster, "fit", classmethod(spy))
    panel = prepare_panel(retail_panel, retail_contract)
    champion = replace(small_config, seed=7)
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
    challenger_windows = sorted(d for seed, d in seen if seed == small_config.seed)
    champion_windows = sorted(d for seed, d in seen if seed == 7)
    assert challenger_windows == champion_windows == ["2024-06-16", "2024-06-23"]
    gate = json.loads((tmp_path / "bt" / "gate.json").read_text())
    assert gate == json.loads(json.dumps(out["gate"]))
    assert gate["champion"] is not None
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
