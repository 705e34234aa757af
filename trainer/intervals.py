"""Prediction intervals by scaled split-conformal calibration (``scaled_conformal``).

A calibration model fit on the days before the last ``interval_windows`` x ``horizon`` days
forecasts those windows; each error is divided by its series' noise scale (the mean absolute
week-over-week change of its recent history) and the scores are pooled across series for each
step ahead. A forecast's interval is the point forecast plus the step's score quantiles times
its series' scale, so every series (even a new one) gets an interval and a 95% quantile rests
on hundreds of errors, not three. (The first version's per-series method is in
:mod:`trainer.legacy`.)

The errors of one calibration window share a common part: on a panel, a seasonal turn that
window happened to contain moves most series' errors the same way (all over-forecast in a
declining September), and the next window does not repeat it. Left in, it shifts the whole
interval to one side: on the real panel's rolling-origin backtest (docs/benchmarks.md) 80%
intervals held 70% of the days of the windows that followed such a turn. So each window's
median score per step, the part all series share, is taken out of its scores before the
quantiles (shrunk by the number of series it rests on: a single series' own error is no
common part); the quantiles then describe the spread around the forecast, with its skew.
"""

from __future__ import annotations

__all__ = [
    "MIN_CALIBRATION_DAYS",
    "SCALED_CONFORMAL",
    "add_scaled_intervals",
    "calibrate_scaled",
    "conformity_scores",
    "noise_scale",
]

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sf_contract import Contract
from trainer.columns import ID
from trainer.config import TrainerConfig
from trainer.fitting import MODEL_NAME
from trainer.panel import UNKNOWN, known_rows

if TYPE_CHECKING:
    from trainer.model import Forecaster

log = logging.getLogger(__name__)

SCALED_CONFORMAL = "scaled_conformal"
# Scores kept per horizon step (a seeded sample beyond that: quantiles barely move).
_MAX_SCORES_PER_STEP = 20_000
# A step's quantiles pool its neighbours' scores until at least this many are in.
_MIN_SCORES = 200
# History the calibration model needs before its first cut-off.
MIN_CALIBRATION_DAYS = 28
# A window's common error (median score of a step) is taken out as n / (n + this) of it, n the
# series it is the median of: ~all of it on a panel of hundreds, ~nothing for one series.
_COMMON_SHRINK = 20.0


def noise_scale(panel: pd.DataFrame, contract: Contract, days: int = 56) -> pd.DataFrame:
    """Per series (index): ``scale``, the mean absolute week-over-week change over its last
    ``days`` days, and ``level``, its mean over those days.

    Interval widths are expressed in ``scale`` units, adjusted to the forecast's own level by
    :func:`_width_unit` (count noise grows about like the square root of the level). Series too
    young for a week-over-week change use their level x the panel's typical scale/level ratio;
    a floor keeps all-zero series from getting zero-width intervals. Unknown days
    (``is_unknown``) are left out of both: their filled values are no actuals (a copy of last
    week's value would fake a zero change).
    """
    date, target = contract.date_column, contract.target
    end = panel.groupby("series_id", observed=True)[date].transform("max")
    recent = panel[panel[date] > end - pd.Timedelta(days=days)]
    recent = recent.assign(series_id=recent["series_id"].astype(str))
    y = recent[target].astype(float)
    if UNKNOWN in recent.columns and recent[UNKNOWN].any():
        y = y.where(~recent[UNKNOWN].to_numpy(dtype=bool))
    diffs = (y - y.groupby(recent["series_id"], observed=True).shift(7)).abs()
    stats = pd.DataFrame({"series_id": recent["series_id"], "d": diffs, "y": y})
    g = stats.groupby("series_id", sort=True, observed=True)
    mad, n_diff, level = g["d"].mean(), g["d"].count(), g["y"].mean()
    ok = (n_diff >= 7) & (level > 0)
    ratio = float((mad[ok] / level[ok]).median()) if ok.any() else 1.0
    scale = mad.where(n_diff >= 7, level * ratio)
    overall = float(panel[target].abs().mean())
    floor = max(0.01 * overall, 1e-6)
    return pd.DataFrame({"scale": scale.fillna(floor).clip(lower=floor), "level": level})


