"""``predict``: forecast every series for the next days and write them, replacing the run.

Up to three sources write one run's rows, each row labelled with the ``model_version`` that
made it:

1. the primary model (``model_dir``) forecasts every series it knows;
2. a fallback model (``fallback_model_dir``) the series of the data the primary does not know
   (those it knows);
3. seasonal naive (:func:`trainer.baselines.seasonal_naive_forecast`, label
   :data:`~trainer.baselines.SEASONAL_NAIVE_VERSION`) every series of the data no given model
   knows, or every series with ``seasonal_naive=True`` (no model at all).

"The data" is ``data_uri`` as of the cut-off, read from the models' training end on (the
rows that move their state forward) and, for seasonal naive, over the recent weeks its
forecast and intervals need: never the whole history.
"""

from __future__ import annotations

__all__ = ["default_meta_uri", "run_predict"]

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from sf_contract import Contract, series_id
from trainer.availability import zero_unavailable_days
from trainer.baselines import (
    SEASONAL_NAIVE_VERSION,
    seasonal_naive_forecast,
    seasonal_naive_history_days,
)
from trainer.config import TrainerConfig
from trainer.errors import NoRowsError, TrainerError
from trainer.inputs import load_panel, read_future_csv
from trainer.io.files import fetch_dir, is_local, join_uri, write_json
from trainer.io.table_uri import parse_table_uri
from trainer.io.tables import write_table
from trainer.model import Forecaster, ForecastResult
from trainer.panel import prepare_panel, series_state

log = logging.getLogger(__name__)

_DAY = pd.Timedelta(days=1)


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


@dataclass
class _Model:
    """A loaded model, the label its rows get, and what it forecasts in this run."""

    fc: Forecaster
    version: str
    source: str
    series_ids: list[str] | None = None  # None: every series it knows
    result: ForecastResult | None = None


