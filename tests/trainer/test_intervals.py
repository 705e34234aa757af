from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from trainer.intervals import conformity_scores, noise_scale
from trainer.model import Forecaster
from trainer.panel import prepare_panel


def test_intervals_are_ordered_and_short_series_reported(fitted):
    frame = fitted.predict(7, levels=(80, 95))
    with_int = frame.dropna(subset=["lower_80"])
    # The 40-day newcomer fits 2 x 7 + 1 days, so every series is calibrated here.
    assert fitted.intervals["enabled"] and fitted.intervals["n_windows"] == 2
    assert len(with_int) == len(frame)
    tol = 1e-9
    assert (with_int["lower_95"] <= with_int["lower_80"] + tol).all()
    assert (with_int["lower_80"] <= with_int["forecast"] + tol).all()
    assert (with_int["forecast"] <= with_int["upper_80"] + tol).all()
    assert (with_int["upper_80"] <= with_int["upper_95"] + tol).all()


def test_every_series_gets_intervals_even_a_short_one(retail_panel, retail_contract, small_config):
    config = replace(small_config, horizon=28)  # the 40-day series is shorter than 2 x 28 days
    fc = Forecaster.fit(retail_panel, retail_contract, config)
    assert fc.intervals["method"] == "scaled_conformal" and fc.intervals["enabled"]
    result = fc.forecast(28)
    short = result.frame[result.frame["series_id"] == "S2|C"]
    assert len(short) == 28 and short["lower_80"].notna().all()
    assert result.series_without_intervals == 0
    # Wider at 95% than at 80%, and the all-zero series gets a (narrow) interval too.
    frame = result.frame
    assert (
        (frame["upper_95"] - frame["lower_95"]) >= (frame["upper_80"] - frame["lower_80"]) - 1e-9
    ).all()
    assert frame.loc[frame["series_id"] == "S1|Z", "upper_95"].notna().all()


def test_unknown_days_calibrate_no_interval(retail_panel, retail_contract, small_config):
    panel = prepare_panel(retail_panel, retail_contract)
    last = panel["date"].max()
    forecasts = pd.DataFrame(
        {
            "series_id": ["S1|A"] * 3,
            "date": [last - pd.Timedelta(days=k) for k in (2, 1, 0)],
            "step": [1, 2, 3],
            "y": [20.0, 20.0, 20.0],
            "y_hat": [20.0, 20.0, 20.0],
            "cutoff": last - pd.Timedelta(days=3),
        }
    )
    scores, facts = conformity_scores(forecasts, panel, retail_contract, small_config)
    assert facts["n_scores"] == 3
    flagged = panel.assign(is_unknown=(panel["series_id"] == "S1|A") & (panel["date"] == last))
    scores, facts = conformity_scores(forecasts, flagged, retail_contract, small_config)
    assert facts["n_scores"] == 2 and sorted(scores["step"]) == [1, 2]


def test_noise_scale_ignores_unknown_days(retail_panel, retail_contract):
    a = retail_panel.index[retail_panel["series_id"] == "S1|A"]
    flagged = np.zeros(len(a), dtype=bool)
    flagged[-56::3] = True  # every third of the last 56 days: filled with last week's value
    raw = retail_panel.assign(is_unknown=False)
    raw.loc[a[flagged], ["is_unknown", "sales"]] = [True, np.nan]
    panel = prepare_panel(raw, retail_contract)
    got = noise_scale(panel, retail_contract).loc["S1|A"]
    truth = retail_panel.loc[a, "sales"].reset_index(drop=True).where(~pd.Series(flagged))
    recent = truth.iloc[-56:]
    change = (recent - recent.shift(7)).abs()  # within the 56 days, as noise_scale does
    assert got["scale"] == pytest.approx(change.mean()) and change.count() < 56 - 7
    assert got["level"] == pytest.approx(recent.mean())
    # Read as actuals, the fills' zero week-over-week changes would narrow the intervals.
    blind = noise_scale(panel.assign(is_unknown=False), retail_contract).loc["S1|A"]
    assert blind["scale"] < 0.9 * got["scale"]


