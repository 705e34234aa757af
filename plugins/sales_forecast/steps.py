"""What each task of the daily DAG does, written against the platform interfaces.

These functions never import Airflow: the DAG's task wrappers turn a :class:`DataError` into a
failed task without retries (retrying a bad file does not fix it) and :class:`SkipStep` into a
skipped task.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sales_forecast.config import Settings
from sales_forecast.contract import Contract, load_contract
from sales_forecast.platforms.base import Platform

__all__ = [
    "DataError",
    "RunContext",
    "SkipStep",
    "backtest_and_gate",
    "build_features",
    "check_header",
    "deploy",
    "forecast",
    "load_run_contract",
    "load_to_staging",
    "read_csv_header",
    "register",
    "train",
    "validate",
]

log = logging.getLogger(__name__)

PRODUCTION_ALIAS = "production"


class DataError(Exception):
    """The input is wrong (not the code, not the infrastructure): fail now, do not retry."""


class SkipStep(Exception):
    """The step has nothing to do in this run (e.g. deploy not enabled)."""


@dataclass(frozen=True)
class RunContext:
    run_id: str
    run_key: str  # run_id made safe for folder names and labels
    run_date: date  # the run's logical date as a calendar date (UTC)
    cutoff_date: date  # the last day of data this run may use
    input_uri: str
    future_uri: str | None
    dataset: str
    horizon: int
    enable_deploy: bool
    run_dir: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_date"] = self.run_date.isoformat()
        d["cutoff_date"] = self.cutoff_date.isoformat()
        return d


def run_key(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("_")[:200]


def make_run_context(
    *,
    run_id: str,
    logical_date: datetime | date,
    params: dict[str, Any],
    settings: Settings,
    runs_root: str,
) -> RunContext:
    """Build the run's context from the DAG run's id, logical date and (rendered) params.

    Airflow's logical date is a UTC timestamp; the warehouse has calendar dates. The conversion
    happens here, once: a run at 2024-03-10T00:00Z is the run of 2024-03-10, and by default it
    uses data up to and including the day before (the last complete day).
    """
    if isinstance(logical_date, datetime):
        if logical_date.tzinfo is None:
            raise ValueError("logical_date must be timezone-aware")
        run_date = logical_date.astimezone(UTC).date()
    else:
        run_date = logical_date
    cutoff_raw = str(params.get("cutoff_date") or "").strip()
    if cutoff_raw:
        try:
            cutoff = date.fromisoformat(cutoff_raw)
        except ValueError:
            raise DataError(f"param cutoff_date={cutoff_raw!r} is not a YYYY-MM-DD date") from None
    else:
        cutoff = run_date - timedelta(days=1)
    try:
        raw_h = params.get("horizon")
        horizon = int(settings.default_horizon if raw_h in (None, "") else raw_h)
    except (TypeError, ValueError):
        raise DataError(f"param horizon={params.get('horizon')!r} is not an integer") from None
    if not 1 <= horizon <= 366:
        raise DataError(f"param horizon={horizon} is out of range (1..366 days)")
    input_uri = str(params.get("input_uri") or settings.default_input_uri).strip()
    future_uri = str(params.get("future_uri") or "").strip() or None
    key = run_key(run_id)
    return RunContext(
        run_id=run_id,
        run_key=key,
        run_date=run_date,
        cutoff_date=cutoff,
        input_uri=input_uri,
        future_uri=future_uri,
        dataset=str(params.get("dataset") or settings.default_dataset).strip(),
        horizon=horizon,
        enable_deploy=bool(params.get("enable_deploy", False)),
        run_dir=f"{runs_root.rstrip('/')}/{key}",
    )


# ---------------------------------------------------------------- small file helpers (fsspec)


def _open(uri: str, mode: str = "r") -> Any:
    import fsspec

    return fsspec.open(uri, mode, encoding="utf-8" if "b" not in mode else None).open()


def _exists(uri: str) -> bool:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return fs.exists(path)


def _write_json(uri: str, data: Any) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "w") as fh:
        fh.write(json.dumps(data, indent=2, sort_keys=True, default=str))


def _read_json(uri: str) -> Any:
    with _open(uri) as fh:
        return json.load(fh)


def read_csv_header(uri: str) -> list[str]:
    """The header row of a CSV, with clear errors for a missing, empty or header-only file."""
    if not _exists(uri):
        raise DataError(f"{uri}: input file not found")
    with _open(uri, "rb") as fh:
        head = fh.read(1 << 16)
        second_line_present = head.count(b"\n") >= 1 and bool(head.split(b"\n", 1)[1].strip())
    if not head.strip():
        raise DataError(f"{uri}: the file is empty (no header, no rows)")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{uri}: line 1: not UTF-8 text ({exc.reason})") from None
    first_line = text.splitlines()[0]
    header = next(csv.reader(io.StringIO(first_line)))
    if not second_line_present:
        raise DataError(f"{uri}: the file has a header but no data rows")
    return [h.strip() for h in header]


def check_header(header: list[str], contract: Contract, uri: str) -> None:
    """The CSV's columns must be exactly the contract's (any order)."""
    problems = []
    blanks = [i + 1 for i, h in enumerate(header) if not h]
    if blanks:
        problems.append(f"empty column name at position(s) {blanks}")
    dupes = sorted({h for h in header if h and header.count(h) > 1})
    if dupes:
        problems.append(f"duplicate columns {dupes}")
    missing = [c for c in contract.column_names if c not in header]
    if missing:
        problems.append(f"missing columns {missing}")
    unknown = [h for h in header if h and h not in contract.column_names]
    if unknown:
        problems.append(f"unknown columns {unknown}")
    if problems:
        raise DataError(
            f"{uri}: line 1 (header) does not match the {contract.name!r} contract: "
            + "; ".join(problems)
            + f". Expected columns: {contract.column_names}"
        )


# ---------------------------------------------------------------- the steps


def load_run_contract(ctx: RunContext) -> Contract:
    """The run's dataset contract (a clear data error when it cannot be loaded)."""
    from sales_forecast.contract import ContractError

    try:
        return load_contract(ctx.dataset)
    except ContractError as exc:
        raise DataError(str(exc)) from None


