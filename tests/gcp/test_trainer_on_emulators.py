"""The trainer image's side of the GCP flow, against the GCS and BigQuery emulators.

The real ``python -m trainer`` runs with exactly the jobs the Vertex AI custom jobs get (planned
by the shared ``steps.plan_*`` on the gcp platform): it reads ``bq://`` tables, writes the model
folder to ``gs://``, the gate to ``gs://`` and the forecasts and backtest rows to BigQuery. The
``finish_*`` halves then read what it wrote, through GcsStore and BigQueryWarehouse, as the
operators do after the job. Vertex AI has no emulator: the Model Registry is a stub that holds
no production model (the operators' lookups are unit-tested with a mocked hook).

Emulator gap worked around on the client side only (see ../shared notes): the BigQuery client
uploads a DataFrame with Content-Type ``*/*``, which the emulator rejects, so the trainer's
subprocess gets a ``sitecustomize`` that sets the content type the real service also accepts.

What this proves: the trainer's real GCS and BigQuery client calls and the hand-over between the
operators and the trainer (arguments, paths, tables, files) end to end. What it does not: the
production BigQuery paths. The emulator (DuckDB + sqlglot underneath) runs no multi-statement
transactions and has no Storage Read API, so the write takes its two-statement branch and the
read its REST one; both production paths are unit-tested at the client-library boundary with
exact calls in tests/trainer/io/test_bigquery_tables.py. Nor does it show that the SQL is valid
on real BigQuery, IAM (the jobs' service account roles) or quotas: scripts/gcp_smoke.sh does,
on a project.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.gcp_emulator

REPO = Path(__file__).resolve().parents[2]
DATASET = "trainer_io"
HORIZON = 7
CUTOFF = date(2024, 12, 29)


@pytest.fixture(scope="module")
def client_env(emulators):
    """This process's hooks (GcsStore, BigQueryWarehouse) point at the emulators too."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in emulators.client_env().items():
            mp.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def gcp_run(client_env):
    """A GcpRun as the operators resolve it, pointing at the emulator project and bucket."""
    from sales_forecast.config import Settings
    from sales_forecast.contract import load_contract
    from sales_forecast.platforms.base import ModelRegistry
    from sales_forecast.platforms.gcp.config import resolve_config
    from sales_forecast.platforms.gcp.run import GcpRun, gcp_platform
    from sales_forecast.run_context import make_run_context

    from tests._support.gcp import variables_renderer

    class NoProductionModel(ModelRegistry):
        def get_by_alias(self, alias):
            return None

        def list_versions(self):
            return []

    settings = Settings(platform="gcp", backtest_windows=1, default_horizon=HORIZON)
    variables = {
        "sf_gcp_project": "test-project",
        "sf_gcp_bucket": "sf-trainer",
        "sf_gcp_bq_dataset": DATASET,
        "sf_gcp_trainer_image": "<your-registry>/p/r/trainer:t",
    }
    cfg = resolve_config(settings, variables_renderer(variables))
    ctx = make_run_context(
        run_id="scheduled__2024-12-30T00:00:00+00:00",
        logical_date=datetime(2024, 12, 30, tzinfo=UTC),
        params={"dataset": "retail", "horizon": HORIZON, "input_uri": "gs://x/y.csv"},
        settings=settings,
        runs_root="gs://sf-trainer/runs",
    )
    platform = dataclasses.replace(gcp_platform(cfg), registry=NoProductionModel())
    return GcpRun(
        cfg=cfg, ctx=ctx, contract=load_contract("retail"), platform=platform, settings=settings
    )


@pytest.fixture(scope="module")
def features_table(gcp_run, gcs_client, bq_client):
    """A small clean panel (2 series, 120 days) in BigQuery, and the run's contract in GCS."""
    from google.cloud import bigquery
    from sales_forecast import steps

    bucket = gcs_client.bucket("sf-trainer")
    if not bucket.exists():
        gcs_client.create_bucket("sf-trainer")
    # Written as load_to_staging writes it (steps.prepare_staging), through GcsStore.
    steps.write_json(gcp_run.platform, gcp_run.contract_uri, gcp_run.contract.to_dict())
    cols = [
        ("series_id", "STRING"),
        ("store_id", "STRING"),
        ("item_id", "STRING"),
        ("date", "DATE"),
        ("sales", "FLOAT64"),
        ("price", "FLOAT64"),
        ("on_promo", "BOOL"),
        ("is_holiday", "BOOL"),
        ("temperature", "FLOAT64"),
        ("is_gap_filled", "BOOL"),
    ]
    lines = [",".join(c for c, _ in cols)]
    start = CUTOFF - timedelta(days=119)
    for item, level in (("I001", 10.0), ("I002", 14.0)):
        for d in range(120):
            sales = level + 5 * math.sin(d / 7 * 2 * math.pi) + d % 3
            promo = "true" if d % 10 == 0 else "false"
            lines.append(
                f"S01|{item},S01,{item},{start + timedelta(days=d)},{sales:.2f},2.5,"
                f"{promo},false,{10 + d % 5},false"
            )
    bucket.blob("fixtures/features.csv").upload_from_string("\n".join(lines) + "\n")
    bq_client.create_dataset(bigquery.Dataset(f"test-project.{DATASET}"), exists_ok=True)
    bq_client.load_table_from_uri(
        "gs://sf-trainer/fixtures/features.csv",
        gcp_run.table_id("daily_sales_features"),
        job_config=bigquery.LoadJobConfig(
            schema=[bigquery.SchemaField(n, t) for n, t in cols],
            skip_leading_rows=1,
            write_disposition="WRITE_TRUNCATE",
        ),
    ).result()
    return gcp_run.table_uri("daily_sales_features")


