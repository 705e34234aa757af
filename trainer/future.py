"""The forecast days' inputs: known-in-advance values from a future file, filled where missing.

A future file (or a request's ``future`` rows) names series by their keys or ``series_id`` and
gives known columns for some days. :func:`parse_future_csv` checks one read as text;
:func:`build_future_frame` lays the forecast days out for every series, fills what nobody gave
by each column's ``future_fill`` rule and adds the derived covariate features.
"""

from __future__ import annotations

__all__ = ["build_future_frame", "future_series_ids", "parse_future_csv"]

from typing import Any

import numpy as np
import pandas as pd

from sf_contract import SINGLE_SERIES_ID, Column, Contract, ScalarError, key_text, parse_scalar
from trainer.climatology import climatology_fill, recent_column
from trainer.columns import ID, TIME
from trainer.covariates import UNTIL_CAP, add_derived_features
from trainer.errors import TrainerError
from trainer.feature_spec import FeatureColumn, FeatureSpec, encode

# How a future file may name a series instead of giving its keys.
_SERIES_ID = Column("series_id", "STRING", "key")


def parse_future_csv(raw: pd.DataFrame, contract: Contract, source: str) -> pd.DataFrame:
    """Validate a future-covariates CSV read as text (every cell a string).

    Columns: the date, the series keys (or ``series_id``), any known and forecast columns,
    and the availability column (a day marked unavailable is forecast as 0); observed and
    static columns are accepted and ignored. Unknown columns, the target, unparsable
    values and duplicate (series, date) rows are errors naming ``source``, the row (file line
    number) and the problem. Blank cells in known columns count as missing and are filled.
    """
    raw = raw.copy()
    raw.columns = [str(c).strip() for c in raw.columns]
    by_name = {c.name: c for c in contract.columns}
    if contract.target in raw.columns:
        raise TrainerError(
            f"{source}: column '{contract.target}' is the target; "
            "a future file holds covariates only"
        )
    unknown = [c for c in raw.columns if c not in by_name and c != "series_id"]
    if unknown:
        raise TrainerError(
            f"{source}: unknown columns {unknown} (not in contract '{contract.name}')"
        )
    if contract.date_column not in raw.columns:
        raise TrainerError(f"{source}: missing the date column '{contract.date_column}'")
    missing_keys = [k for k in contract.series_keys if k not in raw.columns]
    if missing_keys and "series_id" not in raw.columns:
        raise TrainerError(f"{source}: missing series key columns {missing_keys}")
    out = pd.DataFrame(index=raw.index)
    keep = [contract.date_column, *contract.series_keys, *[c.name for c in contract.future_columns]]
    if contract.availability_column is not None:
        keep.append(contract.availability_column.name)
    for name in raw.columns:
        if name != "series_id" and name not in keep:
            continue
        col = by_name.get(name) or _SERIES_ID
        parsed: list[Any] = []
        for i, text in enumerate(raw[name].tolist()):
            where = f"{source}: row {i + 2}: column '{name}'"
            if text.strip() == "":
                if col.role in ("date", "key"):
                    raise TrainerError(f"{where} is empty")
                parsed.append(None)
                continue
            try:
                parsed.append(parse_scalar(text, col.type, where=where))
            except ScalarError as exc:
                raise TrainerError(str(exc)) from None
        out[name] = pd.Series(parsed, index=raw.index, dtype=object)
    out[contract.date_column] = pd.to_datetime(out[contract.date_column]).astype("datetime64[ns]")
    ident = ["series_id"] if "series_id" in out.columns else list(contract.series_keys)
    dup = out.duplicated([*ident, contract.date_column], keep=False)
    if dup.any():
        lines = [int(i) + 2 for i in np.flatnonzero(dup.to_numpy())[:4]]
        raise TrainerError(
            f"{source}: rows {lines}: duplicate (series, {contract.date_column}) combinations"
        )
    return out.reset_index(drop=True)


def future_series_ids(future: pd.DataFrame, state: pd.DataFrame, contract: Contract) -> pd.Series:
    """The ``series_id`` each future row names (None where its keys name no series of ``state``)."""
    if "series_id" in future.columns:
        return future["series_id"].astype(str)
    if not contract.series_keys:
        return pd.Series(SINGLE_SERIES_ID, index=future.index, dtype=object)
    # Join on normalised key text so 7 (INT64) and "7" (CSV text) name the same series.
    lookup = {
        tuple(key_text(v) for v in row): sid
        for sid, *row in state[["series_id", *contract.series_keys]].itertuples(index=False)
    }
    keys = future[list(contract.series_keys)].map(key_text).itertuples(index=False)
    return pd.Series([lookup.get(tuple(k)) for k in keys], index=future.index, dtype=object)


