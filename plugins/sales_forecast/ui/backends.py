"""Where the view reads from: ``SF_PLATFORM`` picks the backend, as it picks the DAG's platform.

Locally the DuckDB file and the folder registry (:mod:`sales_forecast.ui.local`), on GCP
BigQuery and the Vertex AI Model Registry (:mod:`sales_forecast.ui.gcp`); both only read, and
both answer through the same :class:`~sales_forecast.ui.data.ForecastsData`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from sales_forecast.config import Settings
from sales_forecast.contract import load_contract
from sales_forecast.ui.data import ForecastsData

__all__ = ["open_data"]


def _airflow_variable(name: str, default: str) -> str:
    from sales_forecast.ui.gcp import airflow_variable

    return airflow_variable(name, default)


@contextlib.contextmanager
def open_data(
    settings: Settings,
    dataset: str,
    variable_get: Callable[[str, str], str] = _airflow_variable,
) -> Iterator[ForecastsData]:
    """The view's data for one dataset contract, on the configured platform, read-only.

    ``dataset`` is a contract name (never a path): an unknown one is a ContractError.
    """
    contract = load_contract(dataset, settings)
    suffix = settings.namespace(contract.name)
    if settings.platform == "gcp":
        from sales_forecast.ui.gcp import gcp_data

        with gcp_data(settings, contract, suffix, variable_get) as data:
            yield data
    else:
        from sales_forecast.ui.local import local_data

        with local_data(settings, contract, suffix) as data:
            yield data
