import pytest

from trainer.config import LGBMParams, TrainerConfig, config_from_json_obj
from trainer.errors import TrainerError


def test_params_json_flat_or_full_config():
    base = TrainerConfig()
    flat = config_from_json_obj({"num_leaves": 7, "learning_rate": 0.1}, base)
    assert flat.params.num_leaves == 7 and flat.params.learning_rate == 0.1
    full = TrainerConfig(horizon=14, params=LGBMParams(n_estimators=9), seed=3).to_dict()
    again = config_from_json_obj(full, base)
    assert again.horizon == 14 and again.params.n_estimators == 9 and again.seed == 3
    with pytest.raises(TrainerError, match="unknown params keys"):
        config_from_json_obj({"params": {"num_leafs": 3}}, base)


def test_missing_keys_take_the_current_defaults():
    assert TrainerConfig.from_dict({}) == TrainerConfig()
    partial = TrainerConfig.from_dict(
        {"horizon": 14, "params": {"n_estimators": 50}, "features": {"lags": [1, 7]}}
    )
    assert partial.params == LGBMParams(n_estimators=50) and partial.features.lags == (1, 7)
    assert partial.interval_method == "scaled_conformal" and partial.horizon == 14
    with pytest.raises(TrainerError, match="unknown features keys"):
        TrainerConfig.from_dict({"features": {"lag": [1]}})
    with pytest.raises(TrainerError, match="unknown trainer config keys"):
        TrainerConfig.from_dict({"horizn": 7})


@pytest.mark.parametrize(
    ("fraction", "freq", "expected"), [(1.0, 0, 0), (0.8, 0, 1), (0.8, 5, 5), (1.0, 3, 3)]
)
def test_a_bagging_fraction_below_one_bags_even_without_a_frequency(fraction, freq, expected):
    # LightGBM silently ignores bagging_fraction while bagging_freq is 0: a tuned 0.7 would
    # have changed nothing.
    from trainer.config import lgbm_kwargs

    params = LGBMParams(
        n_estimators=10,
        learning_rate=0.1,
        num_leaves=7,
        min_child_samples=5,
        bagging_fraction=fraction,
        bagging_freq=freq,
    )
    kwargs = lgbm_kwargs(TrainerConfig(params=params))
    assert (kwargs["subsample"], kwargs["subsample_freq"]) == (fraction, expected)
