"""BigQuery as the warehouse: the scripts' statements as written, and only the params they use."""

from __future__ import annotations

from datetime import date

from sales_forecast.contract import load_contract
from sales_forecast.platforms.gcp.warehouse import (
    BigQueryWarehouse,
    query_config,
    query_parameters,
    split_statements_verbatim,
)
from sales_forecast.sqlrender import TableNames, render_sql

DATASET = "p.d"


def warehouse() -> BigQueryWarehouse:
    return BigQueryWarehouse(
        conn_id="google_cloud_default", project="p", location="EU", dataset="d"
    )


def test_split_statements_keeps_the_text_and_ignores_semicolons_in_strings_and_comments():
    sql = "-- a; comment\nSELECT 'a;b' AS x;\n\n/* c; */ DELETE FROM t WHERE y = @run_id;\n-- end\n"
    assert split_statements_verbatim(sql) == [
        "-- a; comment\nSELECT 'a;b' AS x",
        "/* c; */ DELETE FROM t WHERE y = @run_id",
    ]


def test_query_parameters_only_for_the_names_a_statement_uses():
    params = {"run_id": "r1", "run": "no", "cutoff": date(2024, 1, 31), "n": 3}
    got = query_parameters("SELECT @run_id, @cutoff, @n", params)
    assert got == [
        {"name": "run_id", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "r1"}},
        {
            "name": "cutoff",
            "parameterType": {"type": "DATE"},
            "parameterValue": {"value": "2024-01-31"},
        },
        {"name": "n", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "3"}},
    ]


def test_query_parameter_types():
    got = query_parameters("SELECT @b, @f", {"b": True, "f": 0.5})
    assert [(p["parameterType"]["type"], p["parameterValue"]["value"]) for p in got] == [
        ("BOOL", "true"),
        ("FLOAT64", "0.5"),
    ]


def test_query_config_is_standard_sql_with_named_parameters_only_when_used():
    assert query_config("SELECT 1", {"run_id": "r"}) == {
        "query": {"query": "SELECT 1", "useLegacySql": False}
    }
    query = query_config("SELECT @run_id", {"run_id": "r"})["query"]
    assert query["parameterMode"] == "NAMED"
    assert [p["name"] for p in query["queryParameters"]] == ["run_id"]


def test_table_names_and_trainer_uris():
    wh = warehouse()
    assert wh.table_id("staging") == "p.d.staging"
    assert wh.table_uri("daily_sales_features") == "bq://p.d.daily_sales_features"
    assert wh.tables.staging_checked == TableNames(DATASET).staging_checked


def test_run_script_sends_each_statement_as_written_with_its_own_params(bq):
    contract = load_contract("retail")
    wh = warehouse()
    wh.run_script("quarantine", contract, run_id="r1", source_file="gs://b/in.csv")
    expected = split_statements_verbatim(render_sql("quarantine", contract, TableNames(DATASET)))
    assert len(expected) > 1 and bq.statements == expected
    assert bq.created == [
        {"gcp_conn_id": "google_cloud_default", "location": "EU", "use_legacy_sql": False}
    ]
    assert {(j["project_id"], j["location"]) for j in bq.jobs} == {("p", "EU")}
    for stmt, job in zip(expected, bq.jobs, strict=True):
        sent = {p["name"] for p in job["configuration"]["query"].get("queryParameters", [])}
        used = {n for n in ("run_id", "source_file") if f"@{n}" in stmt}
        assert sent == used, stmt


def test_query_returns_rows_as_dicts_with_typed_parameters(bq):
    bq.answer = lambda sql, params: [{"n": 3, "cutoff": params["cutoff"]}]
    rows = warehouse().query(
        "SELECT COUNT(*) AS n FROM t WHERE d <= @cutoff", cutoff=date(2024, 1, 31)
    )
    assert rows == [{"n": 3, "cutoff": date(2024, 1, 31)}]
    ((sql, params),) = bq.queries
    assert sql == "SELECT COUNT(*) AS n FROM t WHERE d <= @cutoff"
    assert params == {"cutoff": date(2024, 1, 31)}


def test_ensure_dataset_creates_it_in_the_configured_location(bq):
    warehouse().ensure_dataset()
    assert bq.datasets == [
        {"dataset_id": "d", "project_id": "p", "location": "EU", "exists_ok": True}
    ]
