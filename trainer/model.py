"""The forecaster: mlforecast + LightGBM behind a small API shared by the trainer and serving.

>>> fc = Forecaster.fit(panel, contract, TrainerConfig(horizon=28))
>>> fc.save("model/")
>>> fc = Forecaster.load("model/")
>>> fc.predict(28, future_df=promos, new_history=latest_panel, levels=(80, 95))

Fitting is :mod:`trainer.fitting`; prediction intervals are :mod:`trainer.intervals`
(``scaled_conformal``, the default). Models saved by the first version keep their per-series
``conformal_distribution`` intervals (:mod:`trainer.legacy`).
"""

from __future__ import annotations

__all__ = ["FORMAT_VERSION", "ForecastResult", "Forecaster"]

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from mlforecast import MLForecast

from sf_contract import Contract, ContractError
from trainer import legacy
from trainer.availability import zero_unavailable_days
from trainer.columns import ID, TARGET, TIME
from trainer.config import TrainerConfig
from trainer.covariates import TAIL_DAYS
from trainer.errors import TrainerError
from trainer.feature_spec import FeatureSpec, build_feature_spec, to_model_frame
from trainer.fitting import MODEL_NAME, fit_trees, private_copy, quiet
from trainer.future import build_future_frame, future_series_ids
from trainer.intervals import (
    SCALED_CONFORMAL,
    add_scaled_intervals,
    calibrate_scaled,
    conformity_scores,
    noise_scale,
)
from trainer.panel import prepare_panel, series_state
from trainer.recipe import resolve_recipe

FORMAT_VERSION = 2
# Version 1 (the first trainer) still loads: trainer.legacy.upgrade_v1 says what it meant.
_READABLE_FORMATS = (1, 2)
_MLF_DIR = "mlforecast"
_STATE_FILE = "series_state.parquet"
_SCORES_FILE = "conformity_scores.parquet"
_TAIL_FILE = "covariate_tail.parquet"
_SPEC_FILE = "forecaster.json"


@dataclass
class ForecastResult:
    """Forecast rows plus what it took to make them (for ``forecast_meta.json``)."""

    frame: pd.DataFrame
    filled_values: dict[str, int] = field(default_factory=dict)
    # Forecast-day values each known or forecast column needed (series x days).
    future_cells: int = 0
    ignored_future_rows: int = 0
    updated_rows: int = 0
    series_without_intervals: int = 0
    # Forecast rows the future marked unavailable (closed, out of stock): forecast as 0.
    unavailable_days: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def filled_total(self) -> int:
        return int(sum(self.filled_values.values()))