def run_predict(
    *,
    cutoff_date: dt.date,
    output_uri: str,
    run_id: str,
    model_dir: str | None = None,
    model_version: str | None = None,
    fallback_model_dir: str | None = None,
    fallback_model_version: str | None = None,
    seasonal_naive: bool = False,
    contract: Contract | None = None,
    horizon: int | None = None,
    data_uri: str | None = None,
    future_uri: str | None = None,
    levels: Sequence[int] | None = None,
    meta_uri: str | None = None,
) -> dict[str, Any]:
    """Forecast every series (see the module docstring for who forecasts which) and write
    the rows; returns ``forecast_meta.json``'s content plus ``meta_uri``.

    ``contract`` is required with ``seasonal_naive`` (there is no model to carry it); with a
    model it is optional and must agree with the model's on the date, target and keys.
    """
    parse_table_uri(output_uri)  # fail on a bad output before any work
    _check_sources(
        model_dir, model_version, fallback_model_dir, fallback_model_version, seasonal_naive
    )
    models, contract = _load_sources(
        model_dir,
        model_version,
        fallback_model_dir,
        fallback_model_version,
        contract,
        data_uri,
        cutoff_date,
    )
    primary = models[0].fc if models else None
    defaults = primary.config if primary else TrainerConfig()
    horizon = defaults.horizon if horizon is None else int(horizon)
    if horizon < 1:
        raise TrainerError(f"horizon must be >= 1, got {horizon}")
    levels_used = sorted({int(lv) for lv in (defaults.levels if levels is None else levels)})
    if any(not 0 < lv < 100 for lv in levels_used):
        raise TrainerError(f"levels must be between 0 and 100, got {levels_used}")
    notes: list[str] = []

    recent = None
    if data_uri:
        recent = _read_recent(data_uri, contract, cutoff_date, models, horizon, notes)
    elif primary is not None:
        log.info("no --data-uri: forecasting from the model's last day %s", primary.last_date)
    data_ids = _ids(recent) if recent is not None else []

    # Who forecasts which series: the primary all it knows, the fallback the data's series the
    # primary does not know (those it knows), seasonal naive the rest.
    rest = sorted(set(data_ids) - set(primary.series_ids)) if primary else list(data_ids)
    if len(models) > 1:
        models[1].series_ids = models[1].fc.known_series(rest)
        rest = sorted(set(rest) - set(models[1].series_ids))
    naive_ids = rest
    naive_panel = None
    if naive_ids and recent is not None and data_uri:
        naive_panel = _naive_history(recent, naive_ids, data_uri, contract, horizon)
        shown = ", ".join(naive_ids[:5]) + (", ..." if len(naive_ids) > 5 else "")
        if models:
            notes.append(
                f"{len(naive_ids)} series no given model knows were forecast by seasonal "
                f"naive ({SEASONAL_NAIVE_VERSION}): {shown}"
            )

    future = None
    ignored_future = 0
    if future_uri:
        # Seasonal naive uses no covariates, but a day the file marks unavailable is 0 for it too.
        future = read_future_csv(future_uri, contract)
        if not models:
            notes.append(f"seasonal naive uses no known covariates from {future_uri}")
    future_by_model: list[pd.DataFrame | None] = [None] * len(models)
    if future is not None and models:
        future_by_model, ignored_future = _split_future(
            future, future_uri or "", contract, models, naive_ids
        )

    frames = []
    for model, fut in zip(models, future_by_model, strict=True):
        if model.series_ids is not None and not model.series_ids:
            notes.append(f"{model.version} ({model.source}) had no series to forecast")
            continue
        known = model.series_ids if model.series_ids is not None else model.fc.series_ids
        history = None
        if recent is not None:
            # The forecaster refuses history of series it does not know: give it only its own.
            mine = recent[recent["series_id"].isin(known)]
            history = mine if len(mine) else None
        model.result = model.fc.forecast(
            horizon,
            future_df=fut,
            new_history=history,
            levels=levels_used,
            series_ids=model.series_ids,
        )
        frames.append(model.result.frame.assign(model_version=model.version))
        for note in model.result.notes:
            notes.append(f"{model.version}: {note}" if len(models) > 1 else note)
    if naive_panel is not None:
        frames.append(_naive_frame(naive_panel, contract, horizon, levels_used))

    expected = set(data_ids) | set(primary.series_ids if primary else [])
    frame = _checked(frames, expected, horizon)
    # Every row label alike (models, fallback, seasonal naive): a closed day sells nothing.
    frame, unavailable_days = zero_unavailable_days(
        frame, future, contract, _future_ids(future, contract) if future is not None else None
    )
    if unavailable_days:
        log.info(
            "%d forecast days marked unavailable in the future file: forecast as 0",
            unavailable_days,
        )
    created = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    keys = list(contract.series_keys)
    interval_cols = [f"{side}_{lv}" for lv in levels_used for side in ("lower", "upper")]
    # The forecasts' origin is the last day of data they start from, not the run's calendar
    # cut-off: two runs on exports that end on different days are different forecasts and both
    # stay; the same data forecast again (a retry, a second trigger) replaces its rows.
    origin = (frame.groupby("series_id")["date"].min().max() - _DAY).date()
    out = frame.assign(run_id=run_id, cutoff_date=pd.Timestamp(origin), created_at=created)
    out = out[
        ["run_id", "model_version", "cutoff_date", "series_id", *keys, "date", "forecast"]
        + [*interval_cols, "created_at"]
    ]
    write_table(
        out,
        output_uri,
        replace_where={"cutoff_date": origin},
        date_columns=["date", "cutoff_date"],
    )
    if origin < cutoff_date:
        log.warning(
            "data ends %s, %d days before this run's cut-off %s: the forecasts start %s",
            origin,
            (cutoff_date - origin).days,
            cutoff_date,
            origin + dt.timedelta(days=1),
        )
    by_version = out.groupby("model_version", sort=True)["series_id"].nunique()
    counts = {str(k): int(v) for k, v in by_version.items()}
    n_series = int(out["series_id"].nunique())
    log.info(
        "wrote %d forecast rows for %d series to %s (%s)", len(out), n_series, output_uri, counts
    )
    results = [m.result for m in models if m.result is not None]
    filled: dict[str, int] = {}
    for res in results:
        for name, n in res.filled_values.items():
            filled[name] = filled.get(name, 0) + int(n)
    cells = sum(res.future_cells for res in results)
    if filled:
        # Per column: how many forecast-day values were given (future file, request) and how
        # many its future_fill rule supplied (climatology for weather without a forecast).
        log.info(
            "future covariates: %s (of %d forecast-day values per column)",
            ", ".join(f"{name}: {cells - n} given, {n} filled" for name, n in filled.items()),
            cells,
        )
    for note in notes:
        log.warning(note)
    missing_intervals = out[interval_cols].isna().any(axis=1) if interval_cols else None
    without = (
        int(out.loc[missing_intervals, "series_id"].nunique())
        if missing_intervals is not None
        else 0
    )
    fallback = models[1] if len(models) > 1 else None
    meta = {
        "run_id": run_id,
        "model_version": models[0].version if models else SEASONAL_NAIVE_VERSION,
        "model_dir": model_dir if models else None,
        "fallback_model_version": fallback.version if fallback else None,
        "fallback_model_dir": fallback.source if fallback else None,
        "cutoff_date": cutoff_date.isoformat(),
        # The forecasts' origin (their cutoff_date column): the last day of data they used.
        "origin_date": origin.isoformat(),
        "data_days_before_cutoff": (cutoff_date - origin).days,
        "output_uri": output_uri,
        "future_uri": future_uri,
        "horizon": horizon,
        "levels": levels_used,
        # Series per row label (a model's version, or "seasonal_naive"): sums to n_series.
        "models": counts,
        "series_seasonal_naive": len(naive_ids),
        "n_series": n_series,
        "n_rows": len(out),
        "first_date": out["date"].min().date().isoformat(),
        "last_date": out["date"].max().date().isoformat(),
        "model_training_end": primary.last_date.isoformat() if primary else None,
        "fallback_training_end": fallback.fc.last_date.isoformat() if fallback else None,
        "history_rows_applied": sum(res.updated_rows for res in results),
        "filled_values": filled,
        "filled_total": int(sum(filled.values())),
        "ignored_future_rows": ignored_future + sum(res.ignored_future_rows for res in results),
        "series_without_intervals": without,
        "unavailable_days": unavailable_days,
        "notes": notes,
        "created_at": created.isoformat() + "Z",
    }
    target = meta_uri or default_meta_uri(output_uri, run_id)
    if target:
        write_json(meta, target)
    else:
        log.info("forecast meta (no --meta-uri for a BigQuery output): %s", meta)
    return {**meta, "meta_uri": target}


