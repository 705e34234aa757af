"""Monitoring: how past forecasts did against the actuals that came in since, and drift.

Two tables, both computed from what the warehouse already holds (the daily forecasts, kept per
cut-off, and the clean panel):

- :func:`realised_accuracy`: every stored forecast of a day that now has an actual, scored per
  model version, series group (the contract's first key, and ``total``) and horizon day (``0``
  = all days): WAPE, MASE, bias, 80/95 interval coverage, and seasonal naive's WAPE on the very
  same (series, day, cut-off) points, hence the forecast value added ``1 - wape / naive_wape``.
- :func:`drift_report`: the population stability index (PSI) of the target and each numeric
  covariate between the latest days and a reference window: the same time of year one year
  earlier when the panel reaches back that far (weather and demand are seasonal: November is
  no drift from July), else the days right before. Per series group and in total.

Actuals follow the trainer's one rule (:func:`trainer.panel.prepare_panel`): quarantined and
unavailable days (closed, out of stock) are no actuals, so they are neither scored nor counted in
the target's distribution.
"""

from __future__ import annotations

__all__ = [
    "ACCURACY_COLUMNS",
    "DRIFT_COLUMNS",
    "TOTAL",
    "drift_report",
    "population_stability_index",
    "realised_accuracy",
]

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sf_contract import Contract
from trainer.baselines import seasonal_naive_forecast
from trainer.errors import TrainerError
from trainer.metrics import bias, mase, seasonal_scale, wape
from trainer.panel import UNKNOWN

# The series group of rows that cover every series.
TOTAL = "total"
ACCURACY_COLUMNS: tuple[str, ...] = (
    "monitor_date",
    "model_version",
    "series_group",
    "horizon_day",
    "n_points",
    "wape",
    "mase",
    "bias",
    "coverage_80",
    "coverage_95",
    "naive_wape",
    "value_added",
    "window_start",
    "window_end",
)
DRIFT_COLUMNS: tuple[str, ...] = (
    "monitor_date",
    "kind",
    "feature",
    "series_group",
    "psi",
    "threshold",
    "drifted",
    "reference_start",
    "reference_end",
    "recent_start",
    "recent_end",
)
# Quantile bins of the reference window, at most ten, and about one per 20 values of the
# smaller side: under no drift at all, PSI is about (bins - 1) x (1/n + 1/m), so ten bins on 28
# recent days would read as drift (0.3) from noise alone. A share is never exactly 0 (log 0).
PSI_BINS = 10
_VALUES_PER_BIN = 20
_PSI_FLOOR = 1e-4


def _groups(panel: pd.DataFrame, contract: Contract) -> pd.Series:
    """Each row's series group: its first key's value (``total`` for a single series)."""
    if not contract.series_keys:
        return pd.Series(TOTAL, index=panel.index, dtype=object)
    return panel[contract.series_keys[0]].astype(str)


def realised_accuracy(
    panel: pd.DataFrame,
    forecasts: pd.DataFrame,
    contract: Contract,
    monitor_date: dt.date,
    *,
    window_days: int = 28,
) -> pd.DataFrame:
    """The realised accuracy of the stored forecasts of the last ``window_days`` days of actuals.

    ``panel``: a prepared panel (:func:`trainer.panel.prepare_panel`); ``forecasts``: rows of
    ``daily_sales_forecasts`` (``model_version, cutoff_date, series_id, date, forecast`` and the
    interval columns). Rows with no actual yet, or on an unknown day, are not scored. Returns
    :data:`ACCURACY_COLUMNS`; empty when no forecast day has an actual yet.
    """
    date = contract.date_column
    if window_days < 1:
        raise TrainerError(f"window_days must be >= 1, got {window_days}")
    end = panel[date].max()
    start = end - pd.Timedelta(days=window_days - 1)
    fc = forecasts.copy()
    fc["date"] = pd.to_datetime(fc["date"]).astype("datetime64[ns]")
    fc["cutoff_date"] = pd.to_datetime(fc["cutoff_date"]).astype("datetime64[ns]")
    fc["series_id"] = fc["series_id"].astype(str)
    fc = fc[(fc["date"] >= start) & (fc["date"] <= end) & (fc["date"] > fc["cutoff_date"])]
    actual = pd.DataFrame(
        {
            "series_id": panel["series_id"].astype(str).to_numpy(),
            "date": panel[date].to_numpy(),
            "y": panel[contract.target].to_numpy(dtype=float),
            "known": ~panel[UNKNOWN].to_numpy(dtype=bool),
            "series_group": _groups(panel, contract).to_numpy(),
        }
    )
    points = fc.merge(actual, on=["series_id", "date"], how="inner")
    points = points[points["known"]].reset_index(drop=True)
    if points.empty:
        return pd.DataFrame(columns=list(ACCURACY_COLUMNS))
    points["horizon_day"] = (points["date"] - points["cutoff_date"]).dt.days.astype(int)
    points = points.merge(_naive_points(panel, contract, points), how="left")
    scale = _scales(panel, contract)
    points["scale"] = points["series_group"].map(scale).fillna(scale.get(TOTAL, np.nan))
    out = []
    for (version, group, horizon), frame in _cuts(points):
        out.append(_row(frame, version, group, horizon))
    table = pd.DataFrame(out)
    table.insert(0, "monitor_date", pd.Timestamp(monitor_date))
    table["window_start"] = start
    table["window_end"] = end
    return table[list(ACCURACY_COLUMNS)]


