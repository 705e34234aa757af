"""Feature code shared by training, backtesting and serving (one code path, no drift).

The clean panel (contract column names) becomes the long frame mlforecast expects:
``unique_id, ds, y`` plus static features (series keys and static columns, categorical when
they are strings) and dynamic features (known-in-advance columns). Observed-only columns
(weather, ...) are left out: their values for future days do not exist when forecasting.
Lags, rolling statistics and calendar features are computed by mlforecast from ``y`` and
``ds`` with the settings in :class:`trainer.config.FeatureConfig`, on a target divided by each
series' level and weekday profile (:class:`SeasonalScaler`). Known-in-advance columns also give
derived features (days since / until an event flag, a price relative to its recent mean):
:func:`add_derived_features` computes them the same way for training rows and forecast days.

Nothing here reads a target value after a row's own day: lags start at 1, the scaler is fit
on the training rows only, and derived features read known-in-advance columns only.
"""

from __future__ import annotations

__all__ = [
    "ID",
    "TARGET",
    "TIME",
    "FeatureColumn",
    "DerivedFeature",
    "FeatureSpec",
    "SeasonalScaler",
    "add_derived_features",
    "build_feature_spec",
    "covariate_tail",
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
from trainer.errors import NoRowsError, TrainerError

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
class DerivedFeature:
    """A feature computed from one known-in-advance column (``source``: its model name).

    ``kind``: ``since`` (days since the flag was last on, 0 = today, capped at
    :data:`SINCE_CAP`), ``until`` (days until it is next on, capped at :data:`UNTIL_CAP`;
    unknown when the known values end first), ``share28`` (share of the previous 28 days the
    flag was on: how much of the target's rolling means a promotion inflated)
    or ``rel`` (the value over its trailing :data:`REL_WINDOW`-day mean).
    """

    name: str
    source: str
    kind: str


# Derived covariate features look this many days back / ahead.
SINCE_CAP = 28
UNTIL_CAP = 7
REL_WINDOW = 28
TAIL_DAYS = REL_WINDOW
# A flag counts as an event (gets since/until features) when it is on for at most this share
# of training days: promotions and holidays qualify, is_weekend does not.
EVENT_MAX_RATE = 0.2


@dataclass(frozen=True)
class FeatureSpec:
    """The model's input columns, their encodings, and what was left out and why."""

    static: tuple[FeatureColumn, ...]
    dynamic: tuple[FeatureColumn, ...]
    excluded: tuple[tuple[str, str], ...]
    features: FeatureConfig = field(default_factory=FeatureConfig)
    derived: tuple[DerivedFeature, ...] = ()

    @property
    def static_names(self) -> list[str]:
        return [c.name for c in self.static]

    @property
    def dynamic_names(self) -> list[str]:
        return [c.name for c in self.dynamic]

    @property
    def derived_names(self) -> list[str]:
        return [d.name for d in self.derived]

    def to_dict(self) -> dict[str, Any]:
        return {
            "static": [_col_dict(c) for c in self.static],
            "dynamic": [_col_dict(c) for c in self.dynamic],
            "excluded": [{"column": c, "reason": r} for c, r in self.excluded],
            "features": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.features).items()
            },
            "generated": generated_feature_names(self.features),
            "derived": [asdict(d) for d in self.derived],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        def col(d: dict[str, Any]) -> FeatureColumn:
            return FeatureColumn(**{**d, "categories": tuple(d.get("categories") or ())})

        from trainer.config import TrainerConfig

        # A spec stored before a feature setting existed meant that setting's old value.
        features = TrainerConfig.from_dict({"features": data["features"]}).features
        return cls(
            static=tuple(col(d) for d in data["static"]),
            dynamic=tuple(col(d) for d in data["dynamic"]),
            excluded=tuple((d["column"], d["reason"]) for d in data["excluded"]),
            features=features,
            derived=tuple(DerivedFeature(**d) for d in data.get("derived") or ()),
        )


def _col_dict(col: FeatureColumn) -> dict[str, Any]:
    out = asdict(col)
    out["categories"] = list(col.categories)
    return out


