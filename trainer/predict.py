"""``predict``: forecast every series for the next days and write them, replacing the run."""

from __future__ import annotations

__all__ = ["default_meta_uri", "run_predict"]

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from trainer.errors import NoRowsError, TrainerError
from trainer.inputs import load_panel, read_future_csv
from trainer.io.files import fetch_dir, is_local, join_uri, write_json
from trainer.io.table_uri import parse_table_uri
from trainer.io.tables import write_table
from trainer.model import Forecaster

log = logging.getLogger(__name__)


def default_meta_uri(output_uri: str, run_id: str) -> str | None:
    """Where ``forecast_meta.json`` goes when not told: next to the output."""
    loc = parse_table_uri(output_uri)
    if loc.kind in ("parquet", "csv"):
        base = loc.location.rsplit("/", 1)[0] if "/" in loc.location else "."
        if is_local(loc.location):
            base = os.path.dirname(os.path.abspath(loc.location))
        return join_uri(base, "forecast_meta.json")
    if loc.kind == "duckdb":
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id)
        return join_uri(os.path.dirname(loc.location), f"forecast_meta_{safe}.json")
    return None  # BigQuery has no "next to"; pass --meta-uri


def run_predict(
    *,
    model_dir: str,
    cutoff_date: dt.date,
    output_uri: str,
    run_id: str,
    model_version: str,
    horizon: int | None = None,
    data_uri: str | None = None,
    future_uri: str | None = None,
    levels: Sequence[int] | None = None,
    meta_uri: str | None = None,
) -> dict[str, Any]:
    """Load a model, move it to the latest actuals, forecast every series and write the rows."""
    parse_table_uri(output_uri)  # fail on a bad output before any work
    with fetch_dir(model_dir) as local:
        fc = Forecaster.load(local)
    horizon = fc.config.horizon if horizon is None else int(horizon)
    if horizon < 1:
        raise TrainerError(f"horizon must be >= 1, got {horizon}")
    cutoff = pd.Timestamp(cutoff_date)
    if pd.Timestamp(fc.last_date) > cutoff:
        # A backfill as of `cutoff` must not use a model that has seen later days.
        raise TrainerError(
            f"the model was trained on data up to {fc.last_date}, after the cut-off "
            f"{cutoff_date}; use a model trained on or before the cut-off"
        )
    contract = fc.contract
    history = None
    if data_uri:
        # Only rows newer than the model matter (they move its state forward): read those,
        # not the whole history (tens of millions of rows on a big panel).
        since = (pd.Timestamp(fc.series["last_date"].min()) + pd.Timedelta(days=1)).date()
        if since <= cutoff_date:
            with contextlib.suppress(NoRowsError):
                history = load_panel(data_uri, contract, cutoff_date, since=since)
        if history is None:
            log.info("no rows after the model's training end %s in %s", fc.last_date, data_uri)
        else:
            log.info("moving the model forward over %d newer rows", len(history))
    else:
        log.info("no --data-uri: forecasting from the model's last day %s", fc.last_date)
    future = read_future_csv(future_uri, contract) if future_uri else None
    result = fc.forecast(horizon, future_df=future, new_history=history, levels=levels)
    frame = result.frame
    expected = len(fc.series_ids) * horizon
    if len(frame) != expected:
        raise RuntimeError(f"forecast has {len(frame)} rows, expected {expected}")
    if frame["forecast"].isna().any():
        raise RuntimeError("forecast contains missing values")
    created = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    keys = list(contract.series_keys)
    levels_used = sorted(int(c.split("_")[1]) for c in frame.columns if c.startswith("lower_"))
    interval_cols = [f"{side}_{lv}" for lv in levels_used for side in ("lower", "upper")]
    out = frame.assign(
        run_id=run_id,
        model_version=model_version,
        cutoff_date=pd.Timestamp(cutoff_date),
        created_at=created,
    )
    out = out[
        ["run_id", "model_version", "cutoff_date", "series_id", *keys, "date", "forecast"]
        + [*interval_cols, "created_at"]
    ]
    # One forecast per (cut-off, series, day): re-running the same day's forecast (a retry, a
    # second manual trigger) replaces it, while each day's forecast stays for accuracy tracking.
    write_table(
        out,
        output_uri,
        replace_where={"cutoff_date": cutoff_date},
        date_columns=["date", "cutoff_date"],
    )
    log.info("wrote %d forecast rows for %d series to %s", len(out), len(fc.series_ids), output_uri)
    if result.filled_total:
        log.info(
            "filled %d missing known-covariate values by their future_fill rules: %s",
            result.filled_total,
            result.filled_values,
        )
    for note in result.notes:
        log.warning(note)
    meta = {
        "run_id": run_id,
        "model_version": model_version,
        "model_dir": model_dir,
        "cutoff_date": cutoff_date.isoformat(),
        "output_uri": output_uri,
        "future_uri": future_uri,
        "horizon": horizon,
        "levels": levels_used,
        "n_series": len(fc.series_ids),
        "n_rows": len(out),
        "first_date": out["date"].min().date().isoformat(),
        "last_date": out["date"].max().date().isoformat(),
        "model_training_end": fc.last_date.isoformat(),
        "history_rows_applied": result.updated_rows,
        "filled_values": result.filled_values,
        "filled_total": result.filled_total,
        "ignored_future_rows": result.ignored_future_rows,
        "series_without_intervals": result.series_without_intervals,
        "notes": result.notes,
        "created_at": created.isoformat() + "Z",
    }
    target = meta_uri or default_meta_uri(output_uri, run_id)
    if target:
        write_json(meta, target)
    else:
        log.info("forecast meta (no --meta-uri for a BigQuery output): %s", meta)
    return {**meta, "meta_uri": target}
