"""Scoring recipes on held-out windows: rolling cut-offs, forecasts of each, and the gate.

``train`` holds out its validation windows with these, ``backtest`` compares the challenger,
the seasonal-naive baseline and the champion on the same windows and applies the gate.
"""

from __future__ import annotations

__all__ = [
    "MIN_TRAIN_DAYS",
    "SEASONAL_NAIVE",
    "evaluate_methods",
    "evaluation_cutoffs",
    "gate_decision",
    "interval_coverage",
]

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from sf_contract import Contract
from trainer.baselines import seasonal_naive
from trainer.config import TrainerConfig
from trainer.errors import TrainerError
from trainer.metrics import bucket_names, seasonal_scale
from trainer.model import Forecaster

log = logging.getLogger(__name__)

SEASONAL_NAIVE = "seasonal_naive"
# A training window shorter than this is too thin to say anything about a model.
MIN_TRAIN_DAYS = 14


def evaluation_cutoffs(
    first_date: pd.Timestamp,
    last_date: pd.Timestamp,
    horizon: int,
    n_windows: int,
    step: int | None = None,
) -> list[pd.Timestamp]:
    """Forecast origins of ``n_windows`` windows of ``horizon`` days ending at ``last_date``.

    The last window ends on ``last_date``; earlier ones move back by ``step`` (default: the
    horizon, so windows do not overlap). Windows whose training part would be shorter than
    two weeks are dropped with a warning; none left is an error.
    """
    if horizon < 1:
        raise TrainerError(f"horizon must be >= 1, got {horizon}")
    if n_windows < 1:
        raise TrainerError(f"the number of windows must be >= 1, got {n_windows}")
    step = horizon if step is None else int(step)
    if step < 1:
        raise TrainerError(f"step must be >= 1, got {step}")
    last_date = pd.Timestamp(last_date)
    cutoffs = [
        last_date - pd.Timedelta(days=horizon + step * (n_windows - 1 - i))
        for i in range(n_windows)
    ]
    kept = [c for c in cutoffs if (c - pd.Timestamp(first_date)).days + 1 >= MIN_TRAIN_DAYS]
    if not kept:
        span = (last_date - pd.Timestamp(first_date)).days + 1
        raise TrainerError(
            f"not enough history to hold out {horizon} days: the data spans {span} days and "
            f"needs at least {horizon + MIN_TRAIN_DAYS}"
        )
    if len(kept) < len(cutoffs):
        log.warning(
            "only %d of %d evaluation windows fit in the data; using those", len(kept), n_windows
        )
    return kept


def _model_forecasts(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    contract: Contract,
    config: TrainerConfig,
    h: int,
    levels: Sequence[int] = (),
) -> pd.DataFrame:
    fc = Forecaster.fit(train, contract, replace(config, horizon=h), intervals=bool(levels))
    future_cols = ["series_id", contract.date_column, *[c.name for c in contract.known_columns]]
    frame = fc.predict(h, future_df=valid[future_cols], levels=list(levels))
    bounds = [f"{side}_{lv}" for lv in levels for side in ("lower", "upper")]
    return frame.rename(columns={"date": contract.date_column, "forecast": "y_hat"})[
        ["series_id", contract.date_column, "y_hat", *bounds]
    ]


def interval_coverage(frame: pd.DataFrame, horizon: int) -> dict[str, Any]:
    """Share of actuals inside each ``lower_<l>``..``upper_<l>`` interval, per horizon bucket."""
    out: dict[str, Any] = {}
    levels = sorted(int(c.split("_")[1]) for c in frame.columns if c.startswith("lower_"))
    for lv in levels:
        lo, hi = frame[f"lower_{lv}"], frame[f"upper_{lv}"]
        inside = (frame["y"] >= lo) & (frame["y"] <= hi) & lo.notna()
        out[str(lv)] = {
            name: float(inside[frame["step"] <= last].mean()) if len(frame) else float("nan")
            for name, last in bucket_names(horizon)
        }
    return out


