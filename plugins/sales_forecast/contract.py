"""Finding and reading a dataset contract on the Airflow side.

A run's ``dataset`` param is a *name*, never a path: a shipped contract
(``plugins/sales_forecast/contracts/<name>.yaml``) or a ``<name>.yaml`` / ``.yml`` / ``.json``
file in ``Settings.contracts_dir``. Whoever can trigger a run can choose the param, so it must
not be able to make the worker read an arbitrary file (review D7). Trusted local callers (tests,
benchmarks, command-line tools) that hold a contract file of their own use
:func:`load_contract_file`, which no DAG param reaches.

The contract's rules live in :mod:`sf_contract.schema`, shared with the trainer and the server:
the resolved JSON the trainer receives is checked by the same code that checked the YAML here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_contract.schema import IDENTIFIER_PATTERN, Contract, ContractError, parse_contract

if TYPE_CHECKING:
    from sales_forecast.config import Settings

__all__ = [
    "BUILTIN_CONTRACTS",
    "CONTRACTS_DIR",
    "CONTRACT_SUFFIXES",
    "available_contracts",
    "contract_path",
    "load_contract",
    "load_contract_file",
]

CONTRACTS_DIR = Path(__file__).parent / "contracts"
BUILTIN_CONTRACTS = ("retail", "takeaway")
CONTRACT_SUFFIXES = (".yaml", ".yml", ".json")
# No real contract comes near this; a bigger file is not a contract (and YAML is slow on it).
MAX_CONTRACT_BYTES = 1 << 20
_NAME_RE = re.compile(IDENTIFIER_PATTERN)
# How many names an error message lists (a contracts folder may hold many).
_LISTED = 20


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    from sales_forecast.config import get_settings

    return get_settings()


def _own_contracts(folder: Path) -> dict[str, Path]:
    """``<name>`` -> file for the contract files directly in ``folder`` (valid names only)."""
    found: dict[str, list[Path]] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return {}
    for entry in entries:
        if entry.suffix in CONTRACT_SUFFIXES and _NAME_RE.fullmatch(entry.stem):
            found.setdefault(entry.stem, []).append(entry)
    # mine.yaml next to mine.json: which one a run used would depend on the listing order.
    return {name: paths[0] for name, paths in found.items() if len(paths) == 1}


def available_contracts(settings: Settings | None = None) -> list[str]:
    """The names a run's ``dataset`` param may take: shipped ones first, then the folder's."""
    folder = _settings(settings).contracts_dir
    own = _own_contracts(Path(folder).expanduser()) if folder else {}
    return [*BUILTIN_CONTRACTS, *sorted(n for n in own if n not in BUILTIN_CONTRACTS)]


def _unknown(dataset: object, settings: Settings, why: str) -> ContractError:
    names = available_contracts(settings)
    listed = ", ".join(names[:_LISTED]) + (
        f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    )
    shown = repr(dataset) if len(repr(dataset)) <= 80 else repr(dataset)[:77] + "..."
    where = (
        f"shipped or in SF_CONTRACTS_DIR ({settings.contracts_dir})"
        if settings.contracts_dir
        else "shipped (set SF_CONTRACTS_DIR to add your own)"
    )
    return ContractError(
        f"dataset {shown} {why}. A dataset is the name of a contract {where}, "
        f"not a path; available: {listed}"
    )


def contract_path(dataset: str, settings: Settings | None = None) -> Path:
    """The contract file a ``dataset`` name stands for; ContractError for anything else.

    Only looks at names and folder listings: nothing is opened, so a hostile param (a path,
    ``..``, a URL) is refused before any file is read.
    """
    cfg = _settings(settings)
    if not isinstance(dataset, str) or not _NAME_RE.fullmatch(dataset):
        raise _unknown(dataset, cfg, "is not a contract name")
    # Shipped names win: a file in the folder cannot replace what `retail` means.
    if dataset in BUILTIN_CONTRACTS:
        return CONTRACTS_DIR / f"{dataset}.yaml"
    if cfg.contracts_dir:
        folder = Path(cfg.contracts_dir).expanduser().resolve()
        candidates = [folder / f"{dataset}{suffix}" for suffix in CONTRACT_SUFFIXES]
        present = [p for p in candidates if p.exists()]
        if len(present) > 1:
            raise ContractError(
                f"dataset {dataset!r}: SF_CONTRACTS_DIR holds "
                f"{' and '.join(p.name for p in present)}; keep only one"
            )
        if present:
            path = present[0]
            # A symlink in the folder must not lead the worker out of it.
            resolved = path.resolve()
            if not resolved.is_relative_to(folder) or not resolved.is_file():
                raise ContractError(
                    f"dataset {dataset!r}: {path.name} in SF_CONTRACTS_DIR is not a regular "
                    "file inside that folder"
                )
            return resolved
    raise _unknown(dataset, cfg, "is not a known contract")


def _syntax_error(exc: Exception, path: Path) -> ContractError:
    """A parse error naming the file, line and column only.

    Parsers quote the offending text; the file may not be a contract at all, and the message
    lands in task logs and the UI (review D7).
    """
    line = col = None
    if isinstance(exc, json.JSONDecodeError):
        line, col = exc.lineno, exc.colno
    else:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if mark is not None:
            line, col = mark.line + 1, mark.column + 1
    kind = "JSON" if path.suffix == ".json" else "YAML"
    where = f" at line {line}, column {col}" if line is not None else ""
    return ContractError(f"{path}: not valid YAML/JSON: {kind} syntax error{where}")


def _read(path: Path) -> Any:
    import yaml  # local import: parsing a DAG file must stay light

    try:
        size = path.stat().st_size
        if size > MAX_CONTRACT_BYTES:
            raise ContractError(
                f"{path}: {size} bytes; a contract file is at most {MAX_CONTRACT_BYTES} bytes"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ContractError(f"{path}: cannot read the contract file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            f"{path}: not valid YAML/JSON: not UTF-8 text (byte {exc.start})"
        ) from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, RecursionError, yaml.YAMLError) as exc:
        # RecursionError: a deeply nested document.
        raise _syntax_error(exc, path) from None


def load_contract(dataset: str, settings: Settings | None = None) -> Contract:
    """The contract a run's ``dataset`` param names (see the module docstring).

    The contract's own ``name`` must be the name it was asked for: a folder file cannot claim
    to be ``retail`` and write into the retail tables and model.
    """
    path = contract_path(dataset, settings)
    contract = parse_contract(_read(path), source=str(path))
    if contract.name != dataset:
        raise ContractError(
            f"{path}: the contract's name is {contract.name!r}, but the file is named "
            f"{dataset!r}; they must be the same"
        )
    return contract


def load_contract_file(path: str | Path) -> Contract:
    """A contract from an explicit file path: for trusted local callers only.

    Tests, benchmarks and command-line tools run by the machine's own user may read any file
    they like; nothing a DAG run's params choose ever reaches this function.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ContractError(f"{file}: no such contract file")
    return parse_contract(_read(file), source=str(file))
