"""``load_to_staging`` on GCP: the numbered copy of the CSV, the staging schema, the operator."""

from __future__ import annotations

import io
import json
from unittest import mock

import pytest
from sales_forecast.contract import load_contract
from sales_forecast.errors import DataError
from sales_forecast.platforms.gcp.load import NumberedCsv, number_csv, staging_schema_fields
from sales_forecast.sqlrender import run_suffix

from tests._support.gcp import DATASET, RUN_DIR, RUN_ID, RUN_KEY, render

HEADER = "date,store_id,item_id,sales,price,on_promo,is_holiday,temperature"
# The staging copy's columns: the contract's, including is_available, which these files leave
# out (an optional column: written empty, loaded as NULL).
STAGED = HEADER + ",is_available"


def number(text: str, header: list[str] | None = None) -> tuple[NumberedCsv, list[str]]:
    contract = load_contract("retail")
    src = io.StringIO(text, newline="")
    header = header or text.splitlines()[0].split(",")
    out = io.StringIO()
    result = number_csv(src, out, header=header, contract=contract, source_uri="gs://b/in.csv")
    return result, out.getvalue().splitlines()


def test_number_csv_reorders_columns_and_keeps_line_numbers():
    text = (
        "store_id,date,item_id,sales,price,on_promo,is_holiday,temperature\n"
        "S01,2024-01-01,I1,3,1.5,false,false,5\n"
        "\n"  # a blank line still counts as a line
        'S01,2024-01-02,I1,"4",1.5,false,false,"a\nb"\n'  # a quoted newline: one record
        "S01,2024-01-04,I1,5,1.5,false,false\n"  # a field short
        "S01,2024-01-05,I1,5,1.5,false,false,5\n"
    )
    result, lines = number(text)
    assert lines[0] == "_source_row,_source_file," + STAGED  # the contract's order
    assert lines[1] == "2,gs://b/in.csv,2024-01-01,S01,I1,3,1.5,false,false,5,"
    assert lines[2].startswith("4,gs://b/in.csv,2024-01-02,S01,I1,4,")
    assert lines[-1].startswith("7,gs://b/in.csv,2024-01-05,S01")
    assert result.rows == 3
    assert result.malformed == [
        {
            "source_row": 6,
            "reason": "malformed CSV line (missing columns): expected 8 fields, found 7",
            "raw_line": "S01,2024-01-04,I1,5,1.5,false,false",
        },
    ]


def test_number_csv_writes_an_exports_own_header_names_as_the_contract_names():
    from sf_contract.schema import parse_contract

    retail = load_contract("retail").to_dict()
    headers = {"date": "Date", "sales": "Units Sold", "on_promo": "Promo"}
    for col in retail["columns"]:
        if col["name"] in headers:
            col["header"] = headers[col["name"]]
    contract = parse_contract(retail)
    text = (
        "Units Sold,store_id,item_id,Date,price,Promo,is_holiday,temperature\n"
        "3,S01,I1,01/02/2025,1.5,Y,false,5\n"
    )
    out = io.StringIO()
    result = number_csv(
        io.StringIO(text, newline=""),
        out,
        header=text.splitlines()[0].split(","),
        contract=contract,
        source_uri="gs://b/pos.csv",
    )
    lines = out.getvalue().splitlines()
    assert result.rows == 1
    assert lines[0] == "_source_row,_source_file," + STAGED  # contract names, contract order
    assert lines[1] == "2,gs://b/pos.csv,01/02/2025,S01,I1,3,1.5,Y,false,5,"
    with pytest.raises(DataError, match=r"missing columns \['Date' \(date\), 'Units Sold'"):
        number_csv(
            io.StringIO(text, newline=""),
            io.StringIO(),
            header=HEADER.split(","),
            contract=contract,
            source_uri="gs://b/pos.csv",
        )


