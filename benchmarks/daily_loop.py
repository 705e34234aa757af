"""30 consecutive daily runs of the real pipeline vs a policy that never retrains after day 1.

A seeded retail panel (the ``retail`` contract's columns) of ``--series`` store x item series
with weekly and yearly seasonality, promotions (a lift and a lower price), a few holidays and
gamma-Poisson noise, about 14 months of history before the loop. During the loop the world
moves: from the data of loop day 8 on, a third of the series' level shifts (half +40%, half
-30%), and three new items start selling, their first rows arriving on loop days 5, 12 and 20.

- **daily DAG**: a fresh data root; loop day ``d`` is the run of logical date ``D0 + d`` (its
  cut-off the day before). Day 1's input file holds the whole history up to the cut-off, later
  days only that day's new rows (a daily delta). The nine steps of ``sales_forecast.steps``
  run in the DAG's order with ``enable_deploy=true``; register / deploy may skip, as in
  Airflow. Recorded: production version, the gate's decision, which model versions wrote the
  forecasts, and the forecasts of the run's cut-off (``daily_sales_forecasts``).
- **frozen**: from day 2 on, day 1's production model forecasts through the trainer's own CLI
  (``python -m trainer predict --model-dir <v1>``) from that day's feature table, right after
  the DAG's run; no retraining, no gate (series it does not know get seasonal naive).

Each day's 7-day forecasts are scored against the actuals that arrive later: WAPE over every
series that has actuals on those days, a series without a forecast counting as forecast 0.
The generator's expected values give an oracle WAPE, the floor of what any forecaster can do.

    .venv/bin/python benchmarks/daily_loop.py                       # 30 days, 20 series
    .venv/bin/python benchmarks/daily_loop.py --days 3 --series 6   # a smoke run (~2 min)
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "plugins")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from sales_forecast import steps  # noqa: E402
from sales_forecast.config import Settings  # noqa: E402
from sales_forecast.errors import SkipStep  # noqa: E402
from sales_forecast.platforms.base import Platform  # noqa: E402
from sales_forecast.platforms.local import build_local_platform  # noqa: E402
from sales_forecast.run_context import RunContext, make_run_context  # noqa: E402
from sales_forecast.tasks import DailyTasks  # noqa: E402

from datagen._common import ar1, easter_sunday, write_frame_csv  # noqa: E402
from sf_contract.constants import PRODUCTION_ALIAS  # noqa: E402

log = logging.getLogger("daily_loop")

COLUMNS = ["date", "store_id", "item_id", "sales", "price", "on_promo", "is_holiday", "temperature"]
DECIMALS = {"sales": 0, "price": 2, "temperature": 1}
# Day 1's cut-off; 2024-04-01..2025-05-31 is ~14 months of history before the loop.
D0 = dt.date(2025, 5, 31)
HISTORY_DAYS = 426
# Steps that skip rather than fail when there is nothing to do (Airflow marks them skipped).
SKIPPABLE = ("register", "deploy")
DRIFT_FROM_DAY = 8
LAUNCH_DAYS = (5, 12, 20)
WEEKLY = np.array([0.92, 0.88, 0.93, 1.0, 1.12, 1.35, 1.05])  # Monday .. Sunday


# ----------------------------------------------------------------------------- the panel


@dataclass
class Panel:
    """Every row of every day (the ground truth, through ``horizon`` days after the loop)."""

    rows: pd.DataFrame  # COLUMNS + series_id + expected
    drift: dict[str, float]  # series_id -> level factor from the drift day on
    launches: dict[str, dt.date]  # series_id -> its first day of data
    drift_date: dt.date


def loop_cutoff(day: int) -> dt.date:
    """The cut-off of loop day ``day`` (its logical date is the day after)."""
    return D0 + dt.timedelta(days=day - 1)


def _holidays(start: dt.date, end: dt.date) -> set[dt.date]:
    out: set[dt.date] = set()
    for year in range(start.year, end.year + 1):
        easter = easter_sunday(year)
        out |= {
            dt.date(year, 1, 1),
            easter - dt.timedelta(days=2),
            easter + dt.timedelta(days=1),
            dt.date(year, 5, 1),
            dt.date(year, 12, 24),
            dt.date(year, 12, 26),
            dt.date(year, 12, 31),
        }
    return {d for d in out if start <= d <= end}


def _promo_calendar(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """Promotions of 3-7 days, about one every five weeks."""
    promo = np.zeros(n_days, dtype=bool)
    t = int(rng.integers(0, 30))
    while t < n_days:
        promo[t : t + int(rng.integers(3, 8))] = True
        t += int(rng.integers(25, 45))
    return promo


def generate_panel(n_series: int, seed: int, days: int, horizon: int) -> Panel:
    rng = np.random.default_rng(seed)
    start = D0 - dt.timedelta(days=HISTORY_DAYS - 1)
    end = loop_cutoff(days) + dt.timedelta(days=horizon)
    dates = pd.date_range(start, end, freq="D")
    n_days = len(dates)
    day_index = {d.date(): i for i, d in enumerate(dates)}
    doy = dates.dayofyear.to_numpy()
    dow = dates.dayofweek.to_numpy()
    holidays = _holidays(start, end)
    is_holiday = np.array([d.date() in holidays for d in dates])
    drift_date = loop_cutoff(DRIFT_FROM_DAY)

    n_stores = 2 if n_series <= 8 else 4
    keys = [(f"S{i % n_stores + 1:02d}", f"I{i // n_stores + 1:03d}") for i in range(n_series)]
    launches: dict[str, dt.date] = {}
    for k, day in enumerate(LAUNCH_DAYS):
        if day <= days:
            store, item = f"S{k % n_stores + 1:02d}", f"I{101 + k:03d}"
            keys.append((store, item))
            launches[f"{store}|{item}"] = loop_cutoff(day)
    n_drift = n_series // 3
    drifted = rng.choice(n_series, size=n_drift, replace=False)
    drift = {
        f"{keys[j][0]}|{keys[j][1]}": (1.4 if n < (n_drift + 1) // 2 else 0.7)
        for n, j in enumerate(sorted(drifted))
    }
    temps = {
        s: 12 - 10 * np.cos(2 * np.pi * (doy - 20) / 365.25) + ar1(rng.normal(size=n_days), 0.8, 2)
        for s in sorted({k[0] for k in keys})
    }

    frames = []
    for store, item in keys:
        sid = f"{store}|{item}"
        level = rng.uniform(8, 40)
        weekly = WEEKLY * rng.uniform(0.9, 1.1, 7)
        yearly = 1 + rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * doy / 365.25 + rng.uniform(0, 6))
        promo = _promo_calendar(rng, n_days)
        base_price = rng.uniform(2, 10)
        price = np.where(promo, base_price * 0.8, base_price)
        mean = level * weekly[dow] * yearly
        mean *= np.where(promo, rng.uniform(1.4, 1.8), 1.0)
        mean *= np.where(is_holiday, 1.3, 1.0)
        mean *= 1 + 0.01 * (temps[store] - 15).clip(-10, 10)
        if sid in drift:
            mean[day_index[drift_date] :] *= drift[sid]
        noise = rng.gamma(20.0, 1 / 20.0, n_days)
        sales = rng.poisson(mean * noise).astype(float)
        first = day_index[launches[sid]] if sid in launches else 0
        frames.append(
            pd.DataFrame(
                {
                    "date": dates[first:],
                    "store_id": store,
                    "item_id": item,
                    "sales": sales[first:],
                    "price": price[first:].round(2),
                    "on_promo": promo[first:],
                    "is_holiday": is_holiday[first:],
                    "temperature": temps[store][first:].round(1),
                    "series_id": sid,
                    "expected": mean[first:],
                }
            )
        )
    rows = pd.concat(frames, ignore_index=True).sort_values(["date", "store_id", "item_id"])
    return Panel(rows.reset_index(drop=True), drift, launches, drift_date)


def write_input(panel: Panel, day: int, folder: Path) -> Path:
    """Day 1: all history up to its cut-off; later days: the cut-off's rows only."""
    cutoff = pd.Timestamp(loop_cutoff(day))
    dates = panel.rows["date"]
    part = panel.rows[dates <= cutoff] if day == 1 else panel.rows[dates == cutoff]
    path = folder / f"sales_day{day:02d}.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        write_frame_csv(part[COLUMNS], fh, decimals=DECIMALS, header=True)
    return path