def _cuts(points: pd.DataFrame) -> list[tuple[tuple[str, str, int], pd.DataFrame]]:
    """Every (model version, series group or total, horizon day or 0) slice of the points."""
    out = []
    for version, by_version in points.groupby("model_version", sort=True):
        for group, frame in [(TOTAL, by_version), *by_version.groupby("series_group", sort=True)]:
            if group == TOTAL and frame is not by_version:
                continue  # a single series' group is already the total
            out.append(((str(version), str(group), 0), frame))
            for horizon, day in frame.groupby("horizon_day", sort=True):
                out.append(((str(version), str(group), int(horizon)), day))
    return out


def _row(frame: pd.DataFrame, version: str, group: str, horizon: int) -> dict[str, object]:
    y = frame["y"].to_numpy(dtype=float)
    f = frame["forecast"].to_numpy(dtype=float)
    row: dict[str, object] = {
        "model_version": version,
        "series_group": group,
        "horizon_day": horizon,
        "n_points": len(frame),
        "wape": wape(y, f),
        "mase": mase(y, f, frame["scale"].to_numpy(dtype=float)),
        "bias": bias(y, f),
    }
    for level in (80, 95):
        lo, hi = f"lower_{level}", f"upper_{level}"
        if lo in frame.columns and frame[lo].notna().any():
            ok = frame[lo].notna() & frame[hi].notna()
            inside = (frame.loc[ok, lo] <= frame.loc[ok, "y"]) & (
                frame.loc[ok, "y"] <= frame.loc[ok, hi]
            )
            row[f"coverage_{level}"] = float(inside.mean()) if ok.any() else np.nan
        else:
            row[f"coverage_{level}"] = np.nan
    naive = frame["naive"].to_numpy(dtype=float)
    has = ~np.isnan(naive)
    row["naive_wape"] = wape(y[has], naive[has]) if has.any() else np.nan
    nw = row["naive_wape"]
    row["value_added"] = (
        1.0 - float(row["wape"]) / float(nw)  # type: ignore[arg-type]
        if isinstance(nw, float) and np.isfinite(nw) and nw > 0
        else np.nan
    )
    return row


