"""What training on a sample of series (``max_train_rows``) costs in accuracy.

The scale benchmark's 30k-series panel trains on a seeded sample of whole series (8M rows);
this measures the price of that on a generated panel small enough to also train in full:
``datagen.generate_retail(20 stores x 25 items)`` (500 series), 28 days held out, the default
trainer with no cap, then capped at 38% and 15% of its training rows (38%: the share of the
30k panel's series the trees see). Prints WAPE, its ratio to the generator's oracle and bias.

    .venv/bin/python benchmarks/sampling.py
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy

from trainer.config import TrainerConfig
from trainer.metrics import seasonal_scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--items", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shares", default="1,0.38,0.15", help="shares of the training rows")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    ds = accuracy.load_generated(args.stores, args.items, args.seed, "2025-10-31", 28)
    scale = seasonal_scale(ds.train, id_col="series_id", time_col="date", target_col="sales")
    oracle = ds.actuals[["series_id", "date", "expected"]].rename(columns={"expected": "y_hat"})
    best = accuracy.score(ds, oracle, scale)["days 1-28"]["wape"]
    base = TrainerConfig(horizon=28)
    start = ds.cutoff - pd.Timedelta(days=base.train_window_days)
    window_rows = int((ds.train["date"] > start).sum())
    print(f"{ds.description}; {window_rows} rows in the training window")
    print("| share of training rows | series the trees see | WAPE 1-28 | / oracle | bias |")
    print("|---|---|---|---|---|")
    for share in (float(s) for s in args.shares.split(",")):
        cap = 0 if share >= 1 else int(share * window_rows)
        fc_config = replace(base, max_train_rows=cap)
        forecast = accuracy.ours(ds, fc_config, intervals=False)
        s = accuracy.score(ds, forecast, scale)["days 1-28"]
        seen = _series_seen(ds, fc_config)
        print(
            f"| {share:.0%} | {seen} | {s['wape']:.4f} | {s['wape'] / best:.3f} | "
            f"{s['bias']:+.4f} |"
        )
    return 0


def _series_seen(ds: accuracy.Dataset, config: TrainerConfig) -> int:
    from trainer.fitting import training_rows
    from trainer.panel import prepare_panel

    panel = prepare_panel(ds.train, ds.contract)
    rows, _start, facts = training_rows(panel, ds.contract, config)
    return int(facts.get("sampled_series", facts["series"]))


if __name__ == "__main__":
    raise SystemExit(main())
