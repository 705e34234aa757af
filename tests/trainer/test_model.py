from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sf_contract import Contract
from trainer.errors import TrainerError
from trainer.inputs import read_future_csv
from trainer.model import Forecaster


def test_predict_every_series_every_day(fitted):
    result = fitted.forecast(7)
    frame = result.frame
    assert len(frame) == 6 * 7
    assert frame.groupby("series_id").size().eq(7).all()
    assert frame["date"].min() == pd.Timestamp("2024-07-01")
    assert frame["date"].max() == pd.Timestamp("2024-07-07")
    assert not frame["forecast"].isna().any()
    assert (frame["forecast"] >= 0).all()
    assert list(frame.columns[:3]) == ["series_id", "store_id", "item_id"]


def test_fill_rules_without_future_file_are_counted(fitted):
    result = fitted.forecast(7)
    assert result.filled_values == {"price": 42, "on_promo": 42, "is_holiday": 42}
    assert result.filled_total == 126


def test_predict_is_deterministic_and_survives_save_load(fitted, tmp_path: Path):
    first = fitted.predict(7)
    pd.testing.assert_frame_equal(first, fitted.predict(7))
    fitted.save(str(tmp_path / "m"))
    loaded = Forecaster.load(str(tmp_path / "m"))
    pd.testing.assert_frame_equal(first, loaded.predict(7))
    assert loaded.last_date == fitted.last_date


def test_fit_is_deterministic(retail_panel, retail_contract, small_config):
    a = Forecaster.fit(retail_panel, retail_contract, small_config, intervals=False).predict(7)
    b = Forecaster.fit(retail_panel, retail_contract, small_config, intervals=False).predict(7)
    pd.testing.assert_frame_equal(a, b)


def test_new_history_moves_the_origin_without_mutating(retail_panel, retail_contract, small_config):
    early = retail_panel[retail_panel["date"] <= "2024-06-20"]
    fc = Forecaster.fit(early, retail_contract, small_config)
    result = fc.forecast(5, new_history=retail_panel)
    assert result.updated_rows == 6 * 10
    assert result.frame["date"].min() == pd.Timestamp("2024-07-01")
    assert len(result.frame) == 30
    # The forecaster itself still ends where it was trained.
    assert fc.last_date.isoformat() == "2024-06-20"
    assert fc.predict(5)["date"].min() == pd.Timestamp("2024-06-21")


def test_new_history_with_unknown_series_is_an_error(retail_panel, retail_contract, fitted):
    extra = retail_panel[retail_panel["series_id"] == "S1|A"].assign(
        series_id="S3|A", store_id="S3"
    )
    with pytest.raises(TrainerError, match="not trained on"):
        fitted.forecast(3, new_history=pd.concat([retail_panel, extra]))


def test_known_series_splits_history_so_forecast_never_sees_unknown_series(retail_panel, fitted):
    extra = retail_panel[retail_panel["series_id"] == "S1|A"].assign(
        series_id="S3|A", store_id="S3"
    )
    both = pd.concat([retail_panel, extra])
    known = fitted.known_series(both["series_id"].unique())
    assert known == sorted(retail_panel["series_id"].unique()) and "S3|A" not in known
    assert fitted.known_series(pd.Categorical(["S3|A", "S1|A", "S1|A"])) == ["S1|A"]
    result = fitted.forecast(3, new_history=both[both["series_id"].isin(known)])
    assert result.frame["series_id"].nunique() == 6


def test_short_series_still_forecast(retail_panel, retail_contract, small_config):
    # A series with 3 days of history: every lag >= 3 is missing, the forecast must not be.
    tiny = retail_panel[
        (retail_panel["series_id"] != "S2|C") | (retail_panel["date"] > "2024-06-27")
    ]
    fc = Forecaster.fit(tiny, retail_contract, small_config)
    frame = fc.predict(7)
    newcomer = frame[frame["series_id"] == "S2|C"]
    assert len(newcomer) == 7 and newcomer["forecast"].notna().all()


def test_single_series_without_keys(takeaway_panel, takeaway_contract, small_config):
    fc = Forecaster.fit(takeaway_panel, takeaway_contract, small_config)
    frame = fc.predict(7)
    assert list(frame["series_id"].unique()) == ["total"]
    assert len(frame) == 7 and frame["forecast"].notna().all()
    assert "holiday_name" in fc.spec.dynamic_names


def test_bad_arguments(fitted):
    with pytest.raises(TrainerError, match="horizon"):
        fitted.predict(0)
    with pytest.raises(TrainerError, match="unknown series"):
        fitted.predict(3, series_ids=["nope"])
    subset = fitted.predict(3, series_ids=["S1|A"])
    assert list(subset["series_id"].unique()) == ["S1|A"]
    np.testing.assert_allclose(
        subset["forecast"], fitted.predict(3).query("series_id == 'S1|A'")["forecast"]
    )


def test_negative_target_is_explained(retail_panel, retail_contract, small_config):
    bad = retail_panel.copy()
    bad.loc[0, "sales"] = -1.0
    with pytest.raises(TrainerError, match="--objective l2"):
        Forecaster.fit(bad, retail_contract, small_config.with_params(objective="tweedie"))
    with pytest.raises(TrainerError, match="log_target"):
        Forecaster.fit(bad, retail_contract, small_config)


def test_static_columns_and_integer_keys(retail_panel, small_config):
    panel = retail_panel.assign(
        store_id=retail_panel["store_id"].str[1:].astype(int),
        store_size=retail_panel["store_id"].map({"S1": 100.0, "S2": 250.0}),
        region=retail_panel["store_id"].map({"S1": "north", "S2": "south"}),
    ).drop(columns=["series_id"])
    contract = Contract.from_dict(
        {
            "name": "int_keys",
            "date_column": "date",
            "target": "sales",
            "series_keys": ["store_id", "item_id"],
            "columns": [
                {"name": "date", "type": "DATE", "role": "date"},
                {"name": "store_id", "type": "INT64", "role": "key"},
                {"name": "item_id", "type": "STRING", "role": "key"},
                {"name": "sales", "type": "FLOAT64", "role": "target"},
                {"name": "store_size", "type": "FLOAT64", "role": "static"},
                {"name": "region", "type": "STRING", "role": "static"},
                {"name": "on_promo", "type": "BOOL", "role": "known", "future_fill": "value:true"},
            ],
        }
    )
    fc = Forecaster.fit(panel, contract, small_config, intervals=False)
    assert fc.spec.static_names == ["store_id", "item_id", "store_size", "region"]
    future = pd.DataFrame(
        {
            "store_id": [1],
            "item_id": ["A"],
            "date": [pd.Timestamp("2024-07-01")],
            "on_promo": [False],
        }
    )
    result = fc.forecast(2, future_df=future)
    assert sorted(result.frame["series_id"].unique())[0] == "1|A"
    assert result.frame["store_id"].dtype.kind == "i"
    assert result.filled_values == {"on_promo": 11}


def test_single_series_future_file(tmp_path, takeaway_panel, takeaway_contract, small_config):
    path = tmp_path / "future.csv"
    path.write_text("date,holiday_name,is_holiday,tavg\n2024-07-02,festival,true,31.5\n")
    fc = Forecaster.fit(takeaway_panel, takeaway_contract, small_config, intervals=False)
    result = fc.forecast(3, future_df=read_future_csv(str(path), takeaway_contract))
    assert len(result.frame) == 3
    assert result.filled_values["holiday_name"] == 2 and result.filled_values["is_holiday"] == 2
    assert result.filled_values["is_weekend"] == 3
