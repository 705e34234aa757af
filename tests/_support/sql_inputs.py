"""The data a script's template needs beyond its switches, for tests that render every script.

``stage_table.sql`` needs the typed source's columns (sources.StagedColumn) and where they are
read from; ``add_history_columns.sql`` the columns to add. Every column kind and both sources
are rendered, so a kind the template writes badly shows up in the SQL-wide tests (BigQuery
dialect, DuckDB transpile, headers).
"""

from __future__ import annotations

from typing import Any

from sales_forecast.sources import StagedColumn

from sf_contract.schema import Contract


def staged_for(contract: Contract) -> list[StagedColumn]:
    """Each contract column as a typed source could hold it: dates as DATE, a timestamp,
    the rest as text kinds; read from a column named like the contract's header."""
    out = []
    for i, col in enumerate(contract.columns):
        kind = "date" if col.type == "DATE" else "text"
        if col.type == "DATE" and i % 2:
            kind = "timestamp"
        out.append(StagedColumn(name=col.name, source=col.name, position=i, kind=kind))
    if not any(s.kind == "timestamp" for s in out):
        first = out[0]
        out[0] = StagedColumn(first.name, first.source, first.position, "timestamp")
    return out


def script_inputs(script: str, contract: Contract) -> list[dict[str, Any]]:
    """Every variant of the data ``script`` renders with ([{}] when it needs none)."""
    if script == "add_history_columns":
        nullable = [c for c in contract.columns if c.nullable]
        return [{"added": nullable}, {"added": nullable[:1]}]
    if script != "stage_table":
        return [{}]
    staged = staged_for(contract)
    return [
        {"staged": staged, "bq_table": None},
        {
            "staged": staged,
            "bq_table": "my-project.src.sales",
            "source_uri": "bq://my-project.src.sales",
        },
    ]