def load_to_staging(ctx: RunContext, platform: Platform) -> dict[str, Any]:
    contract = load_run_contract(ctx)
    _write_json(f"{ctx.run_dir}/contract.json", contract.to_trainer_json())
    _write_json(f"{ctx.run_dir}/run.json", ctx.to_dict())
    header = read_csv_header(ctx.input_uri)
    check_header(header, contract, ctx.input_uri)
    platform.warehouse.run_script("create_tables", contract)
    load = platform.warehouse.load_csv_to_staging(ctx.input_uri, header, contract)
    log.info(
        "loaded %s rows from %s into %s (%s malformed lines set aside)",
        load.rows,
        ctx.input_uri,
        load.table,
        load.malformed,
    )
    return {
        "table": load.table,
        "rows": load.rows,
        "malformed": load.malformed,
        "input_uri": ctx.input_uri,
    }


def validate(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    contract = load_run_contract(ctx)
    wh = platform.warehouse
    wh.run_script("validate", contract)
    wh.run_script("quarantine", contract, run_id=ctx.run_id, source_file=ctx.input_uri)
    (stats,) = wh.query(
        f"SELECT COUNT(*) AS staged, COUNTIF(reject_reason IS NOT NULL) AS rejected "
        f"FROM {wh.tables.staging_checked}"
    )
    (mal,) = wh.query(f"SELECT COUNT(*) AS n FROM {wh.tables.staging_malformed}")
    total = int(stats["staged"]) + int(mal["n"])
    rejected = int(stats["rejected"]) + int(mal["n"])
    accepted = total - rejected
    examples = wh.query(
        f"SELECT source_row, reason FROM {wh.tables.rejected_rows} "
        "WHERE run_id = @run_id ORDER BY source_row LIMIT 5",
        run_id=ctx.run_id,
    )
    summary = {
        "rows": total,
        "accepted": accepted,
        "rejected": rejected,
        "reject_fraction": round(rejected / total, 6) if total else 0.0,
    }
    where = "; ".join(f"{ctx.input_uri} line {e['source_row']}: {e['reason']}" for e in examples)
    if accepted == 0:
        raise DataError(f"{ctx.input_uri}: no valid rows ({rejected} rejected). {where}")
    if rejected / total > settings.max_reject_fraction:
        raise DataError(
            f"{ctx.input_uri}: {rejected} of {total} rows rejected "
            f"({rejected / total:.1%} > the {settings.max_reject_fraction:.0%} limit); nothing "
            f"was added to history. See table rejected_rows (run_id={ctx.run_id!r}). "
            f"First problems: {where}"
        )
    if rejected:
        log.warning("%s rows quarantined in rejected_rows; first: %s", rejected, where)
    log.info("validation: %s", summary)
    return summary


def build_features(ctx: RunContext, platform: Platform) -> dict[str, Any]:
    contract = load_run_contract(ctx)
    wh = platform.warehouse
    wh.run_script("merge_history", contract, run_id=ctx.run_id)
    wh.run_script("features", contract)
    date_col = f"`{contract.date_column}`"
    (stats,) = wh.query(
        f"SELECT COUNT(*) AS rows_total, COUNTIF({date_col} <= @cutoff) AS rows_in_window, "
        f"COUNT(DISTINCT IF({date_col} <= @cutoff, series_id, NULL)) AS series, "
        f"MIN({date_col}) AS first_date, MAX(IF({date_col} <= @cutoff, {date_col}, NULL)) "
        f"AS last_date FROM {wh.tables.daily_sales_features}",
        cutoff=ctx.cutoff_date,
    )
    if not stats["rows_in_window"]:
        raise DataError(
            f"no history on or before the cutoff date {ctx.cutoff_date} "
            f"(history starts {stats['first_date']}); nothing to train on"
        )
    last = stats["last_date"]
    if last is not None and (ctx.cutoff_date - last).days > 7:
        log.warning(
            "data is stale: its last day %s is %s days before the cutoff %s; forecasts start "
            "after %s",
            last,
            (ctx.cutoff_date - last).days,
            ctx.cutoff_date,
            last,
        )
    out = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in stats.items()}
    out["table"] = wh.table_uri("daily_sales_features")
    log.info("daily_sales_features: %s", out)
    return out