def test_number_csv_writes_a_given_optional_column_where_the_contract_puts_it():
    text = "is_available," + HEADER + "\nfalse,2024-01-01,S01,I1,0,1.5,false,false,5\n"
    result, lines = number(text)
    assert result.rows == 1
    assert lines[1] == "2,gs://b/in.csv,2024-01-01,S01,I1,0,1.5,false,false,5,false"


def test_number_csv_sets_aside_bad_quoting_and_invalid_text():
    text = HEADER + '\n2024-01-01,S01,I1,3,1.5,false,"x"y,5\n2024-01-02,S01,I1,\ufffd,1,f,f,5\n'
    result, lines = number(text)
    assert result.rows == 0 and len(lines) == 1
    reasons = [m["reason"] for m in result.malformed]
    assert reasons[0].startswith("malformed CSV line (bad quoting)")
    assert reasons[1] == "malformed CSV line (invalid unicode): not UTF-8 text"


def test_staging_schema_is_line_file_then_every_column_as_string():
    contract = load_contract("retail")
    assert staging_schema_fields(contract) == [
        {"name": "_source_row", "type": "INT64", "mode": "REQUIRED"},
        {"name": "_source_file", "type": "STRING", "mode": "REQUIRED"},
        *({"name": c, "type": "STRING", "mode": "NULLABLE"} for c in contract.column_names),
    ]


# ---------------------------------------------------------------- the operator


def test_load_to_staging_renders_contract_schema_and_run_paths(dag):
    task = dag.get_task("load_to_staging")
    context = render(task, params={"input_uri": "gs://drops/{{ ds }}/sales.csv"})
    run = context["sf"]
    assert run.input_uri == "gs://drops/2025-04-01/sales.csv"  # the param, rendered again
    assert task.bucket == "acme-sf"
    assert task.source_objects == [f"runs/{RUN_KEY}/staging/input.csv"]
    assert task.destination_project_dataset_table == f"{DATASET}.staging__{run_suffix(RUN_ID)}"
    assert (task.project_id, task.location) == ("acme-forecast", "EU")
    contract = load_contract("retail")
    assert task.schema_fields == [
        {"name": "_source_row", "type": "INT64", "mode": "REQUIRED"},
        {"name": "_source_file", "type": "STRING", "mode": "REQUIRED"},
        *({"name": c, "type": "STRING", "mode": "NULLABLE"} for c in contract.column_names),
    ]
    assert (task.write_disposition, task.skip_leading_rows, task.autodetect) == (
        "WRITE_TRUNCATE",
        1,
        False,
    )
    assert task.allow_quoted_newlines and task.max_bad_records == 0


def test_schema_follows_the_runs_dataset_param(dag):
    task = dag.get_task("load_to_staging")
    render(task, params={"dataset": "takeaway"})
    names = [f["name"] for f in task.schema_fields]
    assert names[:4] == ["_source_row", "_source_file", "date", "Total"]
    assert {f["type"] for f in task.schema_fields[2:]} == {"STRING"}


INPUT = "gs://drops/2025-04-01/sales.csv"


def execute_load(dag, **params):
    from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator

    task = dag.get_task("load_to_staging")
    context = render(task, params={"input_uri": INPUT, **params})
    with mock.patch.object(GCSToBigQueryOperator, "execute") as load_job:
        out = task.execute(context)
    return out, load_job


