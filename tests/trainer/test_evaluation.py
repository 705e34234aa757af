import re
from dataclasses import replace

import pandas as pd
import pytest

from trainer.errors import TrainerError
from trainer.evaluation import (
    SEASONAL_NAIVE,
    evaluate_methods,
    evaluation_cutoffs,
    gate_decision,
    recipe_changed,
)
from trainer.panel import prepare_panel

NAN = float("nan")
GATE_FIELDS = {
    "passed",
    "metric",
    "reason",
    "challenger",
    "baseline",
    "champion",
    "min_improvement",
    "beats_baseline",
    "champion_mode",
    "recipe_changed",
    "champion_train_end",
    "freshness_tolerance",
    "champion_recipe",
    "champion_artifact",
    "challenger_on_artifact_rows",
}


def _art(champion: float, challenger: float) -> dict:
    return {"champion_artifact": champion, "challenger_on_artifact_rows": challenger}


@pytest.mark.parametrize(
    ("challenger", "baseline", "inputs", "passed", "mode", "used"),
    [
        # -- the baseline, always
        (NAN, 0.30, {"recipe_changed": None}, False, "none", None),
        (0.20, NAN, {"recipe_changed": None}, False, "none", None),
        (0.30, 0.30, {"recipe_changed": None}, False, "none", None),  # a tie is not a win
        (0.31, 0.30, {"recipe_changed": False}, False, "same_recipe", None),
        (0.31, 0.30, {"recipe_changed": False, **_art(0.4, 0.31)}, False, "artifact", 0.4),
        (0.35, 0.30, {"recipe_changed": True, "champion_recipe": 0.5}, False, "recipe", 0.5),
        # -- nothing in production
        (0.20, 0.30, {"recipe_changed": None}, True, "none", None),
        # -- same recipe, newer data
        (0.20, 0.30, {"recipe_changed": False}, True, "same_recipe", None),
        (0.20, 0.30, {"recipe_changed": False, **_art(0.20, 0.20)}, True, "artifact", 0.20),
        (0.20, 0.30, {"recipe_changed": False, **_art(0.20, 0.203)}, True, "artifact", 0.20),
        (0.20, 0.30, {"recipe_changed": False, **_art(0.20, 0.205)}, False, "artifact", 0.20),
        (
            0.20,
            0.30,
            {"recipe_changed": False, **_art(0.20, 0.205), "freshness_tolerance": 0.05},
            True,
            "artifact",
            0.20,
        ),
        (0.20, 0.30, {"recipe_changed": False, **_art(NAN, NAN)}, True, "artifact", NAN),
        # min_improvement is for a changed recipe only
        (
            0.20,
            0.30,
            {"recipe_changed": False, **_art(0.20, 0.20), "min_improvement": 0.5},
            True,
            "artifact",
            0.20,
        ),
        # -- changed recipe: its refit on the same windows
        (0.20, 0.30, {"recipe_changed": True, "champion_recipe": 0.25}, True, "recipe", 0.25),
        (0.25, 0.30, {"recipe_changed": True, "champion_recipe": 0.25}, False, "recipe", 0.25),
        (
            0.24,
            0.30,
            {"recipe_changed": True, "champion_recipe": 0.25, "min_improvement": 0.05},
            False,
            "recipe",
            0.25,
        ),
        (
            0.23,
            0.30,
            {"recipe_changed": True, "champion_recipe": 0.25, "min_improvement": 0.05},
            True,
            "recipe",
            0.25,
        ),
        (0.20, 0.30, {"recipe_changed": True, "champion_recipe": NAN}, True, "recipe", NAN),
        # -- changed recipe and the artifact too: the binding comparison names the mode
        (
            0.20,
            0.30,
            {"recipe_changed": True, "champion_recipe": 0.25, **_art(0.18, 0.19)},
            False,
            "artifact",
            0.18,
        ),
        (
            0.26,
            0.30,
            {"recipe_changed": True, "champion_recipe": 0.25, **_art(0.18, 0.19)},
            False,
            "recipe",
            0.25,
        ),
        (
            0.20,
            0.30,
            {"recipe_changed": True, "champion_recipe": 0.25, **_art(0.22, 0.21)},
            True,
            "artifact",
            0.22,
        ),
        (
            0.20,
            0.30,
            {"recipe_changed": True, "champion_recipe": 0.21, **_art(0.30, 0.20)},
            True,
            "recipe",
            0.21,
        ),
        (
            0.20,
            0.30,
            {"recipe_changed": True, "champion_recipe": NAN, **_art(0.30, 0.20)},
            True,
            "artifact",
            0.30,
        ),
    ],
)
def test_gate_decision(challenger, baseline, inputs, passed, mode, used):
    gate = gate_decision("wape", challenger, baseline, champion_train_end="2024-06-23", **inputs)
    assert gate["passed"] is passed, gate["reason"]
    assert gate["champion_mode"] == mode
    if used is None or used != used:
        assert gate["champion"] is None or gate["champion"] != gate["champion"]
        assert used is None or gate["champion"] is not None
    else:
        assert gate["champion"] == used
    assert gate["beats_baseline"] is (challenger < baseline)
    assert gate["recipe_changed"] is inputs["recipe_changed"]
    assert set(gate) == GATE_FIELDS
    # One plain sentence: the verdict first, then the numbers it compared, rounded.
    reason = gate["reason"]
    assert reason and ". " not in reason and not reason.endswith(".")
    in_production = inputs["recipe_changed"] is not None
    verdict = "promoted" if passed else "kept production" if in_production else "not promoted"
    assert reason.startswith(f"{verdict}: "), reason
    assert not re.search(r"\d\.\d{4}", reason), "scores are rounded to 3 decimals"
    scored = inputs.get("challenger_on_artifact_rows") if mode == "artifact" else challenger
    if gate["beats_baseline"] and scored == scored:
        assert _3(scored) in reason
    elif challenger == challenger:
        assert _3(challenger) in reason
    for key in ("champion_recipe", "champion_artifact"):
        value = inputs.get(key)
        if gate["beats_baseline"] and value == value and value is not None and mode == key[9:]:
            assert _3(value) in reason


