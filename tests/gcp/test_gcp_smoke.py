"""The smoke test for a real project (scripts/gcp_smoke.sh) and the SQL plan it runs
(scripts/render_sql.py), checked here without GCP.

What this proves: the plan holds every statement the gcp warehouse sends, verbatim and in the
DAG's order, with the query parameters each uses; ordered so that every dry run finds the tables
it reads (created by an earlier ``run`` statement, or written by the trainer and then checked
after the DAG run); and the script sends exactly those ``bq`` and ``gcloud`` commands, counts
failures and exits non-zero on any. What it cannot prove: that BigQuery accepts the statements
(that is what running the script on a project is for).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sales_forecast.contract import BUILTIN_CONTRACTS, load_contract
from sales_forecast.platforms.gcp.warehouse import BigQueryWarehouse, split_statements_verbatim
from sales_forecast.sqlrender import SQL_DIR

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "scripts" / "gcp_smoke.sh"
CUTOFF = dt.date(2025, 10, 31)


def render_sql_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_sql", REPO / "scripts" / "render_sql.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_sql"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


rs = render_sql_module()


def plan(contract: str = "takeaway", dag_dataset: str | None = None) -> list:
    return rs.plan(
        load_contract(contract),
        project="my-proj",
        dataset="scratch",
        run_id="smoke__1",
        params=rs.sample_params("smoke__1", CUTOFF, "gs://b/smoke/sales.csv"),
        location="EU",
        dag_dataset=dag_dataset,
    )


def test_the_plan_covers_every_sql_file():
    scripts = {p.stem for p in SQL_DIR.glob("*.sql") if not p.name.startswith("_")}
    assert {name for name, _ in rs.DAG_ORDER} == scripts


@pytest.mark.parametrize("contract", BUILTIN_CONTRACTS)
def test_the_plan_is_what_the_warehouse_sends_in_the_dags_order(contract):
    wh = BigQueryWarehouse(
        conn_id="google_cloud_default",
        project="my-proj",
        location="EU",
        dataset="scratch",
        run_id="smoke__1",
    )
    c = load_contract(contract)
    sent = [
        s
        for name, switches in rs.DAG_ORDER
        for s in split_statements_verbatim(
            wh.script(name, c, {**switches, **rs._inputs(name, wh, c)})
        )
    ]
    planned = [st for st in plan(contract) if st.script != rs.STAGING_DDL]
    assert [st.sql for st in planned] == sent


@pytest.mark.parametrize("contract", BUILTIN_CONTRACTS)
def test_every_dry_run_finds_the_tables_it_reads(contract):
    """What a scratch dataset holds when each statement is checked: only what an earlier `run`
    statement created. Statements on the trainer's tables wait for the DAG run."""
    existing: set[str] = set()
    statements = plan(contract)
    for st in statements:
        created, used = rs._tables(st.sql)
        if st.action == "skip":
            assert used & {"daily_sales_forecasts", "backtest_results"}, st.sql
            continue
        assert used <= existing, (st.script, used - existing)
        if st.action == "run":
            existing |= created
    runs = [(st.script, rs._tables(st.sql)[0]) for st in statements if st.action == "run"]
    # Only what later statements need runs for real: the DDL and validate's staging_checked.
    assert [s for s, _ in runs] == ["create_tables"] * 4 + [rs.STAGING_DDL, "validate"]
    assert runs[-1][1] == {"staging_checked__" + rs_suffix()}


def rs_suffix() -> str:
    from sales_forecast.sqlrender import run_suffix

    return run_suffix("smoke__1")


def test_statements_on_the_trainers_tables_run_after_the_dag_against_its_dataset():
    (after,) = [st for st in plan(dag_dataset="sales_forecast_takeaway") if st.action != "run"][-1:]
    assert after.action == "after_dag" and after.script == "relabel_forecasts"
    assert "`my-proj.sales_forecast_takeaway.daily_sales_forecasts`" in after.sql
    assert after.flags == (
        "--parameter=run_id:STRING:smoke__1",
        "--parameter=version:STRING:1",
        "--parameter=candidate:STRING:candidate:smoke__1",
    )