def evaluate_methods(
    panel: pd.DataFrame,
    contract: Contract,
    cutoffs: list[pd.Timestamp],
    horizon: int,
    methods: Mapping[str, TrainerConfig | None],
    interval_levels: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Forecast every window with every method on exactly the same rows.

    ``methods`` maps a name to a trainer config (refit on each window's training data) or
    to ``None`` for the seasonal-naive baseline. Each result frame has ``series_id, date,
    cutoff, step, y, y_hat, scale`` (scale: the window's seasonal-naive MAE, for MASE).
    Series that start after a cut-off cannot be forecast from it and are left out of that
    window for every method alike. Methods named in ``interval_levels`` are fit with their
    prediction intervals (calibrated on that window's training days only) and their frames
    also have ``lower_<l>`` / ``upper_<l>``.
    """
    interval_levels = interval_levels or {}
    date, target = contract.date_column, contract.target
    out: dict[str, list[pd.DataFrame]] = {name: [] for name in methods}
    for cutoff in cutoffs:
        train = panel[panel[date] <= cutoff]
        end = cutoff + pd.Timedelta(days=horizon)
        valid = panel[
            (panel[date] > cutoff)
            & (panel[date] <= end)
            & panel["series_id"].isin(train["series_id"].unique())
        ]
        if valid.empty:
            continue
        scale = seasonal_scale(
            train, id_col="series_id", time_col=date, target_col=target, season=7
        )
        truth = valid[["series_id", date, target]].rename(columns={target: "y"})
        truth = truth.assign(
            cutoff=cutoff, step=(truth[date] - cutoff).dt.days.astype(int), scale=scale
        )
        for name, config in methods.items():
            if config is None:
                fc = seasonal_naive(
                    train, horizon, id_col="series_id", time_col=date, target_col=target
                )[["series_id", date, "y_hat"]]
            else:
                fc = _model_forecasts(
                    train, valid, contract, config, horizon, interval_levels.get(name, ())
                )
            rows = truth.merge(fc, on=["series_id", date], how="left")
            if rows["y_hat"].isna().any():
                raise RuntimeError(f"{name} left {int(rows['y_hat'].isna().sum())} rows empty")
            out[name].append(rows)
    return {
        name: (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
        for name, frames in out.items()
    }


def gate_decision(
    metric: str,
    challenger: float,
    baseline: float,
    champion: float | None,
    min_improvement: float = 0.0,
) -> dict[str, Any]:
    """Promote only a challenger that beats the seasonal-naive baseline and the champion.

    Lower is better for every gate metric. Against the champion the challenger must be
    strictly lower than ``champion * (1 - min_improvement)``: ``min_improvement`` is a
    relative margin (0.02 = at least 2 % better), so it means the same for WAPE and MAE.
    """

    threshold = None if champion is None else champion * (1.0 - min_improvement)
    if _undefined(challenger):
        passed, reason = False, f"challenger {metric} is undefined (no usable actuals?)"
    elif _undefined(baseline):
        passed, reason = False, f"baseline {metric} is undefined; cannot compare"
    elif not challenger < baseline:
        passed = False
        reason = f"challenger {metric} {challenger:.4f} does not beat seasonal naive {baseline:.4f}"
    elif champion is None:
        passed = True
        reason = (
            f"challenger {metric} {challenger:.4f} beats seasonal naive {baseline:.4f}; "
            "no champion to beat"
        )
    elif _undefined(champion) or threshold is None:
        passed = True
        reason = f"champion {metric} is undefined; challenger beats the baseline"
    elif challenger < threshold:
        passed = True
        reason = (
            f"challenger {metric} {challenger:.4f} beats seasonal naive {baseline:.4f} and "
            f"champion {champion:.4f} by more than {min_improvement:.1%} (< {threshold:.4f})"
        )
    else:
        passed = False
        reason = (
            f"challenger {metric} {challenger:.4f} is not below champion {champion:.4f} "
            f"minus {min_improvement:.1%} (needs < {threshold:.4f})"
        )
    return {
        "passed": bool(passed),
        "metric": metric,
        "challenger": challenger,
        "baseline": baseline,
        "champion": champion,
        "min_improvement": min_improvement,
        "reason": reason,
    }


def _undefined(value: float | None) -> bool:
    return value is None or not math.isfinite(value)
