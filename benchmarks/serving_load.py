"""Load benchmark of the serving app on loopback, next to the same forecasts made in-process.

Prints figures (it is not a test). Needs a registered production model: ``make demo``.

    .venv/bin/python benchmarks/serving_load.py                  # 3 runs, 200 req/s, 10 s
    .venv/bin/python benchmarks/serving_load.py --runs 5 --pin   # server and load on own cores

What it measures (medians over ``--runs`` runs, after a warm-up):

1. **single**: one series, 28 days, sent open-loop at a fixed ``--rate`` (a request every
   1/rate s whether or not earlier ones came back, rotating over the model's series).
   Latency runs from the moment a request was *due* to its last response byte, so a server
   (or a load generator) falling behind shows up in the figures instead of slowing the
   arrivals (no coordinated omission).
2. **batch**: ``--batch`` instances of 28 days (cycling over the series), one request at a
   time (closed loop).
3. **batch+future**: the same batch with one known-future row per instance, which sends
   every instance through ``Forecaster.forecast`` (no precomputed answer).

In-process floors, measured in this process on the same model without HTTP:

* ``Forecaster.forecast``: the trainer's API, one call for the request's series;
* ``Predictor.predict``: the serving code path itself (validated request -> JSON bytes),
  i.e. everything the server does except HTTP, parsing and validation.

The load generator is a small asyncio HTTP/1.1 client over keep-alive connections (far
lighter than the server, so it can sit on the same 2 cores; ``--pin`` puts the server on
CPU 0 and the generator on CPU 1).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- stats


def _pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class RunStats:
    """One run: latencies in seconds, how many failed, and the wall time it took."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    lag_p99: float = 0.0  # how late the generator sent (open loop)
    error_kinds: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        if self.error_kinds:
            print(f"  errors: {sorted(set(self.error_kinds))}", file=sys.stderr)
        ms = [v * 1000 for v in self.latencies]
        return {
            "n": len(ms),
            "errors": self.errors,
            "throughput": len(ms) / self.seconds if self.seconds else float("nan"),
            "p50": _pct(ms, 50),
            "p95": _pct(ms, 95),
            "p99": _pct(ms, 99),
            "max": max(ms) if ms else float("nan"),
            "lag_p99": self.lag_p99 * 1000,
        }


def _rotating(predictor: Any, requests: Sequence[Any]) -> Callable[[], Any]:
    """One request after the other, like the open-loop HTTP run sends them."""
    state = {"i": 0}

    def call() -> Any:
        state["i"] += 1
        return predictor.predict(requests[state["i"] % len(requests)], max_instances=10**6)

    return call


def _median_of_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def _timed(fn: Callable[[], Any], repeat: int) -> RunStats:
    fn()  # warm: first calls pay for lazy imports and caches
    stats = RunStats()
    started = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        stats.latencies.append(time.perf_counter() - t0)
    stats.seconds = time.perf_counter() - started
    return stats


# --------------------------------------------------------------------------- HTTP client


class Client:
    """Keep-alive HTTP/1.1 connections to one server: POST JSON, read the whole answer."""

    # uvicorn closes a connection idle for 5 s (timeout_keep_alive); reuse younger ones only,
    # as HTTP clients do, so a closed socket is never mistaken for a server error.
    MAX_IDLE_S = 4.0

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # A large buffer: a 300 KB answer is read without pausing the socket (flow control).
        return await asyncio.open_connection(self.host, self.port, limit=1 << 22)

    async def open(self, n: int) -> None:
        now = asyncio.get_running_loop().time()
        for _ in range(n):
            self.idle.append((*await self._connect(), now))

    def request_bytes(self, body: bytes) -> bytes:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def send(self, request: bytes) -> int:
        loop = asyncio.get_running_loop()
        conn = None
        while self.idle:
            reader, writer, used = self.idle.pop()
            if loop.time() - used < self.MAX_IDLE_S:
                conn = (reader, writer)
                break
            writer.close()
        reader, writer = conn or await self._connect()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        self.idle.append((reader, writer, loop.time()))
        return status

    async def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def open_loop(
    client: Client, requests: Sequence[bytes], rate: float, seconds: float
) -> RunStats:
    """Send ``rate`` requests per second for ``seconds``; latency counted from the due time."""
    loop = asyncio.get_running_loop()
    stats = RunStats()
    lags: list[float] = []
    total = int(rate * seconds)
    start = loop.time() + 0.05

    async def one(i: int, due: float) -> None:
        lags.append(loop.time() - due)
        try:
            status = await client.send(requests[i % len(requests)])
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            stats.errors += 1
            stats.error_kinds.append(type(exc).__name__)
            return
        if status != 200:
            stats.errors += 1
            stats.error_kinds.append(f"HTTP {status}")
            return
        stats.latencies.append(loop.time() - due)

    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*tasks)
    stats.seconds = loop.time() - start
    stats.lag_p99 = _pct(lags, 99)
    return stats