# ----------------------------------------------------------------------------- the two policies


@dataclass
class Day:
    day: int
    cutoff: dt.date
    production: str | None = None
    gate: dict[str, Any] = field(default_factory=dict)
    registered: str | None = None
    series_at_cutoff: int = 0
    dag_models: dict[str, int] = field(default_factory=dict)
    dag: pd.DataFrame | None = None  # series_id, date, forecast
    frozen: pd.DataFrame | None = None
    frozen_models: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class StepFailed(RuntimeError):
    """A step of the DAG failed: a product bug, reported with the day and the step."""


def run_dag_day(
    settings: Settings, day: int, input_uri: Path, horizon: int
) -> tuple[RunContext, Platform, Day]:
    logical = dt.datetime.combine(loop_cutoff(day) + dt.timedelta(days=1), dt.time(), dt.UTC)
    ctx = make_run_context(
        run_id=f"scheduled__{logical.isoformat()}",
        logical_date=logical,
        params={"input_uri": str(input_uri), "enable_deploy": True, "horizon": horizon},
        settings=settings,
        runs_root=str(settings.runs_root),
    )
    platform = build_local_platform(settings, steps.load_run_contract(ctx).name, ctx.run_id)
    rec = Day(day=day, cutoff=ctx.cutoff_date)
    for name in DailyTasks._fields:
        try:
            out = steps.STEPS[name](ctx, platform, settings)
        except SkipStep as exc:
            if name not in SKIPPABLE:
                raise StepFailed(f"day {day}: step {name} skipped unexpectedly: {exc}") from exc
            log.info("day %s: %s skipped: %s", day, name, exc)
            continue
        except Exception as exc:
            raise StepFailed(f"day {day}: step {name} failed: {type(exc).__name__}: {exc}") from exc
        if name == "register":
            rec.registered = str(out["version"])
    gate = steps.read_gate(platform, ctx)
    rec.gate = {k: gate.get(k) for k in ("passed", "champion_mode", "reason", "champion_version")}
    prod = platform.registry.get_by_alias(PRODUCTION_ALIAS)
    rec.production = prod.version if prod else None
    wh = platform.warehouse
    (n,) = wh.query(
        f"SELECT COUNT(DISTINCT series_id) AS n FROM {wh.tables.daily_sales_features} "
        "WHERE `date` <= @cutoff",
        cutoff=ctx.cutoff_date,
    )
    rec.series_at_cutoff = int(n["n"])
    rows = wh.query(
        f"SELECT series_id, date, forecast, model_version FROM {wh.tables.daily_sales_forecasts} "
        "WHERE cutoff_date = @cutoff",
        cutoff=ctx.cutoff_date,
    )
    rec.dag = _forecast_frame(pd.DataFrame(rows))
    rec.dag_models = _models(rec.dag, ctx.run_key, rec.registered)
    return ctx, platform, rec


