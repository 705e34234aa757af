"""Reading the dataset contract the Airflow side resolved for this run.

The contract itself, and every rule about it, is :mod:`sf_contract.schema`: the same parser
checked it before the data was loaded.
"""

from __future__ import annotations

__all__ = ["load_contract"]

from sf_contract import Contract, ContractError, parse_contract
from sf_contract.files import FileFormatError, parse_json
from trainer.errors import TrainerError
from trainer.io.files import open_file


def load_contract(uri: str) -> Contract:
    """Read a contract JSON from a local path or any fsspec URI (``gs://...``)."""
    with open_file(uri, "r") as handle:
        text = handle.read()
    try:
        return parse_contract(parse_json(text, f"contract {uri}"), source=uri)
    except FileFormatError as exc:
        raise TrainerError(str(exc)) from None
    except ContractError as exc:
        raise TrainerError(f"contract {exc}") from None
