"""Command line for the demo-data generators.

Examples::

    python -m datagen retail --out data/demo/retail_sales.csv \\
        --future-out data/demo/retail_future.csv
    python -m datagen takeaway --out data/demo/takeaway_sales.csv \\
        --future-out data/demo/takeaway_future.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from datagen.retail import write_retail_csv
from datagen.takeaway import write_takeaway_csv


def _add_common(parser: argparse.ArgumentParser, seed: int) -> None:
    parser.add_argument("--out", required=True, help="history CSV to write")
    parser.add_argument("--future-out", help="future CSV (known-in-advance columns only)")
    parser.add_argument("--actuals-out", help="realised target for the future days")
    parser.add_argument("--truth-out", help="expected value for every history and future row")
    parser.add_argument("--start", default="2023-01-01", help="first history day (ISO date)")
    parser.add_argument("--end", default="2025-10-31", help="last history day (ISO date)")
    parser.add_argument("--future-days", type=int, default=28, help="days after --end")
    parser.add_argument("--seed", type=int, default=seed, help="random seed")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``python -m datagen`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m datagen", description="Write seeded demo sales data as CSV."
    )
    sub = parser.add_subparsers(dest="dataset", required=True)
    retail = sub.add_parser("retail", help="multi-store, multi-item daily unit sales")
    _add_common(retail, seed=7)
    retail.add_argument("--stores", type=int, default=3, help="number of stores")
    retail.add_argument("--items", type=int, default=10, help="number of items")
    takeaway = sub.add_parser("takeaway", help="one restaurant's daily takeaway total")
    _add_common(takeaway, seed=11)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = {
        "future_path": args.future_out,
        "actuals_path": args.actuals_out,
        "truth_path": args.truth_out,
    }
    window = {"start": args.start, "end": args.end, "future_days": args.future_days}
    began = time.perf_counter()
    try:
        if args.dataset == "retail":
            counts = write_retail_csv(
                args.out,
                **paths,
                **window,
                n_stores=args.stores,
                n_items=args.items,
                seed=args.seed,
            )
        else:
            counts = write_takeaway_csv(args.out, **paths, **window, seed=args.seed)
    except ValueError as exc:  # bad dates or sizes: a usage error, not a crash
        parser.error(str(exc))
    written = ", ".join(f"{name}={rows}" for name, rows in counts.items() if rows)
    print(f"{args.dataset}: wrote rows {written} in {time.perf_counter() - began:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
