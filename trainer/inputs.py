"""Reading the commands' inputs: the clean panel table and the future-covariates CSV.

The only place where the domain modules' inputs come off a table or a file; what is read is
checked by :func:`trainer.panel.prepare_panel` and :func:`trainer.future.parse_future_csv`.
"""

from __future__ import annotations

__all__ = ["load_panel", "read_future_csv"]

import datetime as dt

import pandas as pd

from sf_contract import Contract
from trainer.errors import NoRowsError, TrainerError
from trainer.future import parse_future_csv
from trainer.io.files import open_file
from trainer.io.tables import read_table
from trainer.panel import panel_columns, prepare_panel


def load_panel(
    uri: str, contract: Contract, cutoff: dt.date, since: dt.date | None = None
) -> pd.DataFrame:
    """Read the clean panel from any table URI: days on or before ``cutoff`` (and on or after
    ``since``), only the columns the model uses, strings as categoricals.

    ``is_unknown`` is read when the table has it (tables written before it, and plain CSV /
    Parquet panels, have no unknown days): its rows may have a NULL target, which
    :func:`trainer.panel.prepare_panel` fills for features; a NULL elsewhere is an error.
    """
    raw = read_table(
        uri,
        date_column=contract.date_column,
        cutoff=cutoff,
        since=since,
        columns=panel_columns(contract),
        compact=True,
    )
    if raw.empty:
        after = f" and on or after {since}" if since is not None else ""
        raise NoRowsError(f"{uri}: no rows on or before the cut-off {cutoff}{after}")
    return prepare_panel(raw, contract, source=uri)


def read_future_csv(uri: str, contract: Contract) -> pd.DataFrame:
    """Read and validate a future-covariates CSV (see :func:`trainer.future.parse_future_csv`);
    every error names ``uri``."""
    try:
        with open_file(uri, "r") as handle:
            raw = pd.read_csv(handle, dtype=str, keep_default_na=False, na_values=[])
    except pd.errors.EmptyDataError:
        raise TrainerError(f"{uri}: the future file is empty") from None
    except pd.errors.ParserError as exc:
        raise TrainerError(f"{uri}: not a valid CSV: {exc}") from None
    return parse_future_csv(raw, contract, source=uri)
