"""Building and fitting the mlforecast + LightGBM model behind :class:`trainer.model.Forecaster`.

Everything that touches mlforecast's internals lives here. mlforecast 1.1 (the pinned version)
sets ``_cs_df`` / ``_cs_source_scales_`` only in ``MLForecast.fit`` but reads them in
``predict``; the trainer fits with ``preprocess`` + ``fit_models`` instead (to select training
rows after the features are built), then sets ``models_`` on a second instance that holds every
series' state, and copies ``ts`` for a private forecasting state. Recheck these four attributes
on an mlforecast upgrade.

Unknown days (``is_unknown``: the day's row was quarantined) are no training targets: their
filled target (:func:`trainer.panel.fill_unknown_target`) feeds the lags and rolling means of
later days, but their own rows are dropped from the design matrix (:func:`training_matrix`).
"""

from __future__ import annotations

__all__ = [
    "MODEL_NAME",
    "TrainingMatrix",
    "fit_kwargs",
    "fit_trees",
    "new_mlforecast",
    "private_copy",
    "quiet",
    "training_matrix",
    "training_rows",
]

import contextlib
import copy
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlforecast import MLForecast

from sf_contract import Contract
from trainer.columns import ID, TARGET, TIME
from trainer.config import TrainerConfig, lgbm_kwargs
from trainer.covariates import covariate_tail
from trainer.feature_spec import FeatureSpec, mlforecast_kwargs, to_model_frame
from trainer.panel import UNKNOWN
from trainer.progress import elapsed_text
from trainer.scaling import SeasonalScaler

log = logging.getLogger(__name__)

MODEL_NAME = "lgbm"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence mlforecast's expected warnings while fitting or forecasting."""
    # mlforecast warns about null lag features of short series; LightGBM handles them, so
    # the warning is expected and would only bury real messages.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found null values")
        warnings.filterwarnings("ignore", category=UserWarning, module="mlforecast")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def new_mlforecast(config: TrainerConfig, scaler: SeasonalScaler | None = None) -> MLForecast:
    """An unfitted MLForecast with the config's features and LightGBM model."""
    kwargs = mlforecast_kwargs(config.features)
    if scaler is not None:
        kwargs["target_transforms"] = [scaler]
    mlf = MLForecast(
        models={MODEL_NAME: lgb.LGBMRegressor(**lgbm_kwargs(config))},
        freq="D",
        num_threads=1,
        **kwargs,
    )
    # Set by MLForecast.fit; predict reads them even when preprocess + fit_models were used.
    mlf._cs_df = None
    mlf._cs_source_scales_ = None
    return mlf


def private_copy(mlf: MLForecast) -> MLForecast:
    """A copy that forecasts without touching ``mlf``'s state (mlforecast keeps per-call state
    on its TimeSeries, so concurrent forecasts in a threaded server need their own)."""
    out = copy.copy(mlf)
    out.ts = copy.deepcopy(mlf.ts)
    return out


def fit_kwargs(spec: FeatureSpec) -> dict[str, Any]:
    """Column names and options for ``MLForecast.preprocess`` / ``cross_validation``."""
    return {
        "id_col": ID,
        "time_col": TIME,
        "target_col": TARGET,
        "static_features": spec.static_names,
        # Keep rows whose lags are still empty: short and new series then shape the trees
        # too, and LightGBM learns what a missing lag means instead of guessing at predict.
        "dropna": False,
        "keep_last_n": spec.features.keep_last_n,
        "as_numpy": False,
    }