def _calibration_forecasts(n_series: int, common: float, seed: int = 0) -> pd.DataFrame:
    """Two 7-day windows of forecasts whose errors share ``common`` x the step (e.g. a
    seasonal turn every series went through), plus each series' own noise."""
    rng = np.random.default_rng(seed)
    cutoff = pd.Timestamp("2024-06-16")
    rows = []
    for window in range(2):
        for step in range(1, 8):
            y = rng.normal(20.0, 2.0, n_series)
            rows.append(
                pd.DataFrame(
                    {
                        "series_id": [f"S{i}|A" for i in range(n_series)],
                        "date": cutoff + pd.Timedelta(days=7 * window + step),
                        "step": step,
                        "y": y,
                        "y_hat": y - common * step - rng.normal(0.0, 1.0, n_series),
                        "cutoff": cutoff,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def _flat_panel(n_series: int) -> pd.DataFrame:
    dates = pd.date_range(end="2024-06-16", periods=70)
    rng = np.random.default_rng(1)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "series_id": f"S{i}|A",
                    "store_id": f"S{i}",
                    "item_id": "A",
                    "date": dates,
                    "sales": 20.0 + rng.normal(0.0, 2.0, len(dates)),
                    "price": 1.0,
                    "on_promo": False,
                    "is_holiday": False,
                }
            )
            for i in range(n_series)
        ],
        ignore_index=True,
    )


def _step_medians(n_series: int, contract, config) -> tuple[pd.Series, float]:
    """Median score per step of forecasts sharing 1 unit of error a step, and that shared
    error at step 7 in score units (what an uncentred score's median would be)."""
    panel = prepare_panel(_flat_panel(n_series), contract)
    scores, _ = conformity_scores(_calibration_forecasts(n_series, 1.0), panel, contract, config)
    unit = float(noise_scale(panel, contract)["scale"].median())
    return scores.groupby("step")["score"].median(), 7.0 / unit


def test_a_windows_common_error_is_taken_out_of_a_panels_scores(retail_contract, small_config):
    # 300 series all off by the same error: what is left is their own noise around ~0, so
    # the intervals no longer lean to the side the calibration window happened to err on.
    medians, shared = _step_medians(300, retail_contract, small_config)
    assert shared > 2 and medians.abs().max() < 0.1 * shared


def test_a_single_series_keeps_its_errors(retail_contract, small_config):
    # One series: its error is all there is to tell, nothing is known to be common.
    medians, shared = _step_medians(1, retail_contract, small_config)
    assert medians[7] > 0.8 * shared and medians[1] < 0.5 * medians[7]


ITEMS = {
    "name": "items",
    "date_column": "date",
    "target": "sales",
    "series_keys": ["item_id"],
    "columns": [
        {"name": "date", "type": "DATE", "role": "date"},
        {"name": "item_id", "type": "STRING", "role": "key"},
        {"name": "sales", "type": "FLOAT64", "role": "target"},
    ],
}


def test_intervals_hold_their_share_of_unseen_days_on_a_seeded_panel():
    from sf_contract import Contract
    from trainer.config import TrainerConfig

    rng = np.random.default_rng(1)
    dates = pd.date_range(end="2024-06-30", periods=314)
    frames = []
    for i in range(60):
        weekly = 1 + 0.3 * np.sin(2 * np.pi * (dates.dayofweek.to_numpy() + i) / 7)
        sales = rng.poisson(rng.uniform(5, 80) * weekly).astype(float)
        frames.append(pd.DataFrame({"item_id": f"I{i:02d}", "date": dates, "sales": sales}))
    df = pd.concat(frames, ignore_index=True)
    cut = dates[-15]
    fc = Forecaster.fit(df[df["date"] <= cut], Contract.from_dict(ITEMS), TrainerConfig(horizon=14))
    got = fc.predict(14, levels=[80, 95]).merge(df[df["date"] > cut], on=["item_id", "date"])
    assert len(got) == 60 * 14
    for level, (low, high) in {80: (0.74, 0.86), 95: (0.90, 0.99)}.items():
        inside = (got["sales"] >= got[f"lower_{level}"]) & (got["sales"] <= got[f"upper_{level}"])
        assert low <= inside.mean() <= high, (level, inside.mean())
