"""What the model sees: the feature spec built from the contract and the panel, and the frame.

The clean panel (contract column names) becomes the long frame mlforecast expects:
``unique_id, ds, y`` plus static features (series keys and static columns, categorical when
they are strings) and dynamic features (known-in-advance and forecast columns: a forecast
column, such as weather, is its observed value in history and a given forecast, or its
climatology, on forecast days).
Observed-only columns are left out: their values for future days do not exist when forecasting.
Lags, rolling statistics and calendar features are computed by mlforecast from ``y`` and
``ds`` with the settings in :class:`trainer.config.FeatureConfig`, on a target divided by each
series' level and weekday profile (:class:`trainer.scaling.SeasonalScaler`). Known-in-advance
columns also give derived features (:mod:`trainer.covariates`).

Nothing here reads a target value after a row's own day: lags start at 1, the scaler is fit
on the training rows only, and derived features read known-in-advance columns only.
"""

from __future__ import annotations

__all__ = [
    "DerivedFeature",
    "FeatureColumn",
    "FeatureSpec",
    "build_feature_spec",
    "encode",
    "generated_feature_names",
    "mlforecast_kwargs",
    "safe_ratio",
    "to_model_frame",
]

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from mlforecast.core import TimeSeries
from mlforecast.lag_transforms import Combine, Offset, RollingMean, RollingStd, SeasonalRollingMean

from sf_contract import Contract, key_text
from trainer.climatology import day_of_year_profile
from trainer.columns import ID, TARGET, TIME
from trainer.config import YEAR, FeatureConfig
from trainer.covariates import EVENT_MAX_RATE, add_derived_features
from trainer.scaling import SeasonalScaler


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
    # A forecast column's day-of-year profile (trainer.climatology), for its climatology fill.
    profile: tuple[float, ...] = ()


@dataclass(frozen=True)
class DerivedFeature:
    """A feature computed from one known-in-advance column (``source``: its model name).

    ``kind``: ``since`` (days since the flag was last on, 0 = today, capped at
    :data:`trainer.covariates.SINCE_CAP`), ``until`` (days until it is next on, capped at
    :data:`trainer.covariates.UNTIL_CAP`; unknown when the known values end first),
    ``share28`` (share of the previous 28 days the flag was on: how much of the target's
    rolling means a promotion inflated) or ``rel`` (the value over its trailing
    :data:`trainer.covariates.REL_WINDOW`-day mean).
    """

    name: str
    source: str
    kind: str


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
            "features": self.features.to_dict(),
            "generated": generated_feature_names(self.features),
            "derived": [asdict(d) for d in self.derived],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Rebuild a spec from :meth:`to_dict` (a first-version spec: see
        :func:`trainer.legacy.upgrade_v1`)."""

        def col(d: dict[str, Any]) -> FeatureColumn:
            return FeatureColumn(
                **{
                    **d,
                    "categories": tuple(d.get("categories") or ()),
                    "profile": tuple(d.get("profile") or ()),
                }
            )

        return cls(
            static=tuple(col(d) for d in data["static"]),
            dynamic=tuple(col(d) for d in data["dynamic"]),
            excluded=tuple((d["column"], d["reason"]) for d in data["excluded"]),
            features=FeatureConfig.from_dict(data["features"]),
            derived=tuple(DerivedFeature(**d) for d in data["derived"]),
        )


def _col_dict(col: FeatureColumn) -> dict[str, Any]:
    out = asdict(col)
    out["categories"] = list(col.categories)
    out["profile"] = list(col.profile)
    return out


def mlforecast_kwargs(cfg: FeatureConfig) -> dict[str, Any]:
    """Lag, rolling, calendar and target-scaling settings for ``MLForecast`` (built only here)."""
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
    """``a / b`` where ``b > 0``, NaN elsewhere (a missing value, not an infinite one).

    Saved models pickle this function; see :mod:`trainer.features` for the path older ones use.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan))


def generated_feature_names(cfg: FeatureConfig) -> list[str]:
    """The names mlforecast gives the lag / rolling / calendar features."""
    kwargs = mlforecast_kwargs(cfg)
    kwargs.pop("target_transforms", None)
    return list(TimeSeries(freq="D", **kwargs).features)


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
        cats = tuple(sorted({key_text(v) for v in panel[key].dropna().unique()}))
        static.append(FeatureColumn(key, name_for(key), "key", "category", cats))
    for col in contract.static_columns:
        if col.type == "STRING":
            cats = tuple(sorted(str(v) for v in panel[col.name].dropna().unique()))
            static.append(FeatureColumn(col.name, name_for(col.name), "static", "category", cats))
        else:
            static.append(FeatureColumn(col.name, name_for(col.name), "static", "numeric"))
    dynamic: list[FeatureColumn] = []
    for col in contract.future_columns:
        kind = "category" if col.type == "STRING" else "numeric"
        cats = ()
        if kind == "category":
            cats = tuple(sorted(str(v) for v in panel[col.name].dropna().unique()))
        fill = col.future_fill or "last"
        fallback = _mode(panel[col.name])
        profile: tuple[float, ...] = ()
        if fill == "climatology":
            values = pd.to_numeric(panel[col.name], errors="coerce")
            fallback = float(values.mean()) if values.notna().any() else 0.0
            profile = day_of_year_profile(panel[contract.date_column], values)
        dynamic.append(
            FeatureColumn(
                source=col.name,
                name=name_for(col.name),
                role=col.role,
                kind=kind,
                categories=cats,
                fill=fill,
                fallback=fallback,
                profile=profile,
            )
        )
    excluded = [
        (c.name, "observed only: its values for future days are unknown at forecast time")
        for c in contract.observed_columns
    ]
    derived: list[DerivedFeature] = []
    if features.covariate_features:
        for feature in dynamic:
            if feature.kind != "numeric":
                continue
            values = pd.to_numeric(panel[feature.source], errors="coerce")
            ctype = contract.column(feature.source).type
            if ctype == "BOOL":
                rate = float((values > 0.5).mean()) if len(values) else 0.0
                if 0.0 < rate <= EVENT_MAX_RATE:
                    name = feature.name
                    derived.append(DerivedFeature(name_for(f"{name}_days_since"), name, "since"))
                    derived.append(DerivedFeature(name_for(f"{name}_days_until"), name, "until"))
                    derived.append(DerivedFeature(name_for(f"{name}_share28"), name, "share28"))
            elif values.notna().any() and (values.dropna() > 0).all() and values.nunique() > 1:
                derived.append(DerivedFeature(name_for(f"{feature.name}_rel"), feature.name, "rel"))
    return FeatureSpec(tuple(static), tuple(dynamic), tuple(excluded), features, tuple(derived))


def encode(values: pd.Series, col: FeatureColumn) -> pd.Series:
    """A column's model values: fixed category codes, or floats."""
    if col.kind == "category":
        # Fixed categories: the same string gets the same code in training and serving.
        # Text is built once per distinct value (a panel repeats each key thousands of times).
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        labels = [key_text(v) for v in uniques]
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
            frame[col.name] = encode(last[col.source].reset_index(drop=True), col)
    for col in spec.dynamic:
        frame[col.name] = encode(panel[col.source].reset_index(drop=True), col)
    if spec.derived:
        add_derived_features(frame, spec)
    return frame
