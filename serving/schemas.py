"""Request and response bodies (Vertex AI style: ``instances`` + ``parameters`` -> ``predictions``).

The schema is the same for every model; what depends on the model's dataset contract (which
key columns name a series, which columns a ``future`` / ``history`` row may carry, the
largest horizon) is checked per request against the loaded model, with errors naming the
field. ``GET /ready`` reports the loaded model's contract.
"""

from __future__ import annotations

__all__ = [
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
]

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

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

    horizon: StrictInt | None = Field(
        None,
        ge=1,
        description="Days to forecast after the series' last day (default and maximum: the "
        "model's trained horizon).",
    )
    future: list[Row] | None = Field(
        None,
        description="Known-in-advance covariates for the forecast days: one object per day "
        "with the date column (YYYY-MM-DD) and any known columns (e.g. price, on_promo). "
        "Missing days and values are filled by each column's future_fill rule.",
    )
    history: list[Row] | None = Field(
        None,
        description="Recent actuals newer than the model's training data: consecutive days "
        "with the date column, the target and optionally known columns. Rows on or before the "
        "model's last day are ignored; the first newer row must be the day after it.",
    )


class Parameters(BaseModel):
    """How to forecast every instance of the request."""

    model_config = ConfigDict(extra="forbid")

    level: StrictInt = Field(
        80, ge=1, le=99, description="Prediction-interval level reported as lower/upper (%)."
    )
    levels: list[Annotated[StrictInt, Field(ge=1, le=99)]] | None = Field(
        None,
        max_length=10,
        description="Extra interval levels: every forecast point then has `intervals`.",
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
