"""The clean daily panel: validated, typed, sorted by series and day, and each series' state.

The panel is ``daily_sales_features`` as the warehouse wrote it: one row per series and day,
``series_id`` plus the contract's columns. :func:`prepare_panel` checks it and normalises the
types once; everything downstream (the feature frame, backtest windows, the forecaster's state)
starts from its output.

Two kinds of filled day: ``is_gap_filled`` (no row at all: target 0, read as zero sales) and
``is_unknown`` (the day's row was quarantined and never re-delivered: target NULL). An unknown
day's sales are not known, so they are neither zero nor a training target: the prepared panel
carries ``is_unknown`` and a target filled by :func:`fill_unknown_target` (for features only),
and the fitting, the metrics and the interval calibration leave those rows out. A day the
contract's availability column marks unavailable (closed, out of stock: :mod:`trainer.availability`)
is flagged the same way: its sales say nothing about demand.
"""

from __future__ import annotations

__all__ = [
    "UNKNOWN",
    "fill_unknown_target",
    "known_rows",
    "panel_columns",
    "prepare_panel",
    "series_state",
]

import logging
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
from sf_contract.scalars import check_key_part
from trainer.availability import unavailable
from trainer.climatology import recent_column, recent_means
from trainer.errors import TrainerError

log = logging.getLogger(__name__)

# Set on a prepared panel's attrs (the contract's name): slices of it skip the checks.
_PREPARED = "trainer_prepared_panel"
# The panel's flag of days whose sales are unknown (sf_contract.PANEL_COLUMNS).
UNKNOWN = "is_unknown"


def panel_columns(contract: Contract) -> list[str]:
    """The columns the trainer reads from a panel (observed-only ones are never read)."""
    wanted = ["series_id", contract.date_column, contract.target, *contract.series_keys]
    wanted += [c.name for c in contract.future_columns + contract.static_columns]
    if contract.availability_column is not None:
        wanted.append(contract.availability_column.name)
    return [*dict.fromkeys(wanted), "is_gap_filled", UNKNOWN]


