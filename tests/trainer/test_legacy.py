"""First-version models and params.json still load and refit the recipe they were trained with."""

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from trainer.backtest import load_params
from trainer.config import TrainerConfig
from trainer.legacy import upgrade_params
from trainer.model import Forecaster


def test_old_params_json_refits_the_old_recipe(tmp_path: Path):
    # A first-version params.json lacks keys; the backtest reads a champion's this way.
    (tmp_path / "params.json").write_text(
        json.dumps({"horizon": 14, "params": {"n_estimators": 50}})
    )
    legacy = load_params(str(tmp_path))
    assert legacy.features.target_scaling == "none" and not legacy.features.covariate_features
    assert legacy.params.objective == "tweedie" and legacy.params.num_leaves == 63
    assert legacy.interval_method == "conformal_distribution" and legacy.train_window_days == 0
    new = TrainerConfig()
    assert TrainerConfig.from_dict(json.loads(json.dumps(new.to_dict()))) == new
    # Today's params.json holds every key: upgrading it changes nothing.
    assert TrainerConfig.from_dict(upgrade_params(new.to_dict())) == new


def test_legacy_recipe_still_trains_and_forecasts(retail_panel, retail_contract):
    legacy = TrainerConfig.from_dict(
        upgrade_params(
            {"horizon": 7, "interval_windows": 2, "num_threads": 1, "params": {"n_estimators": 10}}
        )
    )
    fc = Forecaster.fit(retail_panel, retail_contract, legacy)
    frame = fc.predict(7)
    assert fc.intervals["method"] == "conformal_distribution"
    assert frame["forecast"].notna().all() and frame["lower_80"].notna().any()


def test_legacy_interval_method_leaves_short_series_without_intervals(
    retail_panel, retail_contract, small_config
):
    config = replace(
        small_config, horizon=28, interval_method="conformal_distribution", interval_windows=2
    )
    fc = Forecaster.fit(retail_panel, retail_contract, config)
    assert fc.intervals["n_series_without"] == 1
    result = fc.forecast(28)
    short = result.frame[result.frame["series_id"] == "S2|C"]
    assert len(short) == 28 and short["lower_80"].isna().all()
    assert not short["forecast"].isna().any()
    assert result.series_without_intervals == 1


# The keys a first-version forecaster.json has (the first trainer's TrainerConfig fields).
_V1_CONFIG_KEYS = (
    "horizon", "params", "features", "validation_windows", "interval_windows", "levels", "seed",
    "num_threads", "hpt_metric_name",
)  # fmt: skip
_V1_FEATURE_KEYS = ("lags", "rolling_lags", "rolling_windows", "date_features")


def test_a_first_version_model_folder_loads_and_forecasts_as_saved(
    tmp_path: Path, retail_panel, retail_contract
):
    config = TrainerConfig.from_dict(
        upgrade_params(
            {"horizon": 7, "interval_windows": 2, "num_threads": 1, "params": {"n_estimators": 10}}
        )
    )
    fc = Forecaster.fit(retail_panel, retail_contract, config)
    expected = fc.predict(7)
    fc.save(str(tmp_path))
    # Rewrite forecaster.json as the first version wrote it: format 1 and only its keys.
    path = tmp_path / "forecaster.json"
    doc = json.loads(path.read_text())
    doc["format_version"] = 1
    doc["config"] = {k: v for k, v in doc["config"].items() if k in _V1_CONFIG_KEYS}
    doc["config"]["params"].pop("max_bin")
    for features in (doc["config"]["features"], doc["feature_spec"]["features"]):
        for key in [k for k in features if k not in _V1_FEATURE_KEYS]:
            features.pop(key)
    doc["feature_spec"].pop("derived")
    doc.pop("training")
    path.write_text(json.dumps(doc))
    loaded = Forecaster.load(str(tmp_path))
    assert loaded.config == config and loaded.spec.features == config.features
    assert loaded.intervals["method"] == "conformal_distribution"
    pd.testing.assert_frame_equal(loaded.predict(7), expected)