def run_frozen_day(
    rec: Day, ctx: RunContext, platform: Platform, model_dir: str, version: str, out: Path
) -> None:
    """Day 1's production model, forecasting from today's feature table (no retraining)."""
    cmd = [
        sys.executable, "-m", "trainer", "predict",
        "--model-dir", model_dir,
        "--model-version", version,
        "--data-uri", platform.warehouse.table_uri("daily_sales_features"),
        "--cutoff-date", rec.cutoff.isoformat(),
        "--horizon", str(ctx.horizon),
        "--output-uri", str(out),
        "--run-id", f"frozen_{ctx.run_key}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-8:]
        raise StepFailed(
            f"day {rec.day}: frozen predict failed ({proc.returncode}):\n" + "\n".join(tail)
        )
    rec.frozen = _forecast_frame(pd.read_parquet(out))
    rec.frozen_models = _models(rec.frozen, ctx.run_key, None)


def _forecast_frame(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=["series_id", "date", "forecast", "model_version"])
    out = df[["series_id", "date", "forecast", "model_version"]].copy()
    out["date"] = pd.to_datetime(out["date"])
    out["forecast"] = out["forecast"].astype(float)
    return out


def _models(df: pd.DataFrame, run_key: str, registered: str | None) -> dict[str, int]:
    """Series per model version, this run's candidate named by what it was registered as."""
    counts = df.groupby("model_version")["series_id"].nunique().to_dict()
    out: dict[str, int] = {}
    for version, n in counts.items():
        label = str(version)
        if label == f"candidate:{run_key}":
            label = f"new v{registered}" if registered else "new (unregistered)"
        elif label.isdigit():
            label = f"v{label}"
        out[label] = int(n)
    return out


# ----------------------------------------------------------------------------- scoring


def window_actuals(panel: Panel, cutoff: dt.date, horizon: int) -> pd.DataFrame:
    d = panel.rows["date"]
    lo, hi = pd.Timestamp(cutoff), pd.Timestamp(cutoff + dt.timedelta(days=horizon))
    cols = ["series_id", "date", "sales", "expected", "on_promo"]
    return panel.rows.loc[(d > lo) & (d <= hi), cols]


def policy_forecast(rec: Day, policy: str) -> pd.DataFrame:
    """The day's forecasts of a policy (on day 1 both policies are the same model)."""
    fc = rec.dag if policy == "dag" or rec.day == 1 else rec.frozen
    return fc if fc is not None else _forecast_frame(pd.DataFrame())


def abs_error(actuals: pd.DataFrame, forecast: pd.DataFrame) -> tuple[float, float]:
    """(sum |y - forecast|, sum y); a missing forecast counts as 0."""
    rows = actuals.merge(
        forecast[["series_id", "date", "forecast"]], on=["series_id", "date"], how="left"
    )
    err = (rows["sales"] - rows["forecast"].fillna(0.0)).abs().sum()
    return float(err), float(rows["sales"].sum())


def realised(actuals: pd.DataFrame, forecast: pd.DataFrame) -> tuple[float, float]:
    """(WAPE, share of series with a forecast) over every series with actuals in the window."""
    err, total = abs_error(actuals, forecast)
    series = actuals["series_id"].unique()
    share = float(np.isin(series, forecast["series_id"].unique()).mean()) if len(series) else 0.0
    return err / total, share


def oracle_wape(actuals: pd.DataFrame) -> float:
    return float((actuals["sales"] - actuals["expected"]).abs().sum() / actuals["sales"].sum())


def _fmt_models(models: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(models.items())) or "-"


def _mean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def report(panel: Panel, days: list[Day], horizon: int, seconds: float) -> None:
    print("| day | cut-off | production | gate | models used (series) | share forecast | "
          "WAPE daily DAG | WAPE frozen | frozen models (series) | WAPE oracle |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    scores: dict[str, list[float]] = {"dag": [], "frozen": [], "oracle": []}
    for rec in days:
        act = window_actuals(panel, rec.cutoff, horizon)
        w_dag, s_dag = realised(act, policy_forecast(rec, "dag"))
        w_fro, s_fro = realised(act, policy_forecast(rec, "frozen"))
        w_orc = oracle_wape(act)
        scores["dag"].append(w_dag)
        scores["frozen"].append(w_fro)
        scores["oracle"].append(w_orc)
        g = rec.gate
        gate = f"{'pass' if g.get('passed') else 'fail'} / {g.get('champion_mode')}"
        n_dag = rec.dag["series_id"].nunique() if rec.dag is not None else 0
        at_cut = f"{n_dag}/{rec.series_at_cutoff}"
        frozen_models = "= daily DAG" if rec.day == 1 else _fmt_models(rec.frozen_models)
        print(
            f"| {rec.day} | {rec.cutoff} | v{rec.production} | {gate} | "
            f"{_fmt_models(rec.dag_models)} | {at_cut} at cut-off; window {s_dag:.0%} / "
            f"{s_fro:.0%} | {w_dag:.4f} | {w_fro:.4f} | {frozen_models} | {w_orc:.4f} |"
        )
    print()
    print("Gate reasons:")
    for rec in days:
        print(f"- day {rec.day}: {rec.gate.get('reason')}")
    print()
    drift_day = DRIFT_FROM_DAY
    spans = [
        ("all days", lambda d: True),
        (f"days 1-{drift_day - 1}", lambda d: d < drift_day),
        (f"days {drift_day}-{max(len(days), drift_day)}", lambda d: d >= drift_day),
    ]
    print("| policy | " + " | ".join(f"mean WAPE {name}" for name, _ in spans) + " |")
    print("|---|" + "---|" * len(spans))
    for policy, label in (("dag", "daily DAG"), ("frozen", "frozen v1"), ("oracle", "oracle")):
        pairs = list(zip(days, scores[policy], strict=True))
        vals = [f"{_mean([s for rec, s in pairs if keep(rec.day)]):.4f}" for _, keep in spans]
        print(f"| {label} | " + " | ".join(vals) + " |")
    print()
    loop_rows = panel.rows[
        (panel.rows["date"] > pd.Timestamp(D0))
        & (panel.rows["date"] <= pd.Timestamp(loop_cutoff(len(days)) + dt.timedelta(days=horizon)))
    ]
    promo_runs = int(
        (
            loop_rows.sort_values(["series_id", "date"])
            .groupby("series_id")["on_promo"]
            .apply(lambda s: int((s & ~s.shift(fill_value=False)).sum()))
        ).sum()
    )
    print(
        f"- promotions: {int(loop_rows['on_promo'].sum())} promo series-days "
        f"({promo_runs} promotions) in the loop's days and forecast windows, "
        f"{int(panel.rows['on_promo'].sum())} promo series-days in the whole panel"
    )
    shifted = ", ".join(f"{s} x{f}" for s, f in sorted(panel.drift.items()))
    print(f"- drift from {panel.drift_date} (loop day {drift_day}): {shifted}")
    for policy, label in (("dag", "daily DAG"), ("frozen", "frozen v1")):
        have, total = 0, 0
        for rec in days:
            known = set(policy_forecast(rec, policy)["series_id"])
            for sid, first in panel.launches.items():
                if first <= rec.cutoff:
                    total += 1
                    have += sid in known
        share = f"{have / total:.0%}" if total else "n/a"
        print(f"- new items ({len(panel.launches)}) forecast by {label}: {have}/{total} "
              f"series-days after launch ({share})")  # fmt: skip
    versions = sorted({rec.registered for rec in days if rec.registered}, key=int)
    shown = f"v{versions[0]}..v{versions[-1]}" if versions else "none"
    print(
        f"- versions registered: {len(versions)} ({shown}); "
        f"wall time {seconds / 60:.1f} min ({seconds / max(len(days), 1):.0f} s per day)"
    )
    subsets(panel, days, horizon)


def subsets(panel: Panel, days: list[Day], horizon: int) -> None:
    """WAPE pooled over every day's window (sum of |error| / sum of actuals), by kind of row."""
    drifted, launched = set(panel.drift), set(panel.launches)
    after = f"days {DRIFT_FROM_DAY}-{max(len(days), DRIFT_FROM_DAY)}"
    kinds: list[tuple[str, Any]] = [
        ("new items, all days", lambda a, d: a["series_id"].isin(launched)),
        (
            f"drifted series, {after}",
            lambda a, d: a["series_id"].isin(drifted) & (d >= DRIFT_FROM_DAY),
        ),
        (
            f"other original series, {after}",
            lambda a, d: ~a["series_id"].isin(drifted | launched) & (d >= DRIFT_FROM_DAY),
        ),
        ("promotion days, all days", lambda a, d: a["on_promo"]),
        ("days without promotion, all days", lambda a, d: ~a["on_promo"]),
    ]
    print()
    print("| rows (pooled over the days' windows) | daily DAG | frozen v1 | oracle |")
    print("|---|---|---|---|")
    for name, keep in kinds:
        sums = {"dag": [0.0, 0.0], "frozen": [0.0, 0.0], "oracle": [0.0, 0.0]}
        for rec in days:
            act = window_actuals(panel, rec.cutoff, horizon)
            act = act[keep(act, rec.day)]
            for policy in ("dag", "frozen"):
                e, t = abs_error(act, policy_forecast(rec, policy))
                sums[policy][0] += e
                sums[policy][1] += t
            sums["oracle"][0] += float((act["sales"] - act["expected"]).abs().sum())
            sums["oracle"][1] += float(act["sales"].sum())
        cells = [f"{e / t:.4f}" if t else "n/a" for e, t in sums.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="sf_daily_loop_"))
    inputs = root / "inputs"
    inputs.mkdir()
    handler = logging.FileHandler(root / "loop.log")
    handler.setLevel(logging.INFO)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    for h in logging.getLogger().handlers:
        if h is not handler:
            h.setLevel(logging.WARNING)

    panel = generate_panel(args.series, args.seed, args.days, args.horizon)
    settings = Settings(data_root=root / "data", input_roots=[root])
    n_hist = int((panel.rows["date"] <= pd.Timestamp(D0)).sum())
    print(
        f"panel: {args.series} series + {len(panel.launches)} launches, "
        f"{panel.rows['date'].min().date()}..{panel.rows['date'].max().date()}, "
        f"{n_hist} rows up to day 1's cut-off {D0}; seed {args.seed}; horizon {args.horizon}; "
        f"data root {root}"
    )
    began = time.perf_counter()
    days: list[Day] = []
    frozen_model: tuple[str, str] | None = None
    try:
        for day in range(1, args.days + 1):
            t0 = time.perf_counter()
            ctx, platform, rec = run_dag_day(
                settings, day, write_input(panel, day, inputs), args.horizon
            )
            if day == 1:
                prod = platform.registry.get_by_alias(PRODUCTION_ALIAS)
                if prod is None:
                    raise StepFailed("day 1 put nothing in production: no model to freeze")
                frozen_model = (prod.uri, prod.version)
            elif frozen_model is not None:
                out = root / "frozen" / f"day{day:02d}.parquet"
                out.parent.mkdir(exist_ok=True)
                run_frozen_day(rec, ctx, platform, *frozen_model, out)
            rec.seconds = time.perf_counter() - t0
            days.append(rec)
            print(
                f"day {day:2d} cut-off {rec.cutoff}: production v{rec.production}, gate "
                f"{'pass' if rec.gate.get('passed') else 'fail'}/{rec.gate.get('champion_mode')}, "
                f"{_fmt_models(rec.dag_models)} ({rec.seconds:.0f} s)",
                flush=True,
            )
    except StepFailed as exc:
        print(f"\nSTOPPED: {exc}\n(log: {root / 'loop.log'}; data root kept at {root})")
        if days:
            report(panel, days, args.horizon, time.perf_counter() - began)
        return 1
    print()
    report(panel, days, args.horizon, time.perf_counter() - began)
    if args.keep:
        print(f"\nkept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
