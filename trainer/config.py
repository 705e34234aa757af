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

from trainer.errors import TrainerError

OBJECTIVES = ("l2", "tweedie", "poisson", "l1")
HPT_METRICS = ("wape", "mae", "rmse", "mase")


@dataclass(frozen=True)
class LGBMParams:
    """LightGBM hyperparameters (LightGBM's own names, as the tuning spec uses them).

    Defaults suit retail demand: a Tweedie loss copes with many zero days and a long right
    tail, and 400 trees at lr 0.05 is a safe middle ground before tuning.
    """

    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 63
    max_depth: int = -1
    min_child_samples: int = 20
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l1: float = 0.0
    lambda_l2: float = 1.0
    objective: str = "tweedie"
    tweedie_variance_power: float = 1.2

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise TrainerError(f"objective must be one of {OBJECTIVES}, got '{self.objective}'")
        if self.n_estimators < 1:
            raise TrainerError("n_estimators must be >= 1")
        if not 0 < self.learning_rate <= 1:
            raise TrainerError("learning_rate must be in (0, 1]")
        if self.num_leaves < 2:
            raise TrainerError("num_leaves must be >= 2")
        if self.min_child_samples < 1:
            raise TrainerError("min_child_samples must be >= 1")
        for name in ("feature_fraction", "bagging_fraction"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise TrainerError(f"{name} must be in (0, 1]")
        if self.bagging_freq < 0 or self.lambda_l1 < 0 or self.lambda_l2 < 0:
            raise TrainerError("bagging_freq, lambda_l1 and lambda_l2 must be >= 0")
        if not 1 < self.tweedie_variance_power < 2:
            raise TrainerError("tweedie_variance_power must be in (1, 2)")


@dataclass(frozen=True)
class FeatureConfig:
    """Which lag / rolling / calendar features the model gets (stored so a refit matches)."""

    lags: tuple[int, ...] = (1, 7, 14, 21, 28)
    rolling_lags: tuple[int, ...] = (1, 7)
    rolling_windows: tuple[int, ...] = (7, 14, 28)
    date_features: tuple[str, ...] = ("dayofweek", "day", "month", "dayofyear", "week")

    def validate(self) -> None:
        allowed = {"dayofweek", "day", "month", "dayofyear", "week", "quarter", "year"}
        bad = [f for f in self.date_features if f not in allowed]
        if bad:
            raise TrainerError(f"unknown date features {bad} (allowed: {sorted(allowed)})")
        for name in ("lags", "rolling_lags", "rolling_windows"):
            if any(int(v) < 1 for v in getattr(self, name)):
                raise TrainerError(f"{name} must be positive integers")

    @property
    def keep_last_n(self) -> int:
        """History the forecaster keeps per series: enough for the longest lag or window."""
        longest = max(
            [*self.lags, *(lag + win for lag in self.rolling_lags for win in self.rolling_windows)],
            default=1,
        )
        return int(longest) + 7


@dataclass(frozen=True)
class TrainerConfig:
    """The full recipe of a model; ``params.json`` is ``to_dict()`` of this."""

    horizon: int = 28
    params: LGBMParams = field(default_factory=LGBMParams)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    validation_windows: int = 1
    interval_windows: int = 3
    levels: tuple[int, ...] = (80, 95)
    seed: int = 0
    num_threads: int = 2
    hpt_metric_name: str | None = None

    def validate(self) -> TrainerConfig:
        if self.horizon < 1:
            raise TrainerError(f"horizon must be >= 1, got {self.horizon}")
        if self.validation_windows < 1:
            raise TrainerError("validation_windows must be >= 1")
        if self.interval_windows < 2:
            raise TrainerError("interval_windows must be >= 2 (conformal intervals need two)")
        if any(not 0 < lv < 100 for lv in self.levels):
            raise TrainerError(f"levels must be between 0 and 100, got {list(self.levels)}")
        if self.num_threads < 1:
            raise TrainerError("num_threads must be >= 1")
        if self.hpt_metric_name is not None and self.hpt_metric_name not in HPT_METRICS:
            raise TrainerError(f"hpt metric must be one of {HPT_METRICS}")
        self.params.validate()
        self.features.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = {k: list(v) for k, v in out["features"].items()}
        out["levels"] = list(self.levels)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerConfig:
        """Rebuild a config; unknown keys are an error so a typo never silently does nothing."""
        data = dict(data)
        _reject_unknown(data, cls, "trainer config")
        params = data.pop("params", None) or {}
        _reject_unknown(params, LGBMParams, "params")
        feats = data.pop("features", None) or {}
        _reject_unknown(feats, FeatureConfig, "features")
        if "levels" in data:
            data["levels"] = tuple(int(v) for v in data["levels"])
        return cls(
            params=LGBMParams(**params),
            features=FeatureConfig(**{k: tuple(v) for k, v in feats.items()}),
            **data,
        )

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
    """Keyword arguments for ``lightgbm.LGBMRegressor`` (deterministic for a given seed)."""
    p = config.params
    kwargs: dict[str, Any] = {
        "n_estimators": p.n_estimators,
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "max_depth": p.max_depth,
        "min_child_samples": p.min_child_samples,
        "colsample_bytree": p.feature_fraction,
        "subsample": p.bagging_fraction,
        "subsample_freq": p.bagging_freq,
        "reg_alpha": p.lambda_l1,
        "reg_lambda": p.lambda_l2,
        "objective": {"l2": "regression", "l1": "regression_l1"}.get(p.objective, p.objective),
        "random_state": config.seed,
        "n_jobs": config.num_threads,
        # deterministic + a forced histogram layout make a rerun bit-identical (LightGBM docs).
        "deterministic": True,
        "force_col_wise": True,
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
