"""Every knob of a model in one place: what ``params.json`` stores and a refit reproduces."""

from __future__ import annotations

__all__ = [
    "FeatureConfig",
    "LGBMParams",
    "TrainerConfig",
    "config_from_json_obj",
    "lgbm_kwargs",
]

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from sf_contract import METRICS
from trainer.errors import TrainerError

OBJECTIVES = ("l2", "tweedie", "poisson", "l1")


@dataclass(frozen=True)
class LGBMParams:
    """LightGBM hyperparameters (LightGBM's own names, as the tuning spec uses them).

    Defaults (benchmarked in ``docs/benchmarks.md``): the model learns a target already divided
    by each series' level and weekday profile (``FeatureConfig.target_scaling``), so a plain L2
    loss fits it well and needs no bagging. Tweedie / Poisson remain available for unscaled
    targets (``target_scaling: none``). ``None`` (the default of the model's size: trees,
    learning rate, leaves, rows per leaf) means the recipe the data's shape calls for decides
    (:mod:`trainer.recipe`: 15 leaves x 400 trees at lr 0.08 on a panel, 4 x 200 at 0.05 on a
    single series); a value given here always wins.
    """

    n_estimators: int | None = None
    learning_rate: float | None = None
    num_leaves: int | None = None
    max_depth: int = -1
    min_child_samples: int | None = None
    feature_fraction: float = 1.0
    bagging_fraction: float = 1.0
    bagging_freq: int = 0
    lambda_l1: float = 0.0
    lambda_l2: float = 0.0
    objective: str = "l2"
    tweedie_variance_power: float = 1.2
    max_bin: int = 63

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise TrainerError(f"objective must be one of {OBJECTIVES}, got '{self.objective}'")
        # None: the recipe sets it (trainer.recipe), checked here once it has.
        if self.n_estimators is not None and self.n_estimators < 1:
            raise TrainerError("n_estimators must be >= 1")
        if self.learning_rate is not None and not 0 < self.learning_rate <= 1:
            raise TrainerError("learning_rate must be in (0, 1]")
        if self.num_leaves is not None and self.num_leaves < 2:
            raise TrainerError("num_leaves must be >= 2")
        if self.min_child_samples is not None and self.min_child_samples < 1:
            raise TrainerError("min_child_samples must be >= 1")
        for name in ("feature_fraction", "bagging_fraction"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise TrainerError(f"{name} must be in (0, 1]")
        if self.bagging_freq < 0 or self.lambda_l1 < 0 or self.lambda_l2 < 0:
            raise TrainerError("bagging_freq, lambda_l1 and lambda_l2 must be >= 0")
        if not 1 < self.tweedie_variance_power < 2:
            raise TrainerError("tweedie_variance_power must be in (1, 2)")
        if self.max_bin < 2:
            raise TrainerError("max_bin must be >= 2")


TARGET_SCALINGS = ("none", "level", "seasonal")
YEAR = 364  # 52 weeks: the same weekday a year ago
DATE_FEATURES = ("dayofweek", "day", "month", "dayofyear", "week", "quarter", "year")


@dataclass(frozen=True)
class FeatureConfig:
    """Which lag / rolling / calendar features the model gets (stored so a refit matches).

    - ``lags``: past values of the (scaled) target, in days.
    - ``rolling_lags`` x ``rolling_windows``: rolling means (and stds with ``rolling_std``)
      of the target shifted by each lag.
    - ``seasonal_windows``: mean of the same weekday over the last ``w`` weeks (lag 7).
    - ``yearly``: the same day last year (lag 364), the 4 weeks around it, and how last year's
      level changed over the two weeks around that date; empty (and ignored by the trees)
      until a series has a year of history.
    - ``target_scaling``: ``seasonal`` divides each series by its level x its weekday profile
      (over the last ``scaling_window`` days; the profile shrinks to the panel's for noisy
      series) before the trees see it, and multiplies forecasts back; ``level`` divides by the
      level only; ``none`` models raw units. ``log_target`` then models ``log1p`` of the
      scaled value (multiplicative effects become additive; the forecast is a median).
    - ``weight_power``: with a scaled target, each training row weighs its series' level to
      this power (1: a series selling 100 a day counts 100x one selling 1, as in WAPE; 0:
      every series counts the same).
    - ``covariate_features``: derived features of the known-in-advance columns: days since /
      until an event-like flag (e.g. a promotion ended 2 days ago, a holiday is tomorrow) and
      a positive numeric column relative to its trailing 28-day mean (e.g. price vs usual
      price). They use only known-in-advance values, never the target.
    - ``level_trend``: with a scaled target, each series' level follows its year-over-year
      growth (mean of its last ``scaling_window`` days over the same span before) instead of
      staying at the window's mean, so a growing series is not forecast at last year's
      average; series without two full spans keep a flat level. ``None``: the recipe decides
      (:mod:`trainer.recipe`: on for a single series, off for a panel).
    """

    lags: tuple[int, ...] = (1, 2, 3, 7, 14, 28)
    rolling_lags: tuple[int, ...] = (1,)
    rolling_windows: tuple[int, ...] = (7, 28)
    date_features: tuple[str, ...] = ("dayofweek", "month")
    rolling_std: bool = False
    seasonal_windows: tuple[int, ...] = ()
    yearly: bool = True
    target_scaling: str = "seasonal"
    scaling_window: int = 364
    log_target: bool = True
    covariate_features: bool = True
    weight_power: float = 1.0
    level_trend: bool | None = None

    def validate(self) -> None:
        bad = [f for f in self.date_features if f not in DATE_FEATURES]
        if bad:
            raise TrainerError(f"unknown date features {bad} (allowed: {sorted(DATE_FEATURES)})")
        for name in ("lags", "rolling_lags", "rolling_windows", "seasonal_windows"):
            if any(int(v) < 1 for v in getattr(self, name)):
                raise TrainerError(f"{name} must be positive integers")
        if self.target_scaling not in TARGET_SCALINGS:
            raise TrainerError(
                f"target_scaling must be one of {TARGET_SCALINGS}, got '{self.target_scaling}'"
            )
        if self.scaling_window < 0:
            raise TrainerError("scaling_window must be >= 0 (0 = all history)")
        if not 0 <= self.weight_power <= 2:
            raise TrainerError("weight_power must be in [0, 2]")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Rebuild from :meth:`to_dict`; a missing key takes its default, an unknown one fails."""
        _reject_unknown(data, cls, "features")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)

    @property
    def keep_last_n(self) -> int:
        """History the forecaster keeps per series: enough for the longest lag or window."""
        longest = max(
            [
                *self.lags,
                *(lag + win for lag in self.rolling_lags for win in self.rolling_windows),
                *(7 + 7 * w for w in self.seasonal_windows),
                *((YEAR + 14 + 28,) if self.yearly else ()),
            ],
            default=1,
        )
        return int(longest) + 7


INTERVAL_METHODS = ("scaled_conformal", "conformal_distribution")
# "auto": chosen by the data's shape (trainer.recipe holds the recipes and the rule).
RECIPE_NAMES = ("auto", "panel", "small")


@dataclass(frozen=True)
class TrainerConfig:
    """The full recipe of a model; ``params.json`` is ``to_dict()`` of this.

    Intervals (``interval_method``):

    - ``scaled_conformal`` (default): a calibration model is fit on the data before the last
      ``interval_windows`` x ``horizon`` days (on at most ``interval_max_series`` series) and
      forecasts those windows; its errors, divided by each series' noise scale, are pooled
      per horizon step; a forecast's interval is its point forecast plus the pooled
      quantiles times its series' scale. Pooling across series gives stable 95% quantiles
      even with one window, and every series gets an interval.
    - ``conformal_distribution``: mlforecast's per-series conformal intervals (the first
      version's method; needs ``interval_windows >= 2``).

    Size (``train_window_days``, ``max_train_rows``): the trees learn from at most the last
    ``train_window_days`` days (0 = all) and, when the panel is still larger than
    ``max_train_rows`` rows, from a seeded sample of whole series; every series is still
    forecast from its own history (see ``docs/benchmarks.md`` for the trade-off).

    ``recipe``: ``auto`` lets the data's shape choose the values of the knobs left ``None``
    (:mod:`trainer.recipe`); ``panel`` or ``small`` forces one. A fitted model's config names
    the recipe it used and sets every knob.
    """

    horizon: int = 28
    params: LGBMParams = field(default_factory=LGBMParams)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    validation_windows: int = 1
    interval_windows: int = 2
    levels: tuple[int, ...] = (80, 95)
    seed: int = 0
    num_threads: int = 2
    hpt_metric_name: str | None = None
    interval_method: str = "scaled_conformal"
    interval_max_series: int = 200
    train_window_days: int = 730
    max_train_rows: int = 8_000_000
    recipe: str = "auto"

    def validate(self) -> TrainerConfig:
        if self.horizon < 1:
            raise TrainerError(f"horizon must be >= 1, got {self.horizon}")
        if self.validation_windows < 1:
            raise TrainerError("validation_windows must be >= 1")
        if self.interval_method not in INTERVAL_METHODS:
            raise TrainerError(f"interval_method must be one of {INTERVAL_METHODS}")
        if self.interval_windows < 1:
            raise TrainerError("interval_windows must be >= 1")
        if self.interval_method == "conformal_distribution" and self.interval_windows < 2:
            raise TrainerError("interval_windows must be >= 2 (conformal intervals need two)")
        if self.interval_max_series < 1:
            raise TrainerError("interval_max_series must be >= 1")
        if self.train_window_days < 0 or self.max_train_rows < 0:
            raise TrainerError("train_window_days and max_train_rows must be >= 0 (0 = no limit)")
        if any(not 0 < lv < 100 for lv in self.levels):
            raise TrainerError(f"levels must be between 0 and 100, got {list(self.levels)}")
        if self.num_threads < 1:
            raise TrainerError("num_threads must be >= 1")
        if self.hpt_metric_name is not None and self.hpt_metric_name not in METRICS:
            raise TrainerError(f"hpt metric must be one of {METRICS}")
        if self.recipe not in RECIPE_NAMES:
            raise TrainerError(f"recipe must be one of {RECIPE_NAMES}, got '{self.recipe}'")
        self.params.validate()
        self.features.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = self.features.to_dict()
        out["levels"] = list(self.levels)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerConfig:
        """Rebuild a config from :meth:`to_dict`.

        A missing key takes its default; an unknown key is an error, so a typo never silently
        does nothing. A ``params.json`` of a first-version model lacks keys that meant other
        values then: read it through :func:`trainer.legacy.upgrade_params`.
        """
        data = dict(data)
        _reject_unknown(data, cls, "trainer config")
        params = dict(data.pop("params", None) or {})
        _reject_unknown(params, LGBMParams, "params")
        features = FeatureConfig.from_dict(dict(data.pop("features", None) or {}))
        if "levels" in data:
            data["levels"] = tuple(int(v) for v in data["levels"])
        return cls(params=LGBMParams(**params), features=features, **data)

    def with_params(self, **overrides: Any) -> TrainerConfig:
        """A copy with some LightGBM params replaced (None values are ignored)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, params=replace(self.params, **clean))


