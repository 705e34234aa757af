"""The first trainer's recipe, kept so that what it saved still loads and refits the same.

A first-version model (``forecaster.json`` ``format_version`` 1) and its ``params.json`` lack
the keys added since, and a missing key meant that key's first-version value, not today's
default: :func:`upgrade_params` and :func:`upgrade_v1` fill them in before the documents are
read the plain way. Those models use mlforecast's per-series ``conformal_distribution``
intervals (:func:`calibrate`, :func:`add_intervals`); the recipe can still be chosen with
``interval_method: conformal_distribution``.
"""

from __future__ import annotations

__all__ = [
    "CONFORMAL_DISTRIBUTION",
    "V1_CONFIG",
    "V1_FEATURES",
    "V1_PARAMS",
    "add_intervals",
    "calibrate",
    "upgrade_params",
    "upgrade_v1",
]

import copy
import logging
from typing import Any

import numpy as np
import pandas as pd
from mlforecast.conformal_prediction import compute_conformity_scores, get_conformal_method

from trainer.columns import ID, TARGET, TIME
from trainer.config import TrainerConfig
from trainer.feature_spec import FeatureSpec
from trainer.fitting import MODEL_NAME, fit_kwargs, new_mlforecast

log = logging.getLogger(__name__)

CONFORMAL_DISTRIBUTION = "conformal_distribution"

# What a key missing from a first-version params.json meant: a stored recipe refits exactly as
# it was trained (the backtest refits the champion from its params.json).
V1_PARAMS: dict[str, Any] = {
    "n_estimators": 400,
    "learning_rate": 0.05,
    "num_leaves": 63,
    "max_depth": -1,
    "min_child_samples": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l1": 0.0,
    "lambda_l2": 1.0,
    "objective": "tweedie",
    "tweedie_variance_power": 1.2,
    "max_bin": 255,
}
V1_FEATURES: dict[str, Any] = {
    "lags": (1, 7, 14, 21, 28),
    "rolling_lags": (1, 7),
    "rolling_windows": (7, 14, 28),
    "date_features": ("dayofweek", "day", "month", "dayofyear", "week"),
    "rolling_std": True,
    "seasonal_windows": (),
    "yearly": False,
    "target_scaling": "none",
    "scaling_window": 364,
    "log_target": False,
    "covariate_features": False,
    "weight_power": 0.0,
}
V1_CONFIG: dict[str, Any] = {
    "interval_windows": 3,
    "interval_method": CONFORMAL_DISTRIBUTION,
    "interval_max_series": 1_000_000_000,
    "train_window_days": 0,
    "max_train_rows": 0,
}


def upgrade_params(doc: dict[str, Any]) -> dict[str, Any]:
    """A ``params.json`` document with every key it lacks set to its first-version value.

    Every key exists in what today's trainer writes, so its documents come back unchanged; a
    first-version one (no ``max_bin``, no ``interval_method``, ...) comes back as the recipe
    that model was trained with.
    """
    out = dict(doc)
    out["params"] = {**V1_PARAMS, **(doc.get("params") or {})}
    out["features"] = {**V1_FEATURES, **(doc.get("features") or {})}
    for key, value in V1_CONFIG.items():
        out.setdefault(key, value)
    return out


def upgrade_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A first-version ``forecaster.json`` in today's shape (what ``format_version`` 2 holds)."""
    out = copy.deepcopy(doc)
    out["config"] = upgrade_params(out["config"])
    spec = out["feature_spec"]
    spec["features"] = {**V1_FEATURES, **spec["features"]}
    spec.setdefault("derived", [])
    out.setdefault("training", {})
    return out


