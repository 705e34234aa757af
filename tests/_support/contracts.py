"""Contracts the tests share: a point-of-sale export as it comes from the till."""

from __future__ import annotations

import copy
from typing import Any

POS_HEADER = "Date,Store,SKU,Units Sold,Unit Price,Promo"

_POS_CONTRACT: dict[str, Any] = {
    "name": "pos",
    "description": "the till export",
    "date_column": "date",
    "target": "sales",
    "series_keys": ["store_id", "item_id"],
    "date_format": "%d/%m/%Y",
    "columns": [
        {"name": "date", "type": "DATE", "header": "Date"},
        {"name": "store_id", "type": "STRING", "header": "Store"},
        {"name": "item_id", "type": "STRING", "header": "SKU"},
        {"name": "sales", "type": "FLOAT64", "header": "Units Sold"},
        {"name": "price", "type": "FLOAT64", "role": "known", "header": "Unit Price"},
        {"name": "on_promo", "type": "BOOL", "role": "known", "future_fill": "false",
         "header": "Promo"},
    ],
}  # fmt: skip


def pos_contract_doc(**headers: str) -> dict[str, Any]:
    """The POS contract as a mapping (a fresh copy); ``headers`` replace columns' headers."""
    doc = copy.deepcopy(_POS_CONTRACT)
    for col in doc["columns"]:
        if col["name"] in headers:
            col["header"] = headers[col["name"]]
    return doc