def test_flags_carry_only_the_parameters_a_statement_uses():
    assert rs.bq_flags("SELECT 1", {"cutoff": CUTOFF}) == ()
    assert rs.bq_flags("SELECT '@cutoff' AS s, @cutoff AS c", {"cutoff": CUTOFF, "x": "y"}) == (
        "--parameter=cutoff:DATE:2025-10-31",
    )
    with pytest.raises(SystemExit, match=r"no sample value for the query parameters \['horizon'\]"):
        rs.bq_flags("SELECT @horizon", {"cutoff": CUTOFF})
    with pytest.raises(SystemExit, match="whitespace"):
        rs.bq_flags("SELECT @run_id", {"run_id": "a b"})


def test_write_plan_files_and_tsv(tmp_path):
    out = tmp_path / "sql"
    out.mkdir()
    (out / "099_stale.sql").write_text("SELECT 1\n")
    path = rs.write_plan(plan(), out)
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    assert lines[0] == ["run", "001_create_tables.sql", ""]
    assert lines[4] == ["run", "005_staging.sql", ""]
    # add_history_columns.sql's ALTER (only sent when history lacks a column) is checked only.
    assert lines[5][:2] == ["dry_run", "006_add_history_columns.sql"]
    assert lines[-1] == ["skip", f"{len(lines):03d}_relabel_forecasts.sql", ""]
    files = sorted(p.name for p in out.glob("*.sql"))
    assert files == [line[1] for line in lines]  # the stale file is gone
    assert (
        (out / "005_staging.sql")
        .read_text()
        .startswith("CREATE TABLE IF NOT EXISTS `my-proj.scratch.staging__")
    )


def test_the_command_line_renders_a_contract_file(tmp_path, capsys):
    contract = REPO / "plugins" / "sales_forecast" / "contracts" / "retail.yaml"
    out = tmp_path / "sql"
    argv = ["--project", "p", "--dataset", "s", "--out", str(out), "--contract", str(contract)]
    assert rs.main(argv) == 0
    assert "statements (run 6, dry_run 17, skip 1)" in capsys.readouterr().out
    assert "`p.s.sales_history`" in (out / "001_create_tables.sql").read_text()


# --------------------------------------------------------------------------- the shell script

FAKE_BQ = r"""#!/usr/bin/env bash
# Records each call (args, then the statement's first code line from stdin) and fails a query
# whose statement contains $FAKE_BQ_FAIL.
sql=""
case " $* " in *" query "*) sql="$(cat)" ;; esac
printf 'bq %s\t%s\n' "$*" "$(printf '%s\n' "$sql" | grep -v '^--' | head -n 1)" >> "$FAKE_LOG"
if [ -n "${FAKE_BQ_FAIL:-}" ] && [[ "$sql" == *"$FAKE_BQ_FAIL"* ]]; then
  echo "Error in query string: Syntax error" >&2
  exit 1
fi
"""

FAKE_GCLOUD = r"""#!/usr/bin/env bash
printf 'gcloud %s\n' "$*" >> "$FAKE_LOG"
prev=""
for a in "$@"; do
  [ "$prev" != --run-id ] || echo "$a" > "$FAKE_DIR/run_id"
  prev="$a"
done
case " $* " in
  *" list-runs "*)
    echo "Executing within the following Kubernetes cluster namespace: composer-3"
    printf '[{"dag_id": "sales_forecast", "run_id": "%s", "state": "%s"}]\n' \
      "$(cat "$FAKE_DIR/run_id")" "${FAKE_STATE:-success}" ;;
  *" states-for-dag-run "*) echo "load_to_staging | success" ;;
esac
"""


