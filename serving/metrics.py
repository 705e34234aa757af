"""The app's own Prometheus metrics, next to the HTTP ones prometheus-fastapi-instrumentator keeps.

Each app gets its own ``CollectorRegistry`` (the tests build many apps in one process; the
global registry would refuse the second set of names).
"""

from __future__ import annotations

__all__ = ["LATENCY_BUCKETS", "ServingMetrics"]

import datetime as dt
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from serving.model_store import LoadedModel
    from serving.predictor import PredictStats

# The instrumentator's defaults start at 10 ms; a cached forecast answers in about 1 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServingMetrics:
    """Model identity and load events, and how each request was answered."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.model_info = Gauge(
            "sales_forecast_model_info",
            "The model version being served (value 1; labels say which)",
            ["model", "version", "mode"],
            registry=registry,
        )
        self.model_loaded = Gauge(
            "sales_forecast_model_loaded", "1 when a verified model is loaded", registry=registry
        )
        # A timestamp, not an age: `time() - sales_forecast_model_train_end_timestamp_seconds`
        # ages by itself in an alert rule, with no scrape-time work here.
        self.model_train_end = Gauge(
            "sales_forecast_model_train_end_timestamp_seconds",
            "Start (UTC) of the last day of data the served model was trained on",
            registry=registry,
        )
        self.model_swaps = Counter(
            "sales_forecast_model_swaps",
            "Model versions put into service (the first load included)",
            registry=registry,
        )
        self.model_load_failures = Counter(
            "sales_forecast_model_load_failures",
            "Model versions refused (sha256 mismatch) or failed to load",
            ["reason"],
            registry=registry,
        )
        self.instances = Histogram(
            "sales_forecast_predict_instances",
            "Instances per predict request",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.answered = Counter(
            "sales_forecast_instances_answered",
            "Instances answered, by path: precomputed base forecast or a forecaster call",
            ["path"],
            registry=registry,
        )
        self.forecaster_calls = Counter(
            "sales_forecast_forecaster_calls",
            "Forecaster.forecast calls made for requests",
            registry=registry,
        )
        self.model_loaded.set(0)

    def model_changed(self, model: LoadedModel, model_name: str, mode: str) -> None:
        self.model_info.clear()
        self.model_info.labels(model=model_name, version=model.version, mode=mode).set(1)
        self.model_loaded.set(1)
        if model.train_end is not None:
            start = dt.datetime.combine(model.train_end, dt.time(), tzinfo=dt.UTC)
            self.model_train_end.set(start.timestamp())
        self.model_swaps.inc()

    def load_failed(self, reason: str) -> None:
        self.model_load_failures.labels(reason=reason).inc()

    def request_done(self, n_instances: int, stats: PredictStats) -> None:
        self.instances.observe(n_instances)
        if stats.cached:
            self.answered.labels(path="cache").inc(stats.cached)
        if stats.computed:
            self.answered.labels(path="forecaster").inc(stats.computed)
        if stats.forecaster_calls:
            self.forecaster_calls.inc(stats.forecaster_calls)
