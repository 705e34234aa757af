"""Finding and reading a dataset contract on the Airflow side (built-in name or file path).

The contract's rules live in :mod:`sf_contract.schema`, shared with the trainer and the server:
the resolved JSON the trainer receives is checked by the same code that checked the YAML here.
"""

from __future__ import annotations

import json
from pathlib import Path

from sf_contract.schema import Contract, ContractError, parse_contract

__all__ = ["BUILTIN_CONTRACTS", "CONTRACTS_DIR", "load_contract"]

CONTRACTS_DIR = Path(__file__).parent / "contracts"
BUILTIN_CONTRACTS = ("retail", "takeaway")


def load_contract(name_or_path: str) -> Contract:
    """Load a built-in contract by name (``retail``, ``takeaway``) or a YAML/JSON file by path."""
    import yaml  # local import: parsing a DAG file must stay light

    if name_or_path in BUILTIN_CONTRACTS:
        path = CONTRACTS_DIR / f"{name_or_path}.yaml"
    else:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ContractError(
                f"dataset {name_or_path!r} is neither a built-in contract "
                f"({', '.join(BUILTIN_CONTRACTS)}) nor an existing contract file"
            )
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: not valid YAML/JSON: {exc}") from exc
    return parse_contract(data, source=str(path))