def _check_sources(
    model_dir: str | None,
    model_version: str | None,
    fallback_dir: str | None,
    fallback_version: str | None,
    seasonal_naive: bool,
) -> None:
    """Which forecasters were asked for must make sense before anything is loaded."""
    if bool(fallback_dir) != bool(fallback_version):
        raise TrainerError(
            "--fallback-model-dir and --fallback-model-version go together (both or neither)"
        )
    if seasonal_naive:
        if model_dir or model_version or fallback_dir:
            raise TrainerError(
                "--seasonal-naive uses no model: drop --model-dir, --model-version and the "
                "--fallback-model-* arguments"
            )
        return
    if not model_dir:
        raise TrainerError("no --model-dir and AIP_MODEL_DIR is not set (or --seasonal-naive)")
    if not model_version:
        raise TrainerError("--model-version is required with --model-dir")
    for version in (model_version, fallback_version):
        if version == SEASONAL_NAIVE_VERSION:
            raise TrainerError(
                f"model version {SEASONAL_NAIVE_VERSION!r} is reserved for seasonal-naive rows"
            )
    if fallback_version and fallback_version == model_version:
        raise TrainerError(
            f"the fallback model's version must differ from the model's ({model_version!r}): "
            "it is how the rows tell the two apart"
        )


def _load_sources(
    model_dir: str | None,
    model_version: str | None,
    fallback_dir: str | None,
    fallback_version: str | None,
    contract: Contract | None,
    data_uri: str | None,
    cutoff_date: dt.date,
) -> tuple[list[_Model], Contract]:
    """The models (primary first) and the contract the data is read with: the primary's, or
    the given one for seasonal naive alone."""
    models: list[_Model] = []
    if model_dir and model_version:
        models.append(_load(model_dir, model_version, cutoff_date, "the model"))
    if fallback_dir and fallback_version:
        models.append(_load(fallback_dir, fallback_version, cutoff_date, "the fallback model"))
    if not models:
        if contract is None:
            raise TrainerError("seasonal naive needs the dataset contract (--contract)")
        if not data_uri:
            raise TrainerError("seasonal naive forecasts from the data: pass --data-uri")
        return models, contract
    base = models[0].fc.contract
    if contract is not None:
        _check_same_contract(base, contract, "--contract")
    for other in models[1:]:
        _check_same_contract(base, other.fc.contract, "the fallback model")
        base = _with_columns_of(base, other.fc.contract)
    return models, base