def _3(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


@pytest.mark.parametrize(
    ("challenger", "baseline", "inputs", "reason"),
    [
        (
            0.384,
            0.5,
            {"recipe_changed": True, "champion_recipe": 0.384},
            "kept production: the new model was no better than production's recipe retrained "
            "on the same days (WAPE 0.384 vs 0.384; lower is better)",
        ),
        (
            0.3841,
            0.5,
            {"recipe_changed": True, "champion_recipe": 0.3839},
            "kept production: the new model was no better than production's recipe retrained "
            "on the same days (WAPE 0.384 vs 0.384, a difference below 0.001; lower is better)",
        ),
        (
            0.2,
            0.3,
            {"recipe_changed": False, **_art(0.38412, 0.381)},
            "promoted: same recipe on newer data, and no worse than production (WAPE 0.381 vs "
            "0.384 on the days after 2024-06-23, within the 2% tolerance); the new model beats "
            "the seasonal-naive baseline (WAPE 0.2 vs 0.3; lower is better)",
        ),
        (
            0.52,
            0.49,
            {"recipe_changed": None},
            "not promoted: the new model did not beat the seasonal-naive baseline "
            "(WAPE 0.52 vs 0.49; lower is better)",
        ),
        (
            0.52,
            0.49,
            {"recipe_changed": False, **_art(0.6, 0.52)},
            "kept production: the new model did not beat the seasonal-naive baseline "
            "(WAPE 0.52 vs 0.49; lower is better)",
        ),
        (
            0.2,
            0.3,
            {"recipe_changed": False, **_art(0.2, 0.2051)},
            "kept production: same recipe on newer data, but the new model was worse than "
            "production by more than the 2% tolerance (WAPE 0.205 vs 0.2 on the days after "
            "2024-06-23; lower is better)",
        ),
        (
            0.24,
            0.3,
            {"recipe_changed": True, "champion_recipe": 0.25, "min_improvement": 0.05},
            "kept production: the new model was not 5% better than production's recipe "
            "retrained on the same days (WAPE 0.24 vs 0.25, needs below 0.237; lower is better)",
        ),
        (
            NAN,
            0.3,
            {"recipe_changed": None},
            "not promoted: the new model's WAPE could not be computed (no actual sales to score "
            "it on)",
        ),
    ],
)
def test_gate_reason_reads_as_a_sentence(challenger, baseline, inputs, reason):
    gate = gate_decision("wape", challenger, baseline, champion_train_end="2024-06-23", **inputs)
    assert gate["reason"] == reason


def test_recipe_changed_ignores_what_cannot_move_a_forecast(small_config):
    same = replace(
        small_config,
        horizon=28,
        num_threads=8,
        seed=42,
        levels=(50,),
        validation_windows=3,
        interval_windows=4,
        hpt_metric_name="mae",
    )
    assert recipe_changed(same, small_config) is False
    assert recipe_changed(small_config.with_params(n_estimators=16), small_config) is True
    longer = replace(small_config, features=replace(small_config.features, lags=(1, 7)))
    assert recipe_changed(longer, small_config) is True
    assert recipe_changed(replace(small_config, train_window_days=90), small_config) is True


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


def test_unknown_days_are_not_scored(retail_panel, retail_contract):
    panel = prepare_panel(retail_panel, retail_contract).reset_index(drop=True)
    cuts = evaluation_cutoffs(panel["date"].min(), panel["date"].max(), 7, 1)
    cut = cuts[0]
    a = panel["series_id"] == "S1|A"
    hidden = a & panel["date"].between(cut + pd.Timedelta(days=2), cut + pd.Timedelta(days=4))
    # A quarantined training day far before the cut-off, with a nonsense filled value.
    old_day = a & (panel["date"] == cut - pd.Timedelta(days=40))
    flagged = panel.assign(is_unknown=hidden | old_day)
    flagged.loc[old_day, "sales"] = 1e6
    methods = {SEASONAL_NAIVE: None}
    plain = evaluate_methods(panel.assign(is_unknown=False), retail_contract, cuts, 7, methods)
    got = evaluate_methods(flagged, retail_contract, cuts, 7, methods)[SEASONAL_NAIVE]
    ref = plain[SEASONAL_NAIVE]
    assert len(got) == len(ref) - 3
    keys = set(zip(got["series_id"], got["date"], strict=True))
    assert not any(
        (sid, d) in keys
        for sid, d in panel.loc[hidden, ["series_id", "date"]].itertuples(index=False)
    )
    # The MASE scale leaves the unknown day out on both sides of its weekly differences.
    assert got["scale"].iloc[0] < 2 * ref["scale"].iloc[0]
    blown = evaluate_methods(flagged.assign(is_unknown=False), retail_contract, cuts, 7, methods)
    assert blown[SEASONAL_NAIVE]["scale"].iloc[0] > 100 * ref["scale"].iloc[0]
