"""Command line of the trainer image: ``python -m trainer {train,predict,backtest} ...``.

The same arguments work as a Vertex AI custom-container job, a Cloud Run job and a local
subprocess. Logs go to stderr; each command prints one JSON summary line to stdout. A
mistake the user can fix exits with code 2 and a one-line ``error: ...`` message.
"""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import datetime as dt
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sf_contract import DATE_FORMAT, METRICS, ScalarError, parse_date
from sf_contract.constants import USER_ERROR_EXIT
from trainer.errors import TrainerError

log = logging.getLogger("trainer")

EXIT_USER_ERROR = USER_ERROR_EXIT  # sf_contract: the Airflow side reads it


def _date(text: str) -> dt.date:
    try:
        return parse_date(text)
    except ScalarError:
        raise argparse.ArgumentTypeError(f"expected a date {DATE_FORMAT}, got {text!r}") from None


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected levels like 80,95, got {text!r}") from None
    if any(not 0 < lv < 100 for lv in levels):
        raise argparse.ArgumentTypeError("levels must be between 0 and 100")
    return levels


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _noise(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _flag(parser: argparse._ActionsContainer, name: str, **kwargs: Any) -> None:
    # Vertex HPT passes tuned parameters as --<parameter_id>=value; accepting the underscore
    # spelling too lets a study use LightGBM's own names as parameter ids.
    names = [f"--{name}"]
    if "-" in name:
        names.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*names, **kwargs)


def _add_lgbm_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "LightGBM parameters (override --params-json, which overrides the defaults)"
    )
    _flag(group, "n-estimators", type=int, help="boosting rounds (default 400)")
    _flag(group, "learning-rate", type=float, help="shrinkage (default 0.08)")
    _flag(group, "num-leaves", type=int, help="max leaves per tree (default 15)")
    _flag(group, "max-depth", type=int, help="max tree depth, -1 = no limit (default -1)")
    _flag(group, "min-child-samples", type=int, help="min rows per leaf (default 20)")
    _flag(group, "feature-fraction", type=float, help="features sampled per tree (default 1.0)")
    _flag(group, "bagging-fraction", type=float, help="rows sampled per bagging (default 1.0)")
    _flag(group, "bagging-freq", type=int, help="bag every k iterations, 0 = off (default 0)")
    _flag(group, "lambda-l1", type=float, help="L1 regularisation (default 0)")
    _flag(group, "lambda-l2", type=float, help="L2 regularisation (default 0)")
    _flag(
        group,
        "objective",
        choices=["l2", "tweedie", "poisson", "l1"],
        help="loss (default l2, on the log of the level- and weekday-scaled target; tweedie / "
        "poisson suit raw counts, see features.target_scaling)",
    )
    _flag(group, "tweedie-variance-power", type=float, help="in (1, 2) (default 1.2)")
    _flag(group, "max-bin", type=int, help="histogram bins per feature (default 63)")