def _load(model_dir: str, version: str, cutoff_date: dt.date, what: str) -> _Model:
    with fetch_dir(model_dir) as local:
        fc = Forecaster.load(local)
    if fc.last_date > cutoff_date:
        # A backfill as of `cutoff` must not use a model that has seen later days.
        raise TrainerError(
            f"{what} ({model_dir}) was trained on data up to {fc.last_date}, after the cut-off "
            f"{cutoff_date}; use a model trained on or before the cut-off"
        )
    return _Model(fc=fc, version=version, source=model_dir)


def _check_same_contract(base: Contract, other: Contract, what: str) -> None:
    """One run's rows are one table's series: ``other`` must name them the same way."""
    fields = ["date_column", "target", "series_keys"]
    differ = [f for f in fields if getattr(base, f) != getattr(other, f)]
    if differ:
        raise TrainerError(
            f"{what}'s contract differs from the model's ({', '.join(differ)}); "
            "the forecasts of one run must come from one dataset contract"
        )


def _with_columns_of(base: Contract, other: Contract) -> Contract:
    """``base`` plus the columns only ``other`` has, so one read serves both models (a
    fallback trained after a known column was added still gets it)."""
    mine = {c.name: c for c in base.columns}
    clash = [c.name for c in other.columns if c.name in mine and mine[c.name] != c]
    if clash:
        raise TrainerError(
            f"the fallback model's contract defines {clash} differently from the model's; "
            "the forecasts of one run must come from one dataset contract"
        )
    extra = tuple(c for c in other.columns if c.name not in mine)
    return replace(base, columns=base.columns + extra) if extra else base


def _ids(panel: pd.DataFrame) -> list[str]:
    ids = panel["series_id"]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        return sorted(str(c) for c in ids.cat.remove_unused_categories().cat.categories)
    return sorted(map(str, pd.unique(ids)))


def _read(
    data_uri: str, contract: Contract, cutoff: dt.date, since: dt.date
) -> pd.DataFrame | None:
    if since > cutoff:
        return None
    with contextlib.suppress(NoRowsError):
        return load_panel(data_uri, contract, cutoff, since=since)
    return None


def _read_recent(
    data_uri: str,
    contract: Contract,
    cutoff_date: dt.date,
    models: list[_Model],
    horizon: int,
    notes: list[str],
) -> pd.DataFrame | None:
    """The panel's rows the forecast needs, not its whole history.

    With models: from the day after the earliest training end of any given model's series
    (the rows that move their state forward), and at least the cut-off day itself (it says
    which series the data has: every series has a row on every day up to the panel's end).
    Seasonal naive only: its recent window (:func:`seasonal_naive_history_days`); older rows
    a naive series needs are read later (:func:`_naive_history`).
    """
    if models:
        ends = [pd.Timestamp(m.fc.series["last_date"].min()) for m in models]
        since = min((min(ends) + _DAY).date(), cutoff_date)
    else:
        days = seasonal_naive_history_days(horizon)
        since = (pd.Timestamp(cutoff_date) - pd.Timedelta(days=days - 1)).date()
    recent = _read(data_uri, contract, cutoff_date, since)
    if recent is None:
        if not models:
            raise TrainerError(
                f"{data_uri}: no rows between {since} and the cut-off {cutoff_date}: nothing "
                "recent to forecast from"
            )
        notes.append(
            f"{data_uri} has no rows on or after {since}: only the models' series were "
            "forecast, from their training end"
        )
        return None
    log.info("read %d rows of %s from %s on", len(recent), data_uri, since)
    return recent