def _width_unit(point: np.ndarray, scale: np.ndarray, level: np.ndarray) -> np.ndarray:
    """The unit of a forecast's interval: its series' scale x sqrt(forecast / series level).

    A promotion day forecast at twice the usual level gets ~1.4x wider intervals, a quiet
    month's days narrower ones; the ratio is clipped to [1/4, 4] so a near-zero forecast or
    level cannot collapse or explode the width.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(level > 0, np.maximum(point, 0.0) / level, 1.0)
    return np.asarray(scale * np.sqrt(np.clip(np.nan_to_num(ratio, nan=1.0), 0.25, 4.0)))


def _quantile_table(scores: pd.DataFrame, levels: Sequence[int], horizon: int) -> pd.DataFrame:
    """Per step 1..horizon: the lower / upper score quantile of each level.

    A step with fewer than :data:`_MIN_SCORES` scores (few series, one window) borrows its
    neighbours' scores, widening the pool step by step; quantiles use the conformal
    ``ceil((n + 1) p) / n`` rank so a small pool errs on the wide side.
    """
    by_step = {
        int(k): np.sort(v.to_numpy(dtype=np.float64))
        for k, v in scores.groupby("step", sort=True)["score"]
    }
    max_step = max(by_step)
    rows = []
    for step in range(1, horizon + 1):
        radius, pool = 0, np.zeros(0)
        while True:
            near = [by_step[k] for k in range(step - radius, step + radius + 1) if k in by_step]
            pool = np.concatenate(near) if near else np.zeros(0)
            if len(pool) >= _MIN_SCORES or radius >= max_step:
                break
            radius += 1
        pool = np.sort(pool)
        row: dict[str, float] = {"step": step}
        for lv in levels:
            alpha = (1 - lv / 100) / 2
            row[f"lo-{lv}"] = _conformal_quantile(pool, alpha, upper=False)
            row[f"hi-{lv}"] = _conformal_quantile(pool, 1 - alpha, upper=True)
        rows.append(row)
    return pd.DataFrame(rows)


def _conformal_quantile(sorted_scores: np.ndarray, p: float, *, upper: bool) -> float:
    n = len(sorted_scores)
    if n == 0:
        return float("nan")
    if upper:
        k = int(np.ceil((n + 1) * p)) - 1
    else:
        k = int(np.floor((n + 1) * p)) - 1
    return float(sorted_scores[min(max(k, 0), n - 1)])


def calibrate_scaled(
    panel: pd.DataFrame,
    contract: Contract,
    config: TrainerConfig,
    fit: Callable[[pd.DataFrame], Forecaster],
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Out-of-sample forecasts for ``scaled_conformal`` intervals, then their scores.

    One model (same recipe, no intervals: ``fit``) is fit on every day up to ``windows x h``
    days before the end, on at most ``interval_max_series`` series (a seeded sample: the
    scores are pooled, so a few hundred series estimate them well), and forecasts each window
    from its own cut-off with the actuals before it (as ``forecast(new_history=...)`` does)
    and the window's known covariates.
    """
    date, target = contract.date_column, contract.target
    h = config.horizon
    last = panel[date].max()
    info: dict[str, Any] = {"method": SCALED_CONFORMAL, "h": h}
    for windows in range(config.interval_windows, 0, -1):
        first_cut = last - pd.Timedelta(days=windows * h)
        # The calibration model needs a few weeks of history before its first cut-off.
        if (first_cut - panel[date].min()).days + 1 >= MIN_CALIBRATION_DAYS:
            break
    else:
        reason = (
            f"the data spans less than {h + MIN_CALIBRATION_DAYS} days: too short to "
            "calibrate intervals"
        )
        log.warning("no prediction intervals: %s", reason)
        return None, {**info, "enabled": False, "reason": reason}
    starts = panel.groupby("series_id", sort=True, observed=True)[date].min()
    ids = starts.index[starts <= first_cut]
    if len(ids) > config.interval_max_series:
        rng = np.random.default_rng(config.seed)
        ids = pd.Index(np.sort(rng.choice(np.asarray(ids), config.interval_max_series, False)))
    sub = panel[panel["series_id"].isin(ids)]
    fc = fit(sub[sub[date] <= first_cut])
    known = [c.name for c in contract.future_columns]
    frames = []
    for k in range(windows):
        cut = first_cut + pd.Timedelta(days=k * h)
        window = sub[(sub[date] > cut) & (sub[date] <= cut + pd.Timedelta(days=h))]
        history = sub[(sub[date] > first_cut) & (sub[date] <= cut)] if k else None
        result = fc.forecast(
            h, future_df=window[["series_id", date, *known]], new_history=history, levels=[]
        )
        pred = result.frame[["series_id", "date", "step", "forecast"]]
        truth = window[["series_id", date, target]].rename(columns={date: "date", target: "y"})
        rows = pred.merge(truth, on=["series_id", "date"], how="inner")
        # Scores use the noise scale of the calibration model's own training days.
        frames.append(rows.rename(columns={"forecast": "y_hat"}).assign(cutoff=first_cut))
    scores, facts = conformity_scores(pd.concat(frames, ignore_index=True), panel, contract, config)
    info.update(facts)
    info.update({"n_windows": windows, "requested_windows": config.interval_windows})
    return scores, info


