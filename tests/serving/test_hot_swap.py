"""A real server on loopback: promotion while requests run, and a responsive event loop."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from serving.app import create_app

PLAIN = {"instances": [{"store_id": "S1", "item_id": "A"}, {"store_id": "S2", "item_id": "A"}]}
WITH_FUTURE = {
    "instances": [
        {
            "store_id": "S1",
            "item_id": "B",
            "horizon": 5,
            "future": [{"date": "2024-07-02", "on_promo": True}],
        }
    ]
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_promotion_swaps_without_a_failed_request(
    registry: Any, model_a: Any, model_b: Any, make_settings: Any
) -> None:
    registry.promote(model_a)
    app = create_app(make_settings(poll_interval_s=0.05))
    results: list[tuple[int, int, str | None, str]] = []  # (worker, status, version, body)
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(n: int, url: str) -> None:
        body = PLAIN if n % 2 else WITH_FUTURE  # both paths: the cache and the forecaster
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    r = client.post("/predict", json=body)
                    version = r.json().get("model_version") if r.status_code == 200 else None
                    results.append((n, r.status_code, version, r.text))
        except BaseException as exc:  # a dropped connection is a failure too
            errors.append(exc)

    with running(app) as url:
        threads = [threading.Thread(target=worker, args=(n, url)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        registry.promote(model_b)
        deadline = time.monotonic() + 60
        while not any(v == "2" for _, _, v, _ in results[-20:]):
            assert time.monotonic() < deadline, "version 2 was never served"
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(timeout=30)

    assert not errors
    assert results
    assert all(status == 200 for _, status, _, _ in results), [r for r in results if r[1] != 200][
        :3
    ]
    assert {v for _, _, v, _ in results} == {"1", "2"}
    # Per client the version only moves forward, and each version answers consistently.
    for n in range(4):
        mine = [v for w, _, v, _ in results if w == n]
        assert mine == sorted(mine), f"worker {n} went back to version 1"
        bodies = {v: {b for w, _, vv, b in results if w == n and vv == v} for v in ("1", "2")}
        assert all(len(b) <= 1 for b in bodies.values()), "one version, two different answers"
    assert app.state.store.current.version == "2"


def test_event_loop_stays_responsive_during_a_slow_forecast(
    registry: Any, model_a: Any, make_settings: Any
) -> None:
    registry.promote(model_a)
    app = create_app(make_settings())
    with running(app) as url:
        predictor = app.state.store.current.predictor
        original = predictor.forecaster.forecast

        def slow(*args: Any, **kwargs: Any) -> Any:
            time.sleep(1.5)  # stands in for a long CPU-bound forecast in the worker thread
            return original(*args, **kwargs)

        predictor.forecaster.forecast = slow
        try:
            outcome: dict[str, Any] = {}
            thread = threading.Thread(
                target=lambda: outcome.update(
                    r=httpx.post(f"{url}/predict", json=WITH_FUTURE, timeout=30)
                )
            )
            thread.start()
            time.sleep(0.2)
            started = time.perf_counter()
            assert httpx.get(f"{url}/live", timeout=5).status_code == 200
            plain = httpx.post(f"{url}/predict", json=PLAIN, timeout=5)
            assert plain.status_code == 200
            assert time.perf_counter() - started < 0.5
            thread.join()
            assert outcome["r"].status_code == 200
        finally:
            predictor.forecaster.forecast = original


@pytest.fixture(autouse=True)
def _quiet_uvicorn(caplog: Any) -> None:
    caplog.set_level("WARNING", logger="uvicorn")
