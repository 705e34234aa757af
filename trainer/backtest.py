"""Rolling-origin evaluation, the challenger / baseline / champion backtest and its gate."""

from __future__ import annotations

__all__ = [
    "GATE_METRICS",
    "evaluate_methods",
    "evaluation_cutoffs",
    "gate_decision",
    "interval_coverage",
    "run_backtest",
]

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from trainer.baselines import seasonal_naive
from trainer.config import TrainerConfig
from trainer.contract import Contract
from trainer.errors import TrainerError
from trainer.io import join_uri, read_json, write_json, write_table
from trainer.metrics import seasonal_scale, summarize

log = logging.getLogger(__name__)

GATE_METRICS = ("wape", "mae", "rmse", "mase")
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
    from trainer.model import Forecaster

    fc = Forecaster.fit(train, contract, replace(config, horizon=h), intervals=bool(levels))
    future_cols = ["series_id", contract.date_column, *[c.name for c in contract.known_columns]]
    frame = fc.predict(h, future_df=valid[future_cols], levels=list(levels))
    bounds = [f"{side}_{lv}" for lv in levels for side in ("lower", "upper")]
    return frame.rename(columns={"date": contract.date_column, "forecast": "y_hat"})[
        ["series_id", contract.date_column, "y_hat", *bounds]
    ]


def interval_coverage(frame: pd.DataFrame, horizon: int) -> dict[str, Any]:
    """Share of actuals inside each ``lower_<l>``..``upper_<l>`` interval, per horizon bucket."""
    from trainer.metrics import bucket_names

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

    def bad(x: float | None) -> bool:
        return x is None or not math.isfinite(x)

    threshold = None if champion is None else champion * (1.0 - min_improvement)
    if bad(challenger):
        passed, reason = False, f"challenger {metric} is undefined (no usable actuals?)"
    elif bad(baseline):
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
    elif bad(champion):
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


def load_params(model_dir: str) -> TrainerConfig:
    """The trainer config a model folder was trained with (its ``params.json``)."""
    doc = read_json(join_uri(model_dir, "params.json"))
    try:
        return TrainerConfig.from_dict(doc).validate()
    except TypeError as exc:
        raise TrainerError(f"{model_dir}/params.json is not a trainer config: {exc}") from None


def run_backtest(
    *,
    panel: pd.DataFrame,
    contract: Contract,
    cutoff_date: dt.date,
    horizon: int,
    n_windows: int,
    challenger: TrainerConfig,
    champion: TrainerConfig | None,
    metric: str = "wape",
    min_improvement: float = 0.0,
    step: int | None = None,
    output_dir: str,
    results_uri: str | None = None,
    run_id: str | None = None,
    sources: Mapping[str, str | None] | None = None,
    coverage: bool = True,
) -> dict[str, Any]:
    """Backtest challenger, seasonal naive and (optionally) champion; write the gate.

    The champion is *refit* from its params.json on each window rather than scored with its
    saved artifact: that artifact was trained on data that may overlap the windows, and
    scoring it there would test it partly in-sample, an unfair edge over a challenger that
    has never seen those days. Refitting both recipes on identical training windows compares
    what matters: which recipe forecasts unseen days better.
    """
    if metric not in GATE_METRICS:
        raise TrainerError(f"--metric must be one of {GATE_METRICS}")
    if min_improvement < 0 or min_improvement >= 1:
        raise TrainerError("--min-improvement must be in [0, 1) (a relative margin)")
    date = contract.date_column
    first, last = panel[date].min(), panel[date].max()
    cutoffs = evaluation_cutoffs(first, last, horizon, n_windows, step)
    methods: dict[str, TrainerConfig | None] = {"challenger": challenger, SEASONAL_NAIVE: None}
    if champion is not None:
        methods["champion"] = champion
    log.info(
        "backtest: %d windows of %d days (cut-offs %s), methods %s",
        len(cutoffs),
        horizon,
        [c.date().isoformat() for c in cutoffs],
        list(methods),
    )
    # The challenger's intervals are calibrated and scored on every window as well (one more
    # fit per window, on at most interval_max_series series): the report's coverage says
    # whether its 80% / 95% intervals hold 80% / 95% of days nobody had seen.
    levels = {"challenger": tuple(challenger.levels)} if coverage and challenger.levels else {}
    evals = evaluate_methods(panel, contract, cutoffs, horizon, methods, levels)
    windows = []
    any_eval = evals["challenger"]
    for cutoff in cutoffs:
        rows = any_eval[any_eval["cutoff"] == cutoff] if len(any_eval) else any_eval
        windows.append(
            {
                "cutoff": cutoff.date().isoformat(),
                "first_day": (cutoff + pd.Timedelta(days=1)).date().isoformat(),
                "last_day": (cutoff + pd.Timedelta(days=horizon)).date().isoformat(),
                "n_series": int(rows["series_id"].nunique()) if len(rows) else 0,
                "n_rows": len(rows),
            }
        )
    report: dict[str, Any] = {
        "metric": metric,
        "cutoff_date": cutoff_date.isoformat(),
        "horizon": horizon,
        "step": step or horizon,
        "n_windows": len(cutoffs),
        "windows": windows,
        "methods": {},
    }
    for name, frame in evals.items():
        summary = summarize(frame, horizon) if len(frame) else {"overall": {}, "buckets": {}}
        config = methods[name]
        report["methods"][name] = {
            "source": (sources or {}).get(name),
            "config": config.to_dict() if config is not None else {"season": 7},
            **summary,
        }
        if name in levels and len(frame):
            report["methods"][name]["coverage"] = interval_coverage(frame, horizon)
            log.info("%s interval coverage: %s", name, report["methods"][name]["coverage"])
    score = {name: report["methods"][name]["overall"].get(metric) for name in methods}
    gate = gate_decision(
        metric,
        challenger=_num(score["challenger"]),
        baseline=_num(score[SEASONAL_NAIVE]),
        champion=_num(score["champion"]) if "champion" in score else None,
        min_improvement=min_improvement,
    )
    log.info(
        "gate %s: %s (challenger=%s baseline=%s champion=%s)",
        "PASSED" if gate["passed"] else "FAILED",
        gate["reason"],
        score["challenger"],
        score[SEASONAL_NAIVE],
        score.get("champion"),
    )
    write_json(report, join_uri(output_dir, "backtest.json"))
    write_json(gate, join_uri(output_dir, "gate.json"))
    if results_uri:
        if not run_id:
            raise TrainerError("--results-uri needs --run-id (rows are replaced per run)")
        created = pd.Timestamp.now(tz="UTC").tz_localize(None)
        rows = []
        for name, item in report["methods"].items():
            overall = item["overall"]
            rows.append(
                {
                    "run_id": run_id,
                    "method": name,
                    "metric": metric,
                    "value": _num(overall.get(metric)),
                    **{m: _num(overall.get(m)) for m in ("mae", "rmse", "wape", "mase", "bias")},
                    "n_rows": int(overall.get("n", 0)),
                    "n_windows": len(cutoffs),
                    "horizon": horizon,
                    "cutoff_date": pd.Timestamp(cutoff_date),
                    "gate_passed": bool(gate["passed"]),
                    "created_at": created,
                }
            )
        write_table(
            pd.DataFrame(rows),
            results_uri,
            replace_where={"run_id": run_id},
            date_columns=["cutoff_date"],
        )
    return {"backtest": report, "gate": gate}


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)
