"""Local Cloud Storage and BigQuery emulators (from PyPI), started by the tests on loopback.

They run from ``.venv-emulators`` (``scripts/setup_emulators.sh`` creates it); without it the
emulator tests fail, on purpose, with that instruction: a silently skipped integration test is
a test nobody runs. Each emulator gets a free port on 127.0.0.1 and is stopped (by its own
process id) at the end of the session. The BigQuery emulator executes the SQL on DuckDB
(through sqlglot): it checks the client calls and the logic, not that the SQL is valid
BigQuery (see test_dag_on_emulators).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EMU_VENV = Path(os.environ.get("EMULATOR_VENV", REPO / ".venv-emulators"))
PROJECT = "test-project"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
SETUP_HINT = "run scripts/setup_emulators.sh (creates .venv-emulators with the pinned emulators)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gcp_emulator: runs against the local GCS/BigQuery emulators (scripts/setup_emulators.sh)",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"emulator exited with {proc.returncode} before it was ready:\n"
                + log.read_text()[-3000:]
                + f"\n({SETUP_HINT})",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"emulator not healthy at {url} after {timeout_s} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass(frozen=True)
class Emulators:
    gcs_url: str
    bq_url: str
    bq_grpc: str
    gcs_dir: Path
    project: str = PROJECT

    def client_env(self) -> dict[str, str]:
        """What points the Google clients, gcsfs and Airflow's connection at the emulators."""
        return {
            "STORAGE_EMULATOR_HOST": self.gcs_url,
            "BIGQUERY_EMULATOR_HOST": self.bq_url,
            "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(
                {
                    "conn_type": "google_cloud_platform",
                    "extra": {"project": self.project, "is_anonymous": True},
                }
            ),
            # gcsfs: no credentials, and no gRPC probe of the bucket type (the emulator only
            # speaks JSON over HTTP; the probe would wait 60 s per bucket).
            "FSSPEC_GCS_TOKEN": "anon",
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Emulators:
    gcs_bin, bq_bin = EMU_VENV / "bin" / "gcp-storage-emulator", EMU_VENV / "bin" / "bqemulator"
    missing = [str(b) for b in (gcs_bin, bq_bin) if not b.exists()]
    if missing or not (EMU_VENV / ".spatial-installed").exists():
        pytest.fail(
            f"GCP emulators not installed ({', '.join(missing) or 'spatial'}): {SETUP_HINT}",
            pytrace=False,
        )
    root = tmp_path_factory.mktemp("emulators")
    gcs_dir = root / "gcs"
    gcs_dir.mkdir()
    gcs_port, bq_port, grpc_port = _free_port(), _free_port(), _free_port()
    gcs_log, bq_log = root / "gcs.log", root / "bq.log"
    gcs_out, bq_out = gcs_log.open("w"), bq_log.open("w")
    # On disk, not --in-memory: the BigQuery emulator reads gs:// load sources from this folder.
    gcs = subprocess.Popen(
        [str(gcs_bin), "-d", str(gcs_dir), "start", "--host=127.0.0.1", f"--port={gcs_port}"],
        stdout=gcs_out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    bq_env = {
        **os.environ,
        # DuckDB's spatial extension was installed offline into this HOME by the setup script.
        "HOME": str(EMU_VENV / "home"),
        "BQEMU_GCS_LOCAL_ROOT": str(gcs_dir / ".cloudstorage"),
    }
    bq = subprocess.Popen(
        [
            str(bq_bin),
            "start",
            "--rest-host",
            "127.0.0.1",
            "--rest-port",
            str(bq_port),
            "--grpc-host",
            "127.0.0.1",
            "--grpc-port",
            str(grpc_port),
            "--project",
            PROJECT,
            "--log-level",
            "warning",
        ],
        env=bq_env,
        stdout=bq_out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{gcs_port}/storage/v1/b", gcs, gcs_log)
        _wait_healthy(f"http://127.0.0.1:{bq_port}/healthz", bq, bq_log)
        yield Emulators(
            gcs_url=f"http://127.0.0.1:{gcs_port}",
            bq_url=f"http://127.0.0.1:{bq_port}",
            bq_grpc=f"127.0.0.1:{grpc_port}",
            gcs_dir=gcs_dir,
        )
    finally:
        _stop(bq)
        _stop(gcs)
        gcs_out.close()
        bq_out.close()


@pytest.fixture(scope="session")
def gcs_client(emulators: Emulators):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project=emulators.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulators.gcs_url},
    )


@pytest.fixture(scope="session")
def bq_client(emulators: Emulators):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=emulators.project,
        client_options=ClientOptions(api_endpoint=emulators.bq_url),
        credentials=AnonymousCredentials(),
    )


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated Airflow home of its own for the dag.test() subprocesses."""
    home = tmp_path_factory.mktemp("airflow-gcp")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return home


@dataclass
class DagRunResult:
    states: dict[str, str]
    run_id: str
    output: str


@pytest.fixture(scope="session")
def run_gcp_dag(emulators: Emulators, airflow_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run tasks of the real DAG with ``dag.test()`` on the gcp platform against the emulators.

    Takes a list of runs, ``{"task_ids": [...], "logical_date": "...", "conf": {...},
    "variables": {"sf_gcp_...": ...}}``, run one after the other in one subprocess (the DAG is
    parsed once), and returns one :class:`DagRunResult` each. The GCP settings come from
    Airflow Variables (set per run as ``AIRFLOW_VAR_*``), as they would on Composer: nothing in
    the code names the project, bucket or dataset.
    """
    workdir = tmp_path_factory.mktemp("dag-runs")

    def run(specs: list[dict]) -> list[DagRunResult]:
        batch = workdir / f"batch-{len(list(workdir.glob('batch-*')))}"
        batch.mkdir()
        env = {
            **os.environ,
            **emulators.client_env(),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}",
            "SF_PLATFORM": "gcp",
        }
        env = {k: v for k, v in env.items() if not k.startswith(("AIRFLOW_VAR_", "SF_GCP_"))}
        log = batch / "dag-test.log"
        timeout = int(os.environ.get("SF_TEST_DAG_TIMEOUT", "300"))
        with log.open("w") as fh:
            try:
                proc = subprocess.run(
                    [
                        sys.executable,
                        str(REPO / "tests" / "gcp" / "run_dag_subset.py"),
                        json.dumps(specs),
                    ],
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout,
                    cwd=str(REPO),
                )
            except subprocess.TimeoutExpired:
                pytest.fail(f"dag.test() took over {timeout} s:\n{log.read_text()[-6000:]}")
        output = log.read_text()
        assert proc.returncode == 0, output[-6000:]
        results = []
        for i in range(len(specs)):
            part = output.split(f"=== run {i} ===\n", 1)[1].split(f"=== run {i + 1} ===", 1)[0]
            last = part.strip().splitlines()[-1]
            assert last.startswith('{"run"'), part[-6000:]
            result = json.loads(last)
            results.append(
                DagRunResult(states=result["states"], run_id=result["run_id"], output=part)
            )
        return results

    return run
