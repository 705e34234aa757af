"""``backtest``: the challenger / baseline / champion backtest and its gate, written to files."""

from __future__ import annotations

__all__ = ["CHAMPION_ARTIFACT", "load_artifact", "load_params", "run_backtest"]

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sf_contract import METRICS, Contract
from sf_contract.files import GATE_FILE
from trainer import legacy
from trainer.config import TrainerConfig
from trainer.errors import TrainerError
from trainer.evaluation import (
    METRIC_MEANINGS,
    SEASONAL_NAIVE,
    FutureTransform,
    evaluate_methods,
    evaluation_cutoffs,
    gate_decision,
    interval_coverage,
    recipe_changed,
)
from trainer.forecast_error import add_forecast_error, describe, noisy_columns, parse_noise
from trainer.io.files import fetch_dir, join_uri, read_json, write_json
from trainer.io.tables import write_table
from trainer.metrics import summarize
from trainer.model import Forecaster
from trainer.progress import progress
from trainer.recipe import data_shape, resolve, upgrade_pre_recipe

log = logging.getLogger(__name__)

# The production model as it serves: its stored artifact moved forward over newer data.
CHAMPION_ARTIFACT = "champion_artifact"


def load_params(model_dir: str) -> TrainerConfig:
    """The trainer config a model folder was trained with (its ``params.json``)."""
    doc = read_json(join_uri(model_dir, "params.json"))
    try:
        # A first-version model's params.json lacks keys that meant other values then, and
        # one from before recipes was the panel recipe, whatever the data's shape.
        doc = upgrade_pre_recipe(legacy.upgrade_params(doc))
        return TrainerConfig.from_dict(doc).validate()
    except TypeError as exc:
        raise TrainerError(f"{model_dir}/params.json is not a trainer config: {exc}") from None


def load_artifact(model_dir: str) -> Forecaster:
    """The forecaster stored in a model folder (local or ``gs://``), as ``predict`` loads it."""
    with fetch_dir(model_dir) as local:
        return Forecaster.load(local)