def conformity_scores(
    forecasts: pd.DataFrame, panel: pd.DataFrame, contract: Contract, config: TrainerConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Scaled conformity scores of out-of-sample forecasts made with ``config``'s recipe.

    ``forecasts``: ``series_id, date, step, y, y_hat, cutoff`` (``cutoff``: the last day the
    forecasting model was trained on; each series' noise scale is measured on the days up to
    it). Score = (actual - forecast) / (scale x sqrt(forecast / level)), less its window's
    common error at that step (:func:`_without_common_error`); at most
    :data:`_MAX_SCORES_PER_STEP` per step are kept (a seeded sample). Forecasts of the
    panel's unknown days (``is_unknown``) are no residuals and are left out.
    """
    date = contract.date_column
    forecasts = known_rows(forecasts, panel, contract, date_column="date")
    parts = []
    for cutoff, group in forecasts.groupby("cutoff", sort=True):
        noise = noise_scale(panel[panel[date] <= cutoff], contract)
        unit = _width_unit(
            group["y_hat"].to_numpy(dtype=np.float64),
            group["series_id"].map(noise["scale"]).to_numpy(dtype=np.float64),
            group["series_id"].map(noise["level"]).to_numpy(dtype=np.float64),
        )
        score = (group["y"].to_numpy(dtype=np.float64) - group["y_hat"].to_numpy()) / unit
        # A window's first day less one: the origin its forecasts were made from.
        origin = group["date"] - pd.to_timedelta(group["step"].to_numpy(), unit="D")
        parts.append(
            pd.DataFrame(
                {"origin": origin.to_numpy(), "step": group["step"].to_numpy(), "score": score}
            )
        )
    scores = pd.concat(parts, ignore_index=True)
    scores = _without_common_error(scores[np.isfinite(scores["score"].to_numpy())])
    kept = []
    rng = np.random.default_rng(config.seed)
    for _step, group in scores.groupby("step", sort=True):
        if len(group) > _MAX_SCORES_PER_STEP:
            group = group.iloc[np.sort(rng.choice(len(group), _MAX_SCORES_PER_STEP, False))]
        kept.append(group)
    out = pd.concat(kept, ignore_index=True).astype({"step": "int32", "score": "float64"})
    facts = {
        "enabled": True,
        "calibration_cutoffs": sorted(
            pd.Timestamp(c).date().isoformat() for c in forecasts["cutoff"].unique()
        ),
        "n_series": int(forecasts["series_id"].nunique()),
        "n_series_without": 0,
        "n_scores": int(len(out)),
    }
    return out.reset_index(drop=True), facts


def _without_common_error(scores: pd.DataFrame) -> pd.DataFrame:
    """``step, score`` with each window's (``origin``) common error per step taken out: the
    median score of the window's series at that step, shrunk towards 0 by ``n / (n + k)``."""
    keys = [scores["origin"], scores["step"]]
    grouped = scores["score"].groupby(keys, sort=False)
    n = grouped.transform("size").to_numpy(dtype=np.float64)
    common = grouped.transform("median").to_numpy(dtype=np.float64) * n / (n + _COMMON_SHRINK)
    return pd.DataFrame(
        {"step": scores["step"].to_numpy(), "score": scores["score"].to_numpy() - common}
    )


def add_scaled_intervals(
    preds: pd.DataFrame,
    state: pd.DataFrame,
    scores: pd.DataFrame | None,
    intervals: dict[str, Any],
    levels: list[int],
    horizon: int,
    notes: list[str],
) -> int:
    """Add ``lo-<l>`` / ``hi-<l>`` to ``preds``: forecast + pooled score quantiles x the
    series' scale (``state``'s ``interval_scale`` / ``interval_level``).

    Returns how many series got no interval; the reason goes to ``notes``.
    """
    for lv in levels:
        preds[f"lo-{lv}"] = np.nan
        preds[f"hi-{lv}"] = np.nan
    if not levels:
        return 0
    n_series = int(preds[ID].nunique())
    if scores is None:
        notes.append(f"no prediction intervals: {intervals.get('reason', 'none')}")
        return n_series
    cs_h = int(intervals["h"])
    if horizon > cs_h:
        notes.append(f"no prediction intervals: calibrated for {cs_h} days, asked {horizon}")
        return n_series
    noise = state.set_index("series_id").reindex(preds[ID].astype(str))
    point = np.clip(preds[MODEL_NAME].to_numpy(dtype=np.float64), 0.0, None)
    scale = _width_unit(
        point,
        noise["interval_scale"].to_numpy(dtype=np.float64),
        noise["interval_level"].to_numpy(dtype=np.float64),
    )
    steps = preds["step"].to_numpy()
    table = _quantile_table(scores, levels, horizon)
    for lv in levels:
        lo_q = table[f"lo-{lv}"].to_numpy()[steps - 1]
        hi_q = table[f"hi-{lv}"].to_numpy()[steps - 1]
        preds[f"lo-{lv}"] = np.minimum(point + lo_q * scale, point)
        preds[f"hi-{lv}"] = np.maximum(point + hi_q * scale, point)
    return 0