LGBM_FLAGS = (
    "n_estimators",
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_child_samples",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l1",
    "lambda_l2",
    "objective",
    "tweedie_variance_power",
    "max_bin",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Train, forecast and backtest daily sales models (mlforecast + LightGBM).",
        epilog="Exit codes: 0 ok (a failed gate is still 0), 2 bad input or arguments.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tr = sub.add_parser(
        "train",
        help="validate, refit with prediction intervals and save a model folder",
        description=(
            "Hold out the last --horizon days (x --validation-windows rolling origins) to "
            "measure accuracy against a seasonal-naive baseline, then refit on every day up "
            "to the cut-off with conformal prediction intervals and write the model folder: "
            "the forecaster files, metadata.json, metrics.json and params.json."
        ),
    )
    tr.add_argument(
        "--data-uri", required=True, help="clean daily panel (duckdb://, bq://, .parquet or .csv)"
    )
    tr.add_argument("--contract", required=True, help="dataset contract JSON (path or gs://)")
    tr.add_argument(
        "--cutoff-date", required=True, type=_date, help="last day the model may see (YYYY-MM-DD)"
    )
    tr.add_argument("--horizon", type=_positive, help="days to forecast (default 28)")
    tr.add_argument(
        "--model-dir",
        default=os.environ.get("AIP_MODEL_DIR"),
        help="output folder, local or gs:// (default: $AIP_MODEL_DIR)",
    )
    _add_lgbm_flags(tr)
    tr.add_argument(
        "--params-json",
        help="JSON file of LightGBM params, or a params.json of "
        "another model (its full trainer config)",
    )
    tr.add_argument(
        "--validation-windows", type=_positive, help="rolling holdout windows (default 1)"
    )
    tr.add_argument(
        "--interval-windows", type=_positive, help="conformal calibration windows (default 2)"
    )
    tr.add_argument("--levels", type=_levels, help="interval levels (default 80,95)")
    tr.add_argument(
        "--hpt-metric-name",
        "--hpt_metric_name",
        choices=list(METRICS),
        default=os.environ.get("HPT_METRIC_NAME") or None,
        help="report this validation metric through hypertune (default: $HPT_METRIC_NAME)",
    )
    tr.add_argument(
        "--train-window-days",
        type=int,
        help="the trees learn from the last N days only, 0 = all (default 730)",
    )
    tr.add_argument(
        "--max-train-rows",
        type=int,
        help="learn from a seeded sample of whole series above this many rows, 0 = no cap "
        "(default 8000000); every series is still forecast",
    )
    tr.add_argument(
        "--recipe",
        choices=["auto", "panel", "small"],
        help="model size: 'panel' (15 leaves x 400 trees at lr 0.08, 20 rows per leaf, flat "
        "level) for many series, 'small' (4 leaves x 200 trees at lr 0.05, 30 rows per leaf, "
        "the level following the year-over-year trend) for a single series or a few; 'auto' "
        "chooses by the training rows (small below 5,000). A recipe fills only the knobs not "
        "given by a flag or --params-json (default: --params-json's, else auto)",
    )
    tr.add_argument("--seed", type=int, help="random seed (default 0)")
    tr.add_argument("--num-threads", type=_positive, help="LightGBM threads (default 2)")

    pr = sub.add_parser(
        "predict",
        help="forecast every series for the next days and write the rows",
        description=(
            "Forecast --horizon days after the last day of the data (<= cut-off) for every "
            "series: the model (--model-dir) forecasts every series it knows, the fallback "
            "model (--fallback-model-dir) the series of --data-uri the model does not know, "
            "and seasonal naive (model_version 'seasonal_naive', empirical intervals) every "
            "series no given model knows, or every series with --seasonal-naive. Rows of "
            "--data-uri newer than a model's training end move its state forward first. Known "
            "covariates come from --future-uri; anything missing is filled by the contract's "
            "future_fill rules and counted in forecast_meta.json. Re-running a --run-id "
            "replaces its rows."
        ),
    )
    pr.add_argument(
        "--model-dir",
        help="model folder, local or gs:// (default: $AIP_MODEL_DIR, unless --seasonal-naive)",
    )
    pr.add_argument(
        "--fallback-model-dir",
        help="model for the series of --data-uri the model does not know (with "
        "--fallback-model-version)",
    )
    pr.add_argument("--fallback-model-version", help="stored with the fallback model's rows")
    pr.add_argument(
        "--seasonal-naive",
        action="store_true",
        help="no model: forecast every series of --data-uri by seasonal naive (needs "
        "--contract; no --model-dir)",
    )
    pr.add_argument(
        "--contract",
        help="dataset contract JSON (required with --seasonal-naive; with a model it must "
        "agree with the model's)",
    )
    pr.add_argument("--horizon", type=_positive, help="days to forecast (default: the model's)")
    pr.add_argument(
        "--cutoff-date",
        required=True,
        type=_date,
        help="forecast as of this day: later data is ignored (YYYY-MM-DD)",
    )
    pr.add_argument("--data-uri", help="latest clean panel to forecast from (optional)")
    pr.add_argument("--future-uri", help="CSV of known covariates for the forecast days")
    pr.add_argument(
        "--output-uri",
        required=True,
        help="duckdb:///path.duckdb?table=..., bq://project.dataset.table, .parquet or .csv",
    )
    pr.add_argument("--run-id", required=True, help="run key; re-running replaces its rows")
    pr.add_argument("--model-version", help="stored with the model's rows (with --model-dir)")
    pr.add_argument(
        "--levels", type=_levels, help="interval levels (default: the model's, else 80,95)"
    )
    pr.add_argument(
        "--meta-uri", help="where to write forecast_meta.json (default: next to the output)"
    )

    bt = sub.add_parser(
        "backtest",
        help="rolling-origin backtest of challenger vs seasonal naive vs champion, and gate",
        description=(
            "Refit the challenger's config (params.json in --model-dir) on rolling training "
            "windows and score it and the seasonal-naive baseline on the same days. With "
            "--champion-model-dir, production is also scored as it serves: its stored model, "
            "moved forward over the newer rows, on the windows after its training end and "
            "the series it knows (the challenger on the same rows); its recipe is refit on "
            "the windows only when the challenger's recipe differs. gate.passed: the "
            "challenger beats the baseline and, against production, the same recipe is not "
            "worse by more than --freshness-tolerance (or has nothing to be scored on), a "
            "changed recipe is better by --min-improvement. Writes backtest.json and "
            "gate.json to --output-dir; a failed gate still exits 0."
        ),
    )
    bt.add_argument("--data-uri", required=True, help="clean daily panel")
    bt.add_argument("--contract", required=True, help="dataset contract JSON")
    bt.add_argument("--cutoff-date", required=True, type=_date, help="last day to use")
    bt.add_argument("--horizon", type=_positive, help="days per window (default: challenger's)")
    bt.add_argument("--n-windows", type=_positive, default=3, help="windows (default 3)")
    bt.add_argument("--step", type=_positive, help="days between cut-offs (default: horizon)")
    bt.add_argument(
        "--model-dir",
        default=os.environ.get("AIP_MODEL_DIR"),
        help="challenger model folder (reads its params.json)",
    )
    bt.add_argument(
        "--champion-model-dir",
        help="current production model folder (its params.json and stored model)",
    )
    bt.add_argument(
        "--min-improvement",
        type=float,
        default=0.0,
        help="relative margin a changed recipe must beat production by, e.g. 0.02 "
        "= 2%% lower metric (default 0)",
    )
    bt.add_argument(
        "--freshness-tolerance",
        type=float,
        default=0.02,
        help="the same recipe on newer data replaces production unless it is worse than "
        "production as served by more than this relative margin, in [0, 1) (default 0.02)",
    )
    bt.add_argument(
        "--metric",
        choices=list(METRICS),
        default="wape",
        help="gate metric, lower is better (default wape)",
    )
    bt.add_argument("--output-dir", required=True, help="folder for backtest.json and gate.json")
    bt.add_argument(
        "--results-uri",
        help="also write one row per method here (e.g. "
        "duckdb:///path.duckdb?table=backtest_results)",
    )
    bt.add_argument("--run-id", help="run key for --results-uri (rows are replaced)")
    bt.add_argument(
        "--no-coverage",
        dest="coverage",
        action="store_false",
        help="skip calibrating and scoring the challenger's prediction intervals per window",
    )
    bt.add_argument(
        "--weather-noise",
        type=_noise,
        default=0.0,
        metavar="S",
        help="give the contract's forecast columns (weather) a simulated forecast error on the "
        "held-out days instead of their actual values: zero-mean, S x each column's standard "
        "deviation around its 31-day mean on the training days at 7 days ahead, growing as "
        "sqrt(h / 7) with the lead time h, correlated from day to day, clipped to the "
        "column's observed range (an amount often nothing, like rain, x a mean-one factor "
        "instead); 0.5 is about a real weather forecast (default 0: actual values, a "
        "perfect forecast)",
    )
    bt.add_argument(
        "--weather-noise-seed",
        type=int,
        default=0,
        help="seed of the --weather-noise errors (default 0)",
    )
    bt.add_argument("--num-threads", type=_positive, help="override LightGBM threads")

    mo = sub.add_parser(
        "monitor",
        help="realised accuracy of the stored forecasts and drift, for one monitoring day",
        description=(
            "Score every stored forecast of the last --window-days days of actuals (WAPE, "
            "MASE, bias, interval coverage, and seasonal naive on the same points) per model "
            "version, series group and horizon day, and the PSI of the target and each numeric "
            "covariate between those days and the --reference-days before them. Re-running a "
            "day replaces its rows."
        ),
    )
    mo.add_argument("--data-uri", required=True, help="clean daily panel (actuals)")
    mo.add_argument("--forecasts-uri", required=True, help="the stored daily forecasts table")
    mo.add_argument("--contract", required=True, help="dataset contract JSON")
    mo.add_argument("--monitor-date", required=True, type=_date, help="the day (YYYY-MM-DD)")
    mo.add_argument("--accuracy-uri", required=True, help="forecast_accuracy table to write")
    mo.add_argument("--drift-uri", required=True, help="drift_report table to write")
    mo.add_argument("--window-days", type=_positive, default=28, help="days scored (default 28)")
    mo.add_argument(
        "--reference-days",
        type=_positive,
        default=42,
        help="days of the drift reference, centred on the same days a year earlier (default 42)",
    )
    mo.add_argument(
        "--psi-threshold", type=float, default=0.2, help="PSI above this is drift (default 0.2)"
    )
    mo.add_argument("--summary-uri", help="also write the summary JSON here (local or gs://)")
    return parser


