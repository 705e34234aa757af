"""The forecaster: mlforecast + LightGBM behind a small API shared by the trainer and serving.

>>> fc = Forecaster.fit(panel, contract, TrainerConfig(horizon=28))
>>> fc.save("model/")
>>> fc = Forecaster.load("model/")
>>> fc.predict(28, future_df=promos, new_history=latest_panel, levels=(80, 95))

Prediction intervals are split-conformal per horizon step (``scaled_conformal``, the default):
a calibration model fit on the days before the last ``interval_windows`` x ``horizon`` days
forecasts those windows; each error is divided by its series' noise scale (the mean absolute
week-over-week change of its recent history) and the scores are pooled across series for each
step ahead. A forecast's interval is the point forecast plus the step's score quantiles times
its series' scale, so every series (even a new one) gets an interval and a 95% quantile rests
on hundreds of errors, not three. Models saved with the first version's per-series
``conformal_distribution`` method keep using it.
"""

from __future__ import annotations

__all__ = ["MODEL_NAME", "ForecastResult", "Forecaster"]

import contextlib
import copy
import datetime as dt
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from trainer.config import TrainerConfig, lgbm_kwargs
from trainer.contract import Contract
from trainer.errors import TrainerError
from trainer.features import (
    ID,
    TAIL_DAYS,
    TARGET,
    TIME,
    FeatureSpec,
    SeasonalScaler,
    build_feature_spec,
    build_future_frame,
    covariate_tail,
    mlforecast_kwargs,
    prepare_panel,
    series_state,
    to_model_frame,
)

log = logging.getLogger(__name__)

MODEL_NAME = "lgbm"
FORMAT_VERSION = 2
# Version 1 (the first trainer) still loads: its config and spec say what it was trained with.
_READABLE_FORMATS = (1, 2)
_MLF_DIR = "mlforecast"
_STATE_FILE = "series_state.parquet"
_SCORES_FILE = "conformity_scores.parquet"
_TAIL_FILE = "covariate_tail.parquet"
_SPEC_FILE = "forecaster.json"
SCALED_CONFORMAL = "scaled_conformal"
# Scores kept per horizon step (a seeded sample beyond that: quantiles barely move).
_MAX_SCORES_PER_STEP = 20_000
# A step's quantiles pool its neighbours' scores until at least this many are in.
_MIN_SCORES = 200
# History the calibration model needs before its first cut-off.
MIN_CALIBRATION_DAYS = 28


@dataclass
class ForecastResult:
    """Forecast rows plus what it took to make them (for ``forecast_meta.json``)."""

    frame: pd.DataFrame
    filled_values: dict[str, int] = field(default_factory=dict)
    ignored_future_rows: int = 0
    updated_rows: int = 0
    series_without_intervals: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def filled_total(self) -> int:
        return int(sum(self.filled_values.values()))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # mlforecast warns about null lag features of short series; LightGBM handles them, so
    # the warning is expected and would only bury real messages.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found null values")
        warnings.filterwarnings("ignore", category=UserWarning, module="mlforecast")
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def _new_mlforecast(config: TrainerConfig, scaler: SeasonalScaler | None = None) -> Any:
    import lightgbm as lgb
    from mlforecast import MLForecast

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


def _fit_kwargs(spec: FeatureSpec) -> dict[str, Any]:
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


