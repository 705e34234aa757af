"""Every decision a step of the daily DAG makes, as plain functions: no Airflow, no I/O.

Both platforms call these (the local steps in :mod:`sales_forecast.steps`, the GCP operators in
:mod:`sales_forecast.platforms.gcp`), so a rule written here holds on both, and each is tested
once, with a table of cases (tests/plugins/sales_forecast/test_decisions.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sales_forecast.errors import DataError
from sf_contract.files import GateFile

__all__ = [
    "STALE_AFTER_DAYS",
    "ForecastModel",
    "TrainerPaths",
    "backtest_args",
    "backtest_champion",
    "deploy_skip_reason",
    "features_outcome",
    "forecast_args",
    "forecast_model",
    "forecast_outcome",
    "gate_log",
    "register_skip_reason",
    "train_args",
    "train_env",
    "validation_outcome",
]

# Data whose last day is more than this many days before the cut-off is worth a warning: the
# forecasts then start after the data's last day, not after the cut-off.
STALE_AFTER_DAYS = 7


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


# ---------------------------------------------------------------- validate


def validation_outcome(
    *,
    staged: int,
    rejected: int,
    malformed: int,
    examples: Iterable[Mapping[str, Any]],
    input_uri: str,
    run_id: str,
    max_reject_fraction: float,
) -> tuple[dict[str, Any], str]:
    """Whether a validated file may join history, and the first problems, worded for the user.

    ``staged`` rows were split into columns, ``rejected`` of them failed a rule, ``malformed``
    lines could not even be split. Returns ``(summary, first_problems)``; raises
    :class:`DataError` when the run must stop (nothing valid, or too much rejected).
    """
    total = staged + malformed
    rejected_all = rejected + malformed
    accepted = total - rejected_all
    summary = {
        "rows": total,
        "accepted": accepted,
        "rejected": rejected_all,
        "reject_fraction": round(rejected_all / total, 6) if total else 0.0,
    }
    where = "; ".join(f"{input_uri} line {e['source_row']}: {e['reason']}" for e in examples)
    if accepted == 0:
        raise DataError(f"{input_uri}: no valid rows ({rejected_all} rejected). {where}")
    if rejected_all / total > max_reject_fraction:
        raise DataError(
            f"{input_uri}: {rejected_all} of {total} rows rejected "
            f"({rejected_all / total:.1%} > the {max_reject_fraction:.0%} limit); nothing "
            f"was added to history. See table rejected_rows (run_id={run_id!r}). "
            f"First problems: {where}"
        )
    return summary, where


# ---------------------------------------------------------------- build_features


def features_outcome(
    stats: Mapping[str, Any], cutoff: date, table: str
) -> tuple[dict[str, Any], str | None]:
    """Check the feature table's stats: ``(summary, stale-data warning or None)``.

    ``stats`` has rows_total, rows_in_window, series, first_date, last_date (the last day on or
    before the cut-off). No history before the cut-off is a :class:`DataError`.
    """
    if not stats["rows_in_window"]:
        raise DataError(
            f"no history on or before the cutoff date {cutoff} "
            f"(history starts {_iso(stats['first_date'])}); nothing to train on"
        )
    warning = None
    last = stats["last_date"]
    if isinstance(last, date) and (cutoff - last).days > STALE_AFTER_DAYS:
        warning = (
            f"data is stale: its last day {last} is {(cutoff - last).days} days before the "
            f"cutoff {cutoff}; forecasts start after {last}"
        )
    summary = {k: _iso(v) for k, v in stats.items()}
    summary["table"] = table
    return summary, warning


# ---------------------------------------------------------------- trainer arguments


@dataclass(frozen=True)
class TrainerPaths:
    """Where a run's trainer jobs read and write, as the platform spells them.

    The run folder's layout is :class:`~sales_forecast.run_context.RunContext`'s; the tables'
    URIs are the warehouse's (``steps.trainer_paths`` fills both in).
    """

    features_uri: str  # the daily_sales_features table
    forecasts_uri: str  # the daily_sales_forecasts table
    backtest_results_uri: str  # the backtest_results table
    run_dir: str
    contract_uri: str
    model_dir: str
    backtest_dir: str
    forecast_meta_uri: str


def _common_args(paths: TrainerPaths, cutoff: date, horizon: int) -> list[str]:
    return [
        "--data-uri", paths.features_uri,
        "--contract", paths.contract_uri,
        "--cutoff-date", cutoff.isoformat(),
        "--horizon", str(horizon),
    ]  # fmt: skip


def train_args(paths: TrainerPaths, cutoff: date, horizon: int) -> list[str]:
    return [*_common_args(paths, cutoff, horizon), "--model-dir", paths.model_dir]


def train_env(paths: TrainerPaths) -> dict[str, str]:
    """What Vertex AI sets for a training job (the local runner and Cloud Run set it by hand)."""
    return {
        "AIP_MODEL_DIR": f"{paths.model_dir}/",
        "AIP_CHECKPOINT_DIR": f"{paths.run_dir}/checkpoints/",
    }


def backtest_args(
    paths: TrainerPaths,
    cutoff: date,
    horizon: int,
    *,
    run_id: str,
    n_windows: int,
    metric: str,
    min_improvement: float,
    champion_dir: str | None,
) -> list[str]:
    args = [
        *_common_args(paths, cutoff, horizon),
        "--model-dir", paths.model_dir,
        "--n-windows", str(n_windows),
        "--metric", metric,
        "--min-improvement", str(min_improvement),
        "--output-dir", paths.backtest_dir,
        "--results-uri", paths.backtest_results_uri,
        "--run-id", run_id,
    ]  # fmt: skip
    if champion_dir:
        args += ["--champion-model-dir", champion_dir]
    return args


def forecast_args(
    paths: TrainerPaths,
    cutoff: date,
    horizon: int,
    *,
    run_id: str,
    model_dir: str,
    model_version: str,
    future_uri: str | None,
) -> list[str]:
    args = [
        "--model-dir", model_dir,
        "--data-uri", paths.features_uri,
        "--cutoff-date", cutoff.isoformat(),
        "--horizon", str(horizon),
        "--output-uri", paths.forecasts_uri,
        "--run-id", run_id,
        "--model-version", model_version,
        # With the run's files on every platform (BigQuery has no "next to the output").
        "--meta-uri", paths.forecast_meta_uri,
    ]  # fmt: skip
    if future_uri:
        args += ["--future-uri", future_uri]
    return args


# ---------------------------------------------------------------- backtest_and_gate


def backtest_champion(
    champion_uri: str | None, champion_run_key: str | None, run_key: str
) -> tuple[str | None, str]:
    """The production model the challenger is compared with, and why (for the log).

    A re-run of the run that produced the production model must not compare a model with
    itself: the gate then compares with the baseline only.
    """
    if champion_uri is None:
        return None, "no production model yet: the gate compares with the baseline"
    if champion_run_key == run_key:
        return None, "the production model came from this very run: compared with the baseline"
    return champion_uri, f"compared with the production model at {champion_uri}"


def gate_log(gate: Mapping[str, Any]) -> str:
    """The gate's one log line, the same on every platform."""
    return (
        f"gate {'PASSED' if gate['passed'] else 'FAILED'} on {gate.get('metric')}: "
        f"challenger={gate.get('challenger')} baseline={gate.get('baseline')} "
        f"champion={gate.get('champion')} ({gate.get('reason')})"
    )


