"""Fuzz the API: from its own OpenAPI schema (schemathesis), then with valid series and wild values.

Hypothesis drives schemathesis' strategies directly: the lazy ``from_fixture`` pytest loader of
schemathesis 4.32 does not run under pytest 9 (it writes ``node._nodeid``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from serving.app import create_app
from serving.config import Settings

EXAMPLES = 40
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: a failure is reproducible
    database=None,
)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, model_a: Path) -> Any:
    from sales_forecast.platforms.local import LocalModelRegistry

    data_root = tmp_path_factory.mktemp("fuzz") / "data"
    registry = LocalModelRegistry(data_root / "models", "sales_forecast")
    version = registry.register(str(model_a), run_id="fuzz", metrics={}, extra={})
    registry.set_alias("production", version.version)
    return create_app(Settings(data_root=data_root, poll_interval_s=0, max_instances=50))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_from_its_schema(fuzz_app: Any, mode: GenerationMode) -> None:
    # from_asgi runs the app's lifespan (the model load) and keeps it up.
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    routes = {(op.method.upper(), op.path) for op in operations}
    assert {("POST", "/predict"), ("GET", "/series")} <= routes
    statuses: list[int] = []
    for operation in operations:
        probe = operation.method.upper() == "GET" and not any(operation.iter_parameters())
        if mode is GenerationMode.NEGATIVE and probe:
            continue  # no parameters, no body: nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @FUZZ_SETTINGS
        def check(case: Any) -> None:
            # Every check but "schema-valid data must be accepted": which series exist and
            # which columns a row may carry depend on the loaded model, not on the schema,
            # so a schema-valid request may rightly get a 422 naming the field.
            response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
            statuses.append(response.status_code)
            assert response.status_code < 500, response.text

        check()
    assert statuses and max(statuses) < 500


# ---------------------------------------------------------------- valid series, wild values

SERIES = [("S1", "A"), ("S1", "B"), ("S2", "A"), ("S2", "C")]
START = dt.date(2024, 7, 1)  # the day after the model's last day
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.none(),
)
days = st.integers(min_value=-3, max_value=9).map(
    lambda k: (START + dt.timedelta(days=k)).isoformat()
)
future_rows = st.fixed_dictionaries(
    {"date": days},
    optional={"price": numbers, "on_promo": st.booleans() | st.none(), "is_holiday": st.booleans()},
)
history_rows = st.fixed_dictionaries(
    {"date": days, "sales": numbers}, optional={"price": numbers, "temperature": numbers}
)
instances = st.builds(
    lambda series, horizon, future, history: {
        "store_id": series[0],
        "item_id": series[1],
        **({} if horizon is None else {"horizon": horizon}),
        **({} if future is None else {"future": future}),
        **({} if history is None else {"history": history}),
    },
    st.sampled_from(SERIES),
    st.none() | st.integers(min_value=1, max_value=9),
    st.none() | st.lists(future_rows, max_size=4),
    st.none() | st.lists(history_rows, max_size=4),
)
bodies = st.fixed_dictionaries(
    {"instances": st.lists(instances, min_size=1, max_size=4)},
    optional={
        "parameters": st.fixed_dictionaries(
            {}, optional={"level": st.integers(1, 99), "levels": st.lists(st.integers(1, 99))}
        )
    },
)


def test_valid_series_with_wild_values_never_500(fuzz_app: Any) -> None:
    from fastapi.testclient import TestClient

    statuses: list[int] = []
    with TestClient(fuzz_app, raise_server_exceptions=False) as client:

        @given(body=bodies)
        @settings(FUZZ_SETTINGS, max_examples=150)
        def check(body: dict[str, Any]) -> None:
            response = client.post("/predict", json=body)
            statuses.append(response.status_code)
            assert response.status_code in (200, 422), response.text
            if response.status_code == 200:
                for pred in response.json()["predictions"]:
                    assert all(p["forecast"] >= 0 for p in pred["forecasts"])
            else:
                assert response.json()["detail"][0]["field"].startswith(("instances", "parameters"))

        check()
    assert 200 in statuses and 422 in statuses