def _series_ids(df: pd.DataFrame, keys: Iterable[str]) -> pd.Series:
    """:func:`sf_contract.series_id` of every row, one column at a time."""
    keys = list(keys)
    if not keys:
        return pd.Series(SINGLE_SERIES_ID, index=df.index, dtype=object)
    parts = [df[k].map(key_text) for k in keys]
    for key, part in zip(keys, parts, strict=True):
        hits = part[part.str.contains(KEY_SEPARATOR, regex=False)]
        if len(hits):
            # Two key tuples joined by the separator could share one id (the SQL rejects these
            # rows at validation; a panel from elsewhere gets the same rule here).
            try:
                check_key_part(str(hits.iloc[0]))
            except ScalarError as exc:
                raise TrainerError(f"key column {key!r}: {exc}") from None
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
    column (float or string), ``is_gap_filled`` when the input has it, and ``is_unknown``
    (bool; False everywhere when the input lacks it: older tables, plain files). Observed-only
    columns are dropped here: nothing downstream may use them.

    A NULL target is accepted only on ``is_unknown`` rows. The target of every ``is_unknown``
    row (NULL or not: the flag wins) is replaced by :func:`fill_unknown_target`, so every
    consumer sees a complete target and reads ``is_unknown`` to keep those days out of
    losses and scores.
    """
    if df is None or len(df) == 0:
        raise TrainerError(f"{source}: no rows (is the cut-off before the first date?)")
    if df.attrs.get(_PREPARED) == contract.name and "series_id" in df.columns:
        return df
    needed = [contract.date_column, contract.target, *contract.series_keys]
    needed += [c.name for c in contract.future_columns + contract.static_columns]
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
    if UNKNOWN in df.columns:
        flags = _to_bool_float(df[UNKNOWN], f"{source}: column '{UNKNOWN}'")
        out[UNKNOWN] = flags.fillna(0.0).to_numpy() > 0.5
    else:
        out[UNKNOWN] = False
    available = contract.availability_column
    closed = 0
    if available is not None and available.name in df.columns:
        # A panel without the column (an older table, a file that leaves it out) is available.
        shut = unavailable(df[available.name], available, source) & ~out[UNKNOWN].to_numpy()
        closed = int(shut.sum())
        out[UNKNOWN] = out[UNKNOWN].to_numpy() | shut
    target = pd.to_numeric(df[contract.target], errors="coerce")
    bad = target.isna().to_numpy() & ~out[UNKNOWN].to_numpy()
    if bad.any():
        first = out.loc[bad].iloc[0]
        raise TrainerError(
            f"{source}: target '{contract.target}' has {int(bad.sum())} null or "
            f"non-numeric values on rows not flagged {UNKNOWN} (first: series "
            f"{first['series_id']} on {first[contract.date_column].date()})"
        )
    out[contract.target] = target.astype(float)
    for col in contract.future_columns + contract.static_columns:
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
    unknown = out[UNKNOWN].to_numpy()
    if unknown.any():
        out[contract.target] = fill_unknown_target(
            out[contract.target].to_numpy(dtype=np.float64), unknown, codes
        )
        log.info(
            "%s: %d unknown days (%d quarantined, %d unavailable: closed or out of stock) are "
            "no training targets or actuals; filled for features",
            source,
            unknown.sum(),
            unknown.sum() - closed,
            closed,
        )
    # Later calls (a backtest window, the calibration model) slice this panel by date or
    # series, which keeps it sorted, contiguous and typed: they skip the checks above.
    out.attrs[_PREPARED] = contract.name
    return out


def fill_unknown_target(target: np.ndarray, unknown: np.ndarray, series: np.ndarray) -> np.ndarray:
    """The target with every unknown day filled: the one fill rule, for features only.

    Rows are sorted by series and day, one row per consecutive day (a prepared panel);
    ``series`` holds each row's series (ids or codes), ``unknown`` the ``is_unknown`` flags.
    An unknown day's value becomes, within its own series:

    1. the value 7 days earlier, if that day is known (same weekday, last week);
    2. else the last known value before it;
    3. else the first known value after it (a series whose first days are unknown);
    4. else 0.0 (no day of the series is known; a warning is logged).

    Only known values are ever copied (a fill never feeds another fill), and a known value
    is a known value whatever produced it (a gap-filled 0 counts). Lags, rolling means,
    scalers and baselines read the result; the rows stay flagged ``is_unknown``, so no loss
    or score ever treats a filled value as an actual. Rule 3 reads a later day: a backtest
    window cut before a series' first known day sees that day's value in its leading fills.
    """
    y = np.array(target, dtype=np.float64, copy=True)
    unknown = np.asarray(unknown, dtype=bool)
    if len(y) != len(unknown) or len(y) != len(series):
        raise ValueError("target, unknown and series differ in length")
    if not unknown.any():
        return y
    series = np.asarray(series)
    n = len(y)
    pos = np.arange(n, dtype=np.int64)
    change = np.flatnonzero(series[1:] != series[:-1]) + 1
    bounds = np.concatenate([[0], change, [n]])
    sizes = np.diff(bounds)
    start = np.repeat(bounds[:-1], sizes)
    end = np.repeat(bounds[1:], sizes)  # exclusive
    known = ~unknown
    rows = np.flatnonzero(unknown)
    # Positions only grow, so a running max / min over the whole array finds the nearest known
    # row before / after; it belongs to the same series iff it lies within the series' bounds.
    before = np.maximum.accumulate(np.where(known, pos, -1))[rows]
    after = np.minimum.accumulate(np.where(known, pos, n)[::-1])[::-1][rows]
    week = rows - 7
    week_ok = (week >= start[rows]) & known[np.maximum(week, 0)]
    before_ok = before >= start[rows]
    after_ok = after < end[rows]
    source = np.where(week_ok, week, np.where(before_ok, before, np.where(after_ok, after, -1)))
    hopeless = source < 0
    y[rows] = np.where(hopeless, 0.0, y[np.maximum(source, 0)])
    if hopeless.any():
        n_series = len(np.unique(start[rows[hopeless]]))
        log.warning(
            "%d series have no known day at all; their %d unknown days are filled with 0",
            n_series,
            int(hopeless.sum()),
        )
    return y


def known_rows(
    frame: pd.DataFrame, panel: pd.DataFrame, contract: Contract, *, date_column: str | None = None
) -> pd.DataFrame:
    """The rows of ``frame`` (``series_id`` + a date column) whose day is not an unknown day of
    ``panel``: what scores and calibration residuals may use as actuals.

    ``date_column`` names the frame's date column (default: the contract's).
    """
    date = contract.date_column
    if UNKNOWN not in panel.columns or frame.empty:
        return frame
    flags = panel.loc[panel[UNKNOWN].to_numpy(dtype=bool), ["series_id", date]]
    if flags.empty:
        return frame
    col = date_column or date
    left = pd.DataFrame(
        {
            "series_id": frame["series_id"].astype(str).to_numpy(),
            "day": pd.to_datetime(frame[col]).to_numpy(dtype="datetime64[ns]"),
        }
    )
    right = pd.DataFrame(
        {
            "series_id": flags["series_id"].astype(str).to_numpy(),
            "day": flags[date].to_numpy(dtype="datetime64[ns]"),
            "hit": True,
        }
    )
    # A left merge keeps the frame's row order; the panel has one row per series and day.
    drop = left.merge(right, on=["series_id", "day"], how="left")["hit"].notna().to_numpy()
    return frame[~drop] if drop.any() else frame


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
    """Per series: key values, first/last date, the last non-null value of each known and
    forecast column, and the recent mean of a forecast column filled by climatology.

    The forecaster keeps this to map future-file keys to series and to apply the ``last``
    fill rule.
    """
    date = contract.date_column
    grouped = panel.groupby("series_id", sort=True, observed=True)
    state = grouped[date].agg(first_date="min", last_date="max")
    for key in contract.series_keys:
        state[key] = grouped[key].last()
    for col in contract.future_columns + contract.static_columns:
        state[col.name] = grouped[col.name].last()  # GroupBy.last skips nulls
    for col in contract.forecast_columns:
        if col.future_fill == "climatology":
            state[recent_column(col.name)] = recent_means(panel, date, col.name)
    state = state.reset_index()
    for name in state.columns:
        # One row per series: plain values (a compact read's categoricals would otherwise
        # reach the forecast table as enum types).
        if isinstance(state[name].dtype, pd.CategoricalDtype):
            state[name] = state[name].astype(object)
    return state