def _common_job_args(ctx: RunContext, platform: Platform) -> list[str]:
    return [
        "--data-uri",
        platform.warehouse.table_uri("daily_sales_features"),
        "--contract",
        f"{ctx.run_dir}/contract.json",
        "--cutoff-date",
        ctx.cutoff_date.isoformat(),
        "--horizon",
        str(ctx.horizon),
    ]


def train(ctx: RunContext, platform: Platform) -> dict[str, Any]:
    model_dir = f"{ctx.run_dir}/model"
    platform.runner.run(
        "train",
        [*_common_job_args(ctx, platform), "--model-dir", model_dir],
        env={"AIP_MODEL_DIR": model_dir, "AIP_CHECKPOINT_DIR": f"{ctx.run_dir}/checkpoints"},
        job_name=f"train-{ctx.run_key}",
    )
    metrics = _read_json(f"{model_dir}/metrics.json")
    return {"model_dir": model_dir, "metrics": metrics}


def backtest_and_gate(ctx: RunContext, platform: Platform, settings: Settings) -> dict[str, Any]:
    champion = platform.registry.get_by_alias(PRODUCTION_ALIAS)
    out_dir = f"{ctx.run_dir}/backtest"
    args = [
        *_common_job_args(ctx, platform),
        "--model-dir",
        f"{ctx.run_dir}/model",
        "--n-windows",
        str(settings.backtest_windows),
        "--metric",
        settings.gate_metric,
        "--min-improvement",
        str(settings.gate_min_improvement),
        "--output-dir",
        out_dir,
        "--results-uri",
        platform.warehouse.table_uri("backtest_results"),
        "--run-id",
        ctx.run_id,
    ]
    if champion is not None:
        if champion.run_id == ctx.run_id:
            # A re-run of the run that produced the production model: compare with its own
            # predecessor is meaningless; the gate compares against the baseline only.
            log.info("production v%s came from this very run", champion.version)
        else:
            args += ["--champion-model-dir", champion.uri]
    platform.runner.run("backtest", args, env={}, job_name=f"backtest-{ctx.run_key}")
    gate = _read_json(f"{out_dir}/gate.json")
    gate["champion_version"] = champion.version if champion else None
    _write_json(f"{out_dir}/gate.json", gate)
    log.info(
        "gate %s on %s: challenger=%s baseline=%s champion=%s (%s)",
        "PASSED" if gate["passed"] else "FAILED",
        gate.get("metric"),
        gate.get("challenger"),
        gate.get("baseline"),
        gate.get("champion"),
        gate.get("reason"),
    )
    return gate


