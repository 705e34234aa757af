"""The dataset contract as the trainer sees it (already resolved by the Airflow side)."""

from __future__ import annotations

__all__ = [
    "COLUMN_TYPES",
    "FILL_RULES",
    "ROLES",
    "Contract",
    "ContractColumn",
    "load_contract",
    "parse_scalar",
]

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from trainer.errors import TrainerError

COLUMN_TYPES = ("DATE", "STRING", "INT64", "FLOAT64", "BOOL")
ROLES = ("date", "key", "target", "known", "observed", "static")
FILL_RULES = ("last", "zero", "false", "value:<x>")

# Columns the upstream SQL adds to every panel; they are not part of the contract.
PANEL_EXTRA_COLUMNS = ("series_id", "is_gap_filled")


@dataclass(frozen=True)
class ContractColumn:
    """One column of the dataset: its warehouse type, its role and (known columns) its fill rule."""

    name: str
    type: str
    role: str
    future_fill: str | None = None

    def fill_value(self) -> Any:
        """The constant a ``zero``/``false``/``value:<x>`` rule fills with (None for ``last``
        and ``weekend``, whose values depend on the series or the day)."""
        rule = self.future_fill or "last"
        if rule in ("last", "weekend"):
            return None
        if rule == "zero":
            return 0.0 if self.type in ("FLOAT64", "INT64") else False
        if rule == "false":
            return False
        raw = rule.split(":", 1)[1]
        return parse_scalar(raw, self.type, where=f"future_fill of column '{self.name}'")


