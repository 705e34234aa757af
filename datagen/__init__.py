"""Seeded demo-data generators for the sales forecasting pipeline.

Two datasets, each with the same shape of API: ``history`` (what the pipeline ingests),
``future`` (known-in-advance inputs for the forecast horizon), ``future_actuals`` (what really
happened, for scoring) and ``truth`` (the expected value every sale was drawn from, for an
oracle benchmark).

* :func:`generate_retail` / :func:`write_retail_csv`: multi-store, multi-item daily unit sales.
* :func:`generate_takeaway` / :func:`write_takeaway_csv`: one restaurant's daily takeaway total.

Command line: ``python -m datagen retail ...`` and ``python -m datagen takeaway ...``.
"""

from datagen.retail import (
    RETAIL_COLUMNS,
    RETAIL_FUTURE_COLUMNS,
    RetailPanel,
    generate_retail,
    retail_holidays,
    write_retail_csv,
)
from datagen.takeaway import (
    TAKEAWAY_COLUMNS,
    TAKEAWAY_FUTURE_COLUMNS,
    TakeawayPanel,
    generate_takeaway,
    indian_holidays,
    write_takeaway_csv,
)

__all__ = [
    "RETAIL_COLUMNS",
    "RETAIL_FUTURE_COLUMNS",
    "TAKEAWAY_COLUMNS",
    "TAKEAWAY_FUTURE_COLUMNS",
    "RetailPanel",
    "TakeawayPanel",
    "generate_retail",
    "generate_takeaway",
    "indian_holidays",
    "retail_holidays",
    "write_retail_csv",
    "write_takeaway_csv",
]
