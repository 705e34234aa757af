"""Tiny seeded models (fitted once per session) and a temporary local registry to serve them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sf_contract.schema import Contract
from trainer.config import LGBMParams, TrainerConfig

END = pd.Timestamp("2024-06-30")  # the models' last training day
NEWER_DAYS = 5  # the panel goes on after END: "new actuals" for history requests
HORIZON = 7

RETAIL_CONTRACT: dict[str, Any] = {
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

TAKEAWAY_CONTRACT: dict[str, Any] = {
    "name": "takeaway",
    "date_column": "date",
    "target": "Total",
    "series_keys": [],
    "columns": [
        {"name": "date", "type": "DATE", "role": "date"},
        {"name": "Total", "type": "FLOAT64", "role": "target"},
        {"name": "tavg", "type": "FLOAT64", "role": "observed"},
        {"name": "holiday_name", "type": "STRING", "role": "known", "future_fill": "value:none"},
        {"name": "is_weekend", "type": "BOOL", "role": "known", "future_fill": "false"},
    ],
}

# (store, item, days of history up to END, level); S2|C is too short for intervals.
RETAIL_SERIES = [("S1", "A", 150, 20.0), ("S1", "B", 150, 8.0), ("S2", "A", 150, 30.0)]
RETAIL_SERIES += [("S2", "C", 12, 15.0)]


def make_retail_panel(seed: int = 0, newer_days: int = NEWER_DAYS) -> pd.DataFrame:
    """Daily panel up to END + newer_days (the models train on rows up to END)."""
    rng = np.random.default_rng(seed)
    frames = []
    for store, item, n, level in RETAIL_SERIES:
        dates = pd.date_range(end=END + pd.Timedelta(days=newer_days), periods=n + newer_days)
        promo = rng.random(len(dates)) < 0.15
        weekly = 1.0 + 0.3 * np.sin(2 * np.pi * dates.dayofweek.to_numpy() / 7)
        sales = level * weekly * (1.0 + 0.5 * promo) + rng.normal(0, 0.5, len(dates))
        frames.append(
            pd.DataFrame(
                {
                    "store_id": store,
                    "item_id": item,
                    "date": dates,
                    "sales": np.clip(np.round(sales), 0, None).astype(float),
                    "price": 2.5 + 0.1 * (item == "B") - 0.2 * promo,
                    "on_promo": promo,
                    "is_holiday": dates.dayofyear.to_numpy() % 50 == 0,
                    "temperature": rng.normal(20, 5, len(dates)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def make_takeaway_panel(seed: int = 1, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=END, periods=n, freq="D")
    weekend = dates.dayofweek.to_numpy() >= 5
    total = 100 + 40 * weekend + rng.normal(0, 5, n)
    return pd.DataFrame(
        {
            "date": dates,
            "Total": total.round(1),
            "tavg": rng.normal(25, 3, n),
            "holiday_name": np.where(dates.day == 1, "first", "none"),
            "is_weekend": weekend,
        }
    )


def small_config(seed: int = 0, n_estimators: int = 15) -> TrainerConfig:
    return TrainerConfig(
        horizon=HORIZON,
        params=LGBMParams(n_estimators=n_estimators, num_leaves=15, min_child_samples=5),
        interval_windows=2,
        num_threads=1,
        seed=seed,
    )


def fit_and_save(
    panel: pd.DataFrame, contract: dict[str, Any], config: TrainerConfig, path: Path
) -> Path:
    from trainer.model import Forecaster

    training = panel[panel["date"] <= END]
    Forecaster.fit(training, Contract.from_dict(contract), config).save(str(path))
    return path


@pytest.fixture(scope="session")
def retail_panel() -> pd.DataFrame:
    return make_retail_panel()


@pytest.fixture(scope="session")
def model_a(tmp_path_factory: pytest.TempPathFactory, retail_panel: pd.DataFrame) -> Path:
    """A small retail model (read-only: copy it before changing anything)."""
    path = tmp_path_factory.mktemp("model_a") / "model"
    return fit_and_save(retail_panel, RETAIL_CONTRACT, small_config(), path)


@pytest.fixture(scope="session")
def model_b(tmp_path_factory: pytest.TempPathFactory, retail_panel: pd.DataFrame) -> Path:
    """Another retail model over the same series (different trees, different forecasts)."""
    path = tmp_path_factory.mktemp("model_b") / "model"
    return fit_and_save(retail_panel, RETAIL_CONTRACT, small_config(seed=1, n_estimators=25), path)


@pytest.fixture(scope="session")
def takeaway_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("takeaway") / "model"
    return fit_and_save(make_takeaway_panel(), TAKEAWAY_CONTRACT, small_config(), path)


class Registry:
    """A temporary local registry, written by the Airflow side's own LocalModelRegistry."""

    def __init__(self, data_root: Path, name: str = "sales_forecast") -> None:
        from sales_forecast.platforms.local import LocalModelRegistry

        self.data_root = data_root
        self.name = name
        self.registry = LocalModelRegistry(data_root / "models", name)
        self._runs = 0

    def promote(self, model_dir: Path, alias: str = "production") -> str:
        """Register ``model_dir`` as a new version and point ``alias`` at it."""
        self._runs += 1
        version = self.registry.register(
            str(model_dir), run_id=f"run-{self._runs}", metrics={}, extra={}
        )
        self.registry.set_alias(alias, version.version)
        return version.version

    def folder(self, version: str) -> Path:
        return self.data_root / "models" / self.name / version


@pytest.fixture()
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "data")


@pytest.fixture()
def make_settings(tmp_path: Path) -> Callable[..., Any]:
    """``Settings`` for a temporary data root (no polling unless asked)."""
    from serving.config import Settings

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_root": tmp_path / "data", "poll_interval_s": 0}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture()
def client_for(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """Start an app (lifespan included) with settings overrides; closed after the test."""
    from fastapi.testclient import TestClient

    from serving.app import create_app

    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture()
def served(registry: Registry, model_a: Path, client_for: Callable[..., Any]) -> Any:
    """A client of an app serving model_a as registry version 1."""
    registry.promote(model_a)
    return client_for()


def copy_model(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def write_manifest(folder: Path, name: str = "manifest.json") -> dict[str, str]:
    """A manifest like the GCP promotion writes (sha256 of every file)."""
    import hashlib

    files = {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != name
    }
    (folder / name).write_text(json.dumps({"files": files, "run_id": "r1"}))
    return files


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: builds the serving image's venv from serving/requirements.txt"
    )


@pytest.fixture(scope="session")
def helpers() -> Any:
    """This file's helpers and constants for the test modules (conftest is not importable)."""
    import types

    return types.SimpleNamespace(
        END=END,
        HORIZON=HORIZON,
        NEWER_DAYS=NEWER_DAYS,
        RETAIL_CONTRACT=RETAIL_CONTRACT,
        TAKEAWAY_CONTRACT=TAKEAWAY_CONTRACT,
        make_retail_panel=make_retail_panel,
        fit_and_save=fit_and_save,
        small_config=small_config,
        copy_model=copy_model,
        write_manifest=write_manifest,
    )
