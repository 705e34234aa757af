"""The clean daily panel: validated, typed, sorted by series and day, and each series' state.

The panel is ``daily_sales_features`` as the warehouse wrote it: one row per series and day,
``series_id`` plus the contract's columns. :func:`prepare_panel` checks it and normalises the
types once; everything downstream (the feature frame, backtest windows, the forecaster's state)
starts from its output.
"""

from __future__ import annotations

__all__ = ["panel_columns", "prepare_panel", "series_state"]

from collections.abc import Iterable

import numpy as np
import pandas as pd

from sf_contract import (
    KEY_SEPARATOR,
    SINGLE_SERIES_ID,
    Column,
    Contract,
    ScalarError,
    key_text,
    parse_bool,
)
from trainer.errors import TrainerError

# Set on a prepared panel's attrs (the contract's name): slices of it skip the checks.
_PREPARED = "trainer_prepared_panel"


def panel_columns(contract: Contract) -> list[str]:
    """The columns the trainer reads from a panel (observed-only ones are never read)."""
    wanted = ["series_id", contract.date_column, contract.target, *contract.series_keys]
    wanted += [c.name for c in contract.known_columns + contract.static_columns]
    return [*dict.fromkeys(wanted), "is_gap_filled"]


def _series_ids(df: pd.DataFrame, keys: Iterable[str]) -> pd.Series:
    """:func:`sf_contract.series_id` of every row, one column at a time."""
    keys = list(keys)
    if not keys:
        return pd.Series(SINGLE_SERIES_ID, index=df.index, dtype=object)
    parts = [df[k].map(key_text) for k in keys]
    out = parts[0]
    for part in parts[1:]:
        out = out + KEY_SEPARATOR + part
    return out.astype(object)


def _bool_value(value: object, where: str) -> float:
    if isinstance(value, float):
        return value
    text = str(value)
    try:
        return float(parse_bool(text))
    except ScalarError as exc:
        raise TrainerError(f"{where}: cannot parse {text!r} as BOOL ({exc})") from None


