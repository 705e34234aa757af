"""Request and response bodies (Vertex AI style: ``instances`` + ``parameters`` -> ``predictions``).

The schema is the same for every model; what depends on the model's dataset contract (which
key columns name a series, which columns a ``future`` / ``history`` row may carry, the
largest horizon) is checked per request against the loaded model, with errors naming the
field. ``GET /ready`` reports the loaded model's contract, ``GET /series`` its series.

A range error says the whole range (``must be 1..99, got 150``): :func:`range_words` is the
one wording, used by the fixed ranges here (through :func:`in_range`) and by the ranges that
depend on the loaded model (the horizon, the ``/series`` offset).
"""

from __future__ import annotations

__all__ = [
    "MIN_HORIZON",
    "SERIES_LIMIT_DEFAULT",
    "SERIES_LIMIT_MAX",
    "ErrorResponse",
    "FieldError",
    "ForecastPoint",
    "Instance",
    "Interval",
    "LiveResponse",
    "Parameters",
    "PredictRequest",
    "PredictResponse",
    "Prediction",
    "ReadyResponse",
    "Row",
    "RowValue",
    "SeriesEntry",
    "SeriesPage",
    "in_range",
    "range_words",
]

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from sf_contract.scalars import bool_spellings

# The shortest forecast; the longest is the loaded model's trained horizon (checked per request).
MIN_HORIZON = 1
# Interval levels, in percent.
_LEVELS = (1, 99)
# GET /series pages: at most this many series per answer.
SERIES_LIMIT_DEFAULT = 100
SERIES_LIMIT_MAX = 1000
_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def range_words(low: int, high: int) -> str:
    """How every range error says what is allowed: ``must be 1..99``."""
    return f"must be {low}..{high}"


def in_range(low: int, high: int) -> WrapValidator:
    """A validator that turns pydantic's one-bound range error into :func:`range_words`.

    It wraps the field's own ``ge``/``le`` (which stay in the OpenAPI schema); other errors
    (a wrong type) pass through unchanged.
    """

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            if not any(e["type"] in _RANGE_ERRORS for e in exc.errors()):
                raise
            raise PydanticCustomError(
                "out_of_range",
                "{range}, got {value}",
                {"range": range_words(low, high), "value": value},
            ) from None

    return WrapValidator(check)


Level = Annotated[StrictInt, Field(ge=_LEVELS[0], le=_LEVELS[1]), in_range(*_LEVELS)]
# How a row's values are written, for the future/history descriptions.
_ROW_VALUES = (
    " Dates are YYYY-MM-DD text, numbers JSON numbers; a BOOL column takes true/false or any "
    f"spelling a CSV file may use ({bool_spellings()}, or a number whose text is one of them)."
)

# A value in a future/history row: typed against the contract column per request.
RowValue = StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=256)] | None
Row = Annotated[dict[Annotated[str, Field(max_length=128)], RowValue], Field(max_length=64)]
KeyValue = Annotated[StrictStr, Field(max_length=256)] | StrictInt

_EXAMPLE_REQUEST: dict[str, Any] = {
    "instances": [
        {"store_id": "S01", "item_id": "I003", "horizon": 7},
        {
            "store_id": "S02",
            "item_id": "I001",
            "horizon": 3,
            "future": [{"date": "2025-11-01", "price": 2.29, "on_promo": True}],
            "history": [],
        },
    ],
    "parameters": {"level": 80},
}


class Instance(BaseModel):
    """One series to forecast.

    Besides the fields below, an instance carries the contract's series key columns (e.g.
    ``store_id`` and ``item_id``; none for a single-series model) as strings or integers.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"store_id": "S01", "item_id": "I003", "horizon": 7}]},
    )
    # Extra fields are the series keys: typed here, checked against the contract per request.
    __pydantic_extra__: dict[str, KeyValue] = Field(init=False)

    # The upper end is the loaded model's: the whole range is checked (and said) per request.
    horizon: Annotated[StrictInt, Field(json_schema_extra={"minimum": MIN_HORIZON})] | None = Field(
        None,
        description=f"Days to forecast after the series' last day: {MIN_HORIZON} .. the "
        "model's trained horizon (`max_horizon` in GET /ready), which is also the default.",
    )
    future: list[Row] | None = Field(
        None,
        description="Known-in-advance covariates for the forecast days: one object per day "
        "with the date column (YYYY-MM-DD) and any known columns (e.g. price, on_promo). "
        "Missing days and values are filled by each column's future_fill rule." + _ROW_VALUES,
    )
    history: list[Row] | None = Field(
        None,
        description="Recent actuals newer than the model's training data: consecutive days "
        "with the date column, the target and optionally known columns. Rows on or before the "
        "model's last day are ignored; the first newer row must be the day after it." + _ROW_VALUES,
    )


class Parameters(BaseModel):
    """How to forecast every instance of the request."""

    model_config = ConfigDict(extra="forbid")

    level: Level = Field(
        80,
        description=f"Prediction-interval level reported as lower/upper, in percent "
        f"({_LEVELS[0]}..{_LEVELS[1]}).",
    )
    horizon: Annotated[StrictInt, Field(json_schema_extra={"minimum": MIN_HORIZON})] | None = Field(
        None,
        description="The horizon of every instance that gives none (default: the model's trained "
        "horizon). A batch prediction job passes it here for all of its instances.",
    )
    levels: list[Level] | None = Field(
        None,
        max_length=10,
        description=f"Extra interval levels ({_LEVELS[0]}..{_LEVELS[1]}, at most 10): every "
        "forecast point then has `intervals`.",
    )


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE_REQUEST]})

    instances: list[Instance] = Field(min_length=1)
    parameters: Parameters | None = None


class Interval(BaseModel):
    lower: float | None
    upper: float | None


class ForecastPoint(BaseModel):
    date: str = Field(description="YYYY-MM-DD")
    forecast: float
    lower: float | None = Field(description="Lower bound at parameters.level (null: no interval)")
    upper: float | None = Field(description="Upper bound at parameters.level (null: no interval)")
    intervals: dict[str, Interval] | None = Field(
        None, description="Per level, when parameters.levels is given."
    )


class Prediction(BaseModel):
    """One instance's forecast; also carries the series' key columns (e.g. store_id, item_id)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, KeyValue] = Field(init=False)

    series_id: str
    forecasts: list[ForecastPoint]


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model_version: str


class SeriesEntry(BaseModel):
    """One series the model knows: its key columns (e.g. store_id, item_id; none for a
    single-series model), the ``series_id`` they make, and the last day of its data."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, KeyValue] = Field(init=False)

    series_id: str
    last_date: str = Field(
        description="YYYY-MM-DD: the series' last day in the model's data; a forecast starts "
        "the next day, and history must start there."
    )


class SeriesPage(BaseModel):
    """A page of the loaded model's series, sorted by ``series_id``."""

    model_version: str
    total: int = Field(description="How many series the model knows.")
    offset: int
    limit: int
    series: list[SeriesEntry]
    next_offset: int | None = Field(
        description="The offset of the next page; null on the last page."
    )


class FieldError(BaseModel):
    field: str = Field(description="Path into the request body, e.g. instances[0].horizon")
    message: str


class ErrorResponse(BaseModel):
    error: str
    detail: list[FieldError] = Field(default_factory=list)


class LiveResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    """Readiness: 200 with the model being served, or 503 with the reason."""

    status: str
    reason: str | None = None
    model: dict[str, Any] | None = None
    last_error: str | None = None