def mlforecast_kwargs(cfg: FeatureConfig) -> dict[str, Any]:
    """Lag, rolling, calendar and target-scaling settings for ``MLForecast`` (built only here)."""
    from mlforecast.lag_transforms import (
        Combine,
        Offset,
        RollingMean,
        RollingStd,
        SeasonalRollingMean,
    )

    from trainer.config import YEAR

    # min_samples=1 (2 for std): a series with a few days of history still gets a level
    # feature instead of all-missing rolling statistics.
    rolling: list[Any] = [RollingMean(window_size=w, min_samples=1) for w in cfg.rolling_windows]
    if cfg.rolling_std:
        rolling += [RollingStd(window_size=w, min_samples=2) for w in cfg.rolling_windows]
    lag_transforms: dict[int, list[Any]] = {int(lag): list(rolling) for lag in cfg.rolling_lags}
    if cfg.seasonal_windows:
        # Same weekday over the last w weeks: the mean of lags 7, 14, ..., 7w.
        seasonal = [
            SeasonalRollingMean(season_length=7, window_size=int(w), min_samples=1)
            for w in cfg.seasonal_windows
        ]
        lag_transforms[7] = [*lag_transforms.get(7, []), *seasonal]
    lags = [int(lag) for lag in cfg.lags]
    if cfg.yearly:
        # Lag YEAR-14, window 28: the 4 weeks centred on the same day last year; the ratio to
        # the 4 weeks two weeks before that says how last year's level moved at this time.
        around = RollingMean(window_size=28, min_samples=14)
        change = Combine(
            RollingMean(window_size=28, min_samples=14),
            Offset(RollingMean(window_size=28, min_samples=14), 14),
            safe_ratio,
        )
        lag_transforms[YEAR - 14] = [*lag_transforms.get(YEAR - 14, []), around, change]
        if YEAR not in lags:
            lags.append(YEAR)
    out: dict[str, Any] = {
        "lags": lags,
        "lag_transforms": lag_transforms,
        "date_features": list(cfg.date_features),
    }
    if cfg.target_scaling != "none":
        out["target_transforms"] = [
            SeasonalScaler(window=cfg.scaling_window, weekly=cfg.target_scaling == "seasonal")
        ]
    return out