def _to_bool_float(values: pd.Series, where: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return pd.to_numeric(values, errors="coerce").astype(float)
    mapped = values.map(
        lambda v: np.nan if v is None or (isinstance(v, float) and np.isnan(v)) else v
    )
    return mapped.map(lambda v: _bool_value(v, where)).astype(float)


def _typed(values: pd.Series, col: Column, where: str) -> pd.Series:
    """Normalise a feature column: numbers and booleans as float, strings as object."""
    if col.type == "BOOL":
        return _to_bool_float(values, where)
    if col.type in ("INT64", "FLOAT64"):
        out = pd.to_numeric(values, errors="coerce")
        bad = out.isna() & values.notna()
        if bad.any():
            raise TrainerError(
                f"{where}: column '{col.name}' has non-numeric value {values[bad].iloc[0]!r}"
            )
        return out.astype(float)
    if col.type == "DATE":
        return pd.to_datetime(values, errors="coerce")
    return values.astype(object).where(values.notna(), None)


def prepare_panel(df: pd.DataFrame, contract: Contract, *, source: str = "data") -> pd.DataFrame:
    """Validate and normalise the clean daily panel; raises :class:`TrainerError` on problems.

    Returns the panel sorted by series and date with ``series_id``, the key columns (as
    read), the date (``datetime64[ns]``), the target (float) and every known / static
    column (float or string). Observed-only columns are dropped here: nothing downstream may
    use them.
    """
    if df is None or len(df) == 0:
        raise TrainerError(f"{source}: no rows (is the cut-off before the first date?)")
    if df.attrs.get(_PREPARED) == contract.name and "series_id" in df.columns:
        return df
    needed = [contract.date_column, contract.target, *contract.series_keys]
    needed += [c.name for c in contract.known_columns + contract.static_columns]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise TrainerError(
            f"{source}: missing columns {missing} required by contract '{contract.name}' "
            f"(found {list(df.columns)})"
        )
    df = df.reset_index(drop=True)  # concatenated inputs may repeat index labels
    out = pd.DataFrame(index=df.index)
    if "series_id" in df.columns and isinstance(df["series_id"].dtype, pd.CategoricalDtype):
        # A compact read: keep the categorical (one string per series, not per row), with
        # categories in text order so sorting by it is sorting by the text.
        ids = df["series_id"].cat.rename_categories(lambda c: str(c))
        out["series_id"] = ids.cat.reorder_categories(sorted(ids.cat.categories))
    elif "series_id" in df.columns:
        out["series_id"] = df["series_id"].astype(str).astype(object)
    else:
        out["series_id"] = _series_ids(df, contract.series_keys)
    for key in contract.series_keys:
        if df[key].isna().any():
            raise TrainerError(f"{source}: key column '{key}' has null values")
        out[key] = df[key]
    dates = pd.to_datetime(df[contract.date_column], errors="coerce")
    if dates.isna().any():
        bad = df[contract.date_column][dates.isna()].iloc[0]
        raise TrainerError(f"{source}: date column '{contract.date_column}' has value {bad!r}")
    out[contract.date_column] = dates.dt.tz_localize(None) if dates.dt.tz else dates
    out[contract.date_column] = out[contract.date_column].dt.normalize().astype("datetime64[ns]")
    target = pd.to_numeric(df[contract.target], errors="coerce")
    if target.isna().any():
        first = out.loc[target.isna()].iloc[0]
        raise TrainerError(
            f"{source}: target '{contract.target}' has {int(target.isna().sum())} null or "
            f"non-numeric values (first: series {first['series_id']} on "
            f"{first[contract.date_column].date()})"
        )
    out[contract.target] = target.astype(float)
    for col in contract.known_columns + contract.static_columns:
        out[col.name] = _typed(df[col.name], col, source)
    if "is_gap_filled" in df.columns:
        out["is_gap_filled"] = df["is_gap_filled"].fillna(False).astype(bool)
    date = contract.date_column
    codes = _id_codes(out["series_id"])
    days = out[date].to_numpy(dtype="datetime64[D]").astype(np.int64)
    if not _is_sorted(codes, days):
        order = np.lexsort((days, codes))
        out = out.take(order)
        codes, days = codes[order], days[order]
    out = out.reset_index(drop=True)
    same = codes[1:] == codes[:-1]
    step = np.diff(days)
    dup = np.flatnonzero(same & (step == 0))
    if len(dup):
        row = out.iloc[int(dup[0]) + 1]
        raise TrainerError(
            f"{source}: {len(dup)} duplicate (series, date) rows, e.g. series "
            f"{row['series_id']} on {row[date].date()}"
        )
    gap = np.flatnonzero(same & (step != 1))
    if len(gap):
        n_series = len(np.unique(codes[gap]))
        raise TrainerError(
            f"{source}: {n_series} series have missing days (e.g. "
            f"{out['series_id'].iloc[int(gap[0])]}); the daily panel must be contiguous "
            "(daily_sales_features fills missing days)"
        )
    # Later calls (a backtest window, the calibration model) slice this panel by date or
    # series, which keeps it sorted, contiguous and typed: they skip the checks above.
    out.attrs[_PREPARED] = contract.name
    return out


def _id_codes(ids: pd.Series) -> np.ndarray:
    """Integer codes in the ids' text order (so sorting codes sorts by series_id)."""
    if isinstance(ids.dtype, pd.CategoricalDtype):
        return np.asarray(ids.cat.codes.to_numpy(), dtype=np.int64)
    codes, _ = pd.factorize(ids, sort=True)
    return np.asarray(codes, dtype=np.int64)


def _is_sorted(codes: np.ndarray, days: np.ndarray) -> bool:
    if len(codes) < 2:
        return True
    dc = np.diff(codes)
    return bool(((dc > 0) | ((dc == 0) & (np.diff(days) > 0))).all())


def series_state(panel: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Per series: key values, first/last date, and last non-null value of each known column.

    The forecaster keeps this to map future-file keys to series and to apply the ``last``
    fill rule.
    """
    date = contract.date_column
    grouped = panel.groupby("series_id", sort=True, observed=True)
    state = grouped[date].agg(first_date="min", last_date="max")
    for key in contract.series_keys:
        state[key] = grouped[key].last()
    for col in contract.known_columns + contract.static_columns:
        state[col.name] = grouped[col.name].last()  # GroupBy.last skips nulls
    state = state.reset_index()
    for name in state.columns:
        # One row per series: plain values (a compact read's categoricals would otherwise
        # reach the forecast table as enum types).
        if isinstance(state[name].dtype, pd.CategoricalDtype):
            state[name] = state[name].astype(object)
    return state
