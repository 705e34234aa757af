"""The DAG under a real Airflow: api-server, scheduler and dag-processor as separate processes.

Every task runs in its own process (LocalExecutor), as under Cloud Composer, so this catches what
`airflow dags test` cannot: DuckDB file locking between task processes, the trigger form's conf
reaching the tasks through the REST API, and a manual run without a logical date.

It runs on a free port, not 8080, set only through `SF_AIRFLOW_PORT`: the API port, the UI's base
URL and the task runners' execution-API URL come from scripts/airflow_env.sh, as in the venv and
`make airflow`. With the port moved alone, every task would be "up for retry" with an empty log.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Where the port and its two URLs come from; never inherited from the shell running the tests.
PORT_KEYS = (
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "_SF_DERIVED_API_PORT",
    "_SF_DERIVED_BASE_URL",
    "_SF_DERIVED_EXECUTION_URL",
    "SF_AIRFLOW_PORT",
)


def _with_airflow_port(env: dict[str, str], port: int) -> dict[str, str]:
    """`env` plus what scripts/airflow_env.sh derives from SF_AIRFLOW_PORT=port."""
    clean = {k: v for k, v in env.items() if k not in PORT_KEYS} | {"SF_AIRFLOW_PORT": str(port)}
    out = subprocess.run(
        ["bash", "-c", f'. "{REPO}/scripts/airflow_env.sh" && sf_airflow_env && env -0'],
        env=clean,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def _call(base, path, token=None, method="GET", body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json"}
        | ({"authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    from datagen.retail import generate_retail

    root = tmp_path_factory.mktemp("real")
    panel = generate_retail(n_stores=1, n_items=3, start="2024-06-01", end="2025-03-31", seed=5)
    sales = root / "sales.csv"
    panel.history.to_csv(sales, index=False)
    home = root / "airflow"
    home.mkdir()
    (home / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "pw"}')
    port = _free_port()
    assert port != 8080
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-" + "x" * 48,
        "AIRFLOW__API__SECRET_KEY": "test-secret-key",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}",
        "SF_PLATFORM": "local",
        "SF_DATA_ROOT": str(root / "data"),
        "SF_INPUT_ROOTS": json.dumps([str(root)]),  # the test's input files live beside it
        # Unpausing creates a scheduled run for the latest day too: keep it as small as ours.
        "SF_DEFAULT_INPUT_URI": str(sales),
    }
    env = _with_airflow_port(env, port)
    assert env["AIRFLOW__API__PORT"] == str(port)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://localhost:{port}/execution/"
    subprocess.run([BIN / "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    procs = []

    def start(*args):
        log = open(root / f"{args[0]}.log", "w")
        procs.append(
            subprocess.Popen(
                [BIN / "airflow", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    base = f"http://127.0.0.1:{port}"
    # No --port: the api-server takes AIRFLOW__API__PORT, as under `make airflow`.
    start("api-server", "--host", "127.0.0.1")
    deadline = time.monotonic() + 120
    while True:
        try:
            _call(base, "/api/v2/monitor/health")
            # The address the task runners will call answers too.
            _call(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"], "health")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    # Start the task runners only once the API answers, so a first task does not time out.
    start("scheduler", "--skip-serve-logs")
    start("dag-processor")
    try:
        token = _call(
            base, "/auth/token", method="POST", body={"username": "admin", "password": "pw"}
        )["access_token"]
        yield {"base": base, "token": token, "root": root, "sales": sales}
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def _wait_for_dag(af):
    deadline = time.monotonic() + 180
    while True:
        try:
            return _call(af["base"], "/api/v2/dags/sales_forecast", af["token"])
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(2)


def test_triggered_run_with_deploy_succeeds_under_a_real_scheduler(airflow):
    af = airflow
    dag = _wait_for_dag(af)
    assert dag["is_paused"] is True  # new DAGs wait for the user
    _call(af["base"], "/api/v2/dags/sales_forecast", af["token"], "PATCH", {"is_paused": False})
    run = _call(
        af["base"],
        "/api/v2/dags/sales_forecast/dagRuns",
        af["token"],
        "POST",
        {
            "logical_date": None,
            "conf": {"enable_deploy": True, "input_uri": str(af["sales"]), "horizon": 7},
        },
    )
    run_path = "/api/v2/dags/sales_forecast/dagRuns/" + urllib.parse.quote(run["dag_run_id"])
    deadline = time.monotonic() + 900
    state = run["state"]
    states: dict[str, str] = {}
    while state not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(3)
        state = _call(af["base"], run_path, af["token"])["state"]
        tis = _call(af["base"], run_path + "/taskInstances", af["token"])["task_instances"]
        states = {t["task_id"]: t["state"] for t in tis}
        # A task runner that cannot reach the execution API leaves its task up for retry (the
        # wrong-port failure); no task of a healthy run retries, so stop here, not minutes later.
        if "up_for_retry" in states.values():
            break
    tis = _call(af["base"], run_path + "/taskInstances", af["token"])["task_instances"]
    states = {t["task_id"]: t["state"] for t in tis}
    assert state == "success", (states, (af["root"] / "scheduler.log").read_text()[-3000:])
    assert set(states.values()) == {"success"}
    registry = json.loads(
        (af["root"] / "data" / "models" / "sales_forecast" / "registry.json").read_text()
    )
    assert registry["aliases"]["production"] == "1"
