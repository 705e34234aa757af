"""Names and tokens the SQL, the trainer and the server must spell the same way."""

from __future__ import annotations

__all__ = [
    "BOOL_FALSE",
    "BOOL_TRUE",
    "COLUMN_TYPES",
    "DATE_FORMAT",
    "DATE_FORMAT_FIELDS",
    "DATE_FORMAT_SEPARATORS",
    "DATE_PATTERN",
    "FILL_RULES",
    "FLOAT_PATTERN",
    "FUTURE_ROLES",
    "INT_PATTERN",
    "KEY_SEPARATOR",
    "METRICS",
    "PANEL_COLUMNS",
    "PRODUCTION_ALIAS",
    "RESERVED_COLUMNS",
    "ROLES",
    "SEASONAL_NAIVE_VERSION",
    "SINGLE_SERIES_ID",
    "USER_ERROR_EXIT",
]

# BigQuery's names; DuckDB gets them through sqlglot.
COLUMN_TYPES: tuple[str, ...] = ("DATE", "STRING", "INT64", "FLOAT64", "BOOL")
# known: known in advance (prices, promotions); forecast: observed after the day, and given
# for the coming days as a forecast where one exists (weather); observed: after the day only;
# availability: could the item be sold that day (shop open, in stock; a BOOL, or a quantity on
# hand where > 0 is available). An unavailable day's sales say nothing about demand.
ROLES: tuple[str, ...] = (
    "date",
    "key",
    "target",
    "known",
    "forecast",
    "observed",
    "static",
    "availability",
)
# Roles whose values a future file (or a serving request's ``future``) gives for forecast days.
FUTURE_ROLES: tuple[str, ...] = ("known", "forecast")
# How a known or forecast column is filled on days nobody supplied: the series' last value,
# zero, false, true on Saturdays and Sundays, a constant (``value:<x>``), or the column's usual
# value for that time of year (``climatology``: the default of numeric forecast columns).
FILL_RULES: tuple[str, ...] = ("last", "zero", "false", "weekend", "value:<x>", "climatology")

# Columns the pipeline adds to the contract's own; a contract may not use these names.
# is_gap_filled: no row at all that day (target 0, read as zero sales); is_unknown: the day's
# row was quarantined and never re-delivered (target NULL: not known, not zero).
PANEL_COLUMNS: tuple[str, ...] = ("series_id", "is_gap_filled", "is_unknown")
RESERVED_COLUMNS: frozenset[str] = frozenset(
    {*PANEL_COLUMNS, "run_id", "model_version", "_source_row", "_source_file"}
)

# A series id is its key values joined by KEY_SEPARATOR; a dataset without keys is one series.
SINGLE_SERIES_ID = "total"
KEY_SEPARATOR = "|"

# Text that reads as a BOOL, compared after trimming and lower-casing.
BOOL_TRUE: tuple[str, ...] = ("true", "t", "1", "yes", "y")
BOOL_FALSE: tuple[str, ...] = ("false", "f", "0", "no", "n")

# Dates in files, params and requests: ISO calendar dates only (not 20240101, not 2024-W01-1).
DATE_FORMAT = "YYYY-MM-DD"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# What a contract's own ``date_format`` (for its CSV files only) may hold: each field once, in
# any order, with these separators between them. Nothing locale-dependent (%b month names), no
# two-digit years (%y: which century?).
DATE_FORMAT_FIELDS: tuple[str, ...] = ("%Y", "%m", "%d")
DATE_FORMAT_SEPARATORS = "-/._, "
# Numbers as text: what BigQuery's SAFE_CAST takes, and no more (DuckDB's TRY_CAST also takes
# "1_000", and rounds "1.5" to the INT64 2). nan/inf are no numbers either.
INT_PATTERN = r"^[+-]?[0-9]+$"
FLOAT_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"

# The registry alias of the version that serves (Vertex AI Model Registry and the local one).
PRODUCTION_ALIAS = "production"
# Error metrics the trainer reports and the gate can compare on; lower is better for each.
METRICS: tuple[str, ...] = ("wape", "mae", "rmse", "mase")

# The trainer's exit code for "a mistake the caller can fix" (bad input, arguments or contract):
# the Airflow side fails such a task at once instead of retrying it.
USER_ERROR_EXIT = 2
# The model_version of forecast rows made by seasonal naive (no model beat it, or a series no
# model knows): the forecasts table, the trainer and the Airflow side spell it the same way.
SEASONAL_NAIVE_VERSION = "seasonal_naive"