def test_load_runs_the_shared_checks_then_loads_the_numbered_copy(dag, gcs, bq):
    gcs.buckets.add("drops")
    gcs.put(
        INPUT,
        "store_id,date,item_id,sales,price,on_promo,is_holiday,temperature\n"
        "S01,2024-01-01,I1,3,1.5,false,false,5\n"
        "S01,2024-01-02,I1,4,1.5,false\n",
    )
    out, load_job = execute_load(dag)
    load_job.assert_called_once()
    staging = f"{DATASET}.staging__{run_suffix(RUN_ID)}"  # this run's own staging table
    assert out == {"table": staging, "rows": 1, "malformed": 1, "input_uri": INPUT}
    # steps.prepare_staging: the run's files, then create_tables.sql before the load.
    assert json.loads(gcs.get(f"{RUN_DIR}/contract.json"))["name"] == "retail"
    assert json.loads(gcs.get(f"{RUN_DIR}/run.json"))["run_id"] == RUN_ID
    assert bq.datasets[0]["dataset_id"] == "sales_fc" and bq.datasets[0]["location"] == "EU"
    assert any(f"`{DATASET}.sales_history`" in s for s in bq.statements)
    numbered = gcs.get(f"{RUN_DIR}/staging/input.csv").decode().splitlines()
    assert numbered == [
        "_source_row,_source_file," + STAGED,
        f"2,{INPUT},2024-01-01,S01,I1,3,1.5,false,false,5,",
    ]
    # The malformed line goes to staging_malformed with a load job of its own.
    (malformed_load,) = [
        j["configuration"]["load"] for j in bq.jobs if "load" in j["configuration"]
    ]
    assert malformed_load["sourceUris"] == [f"{RUN_DIR}/staging/malformed.jsonl"]
    assert (
        malformed_load["destinationTable"]["tableId"] == f"staging_malformed__{run_suffix(RUN_ID)}"
    )
    (line,) = gcs.get(f"{RUN_DIR}/staging/malformed.jsonl").decode().splitlines()
    assert json.loads(line)["source_row"] == 3


def test_a_clean_file_empties_the_malformed_table(dag, gcs, bq):
    gcs.buckets.add("drops")
    gcs.put(INPUT, HEADER + "\n2024-01-01,S01,I1,3,1.5,false,false,5\n")
    out, _ = execute_load(dag)
    assert out["malformed"] == 0
    assert bq.statements[-1] == (
        f"TRUNCATE TABLE `{DATASET}.staging_malformed__{run_suffix(RUN_ID)}`"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, f"{INPUT}: input file not found"),
        ("date,store_id\n2024-01-01,S01\n", "does not match the 'retail' contract"),
        (HEADER + "\n", "the file has a header but no data rows"),
    ],
)
def test_bad_input_fails_without_retries_and_loads_nothing(dag, gcs, bq, content, message):
    from airflow.sdk.exceptions import AirflowFailException

    gcs.buckets.add("drops")
    if content is not None:
        gcs.put(INPUT, content)
    with pytest.raises(AirflowFailException, match=message):
        execute_load(dag)
    assert not any("load" in j["configuration"] for j in bq.jobs)


def test_a_missing_bucket_says_what_to_create(dag, gcs, bq):
    from airflow.sdk.exceptions import AirflowFailException

    gcs.buckets.clear()
    with pytest.raises(AirflowFailException, match="bucket gs://acme-sf not found"):
        execute_load(dag)


@pytest.mark.parametrize("conf", [{}, {"enable_deploy": True}, {"runner": "cloud_run"}])
def test_the_default_params_stage_the_daily_drop_from_the_variable(dag, gcs, bq, conf):
    """The schedule and every trigger without input_uri read sf_gcp_input_uri, rendered."""
    gcs.buckets.add("acme-drops")
    drop = "gs://acme-drops/drops/2025-04-01/sales.csv"  # the Variable, {{ ds }} rendered
    gcs.put(drop, HEADER + "\n2024-01-01,S01,I1,3,1.5,false,false,5\n")
    task = dag.get_task("load_to_staging")
    context = render(task, conf=conf)
    assert context["sf"].input_uri == drop
    from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator

    with mock.patch.object(GCSToBigQueryOperator, "execute"):
        out = task.execute(context)
    assert out["input_uri"] == drop and out["rows"] == 1


def test_without_the_variable_or_a_param_the_run_says_what_to_set(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from tests._support.gcp import load_gcp_dag, set_variables

    set_variables(monkeypatch, SF_GCP_INPUT_URI=None)
    dag = load_gcp_dag(monkeypatch)
    with pytest.raises(AirflowFailException, match="sf_gcp_input_uri"):
        render(dag.get_task("load_to_staging"))