class Forecaster:
    """A fitted LightGBM global model over every series of one dataset contract."""

    def __init__(
        self,
        *,
        contract: Contract,
        config: TrainerConfig,
        spec: FeatureSpec,
        mlf: MLForecast,
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

    @property
    def recipe(self) -> dict[str, Any]:
        """The recipe the fit used and why (:func:`trainer.recipe.resolve_recipe`); empty for
        models saved before recipes."""
        return dict(self.training.get("recipe") or {})

    def known_series(self, series_ids: Iterable[object]) -> list[str]:
        """The ids among ``series_ids`` this model was trained on, sorted and unique.

        :meth:`forecast` refuses new history of series it does not know; a caller composing
        several models (``predict`` with a fallback) splits the rows by this first.
        """
        wanted = pd.Index([str(s) for s in series_ids], dtype=object).unique()
        return sorted(wanted.intersection(pd.Index(self._state["series_id"].astype(str))))

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
        series (see :mod:`trainer.intervals`). ``calibration`` skips that fit: out-of-sample
        forecasts the caller already made with this same config (``series_id, date, step,
        y, y_hat, cutoff``, e.g. the ``train`` command's validation windows).

        The knobs ``config`` leaves unset are filled by the recipe the panel's shape calls for
        (:mod:`trainer.recipe`); the model keeps that resolved config (:attr:`config`) and the
        choice (:attr:`recipe`).
        """
        config.validate()
        panel = prepare_panel(df, contract, source="training data")
        config, recipe = resolve_recipe(config, panel, contract)
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
        with quiet():
            mlf, tail, training = fit_trees(panel, contract, spec, config)
        training["recipe"] = recipe
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
            # The calibration model: the same (resolved) recipe, on the days before the
            # calibration windows.
            def fit(rows: pd.DataFrame) -> Forecaster:
                return cls.fit(rows, contract, config, intervals=False)

            scores, info = calibrate_scaled(panel, contract, config, fit)
        else:
            with quiet():
                frame = to_model_frame(panel, contract, spec)
                scores, info = legacy.calibrate(frame, spec, config)
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
            mlf, state, tail, updated = private_copy(self._mlf), self._state, self._tail, 0
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
        with quiet():
            preds = mlf.predict(h=horizon, X_df=x_df, ids=ids)
        preds = preds.sort_values([ID, TIME], kind="stable").reset_index(drop=True)
        preds["step"] = np.tile(np.arange(1, horizon + 1), len(preds) // horizon)
        if self.intervals.get("method") == SCALED_CONFORMAL:
            without = add_scaled_intervals(
                preds, state, self._scores, self.intervals, levels, horizon, notes
            )
        else:
            without = legacy.add_intervals(
                preds, self._scores, self.intervals, levels, horizon, notes
            )
        frame = self._output_frame(preds, state, levels)
        unavailable_days = 0
        if future_df is not None and len(future_df):
            frame, unavailable_days = zero_unavailable_days(
                frame, future_df, self.contract, future_series_ids(future_df, state, self.contract)
            )
        return ForecastResult(
            frame=frame,
            filled_values=filled,
            future_cells=len(state) * horizon if filled else 0,
            ignored_future_rows=ignored,
            updated_rows=updated,
            series_without_intervals=without,
            unavailable_days=unavailable_days,
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

    def _advanced(
        self, new_history: pd.DataFrame
    ) -> tuple[MLForecast, pd.DataFrame, pd.DataFrame | None, int]:
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
            return private_copy(self._mlf), state, self._tail, 0
        firsts = newer.groupby("series_id", observed=True)[date].min()
        gap = firsts[firsts != last.reindex(firsts.index) + pd.Timedelta(days=1)]
        if len(gap):
            sid = gap.index[0]
            raise TrainerError(
                f"new history for series {sid} starts on {gap.iloc[0].date()} but the model "
                f"ends on {last[sid].date()}; the days in between are missing"
            )
        mlf = private_copy(self._mlf)
        update = pd.DataFrame(
            {
                ID: newer["series_id"].to_numpy(),
                TIME: newer[date].to_numpy(),
                TARGET: newer[contract.target].to_numpy(dtype=float),
            }
        )
        with quiet():
            mlf.update(update)
        fresh = series_state(newer, contract).set_index("series_id")
        state = state.set_index("series_id")
        state.loc[fresh.index, "last_date"] = fresh["last_date"]
        for col in contract.future_columns + contract.static_columns:
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
        """Write the forecaster into a local folder (see :func:`trainer.io.files.publish_dir`)."""
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
        """Load a forecaster saved by :meth:`save` (by this or the first version) from a local
        folder."""
        spec_path = os.path.join(path, _SPEC_FILE)
        if not os.path.exists(spec_path):
            raise TrainerError(f"{path} is not a model folder (no {_SPEC_FILE})")
        with open(spec_path) as handle:
            doc = json.load(handle)
        if doc.get("format_version") not in _READABLE_FORMATS:
            raise TrainerError(f"{path}: unsupported model format {doc.get('format_version')}")
        if doc["format_version"] == 1:
            doc = legacy.upgrade_v1(doc)
        try:
            contract = Contract.from_dict(doc["contract"], source=spec_path)
        except ContractError as exc:
            raise TrainerError(f"{path}: the model's contract is invalid: {exc}") from None
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
            contract=contract,
            config=TrainerConfig.from_dict(doc["config"]),
            spec=FeatureSpec.from_dict(doc["feature_spec"]),
            mlf=MLForecast.load(os.path.join(path, _MLF_DIR)),
            state=state,
            scores=scores,
            intervals=doc["intervals"],
            n_rows=int(doc["n_rows"]),
            tail=tail,
            training=doc["training"],
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