def _naive_history(
    recent: pd.DataFrame,
    naive_ids: list[str],
    data_uri: str,
    contract: Contract,
    horizon: int,
) -> pd.DataFrame:
    """The recent history of the series seasonal naive forecasts: the rows already read, plus
    (one more read, only when a naive series is older than them) the days before them that
    its forecast and intervals need."""
    date = contract.date_column
    mine = recent[recent["series_id"].isin(naive_ids)]
    first_read = pd.Timestamp(recent[date].min())
    last_day = pd.Timestamp(recent[date].max())
    want = last_day - pd.Timedelta(days=seasonal_naive_history_days(horizon) - 1)
    starts = mine.groupby("series_id", observed=True)[date].min()
    if want >= first_read or not (starts <= first_read).any():
        return mine  # a new series (started after the first day read) has all its rows here
    older = _read(data_uri, contract, (first_read - _DAY).date(), want.date())
    if older is None:
        return mine
    older = older[older["series_id"].isin(naive_ids)]
    log.info("read %d older rows for %d seasonal-naive series", len(older), len(naive_ids))
    # The two reads' categoricals differ: plain strings, then checked and sorted once more.
    parts = [
        part.assign(
            **{
                c: part[c].astype(object)
                for c in ["series_id", *contract.series_keys]
                if isinstance(part[c].dtype, pd.CategoricalDtype)
            }
        )
        for part in (older, mine)
    ]
    both = pd.concat(parts, ignore_index=True)
    both.attrs = {}
    return prepare_panel(both, contract, source=f"{data_uri} (seasonal naive)")


def _naive_frame(
    panel: pd.DataFrame, contract: Contract, horizon: int, levels: list[int]
) -> pd.DataFrame:
    """Seasonal-naive rows in the models' frame layout (series id, keys, date, values)."""
    date = contract.date_column
    frame = seasonal_naive_forecast(
        panel, horizon, levels, target_col=contract.target, id_col="series_id", time_col=date
    )
    frame = frame.rename(columns={date: "date"})
    keys = list(contract.series_keys)
    if keys:
        state = series_state(panel, contract)
        state["series_id"] = state["series_id"].astype(str)
        frame = frame.join(state.set_index("series_id")[keys], on="series_id")
    return frame.assign(model_version=SEASONAL_NAIVE_VERSION)


def _future_ids(future: pd.DataFrame, contract: Contract) -> pd.Series:
    """The ``series_id`` each future-file row names (by ``series_id`` or by its keys)."""
    if "series_id" in future.columns:
        return future["series_id"].astype(str)
    keys = list(contract.series_keys)
    return pd.Series(
        [series_id(row) for row in future[keys].itertuples(index=False)] if keys else series_id([]),
        index=future.index,
        dtype=object,
    )


def _split_future(
    future: pd.DataFrame,
    source: str,
    contract: Contract,
    models: list[_Model],
    naive_ids: list[str],
) -> tuple[list[pd.DataFrame | None], int]:
    """Each model's rows of the future file, and how many rows only name seasonal-naive
    series (ignored: it uses no covariates). A row naming a series nobody forecasts is an
    error, as it was before there were several models."""
    ids = _future_ids(future, contract)
    taken = pd.Series(False, index=future.index)
    parts: list[pd.DataFrame | None] = []
    for model in models:
        known = model.series_ids if model.series_ids is not None else model.fc.series_ids
        rows = ids.isin(known) & ~taken
        taken |= rows
        parts.append(future[rows] if rows.any() else None)
    naive = ids.isin(naive_ids) & ~taken
    unknown = ~(taken | naive)
    if unknown.any():
        raise TrainerError(
            f"{source}: {int(unknown.sum())} rows name series the model does not know and "
            f"the data does not have, e.g. {ids[unknown].iloc[0]}"
        )
    return parts, int(naive.sum())


def _checked(frames: list[pd.DataFrame], expected: set[str], horizon: int) -> pd.DataFrame:
    """All rows, one per series and day: every expected series, ``horizon`` days each."""
    if not frames:
        raise TrainerError("nothing to forecast: no model series and no series in the data")
    frame = pd.concat(frames, ignore_index=True)
    frame["series_id"] = frame["series_id"].astype(str)
    frame = frame.sort_values(["series_id", "date"], kind="stable").reset_index(drop=True)
    per_series = frame.groupby("series_id", sort=False).size()
    if set(per_series.index) != expected or not (per_series == horizon).all():
        raise RuntimeError(
            f"forecast has {len(frame)} rows for {len(per_series)} series, expected "
            f"{len(expected)} series x {horizon} days"
        )
    if frame.duplicated(["series_id", "date"]).any():
        raise RuntimeError("forecast has more than one row for a series and day")
    if frame["forecast"].isna().any():
        raise RuntimeError("forecast contains missing values")
    return frame