@dataclass(frozen=True)
class Contract:
    """Date column, target, series keys and every other column with its type and role."""

    name: str
    date_column: str
    target: str
    series_keys: tuple[str, ...]
    columns: tuple[ContractColumn, ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Contract:
        """Parse and validate a contract dict; every problem becomes a :class:`TrainerError`."""
        if not isinstance(data, dict):
            raise TrainerError("contract must be a JSON object")
        for key in ("date_column", "target", "columns"):
            if key not in data:
                raise TrainerError(f"contract is missing '{key}'")
        date_column = str(data["date_column"])
        target = str(data["target"])
        keys = tuple(str(k) for k in (data.get("series_keys") or []))
        columns: list[ContractColumn] = []
        seen: set[str] = set()
        for raw in data["columns"]:
            if not isinstance(raw, dict) or "name" not in raw or "type" not in raw:
                raise TrainerError(f"contract column needs 'name' and 'type': {raw!r}")
            name = str(raw["name"])
            if name in seen:
                raise TrainerError(f"contract lists column '{name}' twice")
            seen.add(name)
            ctype = str(raw["type"]).upper()
            if ctype not in COLUMN_TYPES:
                raise TrainerError(
                    f"column '{name}': unknown type '{raw['type']}' (expected {COLUMN_TYPES})"
                )
            role = raw.get("role")
            # The top-level fields already say which columns are date/target/keys.
            if role is None:
                if name == date_column:
                    role = "date"
                elif name == target:
                    role = "target"
                elif name in keys:
                    role = "key"
                else:
                    raise TrainerError(f"column '{name}' has no role (expected one of {ROLES})")
            role = str(role)
            if role not in ROLES:
                raise TrainerError(f"column '{name}': unknown role '{role}' (expected {ROLES})")
            fill = raw.get("future_fill")
            if role == "known":
                fill = _check_fill_rule(name, ctype, fill)
            columns.append(ContractColumn(name=name, type=ctype, role=role, future_fill=fill))
        by_name = {c.name: c for c in columns}
        _expect(by_name, date_column, "date", "date_column")
        _expect(by_name, target, "target", "target")
        if by_name[date_column].type != "DATE":
            raise TrainerError(f"date column '{date_column}' must have type DATE")
        if by_name[target].type not in ("FLOAT64", "INT64"):
            raise TrainerError(f"target '{target}' must be FLOAT64 or INT64")
        for key in keys:
            _expect(by_name, key, "key", "series_keys")
        stray_keys = [c.name for c in columns if c.role == "key" and c.name not in keys]
        if stray_keys:
            raise TrainerError(f"columns {stray_keys} have role 'key' but are not in series_keys")
        for col in columns:
            if col.name in PANEL_EXTRA_COLUMNS:
                raise TrainerError(f"column name '{col.name}' is reserved for the panel")
        known = {"name", "date_column", "target", "series_keys", "columns"}
        return cls(
            name=str(data.get("name") or "dataset"),
            date_column=date_column,
            target=target,
            series_keys=keys,
            columns=tuple(columns),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (round-trips through :meth:`from_dict`)."""
        cols = []
        for col in self.columns:
            item = asdict(col)
            if item["future_fill"] is None:
                item.pop("future_fill")
            cols.append(item)
        return {
            **self.extra,
            "name": self.name,
            "date_column": self.date_column,
            "target": self.target,
            "series_keys": list(self.series_keys),
            "columns": cols,
        }

    def column(self, name: str) -> ContractColumn:
        for col in self.columns:
            if col.name == name:
                return col
        raise TrainerError(f"contract '{self.name}' has no column '{name}'")

    def by_role(self, role: str) -> list[ContractColumn]:
        return [c for c in self.columns if c.role == role]

    @property
    def known_columns(self) -> list[ContractColumn]:
        return self.by_role("known")

    @property
    def static_columns(self) -> list[ContractColumn]:
        return self.by_role("static")

    @property
    def observed_columns(self) -> list[ContractColumn]:
        return self.by_role("observed")


def _expect(by_name: dict[str, ContractColumn], name: str, role: str, field_name: str) -> None:
    col = by_name.get(name)
    if col is None:
        raise TrainerError(f"{field_name} '{name}' is not among the contract's columns")
    if col.role != role:
        raise TrainerError(
            f"column '{name}' ({field_name}) must have role '{role}', not {col.role}"
        )


def _check_fill_rule(name: str, ctype: str, rule: Any) -> str:
    # Known columns without a rule carry the series' last value forward: the least surprising
    # choice for prices and flags that rarely change.
    if rule is None:
        return "last"
    rule = str(rule)
    if rule == "weekend":
        if ctype != "BOOL":
            raise TrainerError(f"column '{name}': future_fill 'weekend' needs a BOOL column")
        return rule
    if rule in ("last", "zero", "false"):
        if rule == "zero" and ctype not in ("FLOAT64", "INT64", "BOOL"):
            raise TrainerError(f"column '{name}': future_fill 'zero' needs a numeric column")
        if rule == "false" and ctype != "BOOL":
            raise TrainerError(f"column '{name}': future_fill 'false' needs a BOOL column")
        return rule
    if rule.startswith("value:"):
        parse_scalar(rule.split(":", 1)[1], ctype, where=f"future_fill of column '{name}'")
        return rule
    raise TrainerError(
        f"column '{name}': unknown future_fill '{rule}' (expected last, zero, false, weekend "
        "or value:<x>)"
    )


_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


def parse_scalar(raw: str, ctype: str, where: str) -> Any:
    """Parse one text value as a contract type; raises :class:`TrainerError` naming ``where``."""
    text = raw.strip()
    try:
        if ctype == "FLOAT64":
            return float(text)
        if ctype == "INT64":
            return int(text)
        if ctype == "BOOL":
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if ctype == "DATE":
            import datetime as dt

            return dt.date.fromisoformat(text)
    except ValueError:
        raise TrainerError(f"{where}: cannot parse {raw!r} as {ctype}") from None
    return raw


def load_contract(uri: str) -> Contract:
    """Read a contract JSON from a local path or any fsspec URI (``gs://...``)."""
    from trainer.io import read_json

    try:
        data = read_json(uri)
    except json.JSONDecodeError as exc:
        raise TrainerError(f"contract {uri} is not valid JSON: {exc}") from None
    try:
        return Contract.from_dict(data)
    except TrainerError as exc:
        raise TrainerError(f"contract {uri}: {exc}") from None
