"""Days an item could not sell: a closed shop, an empty shelf (the contract's availability column).

A day's sales are demand only when the item could be sold. An unavailable day's 0 (or the few
units sold before the shelf emptied) is no lesson about demand, so the panel flags it like a
quarantined day (``is_unknown``, :func:`trainer.panel.prepare_panel`): no loss, score or interval
calibration reads it as an actual, and lags and rolling means see a filled value instead of the
0. Forecast days a future file (or a serving request) marks unavailable are forecast as 0 with
the interval [0, 0]: nothing can sell whatever the demand.

What counts as available is :meth:`sf_contract.Column.is_available` (missing = available, a BOOL
its truth, a quantity > 0), applied here to each distinct value once.
"""

from __future__ import annotations

__all__ = ["unavailable", "zero_unavailable_days"]

import numpy as np
import pandas as pd

from sf_contract import Column, Contract, ScalarError
from trainer.errors import TrainerError


def unavailable(values: pd.Series, column: Column, where: str) -> np.ndarray:
    """Per value of an availability column: True where the item could not be sold."""
    if values.empty:
        return np.zeros(0, dtype=bool)
    missing = values.isna().to_numpy()
    present = values[~missing]
    verdict: dict[object, bool] = {}
    for value in pd.unique(present.to_numpy(dtype=object)):
        try:
            verdict[value] = not column.is_available(value)
        except (ScalarError, TypeError, ValueError) as exc:
            raise TrainerError(
                f"{where}: availability column '{column.name}' has value {value!r}, which is "
                f"not a {column.type} ({exc})"
            ) from None
    out = np.zeros(len(values), dtype=bool)
    out[~missing] = present.map(verdict).to_numpy(dtype=bool)
    return out


def zero_unavailable_days(
    frame: pd.DataFrame,
    future: pd.DataFrame | None,
    contract: Contract,
    series: pd.Series | None,
) -> tuple[pd.DataFrame, int]:
    """``frame`` (forecast rows: ``series_id``, ``date``, ``forecast``, ``lower_*``/``upper_*``)
    with every day ``future`` marks unavailable forecast as 0, and how many rows that was.

    ``series`` is the ``series_id`` of each ``future`` row (None where it names no series of the
    frame). A contract without an availability column, or a future without it, changes nothing.
    """
    column = contract.availability_column
    if column is None or future is None or series is None or frame.empty:
        return frame, 0
    if column.name not in future.columns:
        return frame, 0
    closed = unavailable(future[column.name], column, "future")
    if not closed.any():
        return frame, 0
    days = pd.DataFrame(
        {
            "series_id": series.to_numpy(dtype=object)[closed],
            "date": pd.to_datetime(future[contract.date_column].to_numpy()[closed]),
        }
    ).dropna()
    days["series_id"] = days["series_id"].astype(str)
    keys = pd.MultiIndex.from_frame(days)
    rows = pd.MultiIndex.from_arrays(
        [frame["series_id"].astype(str).to_numpy(), pd.to_datetime(frame["date"]).to_numpy()]
    )
    hit = rows.isin(keys)
    if not hit.any():
        return frame, 0
    out = frame.copy()
    values = [c for c in out.columns if c == "forecast" or c.startswith(("lower_", "upper_"))]
    out.loc[hit, values] = 0.0
    return out, int(hit.sum())
