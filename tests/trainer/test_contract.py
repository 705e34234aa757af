import copy

import pytest

from trainer.config import LGBMParams, TrainerConfig, config_from_json_obj
from trainer.contract import Contract
from trainer.errors import TrainerError


def test_contract_roles_and_round_trip(retail_contract, takeaway_contract):
    contract = Contract.from_dict(retail_contract.to_dict())
    assert contract.series_keys == ("store_id", "item_id")
    assert [c.name for c in contract.known_columns] == ["price", "on_promo", "is_holiday"]
    assert [c.name for c in contract.observed_columns] == ["temperature"]
    assert Contract.from_dict(contract.to_dict()) == contract
    assert contract.column("on_promo").fill_value() is False
    takeaway = Contract.from_dict(takeaway_contract.to_dict())
    assert takeaway.series_keys == ()
    assert takeaway.column("holiday_name").fill_value() == "none"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["columns"][3].update(type="TEXT"), "unknown type"),
        (lambda d: d.update(target="revenue"), "target 'revenue'"),
        (lambda d: d["columns"][4].update(future_fill="mean"), "unknown future_fill"),
        (lambda d: d["columns"][4].update(future_fill="false"), "needs a BOOL column"),
        (lambda d: d["columns"][5].update(future_fill="value:maybe"), "cannot parse 'maybe'"),
        (lambda d: d["columns"][7].update(role="weather"), "unknown role"),
    ],
)
def test_contract_errors_are_clear(retail_contract, mutate, message):
    data = copy.deepcopy(retail_contract.to_dict())
    mutate(data)
    with pytest.raises(TrainerError, match=message):
        Contract.from_dict(data)


def test_params_json_flat_or_full_config():
    base = TrainerConfig()
    flat = config_from_json_obj({"num_leaves": 7, "learning_rate": 0.1}, base)
    assert flat.params.num_leaves == 7 and flat.params.learning_rate == 0.1
    full = TrainerConfig(horizon=14, params=LGBMParams(n_estimators=9), seed=3).to_dict()
    again = config_from_json_obj(full, base)
    assert again.horizon == 14 and again.params.n_estimators == 9 and again.seed == 3
    with pytest.raises(TrainerError, match="unknown params keys"):
        config_from_json_obj({"params": {"num_leafs": 3}}, base)
