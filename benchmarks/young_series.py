"""How the trainer forecasts very young series (a few days of history) inside a mature panel.

Takes the generated benchmark panel (``accuracy.py``'s ``generated`` dataset), cuts 24 random
series down to their last 3, 5, 7, 10, 14 or 21 days (4 series each), trains the default
``Forecaster`` on the result and scores those series over the next 28 days against seasonal
naive and the generator's oracle, next to the WAPE of the untouched series.

    .venv/bin/python benchmarks/young_series.py
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy

from trainer.baselines import seasonal_naive
from trainer.config import TrainerConfig
from trainer.metrics import wape
from trainer.model import Forecaster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    ds = accuracy.load_generated(5, 20, args.seed, "2025-10-31", 28)
    rng = np.random.default_rng(0)
    ids = sorted(ds.train["series_id"].unique())
    ages = dict(zip(rng.choice(ids, 24, replace=False), [3, 5, 7, 10, 14, 21] * 4, strict=True))
    train, last = ds.train, ds.train["date"].max()
    keep = np.ones(len(train), dtype=bool)
    for sid, days in ages.items():
        keep &= ~((train["series_id"] == sid) & (train["date"] <= last - pd.Timedelta(days=days)))
    train = train[keep]
    config = replace(TrainerConfig(), num_threads=args.num_threads)
    fc = Forecaster.fit(train, ds.contract, config, intervals=False)
    ours = fc.predict(28, future_df=ds.future, levels=[])
    naive = seasonal_naive(train, 28, id_col="series_id", time_col="date", target_col="sales")
    rows = ds.actuals.merge(ours[["series_id", "date", "forecast"]], on=["series_id", "date"])
    rows = rows.merge(naive[["series_id", "date", "y_hat"]], on=["series_id", "date"])
    rows["age"] = rows["series_id"].map(ages)
    print(
        "| days of history | series | ours WAPE | seasonal naive WAPE | oracle WAPE | ours bias |"
    )
    print("|---|---|---|---|---|---|")
    for age, g in rows[rows["age"].notna()].groupby("age"):
        bias = (g["forecast"] - g["y"]).sum() / g["y"].sum()
        print(
            f"| {int(age)} | {g['series_id'].nunique()} | {wape(g['y'], g['forecast']):.3f} | "
            f"{wape(g['y'], g['y_hat']):.3f} | {wape(g['y'], g['expected']):.3f} | {bias:+.3f} |"
        )
    old = rows[rows["age"].isna()]
    print(
        f"| mature (the other {old['series_id'].nunique()}) | | "
        f"{wape(old['y'], old['forecast']):.3f} | {wape(old['y'], old['y_hat']):.3f} | "
        f"{wape(old['y'], old['expected']):.3f} | |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
