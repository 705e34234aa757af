"""Run tasks of the real ``sales_forecast`` DAG with ``dag.test()``, one or more runs in a row.

Used by the emulator tests in a subprocess of its own (its own AIRFLOW_HOME, SF_PLATFORM=gcp and
emulator endpoints in the environment), so Airflow's state and the settings cache never leak
into the pytest process, and the DAG is parsed once for all the runs (parsing with the Vertex AI
SDK takes seconds). Each run gets its own Airflow Variables (as ``AIRFLOW_VAR_*`` environment
variables, which Airflow reads on every access; a Variables file backend would be loaded once
per process): the GCP settings are read when the tasks run, so runs in one process can use
different datasets. (The emulators behind it run BigQuery SQL on DuckDB: see
test_dag_on_emulators for what that does and does not prove.)

    python tests/gcp/run_dag_subset.py RUNS_JSON

RUNS_JSON is a list of {"task_ids": [...], "logical_date": "...", "conf": {...},
"variables": {"sf_gcp_project": ..., ...}, "edges": [[up, down], ...] (optional: order between
tasks whose tasks in between are left out)}. Before each run a line ``=== run <i> ===`` is printed,
after it ``{"run": i, "states": {task_id: state}, "run_id": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    runs = json.loads(argv[0])
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        print(json.dumps({"import_errors": {k: str(v) for k, v in bag.import_errors.items()}}))
        return 1
    full = bag.dags["sales_forecast"]
    for i, spec in enumerate(runs):
        print(f"=== run {i} ===", flush=True)
        dag = full.partial_subset(
            task_ids=spec["task_ids"], include_upstream=False, include_downstream=False
        )
        for up, down in spec.get("edges", []):
            # The subset drops the tasks in between (e.g. the trainer jobs); keep the order.
            dag.get_task(down).set_upstream(dag.get_task(up))
        for task in dag.tasks:
            # A failing task must show at once, not after the DAG's retry delay.
            task.retries = 0
        for key in [k for k in os.environ if k.startswith("AIRFLOW_VAR_")]:
            del os.environ[key]
        os.environ.update({f"AIRFLOW_VAR_{k.upper()}": v for k, v in spec["variables"].items()})
        dr = dag.test(
            logical_date=datetime.fromisoformat(spec["logical_date"]), run_conf=spec["conf"]
        )
        states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
        print(json.dumps({"run": i, "states": states, "run_id": dr.run_id}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
