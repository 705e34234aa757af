#!/usr/bin/env python3
"""Render every statement the pipeline sends to BigQuery, in the DAG's order, for a dry run.

    python scripts/render_sql.py --project P --dataset SCRATCH --out DIR
        [--contract takeaway] [--run-id smoke] [--cutoff 2025-10-31] [--source-file gs://...]
        [--dag-dataset DATASET]

Writes ``DIR/NNN_<script>.sql`` files, one statement each, exactly as ``BigQueryWarehouse``
sends them (the same templates, switches and verbatim statement split), and ``DIR/plan.tsv``,
one line per file in order: ``action<TAB>file<TAB>bq flags`` (the ``--parameter`` flags of the
query parameters the statement uses, with sample values). ``scripts/gcp_smoke.sh`` loops over it.

Why a plan and not a plain list of dry runs: a dry run needs every table it reads to exist, and
in a scratch dataset nothing does. So the actions are

* ``run``: the statement creates a table a later statement reads (create_tables.sql, the load's
  staging table, validate.sql's ``staging_checked``): run it for real in the scratch dataset.
  DDL without a query is free; the one CREATE TABLE ... AS SELECT reads empty tables (BigQuery
  bills its 10 MB minimum per table read, well inside the free tier);
* ``dry_run``: everything else: validated at zero cost, nothing written;
* ``after_dag``: reads a table only the trainer writes (``daily_sales_forecasts``,
  ``backtest_results``): rendered against ``--dag-dataset`` (where a DAG run has written them),
  to dry-run after one; without ``--dag-dataset``, ``skip``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "plugins")):
    if _p not in sys.path:
        sys.path.insert(0, _p)
# The warehouse module imports the Google provider, which imports Airflow: keep its files in
# the repository's Airflow home (as scripts/setup_env.sh does), never in ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(REPO / ".airflow"))

# The DAG's order of the SQL scripts, with the render switches each step uses (build_features
# renders with `incoming` off when the run's staging tables are already gone).
DAG_ORDER: tuple[tuple[str, dict[str, Any]], ...] = (
    ("create_tables", {}),
    # Only when sales_history lacks some of the contract's columns; checked with them all.
    ("add_history_columns", {}),
    ("validate", {}),
    ("quarantine", {}),
    ("series_rejects", {}),
    # A typed source (Parquet, a BigQuery table) instead of the CSV load: rendered to read the
    # run's typed staging_checked, which exists here (see _inputs).
    ("stage_table", {}),
    ("features", {"incoming": True}),
    ("features", {"incoming": False}),
    ("merge_history", {}),
    ("drop_staging", {}),
    ("relabel_forecasts", {}),
)
# Tables the trainer creates and writes (no .sql file creates them).
TRAINER_TABLES = ("daily_sales_forecasts", "backtest_results")
# The load step's table (GCSToBigQueryOperator makes it), declared here as DDL.
STAGING_DDL = "staging (load_to_staging)"


@dataclass(frozen=True)
class Statement:
    script: str
    sql: str
    action: str  # run | dry_run | after_dag | skip
    flags: tuple[str, ...]


def sample_params(run_id: str, cutoff: dt.date, source_file: str) -> dict[str, Any]:
    """A value for every ``@param`` the SQL uses, of the type the DAG sends."""
    return {
        "run_id": run_id,
        "source_file": source_file,
        "cutoff": cutoff,
        "version": "1",
        "candidate": f"candidate:{run_id}",
    }


def _tables(sql: str) -> tuple[set[str], set[str]]:
    """(tables the statement creates, tables it reads or changes), by their own names."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="bigquery")
    created: set[str] = set()
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE":
        target = tree.this if isinstance(tree.this, exp.Table) else tree.this.find(exp.Table)
        if target is not None:
            created.add(target.name)
    if isinstance(tree, exp.Drop):
        return created, set()  # a DROP ... IF EXISTS needs no table
    used = {t.name for t in tree.find_all(exp.Table)} - created
    # CTE names are not tables.
    used -= {cte.alias for cte in tree.find_all(exp.CTE)}
    return created, used


def _param_names(sql: str) -> set[str]:
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.tokens import TokenType

    tokens = Dialect.get_or_raise("bigquery").tokenize(sql)
    return {
        nxt.text
        for tok, nxt in zip(tokens, tokens[1:], strict=False)
        if tok.token_type == TokenType.PARAMETER and tok.end + 1 == nxt.start
    }


