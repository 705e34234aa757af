import numpy as np
import pandas as pd
import pytest

from trainer.columns import ID, TIME
from trainer.covariates import add_derived_features
from trainer.feature_spec import DerivedFeature, FeatureSpec


def test_derived_event_and_price_features():
    frame = pd.DataFrame(
        {
            ID: ["a"] * 12,
            TIME: pd.date_range("2024-01-01", periods=12),
            "promo": [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0.0],
            "price": [2.0] * 5 + [1.0] * 7,
        }
    )
    spec = FeatureSpec(
        static=(),
        dynamic=(),
        excluded=(),
        derived=(
            DerivedFeature("since", "promo", "since"),
            DerivedFeature("until", "promo", "until"),
            DerivedFeature("share", "promo", "share28"),
            DerivedFeature("rel", "price", "rel"),
        ),
    )
    add_derived_features(frame, spec)
    assert frame["since"].tolist() == [28, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    # Until: 1 day ahead, then on, then none within 7 known days (7), then unknown (NaN:
    # the known days end before the look-ahead does).
    assert frame["until"].tolist()[:3] == [1, 0, 0]
    assert frame["until"].iloc[3] == 7 and np.isnan(frame["until"].iloc[-1])
    # Share of the previous days (not today) with a promotion.
    assert np.isnan(frame["share"].iloc[0]) and frame["share"].iloc[3] == pytest.approx(2 / 3)
    assert frame["rel"].iloc[0] == 1.0 and frame["rel"].iloc[5] == pytest.approx(1.0 / (11 / 6))