def _training_rows(
    panel: pd.DataFrame, contract: Contract, config: TrainerConfig
) -> tuple[pd.DataFrame, Any, dict]:
    """The panel rows the trees learn from: the last ``train_window_days``, a sample of series.

    Returns ``(panel rows to build features on, first day whose rows are training rows or
    None, facts for the log / metadata)``. Feature rows keep ``keep_last_n`` days before the
    window so the window's first rows have complete lags. Selecting on the panel, before any
    feature is built, is what keeps a 30M-row panel within memory.
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
    facts["train_rows"] = int(in_window.sum())
    facts["train_start"] = None if start is None else start.date().isoformat()
    return out, start, facts


def _train(
    panel: pd.DataFrame, contract: Contract, spec: FeatureSpec, config: TrainerConfig
) -> tuple[Any, pd.DataFrame | None, dict]:
    """Fit the trees; return an MLForecast holding every series' state and the covariate tail."""
    date, target = contract.date_column, contract.target
    scaler = None
    if config.features.target_scaling != "none":
        # Each series' scale comes from its own recent history, whatever rows the trees see.
        scaler = SeasonalScaler(
            window=config.features.scaling_window,
            weekly=config.features.target_scaling == "seasonal",
            log=config.features.log_target,
        ).prefit(panel, id_col="series_id", time_col=date, target_col=target)
    rows, start, facts = _training_rows(panel, contract, config)
    log.info(
        "training rows: %d of %d (from %s, %s series)",
        facts["train_rows"],
        facts["rows"],
        facts["train_start"] or "the first day",
        facts.get("sampled_series", facts["series"]),
    )
    frame = to_model_frame(rows, contract, spec)
    mlf = _new_mlforecast(config, scaler)
    kwargs = _fit_kwargs(spec)
    prep = mlf.preprocess(frame, validate_data=False, **kwargs)
    if rows is panel:
        tail = covariate_tail(frame, spec)
    del frame
    if start is not None:
        prep = prep[prep[TIME].to_numpy() >= start.to_datetime64()]
    y = prep[TARGET].to_numpy(dtype=np.float64)
    fit_kwargs: dict[str, Any] = {}
    if scaler is not None and config.features.weight_power > 0:
        # Rows of big series weigh more: the loss then tracks errors in units sold (WAPE).
        level = scaler.level_[scaler.ids_.get_indexer(prep[ID])]
        fit_kwargs["sample_weight"] = level**config.features.weight_power
    x = prep.drop(columns=[ID, TIME, TARGET])
    del prep
    mlf.fit_models(x, y, models_fit_kwargs={MODEL_NAME: fit_kwargs})
    del x, y, fit_kwargs
    if rows is panel:
        return mlf, tail, facts
    # The trees saw a window / sample; the state for forecasting covers every series, from
    # the last keep_last_n days of each (the scaler is frozen: same scales).
    del rows
    last = panel.groupby("series_id", sort=False, observed=True)[date].transform("max")
    recent = panel[panel[date] > last - pd.Timedelta(days=spec.features.keep_last_n)]
    frame = to_model_frame(recent, contract, spec)
    del recent, last
    full = _new_mlforecast(config, scaler)
    full.preprocess(frame, validate_data=False, **kwargs)
    full.models_ = mlf.models_
    return full, covariate_tail(frame, spec), facts


def noise_scale(panel: pd.DataFrame, contract: Contract, days: int = 56) -> pd.DataFrame:
    """Per series (index): ``scale``, the mean absolute week-over-week change over its last
    ``days`` days, and ``level``, its mean over those days.

    Interval widths are expressed in ``scale`` units, adjusted to the forecast's own level by
    :func:`_width_unit` (count noise grows about like the square root of the level). Series too
    young for a week-over-week change use their level x the panel's typical scale/level ratio;
    a floor keeps all-zero series from getting zero-width intervals.
    """
    date, target = contract.date_column, contract.target
    end = panel.groupby("series_id", observed=True)[date].transform("max")
    recent = panel[panel[date] > end - pd.Timedelta(days=days)]
    recent = recent.assign(series_id=recent["series_id"].astype(str))
    y = recent[target].astype(float)
    diffs = (y - y.groupby(recent["series_id"], observed=True).shift(7)).abs()
    stats = pd.DataFrame({"series_id": recent["series_id"], "d": diffs, "y": y})
    g = stats.groupby("series_id", sort=True, observed=True)
    mad, n_diff, level = g["d"].mean(), g["d"].count(), g["y"].mean()
    ok = (n_diff >= 7) & (level > 0)
    ratio = float((mad[ok] / level[ok]).median()) if ok.any() else 1.0
    scale = mad.where(n_diff >= 7, level * ratio)
    overall = float(panel[target].abs().mean())
    floor = max(0.01 * overall, 1e-6)
    return pd.DataFrame({"scale": scale.fillna(floor).clip(lower=floor), "level": level})