# ---------------------------------------------------------------- forecast


@dataclass(frozen=True)
class ForecastModel:
    model_dir: str
    model_version: str  # a registry version, or "candidate:<run key>" for this run's model
    reason: str


def forecast_model(
    *,
    gate_passed: bool,
    champion_uri: str | None,
    champion_version: str | None,
    champion_train_end: str | None,
    cutoff: date,
    candidate_dir: str,
    run_key: str,
) -> ForecastModel:
    """Which model writes this run's forecasts.

    The forecasts table always holds the best model's forecasts: this run's challenger when it
    passed the gate (or nothing is in production), the production model otherwise. On a
    backfill the production model may have been trained past this run's cut-off: using it
    would leak later data into the forecast (and the trainer refuses it), so the challenger is
    used instead. A production model whose training end is unknown counts as too new.
    """
    candidate = ForecastModel(candidate_dir, f"candidate:{run_key}", "")
    if gate_passed:
        return ForecastModel(candidate.model_dir, candidate.model_version, "the gate passed")
    if champion_uri is None or champion_version is None:
        return ForecastModel(
            candidate.model_dir, candidate.model_version, "nothing is in production yet"
        )
    if not champion_train_end or champion_train_end > cutoff.isoformat():
        return ForecastModel(
            candidate.model_dir,
            candidate.model_version,
            f"production v{champion_version} was trained up to {champion_train_end or '?'}, "
            f"after this run's cutoff {cutoff}",
        )
    return ForecastModel(
        champion_uri, champion_version, f"the gate failed: production v{champion_version} stays"
    )


def forecast_outcome(
    stats: Mapping[str, Any], horizon: int, model_version: str, table: str
) -> dict[str, Any]:
    """Check the forecast rows: every series, every day of the horizon, once."""
    if stats["rows_written"] != stats["series"] * horizon:
        raise RuntimeError(
            f"forecast wrote {stats['rows_written']} rows for {stats['series']} series and a "
            f"{horizon}-day horizon: some series or days are missing"
        )
    out = {k: _iso(v) for k, v in stats.items()}
    out.update(model_version=model_version, table=table)
    return out


# ---------------------------------------------------------------- register, deploy


def register_skip_reason(enable_deploy: bool, gate: GateFile | Mapping[str, Any]) -> str | None:
    """Why this run's model is not registered, or None when it is."""
    if not enable_deploy:
        return "enable_deploy is false for this run: the model is not registered"
    if not gate["passed"]:
        return f"the quality gate did not pass: {gate.get('reason')}"
    return None


def deploy_skip_reason(enable_deploy: bool, registered: bool) -> str | None:
    """Why nothing is deployed, or None when this run's registered version is."""
    if not enable_deploy:
        return "enable_deploy is false for this run"
    if not registered:
        return "no model version was registered by this run"
    return None
