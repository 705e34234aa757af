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
from sales_forecast.sources import row_word
from sf_contract.constants import SEASONAL_NAIVE_VERSION
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
    "latest_tuned",
    "model_freshness",
    "register_skip_reason",
    "series_reject_outcome",
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
    line = row_word(input_uri)
    where = "; ".join(f"{input_uri} {line} {e['source_row']}: {e['reason']}" for e in examples)
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


def series_reject_outcome(
    rows: Iterable[Mapping[str, Any]], *, max_fraction: float, input_uri: str, run_id: str
) -> None:
    """Fail the run when a series lost too many rows to rejections no day can be pinned on.

    ``rows`` has, per series of the file, ``rows`` (its rows in the file) and ``unplaced`` (its
    rejected rows whose date could not be read). A rejected row with a readable day only marks
    that day unknown; an unplaced one leaves a hole the features would read as a day without
    sales, so past a small share the series' history would be quietly wrong.
    """
    over = []
    for r in rows:
        total, unplaced = int(r["rows"]), int(r["unplaced"])
        if total and unplaced / total > max_fraction:
            over.append((unplaced / total, str(r["series_id"]), unplaced, total))
    if not over:
        return
    over.sort(reverse=True)
    named = "; ".join(f"{sid}: {u} of {t} rows ({share:.1%})" for share, sid, u, t in over[:5])
    raise DataError(
        f"{input_uri}: {len(over)} series have more than {max_fraction:.0%} of their rows "
        f"rejected with a date that cannot be read ({named}). Those days would become "
        f"days without sales; nothing was added to history. Fix the dates (see table "
        f"rejected_rows, run_id={run_id!r}) or raise SF_MAX_SERIES_REJECT_FRACTION."
    )


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