def run_backtest(
    *,
    panel: pd.DataFrame,
    contract: Contract,
    cutoff_date: dt.date,
    horizon: int,
    n_windows: int,
    challenger: TrainerConfig,
    champion: TrainerConfig | None,
    champion_artifact: Forecaster | None = None,
    metric: str = "wape",
    min_improvement: float = 0.0,
    freshness_tolerance: float = 0.02,
    step: int | None = None,
    output_dir: str,
    results_uri: str | None = None,
    run_id: str | None = None,
    sources: Mapping[str, str | None] | None = None,
    coverage: bool = True,
    weather_noise: float = 0.0,
    weather_noise_seed: int = 0,
) -> dict[str, Any]:
    """Backtest challenger, seasonal naive and the production model; write the gate.

    The challenger's recipe is refit on each rolling window. Production (``champion``: its
    params.json, ``champion_artifact``: its stored model) is scored in up to two ways, chosen
    by :func:`trainer.evaluation.gate_decision`'s rules:

    - as it serves (``champion_artifact``), on the windows whose cut-off is on or after its
      training end: moved forward over the rows up to each cut-off, on the series it knows,
      and the challenger is scored on exactly those rows. Earlier windows are left out: the
      artifact has seen their days, and scoring it there would be partly in-sample.
    - by its recipe refit on every window (``champion``), only when the challenger's recipe
      differs (:func:`trainer.evaluation.recipe_changed`): the same recipe refit would tie
      with the challenger, so it is not fit at all.

    The contract's forecast columns (weather) are given their actual values on the held-out
    days (a perfect forecast) unless ``weather_noise`` > 0: then each window's values get a
    seeded forecast error of that size in the column's standard deviations, growing with the
    lead time (:mod:`trainer.forecast_error`). ``backtest.json`` records which
    (``weather_noise``; ``perfect_forecast_columns`` lists the columns given as actuals).
    """
    if metric not in METRICS:
        raise TrainerError(f"--metric must be one of {METRICS}")
    if min_improvement < 0 or min_improvement >= 1:
        raise TrainerError("--min-improvement must be in [0, 1) (a relative margin)")
    if freshness_tolerance < 0 or freshness_tolerance >= 1:
        raise TrainerError("--freshness-tolerance must be in [0, 1) (a relative margin)")
    date = contract.date_column
    first, last = panel[date].min(), panel[date].max()
    cutoffs = evaluation_cutoffs(first, last, horizon, n_windows, step)
    changed = None
    if champion is not None:
        # Compared as each would be fit on this data: "auto" and the panel recipe it picks
        # for a panel are the same recipe.
        shape = data_shape(panel, contract, challenger)
        changed = recipe_changed(resolve(challenger, shape)[0], resolve(champion, shape)[0])
    artifact = champion_artifact if champion is not None else None
    train_end = artifact.last_date if artifact is not None else None
    post_train = [c for c in cutoffs if train_end is not None and c >= pd.Timestamp(train_end)]
    methods: dict[str, TrainerConfig | None] = {"challenger": challenger, SEASONAL_NAIVE: None}
    if changed:
        methods["champion"] = champion
    artifacts = {CHAMPION_ARTIFACT: artifact} if artifact is not None and post_train else {}
    log.info(
        "backtest: %d windows of %d days (cut-offs %s), methods %s; production %s",
        len(cutoffs),
        horizon,
        [c.date().isoformat() for c in cutoffs],
        [*methods, *artifacts],
        "none"
        if champion is None
        else f"recipe {'changed' if changed else 'unchanged'}, trained up to {train_end}, "
        f"{len(post_train)} window(s) after that",
    )
    # Said once, where the scores start: the gate's reason quotes them without a definition.
    log.info("backtest: the gate compares %s", METRIC_MEANINGS.get(metric, metric))
    noise = parse_noise(weather_noise)
    transform, noise_doc, perfect = _weather_forecast(contract, noise, weather_noise_seed)
    # The challenger's intervals are calibrated and scored on every window as well (one more
    # fit per window, on at most interval_max_series series): the report's coverage says
    # whether its 80% / 95% intervals hold 80% / 95% of days nobody had seen.
    levels = {"challenger": tuple(challenger.levels)} if coverage and challenger.levels else {}
    n_series = int(panel["series_id"].nunique())
    # Under a scheduler a silent minute looks hung: every fit logs its start and its end.
    with progress(log, f"backtest: all {len(cutoffs)} window(s) on {n_series} series"):
        evals = evaluate_methods(
            panel,
            contract,
            cutoffs,
            horizon,
            methods,
            levels,
            artifacts,
            step_name="backtest:",
            labels={
                "champion": "champion recipe refit",
                CHAMPION_ARTIFACT: "champion (stored model) forecast",
            },
            future_transform=transform,
        )
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
        "perfect_forecast_columns": perfect,
        "weather_noise": noise_doc,
        "methods": {},
    }
    for name, frame in evals.items():
        summary = summarize(frame, horizon) if len(frame) else {"overall": {}, "buckets": {}}
        config = artifact.config if name == CHAMPION_ARTIFACT and artifact else methods.get(name)
        source_name = "champion" if name == CHAMPION_ARTIFACT else name
        report["methods"][name] = {
            "source": (sources or {}).get(source_name),
            "config": config.to_dict() if config is not None else {"season": 7},
            "n_windows": int(frame["cutoff"].nunique()) if len(frame) else 0,
            **summary,
        }
        if name in levels and len(frame):
            report["methods"][name]["coverage"] = interval_coverage(frame, horizon)
            shares = {
                lv: {b: round(v, 3) for b, v in buckets.items()}
                for lv, buckets in report["methods"][name]["coverage"].items()
            }
            log.info("%s interval coverage (share of actual days inside): %s", name, shares)
    score = {name: report["methods"][name]["overall"].get(metric) for name in evals}
    artifact_score = challenger_same_rows = None
    served = evals.get(CHAMPION_ARTIFACT)
    if served is not None and len(served):
        same = _same_rows(evals["challenger"], served, date)
        same_summary = summarize(same, horizon)
        challenger_same_rows = _num(same_summary["overall"].get(metric))
        artifact_score = _num(score[CHAMPION_ARTIFACT])
        on_post = any_eval[any_eval["cutoff"].isin(post_train)]
        left_out = on_post["series_id"].astype(str).nunique() - served["series_id"].nunique()
        report["methods"][CHAMPION_ARTIFACT].update(
            {
                "train_end": train_end.isoformat() if train_end else None,
                "n_series_left_out": int(left_out),
                "challenger_same_rows": same_summary["overall"],
            }
        )
        log.info(
            "production as served, %d window(s) after its training end %s: %s %.3f vs the "
            "challenger's %.3f on the same %d rows (%d series it does not know left out)",
            report["methods"][CHAMPION_ARTIFACT]["n_windows"],
            train_end,
            metric,
            artifact_score,
            challenger_same_rows,
            len(same),
            left_out,
        )
    elif artifacts:
        log.warning(
            "production's stored model could not be scored on any window after %s", train_end
        )
    gate = gate_decision(
        metric,
        _num(score["challenger"]),
        _num(score[SEASONAL_NAIVE]),
        recipe_changed=changed,
        champion_recipe=_num(score["champion"]) if "champion" in score else None,
        champion_artifact=artifact_score,
        challenger_on_artifact_rows=challenger_same_rows,
        min_improvement=min_improvement,
        freshness_tolerance=freshness_tolerance,
        champion_train_end=train_end.isoformat() if train_end else None,
    )
    log.info(
        "gate %s (%s): %s",
        "PASSED" if gate["passed"] else "FAILED",
        gate["champion_mode"],
        gate["reason"],
    )
    write_json(report, join_uri(output_dir, "backtest.json"))
    write_json(gate, join_uri(output_dir, GATE_FILE))
    if results_uri:
        if not run_id:
            raise TrainerError("--results-uri needs --run-id (rows are replaced per run)")
        created = pd.Timestamp.now(tz="UTC").tz_localize(None)
        records = []
        for name, item in report["methods"].items():
            overall = item["overall"]
            records.append(
                {
                    "run_id": run_id,
                    "method": name,
                    "metric": metric,
                    "value": _num(overall.get(metric)),
                    **{m: _num(overall.get(m)) for m in ("mae", "rmse", "wape", "mase", "bias")},
                    "n_rows": int(overall.get("n", 0)),
                    "n_windows": int(item["n_windows"]),
                    "horizon": horizon,
                    "cutoff_date": pd.Timestamp(cutoff_date),
                    "gate_passed": bool(gate["passed"]),
                    "created_at": created,
                }
            )
        write_table(
            pd.DataFrame(records),
            results_uri,
            replace_where={"run_id": run_id},
            date_columns=["cutoff_date"],
        )
    # The per-window rows stay in memory for the run report (trainer.report); not written.
    return {"backtest": report, "gate": gate, "predictions": evals}