def forecast(ctx: RunContext, platform: Platform) -> dict[str, Any]:
    gate = _read_json(f"{ctx.run_dir}/backtest/gate.json")
    champion = platform.registry.get_by_alias(PRODUCTION_ALIAS)
    # The forecasts table always holds the best model's forecasts: this run's challenger when it
    # passed the gate (or there is nothing in production), the production model otherwise.
    # On a backfill the production model may have been trained past this run's cutoff: using
    # it would leak later data into the forecast, so the challenger is used instead.
    use_champion = (
        not gate["passed"]
        and champion is not None
        and str(_read_json(f"{champion.uri}/metadata.json").get("train_end", "9999"))
        <= ctx.cutoff_date.isoformat()
    )
    if use_champion:
        model_dir, model_version = champion.uri, champion.version
    else:
        model_dir, model_version = f"{ctx.run_dir}/model", f"candidate:{ctx.run_key}"
    args = [
        "--model-dir",
        model_dir,
        "--data-uri",
        platform.warehouse.table_uri("daily_sales_features"),
        "--cutoff-date",
        ctx.cutoff_date.isoformat(),
        "--horizon",
        str(ctx.horizon),
        "--output-uri",
        platform.warehouse.table_uri("daily_sales_forecasts"),
        "--run-id",
        ctx.run_id,
        "--model-version",
        model_version,
    ]
    if ctx.future_uri:
        if not _exists(ctx.future_uri):
            raise DataError(f"{ctx.future_uri}: future covariates file not found")
        args += ["--future-uri", ctx.future_uri]
    platform.runner.run("predict", args, env={}, job_name=f"predict-{ctx.run_key}")
    wh = platform.warehouse
    (stats,) = wh.query(
        f"SELECT COUNT(*) AS rows_written, COUNT(DISTINCT series_id) AS series, "
        f"MIN(date) AS first_date, MAX(date) AS last_date "
        f"FROM {wh.tables.daily_sales_forecasts} WHERE run_id = @run_id",
        run_id=ctx.run_id,
    )
    if stats["rows_written"] != stats["series"] * ctx.horizon:
        raise RuntimeError(
            f"forecast wrote {stats['rows_written']} rows for {stats['series']} series and a "
            f"{ctx.horizon}-day horizon: some series or days are missing"
        )
    out = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in stats.items()}
    out.update(model_version=model_version, table=wh.table_uri("daily_sales_forecasts"))
    log.info("forecasts: %s", out)
    return out


def register(ctx: RunContext, platform: Platform) -> dict[str, Any]:
    gate = _read_json(f"{ctx.run_dir}/backtest/gate.json")
    if not ctx.enable_deploy:
        raise SkipStep("enable_deploy is false for this run: the model is not registered")
    if not gate["passed"]:
        raise SkipStep(f"the quality gate did not pass: {gate.get('reason')}")
    model_dir = f"{ctx.run_dir}/model"
    metadata = _read_json(f"{model_dir}/metadata.json")
    version = platform.registry.register(
        model_dir,
        run_id=ctx.run_id,
        metrics=_read_json(f"{model_dir}/metrics.json"),
        extra={
            "gate": gate,
            "dataset": ctx.dataset,
            "training_window": {
                k: metadata.get(k) for k in ("train_start", "train_end") if k in metadata
            },
        },
    )
    log.info("registered %s version %s at %s", version.name, version.version, version.uri)
    return {"model": version.name, "version": version.version, "uri": version.uri}


def deploy(ctx: RunContext, platform: Platform) -> dict[str, Any]:
    if not ctx.enable_deploy:
        raise SkipStep("enable_deploy is false for this run")
    versions = [v for v in platform.registry.list_versions() if v.run_id == ctx.run_id]
    if not versions:
        raise SkipStep("no model version was registered by this run")
    result = platform.deployer.deploy(versions[-1])
    log.info("deployed: %s", result)
    return result
