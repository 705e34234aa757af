"""``train``: holdout validation, refit with prediction intervals, save the model folder."""

from __future__ import annotations

__all__ = ["report_hpt_metric", "run_train"]

import datetime as dt
import logging
import math
import os
import platform
import tempfile
from importlib import metadata
from typing import Any

import pandas as pd

from sf_contract import Contract
from sf_contract.files import METADATA_FILE, METRICS_FILE
from trainer import __version__
from trainer.config import TrainerConfig
from trainer.evaluation import (
    METRIC_MEANINGS,
    SEASONAL_NAIVE,
    evaluate_methods,
    evaluation_cutoffs,
)
from trainer.intervals import SCALED_CONFORMAL
from trainer.io.files import publish_dir, write_json
from trainer.metrics import summarize
from trainer.model import Forecaster
from trainer.panel import UNKNOWN, known_rows
from trainer.progress import progress

log = logging.getLogger(__name__)

_LIBRARIES = ("lightgbm", "mlforecast", "utilsforecast", "coreforecast", "pandas", "numpy")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "trainer": __version__}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def report_hpt_metric(name: str, value: float, step: int = 1) -> None:
    """Report the tuning metric through ``hypertune`` (Vertex HPT and the local Optuna driver).

    A metric that cannot be computed is reported as a very large number: tuners minimise,
    and NaN would crash or confuse them.
    """
    import hypertune  # only a tuning run reports a metric

    if value is None or not math.isfinite(value):
        log.warning("HPT metric %s is undefined; reporting 1e12 instead", name)
        value = 1e12
    hypertune.HyperTune().report_hyperparameter_tuning_metric(
        hyperparameter_metric_tag=name, metric_value=float(value), global_step=step
    )
    log.info(
        "reported HPT metric %s=%.6f to %s",
        name,
        value,
        os.environ.get("CLOUD_ML_HP_METRIC_FILE", "/tmp/hypertune/output.metrics"),
    )


def run_train(
    *,
    panel: pd.DataFrame,
    contract: Contract,
    config: TrainerConfig,
    cutoff_date: dt.date,
    model_dir: str,
    data_uri: str | None = None,
) -> dict[str, Any]:
    """Validate on the last ``horizon`` days, refit on everything, write the model folder.

    ``panel`` is the prepared panel already limited to days on or before ``cutoff_date``.
    Returns a small summary (also printed by the CLI). Unknown days (``is_unknown``) are
    scored by no metric and calibrate no interval: their actuals do not exist.
    """
    config.validate()
    n_series = int(panel["series_id"].nunique())
    # Under a scheduler a silent minute looks hung: the step and each of its fits log their
    # start and their end.
    with progress(log, f"train: whole step on {n_series} series, {len(panel):,} rows"):
        return _train(panel, contract, config, cutoff_date, model_dir, data_uri, n_series)


def _train(
    panel: pd.DataFrame,
    contract: Contract,
    config: TrainerConfig,
    cutoff_date: dt.date,
    model_dir: str,
    data_uri: str | None,
    n_series: int,
) -> dict[str, Any]:
    fc, metrics, model_scores, baseline_scores = _fit_and_validate(panel, contract, config)
    date = contract.date_column
    h = config.horizon
    first, last = panel[date].min(), panel[date].max()
    n_gap, n_unknown = metrics["n_gap_filled_rows"], metrics["n_unknown_rows"]
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    metadata_doc = {
        "contract": contract.to_dict(),
        "trainer_config": config.to_dict(),
        # The recipe the fit used (trainer.recipe: panel / small), why (the data's shape or
        # the config's forcing), the knobs it filled and the ones given; the resolved values
        # are in fc.config. An extra key: ModelMetadata is a partial, free-form document.
        "recipe": fc.recipe,
        "feature_spec": fc.spec.to_dict(),
        "training_window": {
            "first_date": first.date().isoformat(),
            "last_date": last.date().isoformat(),
        },
        # Flat copies of the window for registries that read top-level keys.
        "train_start": first.date().isoformat(),
        "train_end": last.date().isoformat(),
        "cutoff_date": cutoff_date.isoformat(),
        "data_uri": data_uri,
        "n_series": n_series,
        "n_rows": len(panel),
        "n_gap_filled_rows": n_gap,
        "n_unknown_rows": n_unknown,
        "horizon": h,
        "levels": list(config.levels),
        "intervals": fc.intervals,
        "created_at": created,
        "library_versions": library_versions(),
    }
    with tempfile.TemporaryDirectory(prefix="trainer-out-") as tmp:
        fc.save(tmp)
        write_json(metadata_doc, os.path.join(tmp, METADATA_FILE))
        write_json(metrics, os.path.join(tmp, METRICS_FILE))
        write_json(config.to_dict(), os.path.join(tmp, "params.json"))
        publish_dir(tmp, model_dir)
    log.info("model written to %s", model_dir)

    hpt_value = None
    if config.hpt_metric_name:
        hpt_value = model_scores["overall"][config.hpt_metric_name]
        report_hpt_metric(config.hpt_metric_name, hpt_value)
    return {
        "model_dir": model_dir,
        "training_window": metadata_doc["training_window"],
        "n_series": metadata_doc["n_series"],
        "recipe": {k: fc.recipe.get(k) for k in ("name", "reason")},
        "metrics": model_scores["overall"],
        "baseline": baseline_scores["overall"],
        "intervals": bool(fc.intervals.get("enabled")),
        "hpt_metric": {"name": config.hpt_metric_name, "value": hpt_value}
        if config.hpt_metric_name
        else None,
    }


