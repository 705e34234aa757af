"""What crosses the boundary between the Airflow side, the trainer image and the serving image.

Standard library only, so all three deployables can carry it (Composer with ``plugins/``, the
images by copying this folder), the way Airflow shares code between ``airflow-core`` and
``task-sdk``: the dataset contract and every rule about it, the text-to-value rules, the
constants both sides must spell the same way, and the formats of the files they hand each other.
"""

from sf_contract.constants import (
    BOOL_FALSE,
    BOOL_TRUE,
    COLUMN_TYPES,
    DATE_FORMAT,
    FILL_RULES,
    KEY_SEPARATOR,
    METRICS,
    PANEL_COLUMNS,
    PRODUCTION_ALIAS,
    RESERVED_COLUMNS,
    ROLES,
    SINGLE_SERIES_ID,
)
from sf_contract.scalars import (
    ScalarError,
    key_text,
    parse_bool,
    parse_date,
    parse_scalar,
    series_id,
)
from sf_contract.schema import Column, Contract, ContractError, parse_contract

__all__ = [
    "BOOL_FALSE",
    "BOOL_TRUE",
    "COLUMN_TYPES",
    "DATE_FORMAT",
    "FILL_RULES",
    "KEY_SEPARATOR",
    "METRICS",
    "PANEL_COLUMNS",
    "PRODUCTION_ALIAS",
    "RESERVED_COLUMNS",
    "ROLES",
    "SINGLE_SERIES_ID",
    "Column",
    "Contract",
    "ContractError",
    "ScalarError",
    "key_text",
    "parse_bool",
    "parse_contract",
    "parse_date",
    "parse_scalar",
    "series_id",
]