def smoke(tmp_path: Path, *args: str, **fake: str) -> tuple[subprocess.CompletedProcess, list]:
    """Runs gcp_smoke.sh against a fake bq and gcloud; returns the process and their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("bq", FAKE_BQ), ("gcloud", FAKE_GCLOUD)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.log"
    log.write_text("")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "FAKE_LOG": str(log),
        "FAKE_DIR": str(tmp_path),
        **fake,
    }
    proc = subprocess.run(
        ["bash", str(SMOKE), "--project", "my-proj", "--location", "EU",
         "--python", sys.executable, *args],
        capture_output=True, text=True, cwd=str(REPO), env=env, timeout=300,
    )  # fmt: skip
    return proc, log.read_text().splitlines()


def test_the_smoke_script_checks_every_statement_then_runs_the_dag(tmp_path):
    proc, calls = smoke(
        tmp_path,
        "--environment", "sf-env", "--region", "europe-west1", "--bucket", "gs://acme-sf",
        FAKE_BQ_FAIL="MERGE ",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    bq = [c for c in calls if c.startswith("bq ")]
    assert bq[0].startswith("bq --project_id=my-proj --location=EU mk --dataset ")
    assert bq[0].endswith(" my-proj:sf_smoke_" + bq[0].rsplit("sf_smoke_", 1)[1])
    queries = [c for c in bq if " query " in c]
    runs = [q for q in queries if "--dry_run" not in q]
    # create_tables' four tables, the staging table and validate's CTAS run for real.
    assert len(runs) == 6 and all("--format=none" in q for q in runs)
    assert runs[4].split("\t")[1].startswith("CREATE TABLE IF NOT EXISTS `my-proj.sf_smoke_")
    assert "--parameter=cutoff:DATE:2025-10-31" in runs[5]  # the demo file's last day
    dry = [q for q in queries if "--dry_run" in q]
    assert len(dry) == 18  # 17 in the scratch dataset, relabel after the run
    assert "sales_forecast_takeaway" not in "".join(dry[:-1])
    assert bq[-1].startswith("bq rm -r -f -d my-proj:sf_smoke_")
    # A failing statement is reported and the next ones are still checked.
    assert "merge_history.sql failed" in proc.stderr
    assert "SQL: 23 statements checked, 1 failed, 0 skipped, 1 after the DAG run" in proc.stdout

    gcloud = [c.removeprefix("gcloud ") for c in calls if c.startswith("gcloud ")]
    composer = "composer environments run sf-env --location europe-west1 --project my-proj"
    stamp = bq[0].rsplit("sf_smoke_", 1)[1].strip()
    drop = f"gs://acme-sf/smoke/{stamp}"
    assert gcloud[:2] == [
        f"storage cp data/demo/takeaway_sales.csv {drop}/sales.csv --project my-proj",
        f"storage cp data/demo/takeaway_future.csv {drop}/future.csv --project my-proj",
    ]
    trigger = gcloud[2].split(" --conf ")
    assert trigger[0] == f"{composer} dags trigger -- sales_forecast --run-id smoke__{stamp}"
    assert json.loads(trigger[1]) == {
        "input_uri": f"{drop}/sales.csv",
        "dataset": "takeaway",
        "enable_deploy": False,
        "future_uri": f"{drop}/future.csv",
        "cutoff_date": "2025-10-31",
    }
    assert gcloud[3:] == [
        f"{composer} dags list-runs -- sales_forecast -o json",
        f"{composer} tasks states-for-dag-run -- sales_forecast smoke__{stamp}",
    ]
    assert f"run smoke__{stamp}: success" in proc.stdout
    assert dry[-1].split("\t")[1].startswith("UPDATE `my-proj.sales_forecast_takeaway.")


def test_a_failed_dag_run_fails_the_smoke_test(tmp_path):
    proc, _ = smoke(
        tmp_path,
        "--environment", "sf-env", "--region", "r", "--bucket", "b", "--keep-scratch",
        FAKE_STATE="failed",
    )  # fmt: skip
    assert proc.returncode == 1
    assert "!! DAG run smoke__" in proc.stderr and ": failed" in proc.stderr
    assert "smoke test: 1 failure(s)" in proc.stdout


def test_dry_run_prints_the_commands_and_sends_nothing(tmp_path):
    proc, calls = smoke(tmp_path, "--sql-only", "--dry-run", "--contract", "retail")
    assert proc.returncode == 0, proc.stderr
    assert calls == []
    lines = proc.stdout.splitlines()
    query = "bq --project_id=my-proj --location=EU query "
    assert sum(line.startswith(query) for line in lines) == 23
    assert "(--dry-run: nothing was sent)" in lines
    assert "SQL: 23 statements checked, 0 failed, 1 skipped, 0 after the DAG run" in lines
    assert not any(line.startswith("gcloud ") for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the DAG run needs --environment, --region and --bucket"),
        (("--sql-only", "--runner", "gke"), "--runner must be vertex or cloud_run"),
        (("--sql-only", "--timeout-min", "0"), "--timeout-min must be"),
    ],
)
def test_bad_arguments_say_what_to_pass(tmp_path, args, message):
    proc, calls = smoke(tmp_path, *args)
    assert proc.returncode == 2 and message in proc.stderr and calls == []