def training_rows(
    panel: pd.DataFrame, contract: Contract, config: TrainerConfig
) -> tuple[pd.DataFrame, pd.Timestamp | None, dict[str, Any]]:
    """The panel rows the trees learn from: the last ``train_window_days``, a sample of series.

    Returns ``(panel rows to build features on, first day whose rows are training rows or
    None, facts for the log / metadata)``. Feature rows keep ``keep_last_n`` days before the
    window so the window's first rows have complete lags. Selecting on the panel, before any
    feature is built, is what keeps a 30M-row panel within memory. ``train_rows`` counts the
    window's rows that are targets: ``unknown_rows`` (days flagged ``is_unknown``) are not.
    """
    date = contract.date_column
    ids = panel["series_id"]
    facts: dict[str, Any] = {"rows": len(panel), "series": int(ids.nunique())}
    start = None
    out = panel
    days = panel[date].to_numpy()
    if config.train_window_days:
        last = panel[date].max()
        start = last - pd.Timedelta(days=config.train_window_days - 1)
        lookback = start - pd.Timedelta(days=config.features.keep_last_n)
        if panel[date].min() < start:
            keep = days >= lookback.to_datetime64()
            out = panel if keep.all() else panel[keep]
        else:
            start = None
    in_window = (
        np.ones(len(out), dtype=bool)
        if start is None
        else out[date].to_numpy() >= start.to_datetime64()
    )
    rows = int(in_window.sum())
    if config.max_train_rows and rows > config.max_train_rows:
        sizes = pd.Series(in_window, index=out.index).groupby(out["series_id"], observed=True).sum()
        sizes = sizes.sort_index()
        order = np.random.default_rng(config.seed).permutation(len(sizes))
        cum = np.cumsum(sizes.to_numpy()[order])
        chosen = sizes.index[order[: max(1, int(np.searchsorted(cum, config.max_train_rows)))]]
        pick = out["series_id"].isin(chosen).to_numpy()
        out = out[pick]
        in_window = in_window[pick]
        facts["sampled_series"] = len(chosen)
    unknown = _unknown_flags(out)
    facts["unknown_rows"] = int((in_window & unknown).sum())
    facts["train_rows"] = int(in_window.sum()) - facts["unknown_rows"]
    facts["train_start"] = None if start is None else start.date().isoformat()
    return out, start, facts


def _unknown_flags(panel: pd.DataFrame) -> np.ndarray:
    if UNKNOWN not in panel.columns:
        return np.zeros(len(panel), dtype=bool)
    return np.asarray(panel[UNKNOWN].to_numpy(dtype=bool))


@dataclass
class TrainingMatrix:
    """What the trees are fit on, and what it was built from.

    ``x`` keeps the model frame's index: each row's position in ``rows`` (the panel rows the
    features were built on), so a row of the matrix can be traced back to its panel day.
    """

    mlf: MLForecast
    scaler: SeasonalScaler | None
    x: pd.DataFrame
    y: np.ndarray
    sample_weight: np.ndarray | None
    rows: pd.DataFrame
    tail: pd.DataFrame | None
    facts: dict[str, Any]


def training_matrix(
    panel: pd.DataFrame, contract: Contract, spec: FeatureSpec, config: TrainerConfig
) -> TrainingMatrix:
    """The design matrix, targets and weights of the trees (models not fit yet).

    Rows: the :func:`training_rows` window and sample, minus the days flagged ``is_unknown``
    (their filled target is no actual; it still shaped the lags of the days after them).
    """
    date, target = contract.date_column, contract.target
    scaler = None
    if config.features.target_scaling != "none":
        # Each series' scale comes from its own recent history, whatever rows the trees see.
        scaler = SeasonalScaler(
            window=config.features.scaling_window,
            weekly=config.features.target_scaling == "seasonal",
            log=config.features.log_target,
            trend=bool(config.features.level_trend),
        ).prefit(panel, id_col="series_id", time_col=date, target_col=target)
    rows, start, facts = training_rows(panel, contract, config)
    log.info(
        "training rows: %s of %s (from %s, %s series, %d unknown days left out)",
        f"{facts['train_rows']:,}",
        f"{facts['rows']:,}",
        facts["train_start"] or "the first day",
        facts.get("sampled_series", facts["series"]),
        facts["unknown_rows"],
    )
    frame = to_model_frame(rows, contract, spec)
    mlf = new_mlforecast(config, scaler)
    # as_numpy=False (fit_kwargs): the features come back as one DataFrame.
    prep = cast(pd.DataFrame, mlf.preprocess(frame, validate_data=False, **fit_kwargs(spec)))
    tail = covariate_tail(frame, spec) if rows is panel else None
    keep = ~_unknown_flags(rows)[_frame_positions(prep, frame)]
    del frame
    if start is not None:
        keep &= prep[TIME].to_numpy() >= start.to_datetime64()
    if not keep.all():
        prep = prep[keep]
    y = prep[TARGET].to_numpy(dtype=np.float64)
    weight = None
    if scaler is not None and config.features.weight_power > 0:
        # Rows of big series weigh more: the loss then tracks errors in units sold (WAPE).
        level = scaler.level_[scaler.ids_.get_indexer(prep[ID])]
        weight = level**config.features.weight_power
    x = prep.drop(columns=[ID, TIME, TARGET])
    return TrainingMatrix(mlf, scaler, x, y, weight, rows, tail, facts)


