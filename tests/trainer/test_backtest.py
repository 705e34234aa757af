import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd

from trainer.backtest import run_backtest
from trainer.model import Forecaster
from trainer.panel import prepare_panel


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