def config_from_json_obj(data: dict[str, Any], base: TrainerConfig) -> TrainerConfig:
    """Apply a ``--params-json`` document on top of ``base``.

    Accepts either a full trainer config (a ``params.json`` from another model, e.g. the
    best HPT trial) or a flat dict of LightGBM params (what a tuner naturally produces).
    """
    if not isinstance(data, dict):
        raise TrainerError("params JSON must be an object")
    param_names = {f.name for f in fields(LGBMParams)}
    if set(data) <= param_names:
        return base.with_params(**data)
    merged = base.to_dict()
    for key, value in data.items():
        if key in ("params", "features") and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return TrainerConfig.from_dict(merged)


def lgbm_kwargs(config: TrainerConfig) -> dict[str, Any]:
    """Keyword arguments for ``lightgbm.LGBMRegressor`` (deterministic for a given seed).

    ``config`` must have its recipe resolved (:func:`trainer.recipe.resolve_recipe`).
    """
    p = config.params
    unset = [f.name for f in fields(p) if getattr(p, f.name) is None]
    if unset:
        raise TrainerError(f"LightGBM params {unset} are unset: resolve the recipe first")
    kwargs: dict[str, Any] = {
        "n_estimators": p.n_estimators,
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "max_depth": p.max_depth,
        "min_child_samples": p.min_child_samples,
        "colsample_bytree": p.feature_fraction,
        "subsample": p.bagging_fraction,
        # LightGBM ignores bagging_fraction while bagging_freq is 0 (its default): asking for
        # a fraction below 1 means bagging every iteration unless a frequency is given.
        "subsample_freq": p.bagging_freq or (1 if p.bagging_fraction < 1 else 0),
        "reg_alpha": p.lambda_l1,
        "reg_lambda": p.lambda_l2,
        "objective": {"l2": "regression", "l1": "regression_l1"}.get(p.objective, p.objective),
        "random_state": config.seed,
        "n_jobs": config.num_threads,
        # deterministic + a forced histogram layout make a rerun bit-identical (LightGBM docs).
        # Row-wise histograms: ~30% faster than col-wise on these tall, ~25-column frames.
        "deterministic": True,
        "force_row_wise": True,
        "max_bin": p.max_bin,
        "verbosity": -1,
    }
    if p.objective == "tweedie":
        kwargs["tweedie_variance_power"] = p.tweedie_variance_power
    return kwargs


def _reject_unknown(data: dict[str, Any], cls: type, what: str) -> None:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise TrainerError(f"unknown {what} keys {unknown} (allowed: {sorted(names)})")
