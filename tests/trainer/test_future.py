import pandas as pd
import pytest

from trainer.config import FeatureConfig
from trainer.errors import TrainerError
from trainer.feature_spec import build_feature_spec
from trainer.future import build_future_frame
from trainer.panel import prepare_panel, series_state


def _spec_state(panel, contract):
    prepared = prepare_panel(panel, contract)
    return build_feature_spec(prepared, contract, FeatureConfig()), series_state(prepared, contract)


def test_future_frame_fill_rules_and_counts(retail_panel, retail_contract):
    spec, state = _spec_state(retail_panel, retail_contract)
    future = pd.DataFrame(
        {
            "store_id": ["S1", "S1"],
            "item_id": ["A", "A"],
            "date": pd.to_datetime(["2024-07-01", "2024-07-02"]),
            "on_promo": [True, None],
            "price": [3.0, 3.5],
        }
    )
    x_df, filled, ignored = build_future_frame(spec, retail_contract, state, 3, future)
    # Known columns are never missing (derived features without a history tail may be).
    assert len(x_df) == 6 * 3 and not x_df[["price", "on_promo", "is_holiday"]].isna().any().any()
    # 18 cells per column; the file gave 2 prices and 1 promo, no holidays.
    assert filled == {"price": 16, "on_promo": 17, "is_holiday": 18}
    assert ignored == 0
    s1a = x_df[x_df["unique_id"] == "S1|A"]
    assert list(s1a["price"]) == [3.0, 3.5, 2.5]  # last observed price fills day 3
    assert list(s1a["on_promo"]) == [1.0, 0.0, 0.0]


def test_future_frame_weekend_rule_follows_the_calendar(takeaway_panel, takeaway_contract):
    """No future file: a calendar flag is filled from each forecast day, not with false."""
    spec, state = _spec_state(takeaway_panel, takeaway_contract)
    x_df, filled, _ = build_future_frame(spec, takeaway_contract, state, 9)
    days = pd.DatetimeIndex(x_df["ds"])
    assert filled["is_weekend"] == 9
    assert list(x_df["is_weekend"]) == [float(d.dayofweek >= 5) for d in days]
    assert x_df["is_weekend"].sum() >= 2  # 9 days hold a weekend


def test_future_frame_unknown_series_is_an_error(retail_panel, retail_contract):
    spec, state = _spec_state(retail_panel, retail_contract)
    future = pd.DataFrame(
        {"store_id": ["S9"], "item_id": ["A"], "date": [pd.Timestamp("2024-07-01")]}
    )
    with pytest.raises(TrainerError, match="does not know"):
        build_future_frame(spec, retail_contract, state, 3, future)
