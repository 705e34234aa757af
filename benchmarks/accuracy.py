"""Accuracy and speed benchmark: our trainer vs the usual baselines, side by side, in one run.

Every method sees the same training days, forecasts the same held-out days with the same
horizon, and is scored by the same code (``trainer.metrics``):

- ``ours``: ``trainer.model.Forecaster`` with the default ``TrainerConfig`` (what the DAG's
  ``train`` / ``predict`` tasks run), fit with its conformal intervals, forecast with the
  dataset's future covariates file;
- ``seasonal_naive``: the last week repeated (``trainer.baselines``, the gate's baseline);
- ``autoets``: statsforecast ``AutoETS(season_length=7)``;
- ``mlf_reference``: plain mlforecast + LightGBM: recursive, lags 1/7/14/28, rolling means
  7/28 of lag 1, day-of-week and month, tweedie, LightGBM defaults otherwise, the same
  number of trees and threads as ours, and the same static / known columns;
- ``oracle`` (generated data only): the generator's true expected value of every day.

Datasets: ``real`` (``../shared/data/store_item_2017.csv``, 500 store x item series, the last
28 days 2017-12-04..2017-12-31 held out), ``generated`` (``datagen.generate_retail``, with its
future covariates file and its oracle), ``takeaway`` (the single-series demo generator, with its
oracle) and ``seoul`` (``../shared/data/seoul_bike_daily.csv``, one real series, the last 28
days 2018-11-03..2018-11-30 held out; the date and ``is_holiday`` only). Their weather variants,
every method on the same split:

- ``takeaway_weather`` / ``seoul_weather``: the weather columns are ``forecast`` columns (the
  takeaway contract's ``tavg, tmin, tmax, prcp, wspd, pres``; Seoul's ``temp_mean, temp_max,
  temp_min, humidity, wind_speed, rainfall_mm, snowfall_cm``), observed in history, and the
  held-out days' actual weather is given in the future frame, as a perfect forecast (the
  takeaway generator's future file has no weather: it is redrawn from the generator's seeded
  stream, :func:`takeaway_future_weather`). The reference gets the same weather columns.
- ``*_weather_noisy``: the same, the future weather moved by a simulated forecast error
  (``--weather-noise``, default 0.5; :mod:`trainer.forecast_error`, as ``trainer backtest
  --weather-noise``), the same noisy values for every method.

Seoul's ``is_open`` is the contract's ``availability`` column in every Seoul variant: ours does
not learn from the closed days (their 0 is no demand), and the held-out window's three closed
days, known in the future frame, are forecast as 0 by every method alike (the same knowledge for
all: :func:`known_closures`). Ours fits the recipe each dataset's shape calls for
(``trainer.recipe``; printed in each table's title).

Prints WAPE, MASE, RMSE and bias per method and horizon bucket (day 1, days 1-7, days 1-28),
the median wall time of each method over ``--repeats`` runs, the time ratio ours /
mlf_reference (measured in the same repeat, back to back), the empirical coverage of our 80%
and 95% intervals on the held-out days, and, on generated data, each WAPE over the oracle's.

    .venv/bin/python benchmarks/accuracy.py                       # real + generated
    .venv/bin/python benchmarks/accuracy.py --dataset single --repeats 3   # takeaway + seoul
    .venv/bin/python benchmarks/accuracy.py --dataset seoul_weather_noisy --weather-noise 1
    .venv/bin/python benchmarks/accuracy.py --dataset real --repeats 3
    .venv/bin/python benchmarks/accuracy.py --dataset all --markdown --json out.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "plugins")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from sf_contract import SINGLE_SERIES_ID, Contract  # noqa: E402
from trainer.baselines import seasonal_naive  # noqa: E402
from trainer.config import TrainerConfig, config_from_json_obj  # noqa: E402
from trainer.metrics import bias, mase, rmse, seasonal_scale, wape  # noqa: E402
from trainer.model import Forecaster  # noqa: E402
from trainer.panel import prepare_panel  # noqa: E402
from trainer.recipe import resolve_recipe  # noqa: E402

# Every day of the file is on or before the run's cut-off.
FAR_CUTOFF = datetime.date(9999, 12, 30)

DEFAULT_REAL = REPO.parent / "shared" / "data" / "store_item_2017.csv"
DEFAULT_SEOUL = REPO.parent / "shared" / "data" / "seoul_bike_daily.csv"
LEVELS = (80, 95)

REAL_CONTRACT = {
    "name": "store_item",
    "date_column": "date",
    "target": "sales",
    "series_keys": ["store_id", "item_id"],
    "columns": [
        {"name": "date", "type": "DATE", "role": "date"},
        {"name": "store_id", "type": "STRING", "role": "key"},
        {"name": "item_id", "type": "STRING", "role": "key"},
        {"name": "sales", "type": "FLOAT64", "role": "target"},
    ],
}


@dataclass
class Dataset:
    """One benchmark problem: a clean daily panel up to the cut-off and what came after."""

    name: str
    description: str
    contract: Contract
    train: pd.DataFrame  # the daily panel (contract columns + series_id), days <= cut-off
    future: pd.DataFrame | None  # known covariates of the held-out days (contract names)
    actuals: pd.DataFrame  # series_id, date, y (+ expected when an oracle exists)
    horizon: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cutoff(self) -> pd.Timestamp:
        return pd.Timestamp(self.train[self.contract.date_column].max())


# ----------------------------------------------------------------------------- datasets


def load_real(path: Path, horizon: int = 28) -> Dataset:
    raw = pd.read_csv(path, dtype={"store": str, "item": str}, parse_dates=["date"])
    df = raw.rename(columns={"store": "store_id", "item": "item_id"})
    df["sales"] = df["sales"].astype(float)
    df["series_id"] = df["store_id"] + "|" + df["item_id"]
    last = df["date"].max()
    cutoff = last - pd.Timedelta(days=horizon)
    train = df[df["date"] <= cutoff].reset_index(drop=True)
    test = df[df["date"] > cutoff]
    actuals = test[["series_id", "date", "sales"]].rename(columns={"sales": "y"})
    return Dataset(
        name="real",
        description=(
            f"{path.name}: {df['series_id'].nunique()} series, train {train['date'].min().date()}"
            f"..{cutoff.date()}, held out {(cutoff + pd.Timedelta(days=1)).date()}..{last.date()}"
        ),
        contract=Contract.from_dict(REAL_CONTRACT),
        train=train,
        future=None,
        actuals=actuals.reset_index(drop=True),
        horizon=horizon,
    )


# seoul_bike_daily.csv's columns beside date and target, as contract columns: the
# known-in-advance holiday flag, and in the `seoul_weather` variants the day's weather as
# `forecast` columns (observed in history; the held-out days get their actual values as a
# perfect forecast, or those with a simulated forecast error). `is_open` is the availability:
# closed days teach ours nothing, and known closed days are 0 for every method.
SEOUL_COVARIATES: tuple[dict[str, str], ...] = (
    {"name": "is_holiday", "type": "BOOL", "role": "known", "future_fill": "false"},
    {"name": "is_open", "type": "BOOL", "role": "availability"},
)
SEOUL_WEATHER = (
    "temp_mean",
    "temp_max",
    "temp_min",
    "humidity",
    "wind_speed",
    "rainfall_mm",
    "snowfall_cm",
)
SEOUL_WEATHER_COVARIATES: tuple[dict[str, str], ...] = (
    *SEOUL_COVARIATES,
    *({"name": w, "type": "FLOAT64", "role": "forecast"} for w in SEOUL_WEATHER),
)
# The weather forecast error of the `*_noisy` variants (trainer.forecast_error, as the backtest's
# --weather-noise): 0.5 x each column's spread around its 31-day mean at 7 days ahead.
DEFAULT_WEATHER_NOISE = 0.5


def load_seoul(
    path: Path,
    horizon: int = 28,
    covariates: Sequence[dict[str, str]] = SEOUL_COVARIATES,
    name: str = "seoul",
) -> Dataset:
    """``seoul_bike_daily.csv``: one daily series (``rented``), the last ``horizon`` days held out.

    ``covariates`` are the file's columns the model may use, as contract columns; the future
    frame holds the held-out days' values of those that are not observed-only.
    """
    names = [c["name"] for c in covariates]
    contract = Contract.from_dict(
        {
            "name": "seoul",
            "date_column": "date",
            "target": "rented",
            "series_keys": [],
            "columns": [
                {"name": "date", "type": "DATE", "role": "date"},
                {"name": "rented", "type": "FLOAT64", "role": "target"},
                *covariates,
            ],
        }
    )
    raw = pd.read_csv(path, parse_dates=["date"])
    df = raw[["date", "rented", *names]].astype({"rented": float})
    for col in covariates:
        if col["type"] == "BOOL":
            df[col["name"]] = df[col["name"]].astype(bool)
    df["series_id"] = SINGLE_SERIES_ID
    last = df["date"].max()
    cutoff = last - pd.Timedelta(days=horizon)
    train = df[df["date"] <= cutoff].reset_index(drop=True)
    test = df[df["date"] > cutoff]
    ahead = [c["name"] for c in covariates if c["role"] not in ("observed", "static")]
    actuals = test[["series_id", "date", "rented"]].rename(columns={"rented": "y"})
    return Dataset(
        name=name,
        description=(
            f"{path.name}: 1 series, train {train['date'].min().date()}..{cutoff.date()}, held "
            f"out {(cutoff + pd.Timedelta(days=1)).date()}..{last.date()}, covariates "
            f"{names or 'none'}"
        ),
        contract=contract,
        train=train,
        future=test[["date", *ahead]].reset_index(drop=True) if ahead else None,
        actuals=actuals.reset_index(drop=True),
        horizon=horizon,
    )


def _builtin_contract(name: str) -> Contract:
    """The contract the DAG ships (plugins/sales_forecast/contracts/<name>.yaml)."""
    from sales_forecast.contract import load_contract

    return Contract.from_dict(load_contract(name).to_dict())


def daily_panel(history: pd.DataFrame, contract_name: str) -> pd.DataFrame:
    """The daily panel the DAG builds from ``history``: its own SQL, on DuckDB.

    ``history`` goes through a CSV and the local warehouse's ``load_csv_to_staging``,
    ``validate`` / ``quarantine``, ``merge_history`` and ``features`` steps, so gaps become
    zero-sales days and known columns are filled by their ``future_fill`` rules exactly as in a
    run of the DAG.
    """
    import tempfile

    from sales_forecast.contract import load_contract
    from sales_forecast.platforms.local import DuckDBWarehouse

    from datagen._common import write_frame_csv
    from trainer.io.tables import read_table

    contract = load_contract(contract_name)
    floats = [c for c in history.columns if pd.api.types.is_float_dtype(history[c])]
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "history.csv"
        with open(csv, "w", encoding="utf-8", newline="") as fh:
            write_frame_csv(history, fh, decimals=dict.fromkeys(floats, 6), header=True)
        wh = DuckDBWarehouse(Path(tmp) / "warehouse.duckdb", "benchmark")
        wh.run_script("create_tables", contract)
        wh.load_csv_to_staging(str(csv), list(history.columns), contract)
        wh.run_script("validate", contract, cutoff=FAR_CUTOFF)
        wh.run_script("quarantine", contract, run_id="benchmark", source_file=str(csv))
        (bad,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.rejected_rows}")
        if bad["n"]:
            raise RuntimeError(f"the generator's history had {bad['n']} rejected rows")
        wh.run_script("merge_history", contract, run_id="benchmark")
        wh.run_script("features", contract, cutoff=FAR_CUTOFF)
        panel = read_table(wh.table_uri("daily_sales_features"))
    return panel.sort_values(["series_id", contract.date_column], kind="stable").reset_index(
        drop=True
    )


def load_generated(stores: int, items: int, seed: int, end: str, horizon: int) -> Dataset:
    from datagen import generate_retail

    gen = generate_retail(n_stores=stores, n_items=items, end=end, future_days=horizon, seed=seed)
    contract = _builtin_contract("retail")
    train = daily_panel(gen.history, "retail")
    sid = gen.future_actuals["store_id"] + "|" + gen.future_actuals["item_id"]
    actuals = pd.DataFrame(
        {"series_id": sid, "date": gen.future_actuals["date"], "y": gen.future_actuals["sales"]}
    ).astype({"y": float})
    truth = gen.truth.assign(series_id=gen.truth["store_id"] + "|" + gen.truth["item_id"])
    actuals = actuals.merge(
        truth[["series_id", "date", "expected"]], on=["series_id", "date"], how="left"
    )
    return Dataset(
        name="generated",
        description=(
            f"datagen.generate_retail(n_stores={stores}, n_items={items}, end={end}, "
            f"seed={seed}): {train['series_id'].nunique()} series, train ..{end}, held out "
            f"the next {horizon} days with the generator's future covariates file"
        ),
        contract=contract,
        train=train,
        future=gen.future.copy(),
        actuals=actuals,
        horizon=horizon,
    )


def takeaway_future_weather(seed: int, end: str, horizon: int) -> pd.DataFrame:
    """The weather the takeaway generator drew for its ``horizon`` days after ``end``.

    The generator's future file leaves the weather out (nobody knows it in advance); its
    effects on the days' demand are drawn from it all the same. This redraws it from the same
    seeded stream (``datagen.takeaway._weather``, as ``generate_takeaway`` spawns it), and
    checks it against the history's weather, which must come out identical.
    """
    import numpy as np

    from datagen import generate_takeaway
    from datagen.takeaway import _weather

    start = "2023-01-01"  # generate_takeaway's default, which load_takeaway uses
    gen = generate_takeaway(start=start, end=end, future_days=horizon, seed=seed)
    dates = pd.date_range(start, pd.Timestamp(end) + pd.Timedelta(days=horizon), freq="D")
    n_hist = len(gen.history)
    _, _, weather_rng, _ = np.random.default_rng(seed).spawn(4)
    weather = _weather(weather_rng, dates, n_hist).assign(date=dates)
    cols = [c for c in weather.columns if c != "date"]
    if not np.allclose(weather[cols].iloc[:n_hist].to_numpy(), gen.history[cols].to_numpy()):
        raise RuntimeError("the redrawn takeaway weather does not match the generator's history")
    return weather.iloc[n_hist:].reset_index(drop=True)


def with_weather_noise(ds: Dataset, noise: float, seed: int = 0) -> Dataset:
    """``ds`` with its forecast columns' held-out values given a simulated forecast error
    (:func:`trainer.forecast_error.add_forecast_error`, sized on the training days)."""
    from trainer.forecast_error import add_forecast_error

    if ds.future is None or not ds.contract.forecast_columns:
        raise ValueError(f"{ds.name} has no forecast columns in its future file")
    future = ds.future.copy()
    if "series_id" not in future.columns:
        future["series_id"] = (
            SINGLE_SERIES_ID
            if not ds.contract.series_keys
            else (future[list(ds.contract.series_keys)].astype(str).agg("|".join, axis=1))
        )
    noisy, applied = add_forecast_error(
        future,
        ds.train,
        ds.contract.forecast_columns,
        date_column=ds.contract.date_column,
        cutoff=ds.cutoff,
        noise=noise,
        seed=seed,
    )
    sizes = applied.summary()
    return replace(
        ds,
        name=f"{ds.name}_noisy",
        description=f"{ds.description}; weather forecast error: noise {noise:g} (error std at "
        f"7 days: {sizes} (x: a factor's log-sd); x sqrt(h / 7), AR(1) 0.7, seed {seed})",
        future=noisy[list(ds.future.columns)],
        extra={**ds.extra, "weather_noise": noise, "error_std_at_7_days": sizes},
    )


def load_takeaway(seed: int, end: str, horizon: int, *, weather: bool = False) -> Dataset:
    """The takeaway demo. ``weather``: its future file also gives the held-out days' actual
    weather (as a perfect forecast of the ``forecast`` columns); without, the trainer fills
    them by their climatology."""
    from datagen import generate_takeaway

    gen = generate_takeaway(end=end, future_days=horizon, seed=seed)
    contract = _builtin_contract("takeaway")
    train = daily_panel(gen.history, "takeaway")
    actuals = pd.DataFrame(
        {"series_id": "total", "date": gen.future_actuals["date"], "y": gen.future_actuals["Total"]}
    ).merge(gen.truth[["date", "expected"]], on="date", how="left")
    future = gen.future.copy()
    if weather:
        future = future.merge(takeaway_future_weather(seed, end, horizon), on="date", how="left")
    return Dataset(
        name="takeaway_weather" if weather else "takeaway",
        description=(
            f"datagen.generate_takeaway(end={end}, seed={seed}): 1 series, held out the next "
            f"{horizon} days with the generator's future covariates file"
            + (" and the days' actual weather" if weather else " (weather: climatology)")
        ),
        contract=contract,
        train=train,
        future=future,
        actuals=actuals,
        horizon=horizon,
    )


# ----------------------------------------------------------------------------- methods


@dataclass
class Run:
    forecast: pd.DataFrame  # series_id, date, y_hat (+ lower_<l>, upper_<l>)
    seconds: float


def _timed(fn: Callable[[], pd.DataFrame]) -> Run:
    began = time.perf_counter()
    frame = fn()
    return Run(frame, time.perf_counter() - began)


def ours(ds: Dataset, config: TrainerConfig, *, intervals: bool = True) -> pd.DataFrame:
    fc = Forecaster.fit(ds.train, ds.contract, config, intervals=intervals)
    result = fc.forecast(ds.horizon, future_df=ds.future, levels=list(LEVELS) if intervals else [])
    return result.frame.rename(columns={"forecast": "y_hat"})


def naive(ds: Dataset) -> pd.DataFrame:
    date, target = ds.contract.date_column, ds.contract.target
    out = seasonal_naive(ds.train, ds.horizon, id_col="series_id", time_col=date, target_col=target)
    return out.rename(columns={date: "date"})[["series_id", "date", "y_hat"]]


def autoets(ds: Dataset, n_jobs: int) -> pd.DataFrame:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    date, target = ds.contract.date_column, ds.contract.target
    df = ds.train[["series_id", date, target]].rename(
        columns={"series_id": "unique_id", date: "ds", target: "y"}
    )
    sf = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=n_jobs)
    out = sf.forecast(df=df, h=ds.horizon)
    out = out.reset_index() if "unique_id" not in out.columns else out
    return pd.DataFrame(
        {"series_id": out["unique_id"], "date": out["ds"], "y_hat": out["AutoETS"].clip(lower=0)}
    )


def mlf_reference(
    ds: Dataset, n_estimators: int, threads: int, *, intervals: bool = False
) -> pd.DataFrame:
    """Plain mlforecast + LightGBM, the way its documentation sets up a retail panel.

    ``intervals``: also mlforecast's own conformal intervals (``PredictionIntervals`` with 2
    windows of the horizon, as ours), the like-for-like time of a forecast with intervals.
    """
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean
    from mlforecast.utils import PredictionIntervals

    c = ds.contract
    panel = prepare_panel(ds.train, c)
    df = pd.DataFrame(
        {"unique_id": panel["series_id"], "ds": panel[c.date_column], "y": panel[c.target]}
    )
    statics = list(c.series_keys)
    for key in statics:
        df[key] = panel[key].astype(str).astype("category")
    # The same known-in-advance and forecast (weather) columns as ours, where the future file
    # gives their values (the reference has no fill rule for a missing forecast).
    given = set(ds.future.columns) if ds.future is not None else set()
    known = [
        col.name
        for col in c.future_columns
        if col.type in ("BOOL", "FLOAT64", "INT64") and col.name in given
    ]
    for name in known:
        df[name] = panel[name].astype(float)
    model = lgb.LGBMRegressor(
        n_estimators=n_estimators, objective="tweedie", n_jobs=threads, verbosity=-1
    )
    mlf = MLForecast(
        models={"lgbm": model},
        freq="D",
        lags=[1, 7, 14, 28],
        lag_transforms={1: [RollingMean(window_size=7), RollingMean(window_size=28)]},
        date_features=["dayofweek", "month"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pi = PredictionIntervals(n_windows=2, h=ds.horizon) if intervals else None
        mlf.fit(df, static_features=statics, dropna=True, prediction_intervals=pi)
        x_df = None
        if known and ds.future is not None:
            fut = ds.future.copy()
            if c.series_keys:
                fut["unique_id"] = fut[list(c.series_keys)].astype(str).agg("|".join, axis=1)
            else:
                fut["unique_id"] = "total"
            fut["ds"] = pd.to_datetime(fut[c.date_column])
            x_df = fut[["unique_id", "ds", *known]].astype({k: float for k in known})
        out = mlf.predict(ds.horizon, X_df=x_df, level=list(LEVELS) if intervals else None)
    frame = pd.DataFrame(
        {"series_id": out["unique_id"], "date": out["ds"], "y_hat": out["lgbm"].clip(lower=0)}
    )
    if intervals:
        for lv in LEVELS:
            frame[f"lower_{lv}"] = out[f"lgbm-lo-{lv}"].to_numpy()
            frame[f"upper_{lv}"] = out[f"lgbm-hi-{lv}"].to_numpy()
    return frame


# ----------------------------------------------------------------------------- scoring


BUCKETS = (("day 1", 1), ("days 1-7", 7), ("days 1-28", 28))


def known_closures(ds: Dataset, forecast: pd.DataFrame) -> pd.DataFrame:
    """``forecast`` with the held-out days the future frame marks unavailable set to 0 (point
    and bounds): what a user does with any method once the closures are known."""
    col = ds.contract.availability_column
    if col is None or ds.future is None or col.name not in ds.future.columns:
        return forecast
    shut = ds.future[[not col.is_available(v) for v in ds.future[col.name]]]
    if shut.empty:
        return forecast
    days = set(pd.to_datetime(shut[ds.contract.date_column]))
    out = forecast.copy()
    hit = out["date"].isin(days)
    values = [
        c for c in out.columns if c == "y_hat" or c.startswith(("lo-", "hi-", "lower", "upper"))
    ]
    out.loc[hit, values] = 0.0
    return out


def score(ds: Dataset, forecast: pd.DataFrame, scale: float) -> dict[str, dict[str, float]]:
    rows = ds.actuals.merge(known_closures(ds, forecast), on=["series_id", "date"], how="left")
    if rows["y_hat"].isna().any():
        raise RuntimeError(f"{int(rows['y_hat'].isna().sum())} held-out rows have no forecast")
    rows["step"] = (rows["date"] - ds.cutoff).dt.days
    out: dict[str, dict[str, float]] = {}
    for name, last in BUCKETS:
        if last > ds.horizon:
            continue
        part = rows[rows["step"] <= last]
        y, f = part["y"].to_numpy(), part["y_hat"].to_numpy()
        out[name] = {
            "wape": wape(y, f),
            "mase": mase(y, f, scale),
            "rmse": rmse(y, f),
            "bias": bias(y, f),
        }
    return out


def coverage(ds: Dataset, forecast: pd.DataFrame) -> dict[str, dict[str, float]]:
    rows = ds.actuals.merge(forecast, on=["series_id", "date"], how="left")
    rows["step"] = (rows["date"] - ds.cutoff).dt.days
    out: dict[str, dict[str, float]] = {}
    for lv in LEVELS:
        lo, hi = rows[f"lower_{lv}"], rows[f"upper_{lv}"]
        inside = (rows["y"] >= lo) & (rows["y"] <= hi)
        out[str(lv)] = {
            name: float(inside[rows["step"] <= last].mean())
            for name, last in BUCKETS
            if last <= ds.horizon
        }
        out[str(lv)]["missing"] = float(lo.isna().mean())
    return out


def run_dataset(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    config = TrainerConfig(horizon=ds.horizon)
    if args.params_json:
        config = config_from_json_obj(json.loads(args.params_json.read_text()), config)
    config = replace(config, horizon=ds.horizon, num_threads=args.num_threads)
    if args.n_estimators:
        config = config.with_params(n_estimators=args.n_estimators)
    # What ours will fit on this data (the recipe its shape calls for): the reference gets the
    # same number of trees.
    resolved, recipe = resolve_recipe(config, prepare_panel(ds.train, ds.contract), ds.contract)
    trees = resolved.params.n_estimators
    assert trees is not None  # a resolved recipe sets every knob
    date, target = ds.contract.date_column, ds.contract.target
    scale = seasonal_scale(ds.train, id_col="series_id", time_col=date, target_col=target)
    times: dict[str, list[float]] = {}
    forecasts: dict[str, pd.DataFrame] = {}
    ratios: list[float] = []
    point_ratios: list[float] = []
    interval_ratios: list[float] = []
    methods: dict[str, Callable[[], pd.DataFrame]] = {
        "ours": lambda: ours(ds, config),
        "ours_point": lambda: ours(ds, config, intervals=False),
        "mlf_reference": lambda: mlf_reference(ds, trees, args.num_threads),
        "mlf_reference_intervals": lambda: mlf_reference(
            ds, trees, args.num_threads, intervals=True
        ),
        "seasonal_naive": lambda: naive(ds),
    }
    if not args.skip_ets:
        methods["autoets"] = lambda: autoets(ds, args.num_threads)
    for rep in range(args.repeats):
        runs: dict[str, Run] = {}
        for name, fn in methods.items():
            if name == "autoets" and rep and not args.repeat_ets:
                continue
            runs[name] = _timed(fn)
            times.setdefault(name, []).append(runs[name].seconds)
            forecasts.setdefault(name, runs[name].forecast)
            log(f"  [{ds.name}] repeat {rep + 1}: {name} {runs[name].seconds:.1f}s")
        ratios.append(runs["ours"].seconds / runs["mlf_reference"].seconds)
        point_ratios.append(runs["ours_point"].seconds / runs["mlf_reference"].seconds)
        interval_ratios.append(runs["ours"].seconds / runs["mlf_reference_intervals"].seconds)
    results: dict[str, Any] = {
        "dataset": ds.name,
        "description": ds.description,
        "n_series": int(ds.train["series_id"].nunique()),
        "train_rows": len(ds.train),
        "cutoff": ds.cutoff.date().isoformat(),
        "horizon": ds.horizon,
        "trees": trees,
        "recipe": recipe["name"],
        "recipe_reason": recipe["reason"],
        "num_threads": args.num_threads,
        "repeats": args.repeats,
        "methods": {},
    }
    order = ["ours", "mlf_reference", "autoets", "seasonal_naive"]
    for name in order:
        if name not in forecasts:
            continue
        results["methods"][name] = {
            "scores": score(ds, forecasts[name], scale),
            "seconds_median": statistics.median(times[name]),
            "seconds": times[name],
        }
    if "expected" in ds.actuals.columns:
        oracle = ds.actuals[["series_id", "date", "expected"]].rename(columns={"expected": "y_hat"})
        results["methods"]["oracle"] = {
            "scores": score(ds, oracle, scale),
            "seconds_median": None,
            "seconds": [],
        }
    results["coverage"] = coverage(ds, forecasts["ours"])
    results["coverage_mlf_reference"] = coverage(ds, forecasts["mlf_reference_intervals"])
    results["mlf_reference_intervals_seconds_median"] = statistics.median(
        times["mlf_reference_intervals"]
    )
    results["time_ratio_ours_vs_reference_with_intervals"] = statistics.median(interval_ratios)
    results["time_ratio_ours_vs_reference"] = statistics.median(ratios)
    results["time_ratio_ours_point_vs_reference"] = statistics.median(point_ratios)
    results["ours_point_seconds_median"] = statistics.median(times["ours_point"])
    results["ours_point_1_28_wape"] = score(ds, forecasts["ours_point"], scale)[
        f"days 1-{min(ds.horizon, 28)}" if ds.horizon >= 28 else "day 1"
    ]["wape"]
    return results


# ----------------------------------------------------------------------------- output


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def render(results: dict[str, Any], markdown: bool) -> str:
    lines: list[str] = []
    methods = results["methods"]
    oracle = methods.get("oracle", {}).get("scores", {})
    buckets = list(next(iter(methods.values()))["scores"])
    head = ["method", "bucket", "WAPE", "MASE", "RMSE", "bias"]
    if oracle:
        head.append("WAPE / oracle")
    head.append("time s (median)")
    table: list[list[str]] = []
    for name, item in methods.items():
        for b in buckets:
            s = item["scores"][b]
            row = [name, b, f"{s['wape']:.4f}", f"{s['mase']:.4f}", f"{s['rmse']:.3f}"]
            row.append(f"{s['bias']:+.4f}")
            if oracle:
                row.append(f"{s['wape'] / oracle[b]['wape']:.3f}")
            secs = item["seconds_median"]
            row.append("" if secs is None or b != buckets[-1] else f"{secs:.1f}")
            table.append(row)
    title = (
        f"{results['dataset']}: {results['description']} | recipe {results['recipe']}, "
        f"trees {results['trees']}, "
        f"threads {results['num_threads']}, repeats {results['repeats']}"
    )
    if markdown:
        lines.append(f"**{title}**")
        lines.append("")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines.extend("| " + " | ".join(r) + " |" for r in table)
    else:
        lines.append(title)
        widths = [max(len(x) for x in col) for col in zip(head, *table, strict=True)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines.append(fmt.format(*head))
        lines.extend(fmt.format(*r) for r in table)
    lines.append("")
    for who, key in (("ours", "coverage"), ("mlf_reference", "coverage_mlf_reference")):
        cov_text = "; ".join(
            f"{lv}%: " + ", ".join(f"{b} {v:.3f}" for b, v in parts.items() if b != "missing")
            for lv, parts in results[key].items()
        )
        lines.append(
            f"coverage of {who} intervals on the held-out days (nominal 0.80 / 0.95): {cov_text}"
        )
    lines.append(
        "time ours / mlf_reference (same data, trees, threads; median of per-repeat ratios): "
        f"{results['time_ratio_ours_point_vs_reference']:.2f} point forecasts "
        f"(ours {results['ours_point_seconds_median']:.1f}s), "
        f"{results['time_ratio_ours_vs_reference_with_intervals']:.2f} with 80/95% conformal "
        f"intervals (ours {results['methods']['ours']['seconds_median']:.1f}s vs mlforecast's "
        f"PredictionIntervals {results['mlf_reference_intervals_seconds_median']:.1f}s); "
        f"ours with intervals / reference without: {results['time_ratio_ours_vs_reference']:.2f}"
    )
    return "\n".join(lines)


SINGLE = (
    "takeaway",
    "takeaway_weather",
    "takeaway_weather_noisy",
    "seoul",
    "seoul_weather",
    "seoul_weather_noisy",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset",
        choices=[*SINGLE, "real", "generated", "both", "single", "all"],
        default="both",
        help="both: real + generated (panels); single: every takeaway and seoul variant; all: "
        "every one. *_weather: the held-out days' actual weather given as a (perfect) "
        "forecast; *_weather_noisy: the same with a simulated forecast error "
        "(--weather-noise)",
    )
    parser.add_argument(
        "--weather-noise",
        type=float,
        default=DEFAULT_WEATHER_NOISE,
        help="forecast error of the *_weather_noisy variants, in each column's spread around "
        f"its 31-day mean at 7 days ahead (default {DEFAULT_WEATHER_NOISE})",
    )
    parser.add_argument("--real-csv", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--seoul-csv", type=Path, default=DEFAULT_SEOUL)
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", default="2025-10-31", help="last training day (generated)")
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=1, help="runs per method (median time)")
    parser.add_argument(
        "--repeat-ets", action="store_true", help="time AutoETS on every repeat (slow)"
    )
    parser.add_argument("--skip-ets", action="store_true")
    parser.add_argument("--num-threads", type=int, default=TrainerConfig().num_threads)
    parser.add_argument(
        "--n-estimators", type=int, help="trees for ours and the reference (default: ours)"
    )
    parser.add_argument(
        "--params-json",
        type=Path,
        help="trainer params for ours (like train --params-json); default: the defaults",
    )
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.weather_noise >= 0:  # also refuses nan
        raise SystemExit(f"--weather-noise must be >= 0, got {args.weather_noise}")
    names = {
        "both": ["real", "generated"],
        "single": list(SINGLE),
        "all": ["real", "generated", *SINGLE],
    }.get(args.dataset, [args.dataset])

    def seoul_weather() -> Dataset:
        return load_seoul(
            args.seoul_csv, args.horizon, SEOUL_WEATHER_COVARIATES, name="seoul_weather"
        )

    loaders: dict[str, Callable[[], Dataset]] = {
        "real": lambda: load_real(args.real_csv, args.horizon),
        "generated": lambda: load_generated(
            args.stores, args.items, args.seed, args.end, args.horizon
        ),
        "takeaway": lambda: load_takeaway(11, args.end, args.horizon),
        "takeaway_weather": lambda: load_takeaway(11, args.end, args.horizon, weather=True),
        "takeaway_weather_noisy": lambda: with_weather_noise(
            load_takeaway(11, args.end, args.horizon, weather=True), args.weather_noise
        ),
        "seoul": lambda: load_seoul(args.seoul_csv, args.horizon),
        "seoul_weather": seoul_weather,
        "seoul_weather_noisy": lambda: with_weather_noise(seoul_weather(), args.weather_noise),
    }
    everything = []
    for name in names:
        log(f"loading {name} ...")
        ds = loaders[name]()
        results = run_dataset(ds, args)
        everything.append(results)
        print(render(results, args.markdown), flush=True)
        print(flush=True)
    if args.json:
        args.json.write_text(json.dumps(everything, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
