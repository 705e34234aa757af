"""The forecaster: mlforecast + LightGBM behind a small API shared by the trainer and serving.

>>> fc = Forecaster.fit(panel, contract, TrainerConfig(horizon=28))
>>> fc.save("model/")
>>> fc = Forecaster.load("model/")
>>> fc.predict(28, future_df=promos, new_history=latest_panel, levels=(80, 95))

Prediction intervals are conformal (mlforecast's ``conformal_distribution`` method, the one
``PredictionIntervals`` uses): a rolling cross-validation of ``interval_windows`` windows of
``horizon`` days, per series and per horizon step. A series too short for two windows gets
no interval (null columns) rather than one borrowed from another series' scale.
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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trainer.config import TrainerConfig, lgbm_kwargs
from trainer.contract import Contract
from trainer.errors import TrainerError
from trainer.features import (
    ID,
    TARGET,
    TIME,
    FeatureSpec,
    build_feature_spec,
    build_future_frame,
    mlforecast_kwargs,
    prepare_panel,
    series_state,
    to_model_frame,
)

log = logging.getLogger(__name__)

MODEL_NAME = "lgbm"
FORMAT_VERSION = 1
_MLF_DIR = "mlforecast"
_STATE_FILE = "series_state.parquet"
_SCORES_FILE = "conformity_scores.parquet"
_SPEC_FILE = "forecaster.json"


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


def _new_mlforecast(config: TrainerConfig) -> Any:
    import lightgbm as lgb
    from mlforecast import MLForecast

    return MLForecast(
        models={MODEL_NAME: lgb.LGBMRegressor(**lgbm_kwargs(config))},
        freq="D",
        num_threads=1,
        **mlforecast_kwargs(config.features),
    )


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
    ) -> None:
        self.contract = contract
        self.config = config
        self.spec = spec
        self._mlf = mlf
        self._state = state
        self._scores = scores
        self.intervals = intervals
        self.n_rows = n_rows

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
    ) -> Forecaster:
        """Train on the clean panel ``df`` (contract columns + ``series_id``).

        With ``intervals`` the conformal scores for prediction intervals are calibrated too
        (costs one more model fit).
        """
        config.validate()
        panel = prepare_panel(df, contract, source="training data")
        if config.params.objective in ("tweedie", "poisson") and (panel[contract.target] < 0).any():
            raise TrainerError(
                f"target '{contract.target}' has negative values, which the "
                f"'{config.params.objective}' objective cannot fit; use --objective l2"
            )
        spec = build_feature_spec(panel, contract, config.features)
        frame = to_model_frame(panel, contract, spec)
        mlf = _new_mlforecast(config)
        with _quiet():
            mlf.fit(frame, validate_data=False, **_fit_kwargs(spec))
            scores, info = (
                _calibrate(frame, spec, config)
                if intervals
                else (None, {"enabled": False, "reason": "not requested"})
            )
        return cls(
            contract=contract,
            config=config,
            spec=spec,
            mlf=mlf,
            state=series_state(panel, contract),
            scores=scores,
            intervals=info,
            n_rows=len(panel),
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
            mlf, state, updated = self._advanced(new_history)
        else:
            # mlforecast keeps per-call state on its TimeSeries; a private copy makes
            # concurrent forecasts (a threaded serving app) safe.
            mlf, state, updated = self._private_mlf(), self._state, 0
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
            self.spec, self.contract, state, horizon, future_df
        )
        with _quiet():
            preds = mlf.predict(h=horizon, X_df=x_df, ids=ids)
        preds = preds.sort_values([ID, TIME], kind="stable").reset_index(drop=True)
        preds["step"] = np.tile(np.arange(1, horizon + 1), len(preds) // horizon)
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

    def _advanced(self, new_history: pd.DataFrame) -> tuple[Any, pd.DataFrame, int]:
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
            return self._private_mlf(), state, 0
        firsts = newer.groupby("series_id")[date].min()
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
        mlf.update(update)
        fresh = series_state(newer, contract).set_index("series_id")
        state = state.set_index("series_id")
        state.loc[fresh.index, "last_date"] = fresh["last_date"]
        for col in contract.known_columns + contract.static_columns:
            values = fresh[col.name].dropna()
            state.loc[values.index, col.name] = values
        return mlf, state.reset_index(), len(newer)

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
        if doc.get("format_version") != FORMAT_VERSION:
            raise TrainerError(f"{path}: unsupported model format {doc.get('format_version')}")
        scores_path = os.path.join(path, _SCORES_FILE)
        scores = pd.read_parquet(scores_path) if os.path.exists(scores_path) else None
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
