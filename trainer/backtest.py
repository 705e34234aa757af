"""``backtest``: the challenger / baseline / champion backtest and its gate, written to files."""

from __future__ import annotations

__all__ = ["load_params", "run_backtest"]

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
    SEASONAL_NAIVE,
    evaluate_methods,
    evaluation_cutoffs,
    gate_decision,
    interval_coverage,
)
from trainer.io.files import join_uri, read_json, write_json
from trainer.io.tables import write_table
from trainer.metrics import summarize

log = logging.getLogger(__name__)


def load_params(model_dir: str) -> TrainerConfig:
    """The trainer config a model folder was trained with (its ``params.json``)."""
    doc = read_json(join_uri(model_dir, "params.json"))
    try:
        # A first-version model's params.json lacks keys that meant other values then.
        return TrainerConfig.from_dict(legacy.upgrade_params(doc)).validate()
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
    if metric not in METRICS:
        raise TrainerError(f"--metric must be one of {METRICS}")
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
    write_json(gate, join_uri(output_dir, GATE_FILE))
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
