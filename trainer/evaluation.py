"""Scoring recipes on held-out windows: rolling cut-offs, forecasts of each, and the gate.

``train`` holds out its validation windows with these, ``backtest`` compares the challenger,
the seasonal-naive baseline and the champion (its recipe refit, its stored artifact moved
forward, or both) on the same rows and applies the gate.
"""

from __future__ import annotations

__all__ = [
    "MIN_TRAIN_DAYS",
    "NON_RECIPE_FIELDS",
    "METRIC_MEANINGS",
    "SEASONAL_NAIVE",
    "UNKNOWN_DAY",
    "FutureTransform",
    "evaluate_methods",
    "evaluation_cutoffs",
    "gate_decision",
    "interval_coverage",
    "metric_label",
    "recipe_changed",
]

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any, NamedTuple, TypeGuard

import pandas as pd

from sf_contract import Contract
from trainer.baselines import seasonal_naive
from trainer.config import TrainerConfig
from trainer.errors import TrainerError
from trainer.metrics import bucket_names, seasonal_scale
from trainer.model import Forecaster
from trainer.progress import progress

log = logging.getLogger(__name__)

# What a window's forecast days are given for the known and forecast columns: (held-out rows,
# training rows, cut-off) -> the rows as the forecasters see them (e.g. with a weather forecast
# error, trainer.forecast_error). The actuals scored are never touched.
FutureTransform = Callable[[pd.DataFrame, pd.DataFrame, pd.Timestamp], pd.DataFrame]

SEASONAL_NAIVE = "seasonal_naive"
# A training window shorter than this is too thin to say anything about a model.
MIN_TRAIN_DAYS = 14
# Panel column marking days whose row was quarantined: the target there is a fill that keeps
# the lag features going, not an actual, so no forecast is scored against it.
UNKNOWN_DAY = "is_unknown"
# TrainerConfig fields that cannot change a point forecast the gate scores (see recipe_changed).
NON_RECIPE_FIELDS = frozenset(
    {
        "horizon",
        "num_threads",
        "seed",
        "hpt_metric_name",
        "validation_windows",
        "levels",
        "interval_method",
        "interval_windows",
        "interval_max_series",
    }
)


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
    future_cols = ["series_id", contract.date_column, *[c.name for c in contract.future_columns]]
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


def _artifact_forecasts(
    fc: Forecaster,
    panel: pd.DataFrame,
    valid: pd.DataFrame,
    cutoff: pd.Timestamp,
    h: int,
    name: str,
) -> pd.DataFrame | None:
    """``fc`` as it would serve at ``cutoff``: moved forward over the days after its training
    end up to the cut-off, then forecasting ``h`` days, on the window's series it knows.

    Series the artifact was not trained on (or whose new rows do not follow its last day)
    cannot be forecast by it and are left out, with a log line saying how many.
    """
    contract = fc.contract
    date = contract.date_column
    last = fc.series.set_index("series_id")["last_date"]
    window_ids = pd.Index(valid["series_id"].astype(str).unique())
    ids = window_ids.intersection(last.index)
    # Only rows after the artifact's earliest series end matter; slicing by date first keeps
    # the id mapping to the (short) stretch between its training end and the cut-off.
    recent = panel[(panel[date] > last.min()) & (panel[date] <= cutoff)]
    recent = recent[recent["series_id"].isin(ids)]
    rows_ids = recent["series_id"].astype(str)
    newer = recent[recent[date].to_numpy() > rows_ids.map(last).to_numpy()]
    firsts = newer.groupby(rows_ids.loc[newer.index], observed=True)[date].min()
    broken = firsts.index[(firsts != last.reindex(firsts.index) + pd.Timedelta(days=1)).to_numpy()]
    ids = ids.difference(broken)
    unknown = len(window_ids) - len(ids)
    if unknown:
        log.info(
            "%s: %d of %d series of the window after %s are unknown to it (or have a gap "
            "after its training end) and are left out of its comparison",
            name,
            unknown,
            len(window_ids),
            cutoff.date(),
        )
    if ids.empty:
        return None
    history = newer[newer["series_id"].isin(ids)]
    future_cols = [
        c
        for c in ["series_id", date, *[k.name for k in contract.future_columns]]
        if c in valid.columns
    ]
    future = valid.loc[valid["series_id"].isin(ids), future_cols]
    result = fc.forecast(h, future_df=future, new_history=history, levels=[], series_ids=list(ids))
    return result.frame.rename(columns={"date": date, "forecast": "y_hat"})[
        ["series_id", date, "y_hat"]
    ]