def safe_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` where ``b > 0``, NaN elsewhere (a missing value, not an infinite one)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def generated_feature_names(cfg: FeatureConfig) -> list[str]:
    """The names mlforecast gives the lag / rolling / calendar features."""
    from mlforecast.core import TimeSeries

    kwargs = mlforecast_kwargs(cfg)
    kwargs.pop("target_transforms", None)
    return list(TimeSeries(freq="D", **kwargs).features)


def _base_target_transform() -> type:
    from mlforecast.target_transforms import BaseTargetTransform

    return BaseTargetTransform


class SeasonalScaler(_base_target_transform()):  # type: ignore[misc]
    """mlforecast target transform: divide each series by its level x weekday profile.

    Fitted on the training rows only (the last ``window`` days of each series, 0 = all):
    ``level`` = mean target, floored at ``floor`` so near-empty series are not blown up;
    ``profile[d]`` = mean on weekday ``d`` / level, shrunk towards the panel's profile by
    ``kappa`` units of sales (a series selling 3 a day has a noisy profile; one selling 300
    has its own). Trees then learn dynamics shared across series of any size, and an effect
    seen on some weekdays only (a month that just started lower) carries to the others.
    Forecasts are multiplied back by the same numbers; new actuals (``update``) are divided by
    them, so a model moved forward with new history keeps its scale.
    """

    def __init__(self, window: int = 364, weekly: bool = True, kappa: float = 100.0,
                 floor: float = 1.0, log: bool = False) -> None:  # fmt: skip
        self.window = int(window)
        self.weekly = bool(weekly)
        self.kappa = float(kappa)
        self.floor = float(floor)
        self.log = bool(log)

    # mlforecast's BaseTargetTransform protocol ------------------------------------------
    def set_column_names(self, id_col: str, time_col: str, target_col: str) -> None:
        self.id_col, self.time_col, self.target_col = id_col, time_col, target_col

    @staticmethod
    def stack(transforms: Any) -> Any:
        return transforms[0]

    def fit_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        if not getattr(self, "frozen_", False):
            self._fit_stats(df)
        return self._divide(df)

    def prefit(self, df: pd.DataFrame, id_col: str = ID, time_col: str = TIME,
               target_col: str = TARGET) -> SeasonalScaler:  # fmt: skip
        """Fit on ``df`` now and keep these numbers when mlforecast later calls fit_transform.

        Lets the trees learn from a window or a sample of the panel while every series keeps
        the scale of its own full recent history.
        """
        self.set_column_names(id_col, time_col, target_col)
        self._fit_stats(df)
        self.frozen_ = True
        return self

    def _fit_stats(self, df: pd.DataFrame) -> None:
        codes, uniques = pd.factorize(df[self.id_col], sort=False)
        times = df[self.time_col].to_numpy(dtype="datetime64[ns]")
        y = df[self.target_col].to_numpy(dtype=np.float64)
        n = len(uniques)
        last = pd.Series(times).groupby(codes).max().to_numpy(dtype="datetime64[ns]")
        keep = np.ones(len(df), dtype=bool)
        if self.window > 0:
            keep = (last[codes] - times) < np.timedelta64(self.window, "D")
        dow = ((times.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(np.int64)
        c, d, v = codes[keep], dow[keep], np.nan_to_num(y[keep])
        sums = np.zeros((n, 7))
        counts = np.zeros((n, 7))
        np.add.at(sums, (c, d), v)
        np.add.at(counts, (c, d), 1.0)
        level = sums.sum(axis=1) / np.maximum(counts.sum(axis=1), 1.0)
        profile = np.ones((n, 7))
        if self.weekly:
            panel = sums.sum(axis=0) / np.maximum(counts.sum(axis=0), 1.0)
            panel = panel / panel.mean() if panel.mean() > 0 else np.ones(7)
            panel = np.where(counts.sum(axis=0) > 0, panel, 1.0)
            weight = counts * level[:, None]  # expected units sold on that weekday
            own = sums / np.maximum(weight, 1e-12)
            profile = (weight * own + self.kappa * panel[None, :]) / (weight + self.kappa)
            profile = profile / profile.mean(axis=1, keepdims=True)
        self.ids_ = pd.Index(np.asarray(uniques, dtype=object).astype(str), dtype=object)
        self.level_ = np.maximum(level, self.floor)
        self.profile_ = profile

    def update(self, df: pd.DataFrame) -> pd.DataFrame:
        return self._divide(df)

    def inverse_transform(self, df: pd.DataFrame) -> pd.DataFrame:
        scale = self.scale(df[self.id_col], df[self.time_col])
        out = df.copy(deep=False)
        for col in df.columns:
            if col not in (self.id_col, self.time_col):
                values = df[col].to_numpy(dtype=np.float64)
                if getattr(self, "log", False):
                    values = np.expm1(values)
                out[col] = values * scale
        return out

    # helpers ----------------------------------------------------------------------------
    def scale(self, ids: Any, times: Any) -> np.ndarray:
        """The divisor of each (series, day); 1.0 for a series the scaler never saw."""
        idx = self.ids_.get_indexer(pd.Index(ids))
        days = np.asarray(times, dtype="datetime64[D]").astype(np.int64)
        dow = (days + 3) % 7
        known = idx >= 0
        out = np.ones(len(idx))
        out[known] = self.level_[idx[known]] * self.profile_[idx[known], dow[known]]
        return out

    def _divide(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy(deep=False)
        scale = self.scale(df[self.id_col], df[self.time_col])
        values = df[self.target_col].to_numpy(dtype=np.float64) / scale
        if getattr(self, "log", False):
            # log1p of a value that is ~1 on a typical day: multiplicative effects (promotion
            # lift, a month's level) become additive, and the forecast is a median, which is
            # what minimises absolute error (WAPE).
            values = np.log1p(np.maximum(values, 0.0))
        out[self.target_col] = values
        return out


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


_PREPARED = "trainer_prepared_panel"


def _id_codes(ids: pd.Series) -> np.ndarray:
    """Integer codes in the ids' text order (so sorting codes sorts by series_id)."""
    if isinstance(ids.dtype, pd.CategoricalDtype):
        return ids.cat.codes.to_numpy().astype(np.int64)
    codes, _ = pd.factorize(ids, sort=True)
    return codes.astype(np.int64)


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
    derived: list[DerivedFeature] = []
    if features.covariate_features:
        for col in dynamic:
            if col.kind != "numeric":
                continue
            values = pd.to_numeric(panel[col.source], errors="coerce")
            ctype = contract.column(col.source).type
            if ctype == "BOOL":
                rate = float((values > 0.5).mean()) if len(values) else 0.0
                if 0.0 < rate <= EVENT_MAX_RATE:
                    derived.append(
                        DerivedFeature(name_for(f"{col.name}_days_since"), col.name, "since")
                    )
                    derived.append(
                        DerivedFeature(name_for(f"{col.name}_days_until"), col.name, "until")
                    )
                    for w in (28,):
                        derived.append(
                            DerivedFeature(name_for(f"{col.name}_share{w}"), col.name, f"share{w}")
                        )
            elif values.notna().any() and (values.dropna() > 0).all() and values.nunique() > 1:
                derived.append(DerivedFeature(name_for(f"{col.name}_rel"), col.name, "rel"))
    return FeatureSpec(tuple(static), tuple(dynamic), tuple(excluded), features, tuple(derived))


def _encode(values: pd.Series, col: FeatureColumn) -> pd.Series:
    if col.kind == "category":
        # Fixed categories: the same string gets the same code in training and serving.
        # Text is built once per distinct value (a panel repeats each key thousands of times).
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        labels = [_key_text(v) for v in uniques]
        lookup = {c: i for i, c in enumerate(col.categories)}
        mapped = np.array([lookup.get(t, -1) for t in labels] + [-1], dtype=np.int64)
        cat = pd.Categorical.from_codes(mapped[codes], categories=list(col.categories))
        return pd.Series(cat, index=values.index)
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
        last = panel.groupby("series_id", sort=False, observed=True)[sources].transform("last")
        for col in spec.static:
            frame[col.name] = _encode(last[col.source].reset_index(drop=True), col)
    for col in spec.dynamic:
        frame[col.name] = _encode(panel[col.source].reset_index(drop=True), col)
    if spec.derived:
        add_derived_features(frame, spec)
    return frame


def _group_bounds(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by series: each row's series start and end (exclusive) positions."""
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    sizes = ends - starts
    return np.repeat(starts, sizes), np.repeat(ends, sizes)


def add_derived_features(frame: pd.DataFrame, spec: FeatureSpec) -> None:
    """Add the spec's derived covariate features to ``frame`` in place.

    ``frame`` is sorted by series and day with consecutive days (the daily panel, or a tail of
    it followed by the forecast days). ``until`` looks ahead: where a series' known values end
    before the look-ahead does, the value is unknown (NaN) unless an event was found first.
    Everything is computed from known-in-advance columns, never from the target.
    """
    if not spec.derived:
        return
    ids = frame[ID].to_numpy()
    starts, ends = _group_bounds(ids)
    pos = np.arange(len(frame), dtype=np.int64)
    for feat in spec.derived:
        values = frame[feat.source].to_numpy(dtype=np.float64)
        if feat.kind == "since":
            on = np.where(values > 0.5, pos, -1)
            last_on = pd.Series(on).groupby(starts).cummax().to_numpy()
            out = np.where(last_on >= starts, pos - last_on, SINCE_CAP).astype(np.float64)
            frame[feat.name] = np.minimum(out, SINCE_CAP)
        elif feat.kind == "until":
            big = np.iinfo(np.int64).max
            on = np.where(values > 0.5, pos, big)
            rev = pd.Series(on[::-1]).groupby(starts[::-1]).cummin().to_numpy()[::-1]
            ahead = np.where(rev < ends, rev - pos, -1).astype(np.float64)
            # No event within reach: "at least UNTIL_CAP" if the known days reach that far.
            reach = (ends - 1 - pos) >= UNTIL_CAP
            out = np.where(
                ahead >= 0, np.minimum(ahead, UNTIL_CAP), np.where(reach, UNTIL_CAP, np.nan)
            )
            frame[feat.name] = out
        elif feat.kind.startswith("share"):
            # Share of the previous w days (not today) the flag was on.
            w = int(feat.kind[len("share") :])
            frame[feat.name] = _window_mean((values > 0.5).astype(np.float64), pos, starts, w, 1)
        else:  # rel: today's value over its mean of the last REL_WINDOW days (today included)
            mean = _window_mean(values, pos, starts, REL_WINDOW, 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                frame[feat.name] = np.where(mean > 0, values / mean, np.nan)


def _window_mean(
    values: np.ndarray, pos: np.ndarray, starts: np.ndarray, window: int, skip: int
) -> np.ndarray:
    """Per row: mean of the series' values over days ``t-skip-window+1 .. t-skip`` (NaN-aware,
    clipped at the series start; NaN where no day is available)."""
    clean = np.nan_to_num(values)
    present = (~np.isnan(values)).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(clean)])
    ccount = np.concatenate([[0.0], np.cumsum(present)])
    hi = np.maximum(pos + 1 - skip, starts)
    lo = np.maximum(hi - window, starts)
    total = csum[hi] - csum[lo]
    count = ccount[hi] - ccount[lo]
    return np.where(count > 0, total / np.maximum(count, 1.0), np.nan)


def covariate_tail(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame | None:
    """The last :data:`TAIL_DAYS` days of each series' derived-feature sources (model frame).

    The forecaster keeps it so derived features of the first forecast days (days since the
    last promotion, price vs its trailing mean) see the end of history.
    """
    sources = sorted({d.source for d in spec.derived})
    if not sources:
        return None
    last = frame.groupby(ID, sort=False, observed=True)[TIME].transform("max")
    keep = frame[TIME] > last - pd.Timedelta(days=TAIL_DAYS)
    return frame.loc[keep, [ID, TIME, *sources]].reset_index(drop=True)


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
    tail: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame | None, dict[str, int], int]:
    """Dynamic features for the ``horizon`` days after each series' last date.

    Values come from ``future`` (contract column names, one row per series and day) where
    given; every missing (series, day, column) value is filled by the column's ``future_fill``
    rule so the model never sees a missing known feature. Derived features (days since /
    until an event, value vs its trailing mean) are computed over ``tail`` (the end of
    history, :func:`covariate_tail`) followed by the forecast days and a few days after them
    (known values or fill rules), so the first ``h`` days of a longer forecast are exactly a
    forecast of ``h`` days.

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
        out[col.name] = _encode(values, col)
        if col.kind == "numeric":
            out[col.name] = out[col.name].fillna(0.0)
    if spec.derived:
        out = _with_derived(out, spec, tail)
    out = out[in_window].reset_index(drop=True)
    return out, filled, ignored


def _with_derived(out: pd.DataFrame, spec: FeatureSpec, tail: pd.DataFrame | None) -> pd.DataFrame:
    """Derived features of the forecast rows, computed after each series' history tail."""
    sources = sorted({d.source for d in spec.derived})
    n_future = len(out)
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
    assert len(values) == n_future
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
    rule = col.fill or "last"
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


def panel_columns(contract: Contract) -> list[str]:
    """The columns the trainer reads from a panel (observed-only ones are never read)."""
    wanted = ["series_id", contract.date_column, contract.target, *contract.series_keys]
    wanted += [c.name for c in contract.known_columns + contract.static_columns]
    return [*dict.fromkeys(wanted), "is_gap_filled"]


def load_panel(uri: str, contract: Contract, cutoff: Any, since: Any = None) -> pd.DataFrame:
    """Read the clean panel from any table URI: days on or before ``cutoff`` (and on or after
    ``since``), only the columns the model uses, strings as categoricals."""
    from trainer.io import read_table

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