async def closed_loop(client: Client, request: bytes, count: int) -> RunStats:
    loop = asyncio.get_running_loop()
    stats = RunStats()
    start = loop.time()
    for _ in range(count):
        t0 = loop.time()
        status = await client.send(request)
        if status != 200:
            stats.errors += 1
            stats.error_kinds.append(f"HTTP {status}")
        else:
            stats.latencies.append(loop.time() - t0)
    stats.seconds = loop.time() - start
    return stats


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AIP_HTTP_PORT": str(port),
        "SF_DATA_ROOT": str(args.data_root),
        "SF_MODEL_NAME": args.model_name,
        "SF_SERVING_ALIAS": args.alias,
        "SF_SERVING_LOG_LEVEL": "warning",
    }
    env.pop("AIP_STORAGE_URI", None)
    if args.model_dir:
        env.update(AIP_STORAGE_URI=str(args.model_dir.resolve()), SF_MODEL_VERSION="bench")
    command = [sys.executable, "-m", "serving"]
    if args.pin:
        command = ["taskset", "-c", "0", *command]
    proc = subprocess.Popen(command, env=env, cwd=REPO)
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server was not ready within 120 s")


# --------------------------------------------------------------------------- main


def _bodies(series: list[dict[str, Any]], batch: int, horizon: int, first_day: str):
    single = [json.dumps({"instances": [{**s, "horizon": horizon}]}).encode() for s in series]
    batch_body = {
        "instances": [{**series[i % len(series)], "horizon": horizon} for i in range(batch)]
    }
    future_body = {
        "instances": [
            {**inst, "future": [{"date": first_day, "on_promo": True}]}
            for inst in batch_body["instances"]
        ]
    }
    return single, batch_body, future_body


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, default=REPO / ".local")
    p.add_argument("--model-name", default="sales_forecast")
    p.add_argument("--alias", default="production")
    p.add_argument(
        "--model-dir", type=Path, help="serve this model folder (AIP_STORAGE_URI) instead"
    )
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rate", type=float, default=200.0, help="single-series requests/s")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per open-loop run")
    p.add_argument("--batch", type=int, default=100, help="instances per batch request")
    p.add_argument("--batch-requests", type=int, default=100, help="batch requests per run")
    p.add_argument("--slow-requests", type=int, default=3, help="batch+future requests per run")
    p.add_argument("--horizon", type=int, default=28)
    p.add_argument("--pin", action="store_true", help="server on CPU 0, load generator on CPU 1")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)

    load_start = os.getloadavg()
    import pandas as pd

    from serving.model_store import read_registry
    from serving.predictor import Predictor, quiet_expected_warnings
    from serving.schemas import PredictRequest
    from trainer.model import Forecaster

    if args.model_dir:
        uri, version = str(args.model_dir.resolve()), "bench"
    else:
        record = read_registry(
            args.data_root / "models" / args.model_name / "registry.json", args.alias
        )
        uri, version = record.uri, str(record.version)
    fc = Forecaster.load(uri)
    keys = list(fc.contract.series_keys)
    state = fc.series
    series = [{k: str(row[k]) for k in keys} for _, row in state.iterrows()]
    first_day = (pd.Timestamp(fc.last_date) + pd.Timedelta(days=1)).date().isoformat()
    single, batch_body, future_body = _bodies(series, args.batch, args.horizon, first_day)
    sids = state["series_id"].tolist()
    if args.pin:
        os.sched_setaffinity(0, {1})

    print(f"model {uri} (version {version}): {len(sids)} series, horizon {args.horizon}")
    quiet_expected_warnings()  # as the app's lifespan does: same conditions as the server
    predictor = Predictor(fc, version=version)
    gc.collect()
    gc.freeze()  # as the server does after a load (serving/model_store.py)
    single_req = [PredictRequest.model_validate_json(b) for b in single]
    batch_req = PredictRequest.model_validate(batch_body)
    future_req = PredictRequest.model_validate(future_body)
    batch_sids = sorted({sids[i % len(sids)] for i in range(args.batch)})

    def floor_run() -> dict[str, RunStats]:
        """One run of every in-process measurement (between the HTTP runs: same load)."""
        return {
            "fc_single": _timed(lambda: fc.forecast(args.horizon, series_ids=sids[:1]), 5),
            "fc_batch": _timed(lambda: fc.forecast(args.horizon, series_ids=batch_sids), 3),
            "pp_single": _timed(_rotating(predictor, single_req), 2000),
            "pp_batch": _timed(lambda: predictor.predict(batch_req, max_instances=10**6), 200),
            "pp_future": _timed(
                lambda: predictor.predict(future_req, max_instances=10**6), args.slow_requests
            ),
        }

    port = _free_port()
    proc = start_server(args, port)
    try:
        floor, results = asyncio.run(_runs(args, port, single, batch_body, future_body, floor_run))
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    report = {
        "floor": floor,
        "http": results,
        "args": {k: str(v) for k, v in vars(args).items()},
        # Other work on the machine skews every figure: say how busy it was.
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    _print(report, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


async def _runs(
    args: argparse.Namespace,
    port: int,
    single: list[bytes],
    batch_body: dict[str, Any],
    future_body: dict[str, Any],
    floor_run: Callable[[], dict[str, RunStats]],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Alternate in-process and HTTP runs, so a change of load on the machine hits both."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    client = Client("127.0.0.1", port, "/predict")
    await client.open(16)
    single_requests = [client.request_bytes(b) for b in single]
    batch_request = client.request_bytes(json.dumps(batch_body).encode())
    future_request = client.request_bytes(json.dumps(future_body).encode())
    # Warm-up: connections, caches, the server's first-request paths.
    await open_loop(client, single_requests, args.rate, 2.0)
    await closed_loop(client, batch_request, 10)
    await closed_loop(client, future_request, 1)
    runs: dict[str, list[dict[str, float]]] = {"single": [], "batch": [], "future": []}
    floors: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.runs):
        # In-process first (blocking this loop is fine: nothing else runs on it meanwhile).
        for name, stats in floor_run().items():
            floors.setdefault(name, []).append(stats.summary())
        runs["single"].append(
            (await open_loop(client, single_requests, args.rate, args.duration)).summary()
        )
        runs["batch"].append(
            (await closed_loop(client, batch_request, args.batch_requests)).summary()
        )
        runs["future"].append(
            (await closed_loop(client, future_request, args.slow_requests)).summary()
        )
    await client.close()
    return (
        {k: _median_of_runs(v) for k, v in floors.items()},
        {k: _median_of_runs(v) for k, v in runs.items()},
    )


def _print(report: dict[str, Any], args: argparse.Namespace) -> None:
    f, h = report["floor"], report["http"]
    print(
        f"\n{platform.python_version()} on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}); medians of {args.runs} runs"
        + ("; server pinned to CPU 0, load to CPU 1" if args.pin else "")
    )
    start, end = report["loadavg_start"], report["loadavg_end"]
    print(f"load average (1 min) {start[0]:.2f} at the start, {end[0]:.2f} at the end")
    row = "| {:<44} | {:>9} | {:>8} | {:>8} | {:>8} | {:>6} |"
    print(row.format("scenario", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"))
    print(row.format("-" * 44, "-" * 9, "-" * 8, "-" * 8, "-" * 8, "-" * 6))

    def line(name: str, s: dict[str, float]) -> None:
        print(
            row.format(
                name,
                f"{s['throughput']:.1f}",
                f"{s['p50']:.2f}",
                f"{s['p95']:.2f}",
                f"{s['p99']:.2f}",
                int(s["errors"]),
            )
        )

    line(f"single 28d, HTTP open loop {args.rate:.0f}/s", h["single"])
    line("single 28d, in-process Predictor.predict", f["pp_single"])
    line("single 28d, in-process Forecaster.forecast", f["fc_single"])
    line(f"batch {args.batch}x28d, HTTP closed loop", h["batch"])
    line(f"batch {args.batch}x28d, in-process Predictor.predict", f["pp_batch"])
    line(f"batch {args.batch}x28d, in-process Forecaster.forecast", f["fc_batch"])
    line(f"batch+future {args.batch}x28d, HTTP closed loop", h["future"])
    line(f"batch+future {args.batch}x28d, in-process Predictor", f["pp_future"])
    print(
        f"\nsingle: p99 {h['single']['p99']:.2f} ms at {h['single']['throughput']:.0f} req/s "
        f"(target < 25 ms at 200/s); generator send lag p99 {h['single']['lag_p99']:.2f} ms"
    )
    print(
        f"batch: HTTP p50 / in-process Predictor p50 = "
        f"{h['batch']['p50'] / f['pp_batch']['p50']:.2f}x; "
        f"/ Forecaster.forecast p50 = {h['batch']['p50'] / f['fc_batch']['p50']:.3f}x (target < 2x)"
    )
    print(
        f"batch+future: HTTP p50 / in-process Predictor p50 = "
        f"{h['future']['p50'] / f['pp_future']['p50']:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
