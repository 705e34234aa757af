import pandas as pd

from trainer.config import FeatureConfig
from trainer.feature_spec import build_feature_spec, to_model_frame
from trainer.panel import prepare_panel


def test_feature_spec_excludes_observed_and_types_categoricals(takeaway_panel, takeaway_contract):
    panel = prepare_panel(takeaway_panel, takeaway_contract)
    spec = build_feature_spec(panel, takeaway_contract, FeatureConfig())
    assert spec.static == ()
    assert {c for c, _ in spec.excluded} == {"tavg", "tmin", "tmax", "prcp", "wspd", "pres"}
    holiday = next(c for c in spec.dynamic if c.source == "holiday_name")
    assert holiday.kind == "category" and holiday.categories == ("festival", "none")
    frame = to_model_frame(panel, takeaway_contract, spec)
    assert isinstance(frame["holiday_name"].dtype, pd.CategoricalDtype)
    assert not any(c in frame.columns for c in ("tavg", "temperature"))