def _width_unit(point: np.ndarray, scale: np.ndarray, level: np.ndarray) -> np.ndarray:
    """The unit of a forecast's interval: its series' scale x sqrt(forecast / series level).

    A promotion day forecast at twice the usual level gets ~1.4x wider intervals, a quiet
    month's days narrower ones; the ratio is clipped to [1/4, 4] so a near-zero forecast or
    level cannot collapse or explode the width.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(level > 0, np.maximum(point, 0.0) / level, 1.0)
    return scale * np.sqrt(np.clip(np.nan_to_num(ratio, nan=1.0), 0.25, 4.0))


class Forecaster:
    """A fitted LightGBM global model over every series of one dataset contract."""

    def __init__(
        self,
        *,
        contract: Contract,
        config: TrainerConfig,
        spec: FeatureSpec,
        mlf: Any,
        state: pd.DataFrame,
        scores: pd.DataFrame | None,
        intervals: dict[str, Any],
        n_rows: int,
        tail: pd.DataFrame | None = None,
        training: dict[str, Any] | None = None,
    ) -> None:
        self.contract = contract
        self.config = config
        self.spec = spec
        self._mlf = mlf
        self._state = state
        self._scores = scores
        self._tail = tail
        self.intervals = intervals
        self.n_rows = n_rows
        self.training = training or {}

    # ------------------------------------------------------------------ facts

    @property
    def series_ids(self) -> list[str]:
        return self._state["series_id"].tolist()

    @property
    def first_date(self) -> dt.date:
        return pd.Timestamp(self._state["first_date"].min()).date()

    @property
    def last_date(self) -> dt.date:
        """Last training day (the latest across series)."""
        return pd.Timestamp(self._state["last_date"].max()).date()

    @property
    def series(self) -> pd.DataFrame:
        """Per-series keys, first/last date and last known covariate values."""
        return self._state.copy()

    # ------------------------------------------------------------------ fit

    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        contract: Contract,
        config: TrainerConfig,
        *,
        intervals: bool = True,
        calibration: pd.DataFrame | None = None,
    ) -> Forecaster:
        """Train on the clean panel ``df`` (contract columns + ``series_id``).

        With ``intervals`` the prediction intervals are calibrated too: one more model fit,
        on the days before the calibration windows and at most ``interval_max_series``
        series (see the module docstring). ``calibration`` skips that fit: out-of-sample
        forecasts the caller already made with this same config (``series_id, date, step,
        y, y_hat, cutoff``, e.g. the ``train`` command's validation windows).
        """
        config.validate()
        panel = prepare_panel(df, contract, source="training data")
        if (panel[contract.target] < 0).any():
            if config.params.objective in ("tweedie", "poisson"):
                raise TrainerError(
                    f"target '{contract.target}' has negative values, which the "
                    f"'{config.params.objective}' objective cannot fit; use --objective l2"
                )
            feats = config.features
            if feats.target_scaling != "none" and feats.log_target:
                raise TrainerError(
                    f"target '{contract.target}' has negative values, which the log-scaled "
                    'target cannot model; pass --params-json with {"features": '
                    '{"log_target": false}}'
                )
        spec = build_feature_spec(panel, contract, config.features)
        with _quiet():
            mlf, tail, training = _train(panel, contract, spec, config)
        state = series_state(panel, contract)
        if config.interval_method == SCALED_CONFORMAL:
            noise = noise_scale(panel, contract).reindex(state["series_id"])
            state["interval_scale"] = noise["scale"].to_numpy()
            state["interval_level"] = noise["level"].to_numpy()
        if not intervals:
            scores, info = None, {"enabled": False, "reason": "not requested"}
        elif config.interval_method == SCALED_CONFORMAL and calibration is not None:
            scores, info = conformity_scores(calibration, panel, contract, config)
            info.update({"method": SCALED_CONFORMAL, "h": config.horizon, "source": "given"})
            info["n_windows"] = int(calibration["cutoff"].nunique())
            if int(calibration["step"].max()) < config.horizon:
                raise TrainerError("calibration forecasts do not cover the horizon")
        elif config.interval_method == SCALED_CONFORMAL:
            scores, info = _calibrate_scaled(panel, contract, config)
        else:
            with _quiet():
                scores, info = _calibrate(to_model_frame(panel, contract, spec), spec, config)
        return cls(
            contract=contract,
            config=config,
            spec=spec,
            mlf=mlf,
            state=state,
            scores=scores,
            intervals=info,
            n_rows=len(panel),
            tail=tail,
            training=training,
        )

    # ------------------------------------------------------------------ predict

    def forecast(
        self,
        horizon: int,
        future_df: pd.DataFrame | None = None,
        new_history: pd.DataFrame | None = None,
        levels: Sequence[int] | None = None,
        series_ids: Sequence[str] | None = None,
    ) -> ForecastResult:
        """Forecast ``horizon`` days after each series' last date.

        Args:
            horizon: days to forecast (>= 1).
            future_df: known-in-advance covariates for the forecast days, contract column
                names (keys or ``series_id``, date, known columns). Missing values are filled
                by each column's ``future_fill`` rule and counted.
            new_history: panel rows newer than the training data (older rows are ignored);
                the series state is advanced with them first, so an older model forecasts
                from the latest actuals. The forecaster itself is not modified.
            levels: prediction-interval levels (default: the training config's levels).
            series_ids: forecast only these series (default: every series).

        Returns:
            A :class:`ForecastResult` whose frame has ``series_id``, the key columns,
            ``date``, ``forecast`` (clipped at 0) and ``lower_<l>`` / ``upper_<l>`` per level.
        """
        if int(horizon) < 1:
            raise TrainerError(f"horizon must be >= 1, got {horizon}")
        horizon = int(horizon)
        levels = sorted(int(lv) for lv in (self.config.levels if levels is None else levels))
        if any(not 0 < lv < 100 for lv in levels):
            raise TrainerError(f"levels must be between 0 and 100, got {levels}")
        notes: list[str] = []
        if new_history is not None and len(new_history):
            mlf, state, tail, updated = self._advanced(new_history)
        else:
            # mlforecast keeps per-call state on its TimeSeries; a private copy makes
            # concurrent forecasts (a threaded serving app) safe.
            mlf, state, tail, updated = self._private_mlf(), self._state, self._tail, 0
        ids = None
        if series_ids is not None:
            ids = sorted(set(map(str, series_ids)))
            unknown = sorted(set(ids) - set(state["series_id"]))
            if unknown:
                raise TrainerError(f"unknown series {unknown[:5]} (the model has {len(state)})")
            if not ids:
                raise TrainerError("series_ids is empty")
            state = state[state["series_id"].isin(ids)].reset_index(drop=True)
        x_df, filled, ignored = build_future_frame(
            self.spec, self.contract, state, horizon, future_df, tail=tail
        )
        with _quiet():
            preds = mlf.predict(h=horizon, X_df=x_df, ids=ids)
        preds = preds.sort_values([ID, TIME], kind="stable").reset_index(drop=True)
        preds["step"] = np.tile(np.arange(1, horizon + 1), len(preds) // horizon)
        if self.intervals.get("method") == SCALED_CONFORMAL:
            without = self._add_scaled_intervals(preds, state, levels, horizon, notes)
        else:
            without = self._add_intervals(preds, levels, horizon, notes)
        frame = self._output_frame(preds, state, levels)
        return ForecastResult(
            frame=frame,
            filled_values=filled,
            ignored_future_rows=ignored,
            updated_rows=updated,
            series_without_intervals=without,
            notes=notes,
        )

    def predict(
        self,
        horizon: int,
        future_df: pd.DataFrame | None = None,
        new_history: pd.DataFrame | None = None,
        levels: Sequence[int] | None = None,
        series_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Like :meth:`forecast` but returns only the frame."""
        return self.forecast(horizon, future_df, new_history, levels, series_ids).frame

    def _private_mlf(self) -> Any:
        mlf = copy.copy(self._mlf)
        mlf.ts = copy.deepcopy(self._mlf.ts)
        return mlf

    def _advanced(
        self, new_history: pd.DataFrame
    ) -> tuple[Any, pd.DataFrame, pd.DataFrame | None, int]:
        """A copy of the model state moved forward over rows newer than the training end."""
        contract = self.contract
        date = contract.date_column
        hist = prepare_panel(new_history, contract, source="new history")
        known_ids = set(self._state["series_id"])
        unknown = sorted(set(hist["series_id"]) - known_ids)
        if unknown:
            raise TrainerError(
                f"the data has {len(unknown)} series the model was not trained on "
                f"(e.g. {unknown[:3]}); retrain the model to include them"
            )
        last = self._state.set_index("series_id")["last_date"]
        newer = hist[hist[date] > hist["series_id"].map(last)]
        state = self._state.copy()
        if newer.empty:
            return self._private_mlf(), state, self._tail, 0
        firsts = newer.groupby("series_id", observed=True)[date].min()
        gap = firsts[firsts != last.reindex(firsts.index) + pd.Timedelta(days=1)]
        if len(gap):
            sid = gap.index[0]
            raise TrainerError(
                f"new history for series {sid} starts on {gap.iloc[0].date()} but the model "
                f"ends on {last[sid].date()}; the days in between are missing"
            )
        mlf = self._private_mlf()
        update = pd.DataFrame(
            {
                ID: newer["series_id"].to_numpy(),
                TIME: newer[date].to_numpy(),
                TARGET: newer[contract.target].to_numpy(dtype=float),
            }
        )
        with _quiet():
            mlf.update(update)
        fresh = series_state(newer, contract).set_index("series_id")
        state = state.set_index("series_id")
        state.loc[fresh.index, "last_date"] = fresh["last_date"]
        for col in contract.known_columns + contract.static_columns:
            values = fresh[col.name].dropna()
            state.loc[values.index, col.name] = values
        tail = self._tail
        if tail is not None:
            # Derived features of the forecast days look back over the newest known values.
            sources = [c for c in tail.columns if c not in (ID, TIME)]
            newer = newer.reset_index(drop=True)
            encoded = to_model_frame(newer, contract, replace(self.spec, derived=()))
            tail = pd.concat([tail, encoded[[ID, TIME, *sources]]], ignore_index=True)
            tail = tail.sort_values([ID, TIME], kind="stable")
            end = tail.groupby(ID, sort=False)[TIME].transform("max")
            tail = tail[tail[TIME] > end - pd.Timedelta(days=TAIL_DAYS)].reset_index(drop=True)
        return mlf, state.reset_index(), tail, len(newer)

    def _add_scaled_intervals(
        self,
        preds: pd.DataFrame,
        state: pd.DataFrame,
        levels: list[int],
        horizon: int,
        notes: list[str],
    ) -> int:
        """``lo-<l>`` / ``hi-<l>``: forecast + pooled score quantiles x the series' scale."""
        n = len(preds)
        for lv in levels:
            preds[f"lo-{lv}"] = np.nan
            preds[f"hi-{lv}"] = np.nan
        if not levels:
            return 0
        n_series = int(preds[ID].nunique())
        if self._scores is None:
            notes.append(f"no prediction intervals: {self.intervals.get('reason', 'none')}")
            return n_series
        cs_h = int(self.intervals["h"])
        if horizon > cs_h:
            notes.append(f"no prediction intervals: calibrated for {cs_h} days, asked {horizon}")
            return n_series
        noise = state.set_index("series_id").reindex(preds[ID].astype(str))
        point = np.clip(preds[MODEL_NAME].to_numpy(dtype=np.float64), 0.0, None)
        scale = _width_unit(
            point,
            noise["interval_scale"].to_numpy(dtype=np.float64),
            noise["interval_level"].to_numpy(dtype=np.float64),
        )
        steps = preds["step"].to_numpy()
        table = _quantile_table(self._scores, levels, horizon)
        for lv in levels:
            lo_q = table[f"lo-{lv}"].to_numpy()[steps - 1]
            hi_q = table[f"hi-{lv}"].to_numpy()[steps - 1]
            preds[f"lo-{lv}"] = np.minimum(point + lo_q * scale, point)
            preds[f"hi-{lv}"] = np.maximum(point + hi_q * scale, point)
        assert len(preds) == n
        return 0

    def _add_intervals(
        self, preds: pd.DataFrame, levels: list[int], horizon: int, notes: list[str]
    ) -> int:
        """Add ``lo-<l>`` / ``hi-<l>`` columns; returns how many series got none."""
        from mlforecast.conformal_prediction import get_conformal_method

        uids = preds[ID].unique()
        for lv in levels:
            preds[f"lo-{lv}"] = np.nan
            preds[f"hi-{lv}"] = np.nan
        if not levels:
            return 0
        if self._scores is None:
            notes.append(f"no prediction intervals: {self.intervals.get('reason', 'none')}")
            return len(uids)
        cs_h = int(self.intervals["h"])
        if horizon > cs_h:
            notes.append(f"no prediction intervals: calibrated for {cs_h} days, asked {horizon}")
            return len(uids)
        covered = np.sort(np.intersect1d(uids, self._scores[ID].unique()))
        if len(covered):
            sub = preds[preds[ID].isin(covered)].sort_values([ID, TIME], kind="stable")
            scores = self._scores[self._scores[ID].isin(covered)]
            scores = scores.sort_values(["cutoff", ID, TIME], kind="stable")
            method = get_conformal_method(self.intervals.get("method", "conformal_distribution"))
            with_int = method(
                sub[[ID, TIME, MODEL_NAME]].reset_index(drop=True),
                scores.reset_index(drop=True),
                model_names=[MODEL_NAME],
                level=levels,
                cs_n_windows=int(self.intervals["n_windows"]),
                cs_h=cs_h,
                n_series=len(covered),
                horizon=horizon,
            )
            for lv in levels:
                preds.loc[sub.index, f"lo-{lv}"] = with_int[f"{MODEL_NAME}-lo-{lv}"].to_numpy()
                preds.loc[sub.index, f"hi-{lv}"] = with_int[f"{MODEL_NAME}-hi-{lv}"].to_numpy()
        without = len(uids) - len(covered)
        if without:
            notes.append(f"{without} series too short for conformal calibration: no intervals")
        return without

    def _output_frame(
        self, preds: pd.DataFrame, state: pd.DataFrame, levels: list[int]
    ) -> pd.DataFrame:
        keys = list(self.contract.series_keys)
        out = pd.DataFrame({"series_id": preds[ID].astype(str).to_numpy()})
        if keys:
            key_values = state.set_index("series_id")[keys]
            out = out.join(key_values, on="series_id")
        out["date"] = pd.to_datetime(preds[TIME]).dt.normalize().to_numpy()
        out["step"] = preds["step"].to_numpy()
        # Demand is never negative; an l2 model can still dip below zero on quiet days.
        out["forecast"] = np.clip(preds[MODEL_NAME].to_numpy(dtype=float), 0.0, None)
        for lv in sorted(levels):
            out[f"lower_{lv}"] = np.clip(preds[f"lo-{lv}"].to_numpy(dtype=float), 0.0, None)
            out[f"upper_{lv}"] = np.clip(preds[f"hi-{lv}"].to_numpy(dtype=float), 0.0, None)
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, path: str) -> None:
        """Write the forecaster into a local folder (see :func:`trainer.io.publish_dir`)."""
        os.makedirs(path, exist_ok=True)
        self._mlf.save(os.path.join(path, _MLF_DIR))
        self._state.to_parquet(os.path.join(path, _STATE_FILE), index=False)
        if self._scores is not None:
            self._scores.to_parquet(os.path.join(path, _SCORES_FILE), index=False)
        if self._tail is not None:
            self._tail.to_parquet(os.path.join(path, _TAIL_FILE), index=False)
        doc = {
            "format_version": FORMAT_VERSION,
            "model_name": MODEL_NAME,
            "contract": self.contract.to_dict(),
            "config": self.config.to_dict(),
            "feature_spec": self.spec.to_dict(),
            "intervals": self.intervals,
            "training_window": {
                "first_date": self.first_date.isoformat(),
                "last_date": self.last_date.isoformat(),
            },
            "n_series": len(self._state),
            "n_rows": self.n_rows,
            "training": self.training,
        }
        with open(os.path.join(path, _SPEC_FILE), "w") as handle:
            json.dump(doc, handle, indent=2, default=_json_default)

    @classmethod
    def load(cls, path: str) -> Forecaster:
        """Load a forecaster saved by :meth:`save` from a local folder."""
        from mlforecast import MLForecast

        spec_path = os.path.join(path, _SPEC_FILE)
        if not os.path.exists(spec_path):
            raise TrainerError(f"{path} is not a model folder (no {_SPEC_FILE})")
        with open(spec_path) as handle:
            doc = json.load(handle)
        if doc.get("format_version") not in _READABLE_FORMATS:
            raise TrainerError(f"{path}: unsupported model format {doc.get('format_version')}")
        scores_path = os.path.join(path, _SCORES_FILE)
        scores = pd.read_parquet(scores_path) if os.path.exists(scores_path) else None
        tail_path = os.path.join(path, _TAIL_FILE)
        tail = pd.read_parquet(tail_path) if os.path.exists(tail_path) else None
        if tail is not None:
            tail[TIME] = pd.to_datetime(tail[TIME]).astype("datetime64[ns]")
        state = pd.read_parquet(os.path.join(path, _STATE_FILE))
        for col in ("first_date", "last_date"):
            state[col] = pd.to_datetime(state[col]).astype("datetime64[ns]")
        return cls(
            contract=Contract.from_dict(doc["contract"]),
            config=TrainerConfig.from_dict(doc["config"]),
            spec=FeatureSpec.from_dict(doc["feature_spec"]),
            mlf=MLForecast.load(os.path.join(path, _MLF_DIR)),
            state=state,
            scores=scores,
            intervals=doc["intervals"],
            n_rows=int(doc["n_rows"]),
            tail=tail,
            training=doc.get("training"),
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _calibrate(
    frame: pd.DataFrame, spec: FeatureSpec, config: TrainerConfig
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Conformity scores from a rolling cross-validation (mlforecast ``refit=False``).

    Windows are reduced (down to 2) until every series fits; series still shorter than two
    windows plus a day are left without intervals rather than failing the whole model.
    """
    from mlforecast.conformal_prediction import compute_conformity_scores

    h = config.horizon
    lengths = frame.groupby(ID, sort=True, observed=True).size()
    fit_all = int((lengths.min() - 1) // h)
    windows = min(config.interval_windows, fit_all) if fit_all >= 2 else 2
    need = h * windows + 1
    long_ids = lengths.index[lengths >= need]
    info: dict[str, Any] = {
        "method": "conformal_distribution",
        "h": h,
        "n_windows": windows,
        "requested_windows": config.interval_windows,
        "min_series_length": need,
    }
    if windows < config.interval_windows:
        log.warning(
            "conformal intervals: reduced windows from %d to %d for short series",
            config.interval_windows,
            windows,
        )
    if len(long_ids) == 0:
        reason = f"every series is shorter than {need} days (2 windows x {h} days + 1)"
        log.warning("no prediction intervals: %s", reason)
        return None, {**info, "enabled": False, "reason": reason}
    short = lengths.index[lengths < need]
    if len(short):
        log.warning(
            "%d series shorter than %d days get no prediction intervals (e.g. %s)",
            len(short),
            need,
            list(short[:3]),
        )
    subset = frame[frame[ID].isin(long_ids)]
    cal = _new_mlforecast(config)
    kwargs = _fit_kwargs(spec)
    kwargs.pop("keep_last_n")
    cv = cal.cross_validation(
        subset, n_windows=windows, h=h, refit=False, validate_data=False, **kwargs
    )
    scores = compute_conformity_scores(cv, [MODEL_NAME], TARGET)
    scores = scores[[ID, TIME, "cutoff", MODEL_NAME]].sort_values(["cutoff", ID, TIME])
    info.update(
        {
            "enabled": True,
            "n_series": int(len(long_ids)),
            "n_series_without": int(len(short)),
            "series_without_sample": [str(s) for s in short[:10]],
        }
    )
    return scores.reset_index(drop=True), info


def _quantile_table(scores: pd.DataFrame, levels: Sequence[int], horizon: int) -> pd.DataFrame:
    """Per step 1..horizon: the lower / upper score quantile of each level.

    A step with fewer than :data:`_MIN_SCORES` scores (few series, one window) borrows its
    neighbours' scores, widening the pool step by step; quantiles use the conformal
    ``ceil((n + 1) p) / n`` rank so a small pool errs on the wide side.
    """
    by_step = {
        int(k): np.sort(v.to_numpy(dtype=np.float64))
        for k, v in scores.groupby("step", sort=True)["score"]
    }
    max_step = max(by_step)
    rows = []
    for step in range(1, horizon + 1):
        radius, pool = 0, np.zeros(0)
        while True:
            near = [by_step[k] for k in range(step - radius, step + radius + 1) if k in by_step]
            pool = np.concatenate(near) if near else np.zeros(0)
            if len(pool) >= _MIN_SCORES or radius >= max_step:
                break
            radius += 1
        pool = np.sort(pool)
        row: dict[str, float] = {"step": step}
        for lv in levels:
            alpha = (1 - lv / 100) / 2
            row[f"lo-{lv}"] = _conformal_quantile(pool, alpha, upper=False)
            row[f"hi-{lv}"] = _conformal_quantile(pool, 1 - alpha, upper=True)
        rows.append(row)
    return pd.DataFrame(rows)


def _conformal_quantile(sorted_scores: np.ndarray, p: float, *, upper: bool) -> float:
    n = len(sorted_scores)
    if n == 0:
        return float("nan")
    if upper:
        k = int(np.ceil((n + 1) * p)) - 1
    else:
        k = int(np.floor((n + 1) * p)) - 1
    return float(sorted_scores[min(max(k, 0), n - 1)])


def _calibrate_scaled(
    panel: pd.DataFrame, contract: Contract, config: TrainerConfig
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Out-of-sample forecasts for ``scaled_conformal`` intervals, then their scores.

    One model (same recipe, no intervals) is fit on every day up to ``windows x h`` days
    before the end, on at most ``interval_max_series`` series (a seeded sample: the scores
    are pooled, so a few hundred series estimate them well), and forecasts each window from
    its own cut-off with the actuals before it (as ``forecast(new_history=...)`` does) and
    the window's known covariates.
    """
    date, target = contract.date_column, contract.target
    h = config.horizon
    last = panel[date].max()
    info: dict[str, Any] = {"method": SCALED_CONFORMAL, "h": h}
    for windows in range(config.interval_windows, 0, -1):
        first_cut = last - pd.Timedelta(days=windows * h)
        # The calibration model needs a few weeks of history before its first cut-off.
        if (first_cut - panel[date].min()).days + 1 >= MIN_CALIBRATION_DAYS:
            break
    else:
        reason = (
            f"the data spans less than {h + MIN_CALIBRATION_DAYS} days: too short to "
            "calibrate intervals"
        )
        log.warning("no prediction intervals: %s", reason)
        return None, {**info, "enabled": False, "reason": reason}
    starts = panel.groupby("series_id", sort=True, observed=True)[date].min()
    ids = starts.index[starts <= first_cut]
    if len(ids) > config.interval_max_series:
        rng = np.random.default_rng(config.seed)
        ids = pd.Index(np.sort(rng.choice(np.asarray(ids), config.interval_max_series, False)))
    sub = panel[panel["series_id"].isin(ids)]
    fc = Forecaster.fit(sub[sub[date] <= first_cut], contract, config, intervals=False)
    known = [c.name for c in contract.known_columns]
    frames = []
    for k in range(windows):
        cut = first_cut + pd.Timedelta(days=k * h)
        window = sub[(sub[date] > cut) & (sub[date] <= cut + pd.Timedelta(days=h))]
        history = sub[(sub[date] > first_cut) & (sub[date] <= cut)] if k else None
        result = fc.forecast(
            h, future_df=window[["series_id", date, *known]], new_history=history, levels=[]
        )
        pred = result.frame[["series_id", "date", "step", "forecast"]]
        truth = window[["series_id", date, target]].rename(columns={date: "date", target: "y"})
        rows = pred.merge(truth, on=["series_id", "date"], how="inner")
        # Scores use the noise scale of the calibration model's own training days.
        frames.append(rows.rename(columns={"forecast": "y_hat"}).assign(cutoff=first_cut))
    scores, facts = conformity_scores(pd.concat(frames, ignore_index=True), panel, contract, config)
    info.update(facts)
    info.update({"n_windows": windows, "requested_windows": config.interval_windows})
    return scores, info


def conformity_scores(
    forecasts: pd.DataFrame, panel: pd.DataFrame, contract: Contract, config: TrainerConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Scaled conformity scores of out-of-sample forecasts made with ``config``'s recipe.

    ``forecasts``: ``series_id, date, step, y, y_hat, cutoff`` (``cutoff``: the last day the
    forecasting model was trained on; each series' noise scale is measured on the days up to
    it). Score = (actual - forecast) / (scale x sqrt(forecast / level)); at most
    :data:`_MAX_SCORES_PER_STEP` per step are kept (a seeded sample).
    """
    date = contract.date_column
    parts = []
    for cutoff, group in forecasts.groupby("cutoff", sort=True):
        noise = noise_scale(panel[panel[date] <= cutoff], contract)
        unit = _width_unit(
            group["y_hat"].to_numpy(dtype=np.float64),
            group["series_id"].map(noise["scale"]).to_numpy(dtype=np.float64),
            group["series_id"].map(noise["level"]).to_numpy(dtype=np.float64),
        )
        score = (group["y"].to_numpy(dtype=np.float64) - group["y_hat"].to_numpy()) / unit
        parts.append(pd.DataFrame({"step": group["step"].to_numpy(), "score": score}))
    scores = pd.concat(parts, ignore_index=True)
    scores = scores[np.isfinite(scores["score"].to_numpy())]
    kept = []
    rng = np.random.default_rng(config.seed)
    for _step, group in scores.groupby("step", sort=True):
        if len(group) > _MAX_SCORES_PER_STEP:
            group = group.iloc[np.sort(rng.choice(len(group), _MAX_SCORES_PER_STEP, False))]
        kept.append(group)
    out = pd.concat(kept, ignore_index=True).astype({"step": "int32", "score": "float64"})
    facts = {
        "enabled": True,
        "calibration_cutoffs": sorted(
            pd.Timestamp(c).date().isoformat() for c in forecasts["cutoff"].unique()
        ),
        "n_series": int(forecasts["series_id"].nunique()),
        "n_series_without": 0,
        "n_scores": int(len(out)),
    }
    return out.reset_index(drop=True), facts
