"""What each task of the daily DAG does, written once against the platform interfaces.

The same functions run on both platforms: locally each task calls one of them whole; on GCP the
SQL steps do too (BigQuery behind the warehouse interface), while the trainer jobs, the model
upload and the endpoint deploy are provider operators that call the ``plan_*`` / ``finish_*``
halves around their own API call. Every decision these steps make lives in
:mod:`sales_forecast.decisions`; what stops a step early is in :mod:`sales_forecast.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sales_forecast import decisions, tuning
from sales_forecast.config import Settings
from sales_forecast.contract import load_contract
from sales_forecast.csv_checks import HEADER_PROBE_BYTES, check_header, parse_csv_header
from sales_forecast.errors import DataError, SkipStep
from sales_forecast.platforms.base import (
    ModelVersion,
    ObjectStore,
    Platform,
    StagingLoad,
    StagingLoader,
)
from sales_forecast.run_context import RunContext, run_key
from sales_forecast.sources import SourceKind, source_kind, staged_columns
from sales_forecast.sqlrender import render_sql
from sf_contract.constants import PRODUCTION_ALIAS
from sf_contract.files import (
    METADATA_FILE,
    METRICS_FILE,
    FileFormatError,
    GateFile,
    ModelMetadata,
    dumps,
    parse_gate,
    parse_json,
    parse_metadata,
)
from sf_contract.schema import Contract, ContractError

__all__ = [
    "STEPS",
    "Registration",
    "TrainerJob",
    "backtest_and_gate",
    "backtest_job",
    "build_features",
    "deploy",
    "finish_backtest",
    "finish_forecast",
    "finish_train",
    "forecast",
    "forecast_job",
    "load_run_contract",
    "load_to_staging",
    "merge_history",
    "plan_backtest",
    "plan_forecast",
    "plan_retrain",
    "plan_train",
    "pick_best",
    "read_best_trial",
    "retrain",
    "tune",
    "tuning_request",
    "load_input",
    "load_source",
    "prepare_staging",
    "preview_job",
    "register",
    "registration",
    "relabel_forecasts",
    "log_run_summary",
    "run_summary",
    "run_trainer_job",
    "staging_summary",
    "train",
    "trainer_paths",
    "validate",
]

log = logging.getLogger(__name__)

Step = Callable[[RunContext, Platform, Settings], dict[str, Any]]


# ---------------------------------------------------------------- files of the run


def read_json(platform: Platform, uri: str) -> Any:
    return parse_json(platform.store.read_bytes(uri), uri)


def write_json(platform: Platform, uri: str, doc: object) -> None:
    platform.store.write_text(uri, dumps(doc))


def read_gate(platform: Platform, ctx: RunContext) -> GateFile:
    return parse_gate(platform.store.read_bytes(ctx.gate_uri), ctx.gate_uri)


def read_metadata(platform: Platform, model_dir: str) -> ModelMetadata:
    uri = f"{model_dir.rstrip('/')}/{METADATA_FILE}"
    return parse_metadata(platform.store.read_bytes(uri), uri)


def load_run_contract(ctx: RunContext) -> Contract:
    """The run's dataset contract (a clear data error when it cannot be loaded)."""
    try:
        return load_contract(ctx.dataset)
    except ContractError as exc:
        raise DataError(str(exc)) from None


# ---------------------------------------------------------------- load_to_staging


def prepare_staging(ctx: RunContext, platform: Platform) -> Contract:
    """Everything before the load itself: the run's files, the future file's presence, the
    tables. The source's own checks follow in :func:`load_input`."""
    contract = load_run_contract(ctx)
    write_json(platform, ctx.contract_uri, contract.to_dict())
    write_json(platform, f"{ctx.run_dir}/run.json", ctx.to_dict())
    if ctx.future_uri and not platform.store.exists(ctx.future_uri):
        # Found out now, not after the whole training at the forecast step.
        raise DataError(f"{ctx.future_uri}: future covariates file not found")
    platform.warehouse.run_script("create_tables", contract)
    add_history_columns(platform, contract)
    return contract


