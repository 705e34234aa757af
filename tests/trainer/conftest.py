"""Small seeded panels shaped like ``daily_sales_features`` and a tiny model config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sf_contract import Contract
from trainer.config import LGBMParams, TrainerConfig

END = pd.Timestamp("2024-06-30")

RETAIL_CONTRACT = {
    "name": "retail",
    "date_column": "date",
    "target": "sales",
    "series_keys": ["store_id", "item_id"],
    "columns": [
        {"name": "date", "type": "DATE", "role": "date"},
        {"name": "store_id", "type": "STRING", "role": "key"},
        {"name": "item_id", "type": "STRING", "role": "key"},
        {"name": "sales", "type": "FLOAT64", "role": "target"},
        {"name": "price", "type": "FLOAT64", "role": "known", "future_fill": "last"},
        {"name": "on_promo", "type": "BOOL", "role": "known", "future_fill": "false"},
        {"name": "is_holiday", "type": "BOOL", "role": "known", "future_fill": "false"},
        {"name": "temperature", "type": "FLOAT64", "role": "observed"},
    ],
}

_WEATHER = ("tavg", "tmin", "tmax", "prcp", "wspd", "pres")
_KNOWN_BOOLS = (
    "is_holiday",
    "is_school_break",
    "is_evening",
    "is_home",
    "is_delhi",
    "is_t20i",
    "is_cricket_day",
)

TAKEAWAY_CONTRACT = {
    "name": "takeaway",
    "date_column": "date",
    "target": "Total",
    "series_keys": [],
    "columns": [
        {"name": "date", "type": "DATE", "role": "date"},
        {"name": "Total", "type": "FLOAT64", "role": "target"},
        *({"name": w, "type": "FLOAT64", "role": "observed"} for w in _WEATHER),
        {"name": "holiday_name", "type": "STRING", "role": "known", "future_fill": "value:none"},
        {"name": "dinner_impact_score", "type": "FLOAT64", "role": "known", "future_fill": "zero"},
        {"name": "importance_score", "type": "FLOAT64", "role": "known", "future_fill": "zero"},
        {"name": "is_weekend", "type": "BOOL", "role": "known", "future_fill": "weekend"},
        *(
            {"name": b, "type": "BOOL", "role": "known", "future_fill": "false"}
            for b in _KNOWN_BOOLS
        ),
    ],
}


def make_retail_panel(seed: int = 0, end: pd.Timestamp = END) -> pd.DataFrame:
    """Six series: four regular ones, a 40-day newcomer and an all-zero item."""
    rng = np.random.default_rng(seed)
    frames = []
    specs = [("S1", "A", 200, 20.0), ("S1", "B", 200, 8.0), ("S2", "A", 200, 30.0)]
    specs += [("S2", "B", 200, 12.0), ("S2", "C", 40, 15.0), ("S1", "Z", 200, 0.0)]
    for store, item, n, level in specs:
        dates = pd.date_range(end=end, periods=n, freq="D")
        promo = rng.random(n) < 0.15
        weekly = 1.0 + 0.3 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
        sales = level * weekly * (1.0 + 0.5 * promo) + rng.normal(0, 0.5, n)
        sales = np.clip(np.round(sales), 0, None) if level else np.zeros(n)
        frames.append(
            pd.DataFrame(
                {
                    "series_id": f"{store}|{item}",
                    "store_id": store,
                    "item_id": item,
                    "date": dates,
                    "sales": sales.astype(float),
                    "price": 2.5 + 0.1 * (item == "B"),
                    "on_promo": promo,
                    "is_holiday": dates.dayofyear.to_numpy() % 50 == 0,
                    "temperature": rng.normal(20, 5, n),
                    "is_gap_filled": False,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def make_takeaway_panel(seed: int = 1, n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=END, periods=n, freq="D")
    weekend = dates.dayofweek.to_numpy() >= 5
    holiday = dates.dayofyear.to_numpy() % 30 == 0
    total = 100 + 40 * weekend + 30 * holiday + rng.normal(0, 5, n)
    df = pd.DataFrame({"series_id": "total", "date": dates, "Total": total.round(1)})
    for w in _WEATHER:
        df[w] = rng.normal(25, 3, n)
    df["holiday_name"] = np.where(holiday, "festival", "none")
    df["dinner_impact_score"] = rng.random(n)
    df["importance_score"] = rng.random(n)
    for b in _KNOWN_BOOLS:
        df[b] = False
    df["is_holiday"] = holiday
    df["is_weekend"] = weekend
    df["is_gap_filled"] = False
    return df


@pytest.fixture(scope="session")
def retail_contract() -> Contract:
    return Contract.from_dict(RETAIL_CONTRACT)


@pytest.fixture(scope="session")
def takeaway_contract() -> Contract:
    return Contract.from_dict(TAKEAWAY_CONTRACT)


@pytest.fixture()
def retail_panel() -> pd.DataFrame:
    return make_retail_panel()


@pytest.fixture()
def takeaway_panel() -> pd.DataFrame:
    return make_takeaway_panel()


@pytest.fixture(scope="session")
def small_config() -> TrainerConfig:
    return TrainerConfig(
        horizon=7,
        params=LGBMParams(n_estimators=15, num_leaves=15, min_child_samples=5),
        interval_windows=2,
        num_threads=1,
    )


@pytest.fixture(scope="session")
def fitted(retail_contract: Contract, small_config: TrainerConfig):
    """One forecaster fitted with intervals, shared by read-only tests."""
    from trainer.model import Forecaster

    return Forecaster.fit(make_retail_panel(), retail_contract, small_config)


def write_duckdb(panel: pd.DataFrame, path: Path, table: str = "daily_sales_features") -> str:
    import duckdb

    frame = panel.copy()
    frame["date"] = frame["date"].dt.date
    con = duckdb.connect(str(path))
    try:
        con.register("frame", frame)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM frame")
    finally:
        con.close()
    return f"duckdb://{path}?table={table}"


@pytest.fixture()
def retail_duckdb(tmp_path: Path, retail_panel: pd.DataFrame) -> str:
    return write_duckdb(retail_panel, tmp_path / "warehouse.duckdb")


@pytest.fixture()
def retail_contract_file(tmp_path: Path) -> str:
    path = tmp_path / "retail_contract.json"
    path.write_text(json.dumps(RETAIL_CONTRACT))
    return str(path)


@pytest.fixture(scope="session")
def panel_factory():
    """``make_retail_panel`` for tests that need variants of the panel."""
    return make_retail_panel


@pytest.fixture(scope="session")
def duckdb_writer():
    """``write_duckdb(panel, path) -> duckdb:// URI``."""
    return write_duckdb
