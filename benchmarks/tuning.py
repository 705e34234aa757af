"""Does tuning help? A nested comparison of a local study's best params with the defaults.

Nested: the study (``sales_forecast.platforms.local_tuning.LocalTuner``, the tuning DAG's own
runner: Optuna, real ``python -m trainer train`` trials reporting through ``hypertune``) tunes
with the cut-off ``horizon`` days before the data's last day, so every trial is scored on the
window before that. Then the best params and the defaults are each trained once with the
cut-off on the last day: the trainer's validation fits on the days up to ``last - horizon`` and
scores the last ``horizon`` days, which no trial ever saw. Both scores, the study's own best
value and the wall times are printed.

Datasets: ``demo`` (``datagen.generate_retail`` through the DAG's own SQL features,
``benchmarks.accuracy.daily_panel``) and ``real`` (``../shared/data/store_item_2017.csv``,
optionally its first ``--real-series`` series).

    .venv/bin/python benchmarks/tuning.py                          # both, 20 trials each
    .venv/bin/python benchmarks/tuning.py --dataset demo --trials 8 --parallel 2
    .venv/bin/python benchmarks/tuning.py --dataset real --real-series 50 --trials 6
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "plugins")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from sales_forecast.platforms.local_tuning import LocalTuner, require_trials  # noqa: E402
from sales_forecast.tuning import trial_args  # noqa: E402

from benchmarks.accuracy import DEFAULT_REAL, REAL_CONTRACT, daily_panel  # noqa: E402


def demo_panel(n_stores: int, n_items: int, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    from sales_forecast.contract import load_contract

    from datagen.retail import generate_retail

    history = generate_retail(
        n_stores=n_stores, n_items=n_items, start="2023-01-01", end="2024-12-31", seed=seed
    ).history
    return daily_panel(history, "retail"), load_contract("retail").to_dict()


def real_panel(path: Path, n_series: int | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    raw = pd.read_csv(path, dtype={"store": str, "item": str})
    df = raw.rename(columns={"store": "store_id", "item": "item_id"})
    if n_series:
        keys = df[["store_id", "item_id"]].drop_duplicates().head(n_series)
        df = df.merge(keys, on=["store_id", "item_id"])
    df["sales"] = df["sales"].astype(float)
    return df, dict(REAL_CONTRACT)


def train(
    folder: Path, data: Path, contract: Path, cutoff: str, horizon: int, params: dict[str, Any]
) -> dict[str, Any]:
    """One real trainer run; its validation scores (metrics.json's overall)."""
    args = trial_args(
        ["--data-uri", str(data), "--contract", str(contract), "--cutoff-date", cutoff,
         "--horizon", str(horizon)],
        params,
        "mae",
        model_dir=str(folder / "model"),
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLOUD_ML_HP_METRIC_FILE": str(folder / "m")}
    subprocess.run(
        [sys.executable, "-m", "trainer", "train", *args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    metrics: dict[str, Any] = json.loads((folder / "model" / "metrics.json").read_text())
    return dict(metrics["overall"])


def nested(
    name: str,
    panel: pd.DataFrame,
    contract_doc: dict[str, Any],
    *,
    horizon: int,
    trials: int,
    parallel: int,
    metric: str,
    timeout_s: float,
    workdir: Path,
) -> dict[str, Any]:
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "panel.csv"
    panel.to_csv(data, index=False)
    contract = folder / "contract.json"
    contract.write_text(json.dumps(contract_doc))
    date = contract_doc["date_column"]
    last = pd.Timestamp(panel[date].max()).date()
    inner = (pd.Timestamp(last) - pd.Timedelta(days=horizon)).date()
    base = [
        "--data-uri", str(data), "--contract", str(contract), "--cutoff-date", inner.isoformat(),
        "--horizon", str(horizon), "--num-threads", "1",
    ]  # fmt: skip
    tuner = LocalTuner(
        python=sys.executable,
        src=REPO,
        tuning_dir=folder / "tuning",
        study=f"bench-{name}",
        train_args=base,
        metric=metric,
        trials=trials,
        parallel=parallel,
        trial_timeout_s=timeout_s,
    )
    start = time.monotonic()
    outcome = tuner.run()
    tune_s = time.monotonic() - start
    best = require_trials(outcome)
    start = time.monotonic()
    default = train(folder / "default", data, contract, last.isoformat(), horizon, {})
    tuned = train(folder / "tuned", data, contract, last.isoformat(), horizon, best.params)
    score_s = time.monotonic() - start
    return {
        "dataset": name,
        "series": int(panel.groupby(contract_doc["series_keys"]).ngroups),
        "last_day": last.isoformat(),
        "study_cutoff": inner.isoformat(),
        "trials": outcome.counts,
        "best_trial": best.trial,
        "best_params": best.params,
        f"study_best_{metric}": best.value,
        "held_out_default": {k: default[k] for k in ("mae", "wape")},
        "held_out_tuned": {k: tuned[k] for k in ("mae", "wape")},
        "tune_seconds": round(tune_s, 1),
        "score_seconds": round(score_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", choices=["demo", "real", "both"], default="both")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--metric", choices=["mae", "wape"], default="wape")
    ap.add_argument("--horizon", type=int, default=28)
    ap.add_argument("--trial-timeout", type=float, default=1800.0)
    ap.add_argument("--demo-stores", type=int, default=3)
    ap.add_argument("--demo-items", type=int, default=4)
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL)
    ap.add_argument("--real-series", type=int, default=0, help="first N series only (0: all)")
    ap.add_argument("--workdir", type=Path, help="keep the studies here (default: a temp dir)")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="sf-tuning-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        todo = ["demo", "real"] if args.dataset == "both" else [args.dataset]
        for name in todo:
            panel, contract = (
                demo_panel(args.demo_stores, args.demo_items, seed=7)
                if name == "demo"
                else real_panel(args.real, args.real_series or None)
            )
            result = nested(
                name,
                panel,
                contract,
                horizon=args.horizon,
                trials=args.trials,
                parallel=args.parallel,
                metric=args.metric,
                timeout_s=args.trial_timeout,
                workdir=workdir,
            )
            results.append(result)
            d, t = result["held_out_default"], result["held_out_tuned"]
            print(
                f"{name}: {result['series']} series, study {result['trials']} "
                f"(cut-off {result['study_cutoff']}), held-out {args.horizon} days to "
                f"{result['last_day']}: default WAPE {d['wape']:.4f} MAE {d['mae']:.4f} | "
                f"tuned WAPE {t['wape']:.4f} MAE {t['mae']:.4f}; tuning "
                f"{result['tune_seconds']:.0f} s, scoring {result['score_seconds']:.0f} s",
                flush=True,
            )
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