# Each command imports its modules when it runs: `--help` and argument errors stay instant
# instead of waiting for pandas, mlforecast and LightGBM to load.


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from trainer.config import TrainerConfig, config_from_json_obj
    from trainer.contract import load_contract
    from trainer.inputs import load_panel
    from trainer.io.files import read_json
    from trainer.train import run_train

    if not args.model_dir:
        raise TrainerError("no --model-dir and AIP_MODEL_DIR is not set")
    config = TrainerConfig()
    if args.params_json:
        config = config_from_json_obj(read_json(args.params_json), config)
    config = config.with_params(**{name: getattr(args, name) for name in LGBM_FLAGS})
    overrides = {
        "horizon": args.horizon,
        "validation_windows": args.validation_windows,
        "interval_windows": args.interval_windows,
        "train_window_days": args.train_window_days,
        "max_train_rows": args.max_train_rows,
        "levels": tuple(args.levels) if args.levels else None,
        "seed": args.seed,
        "num_threads": args.num_threads,
        "hpt_metric_name": args.hpt_metric_name,
        "recipe": args.recipe,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None}).validate()
    contract = load_contract(args.contract)
    panel = load_panel(args.data_uri, contract, args.cutoff_date)
    return run_train(
        panel=panel,
        contract=contract,
        config=config,
        cutoff_date=args.cutoff_date,
        model_dir=args.model_dir,
        data_uri=args.data_uri,
    )