def add_history_columns(platform: Platform, contract: Contract) -> list[str]:
    """Add the columns the contract has and ``sales_history`` lacks (a column added to the
    contract since, such as an optional availability column); the names added.

    Rows already kept get NULL there. Nothing is dropped or retyped: a column the contract no
    longer has stays in history, unread. Looked up first, so a run that changes nothing sends
    no table update (BigQuery limits those per table).
    """
    wh = platform.warehouse
    have = {name.lower() for name in wh.table_columns("sales_history")}
    added = [c for c in contract.columns if c.name.lower() not in have]
    if not added:
        return []
    wh.run_script("add_history_columns", contract, render={"added": added})
    names = [c.name for c in added]
    log.info("sales_history gained the contract's new columns %s (NULL on older rows)", names)
    strict = [c.name for c in added if not c.nullable]
    if strict:
        log.warning(
            "columns %s are not nullable in the contract, but the rows sales_history already "
            "kept have no value there",
            strict,
        )
    return names


def load_input(
    uri: str, contract: Contract, store: ObjectStore, loader: StagingLoader
) -> StagingLoad:
    """Check and load whatever kind of input ``uri`` names into the (existing) staging tables.

    A CSV's header comes from its first bytes; a typed source's (Parquet, a BigQuery table)
    column names play the header's part and get the same check. The run and the check
    command (:mod:`sales_forecast.check`) both load through here.
    """
    if source_kind(uri) is SourceKind.CSV:
        if not store.exists(uri):
            raise DataError(f"{uri}: input file not found")
        header = parse_csv_header(store.read_bytes(uri, limit=HEADER_PROBE_BYTES), uri)
        check_header(header, contract, uri)
        return loader.load_csv_to_staging(uri, header, contract)
    staged = staged_columns(
        loader.describe_source(uri),
        contract,
        uri,
        identifiers_only=loader.source_names_must_be_identifiers,
    )
    return loader.load_table_to_staging(uri, staged, contract)


def load_source(ctx: RunContext, platform: Platform, loader: StagingLoader) -> StagingLoad:
    """Prepare, check and load whatever kind of input the run names."""
    contract = prepare_staging(ctx, platform)
    return load_input(ctx.input_uri, contract, platform.store, loader)


def staging_summary(ctx: RunContext, load: StagingLoad) -> dict[str, Any]:
    log.info(
        "loaded %s rows from %s into %s (%s malformed lines set aside)",
        load.rows,
        ctx.input_uri,
        load.table,
        load.malformed,
    )
    return {
        "table": load.table,
        "rows": load.rows,
        "malformed": load.malformed,
        "input_uri": ctx.input_uri,
    }


