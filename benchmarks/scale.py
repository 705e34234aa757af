"""Scale benchmark: the local pipeline's steps on 1k, 10k and 30k series of daily data.

For each size the demo generator writes a retail CSV (``datagen.write_retail_csv``, streamed
store by store), then every step runs as its own child process, exactly as the DAG's tasks
do, and the parent records its wall time and peak resident memory (``os.wait4`` rusage of
that child):

- ``load``: ``DuckDBWarehouse.load_csv_to_staging`` (DuckDB ``read_csv``, all-VARCHAR staging);
- ``validate``: ``validate.sql`` + ``quarantine.sql`` through ``DuckDBWarehouse.run_script``;
- ``merge``: ``merge_history.sql``;  ``features``: ``features.sql`` (the daily panel);
- ``train``: ``python -m trainer train`` (validation window + final fit with intervals, the
  DAG's train job);
- ``predict``: ``python -m trainer predict`` with the generator's future covariates file,
  writing ``daily_sales_forecasts``.

The growth factor of each step between consecutive sizes is printed next to it.

    .venv/bin/python benchmarks/scale.py                          # 1k, 10k, 30k
    .venv/bin/python benchmarks/scale.py --sizes 1k,10k --markdown --json scale.json

Sizes are ``<n>k`` series: 1k = 10 stores x 100 items, 10k = 50 x 200, 30k = 100 x 300, each
from 2022-09-01 to 2025-12-31 (3 years and 4 months: 20% of the items launch mid-history and
have no rows before, so this is what gives the ~1M / 11M / 33M rows of "3 years of 1k / 10k /
30k series").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Every day of the file is on or before the run's cut-off.
FAR_CUTOFF = datetime.date(9999, 12, 30)

REPO = Path(__file__).resolve().parents[1]
SIZES = {"1k": (10, 100), "10k": (50, 200), "30k": (100, 300)}
START, END, HORIZON = "2022-09-01", "2025-12-31", 28
DATASET = "sales_forecast"
STAGES = ("generate", "load", "validate", "merge", "features", "train", "predict")


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), str(REPO / "plugins")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def _run(cmd: list[str], log_path: Path) -> dict[str, Any]:
    """Run one step as a child process; its wall time and peak RSS (from wait4's rusage)."""
    began = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log_path.read_text().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd[:4])} failed ({code}):\n" + "\n".join(tail))
    return {
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,  # Linux reports KiB
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


# ----------------------------------------------------------------------------- child stages


def _warehouse(workdir: Path) -> tuple[Any, Any]:
    from sales_forecast.config import Settings
    from sales_forecast.contract import load_contract
    from sales_forecast.platforms.local import DuckDBWarehouse

    # The DAG's own cap (SF_DUCKDB_MEMORY_LIMIT, default 50% of RAM), as its tasks use it.
    limit = Settings().duckdb_memory_limit
    return DuckDBWarehouse(workdir / "warehouse.duckdb", DATASET, limit), load_contract("retail")


def stage(name: str, workdir: Path) -> dict[str, Any]:
    """One SQL step in this process (the parent measures it)."""
    wh, contract = _warehouse(workdir)
    csv = str(workdir / "sales.csv")
    run_id = "scale-benchmark"
    if name == "load":
        with open(csv) as fh:
            header = fh.readline().strip().split(",")
        wh.run_script("create_tables", contract)
        out = wh.load_csv_to_staging(csv, header, contract)
        return {"rows": out.rows, "malformed": out.malformed}
    if name == "validate":
        wh.run_script("validate", contract, cutoff=FAR_CUTOFF)
        wh.run_script("quarantine", contract, run_id=run_id, source_file=csv)
        (row,) = wh.query(
            f"SELECT COUNT(*) AS n, COUNTIF(reject_reason IS NOT NULL) AS bad "
            f"FROM {wh.tables.staging_checked}"
        )
        return {"rows": int(row["n"]), "rejected": int(row["bad"])}
    if name == "merge":
        wh.run_script("merge_history", contract, run_id=run_id)
        (row,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.sales_history}")
        return {"rows": int(row["n"])}
    if name == "features":
        wh.run_script("features", contract, cutoff=FAR_CUTOFF)
        (row,) = wh.query(
            f"SELECT COUNT(*) AS n, COUNT(DISTINCT series_id) AS s "
            f"FROM {wh.tables.daily_sales_features}"
        )
        with open(workdir / "contract.json", "w") as fh:
            json.dump(contract.to_dict(), fh)
        return {"rows": int(row["n"]), "series": int(row["s"])}
    raise SystemExit(f"unknown stage {name}")


# ----------------------------------------------------------------------------- parent


def run_size(size: str, root: Path, regenerate: bool, skip: set[str]) -> dict[str, Any]:
    stores, items = SIZES[size]
    workdir = root / size
    workdir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    me = str(Path(__file__).resolve())
    db = workdir / "warehouse.duckdb"
    table = f"duckdb://{db}?table={DATASET}.daily_sales_features"
    out: dict[str, Any] = {"size": size, "stores": stores, "items": items, "stages": {}}
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    commands = {
        "generate": [
            py, "-m", "datagen", "retail", "--out", str(workdir / "sales.csv"),
            "--future-out", str(workdir / "future.csv"), "--stores", str(stores),
            "--items", str(items), "--start", START, "--end", END,
            "--future-days", str(HORIZON),
        ],
        **{
            s: [py, me, "_stage", s, "--workdir", str(workdir)] for s in STAGES[1:5]
        },
        "train": [
            py, "-m", "trainer", "train", "--data-uri", table,
            "--contract", str(workdir / "contract.json"), "--cutoff-date", END,
            "--horizon", str(HORIZON), "--model-dir", str(workdir / "model"),
        ],
        "predict": [
            py, "-m", "trainer", "predict", "--model-dir", str(workdir / "model"),
            "--cutoff-date", END, "--data-uri", table,
            "--future-uri", str(workdir / "future.csv"),
            "--output-uri", f"duckdb://{db}?table={DATASET}.daily_sales_forecasts",
            "--run-id", "scale-benchmark", "--model-version", "1",
        ],
    }  # fmt: skip
    for name in STAGES:
        if name in skip:
            continue
        if name == "generate" and (workdir / "sales.csv").exists() and not regenerate:
            continue
        if name == "load" and db.exists():
            db.unlink()  # every run starts from an empty warehouse
        print(f"[{size}] {name} ...", file=sys.stderr, flush=True)
        result = _run(commands[name], logs / f"{name}.log")
        if name in STAGES[1:5]:
            lines = (logs / f"{name}.log").read_text().strip().splitlines()
            result.update(json.loads(lines[-1]))
        if name in ("train", "predict"):
            lines = (logs / f"{name}.log").read_text().strip().splitlines()
            summary = json.loads(lines[-1])
            if name == "train":
                meta = json.loads((workdir / "model" / "forecaster.json").read_text())
                result["training"] = meta.get("training")
                result["n_series"] = summary.get("n_series")
                result["rows"] = meta.get("n_rows")
            else:
                result["rows"] = summary.get("n_rows")
        print(
            f"[{size}] {name}: {result['seconds']:.1f}s, peak {result['peak_rss_mb']:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
        out["stages"][name] = result
    return out


def render(results: list[dict[str, Any]], markdown: bool) -> str:
    head = ["step"]
    for r in results:
        head += [f"{r['size']} time s", f"{r['size']} peak MB"]
    head.append("growth (time, memory)")
    names = [s for s in STAGES if any(s in r["stages"] for r in results)]
    rows = []
    for s in names:
        row = [s]
        for r in results:
            st = r["stages"].get(s)
            row += ["" if st is None else f"{st['seconds']:.1f}"]
            row += ["" if st is None else f"{st['peak_rss_mb']:.0f}"]
        growth = []
        for a, b in zip(results, results[1:], strict=False):
            sa, sb = a["stages"].get(s), b["stages"].get(s)
            if sa and sb:
                growth.append(
                    f"{a['size']}->{b['size']}: x{sb['seconds'] / sa['seconds']:.1f}, "
                    f"x{sb['peak_rss_mb'] / sa['peak_rss_mb']:.1f}"
                )
        row.append("; ".join(growth))
        rows.append(row)
    rows_line = ["rows (panel)"]
    for r in results:
        rows_line += [str(r["stages"].get("features", {}).get("rows", "")), ""]
    rows_line.append("")
    rows.insert(0, rows_line)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), *(fmt.format(*r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_stage":
        p = argparse.ArgumentParser()
        p.add_argument("stage")
        p.add_argument("--workdir", type=Path, required=True)
        a = p.parse_args(argv[1:])
        print(json.dumps(stage(a.stage, a.workdir)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1k,10k,30k", help=f"comma list of {list(SIZES)}")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sales-forecast-scale"))
    parser.add_argument("--regenerate", action="store_true", help="rewrite existing CSVs")
    parser.add_argument("--skip", default="", help="comma list of steps to skip")
    parser.add_argument(
        "--duckdb-memory-limit",
        help="e.g. 6GB: DuckDB's cap in the SQL steps (default: SF_DUCKDB_MEMORY_LIMIT, or the "
        "DAG's default of 50%% of RAM)",
    )
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.duckdb_memory_limit:
        os.environ["SF_DUCKDB_MEMORY_LIMIT"] = args.duckdb_memory_limit  # the children read it
    results = []
    for size in sizes:
        results.append(run_size(size, args.workdir, args.regenerate, skip))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
    print(render(results, args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
