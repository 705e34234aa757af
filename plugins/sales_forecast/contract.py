"""The dataset contract: one file that says what an input CSV holds.

From it come the staging schema (BigQuery ``schema_fields`` / DuckDB columns), the validation
rules, and the resolved JSON the trainer receives (the trainer never imports this module: the
contract crosses the boundary as a file, as it would on Vertex AI).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BUILTIN_CONTRACTS",
    "Column",
    "Contract",
    "ContractError",
    "load_contract",
]

CONTRACTS_DIR = Path(__file__).parent / "contracts"
BUILTIN_CONTRACTS = ("retail", "takeaway")

TYPES = ("DATE", "STRING", "INT64", "FLOAT64", "BOOL")
ROLES = ("date", "key", "target", "known", "observed", "static")
_FILL_RE = re.compile(r"^(last|zero|false|weekend|value:.*)$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Columns the pipeline adds itself; a contract may not use these names.
RESERVED = {"series_id", "is_gap_filled", "run_id", "model_version", "_source_row", "_source_file"}


class ContractError(ValueError):
    """The contract file itself is invalid (not the data it describes)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    role: str
    nullable: bool = True
    future_fill: str | None = None


@dataclass(frozen=True)
class Contract:
    name: str
    date_column: str
    target: str
    series_keys: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str = ""
    source: str = field(default="", compare=False)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def by_role(self, *roles: str) -> list[Column]:
        return [c for c in self.columns if c.role in roles]

    @property
    def covariates(self) -> list[Column]:
        return self.by_role("known", "observed", "static")

    def bigquery_schema_fields(self, all_strings: bool = False) -> list[dict[str, str]]:
        """``schema_fields`` for a BigQuery load job.

        Staging loads every column as STRING (``all_strings``) so that a malformed value becomes
        a quarantine row with a reason instead of failing the whole load or, worse, being
        dropped by ``max_bad_records``.
        """
        return [
            {
                "name": c.name,
                "type": "STRING" if all_strings else c.type,
                "mode": "NULLABLE" if (all_strings or c.nullable) else "REQUIRED",
            }
            for c in self.columns
        ]

    def to_trainer_json(self) -> dict[str, Any]:
        """The resolved contract handed to the trainer (and stored next to every model)."""
        return {
            "name": self.name,
            "date_column": self.date_column,
            "target": self.target,
            "series_keys": list(self.series_keys),
            "columns": [
                {k: v for k, v in asdict(c).items() if v is not None and k != "nullable"}
                for c in self.columns
            ],
        }


def _parse_column(raw: Any, source: str) -> Column:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ContractError(f"{source}: every column needs at least a name, got {raw!r}")
    name = str(raw["name"])
    if not _NAME_RE.match(name):
        raise ContractError(f"{source}: column name {name!r} is not a valid SQL identifier")
    if name in RESERVED:
        raise ContractError(f"{source}: column name {name!r} is reserved by the pipeline")
    ctype = str(raw.get("type", "")).upper()
    if ctype not in TYPES:
        raise ContractError(f"{source}: column {name!r} has type {ctype!r}; use one of {TYPES}")
    role = str(raw.get("role", ""))
    if role not in ROLES:
        raise ContractError(f"{source}: column {name!r} has role {role!r}; use one of {ROLES}")
    fill = raw.get("future_fill")
    if fill is not None:
        fill = str(fill).lower() if not str(fill).startswith("value:") else str(fill)
        if not _FILL_RE.match(fill):
            raise ContractError(
                f"{source}: column {name!r} has future_fill {fill!r}; "
                "use last, zero, false, weekend or value:<x>"
            )
        if role != "known":
            raise ContractError(f"{source}: future_fill only applies to known columns ({name!r})")
        if fill == "weekend" and ctype != "BOOL":
            raise ContractError(
                f"{source}: future_fill weekend (Saturday or Sunday) needs a BOOL column ({name!r})"
            )
    elif role == "known":
        fill = "last"
    nullable = bool(raw.get("nullable", role in ("known", "observed", "static")))
    if role in ("date", "key", "target") and nullable:
        raise ContractError(f"{source}: {role} column {name!r} cannot be nullable")
    return Column(name=name, type=ctype, role=role, nullable=nullable, future_fill=fill)


def parse_contract(data: dict[str, Any], source: str = "<contract>") -> Contract:
    """Validate a contract mapping (from YAML or JSON) and return a :class:`Contract`."""
    if not isinstance(data, dict):
        raise ContractError(f"{source}: a contract is a mapping, got {type(data).__name__}")
    for key in ("name", "date_column", "target", "columns"):
        if key not in data:
            raise ContractError(f"{source}: missing required key {key!r}")
    columns = tuple(_parse_column(c, source) for c in data["columns"] or [])
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ContractError(f"{source}: duplicate column names {dupes}")
    keys = tuple(str(k) for k in data.get("series_keys") or [])
    by_name = {c.name: c for c in columns}

    def expect(name: str, role: str) -> None:
        col = by_name.get(name)
        if col is None:
            raise ContractError(f"{source}: {role} column {name!r} is not among the columns")
        if col.role != role:
            raise ContractError(f"{source}: column {name!r} must have role {role!r}")

    expect(str(data["date_column"]), "date")
    if by_name[str(data["date_column"])].type != "DATE":
        raise ContractError(f"{source}: the date column must have type DATE")
    expect(str(data["target"]), "target")
    if by_name[str(data["target"])].type not in ("FLOAT64", "INT64"):
        raise ContractError(f"{source}: the target must be FLOAT64 or INT64")
    for k in keys:
        expect(k, "key")
    if len([c for c in columns if c.role == "date"]) != 1:
        raise ContractError(f"{source}: exactly one column must have role 'date'")
    if len([c for c in columns if c.role == "target"]) != 1:
        raise ContractError(f"{source}: exactly one column must have role 'target'")
    extra_keys = [c.name for c in columns if c.role == "key" and c.name not in keys]
    if extra_keys:
        raise ContractError(f"{source}: key columns {extra_keys} are not listed in series_keys")
    return Contract(
        name=str(data["name"]),
        date_column=str(data["date_column"]),
        target=str(data["target"]),
        series_keys=keys,
        columns=columns,
        description=str(data.get("description", "")),
        source=source,
    )


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
