import pandas as pd
import pytest

from trainer.errors import TrainerError
from trainer.evaluation import evaluate_methods, evaluation_cutoffs, gate_decision
from trainer.panel import prepare_panel


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
