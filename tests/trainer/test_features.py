from pathlib import Path

import pandas as pd
import pytest

from trainer.errors import TrainerError
from trainer.features import (
    build_feature_spec,
    build_future_frame,
    prepare_panel,
    read_future_csv,
    series_state,
    to_model_frame,
)


def test_prepare_panel_types_and_drops_observed(retail_panel, retail_contract):
    panel = prepare_panel(retail_panel, retail_contract)
    assert "temperature" not in panel.columns
    assert panel["on_promo"].dtype == float
    assert panel["date"].dtype == "datetime64[ns]"
    assert panel.groupby("series_id").size().to_dict()["S2|C"] == 40


def test_prepare_panel_errors(retail_panel, retail_contract):
    with pytest.raises(TrainerError, match=r"missing columns \['price'\]"):
        prepare_panel(retail_panel.drop(columns=["price"]), retail_contract)
    with pytest.raises(TrainerError, match="no rows"):
        prepare_panel(retail_panel.iloc[:0], retail_contract)
    with pytest.raises(TrainerError, match="duplicate"):
        prepare_panel(pd.concat([retail_panel, retail_panel.iloc[:1]]), retail_contract)
    with pytest.raises(TrainerError, match="missing days"):
        prepare_panel(retail_panel.drop(index=[5]), retail_contract)


def test_feature_spec_excludes_observed_and_types_categoricals(takeaway_panel, takeaway_contract):
    from trainer.config import FeatureConfig

    panel = prepare_panel(takeaway_panel, takeaway_contract)
    spec = build_feature_spec(panel, takeaway_contract, FeatureConfig())
    assert spec.static == ()
    assert {c for c, _ in spec.excluded} == {"tavg", "tmin", "tmax", "prcp", "wspd", "pres"}
    holiday = next(c for c in spec.dynamic if c.source == "holiday_name")
    assert holiday.kind == "category" and holiday.categories == ("festival", "none")
    frame = to_model_frame(panel, takeaway_contract, spec)
    assert isinstance(frame["holiday_name"].dtype, pd.CategoricalDtype)
    assert not any(c in frame.columns for c in ("tavg", "temperature"))


def _spec_state(panel, contract):
    from trainer.config import FeatureConfig

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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "store_id,item_id,date,price,colour\nS1,A,2024-07-01,2.0,red\n",
            r"unknown columns \['colour'\]",
        ),
        (
            "store_id,item_id,date,price\nS1,A,2024-07-01,2.0\nS1,A,2024-07-02,cheap\n",
            r"row 3: column 'price': cannot parse 'cheap' as FLOAT64",
        ),
        ("store_id,item_id,date,on_promo\nS1,A,2024-07-01,perhaps\n", r"row 2: column 'on_promo'"),
        ("store_id,item_id,date\nS1,A,2024-07-01\nS1,A,2024-07-01\n", r"rows \[2, 3\]: duplicate"),
        ("store_id,item_id,date,sales\nS1,A,2024-07-01,3\n", "is the target"),
        ("store_id,item_id,date\nS1,A,07/01/2024\n", "cannot parse '07/01/2024' as DATE"),
        ("store_id,date\nS1,2024-07-01\n", r"missing series key columns \['item_id'\]"),
    ],
)
def test_future_csv_validation_names_file_row_and_problem(
    tmp_path: Path, retail_contract, text, message
):
    path = tmp_path / "future.csv"
    path.write_text(text)
    with pytest.raises(TrainerError, match=message) as info:
        read_future_csv(str(path), retail_contract)
    assert str(path) in str(info.value)


def test_future_csv_accepts_observed_and_blank_known(tmp_path: Path, retail_contract):
    path = tmp_path / "future.csv"
    path.write_text("store_id,item_id,date,price,on_promo,temperature\nS1,A,2024-07-01,,yes,30\n")
    future = read_future_csv(str(path), retail_contract)
    assert "temperature" not in future.columns
    assert pd.isna(future.loc[0, "price"]) and future.loc[0, "on_promo"] is True