def _predict(args: argparse.Namespace) -> dict[str, Any]:
    from trainer.contract import load_contract
    from trainer.predict import run_predict

    # Vertex may set AIP_MODEL_DIR for any job: only an explicit --model-dir conflicts with
    # --seasonal-naive. run_predict checks the rest of the combination before loading anything.
    model_dir = args.model_dir
    if not args.seasonal_naive:
        model_dir = model_dir or os.environ.get("AIP_MODEL_DIR")
    return run_predict(
        model_dir=model_dir,
        fallback_model_dir=args.fallback_model_dir,
        fallback_model_version=args.fallback_model_version,
        seasonal_naive=args.seasonal_naive,
        contract=load_contract(args.contract) if args.contract else None,
        cutoff_date=args.cutoff_date,
        output_uri=args.output_uri,
        run_id=args.run_id,
        model_version=args.model_version,
        horizon=args.horizon,
        data_uri=args.data_uri,
        future_uri=args.future_uri,
        levels=args.levels,
        meta_uri=args.meta_uri,
    )


def _backtest(args: argparse.Namespace) -> dict[str, Any]:
    from trainer.backtest import load_artifact, load_params, run_backtest
    from trainer.contract import load_contract
    from trainer.inputs import load_panel

    if not 0 <= args.freshness_tolerance < 1:
        raise TrainerError("--freshness-tolerance must be in [0, 1) (a relative margin)")
    if not args.model_dir:
        raise TrainerError("no --model-dir (challenger) and AIP_MODEL_DIR is not set")
    if args.results_uri and not args.run_id:
        raise TrainerError("--results-uri needs --run-id")
    challenger = load_params(args.model_dir)
    champion = artifact = None
    if args.champion_model_dir:
        champion = load_params(args.champion_model_dir)
        artifact = load_artifact(args.champion_model_dir)
    if args.num_threads:
        challenger = replace(challenger, num_threads=args.num_threads)
        champion = replace(champion, num_threads=args.num_threads) if champion else None
    horizon = args.horizon or challenger.horizon
    contract = load_contract(args.contract)
    panel = load_panel(args.data_uri, contract, args.cutoff_date)
    result = run_backtest(
        panel=panel,
        contract=contract,
        cutoff_date=args.cutoff_date,
        horizon=horizon,
        n_windows=args.n_windows,
        challenger=challenger,
        champion=champion,
        champion_artifact=artifact,
        metric=args.metric,
        min_improvement=args.min_improvement,
        freshness_tolerance=args.freshness_tolerance,
        step=args.step,
        output_dir=args.output_dir,
        results_uri=args.results_uri,
        run_id=args.run_id,
        sources={"challenger": args.model_dir, "champion": args.champion_model_dir},
        coverage=args.coverage,
        weather_noise=args.weather_noise,
        weather_noise_seed=args.weather_noise_seed,
    )
    coverage = result["backtest"]["methods"]["challenger"].get("coverage")
    report_uri = _write_report(args, result, contract.date_column, challenger.seed)
    return {
        "output_dir": args.output_dir,
        "report": report_uri,
        "gate": result["gate"],
        "coverage": coverage,
        "weather_noise": args.weather_noise,
    }