def _weather_forecast(
    contract: Contract, noise: float, seed: int
) -> tuple[FutureTransform | None, dict[str, Any] | None, list[str]]:
    """What the held-out days give the forecast columns, said in the log: their actual values
    (a perfect forecast, so nobody takes the backtest for live accuracy) or those values with a
    realistic forecast error. Returns the window transform (``None``: actuals), the report's
    ``weather_noise`` document and the columns still given as actuals."""
    columns = contract.forecast_columns
    names = [c.name for c in columns]
    if not columns:
        return None, None, []
    if noise > 0 and not noisy_columns(columns):
        log.warning(
            "backtest: --weather-noise %g has no numeric forecast column to apply to", noise
        )
        noise = 0.0
    if noise == 0:
        log.warning(
            "backtest: the forecast columns %s are given their actual values on the held-out "
            "days, as a perfect forecast: live accuracy, with real forecasts of them (or their "
            "climatology when none is given), will be lower; --weather-noise (e.g. 0.5) gives "
            "them a realistic forecast error instead",
            names,
        )
        return None, describe(0.0, seed, columns), names
    windows: list[dict[str, Any]] = []

    def transform(valid: pd.DataFrame, train: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
        given, applied = add_forecast_error(
            valid,
            train,
            columns,
            date_column=contract.date_column,
            cutoff=cutoff,
            noise=noise,
            seed=seed,
        )
        windows.append(
            {
                "cutoff": cutoff.date().isoformat(),
                "error_std_at_7_days": applied.error_std_at_7_days(),
                "multiplicative": list(applied.multiplicative),
            }
        )
        return given

    doc = describe(noise, seed, columns)
    # Filled as the windows are forecast: each column's error size at 7 days, in its units (a
    # multiplicative column's: the log-sd of its factor).
    doc["windows"] = windows
    perfect = list(doc["perfect_forecast_columns"])
    log.warning(
        "backtest: the forecast columns %s get a simulated forecast error on the held-out "
        "days instead of their actual values (weather noise %g, seed %d: zero-mean, %g x each "
        "column's spread around its 31-day mean on the training days at 7 days ahead, x "
        "sqrt(h / 7) by lead time h, AR(1) %.1f from day to day, clipped to the column's "
        "observed range; an amount often nothing, like rain, x a mean-one factor instead)%s",
        doc["columns"],
        noise,
        seed,
        noise,
        doc["ar1_phi"],
        f"; {perfect} (not numeric) keep their actual values, a perfect forecast"
        if perfect
        else "",
    )
    return transform, doc, perfect


def _same_rows(frame: pd.DataFrame, like: pd.DataFrame, date: str) -> pd.DataFrame:
    """The rows of ``frame`` (series, day, cut-off) that ``like`` has too."""
    keys = ["series_id", date, "cutoff"]
    frame = frame.assign(series_id=frame["series_id"].astype(str))
    same = frame.merge(like[keys].assign(series_id=like["series_id"].astype(str)), on=keys)
    if len(same) != len(like):
        raise RuntimeError(f"the challenger lacks {len(like) - len(same)} of production's rows")
    return same


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)