def load_to_staging(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    if platform.loader is None:
        raise RuntimeError("this platform loads staging with an operator")
    return staging_summary(ctx, load_source(ctx, platform, platform.loader))


# ---------------------------------------------------------------- validate, build_features


def validate(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    contract = load_run_contract(ctx)
    wh = platform.warehouse
    wh.run_script("validate", contract, cutoff=ctx.cutoff_date)
    wh.run_script("quarantine", contract, run_id=ctx.run_id, source_file=ctx.input_uri)
    (stats,) = wh.query(
        f"SELECT COUNT(*) AS staged, COUNTIF(reject_reason IS NOT NULL) AS rejected "
        f"FROM {wh.tables.staging_checked}"
    )
    (mal,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.staging_malformed}")
    examples = wh.query(
        f"SELECT source_row, reason FROM {wh.tables.rejected_rows} "
        "WHERE run_id = @run_id ORDER BY source_row LIMIT 5",
        run_id=ctx.run_id,
    )
    summary, where = decisions.validation_outcome(
        staged=int(stats["staged"]),
        rejected=int(stats["rejected"]),
        malformed=int(mal["n"]),
        examples=examples,
        input_uri=ctx.input_uri,
        run_id=ctx.run_id,
        max_reject_fraction=settings.max_reject_fraction,
    )
    if summary["rejected"]:
        log.warning("%s rows quarantined in rejected_rows; first: %s", summary["rejected"], where)
        decisions.series_reject_outcome(
            wh.query(render_sql("series_rejects", contract, wh.tables)),
            max_fraction=settings.max_series_reject_fraction,
            input_uri=ctx.input_uri,
            run_id=ctx.run_id,
        )
    log.info("validation: %s", summary)
    return summary


def build_features(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    contract = load_run_contract(ctx)
    wh = platform.warehouse
    # This run's accepted rows count as history here; they are merged into sales_history only
    # by merge_history, after the forecast, so a run that fails leaves history untouched.
    incoming = wh.table_exists("staging_checked")
    if not incoming:
        log.warning("this run's staging tables are gone (already merged): history alone is used")
    wh.run_script("features", contract, render={"incoming": incoming}, cutoff=ctx.cutoff_date)
    d = f"`{contract.date_column}`"
    (stats,) = wh.query(
        f"SELECT COUNT(*) AS rows_total, COUNTIF({d} <= @cutoff) AS rows_in_window, "
        f"COUNT(DISTINCT IF({d} <= @cutoff, series_id, NULL)) AS series, "
        f"MIN({d}) AS first_date, MAX(IF({d} <= @cutoff, {d}, NULL)) AS last_date, "
        f"COUNTIF(is_unknown) AS unknown_days "
        f"FROM {wh.tables.daily_sales_features}",
        cutoff=ctx.cutoff_date,
    )
    summary, stale = decisions.features_outcome(
        stats, ctx.cutoff_date, wh.table_uri("daily_sales_features")
    )
    if stale:
        log.warning("%s", stale)
    log.info("daily_sales_features: %s", summary)
    return summary


def merge_history(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    """This run's accepted rows join sales_history, then its staging tables are dropped.

    Runs after the forecast: only a run that got that far changes history. A retry after the
    staging tables were dropped finds nothing left to merge and says so.
    """
    contract = load_run_contract(ctx)
    wh = platform.warehouse
    if not wh.table_exists("staging_checked"):
        log.info("nothing to merge: this run's staging tables were merged and dropped already")
        return {"merged": None, "table": wh.table_uri("sales_history")}
    (accepted,) = wh.query(
        f"SELECT COUNT(*) AS n FROM {wh.tables.staging_checked} WHERE reject_reason IS NULL"
    )
    wh.run_script("merge_history", contract, run_id=ctx.run_id)
    wh.run_script("drop_staging", contract)
    log.info("merged %s accepted rows into sales_history", accepted["n"])
    return {"merged": int(accepted["n"]), "table": wh.table_uri("sales_history")}


# ---------------------------------------------------------------- trainer jobs


@dataclass(frozen=True)
class TrainerJob:
    """One run of the trainer image's entrypoint: ``python -m trainer <command> <args>``.

    ``state`` carries what ``finish_*`` needs from the plan (e.g. the model the gate chose);
    on GCP it survives the operator's deferral as a trigger kwarg.
    """

    command: str
    args: list[str]
    env: dict[str, str]
    job_name: str
    state: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "args": list(self.args),
            "env": dict(self.env),
            "job_name": self.job_name,
            "state": dict(self.state),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TrainerJob:
        return cls(
            command=str(doc["command"]),
            args=[str(a) for a in doc["args"]],
            env={str(k): str(v) for k, v in doc["env"].items()},
            job_name=str(doc["job_name"]),
            state=dict(doc.get("state") or {}),
        )


def trainer_paths(ctx: RunContext, platform: Platform) -> decisions.TrainerPaths:
    wh = platform.warehouse
    return decisions.TrainerPaths(
        features_uri=wh.table_uri("daily_sales_features"),
        forecasts_uri=wh.table_uri("daily_sales_forecasts"),
        backtest_results_uri=wh.table_uri("backtest_results"),
        run_dir=ctx.run_dir,
        contract_uri=ctx.contract_uri,
        model_dir=ctx.model_dir,
        backtest_dir=ctx.backtest_dir,
        forecast_meta_uri=ctx.forecast_meta_uri,
    )


def _production(platform: Platform) -> ModelVersion | None:
    return platform.registry.get_by_alias(PRODUCTION_ALIAS)


def plan_train(ctx: RunContext, platform: Platform, settings: Settings) -> TrainerJob:
    job = preview_job("train", ctx, trainer_paths(ctx, platform), settings)
    if not ctx.use_tuned_params:
        log.info("training with the settings' params %s", settings.trainer_params or "(defaults)")
        return job
    version = decisions.latest_tuned(platform.registry.list_versions())
    if version is None:
        log.info(
            "no tuned model registered yet: training with the settings' params %s",
            settings.trainer_params or "(defaults)",
        )
        return job
    uri = f"{version.uri.rstrip('/')}/params.json"
    try:
        best = tuning.tuned_params(read_json(platform, uri))
    except (FileNotFoundError, FileFormatError, DataError) as exc:
        # Never a silent recipe change: the run says it falls back, and why.
        log.warning(
            "tuned params of v%s unreadable (%s): using the settings'", version.version, exc
        )
        return job
    params = {**settings.trainer_params, **best}
    log.info(
        "training with the params of study %s (model v%s): %s", version.study, version.version, best
    )
    paths = trainer_paths(ctx, platform)
    return TrainerJob(
        command=job.command,
        args=decisions.train_args(paths, ctx.cutoff_date, ctx.horizon, params),
        env=job.env,
        job_name=job.job_name,
        state={"tuning": {"study": version.study, "params": best, "from": version.version}},
    )


def finish_train(ctx: RunContext, platform: Platform, job: TrainerJob) -> dict[str, Any]:
    metrics = read_json(platform, f"{ctx.model_dir}/{METRICS_FILE}")
    out = {"model_dir": ctx.model_dir, "metrics": metrics}
    if job.state.get("tuning"):
        # register records the study the model's params came from.
        write_json(platform, f"{ctx.tuning_dir}/{tuning.SOURCE_FILE}", job.state["tuning"])
        out["tuning"] = job.state["tuning"]
    return out


def plan_retrain(ctx: RunContext, platform: Platform, settings: Settings) -> TrainerJob:
    """The tuning run's one retrain: the ordinary train job with the best trial's params."""
    best = read_best_trial(ctx, platform)
    params = tuning.retrain_params(settings.trainer_params, best)
    log.info(
        "retraining with trial %s of study %s (%s=%.6f): %s",
        best.trial,
        best.study,
        best.metric,
        best.value,
        best.params,
    )
    paths = trainer_paths(ctx, platform)
    return TrainerJob(
        command="train",
        args=decisions.train_args(paths, ctx.cutoff_date, ctx.horizon, params),
        env=decisions.train_env(paths),
        job_name=f"train-{ctx.run_key}",
        state={"tuning": best.registry_record},
    )


def backtest_job(
    ctx: RunContext,
    paths: decisions.TrainerPaths,
    settings: Settings,
    champion: ModelVersion | None,
) -> TrainerJob:
    champion_dir, note = decisions.backtest_champion(
        champion.uri if champion else None,
        run_key(champion.run_id) if champion else None,
        ctx.run_key,
    )
    log.info("%s", note)
    return TrainerJob(
        command="backtest",
        args=decisions.backtest_args(
            paths,
            ctx.cutoff_date,
            ctx.horizon,
            run_id=ctx.run_id,
            n_windows=settings.backtest_windows,
            metric=settings.gate_metric,
            min_improvement=settings.gate_min_improvement,
            freshness_tolerance=settings.gate_freshness_tolerance,
            champion_dir=champion_dir,
        ),
        env={},
        job_name=f"backtest-{ctx.run_key}",
        state={"champion_version": champion.version if champion else None},
    )


def plan_backtest(ctx: RunContext, platform: Platform, settings: Settings) -> TrainerJob:
    return backtest_job(ctx, trainer_paths(ctx, platform), settings, _production(platform))


def finish_backtest(ctx: RunContext, platform: Platform, job: TrainerJob) -> dict[str, Any]:
    gate = read_gate(platform, ctx)
    gate["champion_version"] = job.state.get("champion_version")
    write_json(platform, ctx.gate_uri, gate)
    log.info("%s", decisions.gate_log(gate))
    if platform.store.exists(report := f"{ctx.backtest_dir}/report/report.html"):
        log.info("backtest report: %s", report)
    return dict(gate)


def forecast_job(
    ctx: RunContext, paths: decisions.TrainerPaths, chosen: decisions.ForecastModel
) -> TrainerJob:
    return TrainerJob(
        command="predict",
        args=decisions.forecast_args(
            paths,
            ctx.cutoff_date,
            ctx.horizon,
            run_id=ctx.run_id,
            model=chosen,
            future_uri=ctx.future_uri,
        ),
        env={},
        job_name=f"predict-{ctx.run_key}",
        state={
            "model_dir": chosen.model_dir,
            "model_version": chosen.model_version,
            "fallback_version": chosen.fallback_version,
        },
    )


def _production_info(platform: Platform, champion: ModelVersion) -> tuple[str | None, int | None]:
    """The production model's training end and calibrated horizon (None when unreadable)."""
    try:
        meta = read_metadata(platform, champion.uri)
    except (FileNotFoundError, FileFormatError) as exc:
        # Without its training window the production model may have seen later days.
        log.warning("production v%s has no usable metadata: %s", champion.version, exc)
        return None, None
    config = meta.get("trainer_config") or {}
    horizon = meta.get("horizon") or (config.get("horizon") if isinstance(config, dict) else None)
    train_end = meta.get("train_end")
    return (
        str(train_end) if train_end else None,
        int(horizon) if isinstance(horizon, int) else None,
    )


def plan_forecast(ctx: RunContext, platform: Platform, settings: Settings) -> TrainerJob:
    gate = read_gate(platform, ctx)
    champion = _production(platform)
    train_end, champion_horizon = None, None
    if champion is not None and not gate["passed"]:
        train_end, champion_horizon = _production_info(platform, champion)
    chosen = decisions.forecast_model(
        gate=gate,
        champion_uri=champion.uri if champion else None,
        champion_version=champion.version if champion else None,
        champion_train_end=train_end,
        champion_horizon=champion_horizon,
        cutoff=ctx.cutoff_date,
        horizon=ctx.horizon,
        candidate_dir=ctx.model_dir,
        run_key=ctx.run_key,
    )
    log.info("forecasting with %s (%s)", chosen.model_version, chosen.reason)
    if ctx.future_uri and not platform.store.exists(ctx.future_uri):
        raise DataError(f"{ctx.future_uri}: future covariates file not found")
    job = forecast_job(ctx, trainer_paths(ctx, platform), chosen)
    job.state["max_model_age_days"] = settings.max_model_age_days
    return job


def finish_forecast(ctx: RunContext, platform: Platform, job: TrainerJob) -> dict[str, Any]:
    wh = platform.warehouse
    counts = wh.query(
        f"SELECT model_version, COUNT(*) AS rows, COUNT(DISTINCT series_id) AS series, "
        f"MIN(date) AS first_date, MAX(date) AS last_date "
        f"FROM {wh.tables.daily_sales_forecasts} WHERE run_id = @run_id "
        f"GROUP BY model_version",
        run_id=ctx.run_id,
    )
    (expected,) = wh.query(
        f"SELECT COUNT(DISTINCT series_id) AS n FROM {wh.tables.daily_sales_features} "
        f"WHERE `{load_run_contract(ctx).date_column}` <= @cutoff",
        cutoff=ctx.cutoff_date,
    )
    out = decisions.forecast_outcome(
        counts,
        expected_series=int(expected["n"]),
        horizon=ctx.horizon,
        table=wh.table_uri("daily_sales_forecasts"),
    )
    out["model_version"] = str(job.state.get("model_version", ""))
    max_age = job.state.get("max_model_age_days")
    out.update(freshness(ctx, platform, int(max_age) if max_age else 14))
    log.info("forecasts: %s", out)
    return out


def freshness(ctx: RunContext, platform: Platform, max_age_days: int) -> dict[str, Any]:
    """How old the production model's data is at this run's cut-off (warns when stale)."""
    champion = _production(platform)
    if champion is None:
        return {"production_version": None}
    train_end, _ = _production_info(platform, champion)
    age, stale = decisions.model_freshness(train_end, ctx.cutoff_date, max_age_days)
    if stale:
        log.warning("%s", stale)
    return {
        "production_version": champion.version,
        "production_train_end": train_end,
        "production_age_days": age,
        "production_stale": stale is not None,
    }


TRAINER_JOBS: dict[
    str,
    tuple[
        Callable[[RunContext, Platform, Settings], TrainerJob],
        Callable[[RunContext, Platform, TrainerJob], dict[str, Any]],
    ],
] = {
    "train": (plan_train, finish_train),
    "retrain": (plan_retrain, finish_train),
    "backtest_and_gate": (plan_backtest, finish_backtest),
    "forecast": (plan_forecast, finish_forecast),
}


def preview_job(
    step: str, ctx: RunContext, paths: decisions.TrainerPaths, settings: Settings
) -> TrainerJob:
    """The step's job before its lookups (no production model, this run's model forecasts).

    What a rendered task shows before it runs: no registry or file is read to build it.
    """
    if step == "train":
        return TrainerJob(
            command="train",
            args=decisions.train_args(paths, ctx.cutoff_date, ctx.horizon, settings.trainer_params),
            env=decisions.train_env(paths),
            job_name=f"train-{ctx.run_key}",
        )
    if step == "backtest_and_gate":
        return backtest_job(ctx, paths, settings, champion=None)
    if step == "forecast":
        candidate = decisions.ForecastModel(ctx.model_dir, f"candidate:{ctx.run_key}", "preview")
        return forecast_job(ctx, paths, candidate)
    raise ValueError(f"{step!r} is not a trainer step ({sorted(TRAINER_JOBS)})")


def run_trainer_job(
    step: str, ctx: RunContext, platform: Platform, settings: Settings
) -> dict[str, Any]:
    """Plan the step's trainer job, run it with the platform's runner, read what it wrote."""
    plan, finish = TRAINER_JOBS[step]
    job = plan(ctx, platform, settings)
    if platform.runner is None:
        raise RuntimeError(f"this platform runs the trainer's {step} job as an operator")
    platform.runner.run(job.command, job.args, env=job.env, job_name=job.job_name)
    return finish(ctx, platform, job)


def train(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    return run_trainer_job("train", ctx, platform, settings)


def retrain(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    return run_trainer_job("retrain", ctx, platform, settings)


# ---------------------------------------------------------------- tune, pick_best


def tuning_request(ctx: RunContext) -> tuning.TuningRequest:
    if ctx.tuning is None:
        raise DataError("this run has no tuning params (trials, ...): trigger sales_forecast_hpt")
    return ctx.tuning


def prepare_tuning(ctx: RunContext, platform: Platform) -> Contract:
    """The run's contract file, and the features the trials read (a daily run built them)."""
    contract = load_run_contract(ctx)
    write_json(platform, ctx.contract_uri, contract.to_dict())
    write_json(platform, f"{ctx.run_dir}/run.json", ctx.to_dict())
    wh = platform.warehouse
    if not wh.table_exists("daily_sales_features"):
        raise DataError(
            f"no {wh.table_uri('daily_sales_features')} to tune on: run the daily "
            "sales_forecast DAG for this dataset first"
        )
    return contract


def tuning_train_args(ctx: RunContext, platform: Platform, settings: Settings) -> list[str]:
    """The run's train arguments every trial starts from (the trials add their own)."""
    paths = trainer_paths(ctx, platform)
    return decisions.train_args(paths, ctx.cutoff_date, ctx.horizon, settings.trainer_params)


def tune(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    """Run (or resume) the local study; on GCP a tuning job operator does this."""
    from pathlib import Path

    req = tuning_request(ctx)
    if settings.platform != "local":
        raise RuntimeError("on this platform the tune task is a tuning job operator")
    from sales_forecast.platforms.local_tuning import LocalTuner

    prepare_tuning(ctx, platform)
    tuner = LocalTuner(
        python=settings.trainer_python,
        src=settings.trainer_src,
        tuning_dir=Path(ctx.tuning_dir),
        study=tuning.study_name(ctx.run_key),
        train_args=tuning_train_args(ctx, platform, settings),
        metric=req.metric,
        trials=req.trials,
        parallel=req.parallel_trials,
        trial_timeout_s=req.trial_timeout_s,
    )
    outcome = tuner.run()
    write_json(platform, f"{ctx.tuning_dir}/{tuning.TRIALS_FILE}", tuner.trials_doc())
    log.info("study %s finished: %s", outcome.study, outcome.counts)
    return {"study": outcome.study, "storage": outcome.storage, "counts": outcome.counts}


def _read_record(platform: Platform, uri: str, missing: str, what: str) -> dict[str, Any]:
    """A JSON object a tuning task wrote; a clear DataError when it is missing or not one."""
    try:
        doc = read_json(platform, uri)
    except FileNotFoundError:
        raise DataError(f"{uri}: {missing}") from None
    if not isinstance(doc, dict):
        raise DataError(f"{uri}: not a {what} record")
    return doc


def read_best_trial(ctx: RunContext, platform: Platform) -> tuning.BestTrial:
    uri = f"{ctx.tuning_dir}/{tuning.BEST_FILE}"
    doc = _read_record(
        platform, uri, "no best trial; pick_best has not run for this run", "best-trial"
    )
    return tuning.BestTrial.from_dict(doc)


def pick_best(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    """The study's best trial (local study or Vertex AI job, the same record), to best.json."""
    req = tuning_request(ctx)
    uri = f"{ctx.tuning_dir}/{tuning.TRIALS_FILE}"
    doc = _read_record(platform, uri, "no trials; the tune task has not finished", "trials")
    best = tuning.best_from_trials_doc(doc, metric=req.metric)
    write_json(platform, f"{ctx.tuning_dir}/{tuning.BEST_FILE}", best.to_dict())
    log.info(
        "best trial %s of %s (%d of %d complete): %s=%.6f %s",
        best.trial,
        best.study,
        best.n_complete,
        best.n_trials,
        best.metric,
        best.value,
        best.params,
    )
    return best.to_dict()


def backtest_and_gate(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    return run_trainer_job("backtest_and_gate", ctx, platform, settings)


def forecast(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    return run_trainer_job("forecast", ctx, platform, settings)


# ---------------------------------------------------------------- register, deploy


@dataclass(frozen=True)
class Registration:
    """What ``register`` records for this run's model (when the run may register at all)."""

    model_dir: str
    run_id: str
    gate: GateFile
    metrics: dict[str, Any]
    metadata: ModelMetadata
    # The study that produced the model's params (a tuning run's), else None.
    tuning: dict[str, Any] | None = None

    @property
    def extra(self) -> dict[str, Any]:
        """The registry record's fields beyond the files and metrics."""
        out = {
            "gate": dict(self.gate),
            "dataset": (self.metadata.get("contract") or {}).get("name"),
            "training_window": {
                k: self.metadata.get(k) for k in ("train_start", "train_end") if k in self.metadata
            },
        }
        if self.tuning:
            out["tuning"] = dict(self.tuning)
        return out


def registration(ctx: RunContext, platform: Platform) -> Registration:
    """The run's model and its records, or :class:`SkipStep` with the reason it is not one."""
    gate = read_gate(platform, ctx)
    reason = decisions.register_skip_reason(ctx.enable_deploy, gate)
    if reason:
        raise SkipStep(reason)
    metadata = read_metadata(platform, ctx.model_dir)
    champion = _production(platform)
    if champion is not None and champion.run_id != ctx.run_id:
        reason = decisions.register_skip_reason(
            ctx.enable_deploy,
            gate,
            production_train_end=_production_info(platform, champion)[0],
            cutoff=ctx.cutoff_date,
            train_end=str(metadata.get("train_end") or ""),
        )
        if reason:
            raise SkipStep(reason)
    return Registration(
        model_dir=ctx.model_dir,
        run_id=ctx.run_id,
        gate=gate,
        metrics=read_json(platform, f"{ctx.model_dir}/{METRICS_FILE}"),
        metadata=metadata,
        tuning=_params_source(ctx, platform),
    )


def _params_source(ctx: RunContext, platform: Platform) -> dict[str, Any] | None:
    """The study the run's trained params came from (written by the train step), or None."""
    uri = f"{ctx.tuning_dir}/{tuning.SOURCE_FILE}"
    try:
        doc = read_json(platform, uri)
    except FileNotFoundError:
        return None
    return dict(doc) if isinstance(doc, dict) and doc.get("study") else None


def register(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    reg = registration(ctx, platform)
    if platform.publisher is None:
        raise RuntimeError("this platform registers models with an operator")
    extra = {**reg.extra, "dataset": ctx.dataset}
    version = platform.publisher.register(
        reg.model_dir, run_id=reg.run_id, metrics=reg.metrics, extra=extra
    )
    log.info("registered %s version %s at %s", version.name, version.version, version.uri)
    relabel_forecasts(ctx, platform, version.version)
    return {"model": version.name, "version": version.version, "uri": version.uri}


def relabel_forecasts(ctx: RunContext, platform: Platform, version: str) -> None:
    """This run's forecast rows made by its model now name the registered version."""
    if ctx.tuning is not None:
        return  # a tuning run forecasts nothing: no rows to relabel
    platform.warehouse.run_script(
        "relabel_forecasts",
        load_run_contract(ctx),
        version=str(version),
        run_id=ctx.run_id,
        candidate=f"candidate:{ctx.run_key}",
    )


def deploy(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    versions = [v for v in platform.registry.list_versions() if v.run_id == ctx.run_id]
    reason = decisions.deploy_skip_reason(ctx.enable_deploy, bool(versions))
    if reason:
        log_run_summary(ctx, platform, f"nothing deployed: {reason}")
        raise SkipStep(reason)
    if platform.deployer is None:
        raise RuntimeError("this platform deploys models with an operator")
    result = platform.deployer.deploy(versions[-1])
    log.info("deployed: %s", result)
    log_run_summary(ctx, platform, f"deployed v{result.get('version')}")
    return result


def run_summary(ctx: RunContext, platform: Platform, deployed: str) -> str:
    """The run in one paragraph, in words, for the last task's log (what a user looks for)."""
    parts = [f"run {ctx.run_id} ({ctx.dataset}, cut-off {ctx.cutoff_date})"]
    try:
        meta = read_json(platform, ctx.forecast_meta_uri)
        models = ", ".join(f"{v}: {n}" for v, n in (meta.get("models") or {}).items())
        parts.append(
            f"{meta.get('n_rows')} forecast rows for {meta.get('n_series')} series, "
            f"{meta.get('first_date')}..{meta.get('last_date')} (models: {models}); data ends "
            f"{meta.get('origin_date')}"
            + (
                f", {meta.get('data_days_before_cutoff')} days before the cut-off"
                if meta.get("data_days_before_cutoff")
                else ""
            )
        )
    except (FileNotFoundError, FileFormatError):
        parts.append("no forecasts were written")
    wh = platform.warehouse
    if wh.table_exists("rejected_rows"):
        (rej,) = wh.query(
            f"SELECT COUNT(*) AS n FROM {wh.tables.rejected_rows} WHERE run_id = @run_id",
            run_id=ctx.run_id,
        )
        parts.append(f"{rej['n']} rows quarantined")
    try:
        parts.append(decisions.gate_log(read_gate(platform, ctx)))
    except (FileNotFoundError, FileFormatError):
        parts.append("no gate decision")
    parts.append(deployed)
    return "run summary: " + "; ".join(parts)


def log_run_summary(ctx: RunContext, platform: Platform, deployed: str) -> None:
    """Log :func:`run_summary`; never fail the task for it (it only reads what others wrote)."""
    try:
        log.info("%s", run_summary(ctx, platform, deployed))
    except Exception as exc:
        log.warning("run summary unavailable: %s", exc)


STEPS: dict[str, Step] = {
    "load_to_staging": load_to_staging,
    "validate": validate,
    "build_features": build_features,
    "train": train,
    "tune": tune,
    "pick_best": pick_best,
    "retrain": retrain,
    "backtest_and_gate": backtest_and_gate,
    "forecast": forecast,
    "merge_history": merge_history,
    "register": register,
    "deploy": deploy,
}
