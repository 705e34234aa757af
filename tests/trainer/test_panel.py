import pandas as pd
import pytest

from trainer.errors import TrainerError
from trainer.panel import prepare_panel


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