def _frame_positions(prep: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """Each preprocessed row's position in the model frame (and so in the panel rows)."""
    # preprocess(dropna=False) keeps every row, in order, under the frame's RangeIndex; check
    # the cheap part of that rather than trust it across mlforecast versions.
    positions = prep.index.to_numpy()
    if (
        len(prep) == len(frame)
        and np.array_equal(positions, np.arange(len(frame)))
        and np.array_equal(prep[TIME].to_numpy(), frame[TIME].to_numpy())
    ):
        return positions
    lookup = pd.DataFrame({ID: frame[ID], TIME: frame[TIME], "_pos": np.arange(len(frame))})
    merged = prep[[ID, TIME]].merge(lookup, on=[ID, TIME], how="left")
    return np.asarray(merged["_pos"].to_numpy(dtype=np.int64))


def fit_trees(
    panel: pd.DataFrame, contract: Contract, spec: FeatureSpec, config: TrainerConfig
) -> tuple[MLForecast, pd.DataFrame | None, dict[str, Any]]:
    """Fit the trees; return an MLForecast holding every series' state, the covariate tail and
    the facts of :func:`training_rows`."""
    date = contract.date_column
    matrix = training_matrix(panel, contract, spec, config)
    mlf, scaler, rows, tail = matrix.mlf, matrix.scaler, matrix.rows, matrix.tail
    facts = matrix.facts
    model_kwargs: dict[str, Any] = {}
    if matrix.sample_weight is not None:
        model_kwargs["sample_weight"] = matrix.sample_weight
    started = time.perf_counter()
    mlf.fit_models(matrix.x, matrix.y, models_fit_kwargs={MODEL_NAME: model_kwargs})
    # One line per fit, after it (the caller logs the fit's start): how long the trees took
    # of the whole fit, which also builds the features.
    log.info(
        "LightGBM: %d trees on %s rows x %d features in %s",
        config.params.n_estimators,
        f"{len(matrix.y):,}",
        matrix.x.shape[1],
        elapsed_text(time.perf_counter() - started),
    )
    del matrix, model_kwargs
    if rows is panel:
        return mlf, tail, facts
    # The trees saw a window / sample; the state for forecasting covers every series, from
    # the last keep_last_n days of each (the scaler is frozen: same scales).
    del rows
    last = panel.groupby("series_id", sort=False, observed=True)[date].transform("max")
    recent = panel[panel[date] > last - pd.Timedelta(days=spec.features.keep_last_n)]
    frame = to_model_frame(recent, contract, spec)
    del recent, last
    full = new_mlforecast(config, scaler)
    full.preprocess(frame, validate_data=False, **fit_kwargs(spec))
    full.models_ = mlf.models_
    return full, covariate_tail(frame, spec), facts