@pytest.fixture(scope="module")
def trainer(emulators, tmp_path_factory):
    site = tmp_path_factory.mktemp("sitecustomize")
    (site / "sitecustomize.py").write_text(
        "import google.cloud.bigquery.client as c\n"
        "c._GENERIC_CONTENT_TYPE = 'application/octet-stream'  # emulator gap, see module doc\n"
    )
    env = {**os.environ, **emulators.client_env(), "PYTHONPATH": f"{site}:{REPO}"}

    def run(job, extra_args: tuple[str, ...] = ()) -> dict:
        """Run a planned ``steps.TrainerJob`` as the image's entrypoint does."""
        proc = subprocess.run(
            [sys.executable, "-m", "trainer", job.command, *job.args, *extra_args],
            env={**env, **job.env},
            capture_output=True,
            text=True,
            timeout=300,
            cwd=str(REPO),
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture(scope="module")
def train_job(gcp_run):
    from sales_forecast import steps

    return steps.plan_train(gcp_run.ctx, gcp_run.platform, gcp_run.settings)


@pytest.fixture(scope="module")
def trained(gcp_run, features_table, trainer, train_job):
    # Fewer boosting rounds than the default: the test checks the plumbing, not the model.
    return trainer(train_job, ("--n-estimators", "30", "--num-threads", "1"))


@pytest.fixture(scope="module")
def backtest(gcp_run, trained, trainer):
    from sales_forecast import steps

    job = steps.plan_backtest(gcp_run.ctx, gcp_run.platform, gcp_run.settings)
    return job, trainer(job)


def test_train_reads_bigquery_and_writes_the_model_to_gcs(gcp_run, trained, train_job, gcs_client):
    from sales_forecast import steps

    assert train_job.env["AIP_MODEL_DIR"] == f"{gcp_run.model_dir}/"
    assert trained["n_series"] == 2
    assert trained["training_window"]["last_date"] == CUTOFF.isoformat()
    names = {b.name for b in gcs_client.list_blobs("sf-trainer", prefix=f"runs/{gcp_run.run_key}/")}
    prefix = f"runs/{gcp_run.run_key}/model/"
    assert {f"{prefix}metrics.json", f"{prefix}metadata.json", f"{prefix}params.json"} <= names
    # What the train operator returns after the job, read through GcsStore.
    out = steps.finish_train(gcp_run.ctx, gcp_run.platform, train_job)
    assert out["model_dir"] == gcp_run.model_dir and out["metrics"]
    metadata = steps.read_metadata(gcp_run.platform, gcp_run.model_dir)
    assert metadata["train_end"] == CUTOFF.isoformat()


def test_backtest_writes_the_gate_to_gcs_and_rows_to_bigquery(
    gcp_run, backtest, gcs_client, bq_client
):
    from sales_forecast import steps

    job, out = backtest
    assert "--champion-model-dir" not in job.args  # nothing in production yet
    gate_blob = gcs_client.bucket("sf-trainer").blob(f"runs/{gcp_run.run_key}/backtest/gate.json")
    gate = json.loads(gate_blob.download_as_text())
    assert gate == out["gate"] and gate["metric"] == "wape" and isinstance(gate["passed"], bool)
    got = [
        dict(r.items())
        for r in bq_client.query(
            f"SELECT DISTINCT run_id FROM `{gcp_run.table_id('backtest_results')}`"
        ).result()
    ]
    assert got == [{"run_id": gcp_run.run_id}]
    # The operator's finish: the gate gets the champion's version (none) and is written back.
    finished = steps.finish_backtest(gcp_run.ctx, gcp_run.platform, job)
    assert finished == {**gate, "champion_version": None}
    assert json.loads(gate_blob.download_as_text())["champion_version"] is None


def test_predict_writes_every_series_and_day_once(gcp_run, backtest, trainer):
    from sales_forecast import steps

    # Reads the gate from GCS; with nothing in production the run's own model forecasts.
    job = steps.plan_forecast(gcp_run.ctx, gcp_run.platform, gcp_run.settings)
    assert job.args[job.args.index("--model-dir") + 1] == gcp_run.model_dir
    assert job.state["model_version"] == f"candidate:{gcp_run.run_key}"
    for _ in range(2):  # a re-run of the run replaces its rows
        out = trainer(job)
    assert out["n_rows"] == 2 * HORIZON
    # The same check the forecast task runs after the job, on the emulator's table.
    summary = steps.finish_forecast(gcp_run.ctx, gcp_run.platform, job)
    assert (summary["rows_written"], summary["series"]) == (2 * HORIZON, 2)
    assert summary["first_date"] == (CUTOFF + timedelta(days=1)).isoformat()
    assert summary["last_date"] == (CUTOFF + timedelta(days=HORIZON)).isoformat()
    assert summary["model_version"] == f"candidate:{gcp_run.run_key}"
    assert summary["table"] == gcp_run.table_uri("daily_sales_forecasts")
