import copy
import json
from pathlib import Path

import pytest

from sf_contract import Contract
from trainer.contract import load_contract
from trainer.errors import TrainerError


def _write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_contract_roles_and_round_trip(tmp_path: Path, retail_contract, takeaway_contract):
    contract = load_contract(_write(tmp_path, retail_contract.to_dict()))
    assert contract.series_keys == ("store_id", "item_id")
    assert [c.name for c in contract.known_columns] == ["price", "on_promo", "is_holiday"]
    assert [c.name for c in contract.observed_columns] == ["temperature"]
    assert Contract.from_dict(contract.to_dict()) == contract
    assert contract.column("on_promo").fill_value() is False
    takeaway = load_contract(_write(tmp_path, takeaway_contract.to_dict()))
    assert takeaway.series_keys == ()
    assert takeaway.column("holiday_name").fill_value() == "none"


# The rules and their wording are sf_contract's (the Airflow side checks with the same parser);
# the trainer's part is to name the file and exit as a user error.
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["columns"][3].update(type="TEXT"), "has type 'TEXT'"),
        (lambda d: d.update(target="revenue"), "target column 'revenue'"),
        (lambda d: d["columns"][4].update(future_fill="mean"), "has future_fill 'mean'"),
        (lambda d: d["columns"][4].update(future_fill="false"), "needs a BOOL column"),
        (lambda d: d["columns"][5].update(future_fill="value:maybe"), "'maybe' is not a boolean"),
        (lambda d: d["columns"][7].update(role="weather"), "has role 'weather'"),
    ],
)
def test_contract_errors_are_clear(tmp_path: Path, retail_contract, mutate, message):
    data = copy.deepcopy(retail_contract.to_dict())
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(TrainerError, match=message) as info:
        load_contract(path)
    assert str(info.value).startswith(f"contract {path}: ")


def test_unreadable_contract_files_are_user_errors(tmp_path: Path):
    path = tmp_path / "contract.json"
    path.write_text("{not json")
    with pytest.raises(TrainerError, match=f"contract {path} is not valid JSON"):
        load_contract(str(path))
    with pytest.raises(TrainerError, match="file not found"):
        load_contract(str(tmp_path / "missing.json"))
