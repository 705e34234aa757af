"""Feature code shared by training, backtesting and serving (one code path, no drift).

The clean panel (contract column names) becomes the long frame mlforecast expects:
``unique_id, ds, y`` plus static features (series keys and static columns, categorical when
they are strings) and dynamic features (known-in-advance columns). Observed-only columns
(weather, ...) are left out: their values for future days do not exist when forecasting.
Lags, rolling statistics and calendar features are computed by mlforecast from ``y`` and
``ds`` with the settings in :class:`trainer.config.FeatureConfig`.
"""

from __future__ import annotations

__all__ = [
    "ID",
    "TARGET",
    "TIME",
    "FeatureColumn",
    "FeatureSpec",
    "build_feature_spec",
    "build_future_frame",
    "generated_feature_names",
    "load_panel",
    "mlforecast_kwargs",
    "prepare_panel",
    "read_future_csv",
    "series_state",
    "to_model_frame",
]

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trainer.config import FeatureConfig
from trainer.contract import Contract, ContractColumn, parse_scalar
from trainer.errors import TrainerError

log = logging.getLogger(__name__)

ID, TIME, TARGET = "unique_id", "ds", "y"
SINGLE_SERIES_ID = "total"


@dataclass(frozen=True)
class FeatureColumn:
    """How one contract column enters the model."""

    source: str
    name: str
    role: str
    kind: str  # "category" or "numeric"
    categories: tuple[str, ...] = ()
    fill: str | None = None
    fallback: Any = None