def _write_report(
    args: argparse.Namespace, result: dict[str, Any], date_column: str, seed: int
) -> str | None:
    """The run report beside backtest.json; a failure is a warning, never a failed backtest
    (the gate must not depend on a chart)."""
    from trainer.backtest import load_artifact
    from trainer.report import write_report

    try:
        model = error = None
        try:
            model = load_artifact(args.model_dir)
        except Exception as exc:  # a params-only folder still gets the rest of the report
            error = f"the challenger's stored model could not be loaded ({exc})"
        uri = write_report(
            output_dir=args.output_dir,
            backtest=result["backtest"],
            gate=result["gate"],
            predictions=result.get("predictions") or {},
            date_column=date_column,
            model=model,
            model_error=error,
            seed=seed,
        )
    except Exception as exc:
        log.warning("backtest: the run report was not written (%s: %s)", type(exc).__name__, exc)
        return None
    log.info("backtest: run report at %s", uri)
    return uri


def _monitor(args: argparse.Namespace) -> dict[str, Any]:
    from trainer.contract import load_contract
    from trainer.monitor import run_monitor

    if not args.psi_threshold > 0:
        raise TrainerError(f"--psi-threshold must be > 0, got {args.psi_threshold}")
    summary = run_monitor(
        data_uri=args.data_uri,
        forecasts_uri=args.forecasts_uri,
        contract=load_contract(args.contract),
        monitor_date=args.monitor_date,
        accuracy_uri=args.accuracy_uri,
        drift_uri=args.drift_uri,
        window_days=args.window_days,
        reference_days=args.reference_days,
        psi_threshold=args.psi_threshold,
    )
    if args.summary_uri:
        from trainer.io.files import write_json

        write_json(summary, args.summary_uri)
    return summary


_COMMANDS = {"train": _train, "predict": _predict, "backtest": _backtest, "monitor": _monitor}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("google", "urllib3", "fsspec", "gcsfs"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        summary = _COMMANDS[args.command](args)
    except TrainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(json.dumps(summary, default=str))
    return 0