def _naive_points(panel: pd.DataFrame, contract: Contract, points: pd.DataFrame) -> pd.DataFrame:
    """Seasonal naive's forecast of every scored (series, cut-off, day), from the same cut-off:
    the gate's baseline (:func:`trainer.baselines.seasonal_naive_forecast`) made then."""
    date = contract.date_column
    parts = []
    for cutoff, rows in points.groupby("cutoff_date", sort=True):
        ids = rows["series_id"].unique()
        upto = panel[(panel[date] <= cutoff) & panel["series_id"].astype(str).isin(ids)]
        if upto.empty:
            continue
        horizon = int(rows["horizon_day"].max())
        naive = seasonal_naive_forecast(
            upto, horizon, (), target_col=contract.target, time_col=date
        )
        parts.append(
            pd.DataFrame(
                {
                    "series_id": naive["series_id"].astype(str).to_numpy(),
                    "cutoff_date": cutoff,
                    "date": pd.to_datetime(naive[date]).to_numpy(),
                    "naive": naive["forecast"].to_numpy(dtype=float),
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=["series_id", "cutoff_date", "date", "naive"])
    out = pd.concat(parts, ignore_index=True)
    out["date"] = out["date"].astype("datetime64[ns]")
    out["cutoff_date"] = pd.to_datetime(out["cutoff_date"]).astype("datetime64[ns]")
    return out


def _scales(panel: pd.DataFrame, contract: Contract) -> dict[str, float]:
    """MASE's scale per series group and in total: seasonal naive's in-sample MAE."""
    groups = _groups(panel, contract)

    def scale(rows: pd.DataFrame) -> float:
        return seasonal_scale(
            rows, id_col="series_id", time_col=contract.date_column, target_col=contract.target
        )

    out = {TOTAL: scale(panel)}
    for group, rows in panel.groupby(groups.to_numpy(), sort=True):
        out[str(group)] = scale(rows)
    return out


def population_stability_index(reference: np.ndarray, recent: np.ndarray) -> float:
    """PSI of ``recent`` against ``reference``: ``sum((r - q) * ln(r / q))`` over the
    reference's quantile bins (deciles, fewer for small samples or few distinct values). NaNs
    are ignored; NaN when either side has no values. 0.1 is a small shift, above 0.2 a large
    one (the usual reading).
    """
    ref = np.asarray(reference, dtype=float)
    new = np.asarray(recent, dtype=float)
    ref, new = ref[~np.isnan(ref)], new[~np.isnan(new)]
    if not len(ref) or not len(new):
        return float("nan")
    bins = int(np.clip(min(len(ref), len(new)) // _VALUES_PER_BIN, 2, PSI_BINS))
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    # Bins (-inf, e1], (e1, e2], ..., (ek, inf): a value equal to an edge falls in the lower bin.
    q = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
    r = np.bincount(np.searchsorted(edges, new, side="left"), minlength=len(edges) + 1)
    q = np.maximum(q / q.sum(), _PSI_FLOOR)
    r = np.maximum(r / r.sum(), _PSI_FLOOR)
    return float(np.sum((r - q) * np.log(r / q)))


def drift_report(
    panel: pd.DataFrame,
    contract: Contract,
    monitor_date: dt.date,
    *,
    recent_days: int = 28,
    reference_days: int = 42,
    threshold: float = 0.2,
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    """PSI of the target and each numeric covariate: the last ``recent_days`` days against
    ``reference_days`` days centred on the same days 52 weeks earlier (same weekdays), or, when
    the panel does not reach back that far, the ``reference_days`` right before them. Per series
    group and in total. Returns :data:`DRIFT_COLUMNS` (``drifted``: PSI above ``threshold``)."""
    date = contract.date_column
    if recent_days < 1 or reference_days < 1:
        raise TrainerError("recent_days and reference_days must be >= 1")
    end = panel[date].max()
    recent_start = end - pd.Timedelta(days=recent_days - 1)
    year = pd.Timedelta(weeks=52)
    pad = pd.Timedelta(days=max(0, (reference_days - recent_days) // 2))
    reference_start = recent_start - year - pad
    reference_end = reference_start + pd.Timedelta(days=reference_days - 1)
    if reference_start < panel[date].min():
        reference_end = recent_start - pd.Timedelta(days=1)
        reference_start = reference_end - pd.Timedelta(days=reference_days - 1)
    numeric = [c.name for c in contract.covariates if c.type in ("FLOAT64", "INT64")]
    names = list(features) if features is not None else numeric
    columns = [("target", contract.target), *(("feature", n) for n in names if n in panel)]
    known = ~panel[UNKNOWN].to_numpy(dtype=bool)
    in_ref = (panel[date] >= reference_start) & (panel[date] <= reference_end)
    in_new = panel[date] >= recent_start
    groups = _groups(panel, contract)
    slices = [(TOTAL, np.ones(len(panel), dtype=bool))]
    if contract.series_keys:
        slices += [(str(g), (groups == g).to_numpy()) for g in sorted(groups.unique())]
    rows = []
    for kind, name in columns:
        values = panel[name].to_numpy(dtype=float)
        # The target's unknown days are fills, not sales; a covariate is what it was.
        usable = known if kind == "target" else np.ones(len(panel), dtype=bool)
        for group, mask in slices:
            psi = population_stability_index(
                values[mask & in_ref.to_numpy() & usable], values[mask & in_new.to_numpy() & usable]
            )
            rows.append(
                {
                    "kind": kind,
                    "feature": name,
                    "series_group": group,
                    "psi": psi,
                    "threshold": threshold,
                    "drifted": bool(np.isfinite(psi) and psi > threshold),
                }
            )
    table = pd.DataFrame(
        rows, columns=["kind", "feature", "series_group", "psi", "threshold", "drifted"]
    )
    table.insert(0, "monitor_date", pd.Timestamp(monitor_date))
    table["reference_start"] = reference_start
    table["reference_end"] = reference_end
    table["recent_start"] = recent_start
    table["recent_end"] = end
    return table[list(DRIFT_COLUMNS)]
