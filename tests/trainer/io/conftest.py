import pandas as pd
import pytest


@pytest.fixture(scope="session")
def forecast_rows():
    """``forecast_rows(run_id, n)``: n forecast rows of one run, as the predict command writes."""

    def rows(run_id: str, n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "run_id": run_id,
                "series_id": [f"s{i}" for i in range(n)],
                "date": pd.Timestamp("2024-07-01"),
                "forecast": [1.0] * n,
            }
        )

    return rows