def _usable_artifact(fc: Forecaster, panel: pd.DataFrame, contract: Contract, name: str) -> bool:
    """Whether the panel has what ``fc`` needs to move forward (its contract may be older)."""
    theirs = fc.contract
    needed = [theirs.target, *theirs.series_keys]
    needed += [c.name for c in theirs.future_columns + theirs.static_columns]
    missing = [c for c in needed if c not in panel.columns]
    if theirs.date_column != contract.date_column or theirs.target != contract.target or missing:
        log.warning(
            "%s cannot be scored on this panel: its contract needs date '%s', target '%s' "
            "and columns missing here %s",
            name,
            theirs.date_column,
            theirs.target,
            missing,
        )
        return False
    return True


def evaluate_methods(
    panel: pd.DataFrame,
    contract: Contract,
    cutoffs: list[pd.Timestamp],
    horizon: int,
    methods: Mapping[str, TrainerConfig | None],
    interval_levels: Mapping[str, Sequence[int]] | None = None,
    artifacts: Mapping[str, Forecaster] | None = None,
    *,
    step_name: str = "evaluation",
    labels: Mapping[str, str] | None = None,
    future_transform: FutureTransform | None = None,
) -> dict[str, pd.DataFrame]:
    """Forecast every window with every method on exactly the same rows.

    ``methods`` maps a name to a trainer config (refit on each window's training data) or
    to ``None`` for the seasonal-naive baseline. Each result frame has ``series_id, date,
    cutoff, step, y, y_hat, scale`` (scale: the window's seasonal-naive MAE, for MASE).
    Series that start after a cut-off cannot be forecast from it and are left out of that
    window for every method alike. Methods named in ``interval_levels`` are fit with their
    prediction intervals (calibrated on that window's training days only) and their frames
    also have ``lower_<l>`` / ``upper_<l>``.

    ``artifacts`` maps a name to an already trained forecaster, scored as it would serve:
    only on windows whose cut-off is on or after its training end (earlier ones would test
    it on days it was trained on), moved forward over the panel rows between its training
    end and the cut-off, and only on the series it knows. Its frame therefore covers a
    subset of the other methods' rows; compare on that subset (same keys).

    Days flagged ``is_unknown`` in the panel (a quarantined row whose target was filled for
    the features only) are not scored, and do not enter the MASE scale either.

    Each model fit and each artifact forecast logs a start and an end line, ``<step_name>
    window <i>/<n> (cut-off <day>): <label> ...`` (``labels`` maps a method name to its label,
    default ``<name> fit`` / ``<name> forecast``); seasonal naive takes no time and logs none.

    ``future_transform`` changes what the forecasters are given for a window's forecast days
    (its held-out rows, its training rows, its cut-off -> the rows given); default: the actual
    values of the known and forecast columns. The actuals scored are the panel's either way.
    """
    interval_levels = interval_levels or {}
    labels = labels or {}
    artifacts = {
        name: fc
        for name, fc in (artifacts or {}).items()
        if _usable_artifact(fc, panel, contract, name)
    }
    date, target = contract.date_column, contract.target
    unknown = (
        panel[UNKNOWN_DAY].fillna(False).astype(bool) if UNKNOWN_DAY in panel.columns else None
    )
    out: dict[str, list[pd.DataFrame]] = {name: [] for name in [*methods, *artifacts]}
    for i, cutoff in enumerate(cutoffs, 1):
        in_train = panel[date] <= cutoff
        train = panel[in_train]
        end = cutoff + pd.Timedelta(days=horizon)
        valid = panel[
            (panel[date] > cutoff)
            & (panel[date] <= end)
            & panel["series_id"].isin(train["series_id"].unique())
        ]
        if valid.empty:
            continue
        history = train
        if unknown is not None and unknown[in_train].any():
            # A NaN target drops the differences that touch an unknown day on either side.
            history = train.assign(**{target: train[target].where(~unknown[in_train])})
        scale = seasonal_scale(
            history, id_col="series_id", time_col=date, target_col=target, season=7
        )
        scored = valid if unknown is None else valid[~unknown[valid.index]]
        given = valid if future_transform is None else future_transform(valid, train, cutoff)
        truth = scored[["series_id", date, target]].rename(columns={target: "y"})
        truth = truth.assign(
            cutoff=cutoff, step=(truth[date] - cutoff).dt.days.astype(int), scale=scale
        )
        where = f"(cut-off {cutoff.date().isoformat()}):"
        for name, config in methods.items():
            if config is None:
                fc = seasonal_naive(
                    train, horizon, id_col="series_id", time_col=date, target_col=target
                )[["series_id", date, "y_hat"]]
            else:
                levels = interval_levels.get(name, ())
                label = labels.get(name) or f"{name} fit" + (
                    f" with {'/'.join(map(str, levels))}% intervals" if levels else ""
                )
                with progress(
                    log, f"{step_name} window", i, len(cutoffs), detail=f"{where} {label}"
                ):
                    fc = _model_forecasts(train, given, contract, config, horizon, levels)
            rows = truth.merge(fc, on=["series_id", date], how="left")
            if rows["y_hat"].isna().any():
                raise RuntimeError(f"{name} left {int(rows['y_hat'].isna().sum())} rows empty")
            out[name].append(rows)
        for name, artifact in artifacts.items():
            if cutoff < pd.Timestamp(artifact.last_date):
                continue
            label = labels.get(name) or f"{name} forecast"
            with progress(log, f"{step_name} window", i, len(cutoffs), detail=f"{where} {label}"):
                served = _artifact_forecasts(artifact, panel, given, cutoff, horizon, name)
            if served is None:
                continue
            # A compact read's categorical ids would not merge with the forecast's text ids.
            rows = truth.assign(series_id=truth["series_id"].astype(str)).merge(
                served, on=["series_id", date], how="inner"
            )
            out[name].append(rows)
    return {
        name: (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
        for name, frames in out.items()
    }


def recipe_changed(challenger: TrainerConfig, champion: TrainerConfig) -> bool:
    """Whether two configs are different recipes, i.e. could forecast differently.

    Compared: every field except :data:`NON_RECIPE_FIELDS`, so the LightGBM params, the
    feature config, ``train_window_days`` and ``max_train_rows`` (and any field added later,
    until it is listed). Ignored, because they do not move the point forecasts the gate
    scores or are not a choice of model:

    - ``horizon``: the backtest sets the window length itself; ``num_threads``: speed only
      (fits are deterministic); ``hpt_metric_name``, ``validation_windows``: reporting of the
      ``train`` command only.
    - ``levels``, ``interval_method``, ``interval_windows``, ``interval_max_series``: the
      prediction intervals only (the gate scores point forecasts; coverage is reported).
    - ``seed``: only matters with bagging / feature sampling / row sampling, and then it is
      noise, not a better recipe; a re-drawn seed must not be made to beat itself by
      ``min_improvement``.
    """
    names = [f.name for f in fields(TrainerConfig) if f.name not in NON_RECIPE_FIELDS]
    return any(getattr(challenger, n) != getattr(champion, n) for n in names)


def gate_decision(
    metric: str,
    challenger: float,
    baseline: float,
    *,
    recipe_changed: bool | None,
    champion_recipe: float | None = None,
    champion_artifact: float | None = None,
    challenger_on_artifact_rows: float | None = None,
    min_improvement: float = 0.0,
    freshness_tolerance: float = 0.02,
    champion_train_end: str | None = None,
) -> dict[str, Any]:
    """Decide whether the challenger replaces production (lower metric is better).

    Args:
        challenger, baseline: the challenger's and seasonal naive's scores on every window.
        recipe_changed: ``None`` when nothing is in production, else whether the challenger's
            recipe differs from production's (:func:`recipe_changed`).
        champion_recipe: production's recipe refit on the same windows (a changed recipe only).
        champion_artifact: production's stored model, moved forward, scored on the windows
            after its training end and the series it knows; ``None`` when no window is after
            its training end (or it could not be scored).
        challenger_on_artifact_rows: the challenger on exactly those rows.

    Rules, in order:

    1. The challenger must be strictly below seasonal naive (``beats_baseline``), always.
    2. Nothing in production (``champion_mode="none"``): that is enough.
    3. Same recipe, newer data: with windows after production's training end
       (``"artifact"``) it must not be worse than production there by more than
       ``freshness_tolerance`` (``<= artifact * (1 + tolerance)``: the fresher model of the
       same recipe is preferred unless it clearly lost accuracy); without such windows
       (``"same_recipe"``) it passes: a refit of the same recipe would only tie with itself.
    4. Changed recipe: strictly below ``recipe * (1 - min_improvement)`` and, with windows
       after production's training end, strictly below ``artifact * (1 - min_improvement)``
       on those rows. ``champion_mode`` is the binding comparison: the one that failed (the
       recipe's first), else the one passed by the smaller margin.

    ``reason`` is one plain sentence for whoever reads the run, not the code: the verdict
    first (``promoted``, ``kept production``, or ``not promoted`` when nothing is in
    production), then why, with the scores it compared rounded to 3 decimals, e.g. "kept
    production: the new model was no better than production's recipe retrained on the same
    days (WAPE 0.384 vs 0.384; lower is better)".

    ``champion`` in the result is the production score of the comparison that decided
    (``None`` in modes ``none`` / ``same_recipe``). An undefined (NaN) challenger or
    baseline fails the gate; an undefined production score is no comparison (the baseline
    decides), as before.
    """
    beats = _defined(challenger) and _defined(baseline) and challenger < baseline
    says = _Words(metric, champion_train_end)
    # A failed gate leaves production in place when there is one; otherwise nothing ships.
    verdict = "not promoted" if recipe_changed is None else "kept production"
    versus_baseline = f"({says.versus(challenger, baseline)}; lower is better)"
    if not _defined(challenger):
        base = (
            f"{verdict}: the new model's {says.metric} could not be computed "
            "(no actual sales to score it on)"
        )
    elif not _defined(baseline):
        base = (
            f"{verdict}: the seasonal-naive baseline's {says.metric} could not be computed, so "
            f"there is nothing to compare the new model with (its {says.metric} "
            f"{_round3(challenger)})"
        )
    elif not beats:
        base = (
            f"{verdict}: the new model did not beat the seasonal-naive baseline {versus_baseline}"
        )
    else:
        base = f"the new model beats the seasonal-naive baseline {versus_baseline}"
    artifact: _Check | None = None
    if _defined(champion_artifact) and _defined(challenger_on_artifact_rows):
        artifact = _Check("artifact", champion_artifact, challenger_on_artifact_rows)
    used: float | None = None
    if recipe_changed is None:
        mode, ok = "none", True
        reason = f"promoted: there is no model in production yet, and {base}"
    elif not recipe_changed and champion_artifact is None:
        mode, ok = "same_recipe", True
        reason = (
            "promoted: same recipe on newer data, and no test day falls after "
            f"{says.train_end}, so the fresher model replaces it; {base}"
        )
    elif not recipe_changed:
        mode, used = "artifact", champion_artifact
        if artifact is None:
            ok = True
            reason = (
                f"promoted: same recipe on newer data; production's {says.metric} on "
                f"{says.days} could not be computed, so the seasonal-naive baseline decides: {base}"
            )
        else:
            limit = artifact.champion * (1.0 + freshness_tolerance)
            ok = artifact.challenger <= limit
            scores = f"{says.versus(artifact.challenger, artifact.champion)} on {says.days}"
            tolerance = f"the {_percent(freshness_tolerance)} tolerance"
            if ok:
                reason = (
                    f"promoted: same recipe on newer data, and no worse than production "
                    f"({scores}, within {tolerance}); {base}"
                )
            else:
                reason = (
                    "kept production: same recipe on newer data, but the new model was worse "
                    f"than production by more than {tolerance} ({scores}; lower is better)"
                )
    else:
        checks = [c for c in (artifact,) if c is not None]
        if _defined(champion_recipe):
            checks.insert(0, _Check("recipe", champion_recipe, challenger))
        mode, ok, reason, used = _versus_changed(
            says, checks, min_improvement, champion_recipe, base
        )
    return {
        "passed": bool(beats and ok),
        "metric": metric,
        "reason": reason if beats else base,
        "challenger": challenger,
        "baseline": baseline,
        "champion": used,
        "min_improvement": min_improvement,
        "beats_baseline": bool(beats),
        "champion_mode": mode,
        "recipe_changed": recipe_changed,
        "champion_train_end": champion_train_end,
        "freshness_tolerance": freshness_tolerance,
        "champion_recipe": champion_recipe,
        "champion_artifact": champion_artifact,
        "challenger_on_artifact_rows": challenger_on_artifact_rows,
    }


class _Check(NamedTuple):
    """One comparison with production: its mode, production's and the challenger's score."""

    mode: str
    champion: float
    challenger: float


class _Words:
    """The pieces of a gate reason: a metric's name, two scores, production's last day."""

    def __init__(self, metric: str, champion_train_end: str | None) -> None:
        self.metric = metric_label(metric)
        self.train_end = "production's last training day" + (
            f" ({champion_train_end})" if champion_train_end else ""
        )
        self.days = (
            f"the days after {champion_train_end}"
            if champion_train_end
            else "the days after production's last training day"
        )

    def versus(self, new: float, old: float) -> str:
        a, b = _round3(new), _round3(old)
        # Rounding must not make a decided comparison look like a tie.
        close = ", a difference below 0.001" if a == b and _defined(new) and new != old else ""
        return f"{self.metric} {a} vs {b}{close}"


def _versus_changed(
    says: _Words,
    checks: list[_Check],
    min_improvement: float,
    recipe: float | None,
    base: str,
) -> tuple[str, bool, str, float | None]:
    """(mode, passed, reason, production score used) for a changed recipe."""
    if not checks:
        reason = (
            f"promoted: a new recipe; production's {says.metric} could not be computed, so "
            f"the seasonal-naive baseline decides: {base}"
        )
        return "recipe", True, reason, recipe
    limits = {c.mode: c.champion * (1.0 - min_improvement) for c in checks}

    def whom(c: _Check) -> str:
        if c.mode == "recipe":
            return "production's recipe retrained on the same days"
        return "the production model as it serves"

    def scores(c: _Check) -> str:
        where = f" on {says.days}" if c.mode == "artifact" else ""
        needs = f", needs below {_round3(limits[c.mode])}" if min_improvement else ""
        return f"{says.versus(c.challenger, c.champion)}{where}{needs}"

    better = f"not {_percent(min_improvement)} better" if min_improvement else "no better"
    failed = [c for c in checks if not c.challenger < limits[c.mode]]
    if failed:
        c = failed[0]
        reason = (
            f"kept production: the new model was {better} than {whom(c)} "
            f"({scores(c)}; lower is better)"
        )
        return c.mode, False, reason, c.champion
    # Every comparison passed: the binding one is the one passed by the smaller margin.
    binding = max(checks, key=lambda c: c.challenger / limits[c.mode])
    margin = f"more than {_percent(min_improvement)} " if min_improvement else ""
    beaten = " and than ".join(f"{whom(c)} ({scores(c)})" for c in checks)
    reason = f"promoted: a new recipe that is {margin}better than {beaten}; {base}"
    return binding.mode, True, reason, binding.champion


_METRIC_LABELS = {"wape": "WAPE", "mae": "MAE", "rmse": "RMSE", "mase": "MASE"}
# What each gate metric means, for the log of the commands that report it.
METRIC_MEANINGS = {
    "wape": "WAPE = sum of absolute errors / sum of actual sales; lower is better",
    "mae": "MAE = mean absolute error per series and day, in units of the target; lower is better",
    "rmse": "RMSE = square root of the mean squared error per series and day (big misses "
    "weigh more); lower is better",
    "mase": "MASE = sum of absolute errors / sum of the errors of repeating last week's "
    "value on the training days; lower is better",
}


def metric_label(metric: str) -> str:
    """How a metric is named to people: ``WAPE``, ``MAE``..."""
    return _METRIC_LABELS.get(metric, metric.upper())


def _round3(value: float | None) -> str:
    """A score rounded to 3 decimals, without trailing zeros (0.52, 0.384)."""
    if not _defined(value):
        return "undefined"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _percent(share: float) -> str:
    """0.02 -> ``2%``, 0.025 -> ``2.5%``."""
    return f"{share * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _defined(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)
