"""Print what the latest local run produced: ``python -m sales_forecast.report``.

Reads the DuckDB warehouse read-only and the local registry, so it is safe to run while a DAG
run or the serving app is active.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from sales_forecast import decisions
from sales_forecast.config import get_settings
from sales_forecast.contract import load_contract_file
from sales_forecast.platforms.local import LocalModelRegistry, duckdb_connect
from sales_forecast.sources import row_word
from sf_contract.constants import KEY_SEPARATOR
from sf_contract.schema import ContractError, check_identifier

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        default=None,
        help="the DAG's dataset value: a contract name, or (this is a local tool) a contract "
        "file's path (default: the default contract)",
    )
    parser.add_argument(
        "--series", help="show one series' latest forecasts, keys joined by / or | (S01/I001)"
    )
    parser.add_argument("--csv", help="also write the latest run's forecasts to this CSV file")
    parser.add_argument(
        "--rejected", type=int, default=5, metavar="N", help="rejected rows to list (default 5)"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        contract_name = _contract_name(args.dataset or settings.default_dataset)
    except ContractError as exc:
        print(exc)
        return 2
    suffix = settings.namespace(contract_name)
    db = settings.warehouse_path
    if not db.exists():
        print(f"No warehouse at {db} yet: run `make demo` first.")
        return 1
    ds = '"' + settings.dataset + suffix + '"'  # checked identifiers, quoted all the same
    with duckdb_connect(db, read_only=True) as con:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [settings.dataset + suffix],
            ).fetchall()
        }
        if "daily_sales_forecasts" not in tables:
            print(f"No forecasts in {db} yet.")
            return 1
        run_id, created = con.execute(
            f"SELECT run_id, max(created_at) "
            f"FROM {ds}.daily_sales_forecasts GROUP BY run_id ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        by_model = con.execute(
            f"SELECT model_version, count(DISTINCT series_id) FROM {ds}.daily_sales_forecasts "
            "WHERE run_id = ? GROUP BY 1 ORDER BY 2 DESC, 1",
            [run_id],
        ).fetchall()
        model_version = ", ".join(f"{v} ({n} series)" for v, n in by_model)
        n, series, first, last, origin = con.execute(
            f"SELECT count(*), count(DISTINCT series_id), min(date), max(date), "
            f"max(cutoff_date) FROM {ds}.daily_sales_forecasts WHERE run_id = ?",
            [run_id],
        ).fetchone()
        print(f"Warehouse: {db}")
        print(f"Latest run: {run_id}")
        print(
            f"  daily_sales_forecasts: {n} rows = {series} series x {first}..{last}, "
            f"model {model_version}"
        )
        # cutoff_date is the forecasts' origin: the last day of the data they start from.
        age = (date.today() - origin).days if isinstance(origin, date) else None
        print(f"  data ends {origin}" + (f", {age} days before today" if age else ""))
        sample = con.execute(
            f"SELECT series_id, date, round(forecast, 2), round(lower_80, 2), round(upper_80, 2) "
            f"FROM {ds}.daily_sales_forecasts WHERE run_id = ? ORDER BY series_id, date LIMIT 5",
            [run_id],
        ).fetchall()
        print("  first rows (series, date, forecast, 80% interval):")
        for s, d, f, lo, hi in sample:
            print(f"    {s:<14} {d}  {f:>8}  [{lo}, {hi}]")
        if args.series:
            wanted = args.series.replace("/", KEY_SEPARATOR)
            rows = con.execute(
                f"SELECT date, model_version, round(forecast, 2), round(lower_80, 2), "
                f"round(upper_80, 2) FROM {ds}.daily_sales_forecasts "
                "WHERE run_id = ? AND series_id = ? ORDER BY date",
                [run_id, wanted],
            ).fetchall()
            if not rows:
                print(f"  no forecasts for series {wanted!r} in this run")
            else:
                print(f"  series {wanted} (date, model, forecast, 80% interval):")
                for d, v, f, lo, hi in rows:
                    print(f"    {d}  {v:<12} {f:>8}  [{lo}, {hi}]")
        if args.csv:
            out = Path(args.csv)
            con.execute(
                f"COPY (SELECT * FROM {ds}.daily_sales_forecasts WHERE run_id = ? "
                "ORDER BY series_id, date) TO ? (HEADER, DELIMITER ',')",
                [run_id, str(out)],
            )
            print(f"  wrote this run's forecasts to {out}")
        if "rejected_rows" in tables:
            (rejected,) = con.execute(
                f"SELECT count(*) FROM {ds}.rejected_rows WHERE run_id = ?", [run_id]
            ).fetchone()
            print(f"  rejected_rows for this run: {rejected}")
            for src, line, reason in con.execute(
                f"SELECT source_file, source_row, reason FROM {ds}.rejected_rows "
                "WHERE run_id = ? ORDER BY source_row LIMIT ?",
                [run_id, max(0, args.rejected)],
            ).fetchall():
                print(f"    {src} {row_word(str(src))} {line}: {reason}")
        feats = con.execute(
            f"SELECT count(*), count(DISTINCT series_id) FROM {ds}.daily_sales_features"
        ).fetchone()
        print(f"  daily_sales_features: {feats[0]} rows, {feats[1]} series")
    run_dir = settings.runs_root
    from sales_forecast.run_context import run_key as make_run_key

    gates = [p for p in [run_dir / make_run_key(run_id) / "backtest" / "gate.json"] if p.exists()]
    if gates:
        gate = json.loads(gates[-1].read_text())
        print(
            f"Gate ({gate.get('metric')}): {'PASSED' if gate.get('passed') else 'FAILED'}: "
            f"challenger {_round(gate.get('challenger'))}, "
            f"seasonal naive {_round(gate.get('baseline'))}, "
            f"production {_round(gate.get('champion'))} (lower is better)"
        )
        print(f"  {gate.get('reason')}")
    registry = LocalModelRegistry(settings.models_root, settings.model_name + suffix)
    versions = registry.list_versions()
    prod = registry.get_by_alias("production")
    print(
        f"Registry {Path(registry.index_path)}: {len(versions)} version(s); "
        f"production = {('v' + prod.version + ' at ' + prod.uri) if prod else 'none'}"
    )
    if prod:
        meta_path = Path(prod.uri) / "metadata.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        train_end = meta.get("train_end")
        age, stale = decisions.model_freshness(train_end, date.today(), settings.max_model_age_days)
        print(
            f"  production data ends {train_end or '?'}"
            + (f" ({age} days ago)" if age is not None else "")
            + (f"; STALE: {stale}" if stale else "")
        )
    return 0


def _round(value: object) -> object:
    return round(value, 3) if isinstance(value, float) else value


def _contract_name(dataset: str) -> str:
    """The contract name a ``--dataset`` value means: a name as is, a file by its contract."""
    if dataset.endswith((".yaml", ".yml", ".json")) or "/" in dataset:
        return load_contract_file(dataset).name
    return check_identifier(dataset, "--dataset")


if __name__ == "__main__":
    sys.exit(main())
