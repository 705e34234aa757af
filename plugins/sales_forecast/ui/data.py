"""What the "Sales forecasts" view shows, read from the warehouse and the registry, read-only.

One set of queries for both platforms: they are written once with BigQuery's ``@name``
parameters and only the functions DuckDB and BigQuery share; :class:`Dialect` quotes the names
and, for DuckDB, turns ``@name`` into ``$name``. A :class:`Session` (one short read-only
connection per request, see :mod:`sales_forecast.ui.backends`) runs them.

The monitoring tables (``forecast_accuracy``, ``drift_report``) are written by the monitoring
DAG; before its first run they do not exist and the view says so instead of failing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, Protocol

from sales_forecast.platforms.base import ModelRegistry
from sf_contract.constants import KEY_SEPARATOR, PRODUCTION_ALIAS
from sf_contract.schema import Contract

__all__ = [
    "FEATURES",
    "FORECASTS",
    "ACCURACY",
    "DRIFT",
    "Dialect",
    "ForecastsData",
    "Session",
    "UnknownSeries",
    "ViewError",
    "WarehouseBusy",
]

FEATURES = "daily_sales_features"
FORECASTS = "daily_sales_forecasts"
ACCURACY = "forecast_accuracy"
DRIFT = "drift_report"

NO_MONITORING = (
    "no monitoring run yet: trigger the sales_forecast_monitoring DAG after at least one "
    "day of new actuals"
)
NO_FORECASTS = "no forecasts yet: run the sales_forecast DAG (make demo) first"

MAX_HISTORY_DAYS = 3660
MAX_SERIES_LIMIT = 500


class ViewError(Exception):
    """A request the view cannot answer; ``status`` is the HTTP status it becomes."""

    status = 400


class UnknownSeries(ViewError):
    status = 404


class WarehouseBusy(ViewError):
    """The warehouse is locked by a writer (a running task): try again shortly."""

    status = 503


@dataclass(frozen=True)
class Dialect:
    """Table references, quoted names and parameters for one warehouse."""

    name: Literal["duckdb", "bigquery"]
    prefix: str  # the DuckDB schema, or "project.dataset" on BigQuery

    def ident(self, name: str) -> str:
        # Names come from a checked contract; quoting is belt and braces.
        if self.name == "bigquery":
            return "`" + name.replace("`", "") + "`"
        return '"' + name.replace('"', '""') + '"'

    def table(self, name: str) -> str:
        if self.name == "bigquery":
            return "`" + f"{self.prefix}.{name}".replace("`", "") + "`"
        return self.ident(self.prefix) + "." + self.ident(name)

    def sql(self, text: str) -> str:
        """``text`` as this warehouse takes it (DuckDB names its parameters ``$name``)."""
        return text if self.name == "bigquery" else re.sub(r"@([A-Za-z_]\w*)", r"$\1", text)


class Session(Protocol):
    """One short read-only conversation with the warehouse."""

    dialect: Dialect

    def tables(self) -> set[str]:
        """The table names of the dataset."""
        ...

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run a query written with ``@name`` parameters (already in this dialect)."""
        ...


def _clean(value: Any) -> Any:
    # JSON has no NaN or infinity; a metric that could not be computed is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value


def _records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in r.items()} for r in rows]