@dataclass(frozen=True)
class FeatureSpec:
    """The model's input columns, their encodings, and what was left out and why."""

    static: tuple[FeatureColumn, ...]
    dynamic: tuple[FeatureColumn, ...]
    excluded: tuple[tuple[str, str], ...]
    features: FeatureConfig = field(default_factory=FeatureConfig)

    @property
    def static_names(self) -> list[str]:
        return [c.name for c in self.static]

    @property
    def dynamic_names(self) -> list[str]:
        return [c.name for c in self.dynamic]

    def to_dict(self) -> dict[str, Any]:
        return {
            "static": [_col_dict(c) for c in self.static],
            "dynamic": [_col_dict(c) for c in self.dynamic],
            "excluded": [{"column": c, "reason": r} for c, r in self.excluded],
            "features": {k: list(v) for k, v in asdict(self.features).items()},
            "generated": generated_feature_names(self.features),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        def col(d: dict[str, Any]) -> FeatureColumn:
            return FeatureColumn(**{**d, "categories": tuple(d.get("categories") or ())})

        return cls(
            static=tuple(col(d) for d in data["static"]),
            dynamic=tuple(col(d) for d in data["dynamic"]),
            excluded=tuple((d["column"], d["reason"]) for d in data["excluded"]),
            features=FeatureConfig(**{k: tuple(v) for k, v in data["features"].items()}),
        )


def _col_dict(col: FeatureColumn) -> dict[str, Any]:
    out = asdict(col)
    out["categories"] = list(col.categories)
    return out


def mlforecast_kwargs(cfg: FeatureConfig) -> dict[str, Any]:
    """Lag, rolling and calendar settings for ``MLForecast`` (the one place they are built)."""
    from mlforecast.lag_transforms import RollingMean, RollingStd

    # min_samples=1 (2 for std): a series with a few days of history still gets a level
    # feature instead of all-missing rolling statistics.
    rolling = [RollingMean(window_size=w, min_samples=1) for w in cfg.rolling_windows]
    rolling += [RollingStd(window_size=w, min_samples=2) for w in cfg.rolling_windows]
    return {
        "lags": [int(lag) for lag in cfg.lags],
        "lag_transforms": {int(lag): list(rolling) for lag in cfg.rolling_lags},
        "date_features": list(cfg.date_features),
    }


def generated_feature_names(cfg: FeatureConfig) -> list[str]:
    """The names mlforecast gives the lag / rolling / calendar features."""
    from mlforecast.core import TimeSeries

    return list(TimeSeries(freq="D", **mlforecast_kwargs(cfg)).features)


# --------------------------------------------------------------------------- panel


def _series_ids(df: pd.DataFrame, keys: Iterable[str]) -> pd.Series:
    keys = list(keys)
    if not keys:
        return pd.Series(SINGLE_SERIES_ID, index=df.index, dtype=object)
    parts = [df[k].map(_key_text) for k in keys]
    out = parts[0]
    for part in parts[1:]:
        out = out + "|" + part
    return out.astype(object)


def _key_text(value: Any) -> str:
    # The upstream SQL casts keys to STRING; integers must not pick up a ".0" on the way.
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _to_bool_float(values: pd.Series, where: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return pd.to_numeric(values, errors="coerce").astype(float)
    mapped = values.map(
        lambda v: np.nan if v is None or (isinstance(v, float) and np.isnan(v)) else v
    )
    mapped = mapped.map(
        lambda v: v if isinstance(v, float) else float(parse_scalar(str(v), "BOOL", where))
    )
    return mapped.astype(float)


def _typed(values: pd.Series, col: ContractColumn, where: str) -> pd.Series:
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
    if "series_id" in df.columns:
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
    out = out.sort_values(["series_id", contract.date_column], kind="stable")
    out = out.reset_index(drop=True)
    dup = out.duplicated(["series_id", contract.date_column])
    if dup.any():
        row = out.loc[dup].iloc[0]
        raise TrainerError(
            f"{source}: {int(dup.sum())} duplicate (series, date) rows, e.g. series "
            f"{row['series_id']} on {row[contract.date_column].date()}"
        )
    span = out.groupby("series_id", sort=False)[contract.date_column].agg(["min", "max", "size"])
    gaps = span[(span["max"] - span["min"]).dt.days + 1 != span["size"]]
    if len(gaps):
        raise TrainerError(
            f"{source}: {len(gaps)} series have missing days (e.g. {gaps.index[0]}); the daily "
            "panel must be contiguous (daily_sales_features fills missing days)"
        )
    return out


def series_state(panel: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Per series: key values, first/last date, and last non-null value of each known column.

    The forecaster keeps this to map future-file keys to series and to apply the ``last``
    fill rule.
    """
    date = contract.date_column
    grouped = panel.groupby("series_id", sort=True)
    state = grouped[date].agg(first_date="min", last_date="max")
    for key in contract.series_keys:
        state[key] = grouped[key].last()
    for col in contract.known_columns + contract.static_columns:
        state[col.name] = grouped[col.name].last()  # GroupBy.last skips nulls
    return state.reset_index()


# --------------------------------------------------------------------------- spec


def _mode(values: pd.Series) -> Any:
    values = values.dropna()
    if values.empty:
        return None
    mode = values.mode()
    out = mode.iloc[0]
    return out.item() if hasattr(out, "item") else out


def build_feature_spec(
    panel: pd.DataFrame, contract: Contract, features: FeatureConfig
) -> FeatureSpec:
    """Decide how each contract column enters the model (categories come from training data)."""
    reserved = {ID, TIME, TARGET, *generated_feature_names(features)}
    used: set[str] = set()

    def name_for(source: str) -> str:
        # Contract columns may be called "day" or "lag7"; prefix only on a clash so
        # feature importances stay readable.
        name = source if source not in reserved and source not in used else f"x_{source}"
        used.add(name)
        return name

    static: list[FeatureColumn] = []
    for key in contract.series_keys:
        cats = tuple(sorted({_key_text(v) for v in panel[key].dropna().unique()}))
        static.append(FeatureColumn(key, name_for(key), "key", "category", cats))
    for col in contract.static_columns:
        if col.type == "STRING":
            cats = tuple(sorted(str(v) for v in panel[col.name].dropna().unique()))
            static.append(FeatureColumn(col.name, name_for(col.name), "static", "category", cats))
        else:
            static.append(FeatureColumn(col.name, name_for(col.name), "static", "numeric"))
    dynamic: list[FeatureColumn] = []
    for col in contract.known_columns:
        kind = "category" if col.type == "STRING" else "numeric"
        cats = ()
        if kind == "category":
            cats = tuple(sorted(str(v) for v in panel[col.name].dropna().unique()))
        dynamic.append(
            FeatureColumn(
                source=col.name,
                name=name_for(col.name),
                role="known",
                kind=kind,
                categories=cats,
                fill=col.future_fill or "last",
                fallback=_mode(panel[col.name]),
            )
        )
    excluded = [
        (c.name, "observed only: its values for future days are unknown at forecast time")
        for c in contract.observed_columns
    ]
    return FeatureSpec(tuple(static), tuple(dynamic), tuple(excluded), features)


def _encode(values: pd.Series, col: FeatureColumn) -> pd.Series:
    if col.kind == "category":
        text = values.map(lambda v: None if v is None or v is pd.NA else _key_text(v))
        text = text.where(values.notna(), None)
        # Fixed categories: the same string gets the same code in training and serving.
        return pd.Series(pd.Categorical(text, categories=list(col.categories)), index=values.index)
    return pd.to_numeric(values, errors="coerce").astype(float)


def to_model_frame(panel: pd.DataFrame, contract: Contract, spec: FeatureSpec) -> pd.DataFrame:
    """The long frame mlforecast trains on: ``unique_id, ds, y`` + static + dynamic features."""
    frame = pd.DataFrame(
        {
            ID: panel["series_id"].to_numpy(),
            TIME: panel[contract.date_column].to_numpy(),
            TARGET: panel[contract.target].to_numpy(dtype=float),
        }
    )
    if spec.static:
        sources = list(dict.fromkeys(c.source for c in spec.static))
        # Static features must be constant per series; the latest value wins.
        last = panel.groupby("series_id", sort=False)[sources].transform("last")
        for col in spec.static:
            frame[col.name] = _encode(last[col.source].reset_index(drop=True), col)
    for col in spec.dynamic:
        frame[col.name] = _encode(panel[col.source].reset_index(drop=True), col)
    return frame


# --------------------------------------------------------------------------- future


def read_future_csv(uri: str, contract: Contract) -> pd.DataFrame:
    """Read and validate a future-covariates CSV.

    Columns: the date, the series keys (or ``series_id``), and any known columns; observed
    and static columns are accepted and ignored. Unknown columns, the target, unparsable
    values and duplicate (series, date) rows are errors naming the file, the row (file line
    number) and the problem. Blank cells in known columns count as missing and are filled.
    """
    from trainer.io import open_file

    try:
        with open_file(uri, "r") as handle:
            raw = pd.read_csv(handle, dtype=str, keep_default_na=False, na_values=[])
    except pd.errors.EmptyDataError:
        raise TrainerError(f"{uri}: the future file is empty") from None
    except pd.errors.ParserError as exc:
        raise TrainerError(f"{uri}: not a valid CSV: {exc}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    by_name = {c.name: c for c in contract.columns}
    if contract.target in raw.columns:
        raise TrainerError(
            f"{uri}: column '{contract.target}' is the target; a future file holds covariates only"
        )
    unknown = [c for c in raw.columns if c not in by_name and c != "series_id"]
    if unknown:
        raise TrainerError(f"{uri}: unknown columns {unknown} (not in contract '{contract.name}')")
    if contract.date_column not in raw.columns:
        raise TrainerError(f"{uri}: missing the date column '{contract.date_column}'")
    missing_keys = [k for k in contract.series_keys if k not in raw.columns]
    if missing_keys and "series_id" not in raw.columns:
        raise TrainerError(f"{uri}: missing series key columns {missing_keys}")
    out = pd.DataFrame(index=raw.index)
    keep = [contract.date_column, *contract.series_keys, *[c.name for c in contract.known_columns]]
    for name in raw.columns:
        if name != "series_id" and name not in keep:
            continue
        col = by_name.get(name) or ContractColumn("series_id", "STRING", "key")
        parsed: list[Any] = []
        for i, text in enumerate(raw[name].tolist()):
            if text.strip() == "":
                if col.role in ("date", "key"):
                    raise TrainerError(f"{uri}: row {i + 2}: column '{name}' is empty")
                parsed.append(None)
                continue
            parsed.append(
                parse_scalar(text, col.type, where=f"{uri}: row {i + 2}: column '{name}'")
            )
        out[name] = pd.Series(parsed, index=raw.index, dtype=object)
    out[contract.date_column] = pd.to_datetime(out[contract.date_column]).astype("datetime64[ns]")
    ident = ["series_id"] if "series_id" in out.columns else list(contract.series_keys)
    dup = out.duplicated([*ident, contract.date_column], keep=False)
    if dup.any():
        lines = [int(i) + 2 for i in np.flatnonzero(dup.to_numpy())[:4]]
        raise TrainerError(
            f"{uri}: rows {lines}: duplicate (series, {contract.date_column}) combinations"
        )
    return out.reset_index(drop=True)


def _attach_series_id(future: pd.DataFrame, state: pd.DataFrame, contract: Contract) -> pd.Series:
    if "series_id" in future.columns:
        return future["series_id"].astype(str)
    if not contract.series_keys:
        return pd.Series(SINGLE_SERIES_ID, index=future.index, dtype=object)
    # Join on normalised key text so 7 (INT64) and "7" (CSV text) name the same series.
    lookup = {
        tuple(_key_text(v) for v in row): sid
        for sid, *row in state[["series_id", *contract.series_keys]].itertuples(index=False)
    }
    keys = future[list(contract.series_keys)].map(_key_text).itertuples(index=False)
    return pd.Series([lookup.get(tuple(k)) for k in keys], index=future.index, dtype=object)


def build_future_frame(
    spec: FeatureSpec,
    contract: Contract,
    state: pd.DataFrame,
    horizon: int,
    future: pd.DataFrame | None = None,
    *,
    source: str = "future file",
) -> tuple[pd.DataFrame | None, dict[str, int], int]:
    """Dynamic features for the ``horizon`` days after each series' last date.

    Values come from ``future`` (contract column names, one row per series and day) where
    given; every missing (series, day, column) value is filled by the column's ``future_fill``
    rule so the model never sees a missing known feature.

    Returns ``(X_df or None when the model has no dynamic features, filled counts per
    column, number of ignored future rows outside the forecast window)``.
    """
    steps = np.arange(1, horizon + 1)
    n = len(state)
    grid = pd.DataFrame(
        {
            "series_id": np.repeat(state["series_id"].to_numpy(), horizon),
            contract.date_column: (
                np.repeat(pd.DatetimeIndex(state["last_date"]).to_numpy(), horizon)
                + np.tile(pd.to_timedelta(steps, unit="D").to_numpy(), n)
            ),
        }
    )
    ignored = 0
    if future is not None and len(future):
        future = future.copy()
        had_series_id = "series_id" in future.columns
        future["series_id"] = _attach_series_id(future, state, contract)
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
        ignored = len(future) - int(
            future.merge(grid, on=["series_id", contract.date_column], how="inner").shape[0]
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
        filled[col.source] = int(missing.sum())
        if missing.any():
            values = values.where(~missing, _fill_values(col, contract, per_row_state, missing))
        out[col.name] = _encode(values, col)
        if col.kind == "numeric":
            out[col.name] = out[col.name].fillna(0.0)
    return out, filled, ignored


def _fill_values(
    col: FeatureColumn, contract: Contract, per_row_state: pd.DataFrame, missing: pd.Series
) -> pd.Series:
    rule = col.fill or "last"
    if rule == "last":
        last = per_row_state[col.source].reset_index(drop=True).astype(object)
        # A series that never had a value falls back to the column's most common value.
        return last.where(last.notna(), col.fallback)
    constant = contract.column(col.source).fill_value()
    if isinstance(constant, bool) and col.kind == "numeric":
        constant = float(constant)
    return pd.Series([constant] * len(missing), dtype=object)


def load_panel(uri: str, contract: Contract, cutoff: Any) -> pd.DataFrame:
    """Read the clean panel from any table URI, keeping only days on or before ``cutoff``."""
    from trainer.io import read_table

    raw = read_table(uri, date_column=contract.date_column, cutoff=cutoff)
    if raw.empty:
        raise TrainerError(f"{uri}: no rows on or before the cut-off {cutoff}")
    return prepare_panel(raw, contract, source=uri)
