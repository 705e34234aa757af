"""BigQuery as the warehouse: the scripts' statements as written, and only the params they use."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sales_forecast.contract import load_contract
from sales_forecast.errors import ConfigError
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


def test_ensure_dataset_creates_it_in_the_configured_location_when_not_found(bq):
    warehouse().ensure_dataset()
    assert bq.lookups == [{"dataset_id": "d", "project_id": "p"}]
    assert bq.datasets == [
        {"dataset_id": "d", "project_id": "p", "location": "EU", "exists_ok": True}
    ]


def test_ensure_dataset_never_calls_datasets_insert_when_the_dataset_exists(bq):
    """datasets.insert needs bigquery.datasets.create on the project even for an existing
    dataset: with a dataset-scoped dataEditor it is a 403 on every run."""
    from google.api_core.exceptions import Forbidden

    bq.existing[("p", "d")] = "EU"
    bq.errors["create_empty_dataset"] = Forbidden("Access Denied: bigquery.datasets.create")
    wh = warehouse()
    wh.ensure_dataset()
    wh.ensure_dataset()
    assert bq.datasets == []
    assert bq.lookups == [{"dataset_id": "d", "project_id": "p"}] * 2


def test_ensure_dataset_a_403_on_create_is_a_config_error_naming_the_fix(bq):
    from google.api_core.exceptions import Forbidden

    bq.errors["create_empty_dataset"] = Forbidden(
        "Access Denied: Project p: User does not have bigquery.datasets.create permission"
    )
    with pytest.raises(ConfigError) as err:
        warehouse().ensure_dataset()
    message = str(err.value)
    assert "bigquery.datasets.create" in message and "create the dataset first" in message
    assert "bq --project_id p mk --location EU --dataset p:d" in message
    assert "403 Access Denied" in message


def test_ensure_dataset_a_403_on_the_lookup_is_a_config_error(bq):
    from google.api_core.exceptions import Forbidden

    bq.errors["get_dataset"] = Forbidden("Access Denied: Dataset p:d")
    with pytest.raises(ConfigError, match=r"cannot read the BigQuery dataset p\.d .*dataEditor"):
        warehouse().ensure_dataset()
    assert bq.datasets == []


def test_ensure_dataset_in_another_location_is_a_config_error(bq):
    bq.existing[("p", "d")] = "US"
    with pytest.raises(ConfigError, match="is in US, not in EU: set .*sf_gcp_bq_location to US"):
        warehouse().ensure_dataset()
    bq.existing[("p", "d")] = "eu"  # BigQuery's location names are case-insensitive
    warehouse().ensure_dataset()
    assert bq.datasets == []


def test_ensure_dataset_other_errors_propagate_for_a_retry(bq):
    from google.api_core.exceptions import ServiceUnavailable

    bq.errors["get_dataset"] = ServiceUnavailable("backend error")
    with pytest.raises(ServiceUnavailable):
        warehouse().ensure_dataset()


def test_scripts_are_rendered_with_the_bigquery_switch_on(bq):
    """The warehouse renders with ``bigquery`` on; the local platform's default is off."""
    contract = load_contract("retail")
    tables = TableNames(DATASET)
    sent = warehouse().script("features", contract, {"incoming": False})
    assert sent == render_sql("features", contract, tables, {"incoming": False, "bigquery": True})
    assert "PARTITION BY DATE_TRUNC(`date`, MONTH)" in sent and "CLUSTER BY series_id" in sent
    local = render_sql("features", contract, tables, {"incoming": False})
    assert "PARTITION BY DATE_TRUNC" not in local and "CLUSTER BY" not in local


def test_features_on_bigquery_drops_then_builds_a_partitioned_clustered_table_unsorted(bq):
    contract = load_contract("retail")
    wh = warehouse()
    wh.run_script("features", contract, render={"incoming": False}, cutoff=date(2025, 1, 31))
    drop, create = bq.statements
    assert drop.endswith("DROP TABLE IF EXISTS `p.d.daily_sales_features`")
    assert create.startswith(
        "CREATE OR REPLACE TABLE `p.d.daily_sales_features`\n"
        "PARTITION BY DATE_TRUNC(`date`, MONTH)\nCLUSTER BY series_id\nAS\nWITH"
    )
    # No top-level sort: it buys nothing on BigQuery and fails big panels.
    assert not re.search(r"\bORDER BY\b[^()]*$", create)


def test_each_statement_is_logged_as_sent(bq, caplog):
    """Not the first statement's SQL for every job, as BigQueryInsertJobOperator.sql did."""
    import logging

    from sales_forecast.platforms.gcp.warehouse import BigQueryWarehouse

    wh = BigQueryWarehouse(conn_id="c", project="p", location="EU", dataset="d")
    with caplog.at_level(logging.INFO, logger="sales_forecast.platforms.gcp.warehouse"):
        wh.run_statement("SELECT 1")
        wh.run_statement("SELECT @x", x=2)
    logged = [r.getMessage() for r in caplog.records if "submitting query job" in r.getMessage()]
    assert "SELECT 1" in logged[0] and "SELECT @x" in logged[1] and "'x'" in logged[1]