def calibrate(
    frame: pd.DataFrame, spec: FeatureSpec, config: TrainerConfig
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Conformity scores from a rolling cross-validation (mlforecast ``refit=False``).

    Windows are reduced (down to 2) until every series fits; series still shorter than two
    windows plus a day are left without intervals rather than failing the whole model.
    """
    h = config.horizon
    lengths = frame.groupby(ID, sort=True, observed=True).size()
    fit_all = int((lengths.min() - 1) // h)
    windows = min(config.interval_windows, fit_all) if fit_all >= 2 else 2
    need = h * windows + 1
    long_ids = lengths.index[lengths >= need]
    info: dict[str, Any] = {
        "method": CONFORMAL_DISTRIBUTION,
        "h": h,
        "n_windows": windows,
        "requested_windows": config.interval_windows,
        "min_series_length": need,
    }
    if windows < config.interval_windows:
        log.warning(
            "conformal intervals: reduced windows from %d to %d for short series",
            config.interval_windows,
            windows,
        )
    if len(long_ids) == 0:
        reason = f"every series is shorter than {need} days (2 windows x {h} days + 1)"
        log.warning("no prediction intervals: %s", reason)
        return None, {**info, "enabled": False, "reason": reason}
    short = lengths.index[lengths < need]
    if len(short):
        log.warning(
            "%d series shorter than %d days get no prediction intervals (e.g. %s)",
            len(short),
            need,
            list(short[:3]),
        )
    subset = frame[frame[ID].isin(long_ids)]
    cal = new_mlforecast(config)
    kwargs = fit_kwargs(spec)
    kwargs.pop("keep_last_n")
    cv = cal.cross_validation(
        subset, n_windows=windows, h=h, refit=False, validate_data=False, **kwargs
    )
    scores = compute_conformity_scores(cv, [MODEL_NAME], TARGET)
    scores = scores[[ID, TIME, "cutoff", MODEL_NAME]].sort_values(["cutoff", ID, TIME])
    info.update(
        {
            "enabled": True,
            "n_series": int(len(long_ids)),
            "n_series_without": int(len(short)),
            "series_without_sample": [str(s) for s in short[:10]],
        }
    )
    return scores.reset_index(drop=True), info


def add_intervals(
    preds: pd.DataFrame,
    scores: pd.DataFrame | None,
    intervals: dict[str, Any],
    levels: list[int],
    horizon: int,
    notes: list[str],
) -> int:
    """Add ``lo-<l>`` / ``hi-<l>`` columns per series; returns how many series got none."""
    uids = preds[ID].unique()
    for lv in levels:
        preds[f"lo-{lv}"] = np.nan
        preds[f"hi-{lv}"] = np.nan
    if not levels:
        return 0
    if scores is None:
        notes.append(f"no prediction intervals: {intervals.get('reason', 'none')}")
        return len(uids)
    cs_h = int(intervals["h"])
    if horizon > cs_h:
        notes.append(f"no prediction intervals: calibrated for {cs_h} days, asked {horizon}")
        return len(uids)
    covered = np.sort(np.intersect1d(uids, scores[ID].unique()))
    if len(covered):
        sub = preds[preds[ID].isin(covered)].sort_values([ID, TIME], kind="stable")
        kept = scores[scores[ID].isin(covered)]
        kept = kept.sort_values(["cutoff", ID, TIME], kind="stable")
        method = get_conformal_method(intervals.get("method", CONFORMAL_DISTRIBUTION))
        with_int = method(
            sub[[ID, TIME, MODEL_NAME]].reset_index(drop=True),
            kept.reset_index(drop=True),
            model_names=[MODEL_NAME],
            level=levels,
            cs_n_windows=int(intervals["n_windows"]),
            cs_h=cs_h,
            n_series=len(covered),
            horizon=horizon,
        )
        for lv in levels:
            preds.loc[sub.index, f"lo-{lv}"] = with_int[f"{MODEL_NAME}-lo-{lv}"].to_numpy()
            preds.loc[sub.index, f"hi-{lv}"] = with_int[f"{MODEL_NAME}-hi-{lv}"].to_numpy()
    without = len(uids) - len(covered)
    if without:
        notes.append(f"{without} series too short for conformal calibration: no intervals")
    return without
