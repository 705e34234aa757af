"""The gate's rolling-origin backtest, through the trainer CLI, on the real panel.

Writes ``store_item_2017.csv`` (all of 2017) as a ``daily_sales_features`` DuckDB table, then
runs what the DAG runs: ``python -m trainer train`` (cut-off 2017-12-31) and
``python -m trainer backtest --n-windows 3`` (three 28-day windows ending 2017-12-31, the
challenger and seasonal naive refit / scored on each, the challenger's intervals calibrated
on each window's training days). Prints each command's wall time and the backtest report:
per-method WAPE by horizon bucket and the interval coverage over the three windows.

    .venv/bin/python benchmarks/backtest_cli.py [--workdir /tmp/sf-backtest] [--n-windows 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    import duckdb
    from accuracy import DEFAULT_REAL, REAL_CONTRACT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-csv", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sf-backtest"))
    parser.add_argument("--n-windows", type=int, default=3)
    args = parser.parse_args(argv)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    db = work / "warehouse.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute(
        """
        CREATE TABLE daily_sales_features AS
        SELECT CAST(store AS VARCHAR) || '|' || CAST(item AS VARCHAR) AS series_id,
               CAST(store AS VARCHAR) AS store_id, CAST(item AS VARCHAR) AS item_id,
               CAST(date AS DATE) AS date, CAST(sales AS DOUBLE) AS sales,
               FALSE AS is_gap_filled
        FROM read_csv(?, header = true) ORDER BY series_id, date
        """,
        [str(args.real_csv)],
    )
    con.close()
    (work / "contract.json").write_text(json.dumps(REAL_CONTRACT))
    common = [
        "--data-uri", f"duckdb://{db}?table=daily_sales_features",
        "--contract", str(work / "contract.json"), "--cutoff-date", "2017-12-31",
        "--horizon", "28",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    steps = {
        "train": ["train", *common, "--model-dir", str(work / "model")],
        "backtest": [
            "backtest", *common, "--model-dir", str(work / "model"),
            "--n-windows", str(args.n_windows), "--output-dir", str(work / "bt"),
        ],
    }  # fmt: skip
    for name, cmd in steps.items():
        began = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "trainer", *cmd], env=env, capture_output=True, text=True
        )
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        print(f"{name}: {time.perf_counter() - began:.1f}s")
    report = json.loads((work / "bt" / "backtest.json").read_text())
    gate = json.loads((work / "bt" / "gate.json").read_text())
    print("windows:", ", ".join(f"{w['first_day']}..{w['last_day']}" for w in report["windows"]))
    for method, item in report["methods"].items():
        buckets = ", ".join(f"{b} {v['wape']:.4f}" for b, v in item["buckets"].items())
        print(f"{method}: WAPE {buckets}")
        for level, cov in (item.get("coverage") or {}).items():
            print(f"  coverage {level}%: " + ", ".join(f"{b} {v:.3f}" for b, v in cov.items()))
    print(f"gate passed: {gate['passed']} ({gate['reason']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