class ForecastsData:
    """Everything the view reads, for one dataset contract."""

    def __init__(
        self,
        session: Session,
        contract: Contract,
        registry: Callable[[], ModelRegistry],
    ) -> None:
        self.s = session
        self.d = session.dialect
        self.contract = contract
        self._registry = registry
        self._tables: set[str] | None = None

    # ---- helpers
    def has(self, table: str) -> bool:
        if self._tables is None:
            self._tables = self.s.tables()
        return table in self._tables

    def _q(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        text = self.d.sql(sql)
        used = {k: v for k, v in params.items() if re.search(rf"@{k}\b", sql)}
        return self.s.rows(text, used)

    def _t(self, name: str) -> str:
        return self.d.table(name)

    @property
    def group_key(self) -> str | None:
        """The column whose values are the accuracy/drift series groups (the first key)."""
        return self.contract.series_keys[0] if self.contract.series_keys else None

    # ---- series
    def series(self, q: str = "", limit: int = 50) -> dict[str, Any]:
        """Series whose id contains ``q`` (case-insensitive), and how many match in all."""
        limit = max(1, min(int(limit), MAX_SERIES_LIMIT))
        if len(q) > 200:
            raise ViewError("the search text is longer than 200 characters")
        if not self.has(FEATURES):
            return {"available": False, "message": NO_FORECASTS, "series": [], "total": 0}
        keys = [self.d.ident(k) for k in self.contract.series_keys]
        key_sql = "".join(f", {k}" for k in keys)
        where = "WHERE @q = '' OR STRPOS(LOWER(series_id), LOWER(@q)) > 0"
        rows = self._q(
            f"SELECT series_id{key_sql} FROM {self._t(FEATURES)} {where} "
            f"GROUP BY series_id{key_sql} ORDER BY series_id LIMIT {limit}",
            q=q,
        )
        (count,) = self._q(
            f"SELECT COUNT(DISTINCT series_id) AS n FROM {self._t(FEATURES)} {where}", q=q
        )
        return {
            "available": True,
            "series": _records(rows),
            "total": int(count["n"] or 0),
            "keys": list(self.contract.series_keys),
        }

    # ---- history and forecasts
    def view(self, series_id: str | None, days: int = 120) -> dict[str, Any]:
        """History (last ``days`` days) and the latest run's forecasts with 80/95 % bands.

        ``series_id`` None means the total over every series. The total's bands are the sums
        of the series' bounds: wider than the total's own interval (errors partly cancel), and
        labelled so.
        """
        days = max(7, min(int(days), MAX_HISTORY_DAYS))
        if series_id is not None and len(series_id) > 500:
            raise ViewError("the series id is longer than 500 characters")
        out: dict[str, Any] = {
            "series_id": series_id,
            "total": series_id is None,
            "target": self.contract.target,
            "history": [],
            "forecast": [],
            "run": None,
        }
        if not self.has(FEATURES):
            return {**out, "available": False, "message": NO_FORECASTS}
        target = self.d.ident(self.contract.target)
        one = "WHERE series_id = @series" if series_id is not None else ""
        (last,) = self._q(
            f"SELECT MAX(date) AS last, COUNT(*) AS n FROM {self._t(FEATURES)} {one}",
            series=series_id,
        )
        if not last["n"]:
            if series_id is None:
                return {**out, "available": False, "message": NO_FORECASTS}
            raise UnknownSeries(f"no series {series_id!r} in this dataset's history")
        since = last["last"] - timedelta(days=days - 1)
        value = f"CASE WHEN COALESCE(is_unknown, FALSE) THEN NULL ELSE {target} END"
        if series_id is not None:
            history = self._q(
                f"SELECT date, {value} AS value, COALESCE(is_gap_filled, FALSE) AS gap_filled, "
                f"COALESCE(is_unknown, FALSE) AS unknown FROM {self._t(FEATURES)} "
                "WHERE series_id = @series AND date >= @since ORDER BY date",
                series=series_id,
                since=since,
            )
        else:
            history = self._q(
                f"SELECT date, SUM({value}) AS value, "
                "SUM(CASE WHEN COALESCE(is_unknown, FALSE) THEN 1 ELSE 0 END) AS unknown_series, "
                "COUNT(*) AS n_series "
                f"FROM {self._t(FEATURES)} WHERE date >= @since GROUP BY date ORDER BY date",
                since=since,
            )
        out["history"] = _records(history)
        if not self.has(FORECASTS):
            return {**out, "available": True, "message": NO_FORECASTS}
        runs = self._q(
            "SELECT run_id, MAX(cutoff_date) AS cutoff_date, MAX(created_at) AS created_at, "
            f"COUNT(DISTINCT series_id) AS n_series FROM {self._t(FORECASTS)} {one} "
            "GROUP BY run_id ORDER BY created_at DESC, run_id DESC LIMIT 1",
            series=series_id,
        )
        if not runs:
            return {**out, "available": True, "message": "no forecasts for this series yet"}
        run = runs[0]
        if series_id is not None:
            forecast = self._q(
                "SELECT date, model_version, forecast, lower_80, upper_80, lower_95, upper_95 "
                f"FROM {self._t(FORECASTS)} WHERE run_id = @run AND series_id = @series "
                "ORDER BY date",
                run=run["run_id"],
                series=series_id,
            )
        else:
            forecast = self._q(
                "SELECT date, SUM(forecast) AS forecast, SUM(lower_80) AS lower_80, "
                "SUM(upper_80) AS upper_80, SUM(lower_95) AS lower_95, "
                "SUM(upper_95) AS upper_95, COUNT(*) AS n_series "
                f"FROM {self._t(FORECASTS)} WHERE run_id = @run GROUP BY date ORDER BY date",
                run=run["run_id"],
            )
        versions = sorted({str(r["model_version"]) for r in forecast if r.get("model_version")})
        if series_id is None:
            versions = [
                str(r["model_version"])
                for r in self._q(
                    f"SELECT DISTINCT model_version FROM {self._t(FORECASTS)} "
                    "WHERE run_id = @run ORDER BY model_version",
                    run=run["run_id"],
                )
            ]
        out["run"] = {**_records([run])[0], "model_versions": versions}
        out["forecast"] = _records(forecast)
        out["bands"] = "sum_of_series_bounds" if series_id is None else "series"
        return {**out, "available": True, "message": ""}

    def group_of(self, series_id: str | None) -> str:
        """The accuracy/drift group a series belongs to ('total' for the total)."""
        if series_id is None or self.group_key is None:
            return "total"
        return series_id.split(KEY_SEPARATOR)[0]

    # ---- monitoring
    def accuracy(self, group: str = "total", horizon_day: int = 0) -> dict[str, Any]:
        """Realised accuracy over time for one group, and by horizon day at the latest date."""
        if not 0 <= int(horizon_day) <= 366:
            raise ViewError("horizon_day must be 0 (all days) or a day 1..366")
        if len(group) > 200:
            raise ViewError("the series group is longer than 200 characters")
        if not self.has(ACCURACY):
            return {"available": False, "message": NO_MONITORING, "rows": [], "groups": []}
        cols = (
            "monitor_date, model_version, series_group, horizon_day, n_points, wape, mase, "
            "bias, coverage_80, coverage_95, naive_wape, value_added, window_start, window_end"
        )
        rows = self._q(
            f"SELECT {cols} FROM {self._t(ACCURACY)} "
            "WHERE series_group = @grp AND horizon_day = @h ORDER BY monitor_date, model_version",
            grp=group,
            h=int(horizon_day),
        )
        by_horizon = self._q(
            f"SELECT {cols} FROM {self._t(ACCURACY)} WHERE series_group = @grp "
            f"AND horizon_day > 0 AND monitor_date = (SELECT MAX(monitor_date) "
            f"FROM {self._t(ACCURACY)} WHERE series_group = @grp) "
            "ORDER BY horizon_day, model_version",
            grp=group,
        )
        groups = self._q(
            f"SELECT DISTINCT series_group FROM {self._t(ACCURACY)} ORDER BY series_group"
        )
        return {
            "available": True,
            "message": "" if rows else f"no accuracy rows for group {group!r} yet",
            "group": group,
            "horizon_day": int(horizon_day),
            "rows": _records(rows),
            "by_horizon": _records(by_horizon),
            "groups": [g["series_group"] for g in groups],
        }

    def drift(self, monitor_date: date | None = None) -> dict[str, Any]:
        """The drift report of one monitoring day (default: the latest), drifted rows first."""
        if not self.has(DRIFT):
            return {"available": False, "message": NO_MONITORING, "rows": [], "dates": []}
        dates = [
            r["monitor_date"]
            for r in self._q(
                f"SELECT DISTINCT monitor_date FROM {self._t(DRIFT)} "
                "ORDER BY monitor_date DESC LIMIT 60"
            )
        ]
        if not dates:
            return {"available": False, "message": NO_MONITORING, "rows": [], "dates": []}
        day = monitor_date or dates[0]
        rows = self._q(
            "SELECT monitor_date, kind, feature, series_group, psi, threshold, drifted, "
            "reference_start, reference_end, recent_start, recent_end, computed_at "
            f"FROM {self._t(DRIFT)} WHERE monitor_date = @day "
            "ORDER BY drifted DESC, psi DESC, kind, feature, series_group",
            day=day,
        )
        return {
            "available": True,
            "message": "" if rows else f"no drift rows on {day.isoformat()}",
            "monitor_date": day.isoformat(),
            "dates": [d.isoformat() for d in dates],
            "rows": _records(rows),
            "n_drifted": sum(1 for r in rows if r.get("drifted")),
        }

    # ---- registry
    def registry(self) -> dict[str, Any]:
        reg = self._registry()
        versions = reg.list_versions()
        prod = reg.get_by_alias(PRODUCTION_ALIAS)
        return {
            "production": prod.version if prod else None,
            "versions": [
                {
                    "version": v.version,
                    "run_id": v.run_id,
                    "created_at": v.created_at,
                    "aliases": list(v.aliases),
                    # The backtest's overall scores and the seasonal-naive baseline's.
                    "backtest": _numbers(v.metrics.get("overall")),
                    "baseline": _numbers((v.metrics.get("baseline") or {}).get("overall")),
                    "uri": v.uri,
                }
                for v in sorted(versions, key=_version_order, reverse=True)
            ],
        }


def _numbers(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    return {
        str(k): _clean(x)
        for k, x in sorted(value.items())
        if isinstance(x, int | float) and not isinstance(x, bool)
    }


def _version_order(v: Any) -> tuple[int, str]:
    text = str(v.version)
    return (int(text), "") if text.isdigit() else (-1, text)
