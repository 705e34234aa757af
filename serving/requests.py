"""A predict request checked against the loaded model's contract, before any forecasting.

The request's shape (field names and JSON types) is pydantic's job (:mod:`serving.schemas`);
what depends on the model is checked here: which keys name a series and whether the model has
it, the horizon, which columns a ``future`` / ``history`` row may carry and their values,
and the days those rows cover. Every error is a :class:`RequestError` naming the field.
"""

from __future__ import annotations

__all__ = ["InstanceParser", "ParsedInstance", "parse_value"]

import datetime as dt
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.config import SERIES_ROUTE
from serving.errors import RequestError
from serving.schemas import MIN_HORIZON, Instance, range_words
from sf_contract.constants import DATE_FORMAT, DATE_PATTERN
from sf_contract.scalars import (
    ScalarError,
    bool_spellings,
    key_text,
    parse_bool,
    parse_date,
    series_id,
)
from sf_contract.schema import Contract

_ONE_DAY = dt.timedelta(days=1)
# The whole JSON string must be the date: parse_date trims text read from files, a request
# value is not trimmed. The shape also tells a malformed date from an impossible one.
_DATE_SHAPE = re.compile(DATE_PATTERN)


@dataclass
class ParsedInstance:
    """One checked instance: its position, its series (an index), horizon and typed rows.

    ``future`` and ``history`` rows hold Python values (dates as ``datetime.date``) for the
    model's input columns only; ``history`` keeps only the days newer than the model's data.
    """

    index: int
    series: int
    horizon: int
    future: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def plain(self) -> bool:
        """No rows: the instance can be answered from the base forecast."""
        return not self.future and not self.history


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class InstanceParser:
    """Checks instances against one model: its contract, series, last days and horizon."""

    def __init__(
        self,
        contract: Contract,
        key_values: Sequence[dict[str, Any]],
        last_dates: Sequence[dt.date],
        max_horizon: int,
        *,
        version: str | None = None,
        train_end: dt.date | None = None,
    ) -> None:
        self.contract_name: str = contract.name
        self.keys: list[str] = list(contract.series_keys)
        self.date_column: str = contract.date_column
        self.target: str = contract.target
        self.columns = {c.name: c for c in contract.columns}
        self.last_dates = list(last_dates)
        self.max_horizon = max_horizon
        self.n_series = len(key_values)
        # For the answer to a series the model does not know: which model, trained up to when.
        self.version = version
        self.train_end = train_end
        # Series by key text, so a key sent as "7" or 7 names the same series.
        self._lookup: dict[tuple[str, ...], int] = {
            tuple(key_text(v) for v in kv.values()): s for s, kv in enumerate(key_values)
        }

    def parse(self, i: int, inst: Instance, default_horizon: int | None = None) -> ParsedInstance:
        """Instance ``i`` of the request, checked; :class:`RequestError` names what is wrong.

        ``default_horizon`` (the request's ``parameters.horizon``) is the horizon of an instance
        that gives none; else the model's trained horizon."""
        where = f"instances[{i}]"
        given = inst.model_extra or {}
        unknown = [k for k in given if k not in self.keys]
        if unknown:
            keys = self.keys or "none (a single-series model)"
            raise RequestError(
                f"{where}.{unknown[0]}",
                f"unknown field; an instance has horizon, future, history and the series "
                f"keys, which for this model are {keys}",
            )
        missing = [k for k in self.keys if k not in given]
        if missing:
            raise RequestError(f"{where}.{missing[0]}", "required: a series key of this model")
        for k in self.keys:
            _check_key(f"{where}.{k}", given[k])
        key = tuple(key_text(given[k]) for k in self.keys)
        series = self._lookup.get(key)
        if series is None:
            raise RequestError(where, self._unknown_series(given))
        fallback = self.max_horizon if default_horizon is None else default_horizon
        horizon = fallback if inst.horizon is None else inst.horizon
        if not MIN_HORIZON <= horizon <= self.max_horizon:
            raise RequestError(
                f"{where}.horizon",
                f"{range_words(MIN_HORIZON, self.max_horizon)} days (the model's trained "
                f"horizon), got {horizon}",
            )
        history, last = self._history(where, series, inst.history or [])
        future = self._future(where, inst.future or [], last, horizon)
        return ParsedInstance(i, series, horizon, future, history)

    def _unknown_series(self, given: dict[str, Any]) -> str:
        # A new item or store is the usual cause: say that it is expected, and when it ends;
        # a typo is the other: say where the known series are listed.
        named = ", ".join(f"{k}={_short(given[k])}" for k in self.keys)
        model = "the model" if self.version is None else f"model version {self.version}"
        trained = "" if self.train_end is None else f" (trained on data up to {self.train_end})"
        return (
            f"unknown series: {named} is not in {model}{trained}; a new series is served after "
            f"the next training run that includes it; see GET {SERIES_ROUTE} for the "
            f"{self.n_series} series this model knows"
        )

    def _history(
        self, where: str, series: int, rows: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dt.date]:
        """The rows newer than the model's data, and the series' last day after them."""
        last = self.last_dates[series]
        if not rows:
            return [], last
        parsed = [
            self._row(f"{where}.history[{j}]", row, history=True) for j, row in enumerate(rows)
        ]
        dated = sorted((r[self.date_column], j) for j, r in enumerate(parsed))
        for (d1, _), (d2, j2) in itertools.pairwise(dated):
            if d1 == d2:
                raise RequestError(
                    f"{where}.history[{j2}].{self.date_column}", f"{d2} appears twice"
                )
            if d2 - d1 != _ONE_DAY:
                raise RequestError(
                    f"{where}.history",
                    f"days {d1 + _ONE_DAY} .. {d2 - _ONE_DAY} are missing; history must be "
                    "consecutive days",
                )
        first, newest = dated[0][0], dated[-1][0]
        if newest <= last:
            return [], last  # nothing newer than the model: the forecaster would ignore it
        if first > last + _ONE_DAY:
            raise RequestError(
                f"{where}.history",
                f"starts on {first} but the model's data for this series ends on {last}; "
                f"send the days from {last + _ONE_DAY} on",
            )
        newer = [parsed[j] for d, j in dated if d > last]
        return newer, newest

    def _future(
        self, where: str, rows: list[dict[str, Any]], last: dt.date, horizon: int
    ) -> list[dict[str, Any]]:
        start, end = last + _ONE_DAY, last + dt.timedelta(days=horizon)
        seen: set[dt.date] = set()
        out = []
        for j, row in enumerate(rows):
            at = f"{where}.future[{j}]"
            parsed = self._row(at, row, history=False)
            day = parsed[self.date_column]
            if not start <= day <= end:
                raise RequestError(
                    f"{at}.{self.date_column}",
                    f"{day} is outside this instance's forecast days {start} .. {end}",
                )
            if day in seen:
                raise RequestError(f"{at}.{self.date_column}", f"{day} appears twice")
            seen.add(day)
            out.append(parsed)
        return out

    def _row(self, where: str, row: dict[str, Any], *, history: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in row.items():
            at = f"{where}.{name}"
            col = self.columns.get(name)
            if col is None:
                columns = sorted(self.columns)
                raise RequestError(
                    at, f"unknown column; contract '{self.contract_name}' has {columns}"
                )
            if col.role == "key":
                raise RequestError(at, "series keys go on the instance, not in its rows")
            if col.role == "target" and not history:
                raise RequestError(at, "the target is what is forecast; send actuals in history")
            parsed = parse_value(at, col.type, value)
            if col.role == "target" and parsed is not None and parsed < 0:
                # The rule the load's validation applies to a file's rows (validate.sql).
                raise RequestError(at, f"sales cannot be negative, got {parsed}")
            # Observed-only and static columns are accepted (a row of the panel as it is) but
            # are not model inputs for future days, as in the trainer's future file.
            if col.role in ("observed", "static") or parsed is None:
                continue
            out[name] = parsed
        if self.date_column not in out:
            raise RequestError(f"{where}.{self.date_column}", "required: the day of this row")
        if history and self.target not in out:
            raise RequestError(f"{where}.{self.target}", "required: the actual value of that day")
        return out


def _check_key(where: str, value: Any) -> None:
    """A key value that can be part of a series id, else a 422 naming its field.

    :func:`sf_contract.scalars.series_id` holds the rule (e.g. no ``|``, the separator: such a
    value would read as two keys); without this the caller would get "unknown series" or,
    where an id is built, a 500.
    """
    try:
        series_id([value])
    except ScalarError as exc:
        raise RequestError(where, f"not a valid series key value: {exc}") from None


def parse_value(where: str, ctype: str, value: Any) -> Any:
    """A JSON value checked against a contract type (the types read_future_csv produces).

    Dates are text and follow the contract's one date rule (``sf_contract.scalars``). A BOOL
    column takes ``true``/``false`` and whatever a CSV file may spell a boolean as
    (``sf_contract.scalars.parse_bool``: ``"yes"``, ``"N"``, ``1`` read as its text ``"1"``,
    ...), so a row copied from the file reads the same. Other values keep their JSON type: a
    number column takes numbers, not numeric text.
    """
    if value is None:
        return None
    if ctype == "DATE":
        if not isinstance(value, str) or not _DATE_SHAPE.fullmatch(value):
            raise RequestError(where, f"expected a date as {DATE_FORMAT}, got {_short(value)}")
        try:
            return parse_date(value)
        except ScalarError:
            raise RequestError(where, f"not a valid date: {_short(value)}") from None
    if ctype in ("FLOAT64", "INT64"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RequestError(where, f"expected a number, got {_short(value)}")
        if not math.isfinite(value):
            raise RequestError(where, "expected a finite number")
        if ctype == "INT64":
            if isinstance(value, float) and not value.is_integer():
                raise RequestError(where, f"expected an integer, got {_short(value)}")
            return int(value)
        return float(value)
    if ctype == "BOOL":
        if isinstance(value, bool):
            return value
        # A float is refused as the CSV refuses "1.0": only text or an integer can be a token.
        if isinstance(value, str | int):
            try:
                return parse_bool(str(value))
            except ScalarError:
                pass
        raise RequestError(
            where,
            "expected true or false, or a text or number a CSV file reads as a boolean "
            f"({bool_spellings()}), got {_short(value)}",
        )
    if not isinstance(value, str):
        raise RequestError(where, f"expected a string, got {_short(value)}")
    return value