def bq_flags(sql: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """``--parameter=name:TYPE:value`` for each query parameter the statement uses."""
    from sales_forecast.platforms.gcp.warehouse import query_parameters

    missing = sorted(_param_names(sql) - set(params))
    if missing:
        raise SystemExit(f"no sample value for the query parameters {missing}: add them here")
    flags = []
    for p in query_parameters(sql, params):
        value = p["parameterValue"]["value"]
        if any(c.isspace() for c in value):
            raise SystemExit(f"parameter {p['name']}: {value!r} holds whitespace")
        flags.append(f"--parameter={p['name']}:{p['parameterType']['type']}:{value}")
    return tuple(flags)


def _inputs(name: str, warehouse: Any, contract: Any) -> dict[str, Any]:
    """The data a script renders with. stage_table.sql: a typed table with the contract's
    columns; the run's staging_checked is one (DATE, numbers, booleans, text), so the dry run
    checks the DATE and the text kinds on BigQuery; a timestamp source is not covered.
    add_history_columns.sql: every nullable column (each already there: a valid no-op)."""
    if name == "add_history_columns":
        return {"added": [c for c in contract.columns if c.nullable]}
    if name != "stage_table":
        return {}
    from sales_forecast.sources import StagedColumn

    staged = [
        StagedColumn(c.name, c.name, i, "date" if c.type == "DATE" else "text")
        for i, c in enumerate(contract.columns)
    ]
    table = warehouse.table_id("staging_checked")
    return {"staged": staged, "bq_table": table, "source_uri": f"bq://{table}"}


def rendered(warehouse: Any, contract: Any) -> list[tuple[str, str]]:
    """(script, statement) for :data:`DAG_ORDER`, as ``warehouse`` sends them, with the load's
    staging table as DDL right after create_tables."""
    from sales_forecast.platforms.gcp.load import staging_schema_fields
    from sales_forecast.platforms.gcp.warehouse import split_statements_verbatim

    out = [
        (name, stmt)
        for name, switches in DAG_ORDER
        for stmt in split_statements_verbatim(
            warehouse.script(name, contract, {**switches, **_inputs(name, warehouse, contract)})
        )
    ]
    columns = ",\n".join(f"  `{f['name']}` {f['type']}" for f in staging_schema_fields(contract))
    staging = f"CREATE TABLE IF NOT EXISTS {warehouse.tables.staging} (\n{columns}\n)"
    after = max(i for i, (name, _) in enumerate(out) if name == "create_tables") + 1
    out.insert(after, (STAGING_DDL, staging))
    return out


def plan(
    contract: Any,
    *,
    project: str,
    dataset: str,
    run_id: str,
    params: Mapping[str, Any],
    location: str = "US",
    dag_dataset: str | None = None,
) -> list[Statement]:
    """Every statement of :data:`DAG_ORDER` as the gcp warehouse sends it, with its action."""
    from sales_forecast.platforms.gcp.warehouse import BigQueryWarehouse

    def warehouse(ds: str) -> BigQueryWarehouse:
        return BigQueryWarehouse(
            conn_id="google_cloud_default",
            project=project,
            location=location,
            dataset=ds,
            run_id=run_id,
        )

    scratch = warehouse(dataset)
    statements = rendered(scratch, contract)
    # The same statements against the dataset a DAG run wrote (only the names differ).
    in_dag = rendered(warehouse(dag_dataset), contract) if dag_dataset else None
    trainer_made = {scratch.tables.name(t) for t in TRAINER_TABLES}
    shapes = [_tables(stmt) for _, stmt in statements]
    out = []
    for i, (name, stmt) in enumerate(statements):
        created, used = shapes[i]
        if used & trainer_made:
            if in_dag is None:
                out.append(Statement(name, stmt, "skip", ()))
            else:
                dag_stmt = in_dag[i][1]
                out.append(Statement(name, dag_stmt, "after_dag", bq_flags(dag_stmt, params)))
            continue
        read_later = set().union(*(u for _, u in shapes[i + 1 :]))
        action = "run" if created & read_later else "dry_run"
        out.append(Statement(name, stmt, action, bq_flags(stmt, params)))
    return out


def write_plan(statements: Sequence[Statement], out: Path) -> Path:
    """``NNN_<script>.sql`` per statement and ``plan.tsv``; returns the plan's path."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("[0-9][0-9][0-9]_*.sql"):
        old.unlink()  # a previous render's files must not be dry-run again
    lines = []
    for i, st in enumerate(statements, start=1):
        file = out / f"{i:03d}_{st.script.split(' ')[0]}.sql"
        file.write_text(st.sql + "\n")
        lines.append("\t".join([st.action, file.name, " ".join(st.flags)]))
    path = out / "plan.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _load(contract: str) -> Any:
    from sales_forecast.contract import load_contract, load_contract_file

    path = Path(contract)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        return load_contract_file(path)
    return load_contract(contract)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--dataset", required=True, help="the scratch dataset the plan runs in")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--location", default="US")
    parser.add_argument("--contract", default="takeaway", help="a contract name or file")
    parser.add_argument("--run-id", default="smoke")
    parser.add_argument("--cutoff", default="2025-10-31", type=dt.date.fromisoformat)
    parser.add_argument("--source-file", default="gs://smoke/sales.csv")
    parser.add_argument("--dag-dataset", help="the dataset a DAG run of this contract wrote")
    args = parser.parse_args(argv)
    contract = _load(args.contract)
    statements = plan(
        contract,
        project=args.project,
        dataset=args.dataset,
        run_id=args.run_id,
        params=sample_params(args.run_id, args.cutoff, args.source_file),
        location=args.location,
        dag_dataset=args.dag_dataset,
    )
    path = write_plan(statements, args.out)
    counts: dict[str, int] = {}
    for st in statements:
        counts[st.action] = counts.get(st.action, 0) + 1
    summary = ", ".join(f"{action} {n}" for action, n in counts.items())
    print(f"{path}: {len(statements)} statements ({summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