def build_future_frame(
    spec: FeatureSpec,
    contract: Contract,
    state: pd.DataFrame,
    horizon: int,
    future: pd.DataFrame | None = None,
    *,
    source: str = "future file",
    tail: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame | None, dict[str, int], int]:
    """Dynamic features for the ``horizon`` days after each series' last date.

    Values come from ``future`` (contract column names, one row per series and day) where
    given; every missing (series, day, column) value is filled by the column's ``future_fill``
    rule so the model never sees a missing known feature. Derived features (days since /
    until an event, value vs its trailing mean) are computed over ``tail`` (the end of
    history, :func:`trainer.covariates.covariate_tail`) followed by the forecast days and a
    few days after them (known values or fill rules), so the first ``h`` days of a longer
    forecast are exactly a forecast of ``h`` days.

    Returns ``(X_df or None when the model has no dynamic features, filled counts per
    column (forecast days only), number of ignored future rows outside the forecast
    window)``.
    """
    lookahead = UNTIL_CAP if any(d.kind == "until" for d in spec.derived) else 0
    span = horizon + lookahead
    steps = np.arange(1, span + 1)
    n = len(state)
    grid = pd.DataFrame(
        {
            "series_id": np.repeat(state["series_id"].to_numpy(), span),
            contract.date_column: (
                np.repeat(pd.DatetimeIndex(state["last_date"]).to_numpy(), span)
                + np.tile(pd.to_timedelta(steps, unit="D").to_numpy(), n)
            ),
        }
    )
    in_window = np.tile(steps <= horizon, n)
    ignored = 0
    if future is not None and len(future):
        future = future.copy()
        had_series_id = "series_id" in future.columns
        future["series_id"] = future_series_ids(future, state, contract)
        unknown = future["series_id"].isna() | ~future["series_id"].isin(state["series_id"])
        if unknown.any():
            first = future.loc[unknown].iloc[0]
            label = (
                first["series_id"] if had_series_id else {k: first[k] for k in contract.series_keys}
            )
            raise TrainerError(
                f"{source}: {int(unknown.sum())} rows name series the model does not know, "
                f"e.g. {label}"
            )
        cols = ["series_id", contract.date_column] + [
            c.source for c in spec.dynamic if c.source in future.columns
        ]
        merged = grid.merge(future[cols], on=["series_id", contract.date_column], how="left")
        window = grid[in_window]
        ignored = len(future) - int(
            future.merge(window, on=["series_id", contract.date_column], how="inner").shape[0]
        )
    else:
        merged = grid
    if not spec.dynamic:
        return None, {}, ignored
    filled: dict[str, int] = {}
    out = pd.DataFrame(
        {ID: merged["series_id"].to_numpy(), TIME: merged[contract.date_column].to_numpy()}
    )
    per_row_state = state.set_index("series_id").reindex(merged["series_id"])
    for col in spec.dynamic:
        values = (
            merged[col.source].astype(object)
            if col.source in merged.columns
            else pd.Series([None] * len(merged), dtype=object)
        )
        values = values.reset_index(drop=True)
        missing = values.isna()
        filled[col.source] = int((missing.to_numpy() & in_window).sum())
        if missing.any():
            days = merged[contract.date_column].reset_index(drop=True)
            values = values.where(
                ~missing, _fill_values(col, contract, per_row_state, missing, days)
            )
        out[col.name] = encode(values, col)
        if col.kind == "numeric":
            out[col.name] = out[col.name].fillna(0.0)
    if spec.derived:
        out = _with_derived(out, spec, tail)
    out = out[in_window].reset_index(drop=True)
    return out, filled, ignored


def _with_derived(out: pd.DataFrame, spec: FeatureSpec, tail: pd.DataFrame | None) -> pd.DataFrame:
    """Derived features of the forecast rows, computed after each series' history tail."""
    sources = sorted({d.source for d in spec.derived})
    parts = [out[[ID, TIME, *sources]].assign(_future=True)]
    if tail is not None and len(tail):
        past = tail[tail[ID].isin(out[ID].unique())]
        parts.insert(0, past[[ID, TIME, *sources]].assign(_future=False))
    timeline = pd.concat(parts, ignore_index=True)
    timeline = timeline.sort_values([ID, TIME], kind="stable").reset_index(drop=True)
    add_derived_features(timeline, spec)
    fut = timeline[timeline["_future"].to_numpy()]
    keyed = fut.set_index([ID, TIME])[spec.derived_names]
    values = keyed.reindex(pd.MultiIndex.from_arrays([out[ID], out[TIME]]))
    out = out.copy()
    for name in spec.derived_names:
        out[name] = values[name].to_numpy()
    return out


def _fill_values(
    col: FeatureColumn,
    contract: Contract,
    per_row_state: pd.DataFrame,
    missing: pd.Series,
    days: pd.Series,
) -> pd.Series:
    """The ``future_fill`` value of each missing cell (the same rules as ``features.sql``)."""
    rule = col.fill or "last"
    if rule == "climatology":
        per_row = per_row_state.reset_index(drop=True)
        recent = recent_column(col.source)
        blank = pd.Series(np.nan, index=per_row.index)
        return climatology_fill(
            col.profile,
            per_row[recent] if recent in per_row.columns else blank,
            per_row["last_date"],
            days,
            float(col.fallback if col.fallback is not None else 0.0),
        )
    if rule == "weekend":
        weekend = pd.DatetimeIndex(days).dayofweek >= 5
        return pd.Series(weekend.astype(float) if col.kind == "numeric" else weekend, dtype=object)
    if rule == "last":
        last = per_row_state[col.source].reset_index(drop=True).astype(object)
        # A series that never had a value falls back to the column's most common value.
        return last.where(last.notna(), col.fallback)
    constant = contract.column(col.source).fill_value()
    if isinstance(constant, bool) and col.kind == "numeric":
        constant = float(constant)
    return pd.Series([constant] * len(missing), dtype=object)