def _fit_and_validate(
    panel: pd.DataFrame, contract: Contract, config: TrainerConfig
) -> tuple[Forecaster, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The validation windows' fits and scores, then the final fit with intervals.

    Returns the final forecaster, ``metrics.json``'s document, and the model's and seasonal
    naive's scores.
    """
    date = contract.date_column
    h = config.horizon
    first, last = panel[date].min(), panel[date].max()
    cutoffs = evaluation_cutoffs(first, last, h, config.validation_windows, step=h)
    log.info(
        "validation: %d window(s) of %d days, cut-offs %s; %s",
        len(cutoffs),
        h,
        [c.date().isoformat() for c in cutoffs],
        METRIC_MEANINGS["wape"],
    )
    evals = evaluate_methods(
        panel,
        contract,
        cutoffs,
        h,
        {"model": config, SEASONAL_NAIVE: None},
        step_name="train: validation",
        labels={"model": "model fit"},
    )
    evals = {name: known_rows(frame, panel, contract) for name, frame in evals.items()}
    # Gap-filled days (no row: zero sales) are scored; unknown days (quarantined rows) are not.
    n_gap = int(panel["is_gap_filled"].sum()) if "is_gap_filled" in panel else None
    n_unknown = int(panel[UNKNOWN].sum()) if UNKNOWN in panel else 0
    model_scores = summarize(evals["model"], h)
    baseline_scores = summarize(evals[SEASONAL_NAIVE], h)
    metrics = {
        "horizon": h,
        "validation_windows": [c.date().isoformat() for c in cutoffs],
        "n_series_evaluated": int(evals["model"]["series_id"].nunique()),
        "n_gap_filled_rows": n_gap,
        "n_unknown_rows": n_unknown,
        **model_scores,
        "baseline": {"method": "seasonal_naive", "season": 7, **baseline_scores},
        "definitions": "trainer.metrics: wape=sum|e|/sum|y|, bias=sum(e)/sum|y|, "
        "mase=sum|e|/sum(seasonal-naive in-sample MAE), e=forecast-actual",
    }
    log.info(
        "validation: WAPE %.3f, MAE %.3f (seasonal naive: WAPE %.3f; lower is better)",
        model_scores["overall"]["wape"],
        model_scores["overall"]["mae"],
        baseline_scores["overall"]["wape"],
    )

    calibration = None
    if config.interval_method == SCALED_CONFORMAL:
        # The validation windows were forecast out of sample by this very recipe: their
        # errors calibrate the intervals, which saves the separate calibration fit.
        calibration = evals["model"].rename(columns={date: "date"})[
            ["series_id", "date", "step", "y", "y_hat", "cutoff"]
        ]
    n_series = int(panel["series_id"].nunique())
    with progress(
        log,
        f"train: final fit with intervals on {n_series} series, {len(panel):,} rows "
        f"up to {last.date()}",
    ):
        fc = Forecaster.fit(panel, contract, config, intervals=True, calibration=calibration)
    return fc, metrics, model_scores, baseline_scores
