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