def train_args(
    paths: TrainerPaths,
    cutoff: date,
    horizon: int,
    params: Mapping[str, int | float | str] | None = None,
) -> list[str]:
    """``train``'s arguments; ``params`` (``SF_TRAINER_PARAMS``) become its LightGBM flags."""
    args = [*_common_args(paths, cutoff, horizon), "--model-dir", paths.model_dir]
    for name, value in sorted((params or {}).items()):
        args += [f"--{name}", str(value)]
    return args


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
    freshness_tolerance: float,
    champion_dir: str | None,
) -> list[str]:
    args = [
        *_common_args(paths, cutoff, horizon),
        "--model-dir", paths.model_dir,
        "--n-windows", str(n_windows),
        "--metric", metric,
        "--min-improvement", str(min_improvement),
        "--freshness-tolerance", str(freshness_tolerance),
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
    model: ForecastModel,
    future_uri: str | None,
) -> list[str]:
    args = [
        "--data-uri", paths.features_uri,
        # Seasonal naive has no model to take the contract from; a model checks it matches.
        "--contract", paths.contract_uri,
        "--cutoff-date", cutoff.isoformat(),
        "--horizon", str(horizon),
        "--output-uri", paths.forecasts_uri,
        "--run-id", run_id,
        # With the run's files on every platform (BigQuery has no "next to the output").
        "--meta-uri", paths.forecast_meta_uri,
    ]  # fmt: skip
    if model.model_dir is None:
        args += ["--seasonal-naive"]
    else:
        args += ["--model-dir", model.model_dir, "--model-version", model.model_version]
    if model.fallback_dir and model.fallback_version:
        args += [
            "--fallback-model-dir", model.fallback_dir,
            "--fallback-model-version", model.fallback_version,
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
    """The gate's one log line, the same on every platform: the verdict in words first.

    The trainer's reason reads "kept production: ..."; the registry version is known here.
    """
    reason = str(gate.get("reason") or "")
    version = gate.get("champion_version")
    if version and reason.startswith("kept production"):
        reason = f"kept production v{version}" + reason.removeprefix("kept production")
    mode = gate.get("champion_mode")
    return (
        f"gate {'PASSED' if gate['passed'] else 'FAILED'}{f' ({mode})' if mode else ''}: {reason}"
    )


# ---------------------------------------------------------------- forecast


@dataclass(frozen=True)
class ForecastModel:
    """What writes this run's forecasts.

    ``model_dir`` forecasts every series it knows (``None``: seasonal naive for all);
    ``fallback_dir`` every series the first does not know; the trainer forecasts any series
    left with seasonal naive. Each forecast row carries the version that made it.
    """

    model_dir: str | None
    model_version: str  # a registry version, "candidate:<run key>", or SEASONAL_NAIVE_VERSION
    reason: str
    fallback_dir: str | None = None
    fallback_version: str | None = None


def forecast_model(
    *,
    gate: GateFile | Mapping[str, Any],
    champion_uri: str | None,
    champion_version: str | None,
    champion_train_end: str | None,
    champion_horizon: int | None,
    cutoff: date,
    horizon: int,
    candidate_dir: str,
    run_key: str,
) -> ForecastModel:
    """Which models write this run's forecasts: the best that would serve each series.

    - The gate passed: this run's model (trained on the newest data) forecasts everything.
    - It failed, and the production model can serve this run: production forecasts the series
      it knows; series it does not know (new items) get this run's model when that beat
      seasonal naive, else seasonal naive. Production cannot serve when it was trained past
      this run's cut-off (a backfill: it would leak later days), when its training end is
      unknown, or when it was calibrated for a shorter horizon (no intervals for the rest).
    - Otherwise this run's model when it beat seasonal naive, else seasonal naive itself:
      a model that loses to the baseline never writes the forecasts.
    """
    candidate = f"candidate:{run_key}"
    beats_baseline = bool(gate.get("beats_baseline"))
    if gate["passed"]:
        return ForecastModel(candidate_dir, candidate, "the gate passed: this run's model")
    challenger = (candidate_dir, candidate) if beats_baseline else (None, SEASONAL_NAIVE_VERSION)
    why_not = None
    if champion_uri is None or champion_version is None:
        why_not = "nothing is in production yet"
    elif not champion_train_end or champion_train_end > cutoff.isoformat():
        why_not = (
            f"production v{champion_version} was trained up to {champion_train_end or '?'}, "
            f"after this run's cutoff {cutoff}"
        )
    elif champion_horizon is not None and champion_horizon < horizon:
        why_not = (
            f"production v{champion_version} was calibrated for {champion_horizon} days and "
            f"this run forecasts {horizon}"
        )
    if why_not is None:
        fallback_dir, fallback_version = challenger
        return ForecastModel(
            champion_uri,
            str(champion_version),
            f"the gate failed: production v{champion_version} stays; series it does not know "
            f"get {fallback_version}",
            fallback_dir=fallback_dir,
            fallback_version=fallback_version if fallback_dir else None,
        )
    model_dir, version = challenger
    if model_dir is None:
        return ForecastModel(
            None,
            version,
            f"{why_not}, and this run's model did not beat seasonal naive: the forecasts are "
            "seasonal naive's",
        )
    return ForecastModel(model_dir, version, f"{why_not}: this run's model")


def forecast_outcome(
    counts: Iterable[Mapping[str, Any]], *, expected_series: int, horizon: int, table: str
) -> dict[str, Any]:
    """Check the forecast rows: every series of the features, every day of the horizon, once.

    ``counts`` has one row per ``model_version`` with ``rows``, ``series``, ``first_date`` and
    ``last_date``; ``expected_series`` is the number of series the features hold.
    """
    counts = list(counts)
    by_model = {str(c["model_version"]): int(c["series"]) for c in counts}
    rows = sum(int(c["rows"]) for c in counts)
    series = sum(by_model.values())
    if series != expected_series or rows != expected_series * horizon:
        raise RuntimeError(
            f"forecast wrote {rows} rows for {series} series; the features hold "
            f"{expected_series} series and the horizon is {horizon} days: some series or "
            "days are missing"
        )
    firsts = [c["first_date"] for c in counts if c.get("first_date") is not None]
    lasts = [c["last_date"] for c in counts if c.get("last_date") is not None]
    return {
        "rows_written": rows,
        "series": series,
        "first_date": _iso(min(firsts)) if firsts else None,
        "last_date": _iso(max(lasts)) if lasts else None,
        "series_by_model": by_model,
        "table": table,
    }


def model_freshness(
    train_end: str | None, cutoff: date, max_age_days: int
) -> tuple[int | None, str | None]:
    """How many days the production model's data ends before the cut-off, and a warning when
    that is more than ``max_age_days`` (``SF_MAX_MODEL_AGE_DAYS``)."""
    if not train_end:
        return None, None
    try:
        age = (cutoff - date.fromisoformat(str(train_end)[:10])).days
    except ValueError:
        return None, None
    if age > max_age_days:
        return age, (
            f"the production model is stale: its data ends {train_end}, {age} days before "
            f"the cutoff {cutoff} (more than SF_MAX_MODEL_AGE_DAYS={max_age_days})"
        )
    return age, None


# ---------------------------------------------------------------- register, deploy


def register_skip_reason(
    enable_deploy: bool,
    gate: GateFile | Mapping[str, Any],
    *,
    production_train_end: str | None = None,
    cutoff: date | None = None,
    train_end: str | None = None,
) -> str | None:
    """Why this run's model is not registered, or None when it is.

    A backfill (a cut-off before the production model's training end) never replaces a model
    that has seen later days, even when its gate passed on its own, older windows. Nor does a
    re-run of the same days with the same recipe: it is the production model again, not a
    fresher one (a changed recipe that passed may replace it).
    """
    if not enable_deploy:
        return "enable_deploy is false for this run: the model is not registered"
    if not gate["passed"]:
        return f"the quality gate did not pass: {gate.get('reason')}"
    if production_train_end and cutoff:
        prod_end = production_train_end[:10]
        if prod_end > cutoff.isoformat():
            return (
                f"the production model was trained on data up to {production_train_end}, after "
                f"this run's cutoff {cutoff}: a backfill does not replace it"
            )
        if gate.get("recipe_changed") is False and train_end and prod_end >= train_end[:10]:
            return (
                f"the production model was trained with the same recipe on data up to "
                f"{production_train_end}, as this run's model: nothing fresher to register"
            )
    return None


def deploy_skip_reason(enable_deploy: bool, registered: bool) -> str | None:
    """Why nothing is deployed, or None when this run's registered version is."""
    if not enable_deploy:
        return "enable_deploy is false for this run"
    if not registered:
        return "no model version was registered by this run"
    return None


# ---------------------------------------------------------------- tuned params for the daily run


def latest_tuned(versions: Iterable[Any]) -> Any | None:
    """The newest registered version whose params came from a tuning study, or None.

    Only a model that passed its gate is registered, so this is the latest tuning result that
    passed (or a daily model that reused it). ``versions`` are ``ModelVersion``s.
    """
    tuned = [v for v in versions if getattr(v, "study", "")]

    def order(v: Any) -> tuple[int, str]:
        text = str(v.version)
        return (int(text) if text.isdigit() else -1, str(v.created_at))

    return max(tuned, key=order) if tuned else None
